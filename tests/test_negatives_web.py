"""'Not PERSON' on the live page (issue 21 item 5): serve.py started for real on loopback (tests/web_server.py);
the page sends back the id of a face the server named, never a vector or a path."""

from __future__ import annotations

import json
import re

from websockets.sync.client import connect

from conftest import shared_path
from web_server import serving

from facerec.stores import load_store
from facerec.web.protocol import pack_frame

OBAMA = "faces/probe/obama1.jpg"


def live_faces(server, frame: bytes) -> list[dict]:
    """The faces of one frame sent on a new WebSocket (a new page: a new tracker)."""
    with connect(server.ws_url(), max_size=None) as ws:
        ws.send(pack_frame(1, frame))
        return json.loads(ws.recv(timeout=120))["faces"]


def not_person(server, content, **headers) -> tuple[int, dict]:
    body = content if isinstance(content, bytes) else json.dumps(content).encode()
    status, answer, _ = server.request("POST", "/api/negatives", body, headers)
    return status, answer


def test_not_person_keeps_the_face_the_server_saw_and_it_is_no_longer_named(tmp_path):
    frame = shared_path(OBAMA).read_bytes()
    with serving(tmp_path) as server:
        [face] = live_faces(server, frame)
        assert face["name"] == "obama" and isinstance(face["face"], str) and len(face["face"]) >= 16
        _, photo, _ = server.request("POST", "/api/recognize", frame)
        assert "face" not in photo["faces"][0]  # a photo on its own: no face is held for it

        # refused, with the existing endpoints' statuses, and nothing is kept
        assert not_person(server, b"not json")[0] == 400
        assert not_person(server, {"face": face["face"]})[0] == 400
        status, answer = not_person(server, {"face": "no-such-face", "name": "obama"})
        assert status == 404 and "no longer holds that face" in answer["error"]
        status, answer = not_person(server, {"face": face["face"], "name": "biden"})
        assert status == 409 and "named that face obama, not biden" in answer["error"]
        status, answer = not_person(server, {"face": face["face"], "name": "obama"}, Origin="http://attacker.example")
        assert status == 403 and "another site" in answer["error"]
        assert len(load_store(server.embeddings).negatives) == 0

        status, answer = not_person(server, {"face": face["face"], "name": "obama"})
        assert (status, answer) == (201, {"not": "obama", "negatives": 1})
        assert not_person(server, {"face": face["face"], "name": "obama"})[0] == 404  # one correction per face
        stored = load_store(server.embeddings)
        assert stored.negatives.names == ["obama"]

        [again] = live_faces(server, frame)  # the very face: as near its negative as it can be
        assert again["name"] == "Unknown" and "face" not in again
        _, photo, _ = server.request("POST", "/api/recognize", frame)
        assert photo["faces"][0]["name"] == "Unknown"
        _, people, _ = server.request("GET", "/api/people")
        assert [person["name"] for person in people["people"]] == ["biden", "obama"]  # photos untouched


def test_not_person_with_the_persons_own_face_is_refused_with_the_distances_unless_forced(tmp_path):
    """Issue 31 item 12: obama's own enrolled photo, named obama, sent as "not obama" would stop him being named:
    409 with the reason and its numbers, nothing kept, the face still held; "force": true keeps it."""
    frame = shared_path("faces/known/obama/obama.jpg").read_bytes()
    with serving(tmp_path) as server:
        [face] = live_faces(server, frame)
        assert face["name"] == "obama"
        for force in ({}, {"force": False}, {"force": "yes"}):  # only true forces it
            status, answer = not_person(server, {"face": face["face"], "name": "obama", **force})
            assert status == 409, answer
            assert re.search(r"the face is 0\.\d{3} from a photo of obama \(the nearest photo of anyone else, "
                             r"biden's, is 1\.\d{3}\), nearer than 0\.5 × the threshold 1\.07 = 0\.535: it looks "
                             r"like obama themself.*; nothing kept", answer["error"]), answer
        assert len(load_store(server.embeddings).negatives) == 0
        status, answer = not_person(server, {"face": face["face"], "name": "obama", "force": True})
        assert (status, answer) == (201, {"not": "obama", "negatives": 1})
        assert load_store(server.embeddings).negatives.names == ["obama"]


def test_the_live_pages_not_button_corrects_the_name_in_a_real_browser(tmp_path):
    """Chromium with a fake camera showing obama's photo: his label offers "Not obama"; accepting its confirmation
    keeps the face as not obama, and the page then shows the face Unknown (tests/test_web_browser.py's helpers)."""
    import cv2
    from selenium.webdriver.common.by import By
    from test_web_browser import browser, labels, names, screenshot, text_of, wait_for, write_y4m

    def shown_buttons(driver) -> list:
        return [button for button in driver.find_elements(By.CSS_SELECTOR, "#faces button.not-person")
                if button.is_displayed()]

    camera = write_y4m(tmp_path / "obama.y4m", cv2.imread(str(shared_path("faces/known/obama/obama.jpg"))))
    with serving(tmp_path / "server") as server:
        driver = browser(tmp_path, camera)
        try:
            driver.get(server.url)
            wait_for(driver, lambda d: labels(d) and names(labels(d)[0], "obama") and shown_buttons(d),
                     "obama named, with the button")
            button = driver.find_element(By.CSS_SELECTOR, "#faces button.not-person")
            assert button.text == "Not obama"
            button.click()
            driver.switch_to.alert.dismiss()  # cancelled: nothing kept
            assert len(load_store(server.embeddings).negatives) == 0
            wait_for(driver, shown_buttons, "the button")
            driver.find_element(By.CSS_SELECTOR, "#faces button.not-person").click()
            driver.switch_to.alert.accept()
            # obama's own enrolled photo looks like obama himself: the server refuses, the page asks once more,
            # with the reason and the distances; no to it keeps nothing and the page says why
            wait_for(driver, lambda d: _alert_text(d) and "themself" in _alert_text(d), "the second question")
            question = _alert_text(driver)
            assert "from a photo of obama" in question and "0.5 × the threshold 1.07" in question, question
            driver.switch_to.alert.dismiss()
            wait_for(driver, lambda d: "looks like obama themself" in text_of(d, "message")
                     and "nothing kept" in text_of(d, "message"), "the refusal shown")
            assert len(load_store(server.embeddings).negatives) == 0
            wait_for(driver, shown_buttons, "the button")
            driver.find_element(By.CSS_SELECTOR, "#faces button.not-person").click()
            driver.switch_to.alert.accept()
            wait_for(driver, lambda d: _alert_text(d) and "themself" in _alert_text(d), "the second question again")
            driver.switch_to.alert.accept()
            wait_for(driver, lambda d: "kept as not obama" in text_of(d, "message"), "the correction kept")
            wait_for(driver, lambda d: labels(d) and names(labels(d)[0], "Unknown"), "the face Unknown")
            assert not shown_buttons(driver)
            assert load_store(server.embeddings).negatives.names == ["obama"]
            screenshot(driver, "web_not_person.png")
        finally:
            driver.quit()


def _alert_text(driver) -> str:
    """The text of the alert the page shows, or "" while it shows none."""
    from selenium.common.exceptions import NoAlertPresentException

    try:
        return driver.switch_to.alert.text
    except NoAlertPresentException:
        return ""

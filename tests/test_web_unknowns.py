"""The web page's Unknown tab (serve.py --keep-unknowns): its API on a real server, and the tab in Debian's chromium.

The unknown faces are kept for real first: recognize_video.py --keep-unknowns over frames of the clip
(Lin-Manuel Miranda on stage, then the audience) with a gallery of obama and biden only.
"""

from __future__ import annotations

import http.client
import json
import time

import cv2
import numpy as np
import pytest

from conftest import run_script, shared_path
from test_sface import CLIP_CONFIDENCE, sface_model_args
from test_unknowns_keeping import clip_frames, write_frames
from test_web_browser import browser, screenshot, wait_for
from web_server import Server, enrolled

from facerec.catalogue import PROFILES
from facerec.unknowns import open_unknowns

LIN_SHOT = range(82, 112)  # Lin-Manuel Miranda alone on stage: one track, one group
AUDIENCE = range(225, 255)  # the audience: a few people, each a group of their own
WAIT_SECONDS = 180


def kept(root, frames):
    """obama and biden enrolled in root (copied: the server writes there), then recognize_video.py
    --keep-unknowns --camera stage over those frames of the clip: (dataset, embeddings)."""
    dataset, embeddings = enrolled(root)
    video = root / "frames.avi"
    write_frames(video, frames)
    run = run_script("recognize_video.py", "--embeddings", str(embeddings), "--source", str(video), "--no-display",
                     "--confidence", CLIP_CONFIDENCE, "--camera", "stage", "--keep-unknowns", *sface_model_args())
    assert run.returncode == 0, run.stderr
    return dataset, embeddings


def stored_groups(embeddings):
    """{group: [its best faces]} as the store itself gives them."""
    with open_unknowns(embeddings, "sface") as store:
        return {group.group: store.best_faces(group.group) for group in store.groups()}


def probe_photo() -> bytes:
    return shared_path("faces/probe/lin-manuel-miranda.png").read_bytes()


def lin_group(server: Server) -> int:
    """The group of Lin's crops: the one the server's own recognition of his probe photo is nearest to."""
    status, record, _ = server.request("POST", "/api/recognize", probe_photo())
    assert status == 200 and record["faces"][0]["name"] == "Unknown"
    groups = stored_groups(server.embeddings)
    image = cv2.imdecode(np.frombuffer(probe_photo(), np.uint8), cv2.IMREAD_COLOR)
    assert image is not None
    from facerec.models import load_models
    models = load_models("sface", detector=shared_path("models"),
                         embedder=shared_path("models") / PROFILES["sface"].embedder.files[0].filename)
    [face] = models.detector.detect(image)
    lin = models.needs_embedder().embed(image, [face])[0]
    return min(groups, key=lambda group: min(float(np.linalg.norm(f.vector - lin)) for f in groups[group]))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("web_unknowns")
    dataset, embeddings = kept(root, [*LIN_SHOT, *AUDIENCE])
    running = Server(dataset, embeddings, "--keep-unknowns")
    try:
        yield running
    finally:
        running.stop()


def groups_of(server: Server) -> dict:
    status, answer, _ = server.request("GET", "/api/unknowns")
    assert status == 200, answer
    return answer


def test_the_tab_lists_the_groups_as_unknowns_py_does_with_crops_from_the_store(server):
    answer = groups_of(server)
    assert answer["people"] == ["biden", "obama"]  # whom a group may be named, beside someone new
    listed = run_script("unknowns.py", *sface_model_args(), "--embeddings", str(server.embeddings), "list", "--json")
    assert listed.returncode == 0, listed.stderr
    from_script = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [{k: v for k, v in group.items() if k != "crops"} for group in answer["groups"]] == from_script
    assert len(from_script) >= 2 and all(group["cameras"] == ["stage"] for group in from_script)
    stored = stored_groups(server.embeddings)
    for group in answer["groups"]:
        assert group["crops"] == len(stored[group["group"]])
        for number, face in enumerate(stored[group["group"]]):
            status, data, response = server.request("GET", f"/api/unknowns/{group['group']}/faces/{number}")
            assert status == 200 and data == face.jpeg and response.getheader("content-type") == "image/jpeg"
    status, page, _ = server.request("GET", "/unknown")
    assert status == 200 and b"unknown.js" in page


def test_the_tab_searches_by_photo_as_unknowns_py_does(server):
    status, answer, _ = server.request("POST", "/api/unknowns/search", probe_photo())
    assert status == 200, answer
    assert answer["found"] and answer["found"][0]["group"] == lin_group(server)
    searched = run_script("unknowns.py", *sface_model_args(), "--embeddings", str(server.embeddings), "search",
                          str(shared_path("faces/probe/lin-manuel-miranda.png")), "--json")
    assert searched.returncode == 0, searched.stderr
    assert answer["found"] == json.loads(searched.stdout)
    _, blank = cv2.imencode(".png", np.full((120, 120, 3), 128, np.uint8))
    status, refused, _ = server.request("POST", "/api/unknowns/search", blank.tobytes())
    assert status == 400 and "no face" in refused["error"]


@pytest.mark.parametrize("path", ["/api/unknowns/1/faces/5", "/api/unknowns/424242/faces/0",
                                  "/api/unknowns/99999999999999999999999/faces/0", "/api/unknowns/1/faces/-1",
                                  "/api/unknowns/..%2F..%2Fembeddings.pickle/faces/0",
                                  "/api/unknowns/1/faces/..%2F..%2Fembeddings.pickle"])
def test_a_crop_is_only_ever_one_the_store_holds(server, path):
    status, answer, _ = server.request("GET", path)
    assert status == 404 and "error" in answer


def test_actions_refuse_what_is_not_a_group_and_writes_from_another_site(server):
    before = groups_of(server)
    group = before["groups"][0]["group"]
    assert server.json("POST", "/api/unknowns/424242/ignore")[0] == 404
    assert server.json("DELETE", "/api/unknowns/424242")[0] == 404
    assert server.json("POST", f"/api/unknowns/{group}/merge", {"other": group})[0] == 400
    assert server.json("POST", f"/api/unknowns/{group}/merge", {"other": "2"})[0] == 400
    assert server.json("POST", f"/api/unknowns/{group}/merge", {"other": 424242})[0] == 404
    assert server.json("POST", f"/api/unknowns/{group}/name", {"name": "x"})[0] == 400
    status, answer = server.json("POST", f"/api/unknowns/{group}/name", {"person": "../escape"})
    assert status == 400 and "folder name" in answer["error"]
    status, _, _ = server.request("POST", f"/api/unknowns/{group}/ignore", headers={"Origin": "http://evil.example"})
    assert status == 403
    assert groups_of(server) == before and not (server.dataset.parent / "escape").exists()


def test_ignore_merge_and_forget_change_the_groups_as_the_store_does(server):
    groups = [group["group"] for group in groups_of(server)["groups"]]
    lin = lin_group(server)
    others = [group for group in groups if group != lin]
    assert len(others) >= 2, groups  # the audience
    faces = {group["group"]: group["faces"] for group in groups_of(server)["groups"]}
    status, answer = server.json("POST", f"/api/unknowns/{others[0]}/merge", {"other": others[1]})
    assert status == 200 and answer == {"merged": others[1], "into": others[0]}
    after = {group["group"]: group["faces"] for group in groups_of(server)["groups"]}
    assert others[1] not in after and after[others[0]] == faces[others[0]] + faces[others[1]]
    status, answer = server.json("DELETE", f"/api/unknowns/{others[0]}")
    assert status == 200 and answer == {"forgotten": others[0], "faces": after[others[0]]}
    assert others[0] not in stored_groups(server.embeddings)
    for group in others[2:]:
        status, answer = server.json("POST", f"/api/unknowns/{group}/ignore")
        assert status == 200 and answer == {"ignored": group}
    assert [group["group"] for group in groups_of(server)["groups"]] == [lin]


def test_a_pages_camera_is_kept_too_when_the_page_goes(server):
    from websockets.sync.client import connect

    from facerec.web.protocol import pack_frame

    tracks = sum(group["tracks"] for group in groups_of(server)["groups"])
    with connect(server.ws_url(), max_size=None) as ws:
        for number in range(3):
            ws.send(pack_frame(number, probe_photo()))
            assert [face["name"] for face in json.loads(ws.recv(timeout=WAIT_SECONDS))["faces"]] == ["Unknown"]
    deadline = time.monotonic() + WAIT_SECONDS
    while sum(group["tracks"] for group in groups_of(server)["groups"]) == tracks and time.monotonic() < deadline:
        time.sleep(0.2)  # kept off the loop, once the page closed
    groups = groups_of(server)["groups"]
    assert sum(group["tracks"] for group in groups) == tracks + 1
    assert any("page 127.0.0.1" in group["cameras"] for group in groups)


def test_without_keep_unknowns_the_server_keeps_nothing_and_says_how(tmp_path):
    dataset, embeddings = enrolled(tmp_path)
    running = Server(dataset, embeddings)
    try:
        status, answer, _ = running.request("GET", "/api/unknowns")
        assert status == 404 and "--keep-unknowns" in answer["error"]
        assert running.json("POST", "/api/unknowns/1/ignore")[0] == 404
    finally:
        running.stop()
    assert not (tmp_path / "embeddings.pickle.unknowns").exists()


def test_the_servers_source_keeps_its_unknown_tracks_under_its_camera_name(tmp_path):
    dataset, embeddings = enrolled(tmp_path)
    video = write_frames(tmp_path / "lin.avi", LIN_SHOT)  # played at 30 fps, from the start again at its end
    running = Server(dataset, embeddings, "--keep-unknowns", "--source", str(video), "--camera", "door")
    try:
        deadline = time.monotonic() + WAIT_SECONDS
        while not groups_of(running)["groups"] and time.monotonic() < deadline:
            time.sleep(1)  # no page watches: the source runs for the keeper anyway
        groups = groups_of(running)["groups"]
        assert groups and all(group["cameras"] == ["door"] for group in groups)
        for group in groups:  # a file: each group is placed in it (its 30 frames at 30 fps), not live
            [span] = group["videos"]
            assert span["file"] == "lin.avi" and 0 <= span["first"] < span["last"] <= round(29 / 30, 3) and not group["live"]
    finally:
        running.stop()


def test_a_track_still_in_view_of_the_source_when_the_server_stops_is_kept(tmp_path):
    dataset, embeddings = enrolled(tmp_path)
    video = tmp_path / "still.avi"  # Lin, still, for a minute: one track that has not ended when the server stops
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 30, (640, 360))
    frame = next(clip_frames([100]))
    for _ in range(1800):
        writer.write(frame)
    writer.release()
    running = Server(dataset, embeddings, "--keep-unknowns", "--source", str(video), "--camera", "door")
    try:
        connection = http.client.HTTPConnection(running.host, running.port, timeout=WAIT_SECONDS)
        connection.request("GET", "/video")
        assert b"image/jpeg" in connection.getresponse().read(200)  # the source has recognised a frame
        connection.close()
        assert groups_of(running)["groups"] == []  # its track goes on
    finally:
        running.stop()
    groups = stored_groups(embeddings)
    assert len(groups) == 1 and len(next(iter(groups.values()))) >= 1


# the tab in a real browser -----------------------------------------------------------------------------------

def test_naming_a_group_from_the_unknown_tab_names_that_person_from_then_on(tmp_path):
    from selenium.webdriver.common.by import By

    dataset, embeddings = kept(tmp_path, LIN_SHOT)
    running = Server(dataset, embeddings, "--keep-unknowns")
    driver = browser(tmp_path)
    try:
        [group] = [group["group"] for group in groups_of(running)["groups"]]
        driver.get(running.url.split("?")[0].rstrip("/") + "/unknown")
        wait_for(driver, lambda d: d.find_elements(By.ID, f"group-{group}"), "the group shown")
        card = driver.find_element(By.ID, f"group-{group}")
        wait_for(driver, lambda d: all(img.get_property("naturalWidth") > 0
                                       for img in card.find_elements(By.TAG_NAME, "img")), "its crops shown")
        assert len(card.find_elements(By.TAG_NAME, "img")) == groups_of(running)["groups"][0]["crops"]
        assert "stage" in card.text and "1 track" in card.text
        offered = [option.get_attribute("value") for option in driver.find_elements(By.CSS_SELECTOR, "#people-list option")]
        assert offered == ["biden", "obama"]
        screenshot(driver, "web_unknown.png")
        assert not card.find_elements(By.CLASS_NAME, "looks-like-button")  # Lin looks like nobody enrolled
        driver.find_element(By.ID, "search-photo").send_keys(str(shared_path("faces/probe/lin-manuel-miranda.png")))
        driver.find_element(By.CSS_SELECTOR, "#search-form button").click()  # have I seen him before?
        wait_for(driver, lambda d: f"seen before: group {group} (" in d.find_element(By.ID, "unknown-message").text,
                 "the search answered")
        assert "found" in card.get_attribute("class").split()
        card.find_element(By.CLASS_NAME, "person").send_keys("lin")
        card.find_element(By.CSS_SELECTOR, ".name-form button").click()
        driver.switch_to.alert.dismiss()  # cancelled: nothing happens
        assert not (dataset / "lin").exists() and groups_of(running)["groups"]
        card.find_element(By.CSS_SELECTOR, ".name-form button").click()
        driver.switch_to.alert.accept()
        wait_for(driver, lambda d: f"group {group} is now lin" in d.find_element(By.ID, "unknown-message").text,
                 "the group named")
        wait_for(driver, lambda d: not d.find_elements(By.ID, f"group-{group}"), "the group gone from the tab")
        assert sorted(path.name for path in (dataset / "lin").iterdir())[0] == f"unknown-{group}-1.jpg"
        status, record, _ = running.request("POST", "/api/recognize", probe_photo())
        assert status == 200 and record["faces"][0]["name"] == "lin"  # learned: named without a restart
        assert groups_of(running)["people"] == ["biden", "lin", "obama"]
    finally:
        driver.quit()
        running.stop()

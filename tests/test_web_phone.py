"""Issue 36: every page on a phone (360 and 420 px wide: no horizontal scroll, the buttons inside the screen) and
the Unknown tab as a review tool (local, relative times; the most recently seen first; a filter by camera; Forget
apart and saying how many faces it deletes; merge's direction written out; crops that enlarge; a video file's
groups placed in the file instead; dark crops shown brightened), in Debian's chromium.

Screenshots of each page at phone and desktop width: FACEREC_SCREENSHOTS=DIR writes them there
(FACEREC_SCREENSHOTS=docs/images makes docs/web.md's); a normal run writes none.
"""

from __future__ import annotations

import re
import time

import cv2
import numpy as np
import pytest

from conftest import shared_path
from helpers import CLIP
from test_web_browser import browser, screenshot, wait_for
from test_web_unknowns import AUDIENCE, LIN_SHOT, groups_of, kept
from unknown_faces import PHOTOS, track
from web_server import Server

from facerec.unknowns import open_unknowns
from facerec.unknowns.review import span_text
from facerec.unknowns.store import VideoSpan

DARK = range(40, 82)  # two heads in the dark, kept (YuNet finds a face in them at 0.8), nearly black
PHONE_WIDTHS = (360, 420)
DESKTOP = (1280, 900)
PAGES = {"live": "/", "gallery": "/gallery", "unknown": "/unknown"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("web_phone")
    # a video file's groups, camera "stage": the dark heads before Lin's shot (DARK), Lin, the audience
    dataset, embeddings = kept(root, [*DARK, *LIN_SHOT, *AUDIENCE])
    with open_unknowns(embeddings, "sface") as store:  # and one a live camera saw just now
        store.add(track(PHOTOS["kit"][:1], 1, time.time() + 2, camera="door"))  # after the file's, to the second
    running = Server(dataset, embeddings, "--keep-unknowns")
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    chromium = browser(tmp_path_factory.mktemp("phone_browser"))
    try:
        yield chromium
    finally:
        chromium.quit()


def sized(driver, width: int, height: int = 800) -> None:
    """The window's inner width made `width`: headless chromium starts at least 500 px wide whatever
    --window-size says, so the size is set after start, then corrected by the window's frame."""
    driver.set_window_size(width, height)
    inner = driver.execute_script("return window.innerWidth")
    driver.set_window_size(width + (width - inner), height)
    assert driver.execute_script("return window.innerWidth") == width


def page(driver, server, name: str):
    from selenium.webdriver.common.by import By

    driver.get(server.url.split("?")[0].rstrip("/") + PAGES[name] + "?" + server.url.split("?")[1]
               if "?" in server.url else server.url.rstrip("/") + PAGES[name])
    if name == "unknown":
        wait_for(driver, lambda d: d.find_elements(By.CSS_SELECTOR, ".group img") and all(
            img.get_property("naturalWidth") > 0 for img in d.find_elements(By.CSS_SELECTOR, ".group img")),
            "the groups and their crops shown")
    if name == "gallery":
        wait_for(driver, lambda d: d.find_elements(By.CSS_SELECTOR, ".person"), "the people shown")


def overflow(driver) -> dict:
    """How wide the document is against the window, and the buttons, inputs and selects not inside it."""
    return driver.execute_script("""
        const width = window.innerWidth;
        const outside = [...document.querySelectorAll("button, input, select, img")]
          .filter((e) => e.offsetParent !== null)
          .map((e) => [e, e.getBoundingClientRect()])
          .filter(([e, r]) => r.left < 0 || r.right > width + 0.5)
          .map(([e, r]) => `${e.tagName}.${e.className}#${e.id} ${Math.round(r.left)}..${Math.round(r.right)}`);
        return {window: width, document: document.documentElement.scrollWidth, outside};
    """)


@pytest.mark.parametrize("name", list(PAGES))
def test_every_page_fits_a_phone_without_scrolling_sideways(server, driver, name):
    for width in PHONE_WIDTHS:
        sized(driver, width)
        page(driver, server, name)
        measured = overflow(driver)
        assert measured["document"] <= measured["window"] == width, measured
        assert not measured["outside"], measured
    screenshot(driver, f"web_{name}_phone.png")
    sized(driver, *DESKTOP)
    page(driver, server, name)
    assert overflow(driver)["document"] <= DESKTOP[0]
    screenshot(driver, f"web_{name}_desktop.png")


def test_the_cameras_of_a_service_fit_a_phone(server, driver, tmp_path):
    """serve.py --config with two cameras: the Live page shows a captioned view of each, inside a phone's screen."""
    from selenium.webdriver.common.by import By

    config = tmp_path / "facerec.toml"
    clip = str(shared_path(CLIP)).replace("\\", "\\\\")
    config.write_text(f'[cameras.door]\nsource = "{clip}"\n[cameras.lab]\nsource = "{clip}"\n', encoding="utf-8")
    service = Server(server.dataset, server.embeddings, "--config", str(config))
    try:
        for width in PHONE_WIDTHS:
            sized(driver, width)
            driver.get(service.url)
            wait_for(driver, lambda d: [h.text.split(":")[0] for h in d.find_elements(By.CSS_SELECTOR,
                                                                                        "#server-source h3")]
                     == ["door", "lab"], "a captioned view of each camera")
            wait_for(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#server-source img")) == 2,
                     "an image of each camera")
            measured = overflow(driver)
            assert measured["document"] <= measured["window"] == width, measured
            assert not measured["outside"], measured
        screenshot(driver, "web_cameras_phone.png")
    finally:
        service.stop()


def test_the_name_button_is_inside_a_phones_screen(server, driver):
    from selenium.webdriver.common.by import By

    sized(driver, 360)
    page(driver, server, "unknown")
    for button in driver.find_elements(By.CSS_SELECTOR, ".name-form button"):
        box = button.rect
        assert box["x"] >= 0 and box["x"] + box["width"] <= 360 and box["width"] > 20, box


def test_the_unknown_tab_reads_as_a_review_tool(server, driver):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    sized(driver, *DESKTOP)
    page(driver, server, "unknown")
    groups = groups_of(server)["groups"]
    assert len(groups) >= 2
    cards = driver.find_elements(By.CSS_SELECTOR, ".group")
    # the most recently seen first (the API lists the largest first)
    by_last_seen = sorted(groups, key=lambda group: (group["last_seen"], -group["group"]), reverse=True)
    assert [card.get_attribute("id") for card in cards] == [f"group-{group['group']}" for group in by_last_seen]
    # a live camera's group (the door's, seen last): when, in the browser's time zone and relative
    assert by_last_seen[0]["cameras"] == ["door"] and by_last_seen[0]["live"] and not by_last_seen[0]["videos"]
    counts = cards[0].find_element(By.CLASS_NAME, "counts").text
    assert "T" not in counts.split("·")[1] and "Z" not in counts  # not the raw UTC string
    assert re.search(r"last seen .+\((just now|\d+ (min|h|d) ago)\)", counts), counts
    # the browser's own time zone: the page's hour is the one JavaScript's Date gives for that time
    local = driver.execute_script("return new Date(arguments[0]).toLocaleTimeString([], "
                                  "{hour: '2-digit', minute: '2-digit'})", by_last_seen[0]["last_seen"])
    assert f"last seen {local}" in counts
    # a video file's groups: where in the file (as unknowns.py list says it), not when it was processed
    for group, card in zip(by_last_seen[1:], cards[1:]):
        [span] = group["videos"]
        assert span["file"] == "frames.avi" and not group["live"]
        text = card.find_element(By.CLASS_NAME, "counts").text
        assert f"seen in {span_text(VideoSpan(**span))}" in text and "last seen" not in text, text
    # the camera filter: the cameras groups were seen by, then a camera no group was seen by is impossible to choose
    cameras = [option.get_attribute("value") for option in driver.find_elements(By.CSS_SELECTOR, "#camera-filter option")]
    assert cameras == ["", "door", "stage"]
    Select(driver.find_element(By.ID, "camera-filter")).select_by_value("stage")
    wait_for(driver, lambda d: "seen by stage" in d.find_element(By.ID, "unknown-summary").text, "the filter applied")
    assert len(driver.find_elements(By.CSS_SELECTOR, ".group")) == len(groups) - 1
    Select(driver.find_element(By.ID, "camera-filter")).select_by_value("")
    wait_for(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, ".group")) == len(groups), "the filter lifted")
    # Forget: red, apart from Ignore, and its question says how many faces go
    card = driver.find_elements(By.CSS_SELECTOR, ".group")[0]
    group = by_last_seen[0]
    ignore, forget = card.find_element(By.CLASS_NAME, "ignore"), card.find_element(By.CLASS_NAME, "forget")
    assert forget.value_of_css_property("background-color") == "rgba(198, 40, 40, 1)"
    assert forget.rect["x"] - (ignore.rect["x"] + ignore.rect["width"]) > 100  # at the far end of the card
    forget.click()
    alert = driver.switch_to.alert
    assert f"Its {group['faces']} face{'s' if group['faces'] != 1 else ''} " in alert.text and "for good" in alert.text
    alert.dismiss()
    # merge: the button says which group's faces go where
    other = by_last_seen[1]["group"]
    Select(card.find_element(By.CLASS_NAME, "merge-with")).select_by_value(str(other))
    assert card.find_element(By.CLASS_NAME, "merge-button").text == \
        f"Move group {other}'s faces into group {group['group']}"
    card.find_element(By.CLASS_NAME, "merge-button").click()
    assert driver.switch_to.alert.text.startswith(f"Move group {other}'s faces into group {group['group']}?")
    driver.switch_to.alert.dismiss()
    assert len(groups_of(server)["groups"]) == len(groups)  # both cancelled: nothing changed
    # a crop enlarges on click, and shrinks again
    crop = card.find_element(By.CSS_SELECTOR, ".crops img")
    small = crop.rect["width"]
    crop.click()
    assert crop.rect["width"] > 3 * small
    crop.click()
    assert crop.rect["width"] == small


def luminance_p95(jpeg: bytes) -> float:
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_GRAYSCALE)
    return float(np.percentile(image, 95))


def test_a_dark_crop_is_shown_brightened_and_says_so(server, driver):
    """The clip's dark audience: crops YuNet finds a face in at 0.8 (so kept), nearly black as they are."""
    from selenium.webdriver.common.by import By

    sized(driver, *DESKTOP)
    page(driver, server, "unknown")
    wait_for(driver, lambda d: all(img.get_property("complete") for img in d.find_elements(By.CSS_SELECTOR, ".group img")),
             "every crop loaded")
    dark = bright = 0
    for img in driver.find_elements(By.CSS_SELECTOR, ".group img"):
        path = img.get_attribute("src").split("//", 1)[1].split("/", 1)[1]
        status, body, _ = server.request("GET", "/" + path.split("?")[0], raw=True)
        assert status == 200
        level = luminance_p95(body)
        brightened = "brightened" in img.get_attribute("class").split()
        if level < 50:  # clearly dark (the page's own line is 64, measured on a 64 px copy)
            dark += 1
            assert brightened and "brightness(" in img.value_of_css_property("filter"), level
            assert "brightened" in img.get_attribute("title")
        elif level > 80:
            bright += 1
            assert not brightened and img.value_of_css_property("filter") == "none", level
    assert dark and bright  # the clip has both
    screenshot(driver, "web_unknown_dark.png")

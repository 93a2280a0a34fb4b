"""The web page in a real browser: Debian's chromium, driven by Selenium, with a fake camera made from our photos.

The fake camera is a y4m video (a still photo repeated) that chromium plays in a loop as if it were a webcam.
obama's still must be named obama on the page, lin's Unknown; enrolling lin from the page (name, photos, Learn)
must make the page name him without restarting the server. Set FACEREC_SCREENSHOTS=DIR to keep screenshots.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import require, shared_path
from web_server import serving

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CAMERA_SIZE = (640, 480)
CAMERA_FPS = 10
WAIT_SECONDS = 180  # a busy shared machine


def write_y4m(path: Path, picture: np.ndarray, frames: int = CAMERA_FPS) -> Path:
    """A y4m video (YUV 4:2:0, the format chromium's fake camera reads) of `picture` letterboxed to CAMERA_SIZE."""
    width, height = CAMERA_SIZE
    scale = min(width / picture.shape[1], height / picture.shape[0])
    resized = cv2.resize(picture, (round(picture.shape[1] * scale) // 2 * 2, round(picture.shape[0] * scale) // 2 * 2))
    canvas = np.full((height, width, 3), 40, np.uint8)
    top, left = (height - resized.shape[0]) // 2, (width - resized.shape[1]) // 2
    canvas[top:top + resized.shape[0], left:left + resized.shape[1]] = resized
    planes = cv2.cvtColor(canvas, cv2.COLOR_BGR2YUV_I420).tobytes()
    with open(path, "wb") as handle:
        handle.write(f"YUV4MPEG2 W{width} H{height} F{CAMERA_FPS}:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            handle.write(b"FRAME\n" + planes)
    return path


def browser(tmp_path: Path, camera: Path | None = None, deny: bool = False):
    """Headless chromium; with `camera`, a fake webcam playing that y4m; `deny` refuses camera permission."""
    require(Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists(),
            "chromium and chromedriver are missing: apt-get install chromium chromium-driver")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        require(False, "selenium is missing: pip install -r requirements-dev.txt")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tmp_path / f"chromium-profile-{len(list(tmp_path.glob('chromium-profile-*')))}"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--no-first-run",
                 "--window-size=1400,1000", f"--user-data-dir={profile}"):
        options.add_argument(flag)
    if deny:
        options.add_argument("--deny-permission-prompts")
    else:
        options.add_argument("--use-fake-ui-for-media-stream")
    if camera is not None:
        options.add_argument("--use-fake-device-for-media-stream")
        options.add_argument(f"--use-file-for-fake-video-capture={camera.resolve()}")
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def names(label: str, name: str) -> bool:
    """Whether a face's label on the page, `#track name: distance`, gives `name`."""
    return re.fullmatch(rf"#\d+ {re.escape(name)}: \d+\.\d\d", label) is not None


def text_of(driver, element_id: str) -> str:
    from selenium.webdriver.common.by import By
    return driver.find_element(By.ID, element_id).text


def wait_for(driver, condition, what: str):
    from selenium.webdriver.support.ui import WebDriverWait
    return WebDriverWait(driver, WAIT_SECONDS, poll_frequency=0.2).until(lambda d: condition(d), message=what)


def screenshot(driver, name: str) -> None:
    folder = os.environ.get("FACEREC_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(folder) / name))


def labels(driver) -> list[str]:
    """The faces' labels in the "In view" list (without the buttons beside them)."""
    from selenium.webdriver.common.by import By
    return [element.text for element in driver.find_elements(By.CSS_SELECTOR, "#faces li .label") if element.text]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with serving(tmp_path_factory.mktemp("web_browser")) as running:
        yield running


@pytest.fixture
def camera(tmp_path):
    def make(asset: str) -> Path:
        return write_y4m(tmp_path / (Path(asset).stem + ".y4m"), cv2.imread(str(shared_path(asset))))
    return make


def test_the_y4m_camera_file_is_a_video_opencv_reads_back(tmp_path, camera):
    """The fake camera's file is a real video: OpenCV (through FFmpeg) reads the same picture back."""
    path = camera("faces/known/obama/obama.jpg")
    capture = cv2.VideoCapture(str(path))
    ok, frame = capture.read()
    capture.release()
    assert ok, "OpenCV cannot read the y4m file back"
    assert frame.shape[:2] == (CAMERA_SIZE[1], CAMERA_SIZE[0])
    assert frame[0, 0].tolist() == pytest.approx([40, 40, 40], abs=3)


def test_live_page_names_obama_from_the_browser_camera(server, camera, tmp_path):
    driver = browser(tmp_path, camera("faces/known/obama/obama.jpg"))
    try:
        driver.get(server.url)
        wait_for(driver, lambda d: any(names(label, "obama") for label in labels(d)), "obama named")
        assert names(labels(driver)[0], "obama") and len(labels(driver)) == 1
        distance = float(labels(driver)[0].split(": ")[1])
        assert 0 <= distance < 0.9  # the sface threshold: a name is given below it
        assert text_of(driver, "fps").endswith("fps") and text_of(driver, "rtt").endswith("ms")
        assert text_of(driver, "connection") == "connected"
        screenshot(driver, "web_live.png")
    finally:
        driver.quit()


def test_enrolling_lin_from_the_page_names_him_without_a_restart(server, camera, tmp_path):
    from selenium.webdriver.common.by import By
    driver = browser(tmp_path, camera("faces/probe/lin-manuel-miranda.png"))
    try:
        driver.get(server.url)
        wait_for(driver, lambda d: labels(d) and names(labels(d)[0], "Unknown"), "lin Unknown")
        driver.find_element(By.ID, "name").send_keys("lin")
        driver.find_element(By.ID, "start").click()
        wait_for(driver, lambda d: "enrolling lin" in text_of(d, "enrol-message"), "the enrolment held")
        for count in (1, 2):
            driver.find_element(By.ID, "take").click()
            wait_for(driver, lambda d: text_of(d, "photo-count") == f"{count} photo{'s' if count > 1 else ''}",
                     f"photo {count} saved")
        assert sorted(os.listdir(server.dataset / "lin")) == ["0001.jpg", "0002.jpg"]
        driver.find_element(By.ID, "learn").click()
        wait_for(driver, lambda d: text_of(d, "enrol-message").startswith("done"), "learning done")
        wait_for(driver, lambda d: labels(d) and names(labels(d)[0], "lin"), "lin named")
        screenshot(driver, "web_enrolled.png")

        driver.get(server.url.split("?")[0].rstrip("/") + "/gallery")
        wait_for(driver, lambda d: d.find_elements(By.ID, "person-lin"), "lin in the gallery")
        card = driver.find_element(By.ID, "person-lin")
        assert "2 used, 0 skipped" in card.text
        screenshot(driver, "web_gallery.png")
        # delete one of lin's photos: cancelling the confirmation keeps it, accepting deletes it
        card.find_elements(By.CLASS_NAME, "delete-photo")[0].click()
        driver.switch_to.alert.dismiss()
        assert sorted(os.listdir(server.dataset / "lin")) == ["0001.jpg", "0002.jpg"]
        card.find_elements(By.CLASS_NAME, "delete-photo")[0].click()
        driver.switch_to.alert.accept()
        wait_for(driver, lambda d: "1 used, 0 skipped" in d.find_element(By.ID, "person-lin").text, "photo deleted")
        assert os.listdir(server.dataset / "lin") == ["0002.jpg"]
    finally:
        driver.quit()


@pytest.mark.parametrize("deny, message", [(False, "No camera was found"), (True, "The browser refused the camera")])
def test_no_camera_or_a_refused_one_gives_a_clear_message(server, camera, tmp_path, deny, message):
    """No camera at all; or a camera whose permission the browser denies."""
    driver = browser(tmp_path, camera("faces/known/obama/obama.jpg") if deny else None, deny=deny)
    try:
        driver.get(server.url)
        wait_for(driver, lambda d: text_of(d, "message"), "a message about the camera")
        assert message in text_of(driver, "message")
    finally:
        driver.quit()

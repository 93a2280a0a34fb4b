"""imagecapture.py and facerec.capture: safe names, numbered photos that never overwrite, the capture loop,
and the script in a real window (Xvfb) driven with real key presses (xdotool)."""

from __future__ import annotations

import itertools
import os
import queue
import select
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import PROJECT_ROOT, require, run_script, shared_path
from facerec.capture import (CaptureSummary, check_person_name, encode_photo, next_photo_number, person_folder,
                             run_capture, save_photo)
from facerec.catalogue import DEFAULT_PROFILE, PROFILES
from facerec.detection import DetectedFace, load_detector
from facerec.display import KEY_ESC, KEY_SPACE
from facerec.errors import FacerecError
from facerec.modelfiles import network_files
from helpers import CLIP, CLIP_SIZE, assert_clean_failure

WINDOW_TITLE = "facerec capture"
ONE_FACE = [DetectedFace((10, 10, 60, 70), 0.9)]
TWO_FACES = [DetectedFace((10, 10, 60, 70), 0.9), DetectedFace((80, 10, 130, 70), 0.8)]


# names --------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["alice", "Bob Smith", "José Núñez", "李雷", "o'brien", "a.b", "x" * 255])
def test_plain_names_are_accepted(name):
    assert check_person_name(name) == name


@pytest.mark.parametrize("name, why", [
    ("", "empty"),
    (".", "dot"),
    ("..", "dot"),
    (".hidden", "dot"),
    ("a/b", "separator"),
    ("../escape", "dot"),
    ("a\\b", "separator"),
    ("/etc", "separator"),
    ("tab\there", "control character"),
    ("new\nline", "control character"),
    ("nul\0", "control character"),
    (" alice", "space"),
    ("alice ", "space"),
    ("é" * 200, "longer than 255 bytes"),
])
def test_names_that_are_not_a_plain_folder_are_refused_with_the_reason(name, why):
    with pytest.raises(FacerecError, match=why):
        check_person_name(name)


def test_a_dataset_or_person_path_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(FacerecError, match="not a folder"):
        person_folder(tmp_path / "file", "alice")
    (tmp_path / "dataset").mkdir()
    (tmp_path / "dataset" / "alice").write_text("x")
    with pytest.raises(FacerecError, match="not a folder"):
        person_folder(tmp_path / "dataset", "alice")
    assert person_folder(tmp_path / "new", "bob") == tmp_path / "new" / "bob"


# numbering and saving -----------------------------------------------------------------------

def test_numbers_continue_after_the_highest_numbered_photo(tmp_path):
    assert next_photo_number(tmp_path / "missing") == 1
    for name in ["0001.jpg", "0007.png", "12.jpg", "img1.jpg", "notes.txt", ".0099.jpg.x.tmp", "0100"]:
        (tmp_path / name).write_bytes(b"")
    assert next_photo_number(tmp_path) == 13


def test_a_saved_photo_never_replaces_a_file_even_one_that_appears_meanwhile(tmp_path, monkeypatch):
    folder = tmp_path / "alice"
    image = np.full((48, 64, 3), 128, np.uint8)
    data = encode_photo(image, "png")
    first = save_photo(folder, data, "png")
    assert first == folder / "0001.png"
    assert np.array_equal(cv2.imread(str(first)), image)  # png is lossless
    # another process took 0002 and 0003 between our look at the folder and our write
    (folder / "0002.png").write_bytes(b"theirs")
    (folder / "0003.png").write_bytes(b"theirs too")
    monkeypatch.setattr("facerec.capture.next_photo_number", lambda _folder: 2)
    assert save_photo(folder, data, "png") == folder / "0004.png"
    assert (folder / "0002.png").read_bytes() == b"theirs"
    assert (folder / "0003.png").read_bytes() == b"theirs too"


def test_a_folder_that_cannot_be_written_is_a_clear_error(tmp_path):
    (tmp_path / "blocked").write_text("a file where the dataset should be")
    with pytest.raises(FacerecError, match="cannot save a photo in"):
        save_photo(tmp_path / "blocked" / "alice", b"data")


# the capture loop with a scripted screen ----------------------------------------------------

class FakeClock:
    """time.monotonic for the capture loop, moved only by what takes time in it: detection and the window's wait."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class ScriptedScreen:
    """A Window stand-in: returns the given key for each shown frame and keeps what it was shown (and when, on a
    FakeClock, which it moves on by each wait as a real window's waitKey takes it).

    The real window (facerec.display.Window, OpenCV's highgui on Xvfb, driven by real key presses with the real
    detector) is covered at the end of this file: test_space_twice_and_esc_in_a_real_window_saves_two_photos_*
    and test_a_frame_without_a_face_is_not_saved_and_a_video_that_ends_stops_cleanly."""

    def __init__(self, keys, clock: FakeClock | None = None):
        self.keys = list(keys)
        self.shown = []
        self.waits = []
        self.shown_at = []
        self.closed = False
        self.clock = clock

    def show(self, frame, wait_ms=1):
        self.shown.append(frame.copy())
        self.waits.append(wait_ms)
        if self.clock is not None:
            self.shown_at.append(self.clock.now)
            self.clock.now += wait_ms / 1000
        return self.keys.pop(0) if self.keys else None


class CannedDetector:
    """Finds the faces a frame's first pixel says: 0, 1 or 2 (taking `seconds` of a FakeClock to do it).

    The real detectors on real photos and the clip: test_detection.py, test_sface.py, test_model_loading.py."""

    def __init__(self, clock: FakeClock | None = None, seconds: float = 0.0):
        self.clock, self.seconds = clock, seconds

    def detect(self, image):
        if self.clock is not None:
            self.clock.now += self.seconds
        return [[], ONE_FACE, TWO_FACES][int(image[0, 0, 0]) % 3]


def frames_with(*face_counts):
    """Frames of random texture whose first pixel tells CannedDetector how many faces they hold."""
    rng = np.random.default_rng(0)
    frames = []
    for count in face_counts:
        frame = rng.integers(0, 256, (90, 160, 3), dtype=np.uint8)
        frame[:8, :8] = count  # survives JPEG: a flat block
        frames.append(frame)
    return frames


def run(frames, keys, folder, clock: FakeClock | None = None, detect_seconds: float = 0.0, **options):
    screen = ScriptedScreen(keys, clock)
    summary = run_capture(frames, CannedDetector(clock, detect_seconds), screen, folder, "alice", photo_format="png",
                          **options)
    return summary, screen


def test_space_saves_only_frames_with_one_face_and_says_why_it_refuses(tmp_path, capsys):
    frames = frames_with(0, 1, 2, 1)
    summary, screen = run(frames, [KEY_SPACE] * 4, tmp_path / "alice")
    assert summary.saved == [tmp_path / "alice" / "0001.png", tmp_path / "alice" / "0002.png"]
    assert summary.refused == 2 and summary.ended_by == "end of video"
    # the photo is the frame as captured; the window showed it with the box and the counter drawn on
    assert np.array_equal(cv2.imread(str(summary.saved[0])), frames[1])
    assert not np.array_equal(screen.shown[1], frames[1])
    out, err = capsys.readouterr()
    assert out.splitlines() == [f"saved {path}" for path in summary.saved]
    assert err.splitlines() == ["not saved: no face found",
                                "not saved: 2 faces found: only the person should be in view"]


def test_the_refusal_stays_on_screen_for_a_moment(tmp_path, monkeypatch, capsys):
    clock = itertools.count(0, 0.25)  # the loop reads the clock twice a frame: half a second a frame
    monkeypatch.setattr("facerec.capture.time.monotonic", lambda: next(clock))
    frames = frames_with(*[0] * 6)
    _, screen = run(frames, [KEY_SPACE], tmp_path / "alice")
    with_message = [not np.array_equal(shown[-25:, :60], frame[-25:, :60]) for shown, frame in zip(screen.shown, frames)]
    assert with_message == [False, True, True, True, False, False]  # 1.5 s after the key


@pytest.mark.parametrize("keys, options, ended_by, saved, shown", [
    ([KEY_SPACE, None, KEY_SPACE, KEY_SPACE], {"count": 2}, "2 photos saved", 2, 3),
    ([KEY_SPACE, KEY_ESC, KEY_SPACE], {}, "quit by the user", 1, 2),
    ([None, ord("q")], {}, "quit by the user", 0, 2),
])
def test_count_or_a_quit_key_stops_the_capture(tmp_path, keys, options, ended_by, saved, shown, capsys):
    summary, screen = run(frames_with(*[1] * 5), keys, tmp_path / "alice", **options)
    assert (summary.ended_by, len(summary.saved), len(screen.shown)) == (ended_by, saved, shown)


@pytest.mark.parametrize("detect_ms, waits", [
    (30, [70] * 5),   # each frame waits out what is left of its 100 ms after detection
    (0, [100] * 5),
    (150, [1] * 5),   # detection slower than the file: no wait beyond the window's least
])
def test_a_file_is_shown_at_its_own_frame_rate_and_a_camera_as_it_comes(tmp_path, monkeypatch, detect_ms, waits):
    clock = FakeClock()
    monkeypatch.setattr("facerec.capture.time.monotonic", clock)
    _, screen = run(frames_with(*[1] * 5), [], tmp_path / "alice", clock, detect_ms / 1000, fps=10)
    assert screen.waits == waits
    if detect_ms <= 100:  # shown every tenth of a second of the clock, as the file plays
        assert np.diff(screen.shown_at) == pytest.approx([0.1] * 4)
    _, screen = run(frames_with(*[1] * 4), [], tmp_path / "alice", clock, detect_ms / 1000)
    assert screen.waits == [1] * 4  # a camera paces itself


def test_the_summary_says_how_many_where_and_what_next(tmp_path):
    summary = CaptureSummary(tmp_path / "ds" / "alice", saved=[tmp_path / "ds" / "alice" / "0001.jpg"] * 2,
                             refused=1, ended_by="quit by the user")
    assert summary.lines("python extract_embeddings.py") == [
        f"saved 2 photos in {tmp_path / 'ds' / 'alice'} (1 refused; stopped: quit by the user)",
        "next: python extract_embeddings.py"]
    assert len(CaptureSummary(tmp_path).lines("python x.py")) == 1  # nothing saved: nothing to run next
    one = CaptureSummary(tmp_path / "my photos" / "alice", saved=[tmp_path / "x.jpg"])
    assert one.lines("python x.py")[0].startswith("saved 1 photo in")


# the script: refusals before any window -----------------------------------------------------

@pytest.fixture(scope="module")
def detector_args():
    return ["--detector", str(shared_path("models"))]


def capture(*args):
    return run_script("imagecapture.py", *args, env={"DISPLAY": ""}, timeout=120)


@pytest.mark.parametrize("name, why", [
    ("", "it is empty"), ("..", "starts with a dot"), ("a/b", "path separator"), ("tab\there", "control character"),
])
def test_the_script_refuses_a_bad_name_before_opening_anything(tmp_path, name, why):
    # neither the source nor the detector folder exists: the name must be refused first
    result = capture("--name", name, "--dataset", str(tmp_path / "ds"), "--source", "/no/such.mp4",
                     "--detector", str(tmp_path / "no-models"))
    assert_clean_failure(result, "cannot be a folder name", why)
    assert not (tmp_path / "ds").exists()


@pytest.mark.parametrize("source, message", [
    ("/no/such/video.mp4", "'/no/such/video.mp4' is neither a camera index, an existing file nor a URL"),
    ("9", "cannot open camera '9'"),
])
def test_a_missing_source_is_exit_2_naming_it(tmp_path, detector_args, source, message):
    result = capture("--name", "tester", "--dataset", str(tmp_path / "ds"), "--source", source, *detector_args)
    assert_clean_failure(result, message)
    assert not (tmp_path / "ds").exists()


def test_an_unreadable_file_is_exit_2_naming_it(tmp_path, detector_args):
    text = tmp_path / "notes.mp4"
    text.write_text("not a video\n" * 100)
    result = capture("--name", "tester", "--dataset", str(tmp_path / "ds"), "--source", str(text), *detector_args)
    assert_clean_failure(result, str(text))


def test_count_must_be_positive():
    result = capture("--name", "tester", "--count", "0")
    assert result.returncode == 2 and "--count: 0 is out of range" in result.stderr


# the script in a real window ----------------------------------------------------------------

@pytest.fixture(scope="module")
def display():
    """A private X server (Xvfb on the first free display), its DISPLAY value; stopped afterwards."""
    for tool, package in (("Xvfb", "xvfb"), ("xdotool", "xdotool")):
        require(shutil.which(tool) is not None, f"{tool} is not installed (apt-get install {package}): no window to test")
    read_end, write_end = os.pipe()
    # -noreset: by default the server resets when its last client leaves, and refuses the next one meanwhile
    server = subprocess.Popen(["Xvfb", "-displayfd", str(write_end), "-screen", "0", "1280x720x24",
                               "-nolisten", "tcp", "-noreset"],
                              pass_fds=(write_end,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write_end)
    try:
        ready, _, _ = select.select([read_end], [], [], 30)
        number = os.read(read_end, 16).decode().strip() if ready else ""
        require(number.isdigit(), "Xvfb did not start: no window to test")
        yield f":{number}"
    finally:
        os.close(read_end)
        server.terminate()
        server.wait(timeout=10)


class CaptureWindow:
    """imagecapture.py running on `display`, its output lines collected as they come, keys sent with xdotool."""

    def __init__(self, display, *args):
        self.env = {**os.environ, "DISPLAY": display}
        self.process = subprocess.Popen([sys.executable, str(PROJECT_ROOT / "imagecapture.py"), *args],
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                        cwd=PROJECT_ROOT, env=self.env)
        self.lines: queue.Queue = queue.Queue()
        self.seen: list[str] = []
        self.open_streams = 2
        for stream in (self.process.stdout, self.process.stderr):
            threading.Thread(target=self._read, args=(stream,), daemon=True).start()
        self.window = self._find_window()

    def _read(self, stream):
        for line in stream:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def xdotool(self, *args, check=True):
        result = subprocess.run(["xdotool", *args], env=self.env, capture_output=True, text=True, timeout=60)
        if check:
            assert result.returncode == 0, f"xdotool {' '.join(args)}: {result.stderr}"
        return result

    def _find_window(self):
        deadline = time.monotonic() + 60  # python, OpenCV and the detector load slowly on a busy machine
        while time.monotonic() < deadline and self.process.poll() is None:
            found = self.xdotool("search", "--onlyvisible", "--name", WINDOW_TITLE, check=False).stdout.split()
            if found:
                return found[0]
            time.sleep(0.1)
        self.process.kill()
        pytest.fail(f"no capture window appeared: {self.finish()}")

    def press(self, key):
        self.xdotool("windowfocus", "--sync", self.window)
        self.xdotool("key", key)

    def next_line(self, timeout=60):
        """The next line on stdout or stderr, or None once both are closed."""
        while self.open_streams:
            line = self.lines.get(timeout=timeout)
            if line is not None:
                self.seen.append(line)
                return line
            self.open_streams -= 1
        return None

    def next_verdict(self):
        """The next `saved ...` or `not saved: ...` line, or None if the capture ended first."""
        while (line := self.next_line()) is not None and not line.startswith(("saved ", "not saved: ")):
            pass
        return line

    def save_one(self):
        """Press SPACE until a photo is saved (frames with no face or several are refused): its path."""
        while True:
            self.press("space")
            line = self.next_verdict()
            if line is None:
                pytest.fail(f"the capture ended before a photo was saved: {self.seen}")
            if line.startswith("saved "):
                return Path(line.removeprefix("saved "))
            time.sleep(0.2)  # another frame

    def finish(self):
        """Wait for the exit; everything it printed."""
        self.process.wait(timeout=60)
        while self.next_line(timeout=10) is not None:
            pass
        return "\n".join(self.seen)


@pytest.fixture
def start_capture(display):
    """Start imagecapture.py in a window: start_capture(*args) -> CaptureWindow; left-over ones are killed."""
    started = []

    def start(*args):
        started.append(CaptureWindow(display, *args))
        return started[-1]

    yield start
    for window in started:
        if window.process.poll() is None:
            window.process.kill()
            window.process.wait()


@pytest.fixture(scope="module")
def detector():
    network, paths = network_files(PROFILES[DEFAULT_PROFILE].detectors, shared_path("models"))
    return load_detector(network, paths)


def difference_to_closest_clip_frame(image):
    """Per pixel, the largest channel difference between `image` and the clip frame most like it."""
    capture = cv2.VideoCapture(str(shared_path(CLIP)))
    best, best_error = None, np.inf
    while (frame := capture.read()[1]) is not None:
        error = cv2.norm(frame, image, cv2.NORM_L1)
        if error < best_error:
            best, best_error = frame, error
    capture.release()
    return cv2.absdiff(best, image).max(axis=2)


def assert_a_photo_of_the_clip(path, detector, exact=False):
    image = cv2.imread(str(path))
    assert image is not None, f"{path} is not readable"
    assert (image.shape[1], image.shape[0]) == CLIP_SIZE
    assert len(detector.detect(image)) == 1
    difference = difference_to_closest_clip_frame(image)
    if exact:
        assert difference.max() == 0
    else:  # JPEG noise only: no box or text drawn on it (those differ by far more, over thousands of pixels)
        assert (difference > 60).sum() < 20


def test_space_twice_and_esc_in_a_real_window_saves_two_photos_then_a_session_continues(
        start_capture, detector_args, detector, tmp_path):
    dataset = tmp_path / "dataset"
    common = ["--source", str(shared_path(CLIP)), "--name", "tester", "--dataset", str(dataset), *detector_args]

    window = start_capture(*common)
    first = [window.save_one(), window.save_one()]
    geometry = window.xdotool("getwindowgeometry", window.window).stdout
    assert f"Geometry: {CLIP_SIZE[0]}x" in geometry  # the video is shown at its size (a toolbar adds height)
    window.press("Escape")
    output = window.finish()
    assert window.process.returncode == 0, output
    assert first == [dataset / "tester" / "0001.jpg", dataset / "tester" / "0002.jpg"]
    assert sorted((dataset / "tester").iterdir()) == first
    for path in first:
        assert_a_photo_of_the_clip(path, detector)
    assert f"saved 2 photos in {dataset / 'tester'}" in output and "stopped: quit by the user" in output
    assert (f"next: python {PROJECT_ROOT / 'extract_embeddings.py'} --dataset {dataset} "
            f"--detector {shared_path('models')}") in output
    before = {path: path.read_bytes() for path in first}

    # a second session: one photo, lossless this time, and --count ends it
    window = start_capture(*common, "--count", "1", "--format", "png")
    third = window.save_one()
    output = window.finish()
    assert window.process.returncode == 0, output
    assert third == dataset / "tester" / "0003.png"
    assert sorted((dataset / "tester").iterdir()) == [*first, third]
    assert {path: path.read_bytes() for path in first} == before
    assert_a_photo_of_the_clip(third, detector, exact=True)
    assert "saved 1 photo in" in output and "stopped: 1 photo saved" in output


def test_a_frame_without_a_face_is_not_saved_and_a_video_that_ends_stops_cleanly(start_capture, detector_args, tmp_path):
    blank = tmp_path / "blank.avi"
    writer = cv2.VideoWriter(str(blank), cv2.VideoWriter_fourcc(*"MJPG"), 2, (320, 240))
    for _ in range(8):  # 4 s at 2 fps: time to press a key before it ends
        writer.write(np.full((240, 320, 3), 200, np.uint8))
    writer.release()
    dataset = tmp_path / "dataset"

    window = start_capture("--source", str(blank), "--name", "tester", "--dataset", str(dataset),
                           *detector_args)
    window.press("space")
    assert window.next_verdict() == "not saved: no face found"
    output = window.finish()
    assert window.process.returncode == 0, output
    assert "saved 0 photos" in output and "stopped: end of video" in output
    assert "next:" not in output
    assert not dataset.exists()

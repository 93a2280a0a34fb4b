"""Hostile and broken input: every case ends in correct work or one clear message and a non-zero exit."""

import json
import os
import pickle
import re
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest

from conftest import PROJECT_ROOT, run_script, shared_path
from helpers import CLIP, assert_clean_failure, count_frames, stand_in_openface

from facerec.stores import load_store


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    return ["--detector", str(shared_path("models")), "--embedding-model", str(stand_in_openface(folder))]


def extract(models, dataset, embeddings, *extra):
    return run_script("extract_embeddings.py", "--dataset", str(dataset), "--embeddings", str(embeddings),
                      "--quiet", *models, *extra)


def recognise(models, embeddings, source, *extra):
    return run_script("recognize_video.py", "--embeddings", str(embeddings), "--source", str(source),
                      "--no-display", "--json", *models, *extra)


# 1 and 2: the embeddings file is untrusted input -------------------------------------------

class _CreatesFile:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_recognize_refuses_a_pickle_that_would_run_code(models, tmp_path):
    marker = tmp_path / "created-by-pickle"
    evil = tmp_path / "embeddings.pickle"
    evil.write_bytes(pickle.dumps({"embeddings": [_CreatesFile(marker)], "names": ["x"]}))
    result = recognise(models, evil, shared_path(CLIP))
    assert_clean_failure(result, str(evil), "refused", "posix.system")
    assert not marker.exists()
    assert result.stdout == ""


@pytest.mark.parametrize("content, problem", [
    (b"", "is empty"),
    (b"\x80\x04garbage", "not a readable embeddings pickle"),
    (pickle.dumps({"embeddings": [np.full(64, 1 / 8)], "names": ["a"]}), "64-d vectors but the embedder makes 128-d"),
    (pickle.dumps({"embeddings": [np.zeros(128)] * 2, "names": ["a"]}), "2 embeddings but 1 names"),
    (pickle.dumps({"embeddings": [np.full(128, np.nan)], "names": ["a"]}), "NaN"),
])
def test_recognize_names_the_broken_embeddings_file_and_the_problem(models, tmp_path, content, problem):
    path = tmp_path / "embeddings.pickle"
    path.write_bytes(content)
    assert_clean_failure(recognise(models, path, shared_path(CLIP)), str(path), problem)


def test_recognize_without_embeddings_file_says_what_to_run(models, tmp_path):
    assert_clean_failure(recognise(models, tmp_path / "missing.pickle", shared_path(CLIP)),
                         "does not exist: run extract_embeddings.py")


# 3 and 4: odd images and names in the dataset ----------------------------------------------

@pytest.fixture(scope="module")
def odd_dataset(tmp_path_factory):
    """A dataset mixing good photos in odd formats with broken files, under unicode and spaced names."""
    root = tmp_path_factory.mktemp("odd") / "dataset"
    face = cv2.imread(str(shared_path("faces/known/obama/obama.jpg")))
    biden = shared_path("faces/known/biden/biden2.jpg").read_bytes()
    person = root / "José Ñúñez 李"
    person.mkdir(parents=True)
    cv2.imwrite(str(person / "grey photo.png"), cv2.cvtColor(face, cv2.COLOR_BGR2GRAY))
    cv2.imwrite(str(person / "sixteen bit.png"), face.astype(np.uint16) * 257)
    (person / "alpha.png").write_bytes(shared_path("faces/probe/32bit.png").read_bytes())
    big = cv2.resize(face, (8000, 8000), interpolation=cv2.INTER_LINEAR)
    cv2.imwrite(str(person / "huge 8000.jpg"), big, [cv2.IMWRITE_JPEG_QUALITY, 80])
    cv2.imwrite(str(person / "tiny.png"), cv2.resize(face, (10, 10)))
    (person / "zero.jpg").write_bytes(b"")
    (person / "text.jpg").write_text("I am not a picture\n")
    (person / "garbage.png").write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    other = root / "biden"
    other.mkdir()
    (other / "truncated.jpg").write_bytes(biden[: len(biden) // 3])
    (other / "ok ü.jpg").write_bytes(biden)
    return root


def test_odd_images_are_used_or_skipped_with_a_reason_and_the_run_goes_on(models, odd_dataset, tmp_path):
    embeddings = tmp_path / "e.pickle"
    result = extract(models, odd_dataset, embeddings)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    with open(embeddings, "rb") as handle:
        data = pickle.load(handle)
    used = set(data["paths"])
    person = "José Ñúñez 李"
    # every decodable photo of a real face is used, whatever its format
    for name in ("grey photo.png", "sixteen bit.png", "alpha.png", "huge 8000.jpg"):
        assert f"{person}/{name}" in used, result.stdout
    assert "biden/ok ü.jpg" in used
    assert set(data["names"]) == {person, "biden"}
    skipped = dict(re.findall(r"^  (.+?): (.+)$", result.stdout, re.MULTILINE))
    for name in ("zero.jpg", "text.jpg", "garbage.png"):
        assert skipped[str(odd_dataset / person / name)] == "not a readable image"
    assert str(odd_dataset / person / "tiny.png") in skipped
    # the truncated JPEG decodes partly: used if its face survived, else listed with a reason
    truncated = "biden/truncated.jpg"
    assert (truncated in used) != (str(odd_dataset / truncated) in skipped)
    every_file = {p.relative_to(odd_dataset).as_posix() for p in odd_dataset.rglob("*") if p.is_file()}
    assert set(data["files"]["keys"]) == every_file  # (format 2: the records in columns)


def test_a_unicode_name_survives_enrolment_and_comes_back_in_the_json_for_its_own_photo(models, odd_dataset, tmp_path):
    # the stand-in embedder has random weights: the video is an enrolled photo, so the name and its
    # UTF-8 round trip through the store and the JSON are what is checked, not recognition
    embeddings = tmp_path / "e.pickle"
    assert extract(models, odd_dataset, embeddings).returncode == 0
    video = tmp_path / "obama.avi"
    frame = cv2.imread(str(shared_path("faces/known/obama/obama.jpg")))
    frame = cv2.resize(frame, (frame.shape[1] // 2 * 2 // 2, frame.shape[0] // 2 * 2 // 2))
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 5, (frame.shape[1], frame.shape[0]))
    for _ in range(3):
        writer.write(frame)
    writer.release()
    result = recognise(models, embeddings, video, "--threshold", "0.3")
    assert result.returncode == 0, result.stderr
    names = [face["name"] for line in result.stdout.splitlines() for face in json.loads(line)["faces"]]
    assert names == ["José Ñúñez 李"] * 3


# 5: killed or interrupted mid-run ----------------------------------------------------------

@pytest.fixture
def slow_dataset(tmp_path):
    """Enough photos that extraction takes several seconds, and a previous embeddings file."""
    dataset = tmp_path / "dataset"
    for person in sorted(shared_path("faces/known").iterdir()):
        (dataset / person.name).mkdir(parents=True)
        for photo in person.iterdir():
            for copy in range(12):
                (dataset / person.name / f"{copy}_{photo.name}").write_bytes(photo.read_bytes())
    return dataset


def start_and_wait_for_progress(models, dataset, embeddings, done=5):
    process = subprocess.Popen(
        [sys.executable, str(PROJECT_ROOT / "extract_embeddings.py"), "--dataset", str(dataset),
         "--embeddings", str(embeddings), *models],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=PROJECT_ROOT)
    seen = b""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        seen += os.read(process.stderr.fileno(), 4096)
        counts = [int(n) for n in re.findall(rb"\| *(\d+)/\d+", seen)]
        if counts and max(counts) >= done:
            return process
    process.kill()
    pytest.fail(f"no progress seen: {seen[-500:]!r}")


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT])
def test_killed_or_interrupted_extraction_leaves_the_previous_file_intact(models, slow_dataset, tmp_path, sig):
    embeddings = tmp_path / "output" / "embeddings.pickle"
    small = tmp_path / "small"
    (small / "obama").mkdir(parents=True)
    (small / "obama" / "a.jpg").write_bytes(shared_path("faces/known/obama/obama.jpg").read_bytes())
    assert extract(models, small, embeddings).returncode == 0
    before = embeddings.read_bytes()
    process = start_and_wait_for_progress(models, slow_dataset, embeddings)
    process.send_signal(sig)
    stdout, stderr = process.communicate(timeout=60)
    assert embeddings.read_bytes() == before
    if sig == signal.SIGINT:
        assert process.returncode == 130
        assert b"Traceback" not in stderr
        assert b"interrupted" in stderr
        assert list(embeddings.parent.iterdir()) == [embeddings]  # no temporary file left
    else:
        assert process.returncode == -signal.SIGKILL


def test_extraction_on_every_core_gives_the_vectors_of_one_process_in_the_same_order(tmp_path):
    # issue 22 item 3: the photos are embedded by worker processes and recorded here in the dataset's order
    dataset = tmp_path / "dataset"
    for person in sorted(shared_path("faces/known").iterdir()):
        (dataset / person.name).mkdir(parents=True)
        for photo in person.iterdir():
            for copy in range(4):  # 36 photos: enough for two workers
                os.symlink(photo, dataset / person.name / f"{copy}_{photo.name}")
    sface = ["--model", "sface", "--detector", str(shared_path("models")),
             "--embedding-model", str(shared_path("models/face_recognition_sface_2021dec_int8bq.onnx"))]
    stores = {}
    for jobs in ("1", "2"):
        result = extract(sface, dataset, tmp_path / f"e{jobs}.pickle", "--jobs", jobs)
        assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
        stores[jobs] = load_store(tmp_path / f"e{jobs}.pickle")
    one, two = stores["1"], stores["2"]
    assert len(one) == 36 and (one.paths, one.names, one.files) == (two.paths, two.names, two.files)
    np.testing.assert_array_equal(one.vectors, two.vectors)


# 6: video sources that end, break, stall or never open -------------------------------------

def test_a_video_broken_mid_stream_stops_cleanly_with_a_playable_output(models, tmp_path):
    embeddings = tmp_path / "e.pickle"
    embeddings.write_bytes(pickle.dumps({"embeddings": [], "names": []}))
    source = tmp_path / "broken.avi"
    capture = cv2.VideoCapture(str(shared_path(CLIP)))
    writer = cv2.VideoWriter(str(source), cv2.VideoWriter_fourcc(*"MJPG"), 30, (640, 360))
    for _ in range(60):
        writer.write(capture.read()[1])
    writer.release()
    data = source.read_bytes()
    source.write_bytes(data[: len(data) // 2])  # the file breaks off half way
    output = tmp_path / "out.avi"
    result = recognise(models, embeddings, source, "--output", str(output))
    assert result.returncode == 0, result.stderr
    frames = len(result.stdout.splitlines())
    assert 10 < frames < 60
    assert count_frames(output) == (frames, (640, 360))
    assert f"{frames} frames," in result.stderr and "frames/s" in result.stderr
    assert f"stopped: read error at frame {frames} of 60" in result.stderr


def test_a_stalled_stream_ends_with_the_summary(models, tmp_path):
    """A real HTTP server on 127.0.0.1 sends half a video and then goes silent."""
    import http.server
    import threading

    source = tmp_path / "stream.avi"
    writer = cv2.VideoWriter(str(source), cv2.VideoWriter_fourcc(*"MJPG"), 10, (320, 240))
    for index in range(100):
        writer.write(np.full((240, 320, 3), index, np.uint8))
    writer.release()
    data = source.read_bytes()
    release = threading.Event()

    class Stalling(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            release.wait(30)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Stalling)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    embeddings = tmp_path / "e.pickle"
    embeddings.write_bytes(pickle.dumps({"embeddings": [], "names": []}))
    try:
        result = run_script(
            "recognize_video.py", "--embeddings", str(embeddings), "--source",
            f"http://127.0.0.1:{server.server_address[1]}/live.avi", "--no-display", "--json", *models,
            env={"FACEREC_STALL_SECONDS": "2"}, timeout=60)
    finally:
        release.set()
        server.shutdown()
        server.server_close()
    assert result.returncode == 0, result.stderr
    frames = len(result.stdout.splitlines())
    assert 0 < frames < 100
    assert f"{frames} frames," in result.stderr
    assert "stopped: stalled: no frame for 2 s" in result.stderr  # the reader's verdict, never "end of video"
    assert "end of video" not in result.stderr and "end of stream" not in result.stderr


@pytest.mark.parametrize("source, message", [
    ("/no/such/video.mp4", "is neither a camera index, an existing file nor a URL"),
    ("9", "cannot open camera '9'"),
])
def test_a_source_that_cannot_be_opened_is_exit_2(models, tmp_path, source, message):
    embeddings = tmp_path / "e.pickle"
    embeddings.write_bytes(pickle.dumps({"embeddings": [], "names": []}))
    assert_clean_failure(recognise(models, embeddings, source), message)


def test_a_file_that_is_not_a_video_is_exit_2(models, tmp_path):
    embeddings = tmp_path / "e.pickle"
    embeddings.write_bytes(pickle.dumps({"embeddings": [], "names": []}))
    text = tmp_path / "notes.mp4"
    text.write_text("not a video\n" * 100)
    result = recognise(models, embeddings, text)
    assert_clean_failure(result, str(text))


# 8: arguments out of range -----------------------------------------------------------------

@pytest.mark.parametrize("script, args, message", [
    ("recognize_video.py", ["--confidence", "1.5"], "--confidence: 1.5 is out of range"),
    ("recognize_video.py", ["--threshold", "-0.1"], "--threshold: -0.1 is out of range"),
    ("recognize_video.py", ["--threshold", "abc"], "--threshold: 'abc' is not a valid float"),
    ("extract_embeddings.py", ["--confidence", "-1"], "--confidence: -1 is out of range"),
])
def test_out_of_range_arguments_are_refused_by_the_parser(script, args, message):
    result = run_script(script, *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


# 9: empty galleries -------------------------------------------------------------------------

def test_an_empty_gallery_names_every_face_unknown(models, tmp_path):
    embeddings = tmp_path / "e.pickle"
    embeddings.write_bytes(pickle.dumps({"embeddings": [], "names": []}))
    result = recognise(models, embeddings, shared_path(CLIP))
    assert result.returncode == 0, result.stderr
    faces = [face for line in result.stdout.splitlines() for face in json.loads(line)["faces"]]
    assert len(result.stdout.splitlines()) == 275 and faces
    assert all(face["name"] == "Unknown" and face["distance"] is None and face["match"] is None for face in faces)
    assert "holds no faces" in result.stderr


# windows without a screen ------------------------------------------------------------------

@pytest.mark.parametrize("display", [None, ":87"])
def test_no_display_is_a_clear_error_not_an_abort(models, tmp_path, display):
    """OpenCV's GUI aborts the process without an X server: the scripts must say so first."""
    embeddings = tmp_path / "e.pickle"
    embeddings.write_bytes(pickle.dumps({"embeddings": [], "names": []}))
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    if display:
        env["DISPLAY"] = display  # set, but no X server listens there
    common = dict(capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    recognise_run = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "recognize_video.py"), "--embeddings", str(embeddings),
         "--source", str(shared_path(CLIP)), "--output", str(tmp_path / "out.mp4"), *models], **common)
    assert_clean_failure(recognise_run, "cannot open a window", "use --no-display")
    assert list(tmp_path.iterdir()) == [embeddings]  # no video begun
    capture_run = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "imagecapture.py"), "--name", "ann", "--dataset", str(tmp_path / "d"),
         "--source", str(shared_path(CLIP)), "--detector", models[1]], **common)
    assert_clean_failure(capture_run, "cannot open a window")

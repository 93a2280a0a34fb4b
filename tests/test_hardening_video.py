"""Hardening of video sources, the annotated output, the window and the way a script ends (issues 16 and 10).

Every case runs the real scripts in subprocesses on real files: a source that breaks, stalls or is
named oddly, an --output that would destroy data, a full disk, a closed pipe, a display that is not
there, a Ctrl-C at the worst moment.
"""

from __future__ import annotations

import errno
import fcntl
import os
import pickle
import re
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import PROJECT_ROOT, require, run_script, shared_path
from helpers import CLIP, assert_clean_failure, count_frames, stand_in_openface

NUMBERED_FRAMES = 40


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    return ["--detector", str(shared_path("models")), "--embedding-model", str(stand_in_openface(folder))]


@pytest.fixture
def embeddings(tmp_path):
    """A gallery of one random 128-d unit vector: nobody is named, and no 'empty gallery' warning is printed."""
    vector = np.random.default_rng(0).normal(size=128).astype(np.float32)
    path = tmp_path / "e.pickle"
    path.write_bytes(pickle.dumps({"embeddings": [vector / np.linalg.norm(vector)], "names": ["somebody"]}))
    return path


@pytest.fixture
def short_video(tmp_path):
    """The first NUMBERED_FRAMES frames of the clip as an MJPG .avi (640x360): real faces, quick to process."""
    path = tmp_path / "short.avi"
    capture = cv2.VideoCapture(str(shared_path(CLIP)))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, (640, 360))
    for _ in range(NUMBERED_FRAMES):
        writer.write(capture.read()[1])
    writer.release()
    capture.release()
    return path


def recognise(models, embeddings, source, *extra, env=None, **kwargs):
    return run_script("recognize_video.py", "--embeddings", str(embeddings), "--source", str(source),
                      "--no-display", "--json", *models, *extra, env=env, **kwargs)


def files_in(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


# issue 16 item 3: --output never destroys data ---------------------------------------------

@pytest.mark.parametrize("how", ["same path", "symlink", "hard link", "file URL", "dot path"])
def test_an_output_that_is_the_source_is_refused(models, embeddings, short_video, tmp_path, how):
    before = short_video.read_bytes()
    source, output = str(short_video), str(short_video)
    if how == "symlink":
        output = str(tmp_path / "link.avi")
        os.symlink(short_video, output)
    elif how == "hard link":
        output = str(tmp_path / "hard.avi")
        os.link(short_video, output)
    elif how == "file URL":
        source = short_video.as_uri()
    elif how == "dot path":
        output = str(tmp_path / "." / short_video.name)
    result = recognise(models, embeddings, source, "--output", output)
    assert_clean_failure(result, "is the source video")
    assert short_video.read_bytes() == before
    assert result.stdout == ""  # refused before any frame was processed


@pytest.mark.parametrize("name, content", [("photo.jpg", "photo"), ("notes.avi", b"my notes\n" * 100),
                                           ("script.mp4", b"#!/bin/sh\necho hello\n")])
def test_an_output_over_a_file_that_is_not_a_video_is_refused(models, embeddings, short_video, tmp_path, name,
                                                              content):
    target = tmp_path / name
    if content == "photo":
        content = shared_path("faces/known/obama/obama.jpg").read_bytes()
    target.write_bytes(content)
    result = recognise(models, embeddings, short_video, "--output", str(target))
    assert_clean_failure(result, str(target))
    assert target.read_bytes() == content
    assert result.stdout == ""


def test_force_replaces_a_file_that_is_not_a_video(models, embeddings, short_video, tmp_path):
    target = tmp_path / "notes.avi"
    target.write_text("my notes\n")
    refused = recognise(models, embeddings, short_video, "--output", str(target))
    assert_clean_failure(refused, "--force")
    result = recognise(models, embeddings, short_video, "--output", str(target), "--force")
    assert result.returncode == 0, result.stderr
    assert count_frames(target) == (NUMBERED_FRAMES, (640, 360))


def test_an_existing_video_is_replaced_without_force(models, embeddings, short_video, tmp_path):
    target = tmp_path / "old.avi"
    target.write_bytes(short_video.read_bytes()[: 4096] + b"\0" * 10)  # an AVI header: a (damaged) video
    result = recognise(models, embeddings, short_video, "--output", str(target))
    assert result.returncode == 0, result.stderr
    assert count_frames(target) == (NUMBERED_FRAMES, (640, 360))


def _limit_file_size(limit):
    def preexec():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes beyond the limit fail with EFBIG, as on a full disk
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return preexec


@pytest.mark.parametrize("suffix", [".mp4", ".avi"])
def test_a_full_disk_keeps_the_previous_video_and_says_so(models, embeddings, short_video, tmp_path, suffix):
    output_folder = tmp_path / "out"
    output_folder.mkdir()
    previous = output_folder / f"annotated{suffix}"
    good = recognise(models, embeddings, short_video, "--output", str(previous))
    assert good.returncode == 0, good.stderr
    before = previous.read_bytes()
    size = len(before)
    result = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "recognize_video.py"), "--embeddings", str(embeddings),
         "--source", str(short_video), "--no-display", *models, "--output", str(previous)],
        capture_output=True, text=True, timeout=300, cwd=PROJECT_ROOT, preexec_fn=_limit_file_size(size // 3))
    assert_clean_failure(result, "could not be written completely", f"{previous} is left as it was")
    assert "(40 frames)" not in result.stderr
    assert previous.read_bytes() == before
    assert files_in(output_folder) == [previous.name]  # no temporary left behind


# issue 16 item 6: bad --output paths, refused before the work ------------------------------

@pytest.mark.parametrize("case", ["folder", "parent is a file", "empty", "read-only place", "pipe",
                                  "no video suffix"])
def test_a_bad_output_path_is_refused_before_the_work(models, embeddings, short_video, tmp_path, case):
    if case == "folder":
        output, fragment = str(tmp_path), "is a folder"
    elif case == "parent is a file":
        (tmp_path / "file").write_text("x")
        output, fragment = str(tmp_path / "file" / "out.mp4"), "is not a folder"
    elif case == "empty":
        output, fragment = "", "--output"
    elif case == "read-only place":
        place = tmp_path / "read-only"
        place.mkdir()
        place.chmod(0o555)
        if os.access(place, os.W_OK):  # root writes where the mode says no: sysfs refuses even root
            require(Path("/sys/kernel").is_dir(), "as root, a place nobody may create files in needs Linux /sys")
            place = Path("/sys/kernel")
        output = str(place / "facerec-out.mp4")
        fragment = f"cannot write video {output}: Permission denied"
    elif case == "pipe":
        os.mkfifo(tmp_path / "pipe.mp4")
        output, fragment = str(tmp_path / "pipe.mp4"), "not a regular file"
    else:
        output, fragment = str(tmp_path / "out.txt"), "the name must end in .mp4 or .avi"
    before = files_in(tmp_path)
    result = recognise(models, embeddings, short_video, "--output", output)
    assert_clean_failure(result, fragment)
    assert result.stdout == ""  # no frame processed
    assert files_in(tmp_path) == before  # nothing left behind


def test_a_255_byte_output_name_works(models, embeddings, short_video, tmp_path):
    output = tmp_path / ("v" * 251 + ".avi")
    result = recognise(models, embeddings, short_video, "--output", str(output))
    assert result.returncode == 0, result.stderr
    assert count_frames(output)[0] == NUMBERED_FRAMES
    assert files_in(tmp_path) == sorted([output.name, "e.pickle", "short.avi"])


# issue 10 item 18: what Ctrl-C and kill do to --output (decided: Ctrl-C keeps what was processed) --

def _start_and_read_lines(models, embeddings, source, lines, *extra, **popen):
    process = subprocess.Popen(
        [sys.executable, str(PROJECT_ROOT / "recognize_video.py"), "--embeddings", str(embeddings),
         "--source", str(source), "--no-display", "--json", *models, *extra],
        stdout=subprocess.PIPE, cwd=PROJECT_ROOT, **popen)
    for _ in range(lines):
        assert process.stdout.readline(), "the run ended early"
    return process


def test_ctrl_c_replaces_the_output_with_the_frames_processed_and_kill_keeps_the_previous(
        models, embeddings, tmp_path):
    output = tmp_path / "out.mp4"
    output.write_bytes(b"")  # an empty file may be replaced
    clip = shared_path(CLIP)
    killed = _start_and_read_lines(models, embeddings, clip, 5, "--output", str(output), stderr=subprocess.DEVNULL)
    killed.kill()
    killed.communicate(timeout=60)
    assert output.read_bytes() == b""  # the previous file is intact; a hidden temporary may remain
    interrupted = _start_and_read_lines(models, embeddings, clip, 5, "--output", str(output), stderr=subprocess.PIPE)
    interrupted.send_signal(signal.SIGINT)
    stdout, stderr = interrupted.communicate(timeout=60)
    assert interrupted.returncode == 0, stderr
    assert b"stopped: interrupted (Ctrl-C)" in stderr
    written = int(re.search(rf"annotated video: {re.escape(str(output))} \((\d+) frames\)".encode(), stderr)[1])
    assert 5 <= written + 1 and written <= 5 + len(stdout.splitlines())  # the frame being drawn may be lost
    assert count_frames(output) == (written, (640, 360))


# issue 16 item 20: a second Ctrl-C says what was kept ---------------------------------------

def test_a_second_ctrl_c_says_the_video_was_kept(models, embeddings, tmp_path):
    """The second Ctrl-C comes while the summary is being printed, after the video was renamed into place.

    Standard error is a pipe filled in advance, so the run blocks at its first message (the summary)
    until the test reads it: the second SIGINT is sure to land there.
    """
    output = tmp_path / "out.mp4"
    read_end, write_end = os.pipe()
    fcntl.fcntl(write_end, fcntl.F_SETFL, os.O_NONBLOCK)
    filler = 0
    try:
        while True:
            filler += os.write(write_end, b"." * 4096)
    except BlockingIOError:
        pass
    fcntl.fcntl(write_end, fcntl.F_SETFL, 0)
    process = _start_and_read_lines(models, embeddings, shared_path(CLIP), 3, "--output", str(output),
                                    stderr=write_end)
    os.close(write_end)
    drained = []
    try:
        process.send_signal(signal.SIGINT)
        deadline = time.monotonic() + 60
        while not output.exists() and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.01)
        assert output.exists()
        process.send_signal(signal.SIGINT)
    finally:
        reader = threading.Thread(target=lambda: drained.append(b"".join(iter(lambda: os.read(read_end, 65536), b""))))
        reader.start()
        stdout = process.stdout.read()
        process.wait(timeout=60)
        reader.join(timeout=60)
        os.close(read_end)
    stderr = drained[0][filler:].decode()
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert "nothing was written" not in stderr
    kept = re.search(rf"interrupted: kept annotated video {re.escape(str(output))} \((\d+) frames\)", stderr)
    assert kept, stderr
    assert count_frames(output)[0] == int(kept[1])


# issue 16 item 7: a closed pipe ends quietly ------------------------------------------------

def _quiet_after_broken_pipe(result_code, stderr):
    assert result_code == 141, stderr
    for noise in ("Traceback", "Exception ignored", "BrokenPipeError"):
        assert noise not in stderr


def test_recognize_json_into_head_ends_quietly(models, embeddings, short_video):
    process = _start_and_read_lines(models, embeddings, short_video, 1, stderr=subprocess.PIPE)
    process.stdout.close()  # `| head -1`: the reader is gone after one line
    stderr = process.stderr.read().decode()
    process.wait(timeout=120)
    _quiet_after_broken_pipe(process.returncode, stderr)


def _run_into_closed_pipe(*command):
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader went away before anything was written
    try:
        return subprocess.run([sys.executable, *command], stdout=write_end, stderr=subprocess.PIPE, text=True,
                              timeout=300, cwd=PROJECT_ROOT)
    finally:
        os.close(write_end)


def test_evaluate_and_extract_into_a_closed_pipe_end_quietly(models, tmp_path):
    store = tmp_path / "e.pickle"
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(6, 128)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    store.write_bytes(pickle.dumps({"embeddings": list(vectors), "names": ["a", "a", "b", "b", "c", "c"]}))
    evaluated = _run_into_closed_pipe(str(PROJECT_ROOT / "evaluate.py"), "--embeddings", str(store))
    _quiet_after_broken_pipe(evaluated.returncode, evaluated.stderr)
    dataset = tmp_path / "dataset" / "obama"
    dataset.mkdir(parents=True)
    (dataset / "a.jpg").write_bytes(shared_path("faces/known/obama/obama.jpg").read_bytes())
    extracted = _run_into_closed_pipe(str(PROJECT_ROOT / "extract_embeddings.py"), "--dataset",
                                      str(dataset.parent), "--embeddings", str(tmp_path / "new.pickle"),
                                      "--quiet", *models)
    _quiet_after_broken_pipe(extracted.returncode, extracted.stderr)


# issue 16 item 10: a --source path component over 255 bytes --------------------------------

def test_a_source_name_too_long_for_the_file_system_is_a_clean_error(models, embeddings, tmp_path):
    result = recognise(models, embeddings, tmp_path / ("x" * 300 + ".mp4"))
    assert_clean_failure(result, "File name too long")


# issue 16 item 13: a display that is not there over TCP ------------------------------------

def _free_display_listener(behaviour):
    """A TCP listener on 127.0.0.1:6000+N for a free N; behaviour 'refuse' closes it again at once."""
    for number in range(57, 1000):
        listener = socket.socket()
        try:
            listener.bind(("127.0.0.1", 6000 + number))
        except OSError:
            listener.close()
            continue
        if behaviour == "refuse":
            listener.close()
            return number, None
        listener.listen(4)

        def serve():
            while True:
                try:
                    connection, _ = listener.accept()
                except OSError:
                    return
                if behaviour == "close":
                    connection.close()  # a dead SSH X forward: connects, then hangs up

        threading.Thread(target=serve, daemon=True).start()
        return number, listener
    require(False, "no free TCP port 6057-6999 for a fake display")


@pytest.mark.parametrize("display, behaviour", [("127.0.0.1:{}", "refuse"), ("localhost:{}.0", "refuse"),
                                                ("127.0.0.1:{}", "close")])
def test_a_tcp_display_that_does_not_answer_is_a_clear_error(models, embeddings, short_video, display, behaviour):
    number, listener = _free_display_listener(behaviour)
    try:
        result = run_script("recognize_video.py", "--embeddings", str(embeddings), "--source", str(short_video),
                            *models, env={"DISPLAY": display.format(number)}, timeout=120)
    finally:
        if listener is not None:
            listener.close()
    assert_clean_failure(result, "cannot open a window", "no X server answers", "--no-display")


# issue 16 item 14: FACEREC_STALL_SECONDS ---------------------------------------------------

@pytest.mark.parametrize("value", ["abc", "-1", "0", "nan", "inf", "1e10", ""])
def test_a_bad_stall_setting_is_a_clear_error(models, embeddings, value):
    result = recognise(models, embeddings, "http://127.0.0.1:9/live.avi", env={"FACEREC_STALL_SECONDS": value})
    assert_clean_failure(result, "FACEREC_STALL_SECONDS", "seconds")


def test_the_stall_setting_is_not_read_for_a_file(models, embeddings, short_video):
    result = recognise(models, embeddings, short_video, env={"FACEREC_STALL_SECONDS": "abc"})
    assert result.returncode == 0, result.stderr


# issue 16 item 16: Ctrl-C during the imports -----------------------------------------------

@pytest.mark.parametrize("script", ["recognize_video.py", "imagecapture.py", "extract_embeddings.py",
                                    "evaluate.py"])
def test_ctrl_c_while_the_script_imports_ends_quietly(script):
    """Python's own start-up (before the script's first line) is not ours: the delays count from the
    first import after the script's first line (which imports facerec.errors and sets the handler),
    as `-X importtime` reports it."""
    for delay in (0.0, 0.02, 0.05, 0.1, 0.2, 0.3):
        process = subprocess.Popen([sys.executable, "-X", "importtime", str(PROJECT_ROOT / script), "--help"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=PROJECT_ROOT)
        seen = b""
        while not re.search(rb"\|\s+facerec\.errors\nimport time:[^\n]*\n", seen):
            line = process.stderr.readline()
            assert line, f"facerec.errors never imported: {seen[-300:]!r}"
            seen += line
        time.sleep(delay)
        process.send_signal(signal.SIGINT)
        rest = process.stderr.read()
        process.wait(timeout=60)
        messages = b"\n".join(line for line in (seen + rest).splitlines() if not line.startswith(b"import time:"))
        assert b"Traceback" not in messages, (delay, messages.decode())
        # 0: --help finished first; -SIGINT: the signal came during the interpreter's final clean-up, after
        # Python has put back the default handler (killed by it, silently, as any Unix tool would be)
        assert process.returncode in (0, 130, -signal.SIGINT), (delay, messages.decode())


# issue 16 item 17: why the frames ended -----------------------------------------------------

def test_a_video_damaged_in_the_middle_says_read_error_at_which_frame(models, embeddings, tmp_path):
    data = shared_path(CLIP).read_bytes()
    damaged = tmp_path / "damaged.mp4"
    third = len(data) // 3
    damaged.write_bytes(data[:third] + b"\0" * 200_000 + data[third + 200_000:])
    result = recognise(models, embeddings, damaged)
    assert result.returncode == 0, result.stderr
    frames = len(result.stdout.splitlines())
    assert 0 < frames < 275
    assert f"stopped: read error at frame {frames} of 275" in result.stderr
    assert "end of video" not in result.stderr


def test_a_truncated_file_says_read_error(models, embeddings, short_video, tmp_path):
    data = short_video.read_bytes()
    truncated = tmp_path / "truncated.avi"
    truncated.write_bytes(data[: len(data) // 2])
    result = recognise(models, embeddings, truncated)
    frames = len(result.stdout.splitlines())
    assert 0 < frames < NUMBERED_FRAMES
    assert f"stopped: read error at frame {frames} of {NUMBERED_FRAMES}" in result.stderr


def test_a_whole_file_says_end_of_video(models, embeddings, short_video):
    result = recognise(models, embeddings, short_video)
    assert len(result.stdout.splitlines()) == NUMBERED_FRAMES
    assert "stopped: end of video" in result.stderr


def test_a_file_url_is_read_as_a_file_with_every_frame(models, embeddings, short_video):
    result = recognise(models, embeddings, short_video.as_uri())
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == NUMBERED_FRAMES
    assert "stopped: end of video" in result.stderr


# issue 10 item 5: the camera that is not there ---------------------------------------------

@pytest.mark.parametrize("script", ["recognize_video.py", "imagecapture.py"])
def test_a_missing_camera_is_one_line_with_a_hint(models, embeddings, tmp_path, script):
    if script == "recognize_video.py":
        result = recognise(models, embeddings, "7")
    else:
        result = run_script(script, "--name", "ann", "--dataset", str(tmp_path / "d"), "--source", "7",
                            "--detector", models[1])
    assert_clean_failure(result, "cannot open camera '7'", "use --source FILE or a stream URL")
    assert result.stderr.strip().splitlines() == [line for line in result.stderr.strip().splitlines()
                                                  if line.startswith("error:")]
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


# issue 10 item 18: a captured photo is never seen half-written ----------------------------

def test_a_photo_appears_under_its_number_only_when_complete(tmp_path):
    """A process saving a large photo is killed the moment its numbered file appears: the file must be whole."""
    folder = tmp_path / "ann"
    size = 64 * 2**20
    code = (f"from pathlib import Path; from facerec.capture import save_photo; "
            f"save_photo(Path({str(folder)!r}), b'x' * {size})")
    process = subprocess.Popen([sys.executable, "-c", code], cwd=PROJECT_ROOT)
    photo = folder / "0001.jpg"
    try:
        while process.poll() is None and not photo.exists():
            time.sleep(0.0005)
    finally:
        process.kill()
        process.wait(timeout=60)
    assert photo.stat().st_size == size
    numbered = [name for name in files_in(folder) if not name.startswith(".")]
    assert numbered == ["0001.jpg"]


# issue 31 item 17: a camera index OpenCV cannot take (cv2.error, exit 1, before) -------------

def test_a_camera_index_beyond_what_opencv_takes_is_one_error_line_before_anything_is_loaded(tmp_path):
    result = run_script("recognize_video.py", "--source", "99999999999", "--no-display",
                        "--embeddings", str(tmp_path / "none.pickle"))
    assert_clean_failure(result, "error: --source 99999999999: a camera index is at most 2,147,483,647")
    assert len(result.stderr.strip().splitlines()) == 1

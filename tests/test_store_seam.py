"""The gallery store seam (issue 14): open_store, the embeddings file behind it (PickleStore), and the
scripts' --embeddings PATH_OR_URL, $FACEREC_EMBEDDINGS and --log-sightings. Real files, real threads,
real subprocesses; the PostgreSQL store has its own tests."""

import json
import os
import subprocess
import sys
import threading

import cv2
import numpy as np
import pytest

from conftest import PROJECT_ROOT, run_script, shared_path
from helpers import assert_clean_failure
from test_sface import linked_dataset, sface_model_args
from test_store import make_store

from facerec.errors import FacerecError
from facerec.stores import (LOCATION_VARIABLE, GalleryCounts, NoGalleryYet, PickleStore, load_store, masked, open_store,
                            save_store)

MODELS = {"profile": "openface"}
WAIT_SECONDS = 60  # a bound on waiting for the watch thread, never a measure of it


# open_store and masked ----------------------------------------------------------------------

def test_open_store_takes_a_path_then_the_variable_then_the_default(tmp_path, monkeypatch):
    monkeypatch.delenv(LOCATION_VARIABLE, raising=False)
    assert isinstance(open_store(None), PickleStore) and open_store(None).location == "output/embeddings.pickle"
    monkeypatch.setenv(LOCATION_VARIABLE, str(tmp_path / "from-env.pickle"))
    assert open_store(None).location == str(tmp_path / "from-env.pickle")
    assert open_store(tmp_path / "given.pickle").location == str(tmp_path / "given.pickle")


@pytest.mark.parametrize("url, shown", [
    ("postgresql://bob:s3cret@db.example:5432/faces", "postgresql://bob@db.example:5432/faces"),
    ("postgres://bob:p@ss:w@rd@host/db", "postgres://bob@host/db"),
    ("postgresql://:s3cret@host/db", "postgresql://host/db"),
    ("postgresql://bob@host/db?password=s3cret&sslmode=require", "postgresql://bob@host/db?sslmode=require"),
    ("postgresql://bob@host/db", "postgresql://bob@host/db"),
    ("output/with:colon@at.pickle", "output/with:colon@at.pickle"),
])
def test_masked_leaves_out_the_password_and_nothing_else(url, shown):
    assert masked(url) == shown


def test_a_postgresql_url_without_psycopg_is_one_error_line_without_the_password():
    # psycopg made unimportable, as on a machine where it is not installed
    code = ("import runpy, sys; sys.modules['psycopg'] = None; sys.argv = sys.argv[1:]; "
            "runpy.run_path(sys.argv[0], run_name='__main__')")
    result = subprocess.run([sys.executable, "-c", code, str(PROJECT_ROOT / "recognize_video.py"),
                             "--embeddings", "postgresql://bob:s3cret@127.0.0.1:1/faces", "--no-display"],
                            capture_output=True, text=True, timeout=120, cwd=PROJECT_ROOT)
    assert_clean_failure(result, 'pip install "psycopg[binary]"', "postgresql://bob@127.0.0.1:1/faces")
    assert "s3cret" not in result.stderr + result.stdout


# the embeddings file behind the seam ----------------------------------------------------------

def writer_for(path, dataset):
    return PickleStore(path).open_writer(dataset, MODELS, 128)


def test_the_writer_keeps_the_file_until_it_finishes_then_writes_it_whole(tmp_path):
    path = tmp_path / "e.pickle"
    save_store(make_store(), path)
    before = path.read_bytes()
    writer = writer_for(path, tmp_path)
    assert writer.previous is not None and writer.previous.paths == make_store().paths
    vector = np.zeros(128, np.float32)
    vector[0] = 1.0
    writer.record("ann/1.jpg", {"size": 1, "mtime_ns": 2}, "used", "ann", vector)
    writer.record("person1/1.jpg", {"size": 3, "mtime_ns": 4}, "no face found", "person1", None)
    writer.remove(["person0/0.jpg"])
    assert path.read_bytes() == before  # a run that dies here leaves the previous file
    assert writer.finish() == GalleryCounts(3, 3)  # counts: the gallery is the store's load()
    gallery = PickleStore(path).load()
    stored = load_store(path)
    # listed as enrolment finds them: by person folder, then by photo; a skipped image keeps only its record
    assert stored.paths == gallery.paths == ["ann/1.jpg", "person0/2.jpg", "person1/3.jpg"]
    assert stored.names == ["ann", "person0", "person1"]
    np.testing.assert_array_equal(stored.vectors[0], vector)
    np.testing.assert_array_equal(stored.vectors[1:], make_store().vectors[[2, 3]])
    assert stored.files["person1/1.jpg"] == {"size": 3, "mtime_ns": 4, "status": "no face found"}
    assert "person0/0.jpg" not in stored.files


def test_a_file_made_by_other_models_is_not_reused_and_a_damaged_one_is_replaced_with_a_warning(tmp_path):
    path = tmp_path / "e.pickle"
    save_store(make_store(), path)
    assert PickleStore(path).open_writer(tmp_path, {"profile": "openface", "other": 1}, 128).previous is None
    mismatch = PickleStore(path).open_writer(tmp_path, MODELS, 512)
    assert mismatch.previous is None and "128-d vectors although made by the same models" in mismatch.warning
    mismatch.close()  # a writer holds the file's folder until it finishes or closes
    path.write_bytes(b"\x80\x04garbage")
    with pytest.raises(FacerecError, match="add --force"):
        writer_for(path, tmp_path)
    path.write_bytes(json.dumps({"not": "a pickle"}).encode())
    forced = PickleStore(path).open_writer(tmp_path, MODELS, 128, force=True)
    assert forced.previous is None and "--force" in forced.warning


def test_a_missing_file_is_no_gallery_yet_but_no_images_known_and_opening_a_writer_writes_nothing(tmp_path):
    store = PickleStore(tmp_path / "none.pickle")
    assert store.open_writer(tmp_path, MODELS, 128).previous is None
    assert not os.path.exists(tmp_path / "none.pickle")
    with pytest.raises(NoGalleryYet, match="does not exist: run extract_embeddings.py"):
        store.load()
    known = store.known_images(tmp_path)
    assert len(known) == 0 and known.files == {}
    with pytest.raises(FacerecError, match="--log-sightings needs a PostgreSQL gallery"):
        store.sighting_log("door")


def test_an_unchanged_file_is_read_once_and_a_rewritten_one_read_again(tmp_path):
    path = tmp_path / "e.pickle"
    save_store(make_store(n=4), path)
    store = PickleStore(path)
    first = store.known_images(tmp_path)
    assert store.known_images(tmp_path) is first and store.load() is first  # the file was not read again
    save_store(make_store(n=6, seed=1), path)  # replaced atomically: another inode
    again = store.known_images(tmp_path)
    assert again is not first and len(again) == 6
    np.testing.assert_array_equal(again.vectors, load_store(path).vectors)


class Recorder:
    """What a watch reported, for the test thread to wait on."""

    def __init__(self):
        self.galleries, self.problems = [], []
        self.changed = threading.Condition()

    def on_change(self, gallery):
        with self.changed:
            self.galleries.append(gallery)
            self.changed.notify_all()

    def on_problem(self, message):
        with self.changed:
            self.problems.append(message)
            self.changed.notify_all()

    def wait_for(self, condition):
        with self.changed:
            assert self.changed.wait_for(condition, WAIT_SECONDS), (self.galleries, self.problems)


def test_a_watch_sees_each_new_file_says_once_when_it_is_damaged_and_when_it_is_usable_again(tmp_path):
    path = tmp_path / "e.pickle"
    save_store(make_store(n=2), path)
    store = PickleStore(path)
    store.load()
    seen = Recorder()
    watch = store.watch(seen.on_change, seen.on_problem)
    try:
        save_store(make_store(n=6, seed=1), path)  # what another process's extraction does: an atomic replace
        seen.wait_for(lambda: seen.galleries)
        np.testing.assert_array_equal(seen.galleries[0].vectors, make_store(n=6, seed=1).vectors)
        path.write_bytes(b"\x80\x04half a copy")
        seen.wait_for(lambda: seen.problems)
        path.write_bytes(b"\x80\x04another broken copy")  # still broken: not said again
        path.unlink()
        save_store(make_store(n=4, seed=2), path)
        seen.wait_for(lambda: len(seen.galleries) == 2)
    finally:
        watch.stop()
    assert len(seen.problems) == 2, seen.problems
    assert "not a readable embeddings pickle" in seen.problems[0] and "stays in use" in seen.problems[0]
    assert seen.problems[1] == f"embeddings file {path} is usable again"
    assert seen.galleries[1].names == make_store(n=4, seed=2).names


def test_a_watch_started_after_a_load_sees_a_change_made_in_between(tmp_path):
    path = tmp_path / "e.pickle"
    save_store(make_store(n=2), path)
    store = PickleStore(path)
    store.load()
    save_store(make_store(n=6), path)  # after the load, before the watch
    seen = Recorder()
    watch = store.watch(seen.on_change, seen.on_problem)
    try:
        seen.wait_for(lambda: seen.galleries)
    finally:
        watch.stop()
    assert len(seen.galleries[0]) == 6 and not seen.problems


# the scripts --------------------------------------------------------------------------------

def test_facerec_embeddings_names_the_gallery_of_every_script_without_embeddings(tmp_path):
    dataset = linked_dataset(tmp_path / "dataset", {"lin": shared_path("faces/probe/lin-manuel-miranda.png")})
    location = tmp_path / "from the variable" / "gallery.pickle"
    env = {LOCATION_VARIABLE: str(location)}
    enrolled = run_script("extract_embeddings.py", "--dataset", str(dataset), "--quiet", *sface_model_args(),
                          cwd=tmp_path, env=env)
    assert enrolled.returncode == 0, enrolled.stderr
    assert f"to {location}" in enrolled.stdout and f"--embeddings '{location}'" in enrolled.stdout
    assert load_store(location).people == ["alex_lacamoire", "biden", "kit_harington", "lin", "obama", "rose_leslie"]
    clip = tmp_path / "lin.avi"
    write_video(clip, range(120, 130))
    recognised = run_script("recognize_video.py", "--source", str(clip), "--no-display", "--json",
                            "--confidence", "0.8", *sface_model_args(), cwd=tmp_path, env=env)
    assert recognised.returncode == 0, recognised.stderr
    names = {face["name"] for line in recognised.stdout.splitlines() for face in json.loads(line)["faces"]}
    assert "lin" in names
    evaluated = run_script("evaluate.py", cwd=tmp_path, env=env)
    assert evaluated.returncode == 0, evaluated.stderr
    assert evaluated.stdout.startswith("10 vectors of 6 people")
    assert not (tmp_path / "output").exists()


def write_video(path, frames):
    """Those frames of the clip, as an MJPEG .avi."""
    capture = cv2.VideoCapture(str(shared_path("video/short_hamilton_clip.mp4")))
    wanted, writer = set(frames), None
    for index in range(max(wanted) + 1):
        ok, frame = capture.read()
        assert ok
        if index in wanted:
            if writer is None:
                writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, frame.shape[1::-1])
            writer.write(frame)
    writer.release()
    capture.release()


@pytest.mark.parametrize("script", ["recognize_video.py", "serve.py"])
def test_log_sightings_with_an_embeddings_file_is_refused_before_the_models_load(tmp_path, script):
    path = tmp_path / "e.pickle"
    save_store(make_store(), path)
    # a --detector that does not exist: had the models been loaded first, that would be the error
    # serve.py logs the visits of its own --source (a video made here), so it is given one
    source = tmp_path / "source.avi"
    video = cv2.VideoWriter(str(source), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    video.write(np.zeros((48, 64, 3), np.uint8))
    video.release()
    result = run_script(script, "--embeddings", str(path), "--log-sightings", "--camera", "door",
                        *(["--no-display"] if script == "recognize_video.py" else ["--port=0", "--source", str(source)]),
                        "--detector", str(tmp_path / "no-models"))
    assert_clean_failure(result, "--log-sightings needs a PostgreSQL gallery", str(path))
    assert "no-models" not in result.stderr


def test_serve_logs_sightings_of_its_own_source_only(tmp_path):
    result = run_script("serve.py", "--embeddings", str(tmp_path / "none.pickle"), "--log-sightings", "--port=0")
    assert_clean_failure(result, "--mqtt, --webhook and --log-sightings tell who arrives in the server's own video: "
                                 "give --source too")



"""The follower and the sightings plumbing, in process with the real sface networks (issue 14).

A GalleryFollower over a real embeddings file and its real watch thread: a gallery of another
profile is refused with a warning, the next good one is swapped in. run_recognition gives each
frame's named faces to a SightingLog (the PostgreSQL store's log has its own tests; here the seam's
contract: what is logged for a frame of the clip).
"""

import dataclasses
import threading

import cv2

from conftest import shared_path
from helpers import CLIP
from test_sface import SFACE_THRESHOLD, models  # noqa: F401  (a fixture: the sface networks)
from test_store import make_store

from facerec.follower import GalleryFollower, Naming
from facerec.matching import UNKNOWN
from facerec.recognition import FacePipeline
from facerec.running import run_recognition
from facerec.stores import PickleStore, SightingLog, load_store, save_store
from facerec.tracking import Tracker

WAIT_SECONDS = 60  # a bound on waiting for the watch thread, never a measure


def sface_store(n, seed):
    return dataclasses.replace(make_store(n=n, seed=seed), profile="sface", models={"profile": "sface"})


class Warnings:
    def __init__(self):
        self.lines, self.said = [], threading.Event()

    def __call__(self, message):
        self.lines.append(message)
        self.said.set()


def wait_until(condition):
    event = threading.Event()
    for _ in range(int(WAIT_SECONDS / 0.05)):
        if condition():
            return
        event.wait(0.05)
    raise AssertionError("the watch never got there")


def followed_file(models, tmp_path, warnings):
    """(file, its store, a follower of it for a recogniser with the real networks) over a small sface gallery."""
    detector, embedder = models
    path = tmp_path / "e.pickle"
    save_store(sface_store(2, 0), path)
    store = PickleStore(path)
    gallery = store.load()
    naming = Naming("nearest", SFACE_THRESHOLD)
    recogniser = FacePipeline(detector, embedder, naming.matcher(gallery))
    return path, store, GalleryFollower(store, recogniser, naming, "sface", gallery, warn=warnings)


def test_the_follower_refuses_a_gallery_of_another_profile_and_swaps_in_the_next_good_one(models, tmp_path):
    warnings = Warnings()
    path, store, follower = followed_file(models, tmp_path, warnings)
    recogniser, gallery = follower.recogniser, follower.gallery
    first_matcher = recogniser.matcher
    with follower.following():
        save_store(make_store(n=6), path)  # made by the openface profile
        assert warnings.said.wait(WAIT_SECONDS)
        assert recogniser.matcher is first_matcher and follower.gallery is gallery and follower.reloads == 0
        save_store(sface_store(4, 1), path)
        wait_until(lambda: follower.reloads == 1)
    assert len(warnings.lines) == 1
    assert "the new gallery is not used" in warnings.lines[0] and "made with the 'openface' profile" in warnings.lines[0]
    assert recogniser.matcher is not first_matcher and follower.gallery.names == sface_store(4, 1).names


class SightingsSeen(SightingLog):
    """A SightingLog that keeps what it is given, in order: what run_recognition hands a log, seen directly.

    The real log (PostgreSQL's facerec_sightings) is covered by test_postgres_scripts.py's
    test_sightings_of_the_clip_are_one_row_per_track_and_name (recognize_video.py --log-sightings on the clip)
    and test_postgres_store.py's test_sightings_*."""

    def __init__(self):
        self.frames, self.closed = [], False

    def log(self, sightings):
        self.frames.append(list(sightings))

    def close(self):
        self.closed = True


def test_run_recognition_logs_each_frames_named_faces_with_track_and_distance(models, tmp_path):
    from test_sface import enrol_with_lin

    detector, embedder = models
    gallery = load_store(enrol_with_lin(tmp_path))
    recogniser = FacePipeline(detector, embedder, Naming("nearest", SFACE_THRESHOLD).matcher(gallery), Tracker(1))
    capture = cv2.VideoCapture(str(shared_path(CLIP)))
    frames = [capture.read()[1] for _ in range(130)][116:130]  # lin on stage
    capture.release()
    seen = SightingsSeen()
    summary = run_recognition(frames, recogniser, sightings=seen)
    logged = [sighting for frame in seen.frames for sighting in frame]
    named = sum(count for name, count in summary.names.items() if name != UNKNOWN)
    assert named >= len(frames) and len(logged) == named  # every named face, and no Unknown one
    assert {sighting.name for sighting in logged} == {"lin"}
    assert all(isinstance(s.track, int) and 0 <= s.distance < SFACE_THRESHOLD for s in logged)
    assert all(frame for frame in seen.frames)  # a frame without a named face is not logged at all
    assert not seen.closed  # the caller closes the log



def test_what_this_process_wrote_and_uses_is_not_taken_up_again_when_the_watch_sees_the_file(models, tmp_path):
    # the web page's Learn: the engine writes the gallery and uses it at once; the watch then sees the new
    # file, and must hand on that same gallery, which the follower already uses (an SVM is not trained twice)
    path, store, follower = followed_file(models, tmp_path, Warnings())
    recogniser = follower.recogniser
    writer = store.open_writer(tmp_path, {"profile": "sface"}, 128)
    added = sface_store(4, 1)
    writer.record("person1/new.jpg", {"size": 1, "mtime_ns": 1}, "used", "person1", added.vectors[3])
    writer.finish()
    written = store.load()  # what the engine hands to the follower: the gallery just written, not read again
    follower.use(written)
    matcher = recogniser.matcher
    seen_by_a_watch = store._load()[0]  # what the watch thread reads when it sees the new file
    assert seen_by_a_watch is written and len(written) == 3
    follower._changed(seen_by_a_watch)
    assert follower.reloads == 1 and recogniser.matcher is matcher
    save_store(added, path)  # another process rewrites the file: read anew and taken up
    follower._changed(store._load()[0])
    assert follower.reloads == 2 and follower.gallery.names == added.names

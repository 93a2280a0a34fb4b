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
from facerec.recognition import Recogniser, run_recognition
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


def test_the_follower_refuses_a_gallery_of_another_profile_and_swaps_in_the_next_good_one(models, tmp_path):
    detector, embedder = models
    path = tmp_path / "e.pickle"
    save_store(sface_store(2, 0), path)
    store = PickleStore(path)
    gallery = store.load()
    naming = Naming("nearest", SFACE_THRESHOLD)
    recogniser = Recogniser(detector, embedder, naming.matcher(gallery))
    first_matcher = recogniser.matcher
    warnings = Warnings()
    follower = GalleryFollower(store, recogniser, naming, "sface", gallery, warn=warnings)
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
    """A SightingLog that keeps what it is given, in order."""

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
    recogniser = Recogniser(detector, embedder, Naming("nearest", SFACE_THRESHOLD).matcher(gallery), Tracker(1))
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


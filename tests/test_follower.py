"""The follower and the sightings plumbing, in process with the real sface networks (issue 14).

A GalleryFollower over a real embeddings file and its real watch thread: a gallery of another
profile is refused with a warning, the next good one is swapped in. run_recognition's visits reach a
SightingLog (--log-sightings) through the events (the PostgreSQL store's log has its own tests; here the
seam's contract: what is logged for a stretch of the clip).
"""

import dataclasses
import threading

import cv2

from conftest import shared_path
from helpers import CLIP
from test_sface import SFACE_THRESHOLD, models  # noqa: F401  (a fixture: the sface networks)
from test_store import make_store

from facerec.events import log_visits
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

    The real log (PostgreSQL's visits table) is covered by test_postgres_scripts.py's
    test_the_sightings_log_holds_the_visits_mqtt_is_told_over_the_clip and
    test_sightings_of_the_clip_are_one_row_per_track_and_name (recognize_video.py on the clip), and by
    test_postgres_store.py's test_sightings_*."""

    def __init__(self):
        self.rows, self.closed = [], False

    def log(self, sighting):
        self.rows.append(sighting)

    def close(self):
        self.closed = True


def test_run_recognition_logs_each_visit_once_at_its_arrival_and_once_at_its_departure(models, tmp_path):
    from test_sface import enrol_with_lin

    detector, embedder = models
    gallery = load_store(enrol_with_lin(tmp_path))
    recogniser = FacePipeline(detector, embedder, Naming("nearest", SFACE_THRESHOLD).matcher(gallery), Tracker(1))
    capture = cv2.VideoCapture(str(shared_path(CLIP)))
    frames = [capture.read()[1] for _ in range(130)][116:130]  # lin on stage
    capture.release()
    seen = SightingsSeen()
    events = log_visits(None, seen, "stage")
    summary = run_recognition(frames, recogniser, events=events)
    assert summary.names["lin"] >= len(frames)  # lin in every frame: one visit, however many faces
    arrivals = list(seen.rows)
    assert [row.name for row in arrivals if row.name != UNKNOWN] == ["lin"]
    assert all(row.left is None for row in arrivals) and [row.visit for row in arrivals] == list(range(1, len(arrivals) + 1))
    events.close()  # the run's end: every visit ends, each completing its own row
    departures = seen.rows[len(arrivals):]
    assert sorted((row.visit, row.name, row.arrived) for row in departures) == [
        (row.visit, row.name, row.arrived) for row in arrivals]
    assert all(row.left >= row.arrived for row in departures)
    (lin,) = [row for row in arrivals if row.name == "lin"]
    assert 0 <= lin.distance < SFACE_THRESHOLD and lin.unknown_group is None
    assert not seen.closed  # the log is its opener's to close

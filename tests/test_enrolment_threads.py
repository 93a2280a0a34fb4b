"""Extraction on every core (issue 22 item 3): the photos are read and their faces found on `jobs` threads, each
with its own detector, and embedded in this thread, in the dataset's order, with the vectors of one thread."""

import shutil
import threading

import cv2
import numpy as np
import pytest

from conftest import shared_path

from facerec.catalogue import PROFILES, SFACE, YUNET
from facerec.detection import load_detector
from facerec.embedding import load_embedder
from facerec.enrolment import USED, photo_embeddings
from facerec.stages import load_stages

SFACE_PROFILE = PROFILES["sface"]


@pytest.fixture(scope="module")
def sface():
    """(detector, embedder) on ../shared/models, the embedder on the catalogue's runtime."""
    models = shared_path("models")
    detector = load_detector(YUNET, [models / YUNET.files[0].filename], SFACE_PROFILE.confidence)
    return detector, load_embedder(SFACE, models / SFACE.files[0].filename)


@pytest.fixture
def photos(tmp_path):
    """Every photo of faces/known twice, a file that is no photo among them, and a photo with no face."""
    paths = []
    for copy in range(2):
        for photo in sorted(shared_path("faces/known").glob("*/*")):
            target = tmp_path / f"{copy}_{photo.parent.name}_{photo.name}"
            shutil.copyfile(photo, target)
            paths.append(target)
    (tmp_path / "notes.jpg").write_text("not a photo\n")
    blank = tmp_path / "blank.png"
    import cv2

    cv2.imwrite(str(blank), np.full((200, 200, 3), 128, np.uint8))
    return paths[:5] + [tmp_path / "notes.jpg"] + paths[5:11] + [blank] + paths[11:]


class CountingDetector:
    """The real detector, recording the thread of each call and refusing two calls at once (it is not shareable)."""

    def __init__(self, detector):
        self.detector, self.network, self.paths, self.confidence = (detector, detector.network, detector.paths,
                                                                    detector.confidence)
        self.threads, self.busy = [], threading.Lock()

    def detect(self, image, min_size=1):
        assert self.busy.acquire(blocking=False), "one detector used by two threads at once"
        try:
            self.threads.append(threading.current_thread().name)
            return self.detector.detect(image, min_size)
        finally:
            self.busy.release()


def outcomes(paths, detector, embedder, jobs):
    with photo_embeddings(paths, detector, embedder, jobs, load_stages()) as embedded:
        return list(embedded)


def test_two_jobs_find_faces_on_two_threads_and_give_the_vectors_of_one_in_order(sface, photos):
    detector, embedder = sface
    one = outcomes(photos, detector, embedder, jobs=1)
    counting = CountingDetector(detector)
    two = outcomes(photos, counting, embedder, jobs=2)
    assert [(e.status, e.faces, e.problems) for e in two] == [(e.status, e.faces, e.problems) for e in one]
    assert sum(e.status == USED for e in two) == len(photos) - 2  # the text file and the blank photo: reasons
    assert two[5].vector is None and two[12].vector is None and "no face found" in two[12].status
    for a, b in zip(one, two):
        assert (a.vector is None) == (b.vector is None)
        if a.vector is not None:
            np.testing.assert_array_equal(a.vector, b.vector)
    # the given detector served one of the threads (the other loaded its own copy); none ran in this thread
    assert counting.threads and all(name.startswith("enrol-find") for name in counting.threads)


def test_a_single_job_or_a_single_photo_runs_in_this_thread(sface, photos):
    detector, embedder = sface
    for paths, jobs in ((photos, 1), (photos[:1], 2)):
        counting = CountingDetector(detector)
        assert len(outcomes(paths, counting, embedder, jobs)) == len(paths)
        assert set(counting.threads) == {threading.current_thread().name}


def test_leaving_early_waits_only_for_the_photos_under_way(sface, photos):
    detector, embedder = sface
    counting = CountingDetector(detector)
    with photo_embeddings(photos * 4, counting, embedder, 2, ()) as embedded:
        first = next(embedded)
    assert first.status == USED
    # read ahead: at most PHOTOS_AHEAD_PER_JOB * jobs + 1 photos beyond the one taken, the rest never started
    assert len(counting.threads) <= 1 + 2 * 2 + 1 < len(photos) * 4
    assert not [thread for thread in threading.enumerate() if thread.name.startswith("enrol-find")]


class ThreadsRecordingDetector(CountingDetector):
    """CountingDetector that also records OpenCV's thread count at each call."""

    def __init__(self, detector):
        super().__init__(detector)
        self.opencv_threads = []

    def detect(self, image, min_size=1):
        self.opencv_threads.append(cv2.getNumThreads())
        return super().detect(image, min_size)


def test_opencvs_own_threads_are_off_while_the_jobs_threads_find_faces_and_as_before_afterwards(sface, photos):
    detector, embedder = sface
    before = cv2.getNumThreads()
    cv2.setNumThreads(2)
    try:
        for jobs, inside in ((2, {1}), (1, {2})):  # one job: this thread alone, OpenCV's threads left to it
            recording = ThreadsRecordingDetector(detector)
            assert [e.status for e in outcomes(photos[:6], recording, embedder, jobs)].count(USED) == 5
            assert set(recording.opencv_threads) == inside and cv2.getNumThreads() == 2
        # leaving early (an error, Ctrl-C) gives OpenCV its threads back too
        with pytest.raises(KeyboardInterrupt):
            with photo_embeddings(photos, ThreadsRecordingDetector(detector), embedder, 2, ()) as embedded:
                next(embedded)
                raise KeyboardInterrupt
        assert cv2.getNumThreads() == 2
    finally:
        cv2.setNumThreads(before)

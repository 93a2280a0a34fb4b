"""The res10 SSD detector (its TensorFlow twin from ../shared) on real photos."""

import cv2
import numpy as np
import pytest

from facerec.catalogue import PROFILES
from facerec.detection import MIN_FACE_SIZE, DetectedFace, Detector, clip_box, load_detector
from facerec.images import read_image
from facerec.modelfiles import network_files


@pytest.fixture(scope="module")
def detector():
    from conftest import shared_path
    network, paths = network_files(PROFILES["openface"].detectors, shared_path("models"))
    return load_detector(network, paths, confidence=0.5)


@pytest.fixture(scope="module")
def haar():
    """OpenCV's Haar cascade: an independent, older detector to say where the face is."""
    return cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")


def haar_faces(haar, image):
    scale = 800 / max(image.shape[:2])
    small = cv2.resize(image, None, fx=scale, fy=scale) if scale < 1 else image
    found = haar.detectMultiScale(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY), 1.1, 5, minSize=(40, 40))
    return [np.array([x, y, x + w, y + h]) / min(scale, 1) for x, y, w, h in found]


def inside(point, box):
    return box[0] <= point[0] <= box[2] and box[1] <= point[1] <= box[3]


def known_photos(shared):
    return sorted(p for p in shared("faces/known").glob("*/*") if p.is_file())


def test_every_known_photo_gives_exactly_one_face_where_haar_sees_it(detector, haar, shared):
    photos = known_photos(shared)
    assert len(photos) == 9
    for photo in photos:
        image = read_image(photo)
        faces = detector.detect(image)
        assert len(faces) == 1, f"{photo.name}: {len(faces)} faces"
        box = faces[0].box
        centre = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
        # the largest Haar face is the person; both detectors must agree on where it is
        reference = max(haar_faces(haar, image), key=lambda b: (b[2] - b[0]) * (b[3] - b[1]))
        assert inside(centre, reference), f"{photo.name}: SSD box {box} not on Haar face {reference}"
        reference_centre = ((reference[0] + reference[2]) / 2, (reference[1] + reference[3]) / 2)
        assert inside(reference_centre, box), f"{photo.name}: Haar face {reference} not in SSD box {box}"


def test_two_people_gives_two_faces_left_and_right(detector, shared):
    image = read_image(shared("faces/probe/two_people.jpg"))
    faces = detector.detect(image)
    assert len(faces) == 2
    centres = sorted((f.box[0] + f.box[2]) / 2 for f in faces)
    width = image.shape[1]
    assert centres[0] < width / 2 < centres[1]


def test_results_are_sorted_by_confidence_and_above_the_threshold(detector, shared):
    faces = detector.detect(read_image(shared("faces/probe/obama_and_biden.jpg")))
    confidences = [f.confidence for f in faces]
    assert confidences == sorted(confidences, reverse=True)
    assert all(c > 0.5 for c in confidences)


def test_boxes_are_clipped_to_a_face_cut_by_the_frame_edge(detector, shared):
    image = read_image(shared("faces/probe/obama_partial_face.jpg"))
    height, width = image.shape[:2]
    [face] = detector.detect(image)
    x1, y1, x2, y2 = face.box
    assert 0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height
    assert x1 <= 2  # the face runs off the left edge


def test_clip_box_keeps_boxes_inside_the_image():
    assert clip_box(-12.4, -3, 650.6, 200.5, 640, 360) == (0, 0, 640, 200)
    assert clip_box(10.5, 20.4, 30.6, 400, 640, 360) == (10, 20, 31, 360)


class CannedDetector(Detector):
    """The real Detector.detect filtering over boxes chosen by the test (sizes at the minimum's edge, which no
    photo of ../shared gives on demand). The real networks' boxes, filtered the same way, are covered above
    (test_every_known_photo_gives_exactly_one_face_where_haar_sees_it, test_two_people_gives_two_faces_*,
    test_results_are_sorted_by_confidence_and_above_the_threshold) and by test_confidence_threshold_filters."""

    def __init__(self, faces):
        self.faces = faces

    def _detect(self, image):
        return self.faces


def test_faces_under_the_minimum_size_are_dropped_and_the_rest_sorted():
    small = DetectedFace((0, 0, MIN_FACE_SIZE - 1, 50), 0.99)
    exact = DetectedFace((0, 0, MIN_FACE_SIZE, MIN_FACE_SIZE), 0.7)
    large = DetectedFace((0, 0, 100, 120), 0.9)
    detector = CannedDetector([small, exact, large])
    assert detector.detect(np.zeros((200, 200, 3), np.uint8)) == [large, exact]
    assert detector.detect(np.zeros((200, 200, 3), np.uint8), min_size=1) == [small, large, exact]


def test_confidence_threshold_filters(shared):
    from conftest import shared_path
    network, paths = network_files(PROFILES["openface"].detectors, shared_path("models"))
    image = read_image(shared("faces/probe/obama_and_biden.jpg"))
    loose = load_detector(network, paths, confidence=0.2).detect(image)
    strict = load_detector(network, paths, confidence=0.99).detect(image)
    assert len(strict) < len(loose)
    assert all(f.confidence > 0.99 for f in strict)


def test_yunet_is_not_asked_about_an_image_too_thin_to_hold_a_face(shared):
    """An image whose short side (after the profile's max_side) is under YuNet's smallest prior box has no face,
    whatever YuNet would answer: on such slivers its answer depended on what it had run before (a black
    100x20000 image gave two "faces" at 1.0 after real photos of that size)."""
    network, paths = network_files(PROFILES["sface"].detectors, shared("models"))
    yunet = load_detector(network, paths, confidence=0.5)
    asked = []
    forward = yunet._forward
    yunet._forward = lambda image: asked.append(image.shape) or forward(image)
    photo = read_image(known_photos(shared)[0])
    for height in (1, 5, 9):  # rows of a real face photo, stretched across: too thin for any face
        assert yunet.detect(cv2.resize(photo, (photo.shape[1], height))) == []
    assert yunet.detect(np.zeros((100, 20000, 3), np.uint8)) == []  # scaled to 3x640 by max_side
    assert asked == []
    assert yunet.detect(photo) and len(asked) == 1  # a photo still reaches YuNet, once

"""Label placement: every label readable, none covering another label or the status badge, all inside the frame."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import shared_path
from helpers import CLIP, CLIP_SIZE, clip_frame

from facerec.catalogue import PROFILES
from facerec.detection import load_detector
from facerec.drawing import (KNOWN_COLOUR, STATUS_COLOUR, UNKNOWN_COLOUR, annotate, draw_faces, label_size, overlap,
                             place_labels, status_rect)
from facerec.matching import Match
from facerec.modelfiles import network_files
from facerec.faces import RecognisedFace

WIDTH, HEIGHT = CLIP_SIZE
BADGE = status_rect(np.zeros((HEIGHT, WIDTH, 3), np.uint8), "30.0 fps")
LONG_LABEL = label_size("Unknown: 1.31")


def assert_readable(rects, obstacles=(BADGE,), frame_size=(WIDTH, HEIGHT)):
    """No two labels share a pixel, none touches an obstacle, all lie inside the frame."""
    width, height = frame_size
    for rect in rects:
        assert 0 <= rect[0] < rect[2] <= width and 0 <= rect[1] < rect[3] <= height, rect
        for obstacle in obstacles:
            assert not overlap(rect, obstacle), (rect, obstacle)
    for a, b in itertools.combinations(rects, 2):
        assert not overlap(a, b), (a, b)


def test_overlap_is_shared_pixels_only():
    assert overlap((0, 0, 10, 10), (9, 9, 20, 20))
    assert not overlap((0, 0, 10, 10), (10, 0, 20, 10))  # side by side: x2 is excluded
    assert not overlap((0, 0, 10, 10), (0, 10, 10, 20))


def test_a_lone_face_has_its_label_just_above_its_box():
    [rect] = place_labels((WIDTH, HEIGHT), [(300, 150, 360, 220)], [LONG_LABEL], [BADGE])
    assert rect == (300, 150 - LONG_LABEL[1], 300 + LONG_LABEL[0], 150)


def test_a_face_under_the_badge_keeps_its_label_clear_of_it():
    """Today's "nown: 1.31": a face at the top left had its label under the frame rate."""
    boxes = [(5, 5, 60, 70)]
    [rect] = place_labels((WIDTH, HEIGHT), boxes, [LONG_LABEL], [BADGE])
    assert_readable([rect])


def test_neighbours_side_by_side_get_labels_that_do_not_overlap():
    """Today's "Unl<nown": two faces closer than a label's width."""
    boxes = [(100, 100, 150, 160), (160, 100, 210, 160), (220, 105, 270, 165)]
    rects = place_labels((WIDTH, HEIGHT), boxes, [LONG_LABEL] * 3, [BADGE])
    assert_readable(rects)
    assert rects[0] == (100, 100 - LONG_LABEL[1], 100 + LONG_LABEL[0], 100)  # the first keeps its place


@pytest.mark.parametrize("layout", ["grid", "row at the top", "column at the right edge", "stacked boxes",
                                    "corners"])
def test_crowded_layouts_give_non_overlapping_labels_inside_the_frame(layout):
    boxes = {
        "grid": [(x, y, x + 40, y + 45) for x in range(10, 600, 130) for y in range(10, 330, 70)],  # 5 x 5
        "row at the top": [(x, 0, x + 38, 40) for x in range(0, 620, 40)],
        "column at the right edge": [(600, y, 640, y + 35) for y in range(0, 360, 36)],
        "stacked boxes": [(200 + 3 * i, 100 + 4 * i, 260 + 3 * i, 170 + 4 * i) for i in range(8)],
        "corners": [(0, 0, 50, 50), (590, 0, 640, 50), (0, 310, 50, 360), (590, 310, 640, 360)],
    }[layout]
    rects = place_labels((WIDTH, HEIGHT), boxes, [LONG_LABEL] * len(boxes), [BADGE])
    assert len(rects) == len(boxes)
    assert_readable(rects)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, WIDTH - 20), st.integers(0, HEIGHT - 20), st.integers(20, 150),
                          st.sampled_from(["lin: 0.41", "Unknown: 1.31", "alex_lacamoire: 1.05", "?"])),
                min_size=1, max_size=10))
def test_any_few_faces_get_non_overlapping_labels_inside_the_frame(faces):
    boxes = [(x, y, min(x + size, WIDTH), min(y + size, HEIGHT)) for x, y, size, _ in faces]
    rects = place_labels((WIDTH, HEIGHT), boxes, [label_size(text) for *_, text in faces], [BADGE])
    assert [(r[2] - r[0], r[3] - r[1]) for r in rects] == [label_size(text) for *_, text in faces]
    assert_readable(rects)


@pytest.fixture(scope="module")
def audience_frame():
    """Frame 228 of the clip (the audience shot) and its faces as the sface profile detects them."""
    profile = PROFILES["sface"]
    network, paths = network_files(profile.detectors, shared_path("models"))
    frame = clip_frame(shared_path(CLIP), 228)
    faces = load_detector(network, paths, profile.confidence).detect(frame)
    assert len(faces) >= 5  # six people side by side, two at the top left one above the other
    return frame, faces


def test_the_audience_shot_gets_readable_labels(audience_frame):
    frame, faces = audience_frame
    rects = place_labels((WIDTH, HEIGHT), [face.box for face in faces], [LONG_LABEL] * len(faces), [BADGE])
    assert_readable(rects)


def test_the_drawn_audience_shot_shows_every_label_and_the_badge_whole(audience_frame):
    """Through recognize_video.py's own drawing: each label's background border is intact, so nothing covers it."""
    frame, faces = audience_frame
    frame = frame.copy()
    recognised = [RecognisedFace(face, Match("obama", 0.98) if i == 3 else Match("Unknown", 1.31))
                  for i, face in enumerate(faces)]
    annotate(frame, recognised, 12.3)
    badge = status_rect(frame, "12.3 fps")
    rects = place_labels((WIDTH, HEIGHT), [face.box for face in faces],
                         [label_size(item.label) for item in recognised], [badge])
    assert_readable(rects, obstacles=[badge])
    for rect, item in zip([*rects, badge], [*recognised, None]):
        colour = STATUS_COLOUR if item is None else KNOWN_COLOUR if item.match.name != "Unknown" else UNKNOWN_COLOUR
        x1, y1, x2, y2 = rect
        border = np.concatenate([frame[y1, x1:x2], frame[y2 - 1, x1:x2], frame[y1:y2, x1], frame[y1:y2, x2 - 1]])
        assert (border == colour).all(), (rect, item)


def test_a_message_kept_clear_is_not_covered(audience_frame):
    frame, faces = audience_frame
    message = (0, HEIGHT - 21, 200, HEIGHT)
    view = frame.copy()
    draw_faces(view, [(face, "Unknown: 1.31", False) for face in faces], "status", keep_clear=[message])
    assert (view[message[1]:message[3], message[0]:message[2]] == frame[message[1]:message[3], message[0]:message[2]]).all()

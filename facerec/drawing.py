"""Drawing on frames: face boxes with their label, and a status line in a corner (`annotate`: a frame's Face records).

Labels are placed for all faces of a frame at once (`place_labels`), so that
none covers another label or the status badge and all stay inside the frame.
"""

from __future__ import annotations

import functools
from typing import Iterable, Sequence

import cv2
import numpy as np

from .detection import DetectedFace
from .faces import Face

FONT = cv2.FONT_HERSHEY_SIMPLEX
FONT_SCALE = 0.5
THICKNESS = 1
KNOWN_COLOUR = (0, 200, 0)
UNKNOWN_COLOUR = (0, 0, 230)
TEXT_COLOUR = (255, 255, 255)
STATUS_COLOUR = (40, 40, 40)
PADDING = 2  # pixels of background around the text, on each side

Rect = tuple[int, int, int, int]  # x1, y1, x2, y2: x2 and y2 excluded, so (0, 0, 1, 1) is one pixel


@functools.lru_cache(maxsize=1024)
def _text_size(text: str) -> tuple[int, int, int]:
    """(width, height, baseline) of a label; cached since the same labels recur every frame."""
    (width, height), baseline = cv2.getTextSize(text, FONT, FONT_SCALE, THICKNESS)
    return width, height, baseline


def label_size(text: str) -> tuple[int, int]:
    """(width, height) in pixels of `text` drawn on its background."""
    width, height, baseline = _text_size(text)
    return width + 2 * PADDING, height + baseline + 2 * PADDING


def overlap(a: Rect, b: Rect) -> bool:
    """True when the two rectangles share at least one pixel."""
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _inside(rect: Rect, width: int, height: int) -> Rect:
    """`rect` moved (not resized) to lie inside a width x height frame, as far as its size allows."""
    w, h = rect[2] - rect[0], rect[3] - rect[1]
    x = min(max(rect[0], 0), max(width - w, 0))
    y = min(max(rect[1], 0), max(height - h, 0))
    return x, y, x + w, y + h


def _candidates(box: tuple[int, int, int, int], size: tuple[int, int]) -> list[tuple[int, int]]:
    """Top-left corners to try for a label of `size` beside `box`, best first: above, below, inside its top."""
    x1, y1, x2, y2 = box
    w, h = size
    return [(x1, y1 - h), (x1, y2 + 1), (x1, y1), (x2 - w, y1 - h), (x2 - w, y2 + 1)]


def _free_corner(occupied: np.ndarray, size: tuple[int, int], near: tuple[int, int]) -> tuple[int, int] | None:
    """The top-left corner closest to `near` where a `size` rectangle covers no occupied pixel, or None.

    `occupied` is a boolean mask of the frame; its summed-area table tells each placement's count in O(1).
    """
    w, h = size
    rows, cols = occupied.shape
    if w > cols or h > rows:
        return None
    table = np.zeros((rows + 1, cols + 1), np.int32)
    table[1:, 1:] = occupied.cumsum(0).cumsum(1)
    covered = table[h:, w:] - table[:-h, w:] - table[h:, :-w] + table[:-h, :-w]  # [y, x]: pixels under the rect
    ys, xs = np.nonzero(covered == 0)
    if len(xs) == 0:
        return None
    best = np.argmin((xs - near[0]) ** 2 + 4 * (ys - near[1]) ** 2)  # moving sideways reads better than up/down
    return int(xs[best]), int(ys[best])


def place_labels(frame_size: tuple[int, int], boxes: Sequence[tuple[int, int, int, int]],
                 sizes: Sequence[tuple[int, int]], obstacles: Sequence[Rect] = ()) -> list[Rect]:
    """Where to draw each face's label: rectangles inside the frame that overlap no other label nor an obstacle.

    `frame_size` is (width, height); `boxes[i]` is face i's box (x1, y1, x2, y2) and `sizes[i]` its label's
    (width, height) (see `label_size`); `obstacles` are rectangles to keep clear, such as the status badge.
    Each label goes just above its box if that spot is free, else below it, else inside its top edge,
    else at the nearest free spot of the frame (preferring spots that cover no face). Faces are placed
    from the top of the frame down, so labels above the boxes go first. Only when the frame has no room
    left for a label does it fall back to overlapping, at the spot above its box.
    """
    width, height = frame_size
    order = sorted(range(len(boxes)), key=lambda i: (boxes[i][1], boxes[i][0]))
    placed: dict[int, Rect] = {}
    for index in order:
        w, h = sizes[index]
        taken = [*obstacles, *placed.values()]
        faces = [box for other, box in enumerate(boxes) if other != index]
        spots = [_inside((x, y, x + w, y + h), width, height) for x, y in _candidates(boxes[index], sizes[index])]
        free = [spot for spot in spots if not any(overlap(spot, rect) for rect in taken)]
        clear_of_faces = [spot for spot in free if not any(overlap(spot, box) for box in faces)]
        if clear_of_faces or free:
            placed[index] = (clear_of_faces or free)[0]
            continue
        occupied = np.zeros((height, width), bool)
        for rect in taken:
            occupied[max(rect[1], 0):max(rect[3], 0), max(rect[0], 0):max(rect[2], 0)] = True
        with_faces = occupied.copy()
        for box in faces:
            with_faces[max(box[1], 0):max(box[3], 0), max(box[0], 0):max(box[2], 0)] = True
        corner = _free_corner(with_faces, (w, h), spots[0][:2]) or _free_corner(occupied, (w, h), spots[0][:2])
        placed[index] = (corner[0], corner[1], corner[0] + w, corner[1] + h) if corner else spots[0]
    return [placed[index] for index in range(len(boxes))]


def _write(frame: np.ndarray, text: str, rect: Rect, colour: tuple[int, int, int]) -> None:
    """Fill `rect` with `colour` and write `text` in it."""
    x1, y1, x2, y2 = rect
    baseline = _text_size(text)[2]
    cv2.rectangle(frame, (x1, y1), (x2 - 1, y2 - 1), colour, cv2.FILLED)
    cv2.putText(frame, text, (x1 + PADDING, y2 - PADDING - baseline), FONT, FONT_SCALE, TEXT_COLOUR, THICKNESS,
                cv2.LINE_AA)


def label_rect(frame: np.ndarray, text: str, x: int, y: int) -> Rect:
    """The rectangle `draw_label(frame, text, x, y, ...)` covers."""
    w, h = label_size(text)
    return _inside((x, y - h, x + w, y), frame.shape[1], frame.shape[0])


def draw_label(frame: np.ndarray, text: str, x: int, y: int, colour: tuple[int, int, int]) -> Rect:
    """Write `text` on a filled background whose bottom-left corner is (x, y), kept inside the frame.

    Returns the rectangle it covers.
    """
    rect = label_rect(frame, text, x, y)
    _write(frame, text, rect, colour)
    return rect


def status_rect(frame: np.ndarray, text: str) -> Rect:
    """The rectangle `draw_status` covers in the top-left corner."""
    return label_rect(frame, text, 0, 0)


def _colour(known: bool) -> tuple[int, int, int]:
    return KNOWN_COLOUR if known else UNKNOWN_COLOUR


def _draw_box(frame: np.ndarray, face: DetectedFace, known: bool) -> None:
    x1, y1, x2, y2 = face.box
    cv2.rectangle(frame, (x1, y1), (x2, y2), _colour(known), 2)


def _draw_leader(frame: np.ndarray, face: DetectedFace, known: bool, rect: Rect) -> None:
    """A thin line from a label moved away from its box to the box, so it is clear whose label it is."""
    x1, y1, x2, y2 = face.box
    if overlap(rect, (x1 - 2, y1 - 2, x2 + 3, y2 + 3)):
        return
    centre = ((rect[0] + rect[2]) // 2, (rect[1] + rect[3]) // 2)
    on_box = (int(np.clip(centre[0], x1, x2)), int(np.clip(centre[1], y1, y2)))
    on_label = (int(np.clip(on_box[0], rect[0], rect[2] - 1)), int(np.clip(on_box[1], rect[1], rect[3] - 1)))
    cv2.line(frame, on_label, on_box, _colour(known), 1, cv2.LINE_AA)


def draw_status(frame: np.ndarray, text: str) -> Rect:
    """A status line (frame rate, counters) in the top-left corner; returns the rectangle it covers."""
    rect = status_rect(frame, text)
    _write(frame, text, rect, STATUS_COLOUR)
    return rect


def draw_faces(frame: np.ndarray, faces: Sequence[tuple[DetectedFace, str, bool]], status: str | None = None,
               keep_clear: Sequence[Rect] = ()) -> None:
    """Draw all faces of a frame, given as (face, label, known), and the status line, labels never overlapping.

    `keep_clear` are further rectangles the labels must not cover (a message drawn elsewhere).
    """
    obstacles = [*keep_clear, *([status_rect(frame, status)] if status is not None else [])]
    rects = place_labels((frame.shape[1], frame.shape[0]), [face.box for face, _, _ in faces],
                         [label_size(label) for _, label, _ in faces], obstacles)
    for face, _, known in faces:  # every box first: no box line may cross a label
        _draw_box(frame, face, known)
    for (face, _, known), rect in zip(faces, rects):
        _draw_leader(frame, face, known, rect)
    for (_, label, known), rect in zip(faces, rects):
        _write(frame, label, rect, _colour(known))
    if status is not None:
        draw_status(frame, status)


def annotate(frame: np.ndarray, recognised: Iterable[Face], fps: float) -> None:
    """Draw every face's box and label, and the frame rate, onto the frame; no label covers another or the rate."""
    draw_faces(frame, [(face.detected, face.label, face.known) for face in recognised], f"{fps:.1f} fps")

"""Drawing on frames: face boxes with their label, and a status line in a corner."""

from __future__ import annotations

import functools

import cv2
import numpy as np

from .detection import DetectedFace

FONT = cv2.FONT_HERSHEY_SIMPLEX
FONT_SCALE = 0.5
THICKNESS = 1
KNOWN_COLOUR = (0, 200, 0)
UNKNOWN_COLOUR = (0, 0, 230)
TEXT_COLOUR = (255, 255, 255)


@functools.lru_cache(maxsize=1024)
def _text_size(text: str) -> tuple[int, int, int]:
    """(width, height, baseline) of a label; cached since the same labels recur every frame."""
    (width, height), baseline = cv2.getTextSize(text, FONT, FONT_SCALE, THICKNESS)
    return width, height, baseline


def draw_label(frame: np.ndarray, text: str, x: int, y: int, colour: tuple[int, int, int]) -> None:
    """Write `text` on a filled background whose bottom-left corner is (x, y), kept inside the frame."""
    width, height, baseline = _text_size(text)
    x = int(np.clip(x, 0, max(frame.shape[1] - width - 4, 0)))
    y = int(np.clip(y, height + baseline + 4, frame.shape[0]))
    cv2.rectangle(frame, (x, y - height - baseline - 4), (x + width + 4, y), colour, cv2.FILLED)
    cv2.putText(frame, text, (x + 2, y - baseline - 2), FONT, FONT_SCALE, TEXT_COLOUR, THICKNESS, cv2.LINE_AA)


def draw_face(frame: np.ndarray, face: DetectedFace, label: str, known: bool = True) -> None:
    """Box the face and write its label just above the box (below its top edge if there is no room)."""
    colour = KNOWN_COLOUR if known else UNKNOWN_COLOUR
    x1, y1, x2, y2 = face.box
    cv2.rectangle(frame, (x1, y1), (x2, y2), colour, 2)
    draw_label(frame, label, x1, y1, colour)


def draw_status(frame: np.ndarray, text: str) -> None:
    """A status line (frame rate, counters) in the top-left corner."""
    draw_label(frame, text, 0, 0, (40, 40, 40))

"""Face quality: how good a detected face is for recognition, from 0 (useless) to 1.

The score is the geometric mean of four factors, each in [0, 1]:

- size: the face's shorter side over 112 px (SFace's input; 1 from there on): a small face holds
  fewer details, whatever the embedder.
- confidence: the detector's own confidence.
- sharpness: the variance of the Laplacian of the face, in grey, scaled to 64x64, as v / (v + 100).
  On ../shared, sharp photos give 600 to 2300 (0.86 to 0.96), the same photos blurred (Gaussian,
  sigma 3) 10 to 690, and the blurred audience of the clip 10 to 120.
- pose (only when the detector gives landmarks, YuNet): 1 minus how far the nose tip lies from the
  middle of the eyes, along the eye line, in eye distances (0 frontal, about 1 in profile). Roll is
  left out: the sface embedder aligns it away.

A geometric mean goes down whenever one factor does, so a face blurred, shrunk or turned away
scores lower than the same face sharp, large or frontal. Below POOR_QUALITY enrolment warns that
the photo is poor and names what is wrong; tracks prefer their better frames (tracking.py).
"""

from __future__ import annotations

import math
from typing import Sequence

import cv2
import numpy as np

from ..detection import DetectedFace
from . import Stage

FULL_SIZE = 112  # px of the face's shorter side at which size stops mattering
SHARPNESS_SIDE = 64  # faces are compared for sharpness at one size
SHARPNESS_HALF = 100.0  # the Laplacian variance that gives a sharpness of 0.5
POOR_QUALITY = 0.5  # below it a photo is a poor one to enrol (all of ../shared/faces/known score 0.85 or more)
POOR_FACTOR = 0.5  # a factor below it is named in the warning
_FACTOR_WORDS = {"size": "the face is small", "confidence": "the detector is unsure it is a face",
                 "sharpness": "blurred", "pose": "turned away"}


def factors(image: np.ndarray, face: DetectedFace) -> dict[str, float]:
    """Each factor of the face's quality (see the module), "pose" only with landmarks."""
    found = {"size": min(1.0, min(face.width, face.height) / FULL_SIZE),
             "confidence": float(np.clip(face.confidence, 0.0, 1.0)),
             "sharpness": sharpness(image, face)}
    if face.landmarks is not None:
        found["pose"] = frontal(np.asarray(face.landmarks, np.float64))
    return found


def sharpness(image: np.ndarray, face: DetectedFace) -> float:
    x1, y1, x2, y2 = face.box
    crop = image[y1:y2, x1:x2]
    if crop.size == 0:
        return 0.0
    grey = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY) if crop.ndim == 3 else crop
    grey = cv2.resize(grey, (SHARPNESS_SIDE, SHARPNESS_SIDE), interpolation=cv2.INTER_AREA)
    variance = float(cv2.Laplacian(grey, cv2.CV_64F).var())
    return variance / (variance + SHARPNESS_HALF)


def frontal(landmarks: np.ndarray) -> float:
    """1 for the nose tip midway between the eyes, 0 for one eye distance or more to the side."""
    right_eye, left_eye, nose = landmarks[0], landmarks[1], landmarks[2]
    eye_line = left_eye - right_eye
    distance = float(np.linalg.norm(eye_line))
    if distance == 0:
        return 0.0
    offset = abs(float(np.dot(nose - (right_eye + left_eye) / 2, eye_line / distance))) / distance
    return max(0.0, 1.0 - offset)


def score(found: dict[str, float]) -> float:
    """The geometric mean of the factors."""
    return math.prod(found.values()) ** (1 / len(found))


class QualityStage(Stage):
    """Fills `face.quality` (see the module)."""

    def run(self, image: np.ndarray, faces: Sequence[DetectedFace]) -> list[float]:
        return [round(score(factors(image, face)), 4) for face in faces]

    def problem(self, image: np.ndarray, face: DetectedFace) -> str | None:
        found = factors(image, face)
        quality = score(found)
        if quality >= POOR_QUALITY:
            return None
        weak = [_FACTOR_WORDS[name] for name, value in found.items() if value < POOR_FACTOR]
        return (f"a poor photo to enrol (quality {quality:.2f}, below {POOR_QUALITY}" + (f": {', '.join(weak)}" if weak
                else "") + "): a closer, sharper, frontal photo names the person better")

"""Per-face stages: each reads every detected face of an image before it is embedded and fills one field
of its Face record (the row's `name`: `face.quality`, `"quality"` in --json and the web API).

A stage is one module here with one subclass of `Stage` below, named by one row in
catalogue.FACE_STAGES (`backend`: "module.Class"); the recogniser, the JSON line, the web protocol and the drawing read the
record's fields without knowing them. `load_stages` builds the stages of the catalogue, in its order.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from typing import Any, Sequence

import numpy as np

from ..catalogue import FACE_STAGES, FaceStage
from ..detection import DetectedFace


class Stage(ABC):
    """One per-face stage, built from its catalogue row."""

    def __init__(self, row: FaceStage) -> None:
        self.row = row
        self.name = row.name

    @abstractmethod
    def run(self, image: np.ndarray, faces: Sequence[DetectedFace]) -> list[Any]:
        """One value per face of `image`, in the order of `faces` (a number, string or None: JSON-ready)."""

    def problem(self, image: np.ndarray, face: DetectedFace) -> str | None:
        """Why `face` makes `image` a poor photo to enrol (enrolment warns with it), or None."""
        return None


def load_stages(rows: Sequence[FaceStage] = FACE_STAGES) -> list[Stage]:
    """The stages of `rows` (default: the catalogue's), each built by the class its row names."""
    stages = []
    for row in rows:
        module, name = row.backend.rsplit(".", 1)
        stages.append(getattr(importlib.import_module(f"{__name__}.{module}"), name)(row))
    return stages

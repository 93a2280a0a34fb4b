"""Face detection: one small interface, one dataclass for a found face, one class per backend.

A backend class is registered under the `backend` name its catalogue row
uses; `load_detector` builds it from the row and the resolved file paths.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from .catalogue import Network, backend_registry
from .errors import FacerecError

MIN_FACE_SIZE = 20  # pixels a side; smaller boxes are noise or too small to recognise
DEFAULT_CONFIDENCE = 0.5
# The lowest confidence a user may ask for. Measured on the photos and the clip of ../shared
# (bench/confidence_floor.py): at 0.2 the most boxes in one photo or frame are 4 (res10) and 12 (YuNet);
# at 0.05, 131 and 28; at 0, 131 and 1,555: nearly all of them not faces, and each one is embedded.
MIN_CONFIDENCE = 0.2


@dataclass(frozen=True)
class DetectedFace:
    """A face in an image: box (x1, y1, x2, y2) in pixels inside the image, confidence, optional landmarks."""

    box: tuple[int, int, int, int]
    confidence: float
    landmarks: np.ndarray | None = None  # (5, 2): right eye, left eye, nose, mouth corners (YuNet)

    @property
    def width(self) -> int:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> int:
        return self.box[3] - self.box[1]


class Detector(ABC):
    """Finds faces in a BGR image."""

    def __init__(self, network: Network, paths: Sequence[Path], confidence: float) -> None:
        self.network = network
        self.paths = list(paths)
        self.confidence = confidence

    def detect(self, image: np.ndarray, min_size: int = MIN_FACE_SIZE) -> list[DetectedFace]:
        """Faces above the confidence, clipped to the image, at least `min_size` px a side, most confident first."""
        faces = [face for face in self._detect(image) if min(face.width, face.height) >= max(min_size, 1)]
        return sorted(faces, key=lambda face: face.confidence, reverse=True)

    @abstractmethod
    def _detect(self, image: np.ndarray) -> list[DetectedFace]:
        """Faces above the confidence with boxes already clipped to the image."""


# backend name in the catalogue -> class; decorate a new Detector class with @detector_backend("name")
DETECTOR_BACKENDS, detector_backend = backend_registry()


def clip_box(x1: float, y1: float, x2: float, y2: float, width: int, height: int) -> tuple[int, int, int, int]:
    """Round a box to whole pixels and keep it inside a width x height image."""
    return (
        int(np.clip(round(x1), 0, width)),
        int(np.clip(round(y1), 0, height)),
        int(np.clip(round(x2), 0, width)),
        int(np.clip(round(y2), 0, height)),
    )


def read_network(paths: Sequence[Path]) -> cv2.dnn.Net:
    """Load a network from its files with cv2.dnn.readNet; a file OpenCV cannot parse is a FacerecError."""
    try:
        # the catalogue lists (graph, weights); readNet takes (weights, graph)
        return cv2.dnn.readNet(*(str(path) for path in reversed(paths)))
    except cv2.error as error:
        names = ", ".join(str(path) for path in paths)
        raise FacerecError(f"OpenCV cannot load the network from {names}: {error.err or error}") from None


@detector_backend("ssd")
class SsdDetector(Detector):
    """OpenCV's res10 SSD (Caffe or TensorFlow files): output blob [1, 1, N, 7] with boxes in [0, 1]."""

    def __init__(self, network: Network, paths: Sequence[Path], confidence: float) -> None:
        super().__init__(network, paths, confidence)
        self.net = read_network(paths)

    def _detect(self, image: np.ndarray) -> list[DetectedFace]:
        height, width = image.shape[:2]
        blob = cv2.dnn.blobFromImage(
            cv2.resize(image, self.network.input_size),
            self.network.scale,
            self.network.input_size,
            self.network.mean,
            swapRB=self.network.swap_rb,
        )
        self.net.setInput(blob)
        rows = self.net.forward().reshape(-1, 7)
        rows = rows[rows[:, 2] > self.confidence]
        scale = np.array([width, height, width, height])
        return [
            DetectedFace(clip_box(*(row[3:7] * scale), width, height), float(row[2]))
            for row in rows
        ]


@detector_backend("yunet")
class YuNetDetector(Detector):
    """OpenCV Zoo's YuNet through cv2.FaceDetectorYN: boxes and 5 landmarks, on the frame scaled to max_side."""

    NMS_THRESHOLD = 0.3  # OpenCV Zoo's defaults, unless the catalogue row says otherwise
    TOP_K = 5000

    def __init__(self, network: Network, paths: Sequence[Path], confidence: float) -> None:
        super().__init__(network, paths, confidence)
        try:
            self.yunet = cv2.FaceDetectorYN.create(str(paths[0]), "", network.input_size, confidence,
                                                   network.nms_threshold or self.NMS_THRESHOLD, self.TOP_K)
        except cv2.error as error:
            raise FacerecError(f"OpenCV cannot load the YuNet detector from {paths[0]}: {error.err or error}") from None

    def _detect(self, image: np.ndarray) -> list[DetectedFace]:
        height, width = image.shape[:2]
        scale = min(1.0, (self.network.max_side or max(height, width)) / max(height, width))
        if scale < 1.0:
            image = cv2.resize(image, (max(1, round(width * scale)), max(1, round(height * scale))),
                               interpolation=cv2.INTER_AREA)
        self.yunet.setInputSize((image.shape[1], image.shape[0]))
        _, rows = self.yunet.detect(image)  # rows: x, y, w, h, 5 landmarks (x, y), score
        if rows is None:
            return []
        rows = rows.astype(np.float32)
        rows[:, :14] /= scale  # back to the caller's pixels
        faces = []
        for row in rows:
            x, y, w, h = row[:4]
            faces.append(DetectedFace(clip_box(x, y, x + w, y + h, width, height), float(row[14]),
                                      row[4:14].reshape(5, 2).copy()))
        return faces


def load_detector(network: Network, paths: Sequence[Path], confidence: float = DEFAULT_CONFIDENCE) -> Detector:
    """Build the detector backend that the catalogue row names."""
    return DETECTOR_BACKENDS[network.backend](network, paths, confidence)

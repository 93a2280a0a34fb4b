"""Face detection: one small interface, one dataclass for a found face, one class per backend.

A backend class is registered under the `backend` name its catalogue row
uses; `load_detector` builds it from the row and the resolved file paths.
"""

from __future__ import annotations

import contextlib
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import cv2
import numpy as np

from .catalogue import OPENCV_BELOW, OPENCV_MINIMUM, Network, backend_registry
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


def opencv_version_problem(version: str = cv2.__version__) -> str | None:
    """Why this OpenCV version cannot load every catalogued model, or None if it can."""
    found = tuple(int(part) for part in re.findall(r"\d+", version)[:3])
    if OPENCV_MINIMUM <= found < OPENCV_BELOW:
        return None
    wanted = f"opencv-python>={'.'.join(map(str, OPENCV_MINIMUM))},<{'.'.join(map(str, OPENCV_BELOW))}"
    return f"OpenCV {version} is installed, but the models need {wanted}: pip install -r requirements.txt"


@contextlib.contextmanager
def quiet_opencv() -> Iterator[None]:
    """Silence OpenCV's own log lines while the body runs (a failed forward pass prints a dozen, probing a camera
    index a screenful of warnings)."""
    logging = getattr(cv2.utils, "logging", cv2)  # cv2.utils.logging in 4.14, cv2.setLogLevel in 4.11
    previous = logging.getLogLevel()
    logging.setLogLevel(0)  # LOG_LEVEL_SILENT
    try:
        yield
    finally:
        logging.setLogLevel(previous)


def check_output(network: Network, paths: Sequence[Path], run: Callable[[], np.ndarray],
                 fits: Callable[[tuple[int, ...]], bool], expected: str, given: str) -> None:
    """Raise FacerecError naming the files if `run` (the network on `given`, a dummy input) fails or gives
    an output whose shape does not `fit`.

    A file OpenCV reads but that is another network (or another version of it) is refused
    here, when it is loaded, instead of failing mid-run with OpenCV's own error.
    """
    names = " + ".join(str(path) for path in paths)
    try:
        with quiet_opencv():
            shape = tuple(np.shape(run()))
    except cv2.error as error:
        reason = next((line.strip("> ") for line in str(error.err or error).splitlines() if line.strip("> ")), "")
        raise FacerecError(f"model file {names} does not work as the {network.name} network: OpenCV cannot run "
                           f"it on {given} ({reason}); expected an output of shape {expected}") from None
    if not fits(shape):
        raise FacerecError(f"model file {names} does not work as the {network.name} network: on {given} it gives "
                           f"an output of shape {'x'.join(map(str, shape))}, expected {expected}")


class Detector(ABC):
    """Finds faces in a BGR image."""

    OUTPUT_SHAPE = ""  # the network's raw output as a message says it; empty: no load-time check

    def __init__(self, network: Network, paths: Sequence[Path], confidence: float) -> None:
        self.network = network
        self.paths = list(paths)
        self.confidence = confidence

    def check_output(self) -> None:
        """Run a blank image of the network's input size through it; another network's file is a FacerecError."""
        if not self.OUTPUT_SHAPE:
            return
        width, height = self.network.input_size
        blank = np.zeros((height, width, 3), np.uint8)
        check_output(self.network, self.paths, lambda: self._forward(blank), self._output_fits, self.OUTPUT_SHAPE,
                     f"a blank {width}x{height} image")

    def detect(self, image: np.ndarray, min_size: int = MIN_FACE_SIZE) -> list[DetectedFace]:
        """Faces above the confidence, clipped to the image, at least `min_size` px a side, most confident first."""
        faces = [face for face in self._detect(image) if min(face.width, face.height) >= max(min_size, 1)]
        return sorted(faces, key=lambda face: face.confidence, reverse=True)

    @abstractmethod
    def _detect(self, image: np.ndarray) -> list[DetectedFace]:
        """Faces above the confidence with boxes already clipped to the image."""

    # A backend that sets OUTPUT_SHAPE gives these two, and is checked when loaded.
    def _forward(self, image: np.ndarray) -> np.ndarray:
        """The network's raw output for the image."""
        raise NotImplementedError

    @staticmethod
    def _output_fits(shape: tuple[int, ...]) -> bool:
        """Whether a raw output of this shape is the one this backend reads."""
        return True


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
        with quiet_opencv():
            return cv2.dnn.readNet(*(str(path) for path in reversed(paths)))
    except cv2.error as error:
        names = ", ".join(str(path) for path in paths)
        raise FacerecError(f"OpenCV cannot load the network from {names}: {error.err or error}") from None


@detector_backend("ssd")
class SsdDetector(Detector):
    """OpenCV's res10 SSD (Caffe or TensorFlow files): output blob [1, 1, N, 7] with boxes in [0, 1]."""

    OUTPUT_SHAPE = "1x1xNx7 (N detections: image, class, confidence, box)"

    def __init__(self, network: Network, paths: Sequence[Path], confidence: float) -> None:
        super().__init__(network, paths, confidence)
        self.net = read_network(paths)

    @staticmethod
    def _output_fits(shape: tuple[int, ...]) -> bool:
        return len(shape) == 4 and shape[:2] == (1, 1) and shape[3] == 7

    def _forward(self, image: np.ndarray) -> np.ndarray:
        blob = cv2.dnn.blobFromImage(
            cv2.resize(image, self.network.input_size),
            self.network.scale,
            self.network.input_size,
            self.network.mean,
            swapRB=self.network.swap_rb,
        )
        self.net.setInput(blob)
        return self.net.forward()

    def _detect(self, image: np.ndarray) -> list[DetectedFace]:
        height, width = image.shape[:2]
        rows = self._forward(image).reshape(-1, 7)
        rows = rows[rows[:, 2] > self.confidence]
        scale = np.array([width, height, width, height])
        return [
            DetectedFace(clip_box(x1, y1, x2, y2, width, height), float(row[2]))
            for row in rows
            for x1, y1, x2, y2 in [row[3:7] * scale]
        ]


@detector_backend("yunet")
class YuNetDetector(Detector):
    """OpenCV Zoo's YuNet through cv2.FaceDetectorYN: boxes and 5 landmarks, on the frame scaled to max_side."""

    NMS_THRESHOLD = 0.3  # OpenCV Zoo's defaults, unless the catalogue row says otherwise
    TOP_K = 5000
    OUTPUT_SHAPE = "Nx15 (N faces: box, 5 landmarks, score)"
    SMALLEST_FACE = 10  # pixels: YuNet's smallest prior box (min_sizes 10, 16, 24 at stride 8)

    def __init__(self, network: Network, paths: Sequence[Path], confidence: float) -> None:
        super().__init__(network, paths, confidence)
        try:
            with quiet_opencv():
                self.yunet = cv2.FaceDetectorYN.create(str(paths[0]), "", network.input_size, confidence,
                                                       network.nms_threshold or self.NMS_THRESHOLD, self.TOP_K)
        except cv2.error as error:
            raise FacerecError(f"OpenCV cannot load the YuNet detector from {paths[0]}: {error.err or error}") from None

    @staticmethod
    def _output_fits(shape: tuple[int, ...]) -> bool:
        return len(shape) == 2 and shape[1] == 15

    def _forward(self, image: np.ndarray) -> np.ndarray:
        """Rows of x, y, w, h, 5 landmarks (x, y), score, in the pixels of `image`."""
        self.yunet.setInputSize((image.shape[1], image.shape[0]))
        _, rows = self.yunet.detect(image)
        return np.zeros((0, 15), np.float32) if rows is None else rows

    def _detect(self, image: np.ndarray) -> list[DetectedFace]:
        height, width = image.shape[:2]
        scale = min(1.0, (self.network.max_side or max(height, width)) / max(height, width))
        if scale < 1.0:
            image = cv2.resize(image, (max(1, round(width * scale)), max(1, round(height * scale))),
                               interpolation=cv2.INTER_AREA)
        if min(image.shape[:2]) < self.SMALLEST_FACE:
            # no face fits, and YuNet's answers on such slivers are garbage that depends on what it ran before
            # (a black 100x20000 image, scaled to 3x640, gave two "faces" at 1.0 after real photos of that size)
            return []
        rows = self._forward(image).astype(np.float32)
        rows = rows[np.isfinite(rows).all(axis=1)]  # YuNet gives infinite boxes on very narrow images: no face
        rows[:, :14] /= scale  # back to the caller's pixels
        faces = []
        for row in rows:
            x, y, w, h = row[:4]
            faces.append(DetectedFace(clip_box(x, y, x + w, y + h, width, height), float(row[14]),
                                      row[4:14].reshape(5, 2).copy()))
        return faces


def load_detector(network: Network, paths: Sequence[Path], confidence: float = DEFAULT_CONFIDENCE) -> Detector:
    """Build the detector backend that the catalogue row names, checked on a blank image (FacerecError if wrong)."""
    detector = DETECTOR_BACKENDS[network.backend](network, paths, confidence)
    detector.check_output()
    return detector

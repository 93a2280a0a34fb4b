"""Face embedding: turn each detected face into a unit-length vector, one class per backend.

All faces of an image go through the network in one call. Vectors are
L2-normalised, so distances between them lie in [0, 2] whatever the model.
"""

from __future__ import annotations

import copy
import os
import sys
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np

from .catalogue import Network, backend_registry
from .detection import DetectedFace, check_output, quiet_opencv, read_network
from .errors import FacerecError
from .modelfiles import cache_dir
from .plainonnx import plain_model

# "opencv": every network through OpenCV's DNN, even where the catalogue names a faster runtime that is installed.
RUNTIME_VARIABLE = "FACEREC_RUNTIME"

# The arithmetic an embedder computes in. float32 unless asked: the thresholds and every figure were measured
# in it. bfloat16 (OpenVINO, on a processor with avx512_bf16 or AMX) is faster but moves vectors by up to 6e-3
# (docs/benchmarks.md, "Precision"); OpenVINO would pick it by itself on such a processor, so it is always told.
FLOAT32, BFLOAT16 = "float32", "bfloat16"
PRECISIONS = (FLOAT32, BFLOAT16)


# Where SFace (and ArcFace) put the eyes, nose tip and mouth corners of a 112x112 face: the blank
# face of the load-time check carries them, so that aligning it changes nothing.
_REFERENCE_LANDMARKS_112 = np.array([[38.29, 51.70], [73.53, 51.50], [56.03, 71.74], [41.55, 92.37], [70.73, 92.20]])


class Embedder(ABC):
    """Maps the faces found in a BGR image to an (n_faces, dimension) float32 array of unit vectors."""

    runtime = "OpenCV's DNN"  # what runs the network, as the run's summary and /api/info name it

    def __init__(self, network: Network, path: Path) -> None:
        self.network = network
        self.paths = [path]
        self.dimension: int = network.dimension or 0
        # threads one embedding runs on, of the embedder's own runtime (OpenCV's DNN: OpenCV's own setting)
        self.threads = 1
        self.precision = FLOAT32  # what it computes in: OpenCV's DNN runs every file here in float32

    def description(self) -> str:
        """`SFace on OpenVINO, 2 threads, float32`: the network, what runs it, on how many threads, in what."""
        threads = cv2.getNumThreads() if self.runtime == Embedder.runtime else self.threads  # OpenCV's own setting
        return (f"{self.network.name.split()[0]} on {self.runtime}, {threads} thread{'s' * (threads != 1)}, "
                f"{self.precision}")

    def check_output(self) -> None:
        """Embed one blank face of the network's input size; a file that is another network is a FacerecError."""
        width, height = self.network.input_size
        blank = np.zeros((height, width, 3), np.uint8)
        face = DetectedFace((0, 0, width, height), 1.0, _REFERENCE_LANDMARKS_112 * (width / 112, height / 112))
        check_output(self.network, self.paths, lambda: self._embed(blank, [face]),
                     lambda shape: len(shape) == 2 and shape[0] == 1 and shape[1] == (self.dimension or shape[1]),
                     f"1x{self.dimension or 'D'} (one vector a face)", f"a blank {width}x{height} face")

    def embed(self, image: np.ndarray, faces: Sequence[DetectedFace]) -> np.ndarray:
        """One unit-length row per face, in the order of `faces`."""
        if not faces:
            return np.zeros((0, self.dimension), np.float32)
        vectors = np.asarray(self._embed(image, faces), dtype=np.float32).reshape(len(faces), -1)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.where(norms == 0, 1.0, norms)

    @abstractmethod
    def _embed(self, image: np.ndarray, faces: Sequence[DetectedFace]) -> np.ndarray:
        """The network's raw output for the faces, one row each."""

    def on_one_thread(self) -> Embedder:
        """This embedder, or a copy whose runtime computes on one thread: for a caller whose own threads keep the
        other cores busy (extraction's face finders). On two shared cores, a second thread of its own only
        waited for the first: extract_embeddings.py --jobs 2 took a quarter more CPU time with it."""
        return self

    def another(self) -> Embedder:
        """An embedder of the same network that may embed in another thread at the same time as this one (a set
        of networks of serve.py's): OpenCV's networks are not shared between threads, so this one is loaded again
        from the same (already checked) file."""
        return type(self)(self.network, self.paths[0])


def usable_cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


# backend name in the catalogue -> class; decorate a new Embedder class with @embedder_backend("name")
EMBEDDER_BACKENDS, embedder_backend = backend_registry()


def crop(image: np.ndarray, face: DetectedFace) -> np.ndarray:
    """The face's box cut out of the image (a view, not a copy)."""
    x1, y1, x2, y2 = face.box
    return image[y1:y2, x1:x2]


@embedder_backend("openface")
class OpenFaceEmbedder(Embedder):
    """OpenFace nn4.small2.v1 through cv2.dnn.readNetFromTorch: 96x96 RGB crops scaled to [0, 1]."""

    def __init__(self, network: Network, path: Path) -> None:
        super().__init__(network, path)
        self.net = read_network([path])

    def _embed(self, image: np.ndarray, faces: Sequence[DetectedFace]) -> np.ndarray:
        blob = cv2.dnn.blobFromImages(
            [crop(image, face) for face in faces],
            self.network.scale,
            self.network.input_size,
            self.network.mean,
            swapRB=self.network.swap_rb,
            crop=False,
        )
        self.net.setInput(blob)
        return self.net.forward()


@embedder_backend("sface")
class SFaceEmbedder(Embedder):
    """OpenCV Zoo's SFace through cv2.FaceRecognizerSF: each face aligned on its 5 landmarks (alignCrop), then embedded.

    One network call per face, not per image: the int8 block-quantised model run on a
    batch of faces (cv2.dnn, OpenCV 4.x) returns wrong features for all but the first face.
    """

    def __init__(self, network: Network, path: Path) -> None:
        super().__init__(network, path)
        try:
            with quiet_opencv():
                self.sface = cv2.FaceRecognizerSF.create(str(path), "")
        except cv2.error as error:
            raise FacerecError(f"OpenCV cannot load the SFace embedder from {path}: {error.err or error}") from None

    def _embed(self, image: np.ndarray, faces: Sequence[DetectedFace]) -> np.ndarray:
        return np.vstack([self.sface.feature(self.align(image, face)).reshape(1, -1) for face in faces])

    def align(self, image: np.ndarray, face: DetectedFace) -> np.ndarray:
        """The 112x112 crop with the face's eyes, nose and mouth corners where SFace expects them."""
        if face.landmarks is None:
            raise FacerecError("SFace needs the 5 landmarks of each face, and this detector gives none: use YuNet")
        x1, y1, x2, y2 = face.box
        row = np.array([x1, y1, x2 - x1, y2 - y1, *np.asarray(face.landmarks).ravel(), face.confidence], np.float32)
        return self.sface.alignCrop(image, row.reshape(1, 15))


@embedder_backend("sface@openvino")
class OpenVinoSFaceEmbedder(SFaceEmbedder):
    """SFace aligned as above, its network run by OpenVINO on the plain float32 file derived from the int8 one.

    The same vectors as OpenCV's DNN (within 1e-6) in less than half the time a face (bench/runtimes.py,
    quiet machine: on two threads 2.02x OpenCV's DNN on the int8 file, on one 1.25x). One face a call (a batch
    is no faster in OpenVINO), on THREADS threads.
    """

    THREADS = 2  # at most: never more than the cores this process may run on (a pinned run gets one)
    runtime = "OpenVINO"
    _HINTS = {FLOAT32: "f32", BFLOAT16: "bf16"}  # INFERENCE_PRECISION_HINT's names

    def __init__(self, network: Network, path: Path, precision: str = FLOAT32, threads: int | None = None) -> None:
        import openvino  # ImportError: not installed, and load_embedder falls back to OpenCV's DNN

        assert network.plain is not None
        model = plain_model(path, network.plain, cache_dir())
        super().__init__(network, path)  # OpenCV's SFace, for alignCrop
        self._core = openvino.Core()
        self._asked = precision
        self.compiled = self._compiled(min(threads or self.THREADS, self.THREADS, usable_cores()), model)
        self._request = self.compiled.create_infer_request()

    def _compiled(self, threads: int, model: bytes | None = None) -> Any:
        """The network compiled for `threads` threads in the precision asked; `threads` and `precision` become what
        OpenVINO says it runs on and in (float32 where bf16 is not offered). The graph read for it is dropped once
        compiled: kept, it held 36 MB a compilation (bench/service_memory.py). `model`: the plain file's bytes
        (default: read again)."""
        assert self.network.plain is not None
        if model is None:
            model = plain_model(self.paths[0], self.network.plain, cache_dir())
        graph = self._core.read_model(model=model)
        width, height = self.network.input_size
        graph.reshape([1, 3, height, width])
        compiled = self._core.compile_model(graph, "CPU", {
            "INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_PRECISION_HINT": self._HINTS[self._asked]})
        ran = compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
        self.precision = {hint: name for name, hint in self._HINTS.items()}.get(ran, ran)
        self.threads = int(compiled.get_property("INFERENCE_NUM_THREADS"))
        return compiled

    def on_one_thread(self) -> Embedder:
        if self.threads <= 1:
            return self
        single = copy.copy(self)  # shares OpenCV's SFace, for alignCrop: used by one thread at a time
        single.compiled = single._compiled(1)
        single._request = single.compiled.create_infer_request()
        return single

    def another(self) -> Embedder:
        """A copy that shares this one's compiled network (OpenVINO runs several inference requests of one compiled
        model at once) with an inference request of its own; and OpenCV's SFace, whose alignCrop only reads it
        (a const method on local values, OpenCV's face_recognize.cpp). Measured: a second compilation cost 142 MB,
        a second request nothing to speak of (bench/service_memory.py)."""
        other = copy.copy(self)
        other._request = self.compiled.create_infer_request()
        return other

    def _embed(self, image: np.ndarray, faces: Sequence[DetectedFace]) -> np.ndarray:
        rows = []
        for face in faces:
            blob = cv2.dnn.blobFromImage(self.align(image, face), 1.0, self.network.input_size,
                                         swapRB=self.network.swap_rb)
            self._request.infer({0: blob})
            rows.append(self._request.get_output_tensor(0).data.reshape(1, -1).copy())
        return np.vstack(rows)


def faster_embedder(network: Network, path: Path, precision: str = FLOAT32,
                    threads: int | None = None) -> Embedder | None:
    """The backend of the network's faster runtime, or None: none catalogued, not installed, $FACEREC_RUNTIME=opencv,
    or `path` is not the catalogued file (a user's own model: what it derives to is unknown)."""
    backend = EMBEDDER_BACKENDS.get(f"{network.backend}@{network.runtime}")
    if backend is None or os.environ.get(RUNTIME_VARIABLE) == "opencv" or path.name != network.files[0].filename:
        return None
    try:
        return backend(network, path, precision, threads)
    except ImportError:  # the optional runtime (or onnx, to derive its file) is not installed
        print(f"note: {network.name.split()[0]} runs on OpenCV's DNN, about half as fast: {network.runtime} is not "
              "installed (pip install -r requirements.txt)", file=sys.stderr)
        return None
    except FacerecError as error:
        print(f"warning: {error}; using OpenCV's DNN", file=sys.stderr)
        return None


def load_embedder(network: Network, path: Path, precision: str = FLOAT32, threads: int | None = None) -> Embedder:
    """Build the embedder backend that the catalogue row names, checked on a blank face (FacerecError if wrong).

    A faster runtime the row names is used when it is installed; otherwise OpenCV's DNN. `precision`
    (PRECISIONS): what it computes in; anything but float32 needs a runtime that offers it (FacerecError).
    `threads`: at most this many threads of the faster runtime (None: its own number; OpenCV's DNN runs on
    OpenCV's setting): 1 gives what on_one_thread gives, without making the embedder twice.
    """
    if precision not in PRECISIONS:
        raise FacerecError(f"unknown precision {precision!r}: the precisions are {', '.join(PRECISIONS)}")
    embedder = faster_embedder(network, path, precision, threads) or EMBEDDER_BACKENDS[network.backend](network, path)
    if precision != FLOAT32 and embedder.runtime == Embedder.runtime:
        raise FacerecError(f"precision {precision} needs OpenVINO ({network.name.split()[0]}'s faster runtime, "
                           "pip install -r requirements.txt); OpenCV's DNN computes in float32 only")
    embedder.check_output()
    return embedder

"""The model catalogue: every model file and network the pipeline knows, in one table.

Like OpenCV's samples/dnn/models.yml: each network row names its files (with
URL, size and checksum), its backend class, and how a picture becomes its
input (size, mean, scale, channel order). A profile pairs a detector with an
embedder and says at which L2 distance a face becomes Unknown.

Adding a model means adding rows here and, for a new kind of network, one
backend class registered in detection.py or embedding.py. A per-face stage
(facerec/stages/) is one FACE_STAGES row and its module. TASKS lists it all by task.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, TypeVar

BackendClass = TypeVar("BackendClass", bound=type)


def backend_registry() -> tuple[dict[str, type], Callable[[str], Callable[[BackendClass], BackendClass]]]:
    """A table of backend classes by the `backend` name catalogue rows use, and its class decorator."""
    table: dict[str, type] = {}

    def backend(name: str) -> Callable[[BackendClass], BackendClass]:
        def register(cls: BackendClass) -> BackendClass:
            table[name] = cls
            return cls

        return register

    return table, backend


@dataclass(frozen=True)
class Mirror:
    """A second public copy of a model file: its address, and who keeps it under which licence."""

    url: str
    kept_by: str


@dataclass(frozen=True)
class ModelFile:
    """One downloadable file; `sha256` (and `md5` where that is all its publisher gives) pins its content.

    `url` is the publisher's address; `mirrors` are other public copies, tried in order when
    it fails. Every copy is checked against the same checksum, so a mirror cannot hand over another file.
    """

    filename: str
    url: str
    size: int | None
    sha256: str | None = None
    md5: str | None = None
    licence: str = ""
    mirrors: tuple[Mirror, ...] = ()

    @property
    def urls(self) -> tuple[str, ...]:
        """Every address of the file, the publisher's first."""
        return (self.url, *(mirror.url for mirror in self.mirrors))


@dataclass(frozen=True)
class Network:
    """A network: its files in the order the backend loads them, and its input recipe."""

    name: str
    backend: str
    files: tuple[ModelFile, ...]
    input_size: tuple[int, int]
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    scale: float = 1.0
    swap_rb: bool = False
    dimension: int | None = None  # length of an embedder's output vector
    # A detector that takes any input size (YuNet): larger frames are scaled down so their long side is at most this.
    max_side: int | None = None
    nms_threshold: float | None = None  # a detector's own non-maximum suppression IoU, if it has one
    # A faster runtime than OpenCV's DNN for this network ("openvino"): its backend class is registered as
    # "<backend>@<runtime>" and runs `plain`, the float32 file derived from `files` (facerec/plainonnx.py).
    # Without the runtime installed (or with $FACEREC_RUNTIME=opencv) OpenCV's DNN runs `files` as before.
    runtime: str | None = None
    plain: ModelFile | None = None


@dataclass(frozen=True)
class FaceStage:
    """A per-face stage: it reads each detected face before embedding and fills one field of the Face record.

    `name` is the field (in `face.values`, `--json` and the web API); `backend` the class that does
    it, "module.Class" in facerec/stages/ (a subclass of stages.Stage).
    """

    name: str
    backend: str
    description: str


@dataclass(frozen=True)
class Profile:
    """A detector (first of `detectors` found in the folder wins; the first is downloaded) and an embedder."""

    name: str
    detectors: tuple[Network, ...]
    embedder: Network
    threshold: float
    description: str
    confidence: float = 0.5  # default minimum detection confidence
    # Look-alikes: the nearest photo of anyone else must be this much further than the named person's
    # (matching.py; 0: off). Chosen with bench/openset.py (docs/thresholds.md, "Strangers").
    margin: float = 0.0


# The OpenCV versions that load every network below (requirements.txt pins the same range): 4.10 cannot
# parse the int8 block-quantised ONNX files (DequantizeLinear), 4.11 to 4.14 give the same outputs, and
# 5.0 removed readNetFromCaffe and readNetFromTorch. Checked by installing each (docs/models.md).
OPENCV_MINIMUM = (4, 11)
OPENCV_BELOW = (5,)

_BSD = "BSD-3-Clause (OpenCV samples)"
# digiKam (KDE) downloads these files for its face engine from files.kde.org and checks each by sha256
# (digikam core/libs/.../filesdownloader.cpp): the same bytes, redistributed under the files' own licences.
# Its newest sources list deploy.prototxt and the OpenFace file as obsolete (it moved to YuNet/SFace), so this
# copy lives as long as KDE serves its older releases: a fallback, never the first address.
_KDE_DNNFACE = "https://files.kde.org/digikam/facesengine/dnnface/"
_KDE = "KDE digiKam's download area (files.kde.org), same licence as the file"

RES10_CAFFE = Network(
    name="res10 SSD (Caffe)",
    backend="ssd",
    files=(
        ModelFile(
            "deploy.prototxt",
            "https://github.com/opencv/opencv/raw/3.4.0/samples/dnn/face_detector/deploy.prototxt",
            28_092,
            sha256="f62621cac923d6f37bd669298c428bb7ee72233b5f8c3389bb893e35ebbcf795",
            licence=_BSD,
            mirrors=(Mirror(_KDE_DNNFACE + "deploy.prototxt", _KDE),),  # digiKam lists this very sha256
        ),
        ModelFile(
            "res10_300x300_ssd_iter_140000.caffemodel",
            "https://github.com/opencv/opencv_3rdparty/raw/dnn_samples_face_detector_20170830/"
            "res10_300x300_ssd_iter_140000.caffemodel",
            10_666_211,
            sha256="2a56a11a57a4a295956b0660b4a3d76bbdca2206c4961cea8efe7d95c7cb2f2d",
            licence=_BSD,
            # No independent long-lived copy was found (digiKam keeps only the fp16 file; the other copies are
            # personal uploads): the second address is the publisher's own file served by GitHub's raw host,
            # which helps when github.com's /raw/ redirect fails, not when GitHub is down.
            mirrors=(Mirror("https://raw.githubusercontent.com/opencv/opencv_3rdparty/dnn_samples_face_detector_20170830/"
                            "res10_300x300_ssd_iter_140000.caffemodel", "OpenCV (GitHub's raw host), BSD-3-Clause"),),
        ),
    ),
    input_size=(300, 300),
    mean=(104.0, 177.0, 123.0),
)

# The same network exported to TensorFlow with 8-bit weights: same input, same output. Used only when a
# folder holds it, never downloaded, so no mirror is listed.
RES10_TENSORFLOW = Network(
    name="res10 SSD (TensorFlow, uint8)",
    backend="ssd",
    files=(
        ModelFile(
            "opencv_face_detector.pbtxt",
            "https://raw.githubusercontent.com/opencv/opencv/4.x/samples/dnn/face_detector/opencv_face_detector.pbtxt",
            34_912,
            sha256="5397808362fc6fb7c4044484848e297b22449d913a267fa7f8bd9d86dce29144",
            licence=_BSD,
        ),
        ModelFile(
            "opencv_face_detector_uint8.pb",
            "https://raw.githubusercontent.com/opencv/opencv_3rdparty/dnn_samples_face_detector_20180220_uint8/"
            "opencv_face_detector_uint8.pb",
            2_727_750,
            sha256="5c71d752ef2cbf2f457ac82fdd580fcb2522fd04c5efdaed18eb6d9e2843fbed",
            licence=_BSD,
        ),
    ),
    input_size=(300, 300),
    mean=(104.0, 177.0, 123.0),
)

OPENFACE = Network(
    name="OpenFace nn4.small2.v1 (Torch7)",
    backend="openface",
    files=(
        ModelFile(
            "openface_nn4.small2.v1.t7",
            "https://storage.cmusatyalab.org/openface-models/nn4.small2.v1.t7",
            # OpenFace publishes only the md5 (models/get-models.sh). The size and sha256 are those digiKam
            # checks its copy against (filesdownloader.cpp); a download must match all three. Not verified on
            # this project's machines, which cannot fetch the file.
            31_510_785,
            sha256="9b72d54aeb24a64a8135dca8e792f7cc675c99a884a6940350a6cedcf7b7ba08",
            md5="c95bfd8cc1adf05210e979ff623013b6",
            licence="Apache-2.0 (OpenFace)",
            mirrors=(
                # kept for the pyannote-video package since 2016, README: "copyright Carnegie Mellon University
                # and licensed under the Apache 2.0 License"
                Mirror("https://raw.githubusercontent.com/pyannote/pyannote-data/master/openface.nn4.small2.v1.t7",
                       "pyannote/pyannote-data on GitHub, Apache-2.0 (CMU)"),
                Mirror(_KDE_DNNFACE + "openface_nn4.small2.v1.t7", _KDE),
            ),
        ),
    ),
    input_size=(96, 96),
    scale=1.0 / 255,
    swap_rb=True,
    dimension=128,
)

_OPENCV_ZOO = "https://github.com/opencv/opencv_zoo/raw/main/models/"
# OpenCV's own organisation on Hugging Face keeps each OpenCV Zoo model, int8bq files included, in a
# repository of its own (opencv/face_detection_yunet, opencv/face_recognition_sface), same licences.
_OPENCV_HF = "https://huggingface.co/opencv/"

# YuNet (2023mar), block-quantised to int8: any input size, 5 landmarks per face. The fp32 file,
# face_detection_yunet_2023mar.onnx (232,589 bytes), is the second choice when it is the one in the folder.
YUNET = Network(
    name="YuNet 2023mar (ONNX, int8 block-quantised)",
    backend="yunet",
    files=(
        ModelFile(
            "face_detection_yunet_2023mar_int8bq.onnx",
            _OPENCV_ZOO + "face_detection_yunet/face_detection_yunet_2023mar_int8bq.onnx",
            122_489,
            sha256="49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10",
            licence="MIT (OpenCV Zoo, YuNet)",
            mirrors=(Mirror(_OPENCV_HF + "face_detection_yunet/resolve/main/face_detection_yunet_2023mar_int8bq.onnx",
                            "OpenCV on Hugging Face, MIT"),),
        ),
    ),
    input_size=(640, 640),  # the size it is created with; every frame then sets its own
    max_side=640,  # YuNet is trained on faces of about 10 to 300 px: a face of 1000 px is missed or split
    nms_threshold=0.3,
)

YUNET_FP32 = Network(
    name="YuNet 2023mar (ONNX, fp32)",
    backend="yunet",
    files=(
        ModelFile(
            "face_detection_yunet_2023mar.onnx",
            _OPENCV_ZOO + "face_detection_yunet/face_detection_yunet_2023mar.onnx",
            232_589,
            sha256="8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4",
            licence="MIT (OpenCV Zoo, YuNet)",
            mirrors=(Mirror(_OPENCV_HF + "face_detection_yunet/resolve/main/face_detection_yunet_2023mar.onnx",
                            "OpenCV on Hugging Face, MIT"),),
        ),
    ),
    input_size=YUNET.input_size,
    max_side=YUNET.max_side,
    nms_threshold=YUNET.nms_threshold,
)

# SFace, block-quantised to int8: a 112x112 face aligned on its 5 landmarks in, 128 floats out.
SFACE = Network(
    name="SFace 2021dec (ONNX, int8 block-quantised)",
    backend="sface",
    files=(
        ModelFile(
            "face_recognition_sface_2021dec_int8bq.onnx",
            _OPENCV_ZOO + "face_recognition_sface/face_recognition_sface_2021dec_int8bq.onnx",
            10_667_852,
            sha256="fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee",
            licence="Apache-2.0 (OpenCV Zoo, SFace)",
            mirrors=(Mirror(_OPENCV_HF + "face_recognition_sface/resolve/main/face_recognition_sface_2021dec_int8bq.onnx",
                            "OpenCV on Hugging Face, Apache-2.0"),),
        ),
    ),
    input_size=(112, 112),
    swap_rb=True,
    dimension=128,
    # 2.6x faster a face than OpenCV's DNN on the int8 file (one run on a loaded machine), same vectors
    # (bench/runtimes.py, docs/benchmarks.md).
    runtime="openvino",
    plain=ModelFile(
        "face_recognition_sface_2021dec_int8bq.float32.onnx",
        "",  # never downloaded: derived from the file above, where it is first needed, and kept beside the models
        38_689_385,
        sha256="342c256d3dbc3297c0d1c81e1213483723de888d2d9e31b832bcf3f90f8f56a7",
        licence="Apache-2.0 (OpenCV Zoo, SFace)",
    ),
)

PROFILES: dict[str, Profile] = {
    "openface": Profile(
        name="openface",
        detectors=(RES10_CAFFE, RES10_TENSORFLOW),
        embedder=OPENFACE,
        threshold=0.55,
        description="res10 SSD detector + OpenFace nn4.small2.v1 embedder (the classic tutorial's pair)",
    ),
    "sface": Profile(
        name="sface",
        detectors=(YUNET, YUNET_FP32),
        embedder=SFACE,
        # The middle of the gap between same-person distances to accept (photos up to 0.94, Obama in the clip up
        # to 1.02) and the closest different people (1.13 on a larger labelled set, issue 10; 1.17 in the clip):
        # 0.05 and 0.06 of margin. The SFace authors' cosine 0.363 (L2 1.128) sat 0.002 from a false match.
        # Evidence: bench/sface_threshold.py, docs/thresholds.md, "The sface threshold".
        threshold=1.07,
        # On lfw-dev (150 people enrolled with one photo, bench/openset.py) 0.05 costs no known face at 1.07 and
        # turns a face between two look-alikes into Unknown; 0.07 and more cost known faces (docs/thresholds.md).
        margin=0.05,
        # At 0.5 YuNet also boxes hands and blurred heads (all Unknown); 0.8 keeps the faces, names the
        # same people on the clip and has fewer faces to embed (docs/models.md, "Model profiles").
        confidence=0.8,
        description="YuNet detector + SFace embedder on faces aligned by their landmarks (OpenCV Zoo; more accurate)",
    ),
}

DEFAULT_PROFILE = "openface"

# The per-face stages, run in this order on every detected face between detection and embedding (one row each).
FACE_STAGES: tuple[FaceStage, ...] = (
    FaceStage("quality", "quality.QualityStage", "how good the face is for recognition, 0 to 1: size, detector "
              "confidence, sharpness, frontal pose (stages/quality.py)"),
)

# The catalogue by task: what finds faces, what reads each face, what turns a face into a vector.
TASKS: dict[str, tuple[Network | FaceStage, ...]] = {
    "detector": tuple(dict.fromkeys(network for profile in PROFILES.values() for network in profile.detectors)),
    "face stage": FACE_STAGES,
    "embedder": tuple(dict.fromkeys(profile.embedder for profile in PROFILES.values())),
}


def all_model_files() -> dict[str, ModelFile]:
    """Every catalogued file by file name (a file of that name is expected to match its checksum)."""
    files: dict[str, ModelFile] = {}
    for network in (*TASKS["detector"], *TASKS["embedder"]):
        assert isinstance(network, Network)
        files.update({model_file.filename: model_file for model_file in network.files})
    return files

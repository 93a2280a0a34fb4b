"""The model catalogue: every model file and network the pipeline knows, in one table.

Like OpenCV's samples/dnn/models.yml: each network row names its files (with
URL, size and checksum), its backend class, and how a picture becomes its
input (size, mean, scale, channel order). A profile pairs a detector with an
embedder and says at which L2 distance a face becomes Unknown.

Adding a model means adding rows here and, for a new kind of network, one
backend class registered in detection.py or embedding.py.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelFile:
    """One downloadable file; `sha256` or `md5` (as its publisher gives it) pins its content."""

    filename: str
    url: str
    size: int | None
    sha256: str | None = None
    md5: str | None = None
    licence: str = ""


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


@dataclass(frozen=True)
class Profile:
    """A detector (first of `detectors` found in the folder wins; the first is downloaded) and an embedder."""

    name: str
    detectors: tuple[Network, ...]
    embedder: Network
    threshold: float
    description: str


_BSD = "BSD-3-Clause (OpenCV samples)"

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
        ),
        ModelFile(
            "res10_300x300_ssd_iter_140000.caffemodel",
            "https://github.com/opencv/opencv_3rdparty/raw/dnn_samples_face_detector_20170830/"
            "res10_300x300_ssd_iter_140000.caffemodel",
            10_666_211,
            sha256="2a56a11a57a4a295956b0660b4a3d76bbdca2206c4961cea8efe7d95c7cb2f2d",
            licence=_BSD,
        ),
    ),
    input_size=(300, 300),
    mean=(104.0, 177.0, 123.0),
)

# The same network exported to TensorFlow with 8-bit weights: same input, same output.
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
            None,  # OpenFace publishes only the md5
            md5="c95bfd8cc1adf05210e979ff623013b6",
            licence="Apache-2.0 (OpenFace)",
        ),
    ),
    input_size=(96, 96),
    scale=1.0 / 255,
    swap_rb=True,
    dimension=128,
)

PROFILES: dict[str, Profile] = {
    "openface": Profile(
        name="openface",
        detectors=(RES10_CAFFE, RES10_TENSORFLOW),
        embedder=OPENFACE,
        threshold=0.55,
        description="res10 SSD detector + OpenFace nn4.small2.v1 embedder (the classic tutorial's pair)",
    ),
}

DEFAULT_PROFILE = "openface"


def all_model_files() -> dict[str, ModelFile]:
    """Every catalogued file by file name (a file of that name is expected to match its checksum)."""
    files: dict[str, ModelFile] = {}
    for profile in PROFILES.values():
        for network in (*profile.detectors, profile.embedder):
            files.update({model_file.filename: model_file for model_file in network.files})
    return files

"""Loading models: a file that is not the network expected is refused at start with an `error:` line.

The wrong files are real networks from ../shared/models that OpenCV can read (YuNet, SFace,
the res10 TensorFlow twin, the OpenFace architecture stand-in), each given where another belongs.
"""

import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import PROJECT_ROOT, run_script, shared_path
from helpers import assert_clean_failure
from facerec.catalogue import OPENCV_MINIMUM, OPENFACE, PROFILES, RES10_TENSORFLOW, SFACE, YUNET
from facerec.detection import SsdDetector, YuNetDetector, load_detector, opencv_version_problem
from facerec.embedding import OpenFaceEmbedder, SFaceEmbedder, load_embedder
from facerec.errors import FacerecError

YUNET_FILE = "models/face_detection_yunet_2023mar_int8bq.onnx"
SFACE_FILE = "models/face_recognition_sface_2021dec_int8bq.onnx"
STANDIN_FILE = "models/openface_nn4_architecture_standin.t7"
TF_FILES = ["models/opencv_face_detector.pbtxt", "models/opencv_face_detector_uint8.pb"]


@pytest.mark.parametrize("network, wrong", [
    (OPENFACE, YUNET_FILE),     # OpenCV runs it on a 96x96 face: a 1x9x10 output, not 1x128
    (OPENFACE, SFACE_FILE),     # wants a 112x112 face
    (SFACE, YUNET_FILE),
    (SFACE, STANDIN_FILE),
], ids=lambda value: getattr(value, "backend", None) or Path(value).name)
def test_an_embedder_file_that_is_another_network_is_refused_at_load(network, wrong):
    path = shared_path(wrong)
    with pytest.raises(FacerecError) as caught:
        load_embedder(network, path)
    message = str(caught.value)
    assert str(path) in message and network.name in message
    assert "expected" in message


@pytest.mark.parametrize("network, wrong", [
    (YUNET, [SFACE_FILE]),
    (YUNET, [STANDIN_FILE]),
    (RES10_TENSORFLOW, [YUNET_FILE]),     # readNet takes a single ONNX file as well
    (RES10_TENSORFLOW, [SFACE_FILE]),
    (RES10_TENSORFLOW, [STANDIN_FILE]),
], ids=lambda value: getattr(value, "backend", None) or Path(value[0]).name)
def test_a_detector_file_that_is_another_network_is_refused_at_load(network, wrong):
    paths = [shared_path(name) for name in wrong]
    with pytest.raises(FacerecError) as caught:
        load_detector(network, paths)
    message = str(caught.value)
    assert str(paths[0]) in message and network.name in message
    assert "expected" in message


def one_face(detector, photo: str):
    """The faces the detector finds in a photo of ../shared/faces, and the photo."""
    image = cv2.imread(str(shared_path(f"faces/{photo}")))
    return detector.detect(image), image


def overlap(a, b) -> float:
    """Intersection over union of two (x1, y1, x2, y2) boxes."""
    width = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    area = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1])
    return width * height / (area - width * height)


def test_the_right_files_load_and_pass_the_check():
    """What loads is the network named: both detectors find the one face of a known photo, in the same place
    (YuNet with its 5 landmarks in the box); SFace gives 128-d unit vectors that put two photos of obama within
    the profile's threshold and obama and biden beyond it; the OpenFace stand-in gives 128-d unit vectors."""
    yunet = load_detector(YUNET, [shared_path(YUNET_FILE)])
    res10 = load_detector(RES10_TENSORFLOW, [shared_path(name) for name in TF_FILES])
    sface = load_embedder(SFACE, shared_path(SFACE_FILE))
    openface = load_embedder(OPENFACE, shared_path(STANDIN_FILE))
    assert isinstance(yunet, YuNetDetector) and isinstance(res10, SsdDetector)
    assert isinstance(sface, SFaceEmbedder) and isinstance(openface, OpenFaceEmbedder)

    (found,), image = one_face(yunet, "known/obama/obama.jpg")
    (twin,), _ = one_face(res10, "known/obama/obama.jpg")
    assert overlap(found.box, twin.box) > 0.8, (found.box, twin.box)
    x1, y1, x2, y2 = found.box
    assert found.landmarks.shape == (5, 2)
    assert all(x1 <= x <= x2 and y1 <= y <= y2 for x, y in found.landmarks)

    vectors = {}
    for photo in ("known/obama/obama.jpg", "known/obama/obama2.jpg", "known/biden/biden.jpg"):
        faces, picture = one_face(yunet, photo)
        assert len(faces) == 1, photo
        vectors[photo] = sface.embed(picture, faces)
        assert vectors[photo].shape == (1, SFACE.dimension) == (1, 128)
        assert np.linalg.norm(vectors[photo]) == pytest.approx(1.0, abs=1e-5)
    obama, obama2, biden = vectors.values()
    threshold = PROFILES["sface"].threshold
    assert np.linalg.norm(obama - obama2) < threshold < min(np.linalg.norm(obama - biden),
                                                            np.linalg.norm(obama2 - biden))

    stand_in = openface.embed(image, [found])
    assert stand_in.shape == (1, 128) and np.linalg.norm(stand_in) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("profile, wrong", [("openface", YUNET_FILE), ("sface", STANDIN_FILE)])
def test_the_scripts_refuse_a_wrong_embedding_model_with_one_line(tmp_path, profile, wrong):
    path = shared_path(wrong)
    result = run_script("extract_embeddings.py", "--dataset", str(shared_path("faces/known")),
                        "--embeddings", str(tmp_path / "e.pickle"), "--quiet", "--model", profile,
                        "--detector", str(shared_path("models")), "--embedding-model", str(path))
    assert_clean_failure(result, str(path), "expected")
    assert result.stderr.splitlines() == [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert not (tmp_path / "e.pickle").exists()


def test_a_detector_folder_holding_another_network_under_the_right_name_is_refused(tmp_path):
    (tmp_path / YUNET.files[0].filename).symlink_to(shared_path(SFACE_FILE))
    result = run_script("imagecapture.py", "--name", "x", "--dataset", str(tmp_path / "ds"), "--model", "sface",
                        "--detector", str(tmp_path), "--source", str(tmp_path / "none.mp4"))
    assert_clean_failure(result, str(tmp_path / YUNET.files[0].filename))


def test_an_opencv_older_than_the_minimum_is_named_with_the_fix():
    assert opencv_version_problem("4.14.0") is None
    assert opencv_version_problem(".".join(map(str, OPENCV_MINIMUM))) is None
    problem = opencv_version_problem("4.10.0")
    assert "4.10.0" in problem and "4.11" in problem and "pip install -r requirements.txt" in problem
    assert opencv_version_problem("5.0.0") is not None  # readNetFromCaffe and readNetFromTorch are gone


def test_requirements_pin_the_opencv_range_the_code_checks():
    requirements = (PROJECT_ROOT / "requirements.txt").read_text()
    low, high = re.search(r"^opencv-python>=([\d.]+),<(\d+)$", requirements, re.MULTILINE).groups()
    assert tuple(int(part) for part in low.split(".")) == OPENCV_MINIMUM
    assert high == "5"

"""The library's entry points (facerec.Recogniser, verify, open_gallery) given what a caller may hand them by mistake
(issue 31 item 13): what can be converted is, the rest is one FacerecError naming the shape and type, never a raw
AttributeError, cv2.error, ZeroDivisionError or OverflowError. Real YuNet and SFace networks, a real photo."""

from __future__ import annotations

import shutil

import cv2
import numpy as np
import pytest

from conftest import shared_path
from unknown_faces import sface

import facerec


@pytest.fixture(scope="module")
def recogniser(tmp_path_factory):
    root = tmp_path_factory.mktemp("library_inputs")
    shutil.copytree(shared_path("faces/known/obama"), root / "dataset" / "obama")
    shutil.copytree(shared_path("faces/known/biden"), root / "dataset" / "biden")
    facerec.enrol(root / "dataset", root / "embeddings.pickle", sface())
    with facerec.Recogniser(sface(), root / "embeddings.pickle") as recogniser:
        yield recogniser


def photo() -> np.ndarray:
    image = cv2.imread(str(shared_path("faces/probe/obama1.jpg")))
    assert image is not None
    return image


def converted_forms(image: np.ndarray) -> dict[str, np.ndarray]:
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    return {"grey": grey, "grey H×W×1": grey[:, :, None], "BGRA": cv2.cvtColor(image, cv2.COLOR_BGR2BGRA),
            "float64 0..1": image / 255.0, "float32 0..1": (image / 255.0).astype(np.float32),
            "uint16": image.astype(np.uint16) * 257, "not contiguous": image[:, ::-1][:, ::-1]}


def test_images_that_can_be_converted_are_named_as_the_bgr_photo_is(recogniser):
    image = photo()
    [face] = recogniser.recognise(image)
    assert face.name == "obama"
    for what, form in converted_forms(image).items():
        faces = recogniser.recognise(form)
        assert [f.name for f in faces] == ["obama"], what
        assert abs(faces[0].distance - face.distance) < 0.1, what
    assert recogniser.recognise(np.zeros((480, 640), bool)) == []
    for narrow in (np.zeros((1, 10000, 3), np.uint8), np.zeros((3, 3000, 3), np.uint8),
                   np.zeros((100, 20000, 3), np.uint8), np.zeros((10000, 1, 3), np.uint8)):
        assert recogniser.recognise(narrow) == []  # YuNet's infinite boxes on such images are no face
    assert facerec.verify(converted_forms(image)["grey"], image, sface()).same


REFUSED = [(None, "is None"), ([[1, 2, 3]], "is a list"),
           (np.zeros((0, 0, 3), np.uint8), "0×0×3, uint8) has no pixel"),
           (np.zeros((5, 0), np.uint8), "5×0, uint8) has no pixel"),
           (np.zeros((10, 10, 3), np.int32), "10×10×3, int32) is not of a pixel type"),
           (np.zeros((10, 10, 3), np.complex64), "complex64) is not of a pixel type"),
           (np.zeros((10, 10, 5), np.uint8), "10×10×5, uint8) is not an image"),
           (np.zeros(10, np.uint8), "(10, uint8) is not an image"),
           (np.full((10, 10, 3), np.nan), "not finite"),
           (np.zeros((20_000, 10_000), bool), "more than the 100 MP")]


@pytest.mark.parametrize("image, fragment", REFUSED, ids=[fragment for _, fragment in REFUSED])
def test_what_is_no_image_is_one_facerec_error_naming_it(recogniser, image, fragment):
    with pytest.raises(facerec.FacerecError, match="the image") as raised:
        recogniser.recognise(image)
    assert fragment in str(raised.value)
    with pytest.raises(facerec.FacerecError, match="the first image"):
        facerec.verify(image, photo(), sface())
    with pytest.raises(facerec.FacerecError):
        list(recogniser.follow([photo(), image]))


def test_follow_and_open_gallery_refuse_what_they_cannot_use(recogniser, tmp_path):
    with pytest.raises(facerec.FacerecError, match="not NoneType"):
        list(recogniser.follow(None))
    with pytest.raises(facerec.FacerecError, match="is a str"):
        recogniser.recognise("photo.jpg")  # a path is for verify, not recognise
    for location, fragment in [(5, "not int '5'"), ("out\0put.pickle", "NUL"), (3.5, "not float")]:
        with pytest.raises(facerec.FacerecError, match=fragment):
            facerec.open_gallery(location)
    missing = str(tmp_path / "none.pickle").encode()
    with facerec.open_gallery(missing, missing_ok=True) as opened:  # bytes: a path as the file system spells it
        assert opened.snapshot is None

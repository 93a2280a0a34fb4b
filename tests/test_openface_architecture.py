"""OpenFace nn4.small2.v1's real architecture through the project's loader (cv2.dnn.readNetFromTorch).

../shared/models/openface_nn4_architecture_standin.t7 has the exact layers and parameter count of
nn4.small2.v1 (Inception blocks as nn.DepthConcat, L2 pooling, cross-map LRN, batch normalisation),
with weights that do not tell people apart (../shared/README.md). These tests check that every one of
those module types loads and runs as the openface profile runs them; they say nothing about recognition.
The small network of tests/torch7.py remains for tests that need only the embedder's contract.
"""

from __future__ import annotations

from collections import Counter

import cv2
import numpy as np
import pytest

from conftest import shared_path

from facerec.catalogue import OPENFACE, PROFILES
from facerec.detection import load_detector
from facerec.embedding import OpenFaceEmbedder, load_embedder
from facerec.images import read_image
from facerec.modelfiles import model_path, network_files

ARCHITECTURE = "models/openface_nn4_architecture_standin.t7"
NN4_SMALL2_PARAMETERS = 3_733_968  # as OpenFace gives it for nn4.small2.v1


@pytest.fixture(scope="module")
def embedder():
    path = model_path(OPENFACE.files[0], shared_path(ARCHITECTURE))
    loaded = load_embedder(OPENFACE, path)
    assert isinstance(loaded, OpenFaceEmbedder)
    return loaded


@pytest.fixture(scope="module")
def photo_faces():
    """obama_and_biden.jpg (three faces) as the openface profile's detector finds them."""
    image = read_image(shared_path("faces/probe/obama_and_biden.jpg"))
    network, paths = network_files(PROFILES["openface"].detectors, shared_path("models"))
    faces = load_detector(network, paths).detect(image)
    assert len(faces) >= 2
    return image, faces


def test_the_real_module_types_and_parameter_count_load(embedder):
    layers = [embedder.net.getLayer(name) for name in embedder.net.getLayerNames()]
    types = Counter(layer.type for layer in layers)
    # Inception outputs joined by DepthConcat; L2 pooling is Power -> average Pooling -> Power; LRN after conv 1 and 2
    assert types["Concat"] == 7 and types["LRN"] == 2 and types["Power"] >= 6 and types["BatchNorm"] == 37
    assert types["Convolution"] == 37 and types["InnerProduct"] == 1 and types["Normalize"] == 1
    learned = sum(blob.size for layer in layers if layer.type in ("Convolution", "InnerProduct") for blob in layer.blobs)
    learned += sum(blob.size for layer in layers if layer.type == "BatchNorm" for blob in layer.blobs[2:])  # scale, shift
    assert learned == NN4_SMALL2_PARAMETERS


def test_a_96x96_blob_gives_one_128_float_unit_vector(embedder):
    blob = np.random.default_rng(0).random((1, 3, 96, 96), dtype=np.float32)
    embedder.net.setInput(blob)
    out = embedder.net.forward()
    assert out.shape == (1, 128) and out.dtype == np.float32
    assert np.linalg.norm(out) == pytest.approx(1.0, abs=1e-5)


def test_faces_of_a_photo_are_embedded_in_one_call_as_each_alone(embedder, photo_faces):
    """The openface profile embeds all faces of a frame in one network call: rows must not depend on the batch."""
    image, faces = photo_faces
    together = embedder.embed(image, faces)
    assert together.shape == (len(faces), 128)
    assert np.allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)
    for face, row in zip(faces, together):
        assert np.allclose(embedder.embed(image, [face])[0], row, atol=1e-5)
    assert not np.allclose(together[0], together[1], atol=1e-3)  # different crops, different vectors


def test_the_same_face_gives_the_same_vector_with_opencv_preprocessing(embedder, photo_faces):
    """The profile's recipe (RGB, [0, 1], 96x96, no crop) written out by hand gives the same vector."""
    image, faces = photo_faces
    x1, y1, x2, y2 = faces[0].box
    rgb = cv2.cvtColor(cv2.resize(image[y1:y2, x1:x2], (96, 96)), cv2.COLOR_BGR2RGB)
    embedder.net.setInput(rgb.transpose(2, 0, 1)[None].astype(np.float32) / 255)
    assert np.allclose(embedder.net.forward()[0], embedder.embed(image, faces[:1])[0], atol=1e-5)

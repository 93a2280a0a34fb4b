"""Tests for the Torch7 writer in tests/torch7.py (loaded by real OpenCV)."""

from __future__ import annotations

import struct

import cv2
import numpy as np
import pytest

try:  # tests/ as a package (or namespace package on sys.path)
    from tests import torch7
except ImportError:  # pytest "prepend" import mode puts tests/ itself on sys.path
    import torch7


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

def synthetic_face(seed: int, size: int = 120) -> np.ndarray:
    """A BGR uint8 cartoon face whose geometry and colours depend on ``seed``."""
    rng = np.random.default_rng(seed)
    img = np.empty((size, size, 3), np.uint8)
    img[:] = rng.integers(40, 200, 3)
    c = size // 2
    skin = tuple(int(v) for v in rng.integers(120, 240, 3))
    axes = (int(rng.integers(35, 50)), int(rng.integers(45, 58)))
    cv2.ellipse(img, (c, c), axes, 0, 0, 360, skin, -1)
    eye_dx, eye_y = int(rng.integers(12, 24)), c - int(rng.integers(8, 20))
    eye_r = int(rng.integers(4, 9))
    for x in (c - eye_dx, c + eye_dx):
        cv2.circle(img, (x, eye_y), eye_r, (30, 30, 30), -1)
    mouth_y = c + int(rng.integers(15, 30))
    cv2.ellipse(img, (c, mouth_y), (int(rng.integers(8, 20)), int(rng.integers(3, 9))),
                0, 0, 180, (40, 40, 160), -1)
    cv2.line(img, (c, c - 5), (c + int(rng.integers(-6, 7)), c + 10), (90, 90, 90), 2)
    return img


def to_blob(images: list[np.ndarray]) -> np.ndarray:
    return cv2.dnn.blobFromImages(images, 1.0 / 255, (96, 96), (0, 0, 0), swapRB=True, crop=False)


def embed(net: cv2.dnn.Net, blob: np.ndarray) -> np.ndarray:
    net.setInput(blob)
    return net.forward().copy()


def _windows(x: np.ndarray, k: int, stride: int) -> np.ndarray:
    """N,C,H,W -> N,C,Ho,Wo,k,k windows (floor mode, like Torch ceil_mode=false)."""
    win = np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(2, 3))
    return win[:, :, ::stride, ::stride]


def reference_forward(blob: np.ndarray, layers: list[dict]) -> np.ndarray:
    """Plain numpy (float64) implementation of the Torch layers' semantics."""
    x = blob.astype(np.float64)
    for layer in layers:
        kind = layer["type"]
        if kind == "conv":
            w, b, s, p = layer["weight"], layer["bias"], layer["stride"], layer["pad"]
            xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
            win = _windows(xp, w.shape[2], s)
            x = np.einsum("nchwij,ocij->nohw", win, w.astype(np.float64)) + b[None, :, None, None]
        elif kind == "relu":
            x = np.maximum(x, 0.0)
        elif kind == "maxpool":
            x = _windows(x, layer["k"], layer["stride"]).max(axis=(4, 5))
        elif kind == "avgpool":
            x = _windows(x, layer["k"], layer["stride"]).mean(axis=(4, 5))
        elif kind == "view":
            x = x.reshape(x.shape[0], layer["size"])
        elif kind == "linear":
            x = x @ layer["weight"].astype(np.float64).T + layer["bias"]
        elif kind == "normalize":
            p = layer["p"]
            x = x / (np.sum(np.abs(x) ** p, axis=1, keepdims=True) + layer["eps"]) ** (1.0 / p)
        else:
            raise AssertionError(kind)
    return x


# ---------------------------------------------------------------------------
# fixtures
# ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("t7") / "openface_like.t7"
    torch7.write_openface_like_network(path, seed=0)
    return path


@pytest.fixture(scope="module")
def net(model_path):
    return cv2.dnn.readNetFromTorch(str(model_path))


@pytest.fixture(scope="module")
def faces():
    return [synthetic_face(s) for s in range(4)]


# ---------------------------------------------------------------------------
# low-level format
# ---------------------------------------------------------------------------

def test_primitive_encoding(tmp_path):
    path = tmp_path / "prims.t7"
    torch7.save(path, [None, True, 2.5, "ab"])
    expected = (
        struct.pack("<iii", torch7.TYPE_TABLE, 1, 4)
        + struct.pack("<id", 1, 1.0) + struct.pack("<i", 0)
        + struct.pack("<id", 1, 2.0) + struct.pack("<ii", 5, 1)
        + struct.pack("<id", 1, 3.0) + struct.pack("<id", 1, 2.5)
        + struct.pack("<id", 1, 4.0) + struct.pack("<ii", 2, 2) + b"ab"
    )
    assert path.read_bytes() == expected


def test_repeated_object_is_written_as_back_reference(tmp_path):
    shared = torch7.Tensor(np.arange(6, dtype=np.float32))
    once, twice = tmp_path / "once.t7", tmp_path / "twice.t7"
    torch7.save(once, {"a": shared})
    torch7.save(twice, {"a": shared, "b": shared})
    extra = twice.stat().st_size - once.stat().st_size
    # key "b" (tag + len + 1 byte) + torch tag + index, no second payload
    assert extra == (4 + 4 + 1) + (4 + 4)
    data = twice.read_bytes()
    assert data.endswith(struct.pack("<ii", torch7.TYPE_TORCH, 2))  # tensor index 2


@pytest.mark.parametrize("kind", ["Float", "Double"])
def test_tensor_round_trips_through_cv2_readTorchBlob(tmp_path, kind):
    arr = np.random.default_rng(3).standard_normal((2, 3, 4, 5))
    path = tmp_path / "blob.t7"
    torch7.save(path, torch7.Tensor(arr, kind))
    blob = cv2.dnn.readTorchBlob(str(path))
    assert blob.shape == arr.shape
    np.testing.assert_allclose(blob, arr.astype(np.float32), rtol=0, atol=1e-6)


# ---------------------------------------------------------------------------
# the OpenFace-like network, through cv2.dnn.readNetFromTorch
# ---------------------------------------------------------------------------

def test_network_loads_with_expected_layers(model_path, net):
    assert model_path.stat().st_size < 2 * 1024 * 1024
    assert not net.empty()
    types = [net.getLayer(name).type for name in net.getLayerNames()]
    assert types == ["Convolution", "ReLU", "Pooling", "Convolution", "ReLU", "Pooling",
                     "Reshape", "InnerProduct", "Normalize"]


@pytest.mark.parametrize("n", [1, 3])
def test_output_shape_and_unit_norm(net, faces, n):
    out = embed(net, to_blob(faces[:n]))
    assert out.shape == (n, torch7.EMBEDDING_DIM)
    assert out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)


def test_matches_numpy_reference_forward(net, faces):
    blob = to_blob(faces)
    assert blob.shape == (len(faces),) + torch7.INPUT_SHAPE
    expected = reference_forward(blob, torch7.openface_like_layers(seed=0))
    out = embed(net, blob)
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-4)


def test_batch_rows_equal_single_image_runs(net, faces):
    batch = embed(net, to_blob(faces))
    for i, face in enumerate(faces):
        np.testing.assert_allclose(batch[i], embed(net, to_blob([face]))[0], rtol=0, atol=1e-5)


def test_same_crop_same_vector_different_crops_differ(net, faces):
    a1 = embed(net, to_blob([faces[0]]))[0]
    a2 = embed(net, to_blob([faces[0].copy()]))[0]
    np.testing.assert_array_equal(a1, a2)
    out = embed(net, to_blob(faces))
    for i in range(len(faces)):
        for j in range(i + 1, len(faces)):
            assert np.linalg.norm(out[i] - out[j]) > 0.1, (i, j)


def test_deterministic_per_seed(tmp_path, model_path, faces):
    again = tmp_path / "again.t7"
    other = tmp_path / "other.t7"
    torch7.write_openface_like_network(again, seed=0)
    torch7.write_openface_like_network(other, seed=1)
    assert again.read_bytes() == model_path.read_bytes()
    assert other.read_bytes() != model_path.read_bytes()

    blob = to_blob(faces[:2])
    out0 = embed(cv2.dnn.readNetFromTorch(str(model_path)), blob)
    out0_again = embed(cv2.dnn.readNetFromTorch(str(again)), blob)
    out1 = embed(cv2.dnn.readNetFromTorch(str(other)), blob)
    np.testing.assert_array_equal(out0, out0_again)
    assert np.linalg.norm(out0 - out1, axis=1).min() > 0.1

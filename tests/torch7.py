"""Minimal writer of Torch7 ``.t7`` binary files (numpy + stdlib only).

It exists so the test-suite can build a small stand-in for the OpenFace
embedder ``openface_nn4.small2.v1.t7`` (its contract only: 34,672 parameters
against the real network's 3,733,968, so its speed says nothing of OpenFace's;
speed figures and the real module types use
``../shared/models/openface_nn4_architecture_standin.t7``) and load it through the real
``cv2.dnn.readNetFromTorch`` code path.

Binary format (little-endian, as written by Torch's ``torch.save`` with the
default "binary" mode on x86):

* every object starts with an ``int32`` type tag:
  0 nil, 1 number (``float64``), 2 string (``int32`` length + bytes),
  3 table, 4 torch object, 5 boolean (``int32``), 6/7/8 functions
  (not supported here);
* tables and torch objects carry an ``int32`` reference index right after
  the tag.  The first time an index appears the payload follows; a later
  occurrence of the same index is a back-reference with no payload;
* table payload: ``int32`` number of pairs, then key, value, key, value...;
* torch object payload: version string ``"V 1"``, class name string, then the
  class's own serialisation.  ``nn.*`` modules write their field table;
  ``torch.<T>Tensor`` writes ``int32`` ndim, ``int64`` sizes, ``int64``
  strides, ``int64`` 1-based storage offset, then its storage object (or nil);
  ``torch.<T>Storage`` writes ``int64`` size then the raw elements.

Python values map to Lua values as follows (see :meth:`T7Writer.write_object`):
``None`` -> nil, ``bool`` -> boolean, ``int``/``float`` -> number,
``str`` -> string, ``dict`` -> table, ``list``/``tuple`` -> table with keys
1..n, :class:`TorchObject` -> torch object (its ``fields`` dict written as the
object's table), :class:`Tensor` / :class:`Storage` -> torch tensor/storage.
The same Python object written twice becomes a back-reference, as in Torch.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import numpy as np

__all__ = [
    "TYPE_NIL",
    "TYPE_NUMBER",
    "TYPE_STRING",
    "TYPE_TABLE",
    "TYPE_TORCH",
    "TYPE_BOOLEAN",
    "Storage",
    "Tensor",
    "TorchObject",
    "T7Writer",
    "save",
    "nn_module",
    "openface_like_layers",
    "write_openface_like_network",
    "EMBEDDING_DIM",
    "INPUT_SHAPE",
]

TYPE_NIL = 0
TYPE_NUMBER = 1
TYPE_STRING = 2
TYPE_TABLE = 3
TYPE_TORCH = 4
TYPE_BOOLEAN = 5

#: Version string Torch writes before the class name of versioned classes.
TORCH_VERSION = "V 1"

#: Torch element type name -> little-endian numpy dtype of the storage data.
_DTYPES: dict[str, np.dtype] = {
    "Float": np.dtype("<f4"),
    "Double": np.dtype("<f8"),
    "Long": np.dtype("<i8"),
    "Int": np.dtype("<i4"),
    "Short": np.dtype("<i2"),
    "Char": np.dtype("i1"),
    "Byte": np.dtype("u1"),
}

#: Output size of the stand-in embedder (same as OpenFace nn4.small2).
EMBEDDING_DIM = 128
#: Expected input blob shape (per image) of the stand-in embedder.
INPUT_SHAPE = (3, 96, 96)


@dataclass(eq=False)
class Storage:
    """A ``torch.<kind>Storage``: a flat 1-D array of one element type."""

    data: np.ndarray
    kind: str = "Float"

    def __post_init__(self) -> None:
        if self.kind not in _DTYPES:
            raise ValueError(f"unsupported storage kind {self.kind!r}")
        self.data = np.ascontiguousarray(np.asarray(self.data).reshape(-1), dtype=_DTYPES[self.kind])

    @property
    def class_name(self) -> str:
        return f"torch.{self.kind}Storage"


@dataclass(eq=False)
class Tensor:
    """A ``torch.<kind>Tensor`` backed by its own contiguous storage.

    ``data=None`` (or a 0-d/empty array) gives an empty tensor (ndim 0, nil
    storage), which is how Torch saves unused buffers such as ``output``.
    """

    data: np.ndarray | None = None
    kind: str = "Float"
    storage: Storage | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        if self.kind not in _DTYPES:
            raise ValueError(f"unsupported tensor kind {self.kind!r}")
        if self.data is not None:
            arr = np.ascontiguousarray(np.asarray(self.data), dtype=_DTYPES[self.kind])
            if arr.ndim == 0 or arr.size == 0:
                self.data = None
            else:
                self.data = arr
                self.storage = Storage(arr.reshape(-1), self.kind)

    @property
    def class_name(self) -> str:
        return f"torch.{self.kind}Tensor"


@dataclass(eq=False)
class TorchObject:
    """A generic torch class (e.g. ``nn.Linear``) serialised as a field table."""

    class_name: str
    fields: dict[str, Any]


class T7Writer:
    """Streams Lua/Torch values into a binary ``.t7`` file object."""

    def __init__(self, fh: BinaryIO) -> None:
        self._fh = fh
        self._next_index = 1
        # id(python object) -> (reference index, object); the object is kept
        # alive so its id() can't be reused while the writer exists.
        self._refs: dict[int, tuple[int, Any]] = {}

    # -- primitives ---------------------------------------------------------
    def write_int(self, value: int) -> None:
        self._fh.write(struct.pack("<i", int(value)))

    def write_long(self, value: int) -> None:
        self._fh.write(struct.pack("<q", int(value)))

    def write_double(self, value: float) -> None:
        self._fh.write(struct.pack("<d", float(value)))

    def write_raw_string(self, value: str | bytes) -> None:
        data = value.encode("utf-8") if isinstance(value, str) else bytes(value)
        self.write_int(len(data))
        self._fh.write(data)

    # -- references ---------------------------------------------------------
    def _reference(self, obj: Any) -> tuple[int, bool]:
        """Return (index, first_time) for a table / torch object."""
        key = id(obj)
        if key in self._refs:
            return self._refs[key][0], False
        index = self._next_index
        self._next_index += 1
        self._refs[key] = (index, obj)
        return index, True

    # -- objects ------------------------------------------------------------
    def write_object(self, obj: Any) -> None:
        """Write any supported Python value as a tagged Lua/Torch object."""
        if obj is None:
            self.write_int(TYPE_NIL)
        elif isinstance(obj, (bool, np.bool_)):
            self.write_int(TYPE_BOOLEAN)
            self.write_int(1 if obj else 0)
        elif isinstance(obj, (int, float, np.integer, np.floating)):
            self.write_int(TYPE_NUMBER)
            self.write_double(float(obj))
        elif isinstance(obj, (str, bytes)):
            self.write_int(TYPE_STRING)
            self.write_raw_string(obj)
        elif isinstance(obj, (dict, list, tuple)):
            self.write_int(TYPE_TABLE)
            index, first = self._reference(obj)
            self.write_int(index)
            if first:
                items = obj.items() if isinstance(obj, dict) else enumerate(obj, start=1)
                pairs = list(items)
                self.write_int(len(pairs))
                for key, value in pairs:
                    self.write_object(key)
                    self.write_object(value)
        elif isinstance(obj, (TorchObject, Tensor, Storage)):
            self.write_int(TYPE_TORCH)
            index, first = self._reference(obj)
            self.write_int(index)
            if first:
                self.write_raw_string(TORCH_VERSION)
                self.write_raw_string(obj.class_name)
                if isinstance(obj, Tensor):
                    self._write_tensor_body(obj)
                elif isinstance(obj, Storage):
                    self._write_storage_body(obj)
                else:
                    self.write_object(obj.fields)
        else:
            raise TypeError(f"cannot serialise {type(obj).__name__} to t7")

    def _write_storage_body(self, storage: Storage) -> None:
        self.write_long(storage.data.size)
        self._fh.write(storage.data.tobytes())

    def _write_tensor_body(self, tensor: Tensor) -> None:
        if tensor.data is None:
            self.write_int(0)  # ndim
            self.write_long(1)  # storageOffset (1-based)
            self.write_object(None)  # no storage
            return
        arr = tensor.data
        itemsize = arr.dtype.itemsize
        self.write_int(arr.ndim)
        for size in arr.shape:
            self.write_long(size)
        for stride in arr.strides:  # element strides, not bytes
            self.write_long(stride // itemsize)
        self.write_long(1)
        self.write_object(tensor.storage)


def save(path: str | os.PathLike, obj: Any) -> None:
    """Serialise ``obj`` into a binary ``.t7`` file at ``path``."""
    with open(path, "wb") as fh:
        T7Writer(fh).write_object(obj)


# ---------------------------------------------------------------------------
# nn modules
# ---------------------------------------------------------------------------

def nn_module(class_name: str, **fields: Any) -> TorchObject:
    """An ``nn.*`` module with the bookkeeping fields every nn.Module has."""
    base: dict[str, Any] = {"train": False, "output": Tensor(), "gradInput": Tensor()}
    base.update(fields)
    return TorchObject(class_name, base)


def _sequential(modules: list[TorchObject]) -> TorchObject:
    return nn_module("nn.Sequential", modules=list(modules))


def _conv(weight: np.ndarray, bias: np.ndarray, stride: int, pad: int) -> TorchObject:
    n_out, n_in, kh, kw = weight.shape
    return nn_module(
        "nn.SpatialConvolution",
        nInputPlane=n_in, nOutputPlane=n_out, kW=kw, kH=kh, dW=stride, dH=stride,
        padW=pad, padH=pad, weight=Tensor(weight), bias=Tensor(bias),
    )


def _pool(class_name: str, k: int, stride: int) -> TorchObject:
    fields: dict[str, Any] = dict(kW=k, kH=k, dW=stride, dH=stride, padW=0, padH=0, ceil_mode=False)
    if class_name == "nn.SpatialMaxPooling":
        fields["indices"] = Tensor(kind="Long")
    else:
        fields.update(count_include_pad=True, divide=True)
    return nn_module(class_name, **fields)


def openface_like_layers(seed: int = 0) -> list[dict[str, Any]]:
    """The layer list of the stand-in network, with its deterministic weights.

    Each entry is a dict with a ``"type"`` key (``conv``, ``relu``,
    ``maxpool``, ``avgpool``, ``view``, ``linear``, ``normalize``) and the
    parameters of that layer (numpy float32 arrays for weights).  Useful for an
    independent reference implementation of the forward pass.

    Shapes for a ``N x 3 x 96 x 96`` input::

        conv 3->8, 5x5, stride 2, pad 2   -> N x 8 x 48 x 48
        ReLU
        max pool 2x2, stride 2            -> N x 8 x 24 x 24
        conv 8->16, 3x3, stride 2, pad 1  -> N x 16 x 12 x 12
        ReLU
        average pool 3x3, stride 3        -> N x 16 x 4 x 4
        view 256                          -> N x 256
        linear 256->128                   -> N x 128
        L2 normalize (p=2)                -> N x 128, unit rows
    """
    rng = np.random.default_rng(seed)

    def conv_weight(n_out: int, n_in: int, k: int) -> np.ndarray:
        w = rng.standard_normal((n_out, n_in, k, k)) * np.sqrt(2.0 / (n_in * k * k))
        # Zero-mean kernels respond to structure (edges, shading), not to the
        # overall brightness that every face crop shares.
        w -= w.mean(axis=(1, 2, 3), keepdims=True)
        return w.astype(np.float32)

    w1 = conv_weight(8, 3, 5)
    b1 = (rng.standard_normal(8) * 0.01).astype(np.float32)
    w2 = conv_weight(16, 8, 3)
    b2 = (rng.standard_normal(16) * 0.01).astype(np.float32)
    k = 16 * 4 * 4
    w3 = rng.standard_normal((EMBEDDING_DIM, k)) / np.sqrt(k)
    # Rows summing to zero: a feature offset common to all positions (shared
    # by every crop) contributes nothing, so embeddings differ per image.
    w3 -= w3.mean(axis=1, keepdims=True)
    w3 = w3.astype(np.float32)
    b3 = np.zeros(EMBEDDING_DIM, dtype=np.float32)

    return [
        {"type": "conv", "weight": w1, "bias": b1, "stride": 2, "pad": 2},
        {"type": "relu"},
        {"type": "maxpool", "k": 2, "stride": 2},
        {"type": "conv", "weight": w2, "bias": b2, "stride": 2, "pad": 1},
        {"type": "relu"},
        {"type": "avgpool", "k": 3, "stride": 3},
        {"type": "view", "size": k},
        {"type": "linear", "weight": w3, "bias": b3},
        {"type": "normalize", "p": 2.0, "eps": 1e-10},
    ]


def _to_module(layer: dict[str, Any]) -> TorchObject:
    kind = layer["type"]
    if kind == "conv":
        return _conv(layer["weight"], layer["bias"], layer["stride"], layer["pad"])
    if kind == "relu":
        return nn_module("nn.ReLU", inplace=False, threshold=0.0, val=0.0)
    if kind == "maxpool":
        return _pool("nn.SpatialMaxPooling", layer["k"], layer["stride"])
    if kind == "avgpool":
        return _pool("nn.SpatialAveragePooling", layer["k"], layer["stride"])
    if kind == "view":
        # OpenCV's importer reads ``size`` only as a storage (torch.LongStorage).
        return nn_module("nn.View", size=Storage([layer["size"]], "Long"),
                         numElements=layer["size"], numInputDims=3)
    if kind == "linear":
        return nn_module("nn.Linear", weight=Tensor(layer["weight"]), bias=Tensor(layer["bias"]))
    if kind == "normalize":
        return nn_module("nn.Normalize", p=layer["p"], eps=layer["eps"])
    raise ValueError(f"unknown layer type {kind!r}")


def write_openface_like_network(path: str | os.PathLike, seed: int = 0) -> None:
    """Write a small OpenFace-shaped embedder to ``path`` as a Torch7 file.

    The network (see :func:`openface_like_layers`) takes the blob produced by
    ``cv2.dnn.blobFromImage(face, 1/255, (96, 96), (0, 0, 0), swapRB=True,
    crop=False)`` -- shape ``N x 3 x 96 x 96``, float32 -- and outputs an
    ``N x 128`` float32 matrix whose rows are L2 unit vectors, like
    ``openface_nn4.small2.v1.t7``.  Weights come from
    ``numpy.random.default_rng(seed)``, so the file content is deterministic.
    Load it with ``cv2.dnn.readNetFromTorch(str(path))``.
    """
    model = _sequential([_to_module(layer) for layer in openface_like_layers(seed)])
    save(path, model)

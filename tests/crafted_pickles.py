"""Embeddings pickles made by hand: legitimate ones in every format the loader must accept, and ones an
attacker could write using only the globals the restricted loader admits.

Each builder returns the bytes of a file. The hostile ones must never crash, hang or exhaust the
loader: it must refuse them with one clear message.
"""

from __future__ import annotations

import pickle
import struct
import types

import numpy as np

_NUMPY_CORE = "numpy._core" if hasattr(np, "_core") else "numpy.core"


class _Reduced:
    """An object that pickles as `function(*args)` followed by BUILD with `state` (if any)."""

    def __init__(self, function, args, state=None):
        self.function, self.args, self.state = function, args, state

    def __reduce__(self):
        return (self.function, self.args) if self.state is None else (self.function, self.args, self.state)


def _reconstruct():
    from importlib import import_module
    return import_module(f"{_NUMPY_CORE}.multiarray")._reconstruct


def crafted_dtype(code: str, state: tuple) -> _Reduced:
    """np.dtype(code) pickled with an arbitrary state: numpy trusts the state's fields and flags."""
    return _Reduced(np.dtype, (code, False, True), state)


def crafted_array(dtype, data: bytes, shape=(1,)) -> _Reduced:
    """An ndarray pickled as _reconstruct + BUILD with raw bytes, whatever the dtype."""
    return _Reduced(_reconstruct(), (np.ndarray, (0,), b"b"), (1, shape, dtype, False, data))


def object_field_v8(protocol: int = 2) -> bytes:
    """The SIGSEGV of issue 16 item 1: a V8 dtype whose state declares an object field, over bytes b"A"*8."""
    dtype = crafted_dtype("V8", (3, "|", None, ("x",), {"x": (np.dtype("O"), 0)}, 8, 1, 0))
    return pickle.dumps({"embeddings": [crafted_array(dtype, b"A" * 8)], "names": ["x"]}, protocol=protocol)


def hostile_arrays() -> dict[str, bytes]:
    """Many ways to make numpy build something that is not a plain numeric vector."""
    object_state = (3, "|", None, None, None, -1, -1, 63)
    cases = {
        "object dtype over bytes": crafted_array(crafted_dtype("O", object_state), b"A" * 8),
        "object dtype, no flags": crafted_array(crafted_dtype("O", (3, "|", None, None, None, -1, -1, 0)), b"A" * 8),
        "void dtype": crafted_array(crafted_dtype("V8", (3, "|", None, None, None, 8, 1, 0)), b"A" * 8),
        "structured float fields": crafted_array(
            crafted_dtype("V8", (3, "|", None, ("a", "b"), {"a": (np.dtype("f4"), 0), "b": (np.dtype("f4"), 4)}, 8, 1, 0)),
            b"A" * 8),
        "subarray": crafted_array(crafted_dtype("V16", (3, "|", (np.dtype("f8"), (2,)), None, None, 16, 8, 0)), b"A" * 16),
        "string dtype": crafted_array(crafted_dtype("S8", (3, "|", None, None, None, 8, 1, 0)), b"A" * 8),
        "unicode dtype": crafted_array(crafted_dtype("U2", (3, "<", None, None, None, 8, 4, 0)), b"A" * 8),
        "datetime dtype": crafted_array(crafted_dtype("M8", (4, "<", None, None, None, -1, -1, 0, ("s", 1, 1, 1))), b"A" * 8),
        "float with a wrong itemsize": crafted_array(crafted_dtype("f8", (3, "<", None, None, None, 64, 8, 0)), b"A" * 8),
        "float with object flags": crafted_array(crafted_dtype("f8", (3, "<", None, None, None, -1, -1, 63)), b"A" * 8),
        "shape larger than the data": crafted_array(np.dtype("f8"), b"A" * 8, shape=(1 << 40,)),
        "negative shape": crafted_array(np.dtype("f8"), b"A" * 8, shape=(-1,)),
        "data of the wrong type": crafted_array(np.dtype("f8"), ["x"] * 1),
        "ndarray subclass": _Reduced(_reconstruct(), (np.recarray, (0,), b"b"), (1, (1,), np.dtype("f8"), False, b"A" * 8)),
    }
    out = {name: pickle.dumps({"embeddings": [value], "names": ["x"]}, protocol=2) for name, value in cases.items()}
    out["object field V8, protocol 2"] = object_field_v8(2)
    out["object field V8, protocol 5"] = object_field_v8(5)
    scalar = getattr(__import__(f"{_NUMPY_CORE}.multiarray", fromlist=["scalar"]), "scalar")
    out["object scalar"] = pickle.dumps({"embeddings": [[_Reduced(scalar, (crafted_dtype("O", object_state), b"A" * 8))] * 128],
                                         "names": ["x"]}, protocol=2)
    # numpy.dtype made with NEWOBJ (its __new__ without arguments), then used for an array
    out["dtype made without arguments"] = (
        b"\x80\x02}(X\n\x00\x00\x00embeddings]" + f"c{_NUMPY_CORE}.numeric\n_frombuffer\n(".encode()
        + b"C\x08AAAAAAAAcnumpy\ndtype\n)\x81K\x01\x85X\x01\x00\x00\x00CtRaX\x05\x00\x00\x00names]X\x01\x00\x00\x00xau.")
    import _codecs
    out["codec other than latin1"] = pickle.dumps({"embeddings": [[_Reduced(_codecs.encode, ("a" * 64, "zlib_codec"))]],
                                                   "names": ["x"]}, protocol=2)
    return out


def memo_bomb(index: int = 1 << 26) -> bytes:
    """Nine bytes that make CPython's C unpickler allocate and zero a memo of 2 x index pointers."""
    return b"\x80\x02N" + b"r" + struct.pack("<I", index) + b"."


def repeated_references(count: int = 130_000, dimension: int = 4096) -> bytes:
    """One vector referenced `count` times: a file of a few hundred KB that names count x dimension values."""
    vector = np.full(dimension, 1 / np.sqrt(dimension), np.float32)
    return pickle.dumps({"embeddings": [vector] * count, "names": ["x"] * count}, protocol=4)


def _numpy_function(module: str, name: str):
    from importlib import import_module
    return getattr(import_module(f"{_NUMPY_CORE}.{module}"), name)


class _Numpy1Pickler(pickle._Pickler):
    """Names numpy's reconstruction functions as numpy 1.x did (numpy.core.*), whatever numpy runs the test."""

    def save_global(self, obj, name=None):
        module = next((m for m, n in (("multiarray", "_reconstruct"), ("multiarray", "scalar"), ("numeric", "_frombuffer"))
                       if obj is _numpy_function(m, n)), None)
        if module is None:
            return super().save_global(obj, name)
        if self.proto >= 4:
            self.save(f"numpy.core.{module}")
            self.save(obj.__name__)
            self.write(pickle.STACK_GLOBAL)
        else:
            self.write(pickle.GLOBAL + f"numpy.core.{module}\n{obj.__name__}\n".encode())
        self.memoize(obj)

    # the pure-Python pickler dispatches on type to the base class's functions
    dispatch = {**pickle._Pickler.dispatch, types.FunctionType: save_global, types.BuiltinFunctionType: save_global}


def numpy1_dumps(content, protocol: int) -> bytes:
    """pickle.dumps(content) as numpy 1.x writes it."""
    import io
    buffer = io.BytesIO()
    _Numpy1Pickler(buffer, protocol=protocol).dump(content)
    return buffer.getvalue()


def tutorial_store(count: int = 3, dimension: int = 128, protocol: int = 3, numpy1: bool = False,
                   dtype=np.float64) -> bytes:
    """What the classic tutorial writes: {"embeddings": [flattened unit vectors], "names": [str]}."""
    rng = np.random.default_rng(count)
    vectors = rng.normal(size=(count, dimension))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    content = {"embeddings": [row.astype(dtype) for row in vectors], "names": [f"person{i % 2}" for i in range(count)]}
    return numpy1_dumps(content, protocol) if numpy1 else pickle.dumps(content, protocol=protocol)


def format1(content: dict) -> dict:
    """A store's dict (pickle.load of what save_store writes) in format 1, as facerec wrote it before issue 22:
    a list of 1-D float32 arrays, and "files" as {path: {"size", "mtime_ns", "status"}}."""
    files = content["files"]
    records = {key: {"size": int(size), "mtime_ns": int(mtime), "status": status}
               for key, size, mtime, status in zip(files["keys"], files["size"], files["mtime_ns"], files["status"])}
    return {**content, "embeddings": [np.array(row) for row in content["embeddings"]], "files": records, "format": 1}


def hostile_splits() -> dict[str, bytes]:
    """Misuses of the one call the loader admits besides numpy's (getattr(str, "split"), for a list of strings)."""
    text = "x\x00" * 50_000
    cases = {
        "getattr of another attribute": _Reduced(getattr, (str, "join")),
        "getattr of something else": _Reduced(getattr, (dict, "split")),
        "split at another separator": _Reduced(str.split, ("a b", " ")),
        "split of bytes": _Reduced(str.split, (b"a\x00b", "\x00")),
        # one string in the file, split again and again through the memo: each split is more objects
        "the same string split many times": [_Reduced(str.split, (text, "\x00")) for _ in range(100)],
    }
    return {name: pickle.dumps({"embeddings": [], "names": value}, protocol=5) for name, value in cases.items()}

"""The restricted unpickler: plain containers, numbers, strings and numeric numpy arrays only, those arrays
built by stand-ins that check every type, shape and byte count before numpy sees them."""

from __future__ import annotations

import ctypes
import math
import pickle
from typing import TYPE_CHECKING, Any, Callable, ClassVar

import numpy as np

from ...gallery import MAX_VALUES, MAX_VECTORS
from ...gallery import shown as _shown
from .format import SEPARATOR

class Refused(pickle.UnpicklingError):
    """The pickle asks for something outside the embeddings format (code to run, a non-numeric array)."""


_NUMERIC_TYPES = {"f2", "f4", "f8", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8"}
_BYTE_ORDERS = {"<", ">", "|", "="}


class _NdarrayName:
    """What the pickle gets for numpy.ndarray: only a token for _reconstruct, no class to call."""


class _PickledDtype:
    """Stands in for numpy.dtype(code, align, copy) + its state: accepts only plain numeric types."""

    dtype: np.dtype | None = None  # None if the pickle made one without calling it (NEWOBJ)

    def __init__(self, code: Any, align: Any = False, copy: Any = True) -> None:
        if not isinstance(code, str) or code not in _NUMERIC_TYPES:
            raise Refused(f"it holds an array of numpy type {str(code)[:20]!r}, not plain numbers")
        self.dtype = np.dtype(code)

    def __setstate__(self, state: Any) -> None:
        # numpy's state: (version, byte order, sub-array, field names, fields, item size, alignment, flags);
        # a plain number type has no sub-array, no fields, the default size and alignment, and no flags
        plain = (isinstance(state, tuple) and len(state) == 8 and state[0] == 3 and state[1] in _BYTE_ORDERS
                 and state[2] is None and state[3] is None and state[4] is None
                 and state[5] == -1 and state[6] == -1 and state[7] == 0)
        if not plain:
            raise Refused("it holds a numpy type with fields, sub-arrays or flags, not plain numbers")
        if state[1] in ("<", ">"):
            if self.dtype is None:
                raise Refused("it sets the byte order of a numpy type it never made")
            self.dtype = self.dtype.newbyteorder(state[1])


class PickledArray:
    """Stands in for an ndarray while unpickling; `array` is the checked plain numeric array."""

    array: np.ndarray | None = None  # until its state is set

    def __init__(self, array: np.ndarray | None = None) -> None:
        self.array = array

    def __setstate__(self, state: Any) -> None:
        # numpy's state: (version, shape, dtype, Fortran order, raw bytes)
        if self.array is not None or not isinstance(state, tuple) or len(state) != 5 or state[0] != 1:
            raise Refused("it holds an array in a form numpy never writes")
        _, shape, dtype, fortran, data = state
        if fortran not in (True, False):
            raise Refused("it holds an array in a form numpy never writes")
        self.array = _plain_array(data, dtype, shape, "F" if fortran else "C")


def _plain_array(data: Any, dtype: Any, shape: Any, order: Any) -> np.ndarray:
    """A numeric array over `data`, after checking type, shape and byte count (numpy is only given checked values)."""
    if not isinstance(dtype, _PickledDtype) or dtype.dtype is None:
        raise Refused("it holds an array whose type is not a plain numpy number type")
    if not isinstance(data, (bytes, bytearray, memoryview)) or order not in ("C", "F"):
        raise Refused("it holds an array whose data are not bytes")
    if (not isinstance(shape, tuple) or len(shape) > 2
            or not all(type(size) is int and 0 <= size <= MAX_VALUES for size in shape)):
        raise Refused(f"it holds an array of shape {str(shape)[:40]}, not a vector")
    count = math.prod(shape)
    if count * dtype.dtype.itemsize != len(data):
        raise Refused(f"it holds an array of shape {shape} whose data are {len(data)} bytes, not "
                       f"{count * dtype.dtype.itemsize}")
    # a view, not a copy: many references to one buffer must not multiply its size
    return np.frombuffer(data, dtype=dtype.dtype, count=count).reshape(shape, order=order)


def _reconstruct(subtype: Any, shape: Any = None, typecode: Any = None) -> PickledArray:
    """Stands in for numpy's _reconstruct: an empty array, filled by its state (PickledArray.__setstate__)."""
    if subtype is not _NdarrayName:
        raise Refused("it holds an array of a class other than numpy.ndarray")
    return PickledArray()


def _frombuffer(buffer: Any, dtype: Any, shape: Any, order: Any) -> PickledArray:
    """Stands in for numpy's _frombuffer (protocol 5 arrays)."""
    return PickledArray(_plain_array(buffer, dtype, shape, order))


def _scalar(dtype: Any, data: Any = None) -> int | float:
    """Stands in for numpy's scalar(): a numeric scalar becomes a Python int or float."""
    if (not isinstance(dtype, _PickledDtype) or dtype.dtype is None or not isinstance(data, bytes)
            or len(data) != dtype.dtype.itemsize):
        raise Refused("it holds a numpy scalar that is not a plain number")
    return np.frombuffer(data, dtype=dtype.dtype)[0].item()


class _StrName:
    """What the pickle gets for builtins.str: only a token for getattr(str, "split"), no class to call."""


class SplitText(tuple):
    """The strings one str.split gave while unpickling: a tuple, so no later opcode can add anything to it."""


class _Source:
    """The file's bytes as the unpickler reads them; a large array's bytes are lent in place, not copied."""

    ALIGNMENT = 8  # a lent array starts at a multiple of this (numpy's largest number type is 8 bytes)
    LINE_CHUNK = 4096

    def __init__(self, data: np.ndarray) -> None:
        self._data, self._view, self._position = data, data.data, 0

    def read(self, size: int = -1) -> bytes:
        end = len(self._view) if size < 0 else min(self._position + size, len(self._view))
        chunk = bytes(self._view[self._position:end])
        self._position = end
        return chunk

    def readline(self) -> bytes:
        end = self._position
        while end < len(self._view):
            found = bytes(self._view[end:end + self.LINE_CHUNK]).find(b"\n")
            if found >= 0:
                return self.read(end + found + 1 - self._position)
            end += self.LINE_CHUNK
        return self.read()

    def lend(self, size: int) -> memoryview:
        """The next `size` bytes in place, the bytes of an array: moved back over the 9 bytes of their BYTEARRAY8
        header (already read) if they are not aligned for numpy."""
        start = self._position
        if start + size > len(self._view):
            raise Refused("it declares an array of more bytes than the file holds")
        address = self._data.ctypes.data
        shift = (address + start) % self.ALIGNMENT
        if shift:
            ctypes.memmove(address + start - shift, address + start, size)
        self._position = start + size
        return self._view[start - shift:start - shift + size]


class RestrictedUnpickler(pickle._Unpickler):
    """Plain data and numeric arrays only.

    Python's own unpickler rather than the C one: the C one allocates (and zeroes) a memo
    as large as the largest memo index a file names, so a 9-byte file could take gigabytes.
    """

    if TYPE_CHECKING:  # pickle._Unpickler's internals, which typeshed does not describe
        stack: list[Any]
        _unframer: Any

        def read(self, size: int) -> bytes: ...
        def readinto(self, buffer: bytearray) -> int: ...
        def append(self, item: Any) -> None: ...

    def __init__(self, data: np.ndarray) -> None:
        self._source = _Source(data)
        super().__init__(self._source)
        # protocol 2 writes each array's bytes as _codecs.encode(text, "latin1"), and a list of strings is one
        # string split: what is decoded or split, together, is never more than the file holds
        self._decode_budget = len(data)
        self._globals = {
            ("numpy", "ndarray"): _NdarrayName,
            ("numpy", "dtype"): _PickledDtype,
            ("_codecs", "encode"): self._latin1_encode,
            ("builtins", "str"): _StrName,
            ("builtins", "getattr"): self._getattr,
        }
        for package in ("numpy.core", "numpy._core"):
            self._globals[(f"{package}.multiarray", "_reconstruct")] = _reconstruct
            self._globals[(f"{package}.multiarray", "scalar")] = _scalar
            self._globals[(f"{package}.numeric", "_frombuffer")] = _frombuffer

    def _latin1_encode(self, text: Any, encoding: Any = "utf-8", errors: Any = "strict") -> bytes:
        if not isinstance(text, str) or encoding not in ("latin1", "latin-1") or errors != "strict":
            raise Refused("it calls _codecs.encode other than as numpy writes array bytes")
        self._spend(len(text))
        return text.encode("latin1")

    def _spend(self, size: int) -> None:
        self._decode_budget -= size
        if self._decode_budget < 0:
            raise Refused("it decodes more bytes than the file holds")

    def _getattr(self, owner: Any, name: Any) -> Callable[[Any, Any], SplitText]:
        if owner is not _StrName or type(name) is not str or name != "split":
            raise Refused("it calls getattr other than as getattr(str, 'split')")
        return self._split

    def _split(self, text: Any, separator: Any = None) -> SplitText:
        """Stands in for str.split, as a _Joined list is pickled: one string, at SEPARATOR, a bounded number of parts."""
        if type(text) is not str or type(separator) is not str or separator != SEPARATOR:
            raise Refused("it splits something other than a string at the separator facerec writes")
        self._spend(len(text))
        if text.count(SEPARATOR) >= MAX_VECTORS:
            raise Refused(f"it splits a string into more than the {MAX_VECTORS:,} parts an embeddings file may have")
        return SplitText(text.split(SEPARATOR))

    def find_class(self, module: str, name: str) -> Any:
        found = self._globals.get((module, name))
        if found is None:
            raise Refused(f"it refers to {_shown(f'{module}.{name}')}, which an embeddings file never contains")
        return found

    def persistent_load(self, pid: Any) -> Any:
        raise Refused("it refers to outside objects, which an embeddings file never does")

    def _load_build_checked(self) -> None:
        # BUILD sets an object's state: only our stand-ins take one (on a class or function it would
        # change this module's objects for every later load)
        if len(self.stack) < 2 or not isinstance(self.stack[-2], (_PickledDtype, PickledArray)):
            raise Refused("it sets the state of something other than a numpy array or type")
        # typeshed types _Unpickler.dispatch as taking the C Unpickler, whose methods the Python one has
        pickle._Unpickler.dispatch[pickle.BUILD[0]](self)  # type: ignore[arg-type]

    def _load_bytearray8_in_place(self) -> None:
        # protocol 5 writes an array's numbers as a bytearray, a large one after its frame: those are lent in place,
        # not copied; nothing is allocated at a size the file does not have
        size = int.from_bytes(self.read(8), "little")
        if self._unframer.current_frame is None:
            self.append(self._source.lend(size))
            return
        if size > len(self._source._view):
            raise Refused("it declares an array of more bytes than the file holds")
        buffer = bytearray(size)
        self.readinto(buffer)
        self.append(buffer)

    def _load_refused(self) -> None:
        raise Refused("it makes objects in a way numpy and plain containers never do (NEWOBJ, OBJ, INST)")

    dispatch: ClassVar[dict[int, Callable[[Any], None]]] = {
        **pickle._Unpickler.dispatch,
        pickle.BUILD[0]: _load_build_checked,
        pickle.BYTEARRAY8[0]: _load_bytearray8_in_place,
        **dict.fromkeys((pickle.NEWOBJ[0], pickle.NEWOBJ_EX[0], pickle.OBJ[0], pickle.INST[0]), _load_refused),
    }


"""The embeddings file: one pickle of what extract_embeddings.py learned from the dataset.

Format (a dict, readable by the classic tutorial scripts):
    "embeddings": one 2-D float32 array, a row per face image, each row of length 1
    "names":      list of str, the person of each vector
    "paths":      list of str, the image each vector came from
    "profile":    name of the model profile that made the vectors
    "models":     dict describing the model files used
    "files":      every image seen, so a later run can skip what it already did, in
                  columns: {"keys": [path], "size": int64 array, "mtime_ns": int64
                  array, "status": [str]} (FileRecords gives them as {path: record})
    "format":     version number of this layout (2)
    "negatives":  only when there are any: faces the user said are not a person (docs/negatives.md),
                  {"embeddings": 2-D float32 array of unit rows, "names": [the person each is not]};
                  a reader that does not know the key ignores it

A list of strings is pickled as one string and str.split (see _Joined): pickle.load
gives the list, and a reader builds one object, not one per face. Format 1 (the
seed's list of 1-D arrays, "files" as {path: {"size", "mtime_ns", "status"}}) still
loads, and the next extraction rewrites it in this layout.

Loading never trusts the file. It is read only from a regular file of at most
MAX_FILE_BYTES. A restricted unpickler admits only plain containers, numbers,
strings and numeric numpy arrays, and builds those arrays itself: numpy's own
reconstruction functions are replaced by stand-ins that check every type,
shape and byte count before numpy sees them, and make nothing but plain
integer or float arrays (no fields, objects, sub-arrays). What the vectors
may expand to in memory is bounded before it is allocated. The only calls it admits
besides those are getattr(str, "split") and that split, bounded by the file's size.
"""

from __future__ import annotations

import ctypes
import dataclasses
import math
import os
import pickle
import stat
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar

import numpy as np

from ..catalogue import PROFILES
from ..errors import FacerecError
from ..fileio import FileTooLarge, NotRegularFile, atomic_writer, check_writable, file_kind, read_regular_file
from ..gallery import (MAX_DIMENSION, MAX_VALUES, MAX_VECTORS, check_negative, check_unit_vectors, reusable,
                       shown as _shown)
from .base import (LEGACY_PROFILE, WRITER_WAIT_SECONDS, Gallery, GalleryCounts, Negatives, NoGalleryYet, SightingLog,
                   Store, StoreWriter, Watch)
from .folderlock import FolderLock

FORMAT_VERSION = 2
# Joins a list of strings into one (see _Joined): no person, path or reason holds it (a file name cannot).
SEPARATOR = "\x00"

# Bounds on what a file may make the loader build. The largest gallery in mind is a few million
# vectors (a million 128-d vectors is a 0.6 GB file): these leave room above that.
MAX_FILE_BYTES = 4 << 30
# Each vector's numbers are in the file, at least one byte each (int8): in memory, as float32,
# the vectors never need more than 4 times the file's size. More means repeated references.
MAX_EXPANSION = 4


class NotAStore(FacerecError):
    """The file is not an embeddings file at all (not a pickle, a hostile pickle, something else)."""


class UnusableStore(FacerecError):
    """The file is an embeddings file (a dict with "embeddings" and "names") that this version cannot use."""


class FileRecords(Mapping):
    """The "files" records of format 2, {key: {"size", "mtime_ns", "status"}}, kept in the columns the file
    stores (checked on loading) until first read: a recogniser never reads them, so starting one does not
    make a dict per image of a million."""

    COLUMNS = {"keys", "size", "mtime_ns", "status"}

    def __init__(self, keys: list[str], sizes: np.ndarray, mtimes: np.ndarray, statuses: list[str]) -> None:
        self.columns = (keys, sizes, mtimes, statuses)

    @cached_property
    def _records(self) -> dict[str, dict[str, Any]]:
        keys, sizes, mtimes, statuses = self.columns
        return {key: {"size": size, "mtime_ns": mtime, "status": status}
                for key, size, mtime, status in zip(keys, sizes.tolist(), mtimes.tolist(), statuses)}

    def __getitem__(self, key: str) -> dict[str, Any]:
        return self._records[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._records)

    def __len__(self) -> int:
        return len(self._records)


# --- the restricted unpickler ---------------------------------------------------------------

class _Refused(pickle.UnpicklingError):
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
            raise _Refused(f"it holds an array of numpy type {str(code)[:20]!r}, not plain numbers")
        self.dtype = np.dtype(code)

    def __setstate__(self, state: Any) -> None:
        # numpy's state: (version, byte order, sub-array, field names, fields, item size, alignment, flags);
        # a plain number type has no sub-array, no fields, the default size and alignment, and no flags
        plain = (isinstance(state, tuple) and len(state) == 8 and state[0] == 3 and state[1] in _BYTE_ORDERS
                 and state[2] is None and state[3] is None and state[4] is None
                 and state[5] == -1 and state[6] == -1 and state[7] == 0)
        if not plain:
            raise _Refused("it holds a numpy type with fields, sub-arrays or flags, not plain numbers")
        if state[1] in ("<", ">"):
            if self.dtype is None:
                raise _Refused("it sets the byte order of a numpy type it never made")
            self.dtype = self.dtype.newbyteorder(state[1])


class _PickledArray:
    """Stands in for an ndarray while unpickling; `array` is the checked plain numeric array."""

    array: np.ndarray | None = None  # until its state is set

    def __init__(self, array: np.ndarray | None = None) -> None:
        self.array = array

    def __setstate__(self, state: Any) -> None:
        # numpy's state: (version, shape, dtype, Fortran order, raw bytes)
        if self.array is not None or not isinstance(state, tuple) or len(state) != 5 or state[0] != 1:
            raise _Refused("it holds an array in a form numpy never writes")
        _, shape, dtype, fortran, data = state
        if fortran not in (True, False):
            raise _Refused("it holds an array in a form numpy never writes")
        self.array = _plain_array(data, dtype, shape, "F" if fortran else "C")


def _plain_array(data: Any, dtype: Any, shape: Any, order: Any) -> np.ndarray:
    """A numeric array over `data`, after checking type, shape and byte count (numpy is only given checked values)."""
    if not isinstance(dtype, _PickledDtype) or dtype.dtype is None:
        raise _Refused("it holds an array whose type is not a plain numpy number type")
    if not isinstance(data, (bytes, bytearray, memoryview)) or order not in ("C", "F"):
        raise _Refused("it holds an array whose data are not bytes")
    if (not isinstance(shape, tuple) or len(shape) > 2
            or not all(type(size) is int and 0 <= size <= MAX_VALUES for size in shape)):
        raise _Refused(f"it holds an array of shape {str(shape)[:40]}, not a vector")
    count = math.prod(shape)
    if count * dtype.dtype.itemsize != len(data):
        raise _Refused(f"it holds an array of shape {shape} whose data are {len(data)} bytes, not "
                       f"{count * dtype.dtype.itemsize}")
    # a view, not a copy: many references to one buffer must not multiply its size
    return np.frombuffer(data, dtype=dtype.dtype, count=count).reshape(shape, order=order)


def _reconstruct(subtype: Any, shape: Any = None, typecode: Any = None) -> _PickledArray:
    """Stands in for numpy's _reconstruct: an empty array, filled by its state (_PickledArray.__setstate__)."""
    if subtype is not _NdarrayName:
        raise _Refused("it holds an array of a class other than numpy.ndarray")
    return _PickledArray()


def _frombuffer(buffer: Any, dtype: Any, shape: Any, order: Any) -> _PickledArray:
    """Stands in for numpy's _frombuffer (protocol 5 arrays)."""
    return _PickledArray(_plain_array(buffer, dtype, shape, order))


def _scalar(dtype: Any, data: Any = None) -> int | float:
    """Stands in for numpy's scalar(): a numeric scalar becomes a Python int or float."""
    if (not isinstance(dtype, _PickledDtype) or dtype.dtype is None or not isinstance(data, bytes)
            or len(data) != dtype.dtype.itemsize):
        raise _Refused("it holds a numpy scalar that is not a plain number")
    return np.frombuffer(data, dtype=dtype.dtype)[0].item()


class _StrName:
    """What the pickle gets for builtins.str: only a token for getattr(str, "split"), no class to call."""


class _SplitText(tuple):
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
            raise _Refused("it declares an array of more bytes than the file holds")
        address = self._data.ctypes.data
        shift = (address + start) % self.ALIGNMENT
        if shift:
            ctypes.memmove(address + start - shift, address + start, size)
        self._position = start + size
        return self._view[start - shift:start - shift + size]


class _RestrictedUnpickler(pickle._Unpickler):
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
            raise _Refused("it calls _codecs.encode other than as numpy writes array bytes")
        self._spend(len(text))
        return text.encode("latin1")

    def _spend(self, size: int) -> None:
        self._decode_budget -= size
        if self._decode_budget < 0:
            raise _Refused("it decodes more bytes than the file holds")

    def _getattr(self, owner: Any, name: Any) -> Callable[[Any, Any], _SplitText]:
        if owner is not _StrName or type(name) is not str or name != "split":
            raise _Refused("it calls getattr other than as getattr(str, 'split')")
        return self._split

    def _split(self, text: Any, separator: Any = None) -> _SplitText:
        """Stands in for str.split, as a _Joined list is pickled: one string, at SEPARATOR, a bounded number of parts."""
        if type(text) is not str or type(separator) is not str or separator != SEPARATOR:
            raise _Refused("it splits something other than a string at the separator facerec writes")
        self._spend(len(text))
        if text.count(SEPARATOR) >= MAX_VECTORS:
            raise _Refused(f"it splits a string into more than the {MAX_VECTORS:,} parts an embeddings file may have")
        return _SplitText(text.split(SEPARATOR))

    def find_class(self, module: str, name: str) -> Any:
        found = self._globals.get((module, name))
        if found is None:
            raise _Refused(f"it refers to {_shown(f'{module}.{name}')}, which an embeddings file never contains")
        return found

    def persistent_load(self, pid: Any) -> Any:
        raise _Refused("it refers to outside objects, which an embeddings file never does")

    def _load_build_checked(self) -> None:
        # BUILD sets an object's state: only our stand-ins take one (on a class or function it would
        # change this module's objects for every later load)
        if len(self.stack) < 2 or not isinstance(self.stack[-2], (_PickledDtype, _PickledArray)):
            raise _Refused("it sets the state of something other than a numpy array or type")
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
            raise _Refused("it declares an array of more bytes than the file holds")
        buffer = bytearray(size)
        self.readinto(buffer)
        self.append(buffer)

    def _load_refused(self) -> None:
        raise _Refused("it makes objects in a way numpy and plain containers never do (NEWOBJ, OBJ, INST)")

    dispatch: ClassVar[dict[int, Callable[[Any], None]]] = {
        **pickle._Unpickler.dispatch,
        pickle.BUILD[0]: _load_build_checked,
        pickle.BYTEARRAY8[0]: _load_bytearray8_in_place,
        **dict.fromkeys((pickle.NEWOBJ[0], pickle.NEWOBJ_EX[0], pickle.OBJ[0], pickle.INST[0]), _load_refused),
    }


# --- reading --------------------------------------------------------------------------------

def _read_regular_file(path: Path) -> np.ndarray:
    """The bytes of `path` if it is a regular file of at most MAX_FILE_BYTES (devices and FIFOs are never opened),
    as a writable uint8 array in anonymous memory: the vectors are used where they were read (see _Source.lend)."""
    try:
        return read_regular_file(path, MAX_FILE_BYTES, anonymous=True)
    except FileNotFoundError:
        raise NoGalleryYet(f"embeddings file {path} does not exist: run extract_embeddings.py first") from None
    except NotRegularFile as error:
        raise NotAStore(f"embeddings file {path} is not a regular file ({error.kind})") from None
    except FileTooLarge as error:
        if error.grew:
            raise NotAStore(f"embeddings file {path} grew while it was read: is something still writing it?") from None
        raise NotAStore(f"embeddings file {path} is {error.size:,} bytes, more than the {MAX_FILE_BYTES:,} "
                        "an embeddings file may have") from None
    except OSError as error:
        raise FacerecError(f"cannot read embeddings file {path}: {error.strerror}") from None


def load_store(path: str | os.PathLike) -> Gallery:
    """Read and check an embeddings file; raise FacerecError naming the file and the problem.

    NotAStore: not an embeddings file at all. UnusableStore: an embeddings file that is
    damaged (malformed records, vectors that are not unit length...) or from another version.
    """
    path = Path(path)
    data = _read_regular_file(path)
    if not len(data):
        raise NotAStore(f"embeddings file {path} is empty")
    try:
        content = _RestrictedUnpickler(data).load()
    except _Refused as error:
        raise NotAStore(f"embeddings file {path} was refused: {error}") from None
    except RecursionError:
        raise NotAStore(f"embeddings file {path} was refused: it nests containers too deeply") from None
    except KeyError as error:  # Python's unpickler met a byte that is no pickle opcode
        code = error.args[0] if error.args and type(error.args[0]) is int else 0
        raise NotAStore(f"embeddings file {path} is not a readable embeddings pickle "
                        f"(invalid load key, {_shown(repr(chr(code)))})") from None
    except Exception as error:  # truncated or garbage bytes raise many different types
        raise NotAStore(f"embeddings file {path} is not a readable embeddings pickle "
                        f"({_shown(str(error)) or type(error).__name__})") from None
    if not isinstance(content, dict) or "embeddings" not in content or "names" not in content:
        raise NotAStore(f'embeddings file {path} is not an embeddings file: expected a dict with "embeddings" and "names"')
    try:
        return _store_from_dict(content, len(data))
    except _Refused as error:
        raise NotAStore(f"embeddings file {path} was refused: {error}") from None
    except _Damaged as error:
        raise UnusableStore(f"embeddings file {path} is damaged: {error}{_REMAKE}") from None
    except _UnknownProfile as error:
        raise UnusableStore(f"embeddings file {path} {error}{_REMAKE}") from None


# what a reader of an unusable store is told to do (extract_embeddings.py itself replaces it)
_REMAKE = "; run extract_embeddings.py to make a new one"


class _Damaged(ValueError):
    """A record of the store is malformed."""


class _UnknownProfile(ValueError):
    """The store names a profile this version does not have."""


def _vector_rows(raw: Any) -> list[Any]:
    """The stored vectors of a list (format 1), one item each (a numeric array or a list of numbers), not yet copied."""
    if not isinstance(raw, (list, tuple)):
        raise _Damaged('"embeddings" must be a list of vectors')
    if len(raw) > MAX_VECTORS:
        raise _Refused(f"it holds {len(raw):,} vectors, more than the {MAX_VECTORS:,} an embeddings file may have")
    rows: list[Any] = []  # arrays, lists and tuples of numbers
    for index, item in enumerate(raw):
        if isinstance(item, _PickledArray) and item.array is not None:
            rows.append(item.array)
        elif isinstance(item, (list, tuple)) and all(type(x) in (int, float) for x in item[:MAX_DIMENSION + 1]):
            rows.append(item)
        else:
            raise _Damaged(f'"embeddings" must be a list of numeric vectors (item {index} is not)')
    return rows


def _check_size(count: int, dimension: int, file_size: int) -> None:
    """Refuse vectors that would take more memory than such a file can hold (repeated references)."""
    if count > MAX_VECTORS:
        raise _Refused(f"it holds {count:,} vectors, more than the {MAX_VECTORS:,} an embeddings file may have")
    if dimension > MAX_DIMENSION:
        raise _Refused(f"its vectors have {dimension:,} numbers, more than the {MAX_DIMENSION:,} an embeddings file may have")
    values = count * dimension
    if values > MAX_VALUES or values * 4 > MAX_EXPANSION * file_size:
        raise _Refused(f"its {count:,} vectors of {dimension:,} numbers would take {values * 4:,} bytes in memory, "
                       f"more than {MAX_EXPANSION} times the file's {file_size:,} bytes (or {MAX_VALUES * 4:,}): "
                       "the file repeats references to the same vectors")


def _vectors(raw: Any, names: list[str], file_size: int) -> np.ndarray:
    """The stored vectors as one float32 matrix, after bounding what it takes in memory.

    One 2-D array (what save_store writes) is taken as it is, without a Python object per
    vector; a list of vectors (format 1, the seed's) is copied row by row.
    """
    if isinstance(raw, _PickledArray) and raw.array is not None and raw.array.ndim == 2:
        count, dimension = raw.array.shape
        _check_size(count, dimension, file_size)
        with np.errstate(over="ignore", invalid="ignore"):
            # float32 in C order lent from the file's bytes (what save_store writes) is used in place (see _Source)
            vectors = np.require(raw.array, np.float32, ["C_CONTIGUOUS", "ALIGNED", "WRITEABLE"])
    else:
        rows = _vector_rows(raw)
        sizes = {row.size if isinstance(row, np.ndarray) else len(row) for row in rows}
        if len(sizes) > 1:
            raise _Damaged(f"vectors of different lengths {sorted(sizes)[:10]}")
        dimension = sizes.pop() if sizes else 0
        _check_size(len(rows), dimension, file_size)
        vectors = np.empty((len(rows), dimension), np.float32)
        with np.errstate(over="ignore", invalid="ignore"):
            for index, row in enumerate(rows):
                try:
                    vectors[index] = np.ravel(row)
                except (TypeError, ValueError, OverflowError):
                    raise _Damaged(f"vector {index} is not made of numbers") from None
    if len(vectors) != len(names):
        raise _Damaged(f"{len(vectors)} embeddings but {len(names)} names")
    try:
        check_unit_vectors(vectors, names)
    except ValueError as error:
        raise _Damaged(str(error)) from None
    return vectors



def _plain_value(value: Any, depth: int = 0) -> bool:
    """Whether `value` is JSON-like data (str, number, bool, None, and small lists and dicts of them)."""
    if value is None or type(value) in (str, int, float, bool):
        return True
    if depth >= 4:
        return False
    if isinstance(value, (list, tuple)):
        return len(value) <= 1000 and all(_plain_value(item, depth + 1) for item in value)
    if isinstance(value, dict):
        return len(value) <= 1000 and all(type(k) is str and _plain_value(v, depth + 1) for k, v in value.items())
    return False


def _strings(value: Any, what: str) -> list[str]:
    """`value` as a list of str: a list or tuple of them, or what one str.split gave (a _Joined list)."""
    if isinstance(value, _SplitText) or (isinstance(value, (list, tuple)) and all(type(item) is str for item in value)):
        return list(value)
    raise _Damaged(f'{what} must be a list of strings')


def _integers(value: Any, what: str) -> np.ndarray:
    if not (isinstance(value, _PickledArray) and value.array is not None and value.array.ndim == 1
            and value.array.dtype.kind == "i"):
        raise _Damaged(f'{what} must be a 1-D integer array')
    return value.array.astype(np.int64)


def _file_records(files: Any) -> Mapping[str, dict[str, Any]]:
    if isinstance(files, dict) and set(files) == FileRecords.COLUMNS:  # format 2: columns
        columns = (_strings(files["keys"], '"files" "keys"'), _integers(files["size"], '"files" "size"'),
                   _integers(files["mtime_ns"], '"files" "mtime_ns"'), _strings(files["status"], '"files" "status"'))
        if len({len(column) for column in columns}) > 1:
            raise _Damaged('the "files" columns must be of one length')
        return FileRecords(*columns)
    if not isinstance(files, dict):
        raise _Damaged('"files" must be a dict of image records')
    for key, record in files.items():
        valid = (type(key) is str and isinstance(record, dict) and type(record.get("size")) is int
                 and type(record.get("mtime_ns")) is int and type(record.get("status")) is str)
        if not valid:
            raise _Damaged(f'the "files" record of "{_shown(str(key))}" is not {{"size": int, "mtime_ns": int, "status": str}}')
    return files


def _store_from_dict(content: dict, file_size: int) -> Gallery:
    names = _strings(content["names"], '"names"')
    vectors = _vectors(content["embeddings"], names, file_size)
    paths = _strings(content.get("paths", [""] * len(names)), '"paths"')
    if len(paths) != len(names):
        raise _Damaged('"paths" must be a list of strings, one per embedding')
    profile = content.get("profile", LEGACY_PROFILE)
    if type(profile) is not str:
        raise _Damaged('"profile" must be a string')
    if profile not in PROFILES:
        raise _UnknownProfile(f"records the model profile '{_shown(profile)}', which this version of facerec does not "
                              f"know (it knows: {', '.join(sorted(PROFILES))}): it was made by another version, "
                              "or is damaged")
    models = content.get("models", {})
    if not isinstance(models, dict) or not _plain_value(models):
        raise _Damaged('"models" must be a small dict of names and numbers')
    files = _file_records(content.get("files", {}))
    negatives = _negatives(content.get("negatives"), vectors.shape[1], file_size)
    return Gallery(vectors, names, paths, profile, models, files, profile_recorded="profile" in content,
                   negatives=negatives)


def _negatives(raw: Any, dimension: int, file_size: int) -> Negatives:
    """The "negatives" record (None: none), checked as the gallery's own vectors are."""
    if raw is None:
        return Negatives.none(dimension)
    if not isinstance(raw, dict) or set(raw) != {"embeddings", "names"}:
        raise _Damaged('"negatives" must be {"embeddings": vectors, "names": [person]}')
    names = _strings(raw["names"], '"negatives" "names"')
    vectors = _vectors(raw["embeddings"], names, file_size)
    if len(names) and vectors.shape[1] != dimension:
        raise _Damaged(f"its negative examples are {vectors.shape[1]}-d vectors, its gallery's {dimension}-d")
    return Negatives(vectors, names)


# --- writing --------------------------------------------------------------------------------

@dataclass
class StoreTarget:
    """Where a new store will be written, checked before any work: see open_store_target."""

    path: Path  # the file to replace: --embeddings, with symbolic links followed
    previous: Gallery | None  # the store there now, if it is one this version can use
    warning: str | None = None  # why what is there will be replaced without being used


def open_store_target(path: str | os.PathLike, force: bool = False) -> StoreTarget:
    """Check that a new store can be written at `path`, before the work that makes it; raise FacerecError if not.

    A symbolic link is followed: the file it points to is replaced, the link stays.
    What is at the path must be nothing, an empty file or an embeddings file (one that
    is damaged or from another version is replaced, with a warning); any other regular
    file is replaced only with `force`; a folder, device, FIFO or socket never.
    The folder is created if missing, and must take a new file.
    """
    given = Path(path)
    target = Path(os.path.realpath(given))
    link_note = f" (a link to {target})" if os.path.islink(given) else ""
    shown = f"{given}{link_note}"
    try:
        info = os.stat(target)
    except FileNotFoundError:
        info = None
    except OSError as error:
        raise FacerecError(f"cannot write embeddings file {shown}: {error.strerror}") from None
    previous, warning = None, None
    if info is not None and not stat.S_ISREG(info.st_mode):
        raise FacerecError(f"embeddings file {shown} is {file_kind(info.st_mode)}, not a regular file: "
                           "choose another --embeddings")
    if info is not None and info.st_size:
        try:
            previous = load_store(given)
        except UnusableStore as error:
            warning = f"{str(error).removesuffix(_REMAKE)}; it will be replaced and every image redone"
        except FacerecError as error:
            if not force:
                raise FacerecError(f"{error}{link_note}: extract_embeddings.py replaces only an embeddings file; choose "
                                   "another --embeddings, or add --force to replace this file") from None
            warning = f"{error}; replacing it (--force)"
    try:
        check_writable(target)
    except OSError as error:
        raise FacerecError(f"cannot write embeddings file {shown}: {error.strerror or error}") from None
    return StoreTarget(target, previous, warning)


class _Joined:
    """A list of strings that pickles as SEPARATOR.join(items).split(SEPARATOR): pickle.load gives the list back,
    and reading it makes one string and one split, not an object (and opcodes) per item."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __reduce__(self) -> tuple[Callable[..., list[str]], tuple[str, str]]:
        return str.split, (self.text, SEPARATOR)


def _compact(items: list[str]) -> list[str] | _Joined:
    """`items` as save_store pickles them: joined, unless there are none or one of them holds SEPARATOR."""
    text = SEPARATOR.join(items)
    return _Joined(text) if items and text.count(SEPARATOR) == len(items) - 1 else list(items)


def _file_columns(files: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    """The "files" records in the columns of format 2 (see the top of this module)."""
    if isinstance(files, FileRecords) and "_records" not in vars(files):  # as loaded, never read: as it was
        keys, sizes, mtimes, statuses = files.columns
    else:
        keys, records = list(files), list(files.values())
        sizes = np.array([record["size"] for record in records], np.int64)
        mtimes = np.array([record["mtime_ns"] for record in records], np.int64)
        statuses = [record["status"] for record in records]
    return {"keys": _compact(keys), "size": np.asarray(sizes, np.int64), "mtime_ns": np.asarray(mtimes, np.int64),
            "status": _compact(statuses)}


def save_store(gallery: Gallery, path: str | os.PathLike) -> Signature:
    """Write the gallery to the embeddings file atomically: the previous file stays intact until the new one is complete.

    Returns the new file's signature (see _signature), taken from the file written, so no later
    change by another process can be mistaken for it. A failure to write (disk full, file too
    large...) raises FacerecError; the previous file is kept.
    """
    content = {
        "embeddings": np.ascontiguousarray(gallery.vectors, dtype=np.float32),
        "names": _compact(gallery.names),
        "paths": _compact(gallery.paths),
        "profile": gallery.profile,
        "models": dict(gallery.models),
        "files": _file_columns(gallery.files),
        "format": FORMAT_VERSION,
    }
    if len(gallery.negatives):
        content["negatives"] = {"embeddings": np.ascontiguousarray(gallery.negatives.vectors, dtype=np.float32),
                                "names": _compact(gallery.negatives.names)}
    try:
        with atomic_writer(path) as handle:
            pickle.dump(content, handle, protocol=pickle.HIGHEST_PROTOCOL)
            handle.flush()  # the last write sets the size and mtime; renaming it into place changes neither
            written = _signature_of(os.fstat(handle.fileno()))
    except OSError as error:
        raise FacerecError(f"cannot write embeddings file {path}: {error.strerror or error}; "
                           "the previous file (if any) is unchanged") from None
    return written


# --- the file behind the Store seam -----------------------------------------------------------

# How often a watch looks at the file: a change reaches a running recogniser within about this.
POLL_SECONDS = 0.5

Signature = tuple[int, int, int]  # (inode, size, mtime in ns): an atomic replace changes the inode


def _signature(path: Path) -> Signature | None:
    """What tells the file's versions apart cheaply; None when there is no file."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return _signature_of(info)


def _signature_of(info: os.stat_result) -> Signature:
    return info.st_ino, info.st_size, info.st_mtime_ns


def _dataset_order(key: str) -> list[str]:
    """Sort key that lists images as enrolment finds them: by person folder, then by photo."""
    return key.split("/")


class PickleStore(Store):
    """One embeddings file (see the top of this module): the gallery of one dataset, for one machine.

    An enrolment rewrites the whole file atomically when it finishes; a watch polls the file.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.location = os.fspath(path)
        self._loaded: Signature | None = None  # the file as the last load read it: where a watch starts
        self._ever_loaded = False
        # the file as last read, with what it held: an unchanged file is not read and checked again (the web
        # page asks for known_images at every gallery request); a watch sees a change by the same signature
        self._read: tuple[Signature, Gallery] | None = None

    def _load(self) -> tuple[Gallery, Signature | None]:
        signature = _signature(self.path)  # before reading: a change during the read is seen at the next poll
        if signature is not None and self._read is not None and self._read[0] == signature:
            return self._read[1], signature
        gallery = load_store(self.path)
        if signature is not None:
            self._read = (signature, gallery)
        return gallery, signature

    def _wrote(self, signature: Signature, gallery: Gallery) -> None:
        """A writer of this store just wrote `gallery` as the file `signature`: a watch that sees that file
        hands on this very gallery (which a follower already uses), not a new read."""
        self._read = (signature, gallery)

    def load(self) -> Gallery:
        gallery, self._loaded = self._load()
        self._ever_loaded = True
        return gallery

    def known_images(self, dataset: Path) -> Gallery:
        """The whole file (one file holds one dataset); an empty gallery when there is no file yet."""
        try:
            return self._load()[0]
        except NoGalleryYet:
            return Gallery(np.zeros((0, 0), np.float32), [], [])

    def check_writable(self, force: bool = False) -> None:
        open_store_target(self.path, force)

    def open_writer(self, dataset: Path, models: dict[str, Any], dimension: int,
                    force: bool = False, wait: float | None = WRITER_WAIT_SECONDS) -> StoreWriter:
        """See open_store_target for what may be replaced; the new file is written when the writer finishes.

        The writer holds the file's folder (folderlock) until it finishes or closes: what it starts from is
        read under the lock, so no other writer's change made meanwhile is overwritten."""
        lock = self._take_lock(force, wait)
        try:
            target = open_store_target(self.path, force)
            previous, mismatch = reusable(target.previous, models, dimension)
            warning = "; ".join(problem for problem in (target.warning, mismatch) if problem) or None
            return PickleWriter(self, target.path, previous, warning, models, dimension, lock)
        except BaseException:
            lock.release()
            raise

    def _take_lock(self, force: bool, wait: float | None) -> FolderLock:
        """The writers' lock of the folder the file is in (after symbolic links), created if missing."""
        folder = Path(os.path.realpath(self.path)).parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
            return FolderLock.take(folder, f"embeddings file {self.location}", wait)
        except OSError as error:
            open_store_target(self.path, force)  # says what is wrong with the path, when that is it
            raise FacerecError(f"cannot lock the folder of embeddings file {self.location} for writing: "
                               f"{error.strerror or error}") from None

    def watch(self, on_change: Callable[[Gallery], None],
              on_problem: Callable[[str], None]) -> Watch:
        start = self._loaded if self._ever_loaded else _signature(self.path)
        return FileWatch(self, start, on_change, on_problem)

    def add_negative(self, person: str, vector: np.ndarray, models: dict[str, Any]) -> Gallery:
        """Under the writers' lock: the file as it is now, plus the negative, written atomically."""
        lock = self._take_lock(False, WRITER_WAIT_SECONDS)
        try:
            gallery = self._load()[0]
            check_negative(self.location, person, gallery.people, gallery.models, gallery.vectors.shape[1], vector,
                           models)
            changed = dataclasses.replace(gallery, negatives=gallery.negatives.added(person, vector))
            self._wrote(save_store(changed, os.path.realpath(self.path)), changed)  # a link stays a link
        finally:
            lock.release()
        return changed

    def remove_negative(self, person: str, vector: np.ndarray) -> Gallery:
        """Under the writers' lock: the file as it is now, without that negative, written atomically."""
        lock = self._take_lock(False, WRITER_WAIT_SECONDS)
        try:
            gallery = self._load()[0]
            negatives = gallery.negatives.without(person, vector)
            if negatives is None:
                raise FacerecError(f"{self.location} holds no such negative example of {_shown(person)} (removed "
                                   "meanwhile?): `unknowns.py negatives` lists them")
            changed = dataclasses.replace(gallery, negatives=negatives)
            self._wrote(save_store(changed, os.path.realpath(self.path)), changed)
        finally:
            lock.release()
        return changed

    def sighting_log(self, camera: str) -> SightingLog:
        raise FacerecError(f"--log-sightings needs a PostgreSQL gallery (--embeddings postgresql://...): "
                           f"the embeddings file {self.location} keeps no sightings")


class PickleWriter(StoreWriter):
    """An enrolment into an embeddings file: what it records is kept in memory until `finish` writes the file.

    It starts from `previous` (nothing if None). A run that ends before `finish` leaves the file as it was.
    """

    def __init__(self, store: PickleStore, path: Path, previous: Gallery | None, warning: str | None,
                 models: dict[str, Any], dimension: int, lock: FolderLock) -> None:
        self._store, self._lock = store, lock
        self.previous, self.warning = previous, warning
        self._path, self._models, self._dimension = path, dict(models), dimension
        self._files: dict[str, dict[str, Any]] = dict(previous.files) if previous else {}
        self._vectors: dict[str, tuple[str, np.ndarray]] = (
            {key: (name, vector) for key, name, vector in zip(previous.paths, previous.names, previous.vectors)}
            if previous else {})
        # kept as they are: an enrolment changes photos, not what the user said (made by other models: dropped)
        self._negatives = previous.negatives if previous else Negatives.none(dimension)

    def record(self, key: str, signature: dict[str, int], status: str, person: str,
               vector: np.ndarray | None) -> None:
        self._files[key] = {**signature, "status": status}
        if vector is None:
            self._vectors.pop(key, None)
        else:
            self._vectors[key] = (person, np.asarray(vector, np.float32))

    def remove(self, keys: list[str]) -> None:
        for key in keys:
            self._files.pop(key, None)
            self._vectors.pop(key, None)

    def finish(self) -> GalleryCounts:
        keys = sorted(self._vectors, key=_dataset_order)
        dimension = self._dimension or (len(self._vectors[keys[0]][1]) if keys else 0)
        vectors = np.array([self._vectors[key][1] for key in keys], np.float32).reshape(len(keys), dimension)
        gallery = Gallery(vectors, [self._vectors[key][0] for key in keys], keys, self._models["profile"],
                          self._models, {key: self._files[key] for key in sorted(self._files, key=_dataset_order)},
                          negatives=self._negatives)
        self._store._wrote(save_store(gallery, self._path), gallery)  # the store's load() gives it, not read again
        self.close()
        return GalleryCounts(len(gallery), len(gallery.people))

    def close(self) -> None:
        self._lock.release()


class FileWatch(Watch):
    """A daemon thread that polls an embeddings file and loads each new version (see PickleStore.watch)."""

    def __init__(self, store: PickleStore, start: Signature | None, on_change: Callable[[Gallery], None],
                 on_problem: Callable[[str], None]) -> None:
        self._store, self._seen = store, start
        self._on_change, self._on_problem = on_change, on_problem
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gallery-watch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        problem = False
        while not self._stopped.wait(POLL_SECONDS):
            signature = _signature(self._store.path)
            if signature == self._seen:
                continue
            try:
                gallery, self._seen = self._store._load()
            except FacerecError as error:  # missing, half-copied or damaged: told once, until it is usable again
                self._seen = signature
                if not problem:
                    problem = True
                    self._on_problem(f"{error} (the gallery already loaded stays in use)")
                continue
            if problem:
                problem = False
                self._on_problem(f"embeddings file {self._store.location} is usable again")
            self._on_change(gallery)

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join()

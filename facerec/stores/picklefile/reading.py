"""Reading an embeddings file with its checks: only a regular file of bounded size, through the restricted
unpickler, every record checked (strings, vectors of one length and of unit length, file records, the
profile, the negatives) and what the vectors take in memory bounded before it is allocated."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ...catalogue import PROFILES
from ...errors import FacerecError
from ...fileio import FileTooLarge, NotRegularFile, read_regular_file
from ...gallery import MAX_DIMENSION, MAX_VALUES, MAX_VECTORS, check_unit_vectors
from ...gallery import shown as _shown
from ..base import LEGACY_PROFILE, Gallery, Negatives, NoGalleryYet
from .format import MAX_EXPANSION, MAX_FILE_BYTES, FileRecords, NotAStore, UnusableStore
from .unpickler import PickledArray, Refused, RestrictedUnpickler, SplitText

def _read_regular_file(path: Path) -> np.ndarray:
    """The bytes of `path` if it is a regular file of at most MAX_FILE_BYTES (devices and FIFOs are never opened),
    as a writable uint8 array in anonymous memory: the vectors are used where they were read (see unpickler._Source.lend)."""
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
        content = RestrictedUnpickler(data).load()
    except Refused as error:
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
    except Refused as error:
        raise NotAStore(f"embeddings file {path} was refused: {error}") from None
    except _Damaged as error:
        raise UnusableStore(f"embeddings file {path} is damaged: {error}{REMAKE}") from None
    except _UnknownProfile as error:
        raise UnusableStore(f"embeddings file {path} {error}{REMAKE}") from None


# what a reader of an unusable store is told to do (extract_embeddings.py itself replaces it)
REMAKE = "; run extract_embeddings.py to make a new one"


class _Damaged(ValueError):
    """A record of the store is malformed."""


class _UnknownProfile(ValueError):
    """The store names a profile this version does not have."""


def _vector_rows(raw: Any) -> list[Any]:
    """The stored vectors of a list (format 1), one item each (a numeric array or a list of numbers), not yet copied."""
    if not isinstance(raw, (list, tuple)):
        raise _Damaged('"embeddings" must be a list of vectors')
    if len(raw) > MAX_VECTORS:
        raise Refused(f"it holds {len(raw):,} vectors, more than the {MAX_VECTORS:,} an embeddings file may have")
    rows: list[Any] = []  # arrays, lists and tuples of numbers
    for index, item in enumerate(raw):
        if isinstance(item, PickledArray) and item.array is not None:
            rows.append(item.array)
        elif isinstance(item, (list, tuple)) and all(type(x) in (int, float) for x in item[:MAX_DIMENSION + 1]):
            rows.append(item)
        else:
            raise _Damaged(f'"embeddings" must be a list of numeric vectors (item {index} is not)')
    return rows


def _check_size(count: int, dimension: int, file_size: int) -> None:
    """Refuse vectors that would take more memory than such a file can hold (repeated references)."""
    if count > MAX_VECTORS:
        raise Refused(f"it holds {count:,} vectors, more than the {MAX_VECTORS:,} an embeddings file may have")
    if dimension > MAX_DIMENSION:
        raise Refused(f"its vectors have {dimension:,} numbers, more than the {MAX_DIMENSION:,} an embeddings file may have")
    values = count * dimension
    if values > MAX_VALUES or values * 4 > MAX_EXPANSION * file_size:
        raise Refused(f"its {count:,} vectors of {dimension:,} numbers would take {values * 4:,} bytes in memory, "
                       f"more than {MAX_EXPANSION} times the file's {file_size:,} bytes (or {MAX_VALUES * 4:,}): "
                       "the file repeats references to the same vectors")


def _vectors(raw: Any, names: list[str], file_size: int) -> np.ndarray:
    """The stored vectors as one float32 matrix, after bounding what it takes in memory.

    One 2-D array (what save_store writes) is taken as it is, without a Python object per
    vector; a list of vectors (format 1, the seed's) is copied row by row.
    """
    if isinstance(raw, PickledArray) and raw.array is not None and raw.array.ndim == 2:
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
    """`value` as a list of str: a list or tuple of them, or what one str.split gave (a writing._Joined list)."""
    if isinstance(value, SplitText) or (isinstance(value, (list, tuple)) and all(type(item) is str for item in value)):
        return list(value)
    raise _Damaged(f'{what} must be a list of strings')


def _integers(value: Any, what: str) -> np.ndarray:
    if not (isinstance(value, PickledArray) and value.array is not None and value.array.ndim == 1
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
    negatives = _negatives(content.get("negatives"), content.get("negatives_made"), vectors.shape[1], file_size)
    return Gallery(vectors, names, paths, profile, models, files, profile_recorded="profile" in content,
                   negatives=negatives)


def _negatives(raw: Any, made: Any, dimension: int, file_size: int) -> Negatives:
    """The "negatives" record (None: none) with its "negatives_made" times, checked as the gallery's own vectors
    are. A file without the times (written before they were kept) loads with them not known (NaN): the
    first run that applies the retention counts them as kept then (Store.expire_negatives), never drops them."""
    if raw is None:
        return Negatives.none(dimension)
    if not isinstance(raw, dict) or set(raw) != {"embeddings", "names"}:
        raise _Damaged('"negatives" must be {"embeddings": vectors, "names": [person]}')
    names = _strings(raw["names"], '"negatives" "names"')
    vectors = _vectors(raw["embeddings"], names, file_size)
    if len(names) and vectors.shape[1] != dimension:
        raise _Damaged(f"its negative examples are {vectors.shape[1]}-d vectors, its gallery's {dimension}-d")
    if made is None:
        return Negatives(vectors, names)
    if not (isinstance(made, PickledArray) and made.array is not None and made.array.ndim == 1
            and made.array.dtype.kind == "f" and len(made.array) == len(names)):
        raise _Damaged('"negatives_made" must be a 1-D float array, one time per negative example')
    times = made.array.astype(np.float64)
    if np.isinf(times).any():
        raise _Damaged('"negatives_made" holds a time that is not finite')
    return Negatives(vectors, names, times)

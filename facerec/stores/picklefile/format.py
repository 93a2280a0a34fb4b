"""The embeddings file's format: one pickle of what extract_embeddings.py learned from the dataset.

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
    "negatives_made": with "negatives": when each was kept (1-D float64 array, seconds since the epoch; NaN: not
                  known). A file without it (written before times were kept) loads with every time not known;
                  the first run that applies the unknowns' retention counts them as kept then (docs/negatives.md)

A list of strings is pickled as one string and str.split (see writing._Joined): pickle.load
gives the list, and a reader builds one object, not one per face. Format 1 (the
seed's list of 1-D arrays, "files" as {path: {"size", "mtime_ns", "status"}}) still
loads, and the next extraction rewrites it in this layout.

Loading (reading.py) never trusts the file. It is read only from a regular file of at most
MAX_FILE_BYTES. A restricted unpickler (unpickler.py) admits only plain containers, numbers,
strings and numeric numpy arrays, and builds those arrays itself: numpy's own
reconstruction functions are replaced by stand-ins that check every type,
shape and byte count before numpy sees them, and make nothing but plain
integer or float arrays (no fields, objects, sub-arrays). What the vectors
may expand to in memory is bounded before it is allocated. The only calls it admits
besides those are getattr(str, "split") and that split, bounded by the file's size.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import FacerecError

FORMAT_VERSION = 2
# Joins a list of strings into one (see writing._Joined): no person, path or reason holds it (a file name cannot).
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



Signature = tuple[int, int, int]  # (inode, size, mtime in ns): an atomic replace changes the inode


def file_signature(path: Path) -> Signature | None:
    """What tells the file's versions apart cheaply; None when there is no file."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return signature_of(info)


def signature_of(info: os.stat_result) -> Signature:
    return info.st_ino, info.st_size, info.st_mtime_ns


"""Writing an embeddings file: where a new one may go (checked before the work), the gallery pickled compactly
and written atomically, and the enrolment's writer that keeps what it records until it finishes, holding the
folder's lock."""

from __future__ import annotations

import os
import pickle
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ...errors import FacerecError
from ...fileio import atomic_writer, check_writable, file_kind
from ..base import Gallery, GalleryCounts, Negatives, StoreWriter
from ..folderlock import FolderLock
from .format import FORMAT_VERSION, SEPARATOR, FileRecords, Signature, signature_of
from .reading import REMAKE, UnusableStore, load_store

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
            warning = f"{str(error).removesuffix(REMAKE)}; it will be replaced and every image redone"
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

    Returns the new file's signature (see format.file_signature), taken from the file written, so no later
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
        # beside "negatives", not in it: a facerec from before times were kept reads the file (and ignores them)
        content["negatives_made"] = np.ascontiguousarray(gallery.negatives.made, dtype=np.float64)
    try:
        with atomic_writer(path) as handle:
            pickle.dump(content, handle, protocol=pickle.HIGHEST_PROTOCOL)
            handle.flush()  # the last write sets the size and mtime; renaming it into place changes neither
            written = signature_of(os.fstat(handle.fileno()))
    except OSError as error:
        raise FacerecError(f"cannot write embeddings file {path}: {error.strerror or error}; "
                           "the previous file (if any) is unchanged") from None
    return written



def _dataset_order(key: str) -> list[str]:
    """Sort key that lists images as enrolment finds them: by person folder, then by photo."""
    return key.split("/")

class PickleWriter(StoreWriter):
    """An enrolment into an embeddings file: what it records is kept in memory until `finish` writes the file.

    It starts from `previous` (nothing if None). A run that ends before `finish` leaves the file as it was.
    """

    def __init__(self, wrote: Callable[[Signature, Gallery], None], path: Path, previous: Gallery | None, warning: str | None,
                 models: dict[str, Any], dimension: int, lock: FolderLock) -> None:
        self._wrote, self._lock = wrote, lock
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
        self._wrote(save_store(gallery, self._path), gallery)  # the store's load() gives it, not read again
        self.close()
        return GalleryCounts(len(gallery), len(gallery.people))

    def close(self) -> None:
        self._lock.release()


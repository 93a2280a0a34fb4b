"""The embeddings file behind the Store seam: one file, the gallery of one dataset, for one machine.

A module a job: format.py says what the file holds (and its bounds), unpickler.py is the restricted
unpickler, reading.py loads and checks a file, writing.py writes one atomically (and the enrolment's
writer), watching.py polls it. `PickleStore` puts them behind the Store seam.
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ...errors import FacerecError
from ...gallery import check_negative, reusable, shown
from ..base import WRITER_WAIT_SECONDS, Gallery, NoGalleryYet, SightingLog, Store, StoreWriter, Watch
from ..folderlock import FolderLock
from .format import FORMAT_VERSION, MAX_FILE_BYTES, SEPARATOR, FileRecords, NotAStore, Signature, UnusableStore, file_signature
from .reading import load_store
from .watching import FileWatch
from .writing import PickleWriter, StoreTarget, open_store_target, save_store

__all__ = ["FORMAT_VERSION", "MAX_FILE_BYTES", "SEPARATOR", "FileRecords", "FileWatch", "NotAStore", "PickleStore",
           "PickleWriter", "StoreTarget", "UnusableStore", "load_store", "open_store_target", "save_store"]


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
        signature = file_signature(self.path)  # before reading: a change during the read is seen at the next poll
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
            return PickleWriter(self._wrote, target.path, previous, warning, models, dimension, lock)
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
        start = self._loaded if self._ever_loaded else file_signature(self.path)
        return FileWatch(self, start, on_change, on_problem)

    def add_negative(self, person: str, vector: np.ndarray, models: dict[str, Any]) -> Gallery:
        """Under the writers' lock: the file as it is now, plus the negative, written atomically."""
        lock = self._take_lock(False, WRITER_WAIT_SECONDS)
        try:
            gallery = self._load()[0]
            check_negative(self.location, person, gallery.people, gallery.models, gallery.vectors.shape[1], vector,
                           models)
            changed = dataclasses.replace(gallery, negatives=gallery.negatives.added(person, vector, time.time()))
            self._wrote(save_store(changed, os.path.realpath(self.path)), changed)  # a link stays a link
        finally:
            lock.release()
        return changed

    def expire_negatives(self, before: float, now: float) -> int:
        """Checked on the file as it is (no lock, no write when nothing is due), then under the writers' lock on
        the file as it is then, written atomically."""
        try:
            if self._load()[0].negatives.aged(before, now) is None:
                return 0
        except NoGalleryYet:
            return 0
        lock = self._take_lock(False, WRITER_WAIT_SECONDS)
        try:
            gallery = self._load()[0]
            aged = gallery.negatives.aged(before, now)
            if aged is None:
                return 0
            changed = dataclasses.replace(gallery, negatives=aged[0])
            self._wrote(save_store(changed, os.path.realpath(self.path)), changed)
        finally:
            lock.release()
        return aged[1]

    def remove_negative(self, person: str, vector: np.ndarray) -> Gallery:
        """Under the writers' lock: the file as it is now, without that negative, written atomically."""
        lock = self._take_lock(False, WRITER_WAIT_SECONDS)
        try:
            gallery = self._load()[0]
            negatives = gallery.negatives.without(person, vector)
            if negatives is None:
                raise FacerecError(f"{self.location} holds no such negative example of {shown(person)} (removed "
                                   "meanwhile?): `unknowns.py negatives` lists them")
            changed = dataclasses.replace(gallery, negatives=negatives)
            self._wrote(save_store(changed, os.path.realpath(self.path)), changed)
        finally:
            lock.release()
        return changed

    def sighting_log(self, camera: str) -> SightingLog:
        raise FacerecError(f"--log-sightings needs a PostgreSQL gallery (--embeddings postgresql://...): "
                           f"the embeddings file {self.location} keeps no sightings")


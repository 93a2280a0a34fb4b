"""Watching an embeddings file: a thread polls its signature (inode, size, mtime) and loads each new version;
a file missing, half-copied or damaged is told once, until it is usable again."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Callable, Protocol

from ...errors import FacerecError
from ..base import Gallery, ToldOnce, Watch
from .format import Signature, file_signature

# How often a watch looks at the file: a change reaches a running recogniser within about this.
POLL_SECONDS = 0.5


class Watched(Protocol):
    """What a watch reads through: the store (PickleStore), named here so that this module sits below it."""

    path: Path
    location: str

    def _load(self) -> tuple[Gallery, Signature | None]: ...


class FileWatch(Watch):
    """A daemon thread that polls an embeddings file and loads each new version (see PickleStore.watch)."""

    def __init__(self, store: Watched, start: Signature | None, on_change: Callable[[Gallery], None],
                 on_problem: Callable[[str], None]) -> None:
        self._store, self._seen = store, start
        self._on_change, self._on_problem = on_change, on_problem
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gallery-watch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        unusable = ToldOnce(self._on_problem)
        while not self._stopped.wait(POLL_SECONDS):
            signature = file_signature(self._store.path)
            if signature == self._seen:
                continue
            try:
                gallery, self._seen = self._store._load()
            except FacerecError as error:  # missing, half-copied or damaged: told once, until it is usable again
                self._seen = signature
                unusable.trouble(f"{error} (the gallery already loaded stays in use)")
                continue
            unusable.over(f"embeddings file {self._store.location} is usable again")
            self._on_change(gallery)

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join()

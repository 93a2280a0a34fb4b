"""The gallery in PostgreSQL: one set of face vectors for many cameras and machines (see base.Store).

A module a job: database.py connects and words errors (passwords masked), schema.py makes and checks the
tables (their layout is described there), reading.py reads the gallery with its checks, writing.py writes
under the writers' lock, watching.py follows the changes (LISTEN/NOTIFY), sightings.py keeps who was seen.
`PostgresStore` puts them behind the Store seam.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
import psycopg

from ..base import WRITER_WAIT_SECONDS, Gallery, SightingLog, Store, StoreWriter, Watch
from . import writing
from .database import Database
from .reading import read_gallery
from .schema import check_version, generation_of
from .sightings import open_sighting_log
from .watching import GalleryWatch

__all__ = ["PostgresStore"]


class PostgresStore(Database, Store):
    """A gallery in a PostgreSQL database named by a URL (postgresql://user@host:port/dbname).

    Credentials come from the URL, PGPASSFILE / ~/.pgpass or the PG* environment variables
    (libpq reads them); no message ever shows a password. Connecting happens here:
    FacerecError naming the host and port if the server cannot be reached or refuses.
    """

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self._generation: int | None = None  # of the gallery the last load() returned
        # that gallery: a watch that sees its generation hands it on, not a new read of it
        self._loaded: tuple[int | None, Gallery] | None = None

    # the watch reads through these two (tests count its reads by replacing them)
    def _read(self, connection: psycopg.Connection, origin: str | None) -> tuple[Gallery, int | None]:
        """The gallery (origin None: every origin) or one origin's images, and the gallery's generation."""
        return read_gallery(connection, origin, self.location)

    @staticmethod
    def _generation_of(connection: psycopg.Connection) -> int | None:
        return generation_of(connection)

    def load(self) -> Gallery:
        """Every image with a vector, from every machine; `paths` are "<hostname>:<dataset folder>/<person>/<image>"."""
        gallery, self._generation = self._using("read", lambda connection: self._read(connection, None))
        self._loaded = (self._generation, gallery)
        return gallery

    def known_images(self, dataset: Path) -> Gallery:
        """This machine's images of `dataset`, keyed by their path in it, with their file records."""
        return self._using("read", lambda connection: self._read(connection, writing.origin_of(dataset))[0])

    def check_writable(self, force: bool = False) -> None:
        """Reachable (checked on connecting) and of a schema this version knows; the models are checked by open_writer."""
        self._using("enrol into", lambda connection: check_version(connection, self.location))

    def open_writer(self, dataset: Path, models: dict[str, Any], dimension: int,
                    force: bool = False, wait: float | None = WRITER_WAIT_SECONDS) -> StoreWriter:
        """The writer works on a connection of its own, which holds its origin's writer lock until it finishes
        or closes: what it starts from is read under the lock, so no other writer's change is undone."""
        return writing.open_writer(self, dataset, models, dimension, force, wait)

    def watch(self, on_change: Callable[[Gallery], None],
              on_problem: Callable[[str], None]) -> Watch:
        return GalleryWatch(self, on_change, on_problem, self._generation)

    def sighting_log(self, camera: str) -> SightingLog:
        return open_sighting_log(self, camera)

    def expire_negatives(self, before: float, now: float) -> int:
        """made_at is set by the database on insert (now()): a row always has its time."""
        return writing.expire_negatives(self, before)

    def remove_negative(self, person: str, vector: np.ndarray) -> Gallery:
        writing.remove_negative(self, person, vector)
        return self.load()

    def add_negative(self, person: str, vector: np.ndarray, models: dict[str, Any]) -> Gallery:
        """One transaction, checked against the gallery as it is then; watchers are told (generation, NOTIFY)."""
        writing.add_negative(self, person, vector, models)
        return self.load()

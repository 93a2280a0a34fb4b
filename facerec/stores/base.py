"""The seam every gallery store sits behind: an embeddings file today, a PostgreSQL database for many cameras.

Scripts open a store with `facerec.stores.open_store(PATH_OR_URL)` and use only what is
declared here, so they never know which kind they hold. Adding a kind of store means
adding one module with one `Store` subclass and one line in `open_store`.

    load()          the whole gallery, as one in-memory EmbeddingStore snapshot
    open_writer()   an enrolment: checked before any work, one image recorded at a time
    watch()         be told when someone else changed the gallery (live updates)
    sighting_log()  record who was seen, by which camera (where the store can keep it)
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import numpy as np

from ..errors import FacerecError

# A file written by the seed scripts records no profile; they used OpenFace.
LEGACY_PROFILE = "openface"


def masked(location: str) -> str:
    """`location` fit to print: a URL without its password (in the user part or as ?password=), a path as it is.

    Without the password, not with stars: the result also goes into `next:` hints, which then
    work as they are (the password comes from PGPASSFILE or PGPASSWORD, as libpq finds it).
    """
    if "://" not in location:
        return location
    try:
        parts = urlsplit(location)
        password = parts.password
    except ValueError:  # not a URL after all (a bad port...): show only what cannot hold a password
        return location.split("://", 1)[0] + "://..."
    netloc = parts.netloc
    if password is not None:
        user, _, host = netloc.rpartition("@")
        user = user.split(":", 1)[0]
        netloc = f"{user}@{host}" if user else host
    query = parts.query
    pairs = parse_qsl(query, keep_blank_values=True)
    if any(key.lower() == "password" for key, _ in pairs):
        query = urlencode([(key, value) for key, value in pairs if key.lower() != "password"])
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


class NoGalleryYet(FacerecError):
    """Store.load found no gallery at the location yet (the pickle: no file); a server may start empty."""


@dataclass
class EmbeddingStore:
    """Vectors with their person names and source images, and the model profile that made them."""

    vectors: np.ndarray
    names: list[str]
    paths: list[str]
    profile: str = LEGACY_PROFILE
    models: dict[str, Any] = field(default_factory=dict)
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    profile_recorded: bool = True  # False for a classic tutorial file: the profile is assumed

    @classmethod
    def empty(cls, profile: str, models: dict[str, Any], dimension: int) -> EmbeddingStore:
        return cls(np.zeros((0, dimension), np.float32), [], [], profile, dict(models), {})

    def __len__(self) -> int:
        return len(self.names)

    @property
    def people(self) -> list[str]:
        """Each person's name once, in order of first appearance."""
        return list(dict.fromkeys(self.names))


@dataclass(frozen=True)
class Sighting:
    """One named face (or track) seen by a camera."""

    name: str
    distance: float
    seen_at: float  # seconds since the epoch (time.time())
    track: int | None = None


class SightingLog(ABC):
    """Where sightings go; `log` never blocks recognition (a slow or lost database only delays the rows)."""

    @abstractmethod
    def log(self, sightings: list[Sighting]) -> None:
        """Queue the named faces of one frame."""

    @abstractmethod
    def close(self) -> None:
        """Write what is queued (waiting a bounded time), then stop."""


class Watch(ABC):
    """A running subscription to a store's changes (see Store.watch)."""

    @abstractmethod
    def stop(self) -> None:
        """Stop being told; returns once the background thread has ended."""


class StoreWriter(ABC):
    """One enrolment into a store, from one dataset folder.

    `previous` is what the store already knows of this dataset's images (known_images), made by the same
    models (None: nothing reusable, every image is embedded again); its `files` records and
    vectors let enrolment skip unchanged images. Images are recorded one at a time; what a
    run that dies before `finish` leaves behind is the store's to say (the pickle: the file
    as it was; PostgreSQL: the images recorded so far, each whole).
    """

    previous: EmbeddingStore | None
    warning: str | None  # why what was there will be replaced or not reused, for the user

    @abstractmethod
    def record(self, key: str, signature: dict[str, int], status: str, person: str,
               vector: np.ndarray | None) -> None:
        """The outcome for image `key` (its path relative to the dataset): used with its vector, or skipped
        with `status` the reason. Replaces what was known of that image."""

    @abstractmethod
    def remove(self, keys: list[str]) -> None:
        """Forget these images of this dataset (deleted photos and people)."""

    @abstractmethod
    def finish(self) -> EmbeddingStore:
        """Make the enrolment visible to every reader (the pickle writes its file atomically) and return the
        whole gallery as it now is. FacerecError if it cannot; the store is then as described above."""


class Store(ABC):
    """A gallery of face vectors that scripts read, enrol into and follow."""

    location: str  # for messages: the path, or the URL with any password masked

    @abstractmethod
    def load(self) -> EmbeddingStore:
        """The whole gallery now. FacerecError naming `location` if it cannot be read or used."""

    @abstractmethod
    def known_images(self, dataset: Path) -> EmbeddingStore:
        """What the store holds of `dataset`'s images, keyed (`paths`, `files`) by their path relative to it:
        the statuses a gallery page shows, and what an enrolment of that dataset may reuse."""

    @abstractmethod
    def check_writable(self, force: bool = False) -> None:
        """Refuse (FacerecError), before any model is loaded or downloaded, a store an enrolment could not
        write; open_writer checks again, with the models."""

    @abstractmethod
    def open_writer(self, dataset: Path, models: dict[str, Any], dimension: int,
                    force: bool = False) -> StoreWriter:
        """Start an enrolment of `dataset` made with `models` (enrolment.models_identity) giving
        `dimension`-d vectors; check, before any work, that it can be written. FacerecError if not."""

    @abstractmethod
    def watch(self, on_change: Callable[[EmbeddingStore], None],
              on_problem: Callable[[str], None]) -> Watch:
        """Call `on_change(gallery)` from a background thread whenever the gallery changed (elsewhere or
        here), with the gallery already loaded; `on_problem(message)` when the store became unreachable
        (once) and when it is back. The caller keeps using the gallery it has meanwhile."""

    @abstractmethod
    def sighting_log(self, camera: str) -> SightingLog:
        """A log of the sightings of `camera`; FacerecError if this kind of store cannot keep one."""

    def close(self) -> None:
        """Release connections; the store is not used afterwards."""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()



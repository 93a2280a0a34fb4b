"""Gallery stores: where the face vectors live (see base.Store). Scripts open one with open_store."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from ..errors import FacerecError
from ..gallery import check_profile, reusable
from ..text import printable
from .base import (LEGACY_PROFILE, EmbeddingStore, Gallery, GalleryBusy, GalleryCounts, NoGalleryYet, Sighting, SightingLog,
                   Store, StoreWriter, Watch, masked)
from .picklefile import NotAStore, PickleStore, UnusableStore, load_store, open_store_target, save_store

# Where the gallery is when --embeddings is not given.
LOCATION_VARIABLE = "FACEREC_EMBEDDINGS"
DEFAULT_LOCATION = "output/embeddings.pickle"
POSTGRES_SCHEMES = ("postgresql://", "postgres://")
# scheme:// (RFC 3986's scheme): a URL, never a file path, whichever scheme it names
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
# The --embeddings help of every script.
LOCATION_HELP = (f"the gallery: an embeddings file path or a postgresql://user@host/db URL (default: "
                 f"${LOCATION_VARIABLE} if set, else {DEFAULT_LOCATION})")


def store_location(location: str | os.PathLike | None) -> str:
    """--embeddings as given, else $FACEREC_EMBEDDINGS, else output/embeddings.pickle."""
    if location is None:
        return os.environ.get(LOCATION_VARIABLE) or DEFAULT_LOCATION
    if not isinstance(location, (str, bytes, os.PathLike)):
        raise FacerecError(f"a gallery's location is a path or a postgresql:// URL, not {type(location).__name__} "
                           f"{str(location)[:40]!r}")
    text = os.fsdecode(location)  # bytes, or a PathLike giving them: a path as the file system spells it
    if "\0" in text:
        raise FacerecError(f"a gallery's location cannot contain a NUL character: {printable(text)[:80]!r}")
    return text


def open_store(location: str | os.PathLike | None) -> Store:
    """The store at `location` (see store_location for None): a postgresql:// (or postgres://) URL is a
    PostgreSQL database, anything else the path of an embeddings file. Nothing is read yet.

    FacerecError if the location names PostgreSQL and psycopg is not installed.
    """
    location = store_location(location)
    if location.lower().startswith(POSTGRES_SCHEMES):
        try:
            from .postgres import PostgresStore
        except ImportError as error:
            raise FacerecError(f"--embeddings {masked(location)}: a PostgreSQL gallery needs psycopg, which cannot "
                               f"be imported ({error}): pip install \"psycopg[binary]\"") from None
        return PostgresStore(location)
    if _URL.match(location):  # mysql://, postgresql+psycopg://: not a path (and its password is not shown)
        raise FacerecError(f"--embeddings {masked(location)}: not a gallery this program can open: give an "
                           "embeddings file path or a postgresql:// URL")
    return PickleStore(location)


@dataclass
class StoredGallery:
    """An open store, the gallery it held when opened (None: none yet) and, if asked for, its sighting log.

    Close it (or use it as a context manager) to close the log and the store."""

    store: Store
    snapshot: Gallery | None
    sightings: SightingLog | None = None

    @property
    def location(self) -> str:
        """The path, or the URL without its password: for messages."""
        return self.store.location

    def close(self) -> None:
        try:
            if self.sightings is not None:
                self.sightings.close()
        finally:
            self.store.close()

    def __enter__(self) -> StoredGallery:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def open_gallery(location: str | os.PathLike | None = None, *, profile: str | None = None, missing_ok: bool = False,
                 sightings_camera: str | None = None) -> StoredGallery:
    """Open the store at `location` (see open_store) and load its gallery; FacerecError saying why not.

    `profile`: refuse a gallery made by another model profile (before any model is loaded).
    `missing_ok`: a store with no gallery yet gives a StoredGallery whose snapshot is None (else NoGalleryYet).
    `sightings_camera`: also open the store's sighting log for that camera name (refused before the gallery
    is read when the store cannot keep one).
    """
    opened = StoredGallery(open_store(location), None)
    try:
        if sightings_camera is not None:
            opened.sightings = opened.store.sighting_log(sightings_camera)
        try:
            opened.snapshot = opened.store.load()
        except NoGalleryYet:
            if not missing_ok:
                raise
        if opened.snapshot is not None and profile is not None:
            check_profile(opened.snapshot, opened.location, profile)
    except BaseException:
        opened.close()
        raise
    return opened


__all__ = ["DEFAULT_LOCATION", "LEGACY_PROFILE", "LOCATION_HELP", "LOCATION_VARIABLE", "EmbeddingStore", "Gallery",
           "GalleryBusy", "GalleryCounts", "NoGalleryYet", "NotAStore", "PickleStore", "Sighting", "SightingLog", "Store",
           "StoreWriter", "UnusableStore", "Watch", "StoredGallery", "check_profile", "load_store", "masked", "open_gallery",
           "open_store", "open_store_target",
           "reusable", "save_store", "store_location"]

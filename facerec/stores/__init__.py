"""Gallery stores: where the face vectors live (see base.Store). Scripts open one with open_store."""

from __future__ import annotations

import os

from ..errors import FacerecError
from .base import (LEGACY_PROFILE, EmbeddingStore, GalleryBusy, GalleryCounts, NoGalleryYet, Sighting, SightingLog,
                   Store, StoreWriter, Watch, masked, reusable)
from .picklefile import (NotAStore, PickleStore, UnusableStore, check_profile, load_store, open_store_target,
                         save_store)

# Where the gallery is when --embeddings is not given.
LOCATION_VARIABLE = "FACEREC_EMBEDDINGS"
DEFAULT_LOCATION = "output/embeddings.pickle"
POSTGRES_SCHEMES = ("postgresql://", "postgres://")
# The --embeddings help of every script.
LOCATION_HELP = (f"the gallery: an embeddings file path or a postgresql://user@host/db URL (default: "
                 f"${LOCATION_VARIABLE} if set, else {DEFAULT_LOCATION})")


def store_location(location: str | os.PathLike | None) -> str:
    """--embeddings as given, else $FACEREC_EMBEDDINGS, else output/embeddings.pickle."""
    if location is None:
        return os.environ.get(LOCATION_VARIABLE) or DEFAULT_LOCATION
    return os.fspath(location)


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
    return PickleStore(location)


__all__ = ["DEFAULT_LOCATION", "LEGACY_PROFILE", "LOCATION_HELP", "LOCATION_VARIABLE", "EmbeddingStore",
           "GalleryBusy", "GalleryCounts", "NoGalleryYet", "NotAStore", "PickleStore", "Sighting", "SightingLog", "Store",
           "StoreWriter",
           "UnusableStore", "Watch", "check_profile", "load_store", "masked", "open_store", "open_store_target",
           "reusable", "save_store", "store_location"]

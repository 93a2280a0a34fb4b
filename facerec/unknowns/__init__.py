"""People nobody has named yet: unknown faces kept on request and grouped into candidate people (issue 21).

`open_unknowns` opens the kind of store the gallery's location asks for; it sits above both kinds
(filestore.py, postgres.py), which share their types from store.py.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Callable

from ..catalogue import PROFILES
from ..errors import FacerecError
from ..stores import POSTGRES_SCHEMES, store_location
from .grouping import margin_for
from .rules import Settings
from .store import (FACES_PER_TRACK, MAX_FACES, RETENTION_DAYS, KeptFace, KeptTrack, NoSuchGroup, UnknownGroup,
                    UnknownStore)

__all__ = ["FACES_PER_TRACK", "MAX_FACES", "RETENTION_DAYS", "KeptFace", "KeptTrack", "NoSuchGroup", "UnknownGroup",
           "UnknownStore", "open_unknowns"]


def open_unknowns(location: str | os.PathLike | None, profile: str, *, threshold: float | None = None,
                  margin: float | None = None, max_faces: int = MAX_FACES, retention_days: float | None = None,
                  clock: Callable[[], float] | None = None,
                  on_warning: Callable[[str], None] | None = None) -> UnknownStore:
    """The unknown faces kept with the gallery at `location` (stores.store_location: an embeddings file path,
    or a postgresql:// URL), made by model `profile`'s vectors.

    `threshold`: the profile's distance at which a face is Unknown (default: the profile's); a track joins a
    group within `threshold - margin` (default: the profile's, grouping.margin_for), is not kept within `threshold` of an ignored
    group. `max_faces` and `retention_days` bound what is kept; `retention_days` given is kept with the faces
    by the next change, so that every later writer and reader applies it; None: the one kept with them, else
    RETENTION_DAYS. `clock` (default time.time) says when "now"
    is; `on_warning` (default: a `warning:` line on standard error) hears the one warning of a run that drops
    the oldest faces. FacerecError if the store cannot be opened.
    """
    if profile not in PROFILES:
        raise FacerecError(f"unknown model profile {profile!r}: one of {', '.join(sorted(PROFILES))}")

    try:
        settings = Settings(profile, PROFILES[profile].threshold if threshold is None else threshold,
                            margin_for(profile) if margin is None else margin, max_faces,
                            RETENTION_DAYS if retention_days is None else retention_days, clock or time.time,
                            on_warning or (lambda message: print(f"warning: {message}", file=sys.stderr, flush=True)),
                            retention_given=retention_days is not None)
    except ValueError as error:
        raise FacerecError(f"cannot group unknown faces so: {error}") from None
    where = store_location(location)
    if where.lower().startswith(POSTGRES_SCHEMES):
        try:
            from .postgres import PostgresUnknowns
        except ImportError as error:
            raise FacerecError(f"unknown faces in PostgreSQL need psycopg, which cannot be imported ({error}): "
                               "pip install \"psycopg[binary]\"") from None
        return PostgresUnknowns(where, settings)
    from .filestore import FileUnknowns

    return FileUnknowns(where, settings)

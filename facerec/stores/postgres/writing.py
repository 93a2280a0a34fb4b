"""Writing the gallery under the lock: one writer of a dataset folder's images at a time (an advisory lock
held by the writer's own connection), each image one transaction that tells the watchers, the gallery emptied
for other models only with --force; a negative example kept in one transaction."""

from __future__ import annotations

import hashlib
import os
import socket
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np
import psycopg
from psycopg.types.json import Jsonb

from ...errors import FacerecError, ctrl_c_deferred, record_kept
from ...gallery import check_negative
from ...text import plural, printable
from ..base import Gallery, GalleryCounts, NoGalleryYet, StoreWriter, take_turn
from .database import Database, one_row
from .reading import model_record, negatives_dated, negatives_table, read_gallery
from .schema import (NEGATIVES_SCHEMA, SCHEMA_LOCK, changed, check_version, create_schema, gallery_record, stored,
                     upgrade)

# pg_advisory_lock(_WRITER_LOCK, a number of the origin), held by a writer's own connection from open_writer to
# finish: one writer of a dataset folder's images at a time (a page's delete is not undone by an enrolment)
_WRITER_LOCK = 0x66616377


def origin_of(dataset: Path) -> str:
    """Which machine's which dataset folder an image comes from: two machines never overwrite each other's photos."""
    return f"{socket.gethostname()}:{Path(dataset).resolve()}"


def _origin_lock(origin: str) -> int:
    """The second key of the origin's writer lock (two origins sharing one only take turns)."""
    return int.from_bytes(hashlib.sha256(origin.encode("utf-8", "surrogateescape")).digest()[:4], "big") & 0x7FFFFFFF


def _writer_connection(database: Database, origin: str, dataset: Path, wait: float | None) -> psycopg.Connection:
    """A connection of the writer's own, holding the writer lock of `origin` (waiting as base.take_turn says:
    GalleryBusy naming the holder)."""
    # named for the message of a writer it makes wait
    connection = database._connect(f"facerec writer: {os.path.basename(sys.argv[0])} pid {os.getpid()}")
    key = (_WRITER_LOCK, _origin_lock(origin))

    def holder() -> str:
        row = connection.execute(
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.classid = %s::oid AND l.objid = %s::oid AND l.objsubid = 2 "
            "AND l.granted", key).fetchone()
        return f"another process ({row[0]})" if row and row[0] else "another process"

    try:
        take_turn(lambda: one_row(connection.execute("SELECT pg_try_advisory_lock(%s, %s)", key))[0], holder,
                  f"the gallery of dataset folder {dataset} in {database.location}", wait)
        return connection
    except psycopg.Error as error:
        connection.close()
        raise FacerecError(f"cannot enrol into the gallery database at {database._server} ({database.location}): "
                           f"{database._reason(error)}") from None
    except BaseException:
        connection.close()
        raise


def open_writer(database: Database, dataset: Path, models: dict[str, Any], dimension: int,
                force: bool, wait: float | None) -> StoreWriter:
    """The writer works on a connection of its own, which holds its origin's writer lock until it finishes
    or closes: what it starts from is read under the lock, so no other writer's change is undone."""
    origin = origin_of(dataset)
    own = _writer_connection(database, origin, dataset, wait)
    wanted = {"models": models, "dimension": dimension}

    def check(connection: psycopg.Connection) -> PostgresWriter:
        warning = None
        create_schema(connection, database.location)
        upgrade(connection, database.location)
        with connection.transaction():
            gallery = gallery_record(connection, "FOR UPDATE")
            images, origins = one_row(connection.execute(
                "SELECT count(*), count(DISTINCT origin) FROM facerec_images"))
            if gallery != wanted and images and not force:
                raise FacerecError(
                    f"the gallery in {database.location} holds {plural(images, 'image')} from "
                    f"{plural(origins, 'dataset folder')} made with {_difference(gallery, wanted)}: vectors of other machines cannot be remade here; enrol "
                    "with the same models, use another database, or add --force to empty the gallery and enrol anew")
            if gallery != wanted:
                if images:
                    warning = (f"the gallery in {database.location} was made with {_difference(gallery, wanted)}: "
                               f"emptying it ({plural(images, 'image')} from {plural(origins, 'dataset folder')}, every machine's) "
                               "and enrolling anew (--force)")
                    connection.execute("DELETE FROM facerec_images")
                    _forget_negatives(connection)  # made by the other models too
                connection.execute("INSERT INTO facerec_meta VALUES ('gallery', %s) "
                                   "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value", (Jsonb(wanted),))
                changed(connection)
        previous = read_gallery(connection, origin, database.location)[0] if gallery == wanted else None
        return PostgresWriter(database, connection, origin, wanted, previous, warning)

    try:
        return database._using("enrol into", check, own)
    except BaseException:
        own.close()
        raise


def add_negative(database: Database, person: str, vector: np.ndarray, models: dict[str, Any]) -> None:
    """One transaction, checked against the gallery as it is then; watchers are told (generation, NOTIFY)."""
    def add(connection: psycopg.Connection) -> None:
        with connection.transaction():
            connection.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))  # the table, once
            for statement in NEGATIVES_SCHEMA:
                connection.execute(statement)
            record = gallery_record(connection, "FOR SHARE") if check_version(connection, database.location) else None
            if record is None:
                raise NoGalleryYet(f"the gallery database {database.location} holds no gallery yet: enrol people with "
                                   f"extract_embeddings.py --embeddings {database.location}")
            gallery_models, dimension = model_record(record)
            found = connection.execute("SELECT 1 FROM facerec_images WHERE person = %s AND vector IS NOT NULL "
                                       "LIMIT 1", (person,)).fetchone()
            people = [person] if found else [row[0] for row in connection.execute(
                "SELECT DISTINCT person FROM facerec_images WHERE vector IS NOT NULL ORDER BY person LIMIT 11")]
            check_negative(database.location, person, people, gallery_models, dimension, vector, models)
            connection.execute("INSERT INTO facerec_negatives (person, vector) VALUES (%s, %s)",
                               (storable(person), stored(np.asarray(vector).ravel())))
            changed(connection)

    database._using("keep a negative example in", add)


def expire_negatives(database: Database, before: float) -> int:
    """One transaction: the negatives kept before `before` (seconds since the epoch) deleted, watchers told;
    nothing written when none is (a camera's role that may only read is not refused). How many were deleted.
    A table without made_at (never made by facerec: it has had it from the start) gets it, its rows counted
    as kept now: they expire one retention later."""
    def expire(connection: psycopg.Connection) -> int:
        with connection.transaction():
            if not negatives_table(connection):
                return 0
            if not negatives_dated(connection):
                connection.execute("ALTER TABLE facerec_negatives ADD COLUMN made_at timestamptz NOT NULL "
                                   "DEFAULT now()")
            if not one_row(connection.execute("SELECT EXISTS (SELECT FROM facerec_negatives WHERE made_at < "
                                              "to_timestamp(%s))", (before,)))[0]:
                return 0
            deleted = connection.execute("DELETE FROM facerec_negatives WHERE made_at < to_timestamp(%s)",
                                         (before,)).rowcount
            changed(connection)
            return deleted

    return database._using("drop negative examples past the retention from", expire)


def remove_negative(database: Database, person: str, vector: np.ndarray) -> None:
    """One transaction: the first negative of `person` with exactly that vector deleted; watchers are told."""
    def remove(connection: psycopg.Connection) -> None:
        with connection.transaction():
            if not negatives_table(connection):
                deleted = None
            else:
                deleted = connection.execute(
                    "DELETE FROM facerec_negatives WHERE id = (SELECT id FROM facerec_negatives WHERE person = %s "
                    "AND vector = %s ORDER BY id LIMIT 1) RETURNING id",
                    (storable(person), stored(np.asarray(vector).ravel()))).fetchone()
            if deleted is None:
                raise FacerecError(f"{database.location} holds no such negative example of {printable(person)} "
                                   "(removed meanwhile?): `unknowns.py negatives` lists them")
            changed(connection)

    database._using("remove a negative example from", remove)


def _difference(gallery: Any, wanted: dict[str, Any]) -> str:
    """How the gallery's models differ from `wanted`'s, for a message."""
    if gallery is not None and (not isinstance(gallery, dict) or not isinstance(gallery.get("models"), dict)):
        return "a damaged model record"
    theirs = (gallery or {}).get("models") or {}
    ours = wanted["models"]
    if theirs.get("profile") != ours.get("profile"):
        return f"the {theirs.get('profile')!r} profile, not {ours.get('profile')!r}"
    differing = sorted(key for key in set(theirs) | set(ours) if theirs.get(key) != ours.get(key))
    if not differing:
        return f"{(gallery or {}).get('dimension')}-d vectors, not {wanted['dimension']}-d"
    return f"other {theirs.get('profile')!r} models (their {', '.join(differing)} differ from this machine's)"


# One image, replacing what its origin had recorded of it; a row that would not change is not touched
# (rowcount 0), so recording it tells no watcher.
_UPSERT_IMAGE = (
    "INSERT INTO facerec_images (origin, key, person, size, mtime_ns, status, vector) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (origin, key) DO UPDATE SET "
    "person = EXCLUDED.person, size = EXCLUDED.size, mtime_ns = EXCLUDED.mtime_ns, status = EXCLUDED.status, "
    "vector = EXCLUDED.vector, made_at = now() "
    "WHERE (facerec_images.person, facerec_images.size, facerec_images.mtime_ns, facerec_images.status, "
    "facerec_images.vector) IS DISTINCT FROM "
    "(EXCLUDED.person, EXCLUDED.size, EXCLUDED.mtime_ns, EXCLUDED.status, EXCLUDED.vector)")


def storable(text: str) -> str:
    """`text` as PostgreSQL can store it: a file name that is not UTF-8 (Python holds its bytes as surrogates)
    gets them as \\xNN. Such a photo is then not recognised as unchanged by the next run: it is embedded again."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


class PostgresWriter(StoreWriter):
    """An enrolment of one dataset folder: each image is one transaction, committed at once."""

    def __init__(self, store: Database, connection: psycopg.Connection, origin: str, gallery: dict[str, Any],
                 previous: Gallery | None, warning: str | None) -> None:
        self._store = store
        self._connection = connection  # its own: it holds the origin's writer lock
        self._origin = origin
        self._gallery = gallery
        self._dimension = gallery["dimension"]
        self.previous = previous
        self.warning = warning
        # what the store holds of each image now: recording it again unchanged writes nothing
        self._known: dict[str, tuple] = {}
        self._escaped: set[str] = set()  # keys recorded by this run that had to be escaped
        self._recorded = self._removed = 0  # images this run committed: what a Ctrl-C leaves (errors.record_kept)
        if previous is not None:
            vectors = dict(zip(previous.paths, previous.vectors))
            names = dict(zip(previous.paths, previous.names))
            for key, record in previous.files.items():
                self._known[key] = (record["size"], record["mtime_ns"], record["status"], names.get(key), vectors.get(key))

    def _change(self, doing: str, work: Callable[[psycopg.Connection], int]) -> None:
        """`work` in one transaction, which tells the watchers if it changed rows (it returns how many); refused
        if another enrolment has meanwhile emptied the gallery for other models (--force)."""
        def transaction(connection: psycopg.Connection) -> None:
            with connection.transaction():
                if gallery_record(connection, "FOR SHARE") != self._gallery:
                    raise FacerecError(f"the gallery in {self._store.location} was emptied for other models by another "
                                       "enrolment (--force) while this one ran: run extract_embeddings.py again")
                if work(connection):
                    changed(connection)

        self._store._using(doing, transaction, self._connection)

    def record(self, key: str, signature: dict[str, int], status: str, person: str,
               vector: np.ndarray | None) -> None:
        if vector is not None:
            vector = np.asarray(vector, np.float32).ravel()
            if vector.size != self._dimension or not np.isfinite(vector).all():
                raise FacerecError(f"{key}: a vector of {vector.size} numbers (or not finite) cannot join a gallery "
                                   f"of {self._dimension}-d vectors")
        if storable(key) != key:
            key = storable(key)
            self._escaped.add(key)
        person = storable(person)
        size, mtime_ns = int(signature["size"]), int(signature["mtime_ns"])
        known = self._known.get(key)
        # (a skipped image's person is not loaded: its key, person/photo, says it)
        if known is not None and known[:3] == (size, mtime_ns, status) and known[3] in (None, person) and (
                vector is None if known[4] is None else vector is not None and np.array_equal(known[4], vector)):
            return  # as the store has it: no transaction, no notification
        values = (self._origin, key, person, size, mtime_ns, status, None if vector is None else stored(vector))
        with ctrl_c_deferred():  # a Ctrl-C waits for the commit and its count: what it says is kept is exact
            self._change("record an image in", lambda connection: connection.execute(_UPSERT_IMAGE, values).rowcount)
            self._known[key] = (size, mtime_ns, status, person, vector)
            self._recorded += 1
            self._note_kept()

    def remove(self, keys: list[str]) -> None:
        # an image this run recorded under an escaped name is there, though the name it listed differs (see storable)
        keys = [key for key in map(storable, keys) if key not in self._escaped]
        if not keys:
            return
        with ctrl_c_deferred():
            self._change("remove images from", lambda connection: connection.execute(
                "DELETE FROM facerec_images WHERE origin = %s AND key = ANY(%s)", (self._origin, keys)).rowcount)
            for key in keys:
                self._known.pop(key, None)
            self._removed += len(keys)
            self._note_kept()

    def _note_kept(self) -> None:
        """Each commit is for good: a Ctrl-C says what this run has written so far."""
        done = [f"{plural(count, 'image')} {what}" for count, what in ((self._recorded, "recorded"),
                                                                     (self._removed, "removed")) if count]
        record_kept(f"gallery {self._store.location}",
                    f"{' and '.join(done)} in {self._store.location} (the next run does the rest)")

    def finish(self) -> GalleryCounts:
        """Each image was committed when recorded: the counts of the whole gallery, not the gallery (a million
        vectors are not read only to be counted). Lets the gallery go for other writers."""
        self.close()
        return self._store._using("read", lambda connection: GalleryCounts(*one_row(connection.execute(
            "SELECT count(*), count(DISTINCT person) FROM facerec_images WHERE vector IS NOT NULL"))))

    def close(self) -> None:
        self._connection.close()  # ends the session: its writer lock goes with it


def _forget_negatives(connection: psycopg.Connection) -> None:
    """Delete every negative example (a gallery emptied for other models), where the table exists."""
    if negatives_table(connection):
        connection.execute("DELETE FROM facerec_negatives")

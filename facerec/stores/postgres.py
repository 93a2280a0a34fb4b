"""The gallery in PostgreSQL: one set of face vectors for many cameras and machines (see base.Store).

Tables (made on the first enrolment or sighting log, in one transaction; a store whose
schema_version is newer than SCHEMA_VERSION is refused):

    facerec_meta       key text PRIMARY KEY, value jsonb
                       'schema_version': 2 (1: vectors were float4[]; the first enrolment by this version
                                         converts them, see _upgrade; a reader of version 1 is told to)
                       'gallery':        {"models": <enrolment.models_identity>, "dimension": 128}
                       'generation':     a number every committed change of the gallery increments
    facerec_images     one row per image of a dataset folder on one machine:
                       id, origin ("<hostname>:<absolute dataset path>"), key (path in the dataset,
                       "obama/obama1.jpg"), person, size, mtime_ns, status, vector bytea (the vector's
                       float32 numbers, little-endian, 4 bytes each; NULL when the image was skipped), made_at; UNIQUE (origin, key)
    facerec_sightings  one row per (camera, run, track, name), a photo's face one row each:
                       camera, run (one recogniser process), track (NULL: no track), name,
                       first_seen, last_seen, faces, best_distance
    facerec_negatives  one row per face the user said is not a person (docs/negatives.md): id, person,
                       vector bytea (as facerec_images'), made_at. Made with the others, or by the first
                       add_negative in a database made before it: no schema_version change, and a
                       database without it has no negatives (an older facerec ignores the table)

The gallery is every image with a vector, from every origin. Each image is written in its
own transaction, so a run killed mid-way leaves the images it recorded so far, each whole.
Every transaction that changes the gallery also does NOTIFY facerec_gallery: watchers hear
of committed changes only. SQL is only ever given values as parameters.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import socket
import sys
import threading
import time
import uuid
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable, TypeVar
from urllib.parse import unquote

import numpy as np
import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.types.json import Jsonb

from ..catalogue import PROFILES
from ..errors import FacerecError, ctrl_c_deferred, record_kept
from ..gallery import MAX_DIMENSION, MAX_VALUES, MAX_VECTORS, check_negative, check_unit_vectors
from ..names import MAX_NAME_BYTES
from ..text import plural, printable
from .base import (LEGACY_PROFILE, WRITER_WAIT_SECONDS, Gallery, GalleryCounts, Negatives, NoGalleryYet, Sighting,
                   SightingLog, Store, StoreWriter, Watch, password_spans, starred, take_turn, unclear_password)

SCHEMA_VERSION = 2
CHANNEL = "facerec_gallery"
CONNECT_TIMEOUT = 5  # seconds to wait for the server before saying it is unreachable
RETRY_SECONDS = 1.0  # a watcher or sighting log whose database is lost tries again this often
POLL_SECONDS = 0.25  # how long a watcher waits for a notification before checking whether to stop
SETTLE_SECONDS = 0.2  # an enrolment notifies once per image: reload when they pause this long...
MAX_DELAY_SECONDS = 1.0  # ...or after this long at most
SIGHTING_BATCH_SECONDS = 1.0
MAX_QUEUED_SIGHTINGS = 10_000  # rows (a track is one row however long it lasts) kept while the database is lost
CLOSE_WAIT_SECONDS = 5.0
_SCHEMA_LOCK = 0x66616365  # pg_advisory_xact_lock key: one process creates the tables at a time
# pg_advisory_lock(_WRITER_LOCK, a number of the origin), held by a writer's own connection from open_writer to
# finish: one writer of a dataset folder's images at a time (a page's delete is not undone by an enrolment)
_WRITER_LOCK = 0x66616377
_T = TypeVar("_T")

_NEGATIVES_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS facerec_negatives (
           id bigserial PRIMARY KEY,
           person text NOT NULL,
           vector bytea NOT NULL,
           made_at timestamptz NOT NULL DEFAULT now())""",
)
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS facerec_meta (key text PRIMARY KEY, value jsonb NOT NULL)",
    """CREATE TABLE IF NOT EXISTS facerec_images (
           id bigserial PRIMARY KEY,
           origin text NOT NULL,
           key text NOT NULL,
           person text NOT NULL,
           size bigint NOT NULL,
           mtime_ns bigint NOT NULL,
           status text NOT NULL,
           vector bytea,
           made_at timestamptz NOT NULL DEFAULT now(),
           UNIQUE (origin, key))""",
    """CREATE TABLE IF NOT EXISTS facerec_sightings (
           id bigserial PRIMARY KEY,
           camera text NOT NULL,
           run uuid NOT NULL,
           track bigint,
           name text NOT NULL,
           first_seen timestamptz NOT NULL,
           last_seen timestamptz NOT NULL,
           faces integer NOT NULL,
           best_distance real NOT NULL,
           UNIQUE (camera, run, track, name))""",
    "CREATE INDEX IF NOT EXISTS facerec_sightings_last_seen ON facerec_sightings (last_seen)",
    *_NEGATIVES_SCHEMA,
)

# A URL's password (postgresql://user:PASSWORD@host) and a password parameter (?password=..., password=...).
_URL_PASSWORD = re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://[^:/@\s]*:)[^/\s]*@")
_PARAMETER_PASSWORD = re.compile(r"(?i)(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|[^&\s]*)")
_QUOTED = re.compile(r'"([^"]*)"')


def _one_row(cursor: psycopg.Cursor) -> tuple[Any, ...]:
    """The row of a query that always gives one (an aggregate, a SELECT of expressions)."""
    row = cursor.fetchone()
    if row is None:
        raise FacerecError("the gallery database gave no row where a query always gives one")
    return row


def _masked(text: str, secrets: tuple[str, ...] = ()) -> str:
    """`text` with every password in it replaced by ***: those of URLs and parameters, and each of `secrets`
    where it stands as a word of its own (a password "e" is not every letter e)."""
    text = _URL_PASSWORD.sub(r"\1***@", text)
    text = _PARAMETER_PASSWORD.sub(r"\1***", text)
    for secret in secrets:
        if secret:
            text = re.sub(rf"(?<![0-9A-Za-z]){re.escape(secret)}(?![0-9A-Za-z])", "***", text)
    return text


def _url_problem(url: str, error: psycopg.Error) -> str:
    """libpq's complaint about `url`, on one line, with what it quotes of the URL masked by the URL's structure:
    a quoted piece that is or overlaps a password in the URL shows ***, as starred() would show that piece."""
    spans = password_spans(url)

    def quoted(match: re.Match) -> str:
        piece = match.group(1)
        if len(piece) <= 1:  # libpq's own punctuation ("]", "=")
            return match.group(0)
        at = url.find(piece)
        while at >= 0:
            if any(start < at + len(piece) and at < end for start, end in spans):
                return f'"{starred(url, at, at + len(piece))}"'
            at = url.find(piece, at + 1)
        return match.group(0) if piece in url or not spans else '"..."'  # not the URL's text: may be decoded from it

    return _QUOTED.sub(quoted, " ".join(str(error).split()))


def _origin(dataset: Path) -> str:
    """Which machine's which dataset folder an image comes from: two machines never overwrite each other's photos."""
    return f"{socket.gethostname()}:{Path(dataset).resolve()}"


def _origin_lock(origin: str) -> int:
    """The second key of the origin's writer lock (two origins sharing one only take turns)."""
    return int.from_bytes(hashlib.sha256(origin.encode("utf-8", "surrogateescape")).digest()[:4], "big") & 0x7FFFFFFF


class _Damaged(ValueError):
    """What the database holds is not a gallery this code made."""


# Bounds on what a gallery read from the database may hold, checked in SQL before anything is fetched
# (the embeddings file's, see picklefile and names): a hostile row must not make a reader fetch gigabytes.
MAX_RECORD_BYTES = 65_536  # the model record (profile, model names, sha256): a few hundred bytes
MAX_PERSON_BYTES = 4 * MAX_NAME_BYTES  # a folder name, every byte of it escaped as \\xNN at worst (_storable)
MAX_KEY_BYTES = 2 * MAX_PERSON_BYTES + 1  # person/photo.jpg
MAX_ORIGIN_BYTES = 255 + 1 + 4096  # hostname:absolute dataset folder (PATH_MAX)
MAX_STATUS_BYTES = 4096  # why a photo was skipped
# A vector of n numbers is 4n bytes: octet_length of a bytea is its stored size, known without reading (detoasting) it.
_ROW_CHECK = (
    "SELECT count(*) FILTER (WHERE vector IS NOT NULL), count(*), "
    "count(*) FILTER (WHERE vector IS NOT NULL AND octet_length(vector) <> %(bytes)s), "
    "coalesce(max(octet_length(person)), 0), coalesce(max(octet_length(key)), 0), "
    "coalesce(max(octet_length(origin)), 0), coalesce(max(octet_length(status)), 0) "
    "FROM facerec_images WHERE {where}")


class _TooLarge(int):
    """Stands in for a model record larger than MAX_RECORD_BYTES (its size), which is not fetched."""


def _shown(text: str, limit: int = 60) -> str:
    """A value read from the database, for a one-line message: printable and short."""
    return printable(text[:limit]) + ("..." if len(text) > limit else "")


def _model_record(record: Any) -> tuple[dict[str, Any], int]:
    """The models and the dimension of the gallery's model record, each checked before use."""
    if isinstance(record, _TooLarge):
        raise _Damaged(f"its model record is {record:,} bytes, more than the {MAX_RECORD_BYTES:,} one may have")
    models = record.get("models") if isinstance(record, dict) else None
    dimension = record.get("dimension") if isinstance(record, dict) else None
    if not isinstance(models, dict) or type(models.get("profile")) is not str or type(dimension) is not int:
        raise _Damaged("its model record is not {\"models\": {\"profile\": ...}, \"dimension\": int}")
    if not 1 <= dimension <= MAX_DIMENSION:
        raise _Damaged(f"its model record says vectors of {dimension:,} numbers, not 1 to {MAX_DIMENSION:,}")
    if models["profile"] not in PROFILES:
        raise _Damaged(f"its model record names the model profile '{_shown(models['profile'])}', which this version "
                       f"of facerec does not know (it knows: {', '.join(sorted(PROFILES))})")
    return models, dimension


def _check_rows(connection: psycopg.Connection, origin: str | None, dimension: int) -> int:
    """Refuse (_Damaged) a gallery (origin None: the images with a vector; else that origin's images) whose rows
    exceed the bounds above, or whose vectors are not `dimension` numbers, by one aggregate query: nothing of
    them is fetched. Returns how many vectors it has."""
    where = "vector IS NOT NULL" if origin is None else "origin = %(origin)s"
    vectors, images, misfits, person, key, place, status = _one_row(connection.execute(
        _ROW_CHECK.format(where=where),
        {"bytes": 4 * dimension, "origin": origin}))
    if max(vectors, images) > MAX_VECTORS or vectors * dimension > MAX_VALUES:
        raise _Damaged(f"it holds {max(vectors, images):,} images with {vectors:,} vectors of {dimension:,} numbers, "
                       f"more than the {MAX_VECTORS:,} vectors (or {MAX_VALUES:,} numbers) a gallery may have")
    if misfits:
        raise _Damaged(f"{plural(misfits, 'vector')} of {vectors:,} {'is' if misfits == 1 else 'are'} not of the "
                       f"{dimension} numbers its model record says")
    for what, size, limit in (("a person's name", person, MAX_PERSON_BYTES), ("a photo's path", key, MAX_KEY_BYTES),
                              ("a dataset folder's name", place, MAX_ORIGIN_BYTES),
                              ("a photo's status", status, MAX_STATUS_BYTES)):
        if size > limit:
            raise _Damaged(f"{what} is {size:,} bytes, more than the {limit:,} one may have")
    return vectors


# The gallery in blocks of consecutive ids, one row of COPY a block: its first id, how many vectors it has, its
# vectors end to end (one bytea) and its people and paths (one text: person, path, person, path... joined by
# chr(31)). A million vectors are a few hundred rows, not a million (the per-row cost is in Python), read in one
# pass over the table: the numbers as they are stored (float4[] sent a length before every number: twice the
# bytes, each parsed), and nothing sorted: each block's rows come from the primary key's index in id order, and
# PostgreSQL feeds an aggregate over a sorted subquery (nothing joined) its rows in that order. (ORDER BY inside
# the aggregate sorted every block's vectors anew, and a query of its own for the names sorted all million of
# them.) Both aggregates take the same rows, so a vector and its name never part. Each row starts with its
# block's first id: the order of the blocks is checked, never trusted. {path} and {where} are fixed fragments.
_BLOCK_IDS = 4096
_SEPARATOR = "\x1f"  # chr(31), between the people and paths of a block's listing
_GALLERY_BLOCKS = (
    "COPY (SELECT block, part.* "
    # the blocks that hold rows, not every block between the smallest and largest id: a hostile row with an
    # id of 2^62 would otherwise make the read walk through 10^15 empty blocks
    "FROM (SELECT DISTINCT id - mod(mod(id, {size}) + {size}, {size}) AS block FROM facerec_images ORDER BY block) AS blocks, "
    "LATERAL (SELECT count(*), string_agg(vector, ''::bytea), string_agg(person || E'\\x1f' || path, E'\\x1f') "
    "FROM (SELECT vector, person, {path} AS path FROM facerec_images "
    "WHERE id >= block AND id < block + {size} AND vector IS NOT NULL {where} ORDER BY id) AS block_rows) AS part"
    ") TO STDOUT (FORMAT binary)")
# A block whose listing holds the separator in a name or path: its people and paths as JSON.
_BLOCK_LISTING = (
    "SELECT coalesce(json_agg(json_build_array(person, {path}) ORDER BY id), '[]')::text FROM facerec_images "
    "WHERE id >= %(block)s AND id < %(block)s + {size} AND vector IS NOT NULL {where}")
_FLOAT32 = np.dtype("<f4")  # a vector's numbers as stored


def _stored(vector: np.ndarray) -> bytes:
    """A vector as the vector column holds it."""
    return np.asarray(vector, _FLOAT32).tobytes()


class _CopiedGallery:
    """Parses the binary COPY of _GALLERY_BLOCKS (rows of a block's first id, its number of vectors, their bytes
    and their listing, NULL for a block without vectors) into a float32 matrix and the lists of people and paths.

    Every header is checked: a block that is not whole vectors of `dimension` numbers, or
    more vectors than counted, is refused.
    """

    SIGNATURE = b"PGCOPY\n\xff\r\n\x00"

    def __init__(self, count: int, dimension: int, encoding: str) -> None:
        self.vectors = np.empty((count, dimension), np.float32)
        self.encoding = encoding  # of the text the server sends (the connection's client encoding)
        self.done = 0
        self.names: list[list[str]] = []  # a block's people (in order of the blocks)...
        self.paths: list[list[str]] = []  # ...and their paths
        self.unsplit: dict[int, int] = {}  # block's first id -> its place in names: listings holding the separator
        self.buffer = bytearray()
        self.header_read = False
        self.ended = False
        self.block: int | None = None  # the first id of the last block read

    def feed(self, chunk: bytes | bytearray | memoryview) -> None:
        # a chunk is mostly one whole row (a block, megabytes): read where it is, only a part row is kept
        if self.buffer:
            self.buffer += chunk
        data = self.buffer if self.buffer else memoryview(chunk).cast("B")
        offset = self._parse(data)
        if data is self.buffer:
            del self.buffer[:offset]
        else:
            self.buffer += data[offset:]

    def _parse(self, data: bytearray | memoryview) -> int:
        """Read the whole rows at the start of `data`; returns where the rest begins."""
        offset = self._read_header(data) if not self.header_read else 0
        while self.header_read and not self.ended and len(data) - offset >= 2:
            fields = int.from_bytes(data[offset:offset + 2], "big", signed=True)
            if fields == -1:
                self.ended = True
                return offset + 2
            if len(data) - offset < 30:  # fields, the first id and the count (lengths and values), a length
                break
            block_length, block, count_length, count, length = (
                int.from_bytes(data[offset + start:offset + end], "big", signed=True)
                for start, end in ((2, 6), (6, 14), (14, 18), (18, 26), (26, 30)))
            if (fields != 4 or block_length != 8 or count_length != 8 or count < 0
                    or (self.block is not None and block <= self.block)):
                raise _Damaged("the server sent the gallery in an unexpected layout or order")
            listing_at = offset + 30 + max(length, 0)
            if len(data) < listing_at + 4:
                break
            listing_length = int.from_bytes(data[listing_at:listing_at + 4], "big", signed=True)
            if len(data) < listing_at + 4 + max(listing_length, 0):
                break
            if (length == -1) != (count == 0) or (listing_length == -1) != (count == 0):
                raise _Damaged("the server sent the gallery in an unexpected layout or order")
            if count:  # 0: a block of ids without vectors
                self._read_block(block, count, data[offset + 30:listing_at],
                                 data[listing_at + 4:listing_at + 4 + listing_length])
            self.block = block
            offset = listing_at + 4 + max(listing_length, 0)
        return offset

    def _read_header(self, data: bytearray | memoryview) -> int:
        if len(data) < 19:
            return 0
        if data[:11] != self.SIGNATURE:
            raise _Damaged("the server sent the gallery in an unknown COPY format")
        self.header_read = True
        return 19 + int.from_bytes(data[15:19], "big")

    def _read_block(self, block: int, count: int, numbers: bytearray | memoryview,
                    listing: bytearray | memoryview) -> None:
        dimension = self.vectors.shape[1]
        if len(numbers) != 4 * dimension * count:
            raise _Damaged(f"a vector after vector {self.done} is not of the {dimension} numbers its model record says")
        if self.done + count > len(self.vectors):
            raise _Damaged("it holds more vectors than were counted")
        # copied as bytes: a block's numbers start anywhere in the row, and an unaligned float32 copy is slow
        self.vectors.reshape(-1).view(np.uint8)[4 * dimension * self.done:4 * dimension * (self.done + count)] = \
            np.frombuffer(numbers, np.uint8)
        self.done += count
        parts = str(listing, self.encoding).split(_SEPARATOR)
        if len(parts) == 2 * count:
            self.names.append(parts[0::2])
            self.paths.append(parts[1::2])
        else:  # a name or path holds the separator: this block's listing is read again, as JSON
            self.unsplit[block] = len(self.names)
            self.names.append([])
            self.paths.append([])

    def result(self) -> np.ndarray:
        if not self.ended or self.buffer or self.done != len(self.vectors):
            raise _Damaged(f"the vectors did not arrive whole ({self.done} of {len(self.vectors)} read)")
        return self.vectors


class PostgresStore(Store):
    """A gallery in a PostgreSQL database named by a URL (postgresql://user@host:port/dbname).

    Credentials come from the URL, PGPASSFILE / ~/.pgpass or the PG* environment variables
    (libpq reads them); no message ever shows a password. Connecting happens here:
    FacerecError naming the host and port if the server cannot be reached or refuses.
    """

    def __init__(self, url: str) -> None:
        self._url = url
        self.location = starred(url)
        if unclear_password(url):
            raise FacerecError(f"{self.location}: where its password ends is unclear (an @ or / after the : of "
                               "user:password): write @ as %40 and / as %2F in the user name, password and query, "
                               "or keep the password in ~/.pgpass (PGPASSFILE)")
        try:
            parameters = conninfo_to_dict(url)
        except psycopg.Error as error:
            raise FacerecError(f"{self.location} is not a PostgreSQL URL: {_url_problem(url, error)}") from None
        written = [url[start:end] for start, end in password_spans(url)]
        self._secrets = tuple(dict.fromkeys(str(s) for s in (*written, *map(unquote, written), parameters.get("password"),
                                                        os.environ.get("PGPASSWORD")) if s))
        host = str(parameters.get("host") or os.environ.get("PGHOST") or "localhost")
        port = parameters.get("port") or os.environ.get("PGPORT") or "5432"
        self._server = f"{host}:{port}" if not host.startswith("/") else f"{host} (socket, port {port})"
        self._lock = threading.RLock()
        self._generation: int | None = None  # of the gallery the last load() returned
        # that gallery: a watch that sees its generation hands it on, not a new read of it
        self._loaded: tuple[int | None, Gallery] | None = None
        self._connection: psycopg.Connection | None = self._connect()

    # --- connections and messages ---

    def _reason(self, error: BaseException) -> str:
        """A psycopg error as one line, passwords masked."""
        return _masked(" ".join(str(error).split()) or type(error).__name__, self._secrets)

    def _connect(self, application_name: str = "facerec") -> psycopg.Connection:
        try:
            return psycopg.connect(self._url, autocommit=True, connect_timeout=CONNECT_TIMEOUT,
                                   application_name=application_name, keepalives=1, keepalives_idle=5,
                                   keepalives_interval=2, keepalives_count=3)
        except psycopg.Error as error:
            raise FacerecError(f"cannot connect to the gallery database at {self._server} ({self.location}): "
                               f"{self._reason(error)}") from None

    def _using(self, doing: str, work: Callable[[psycopg.Connection], _T], own: psycopg.Connection | None = None
               ) -> _T:
        """`work(connection)` on the store's own connection (or a writer's `own`); errors become FacerecError.

        A connection found lost (the server restarted since it was last used) is replaced and
        the work done once more: every operation here is safe to repeat (upserts, deletes, reads).
        Not a writer's own: its writer lock went with it, the writer fails.
        """
        with self._lock:
            for attempt in (1, 2):
                connection = own
                if connection is None:
                    if self._connection is None or self._connection.closed:
                        self._connection = self._connect()
                    connection = self._connection
                try:
                    return work(connection)
                except psycopg.Error as error:
                    if connection.broken or connection.closed:
                        connection.close()
                        if attempt == 1 and own is None and isinstance(error, psycopg.OperationalError):
                            continue
                    raise FacerecError(f"cannot {doing} the gallery database at {self._server} ({self.location}): "
                                       f"{self._reason(error)}") from None
                except UnicodeError as error:
                    raise FacerecError(f"cannot {doing} the gallery database {self.location}: text that is not "
                                       f"valid UTF-8 ({self._reason(error)})") from None
                except _Damaged as error:
                    raise FacerecError(f"the gallery in {self.location} is damaged: {error}") from None
        raise AssertionError("unreachable")

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()

    # --- schema ---

    def _create_schema(self, connection: psycopg.Connection) -> None:
        """Make the tables if missing (one process at a time) and check the version.

        Tables that exist are not made again: a role that may only write sightings (no CREATE on the schema,
        no INSERT into facerec_meta) can still log them. They are all made in one transaction, so facerec_meta
        there means every table is.
        """
        if self._check_version(connection):
            return
        with connection.transaction():
            connection.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            for statement in _SCHEMA:
                connection.execute(statement)
            connection.execute("INSERT INTO facerec_meta VALUES ('schema_version', %s), ('generation', '0') "
                               "ON CONFLICT (key) DO NOTHING", (Jsonb(SCHEMA_VERSION),))
            self._check_version(connection)

    def _check_version(self, connection: psycopg.Connection) -> int:
        """The schema version, 0 if the database has no facerec tables; FacerecError if they are of a newer schema."""
        if _one_row(connection.execute("SELECT to_regclass('facerec_meta') IS NOT NULL"))[0] is False:
            return 0
        row = connection.execute("SELECT CASE WHEN jsonb_typeof(value) = 'number' AND octet_length(value::text) <= 19 "
                                 "THEN value END FROM facerec_meta WHERE key = 'schema_version'").fetchone()
        version = row[0] if row else None
        if type(version) is not int or version < 1:
            raise _Damaged("its schema_version is not a whole number from 1")
        if version > SCHEMA_VERSION:
            raise FacerecError(f"the gallery in {self.location} has schema version {version}, newer than this facerec "
                               f"knows ({SCHEMA_VERSION}): upgrade facerec on this machine")
        return version

    def _upgrade(self, connection: psycopg.Connection) -> None:
        """A writer converts a version-1 gallery (vectors as float4[]) to this version's layout, once, in one
        transaction: readers see the old tables or the new, never half; one writer converts, the others wait
        for it (the schema lock) and find it done. NULL numbers stay short vectors, which a reader refuses."""
        if self._check_version(connection) >= SCHEMA_VERSION:
            return
        with connection.transaction():
            connection.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            if self._check_version(connection) >= SCHEMA_VERSION:
                return
            # float4send is big-endian: each number's 4 bytes are turned round
            connection.execute(
                "CREATE FUNCTION pg_temp.facerec_vector(numbers float4[]) RETURNS bytea LANGUAGE sql IMMUTABLE AS $$ "
                "SELECT string_agg(substr(b, 4, 1) || substr(b, 3, 1) || substr(b, 2, 1) || substr(b, 1, 1), "
                "''::bytea ORDER BY i) FROM unnest(numbers) WITH ORDINALITY AS n(number, i), "
                "LATERAL float4send(number) AS b $$")
            connection.execute("ALTER TABLE facerec_images DROP CONSTRAINT IF EXISTS facerec_images_vector_check")
            connection.execute("ALTER TABLE facerec_images ALTER COLUMN vector TYPE bytea "
                               "USING pg_temp.facerec_vector(vector)")
            connection.execute("DROP FUNCTION pg_temp.facerec_vector(float4[])")
            connection.execute("UPDATE facerec_meta SET value = %s WHERE key = 'schema_version'",
                               (Jsonb(SCHEMA_VERSION),))
            self._changed(connection)  # a watcher that was told the old version is unreadable reads it now

    @staticmethod
    def _gallery_record(connection: psycopg.Connection, lock: str = "") -> Any:
        """The model record as stored (checked by _model_record before use); one too large is not fetched."""
        row = connection.execute(f"SELECT CASE WHEN octet_length(value::text) <= %s THEN value END, "
                                 f"octet_length(value::text) FROM facerec_meta WHERE key = 'gallery' {lock}",
                                 (MAX_RECORD_BYTES,)).fetchone()
        if row is None:
            return None
        return row[0] if row[1] <= MAX_RECORD_BYTES else _TooLarge(row[1])

    @staticmethod
    def _changed(connection: psycopg.Connection) -> None:
        """In a transaction that changed the gallery: count the change and tell the watchers when it commits."""
        connection.execute("UPDATE facerec_meta SET value = to_jsonb((value #>> '{}')::bigint + 1) "
                           "WHERE key = 'generation'")
        connection.execute("SELECT pg_notify(%s, '')", (CHANNEL,))

    @staticmethod
    def _generation_of(connection: psycopg.Connection) -> int | None:
        row = connection.execute("SELECT CASE WHEN jsonb_typeof(value) = 'number' AND octet_length(value::text) <= 19 "
                                 "THEN value END FROM facerec_meta WHERE key = 'generation'").fetchone()
        if row is not None and type(row[0]) is not int:
            raise _Damaged("its generation is not a whole number")
        return row[0] if row else None

    # --- reading ---

    def _read(self, connection: psycopg.Connection, origin: str | None) -> tuple[Gallery, int | None]:
        """The gallery (origin None: every origin, paths "<origin>/<key>") or one origin's images (paths are keys,
        with their file records), read in one snapshot; and the gallery's generation."""
        with connection.transaction():
            connection.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            # the names of a million vectors are sorted in memory (about 100 MB), not on disk; JIT only adds time
            connection.execute("SET LOCAL work_mem = '256MB'")
            connection.execute("SET LOCAL jit = off")
            version = self._check_version(connection)
            if 0 < version < SCHEMA_VERSION:
                raise FacerecError(f"the gallery in {self.location} has schema version {version}, which this facerec "
                                   f"reads once converted: the next enrolment by this version (extract_embeddings.py "
                                   f"--embeddings {self.location}) converts it, once for every machine")
            gallery = self._gallery_record(connection) if version else None
            if gallery is None:
                if origin is None:
                    raise NoGalleryYet(f"the gallery database {self.location} holds no gallery yet: enrol people with "
                                       f"extract_embeddings.py --embeddings {self.location}")
                return Gallery(np.zeros((0, 0), np.float32), [], [], LEGACY_PROFILE, {}, {},
                                      profile_recorded=False), None
            models, dimension = _model_record(gallery)
            count = _check_rows(connection, origin, dimension)  # before any name, path or vector is fetched
            where, parameters = ("AND origin = %(origin)s", {"origin": origin}) if origin is not None else ("", {})
            path = "key" if origin is not None else "origin || '/' || key"
            copied = _CopiedGallery(count, dimension, connection.info.encoding)
            with connection.cursor().copy(_GALLERY_BLOCKS.format(size=_BLOCK_IDS, path=path, where=where),
                                          parameters or None) as copy:
                for chunk in copy:
                    copied.feed(chunk)
            vectors = copied.result()
            names, paths = self._listing(connection, copied, path, where, parameters)
            try:
                check_unit_vectors(vectors, names)
            except ValueError as error:
                raise _Damaged(str(error)) from None
            files = {}
            if origin is not None:
                records = _one_row(connection.execute(
                    "SELECT coalesce(json_object_agg(key, json_build_object('size', size, 'mtime_ns', mtime_ns, "
                    "'status', status)), '{}')::text FROM facerec_images WHERE origin = %s", (origin,)))[0]
                files = json.loads(records)
            negatives = _read_negatives(connection, dimension) if origin is None else Negatives.none(dimension)
            generation = self._generation_of(connection)
        return Gallery(vectors, names, paths, models["profile"], models, files, negatives=negatives), generation

    @staticmethod
    def _listing(connection: psycopg.Connection, copied: _CopiedGallery, path: str, where: str,
                 parameters: dict[str, Any]) -> tuple[list[str], list[str]]:
        """The person and path of every vector, by id: the blocks' listings, those that held the separator in a
        name or path read again as JSON (a JSON array of a million pairs took seconds to build and to parse)."""
        for block, place in copied.unsplit.items():
            pairs = json.loads(_one_row(connection.execute(
                _BLOCK_LISTING.format(size=_BLOCK_IDS, path=path, where=where), {**parameters, "block": block}))[0])
            copied.names[place] = [person for person, _ in pairs]
            copied.paths[place] = [image for _, image in pairs]
        names = list(itertools.chain.from_iterable(copied.names))
        paths = list(itertools.chain.from_iterable(copied.paths))
        if len(names) != len(copied.vectors):
            raise _Damaged(f"it holds {len(copied.vectors):,} vectors but {len(names):,} names")
        return names, paths

    def load(self) -> Gallery:
        """Every image with a vector, from every machine; `paths` are "<hostname>:<dataset folder>/<person>/<image>"."""
        gallery, self._generation = self._using("read", lambda connection: self._read(connection, None))
        self._loaded = (self._generation, gallery)
        return gallery

    def known_images(self, dataset: Path) -> Gallery:
        """This machine's images of `dataset`, keyed by their path in it, with their file records."""
        return self._using("read", lambda connection: self._read(connection, _origin(dataset))[0])

    # --- writing ---

    def check_writable(self, force: bool = False) -> None:
        """Reachable (checked on connecting) and of a schema this version knows; the models are checked by open_writer."""
        self._using("enrol into", self._check_version)

    def _writer_connection(self, origin: str, dataset: Path, wait: float | None) -> psycopg.Connection:
        """A connection of the writer's own, holding the writer lock of `origin` (waiting as base.take_turn says:
        GalleryBusy naming the holder)."""
        # named for the message of a writer it makes wait
        connection = self._connect(f"facerec writer: {os.path.basename(sys.argv[0])} pid {os.getpid()}")
        key = (_WRITER_LOCK, _origin_lock(origin))

        def holder() -> str:
            row = connection.execute(
                "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                "WHERE l.locktype = 'advisory' AND l.classid = %s::oid AND l.objid = %s::oid AND l.objsubid = 2 "
                "AND l.granted", key).fetchone()
            return f"another process ({row[0]})" if row and row[0] else "another process"

        try:
            take_turn(lambda: _one_row(connection.execute("SELECT pg_try_advisory_lock(%s, %s)", key))[0], holder,
                      f"the gallery of dataset folder {dataset} in {self.location}", wait)
            return connection
        except psycopg.Error as error:
            connection.close()
            raise FacerecError(f"cannot enrol into the gallery database at {self._server} ({self.location}): "
                               f"{self._reason(error)}") from None
        except BaseException:
            connection.close()
            raise

    def open_writer(self, dataset: Path, models: dict[str, Any], dimension: int,
                    force: bool = False, wait: float | None = WRITER_WAIT_SECONDS) -> StoreWriter:
        """The writer works on a connection of its own, which holds its origin's writer lock until it finishes
        or closes: what it starts from is read under the lock, so no other writer's change is undone."""
        origin = _origin(dataset)
        own = self._writer_connection(origin, dataset, wait)
        wanted = {"models": models, "dimension": dimension}

        def check(connection: psycopg.Connection) -> _PostgresWriter:
            warning = None
            self._create_schema(connection)
            self._upgrade(connection)
            with connection.transaction():
                gallery = self._gallery_record(connection, "FOR UPDATE")
                images, origins = _one_row(connection.execute(
                    "SELECT count(*), count(DISTINCT origin) FROM facerec_images"))
                if gallery != wanted and images and not force:
                    raise FacerecError(
                        f"the gallery in {self.location} holds {plural(images, 'image')} from "
                        f"{plural(origins, 'dataset folder')} made with {_difference(gallery, wanted)}: vectors of other machines cannot be remade here; enrol "
                        "with the same models, use another database, or add --force to empty the gallery and enrol anew")
                if gallery != wanted:
                    if images:
                        warning = (f"the gallery in {self.location} was made with {_difference(gallery, wanted)}: "
                                   f"emptying it ({plural(images, 'image')} from {plural(origins, 'dataset folder')}, every machine's) "
                                   "and enrolling anew (--force)")
                        connection.execute("DELETE FROM facerec_images")
                        _forget_negatives(connection)  # made by the other models too
                    connection.execute("INSERT INTO facerec_meta VALUES ('gallery', %s) "
                                       "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value", (Jsonb(wanted),))
                    self._changed(connection)
            previous = self._read(connection, origin)[0] if gallery == wanted else None
            return _PostgresWriter(self, connection, origin, wanted, previous, warning)

        try:
            return self._using("enrol into", check, own)
        except BaseException:
            own.close()
            raise

    # --- following ---

    def watch(self, on_change: Callable[[Gallery], None],
              on_problem: Callable[[str], None]) -> Watch:
        return _GalleryWatch(self, on_change, on_problem, self._generation)

    def sighting_log(self, camera: str) -> SightingLog:
        def check(connection: psycopg.Connection) -> None:
            self._create_schema(connection)
            # refused now, not by the background writer later: the role must be able to add and update rows
            allowed = _one_row(connection.execute("SELECT has_table_privilege('facerec_sightings', 'INSERT') "
                                                  "AND has_table_privilege('facerec_sightings', 'UPDATE')"))[0]
            if not allowed:
                raise FacerecError(f"cannot keep sightings in the gallery database at {self._server} ({self.location}): "
                                   "permission denied: this role may not INSERT and UPDATE facerec_sightings")

        self._using("keep sightings in", check)
        return _PostgresSightingLog(self, camera)

    def add_negative(self, person: str, vector: np.ndarray, models: dict[str, Any]) -> Gallery:
        """One transaction, checked against the gallery as it is then; watchers are told (generation, NOTIFY)."""
        def add(connection: psycopg.Connection) -> None:
            with connection.transaction():
                connection.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))  # the table, once
                for statement in _NEGATIVES_SCHEMA:
                    connection.execute(statement)
                record = self._gallery_record(connection, "FOR SHARE") if self._check_version(connection) else None
                if record is None:
                    raise NoGalleryYet(f"the gallery database {self.location} holds no gallery yet: enrol people with "
                                       f"extract_embeddings.py --embeddings {self.location}")
                gallery_models, dimension = _model_record(record)
                found = connection.execute("SELECT 1 FROM facerec_images WHERE person = %s AND vector IS NOT NULL "
                                           "LIMIT 1", (person,)).fetchone()
                people = [person] if found else [row[0] for row in connection.execute(
                    "SELECT DISTINCT person FROM facerec_images WHERE vector IS NOT NULL ORDER BY person LIMIT 11")]
                check_negative(self.location, person, people, gallery_models, dimension, vector, models)
                connection.execute("INSERT INTO facerec_negatives (person, vector) VALUES (%s, %s)",
                                   (_storable(person), _stored(np.asarray(vector).ravel())))
                self._changed(connection)

        self._using("keep a negative example in", add)
        return self.load()


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


def _storable(text: str) -> str:
    """`text` as PostgreSQL can store it: a file name that is not UTF-8 (Python holds its bytes as surrogates)
    gets them as \\xNN. Such a photo is then not recognised as unchanged by the next run: it is embedded again."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


class _PostgresWriter(StoreWriter):
    """An enrolment of one dataset folder: each image is one transaction, committed at once."""

    def __init__(self, store: PostgresStore, connection: psycopg.Connection, origin: str, gallery: dict[str, Any],
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
                if self._store._gallery_record(connection, "FOR SHARE") != self._gallery:
                    raise FacerecError(f"the gallery in {self._store.location} was emptied for other models by another "
                                       "enrolment (--force) while this one ran: run extract_embeddings.py again")
                if work(connection):
                    self._store._changed(connection)

        self._store._using(doing, transaction, self._connection)

    def record(self, key: str, signature: dict[str, int], status: str, person: str,
               vector: np.ndarray | None) -> None:
        if vector is not None:
            vector = np.asarray(vector, np.float32).ravel()
            if vector.size != self._dimension or not np.isfinite(vector).all():
                raise FacerecError(f"{key}: a vector of {vector.size} numbers (or not finite) cannot join a gallery "
                                   f"of {self._dimension}-d vectors")
        if _storable(key) != key:
            key = _storable(key)
            self._escaped.add(key)
        person = _storable(person)
        size, mtime_ns = int(signature["size"]), int(signature["mtime_ns"])
        known = self._known.get(key)
        # (a skipped image's person is not loaded: its key, person/photo, says it)
        if known is not None and known[:3] == (size, mtime_ns, status) and known[3] in (None, person) and (
                vector is None if known[4] is None else vector is not None and np.array_equal(known[4], vector)):
            return  # as the store has it: no transaction, no notification
        values = (self._origin, key, person, size, mtime_ns, status, None if vector is None else _stored(vector))
        with ctrl_c_deferred():  # a Ctrl-C waits for the commit and its count: what it says is kept is exact
            self._change("record an image in", lambda connection: connection.execute(_UPSERT_IMAGE, values).rowcount)
            self._known[key] = (size, mtime_ns, status, person, vector)
            self._recorded += 1
            self._note_kept()

    def remove(self, keys: list[str]) -> None:
        # an image this run recorded under an escaped name is there, though the name it listed differs (see _storable)
        keys = [stored for stored in map(_storable, keys) if stored not in self._escaped]
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
        return self._store._using("read", lambda connection: GalleryCounts(*_one_row(connection.execute(
            "SELECT count(*), count(DISTINCT person) FROM facerec_images WHERE vector IS NOT NULL"))))

    def close(self) -> None:
        self._connection.close()  # ends the session: its writer lock goes with it


class _GalleryWatch(Watch):
    """A thread with its own connection, LISTENing on CHANNEL; reloads the gallery when it changed."""

    def __init__(self, store: PostgresStore, on_change: Callable[[Gallery], None],
                 on_problem: Callable[[str], None], generation: int | None) -> None:
        self._store = store
        self._on_change = on_change
        self._on_problem = on_problem
        self._generation = generation  # of the gallery the caller holds (None: unknown, load at once)
        self._unusable = False  # the last gallery read could not be used (told once)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="facerec-gallery-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=CONNECT_TIMEOUT + 2 * POLL_SECONDS)

    def _run(self) -> None:
        lost = False
        while not self._stopping.is_set():
            connection = None
            try:
                connection = self._store._connect()
                connection.execute(f"LISTEN {CHANNEL}")
                if lost:
                    self._on_problem(f"reconnected to the gallery database {self._store.location}: the gallery is "
                                     "reloaded if it changed meanwhile")
                    lost = False
                self._deliver(connection)  # what changed before LISTEN, or while the database was lost
                while not self._stopping.is_set():
                    if self._notified(connection):
                        self._deliver(connection)
            except (psycopg.Error, FacerecError) as error:
                if self._stopping.is_set():
                    break
                if not lost:
                    reason = str(error) if isinstance(error, FacerecError) else self._store._reason(error)
                    self._on_problem(f"the gallery database {self._store.location} is unreachable ({reason}): keeping "
                                     "the gallery already loaded, trying again every second")
                    lost = True
                self._stopping.wait(RETRY_SECONDS)
            finally:
                if connection is not None:
                    connection.close()

    def _notified(self, connection: psycopg.Connection) -> bool:
        """Whether a notification came within POLL_SECONDS; if so, waits for the burst it starts to settle."""
        if not list(connection.notifies(timeout=POLL_SECONDS, stop_after=1)):
            return False
        first = time.monotonic()
        while time.monotonic() - first < MAX_DELAY_SECONDS and not self._stopping.is_set():
            if not list(connection.notifies(timeout=SETTLE_SECONDS, stop_after=1)):
                break
        return True

    def _deliver(self, connection: psycopg.Connection) -> None:
        """Load the gallery and hand it over, unless it is the one the caller already has.

        A gallery that cannot be used (damaged, none yet, a newer schema) is told once, until a usable one
        comes; the caller keeps the one it has, and the watch goes on. One that this store loaded already (the
        web page's Learn) is handed over as it is, not read again.
        """
        current = None
        generation: int | None  # of the gallery handed over
        try:
            current = self._store._generation_of(connection)
            if self._generation is not None and current == self._generation:
                return
            loaded = self._store._loaded
            if loaded is not None and loaded[0] is not None and loaded[0] == current:
                gallery, generation = loaded[1], current
            else:
                gallery, generation = self._store._read(connection, None)
        except (FacerecError, _Damaged) as error:
            if not self._unusable:
                problem = str(error) if isinstance(error, FacerecError) else \
                    f"the gallery in {self._store.location} is damaged: {error}"
                self._on_problem(f"{problem}; keeping the gallery already loaded")
                self._unusable = True
            self._generation = current  # read again at the next change
            return
        if self._unusable:
            self._on_problem(f"the gallery in {self._store.location} is usable again")
            self._unusable = False
        self._generation = generation
        self._hand_over(gallery)

    def _hand_over(self, gallery: Gallery) -> None:
        try:
            self._on_change(gallery)
        except FacerecError as error:  # the caller cannot use it (another profile since a --force enrolment...)
            self._on_problem(str(error))


class _PostgresSightingLog(SightingLog):
    """Queues sightings (merging a track's into one row) and writes them about once a second from a thread.

    While the database is lost the rows stay queued, at most MAX_QUEUED_SIGHTINGS (the
    oldest are dropped, with one warning), and are written when it is back.
    """

    def __init__(self, store: PostgresStore, camera: str) -> None:
        self._store = store
        self._camera = camera
        self._run = uuid.uuid4()
        self._lock = threading.Lock()
        # (track, name) -> [first_seen, last_seen, faces, best_distance]; a face without a track has its own key
        self._queued: OrderedDict[tuple, list] = OrderedDict()
        self._untracked = 0
        self._dropped = 0
        self._warned_lost = False
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._run_writer, name="facerec-sightings", daemon=True)
        self._thread.start()

    def log(self, sightings: list[Sighting]) -> None:
        with self._lock:
            for sighting in sightings:
                if sighting.track is None:
                    self._untracked += 1
                    key: tuple = (None, sighting.name, self._untracked)
                else:
                    key = (int(sighting.track), sighting.name)
                self._merge(key, [sighting.seen_at, sighting.seen_at, 1, float(sighting.distance)])

    def _merge(self, key: tuple, row: list) -> None:
        """Add `row` to the queued row of `key` (under the lock); drop the oldest row when the queue is full."""
        queued = self._queued.get(key)
        if queued is not None:
            queued[0], queued[1] = min(queued[0], row[0]), max(queued[1], row[1])
            queued[2] += row[2]
            queued[3] = min(queued[3], row[3])
            return
        if len(self._queued) >= MAX_QUEUED_SIGHTINGS:
            self._queued.popitem(last=False)
            if not self._dropped:
                print(f"warning: more than {MAX_QUEUED_SIGHTINGS} sightings wait for the database "
                      f"{self._store.location}: the oldest are dropped", file=sys.stderr)
            self._dropped += 1
        self._queued[key] = row

    def close(self) -> None:
        self._closing.set()
        self._thread.join(timeout=CLOSE_WAIT_SECONDS + CONNECT_TIMEOUT)
        with self._lock:
            left = len(self._queued)
        if left:
            print(f"warning: {left} sighting row(s) could not be written to {self._store.location}", file=sys.stderr)

    def _run_writer(self) -> None:
        connection = None
        deadline = None
        while True:
            closing = self._closing.wait(SIGHTING_BATCH_SECONDS)
            if closing and deadline is None:
                deadline = time.monotonic() + CLOSE_WAIT_SECONDS
            with self._lock:
                batch, self._queued = self._queued, OrderedDict()
            try:
                if batch:
                    if connection is None or connection.closed:
                        connection = self._store._connect()
                    self._write(connection, batch)
                    if self._warned_lost:
                        print(f"warning: the database {self._store.location} is back: sightings are written again",
                              file=sys.stderr)
                        self._warned_lost = False
            except (psycopg.Error, FacerecError) as error:
                if connection is not None and connection.broken:
                    connection.close()
                with self._lock:  # keep them, older first
                    newer, self._queued = self._queued, OrderedDict()
                    for key, row in (*batch.items(), *newer.items()):
                        self._merge(key, row)
                if not self._warned_lost:
                    reason = str(error) if isinstance(error, FacerecError) else self._store._reason(error)
                    print(f"warning: sightings cannot be written now ({reason}); they are kept and written when the "
                          "database is back", file=sys.stderr)
                    self._warned_lost = True
                if deadline is not None and time.monotonic() < deadline:
                    time.sleep(RETRY_SECONDS)
            if deadline is not None and (not self._queued or time.monotonic() >= deadline):
                break
        if connection is not None:
            connection.close()

    def _write(self, connection: psycopg.Connection, batch: OrderedDict) -> None:
        """One transaction: a track's row grows (later seen, more faces, a smaller distance), other rows are added."""
        tracks, names, firsts, lasts, faces, best = [], [], [], [], [], []
        for (track, name, *_), (first, last, count, distance) in batch.items():
            tracks.append(track)
            names.append(name)
            firsts.append(first)
            lasts.append(last)
            faces.append(count)
            best.append(distance)
        with connection.transaction():
            connection.execute(
                "INSERT INTO facerec_sightings (camera, run, track, name, first_seen, last_seen, faces, best_distance) "
                "SELECT %s, %s, track, name, to_timestamp(first), to_timestamp(last), faces, best "
                "FROM unnest(%s::bigint[], %s::text[], %s::float8[], %s::float8[], %s::int[], %s::float4[]) "
                "AS batch(track, name, first, last, faces, best) "
                "ON CONFLICT (camera, run, track, name) DO UPDATE SET "
                "first_seen = least(facerec_sightings.first_seen, EXCLUDED.first_seen), "
                "last_seen = greatest(facerec_sightings.last_seen, EXCLUDED.last_seen), "
                "faces = facerec_sightings.faces + EXCLUDED.faces, "
                "best_distance = least(facerec_sightings.best_distance, EXCLUDED.best_distance)",
                (self._camera, self._run, tracks, names, firsts, lasts, faces, best))


# Bounds on the negative examples a reader fetches (checked in SQL first, as _check_rows does for the images).
MAX_NEGATIVES = 1_000_000


def _forget_negatives(connection: psycopg.Connection) -> None:
    """Delete every negative example (a gallery emptied for other models), where the table exists."""
    if _one_row(connection.execute("SELECT to_regclass('facerec_negatives') IS NOT NULL"))[0]:
        connection.execute("DELETE FROM facerec_negatives")


def _read_negatives(connection: psycopg.Connection, dimension: int) -> Negatives:
    """Every negative example (none in a database made before the table), checked before it is fetched."""
    if not _one_row(connection.execute("SELECT to_regclass('facerec_negatives') IS NOT NULL"))[0]:
        return Negatives.none(dimension)
    count, misfits, person = _one_row(connection.execute(
        "SELECT count(*), count(*) FILTER (WHERE octet_length(vector) <> %s), "
        "coalesce(max(octet_length(person)), 0) FROM facerec_negatives", (4 * dimension,)))
    if count > MAX_NEGATIVES:
        raise _Damaged(f"it holds {count:,} negative examples, more than the {MAX_NEGATIVES:,} it may have")
    if misfits:
        raise _Damaged(f"{plural(misfits, 'negative example')} of {count:,} not of the {dimension} numbers its model "
                       "record says")
    if person > MAX_PERSON_BYTES:
        raise _Damaged(f"a negative example's person is {person:,} bytes, more than the {MAX_PERSON_BYTES:,} one may have")
    rows = connection.execute("SELECT person, vector FROM facerec_negatives ORDER BY id").fetchall()
    names = [name for name, _ in rows]
    vectors = np.frombuffer(b"".join(bytes(vector) for _, vector in rows), _FLOAT32).reshape(len(rows), dimension)
    try:
        check_unit_vectors(vectors, names)
    except ValueError as error:
        raise _Damaged(f"a negative example: {error}") from None
    return Negatives(vectors.astype(np.float32), names)

"""Reading the gallery from the database, never trusting it: bounds checked in SQL before anything is fetched,
the vectors in blocks of ids by binary COPY, the model record and the negative examples checked before use."""

from __future__ import annotations

import itertools
import json
from typing import Any

import numpy as np
import psycopg

from ...catalogue import PROFILES
from ...errors import FacerecError
from ...gallery import MAX_DIMENSION, MAX_VALUES, MAX_VECTORS, check_unit_vectors
from ...names import MAX_NAME_BYTES
from ...text import plural, printable
from ..base import LEGACY_PROFILE, Gallery, Negatives, NoGalleryYet
from .database import Damaged, one_row
from .schema import (FLOAT32, MAX_RECORD_BYTES, SCHEMA_VERSION, TooLarge, check_version, gallery_record,
                     generation_of)

# Bounds on what a gallery read from the database may hold, checked in SQL before anything is fetched
# (the embeddings file's, see picklefile and names): a hostile row must not make a reader fetch gigabytes.
MAX_PERSON_BYTES = 4 * MAX_NAME_BYTES  # a folder name, every byte of it escaped as \\xNN at worst (writing.storable)
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



def _shown(text: str, limit: int = 60) -> str:
    """A value read from the database, for a one-line message: printable and short."""
    return printable(text[:limit]) + ("..." if len(text) > limit else "")


def model_record(record: Any) -> tuple[dict[str, Any], int]:
    """The models and the dimension of the gallery's model record, each checked before use."""
    if isinstance(record, TooLarge):
        raise Damaged(f"its model record is {record:,} bytes, more than the {MAX_RECORD_BYTES:,} one may have")
    models = record.get("models") if isinstance(record, dict) else None
    dimension = record.get("dimension") if isinstance(record, dict) else None
    if not isinstance(models, dict) or type(models.get("profile")) is not str or type(dimension) is not int:
        raise Damaged("its model record is not {\"models\": {\"profile\": ...}, \"dimension\": int}")
    if not 1 <= dimension <= MAX_DIMENSION:
        raise Damaged(f"its model record says vectors of {dimension:,} numbers, not 1 to {MAX_DIMENSION:,}")
    if models["profile"] not in PROFILES:
        raise Damaged(f"its model record names the model profile '{_shown(models['profile'])}', which this version "
                       f"of facerec does not know (it knows: {', '.join(sorted(PROFILES))})")
    return models, dimension


def _check_rows(connection: psycopg.Connection, origin: str | None, dimension: int) -> int:
    """Refuse (Damaged) a gallery (origin None: the images with a vector; else that origin's images) whose rows
    exceed the bounds above, or whose vectors are not `dimension` numbers, by one aggregate query: nothing of
    them is fetched. Returns how many vectors it has."""
    where = "vector IS NOT NULL" if origin is None else "origin = %(origin)s"
    vectors, images, misfits, person, key, place, status = one_row(connection.execute(
        _ROW_CHECK.format(where=where),
        {"bytes": 4 * dimension, "origin": origin}))
    if max(vectors, images) > MAX_VECTORS or vectors * dimension > MAX_VALUES:
        raise Damaged(f"it holds {max(vectors, images):,} images with {vectors:,} vectors of {dimension:,} numbers, "
                       f"more than the {MAX_VECTORS:,} vectors (or {MAX_VALUES:,} numbers) a gallery may have")
    if misfits:
        raise Damaged(f"{plural(misfits, 'vector')} of {vectors:,} {'is' if misfits == 1 else 'are'} not of the "
                       f"{dimension} numbers its model record says")
    for what, size, limit in (("a person's name", person, MAX_PERSON_BYTES), ("a photo's path", key, MAX_KEY_BYTES),
                              ("a dataset folder's name", place, MAX_ORIGIN_BYTES),
                              ("a photo's status", status, MAX_STATUS_BYTES)):
        if size > limit:
            raise Damaged(f"{what} is {size:,} bytes, more than the {limit:,} one may have")
    return vectors


# The gallery in blocks of consecutive ids, one row of COPY a block: its first id, how many vectors it has, its
# vectors end to end (one bytea) and its people and paths (one text: person, path, person, path... joined by
# chr(31)). A million vectors are a few hundred rows, not a million (the per-row cost is in Python), read in one
# pass over the table: the numbers as they are stored (float4[] sent a length before every number: twice the
# bytes, each parsed), and nothing sorted: each block's rows come from the primary key's index in id order, and
# PostgreSQL feeds an aggregate over a sorted subquery (nothing joined) its rows in that order. (ORDER BY inside
# the aggregate sorted every block's vectors anew, and a query of its own for the names sorted all million of


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
                raise Damaged("the server sent the gallery in an unexpected layout or order")
            listing_at = offset + 30 + max(length, 0)
            if len(data) < listing_at + 4:
                break
            listing_length = int.from_bytes(data[listing_at:listing_at + 4], "big", signed=True)
            if len(data) < listing_at + 4 + max(listing_length, 0):
                break
            if (length == -1) != (count == 0) or (listing_length == -1) != (count == 0):
                raise Damaged("the server sent the gallery in an unexpected layout or order")
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
            raise Damaged("the server sent the gallery in an unknown COPY format")
        self.header_read = True
        return 19 + int.from_bytes(data[15:19], "big")

    def _read_block(self, block: int, count: int, numbers: bytearray | memoryview,
                    listing: bytearray | memoryview) -> None:
        dimension = self.vectors.shape[1]
        if len(numbers) != 4 * dimension * count:
            raise Damaged(f"a vector after vector {self.done} is not of the {dimension} numbers its model record says")
        if self.done + count > len(self.vectors):
            raise Damaged("it holds more vectors than were counted")
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
            raise Damaged(f"the vectors did not arrive whole ({self.done} of {len(self.vectors)} read)")
        return self.vectors



def read_gallery(connection: psycopg.Connection, origin: str | None, location: str) -> tuple[Gallery, int | None]:
    """The gallery (origin None: every origin, paths "<origin>/<key>") or one origin's images (paths are keys,
    with their file records), read in one snapshot; and the gallery's generation."""
    with connection.transaction():
        connection.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        # the names of a million vectors are sorted in memory (about 100 MB), not on disk; JIT only adds time
        connection.execute("SET LOCAL work_mem = '256MB'")
        connection.execute("SET LOCAL jit = off")
        version = check_version(connection, location)
        if 0 < version < SCHEMA_VERSION:
            raise FacerecError(f"the gallery in {location} has schema version {version}, which this facerec "
                               f"reads once converted: the next enrolment by this version (extract_embeddings.py "
                               f"--embeddings {location}) converts it, once for every machine")
        gallery = gallery_record(connection) if version else None
        if gallery is None:
            if origin is None:
                raise NoGalleryYet(f"the gallery database {location} holds no gallery yet: enrol people with "
                                   f"extract_embeddings.py --embeddings {location}")
            return Gallery(np.zeros((0, 0), np.float32), [], [], LEGACY_PROFILE, {}, {},
                                  profile_recorded=False), None
        models, dimension = model_record(gallery)
        count = _check_rows(connection, origin, dimension)  # before any name, path or vector is fetched
        where, parameters = ("AND origin = %(origin)s", {"origin": origin}) if origin is not None else ("", {})
        path = "key" if origin is not None else "origin || '/' || key"
        copied = _CopiedGallery(count, dimension, connection.info.encoding)
        with connection.cursor().copy(_GALLERY_BLOCKS.format(size=_BLOCK_IDS, path=path, where=where),
                                      parameters or None) as copy:
            for chunk in copy:
                copied.feed(chunk)
        vectors = copied.result()
        names, paths = _listing(connection, copied, path, where, parameters)
        try:
            check_unit_vectors(vectors, names)
        except ValueError as error:
            raise Damaged(str(error)) from None
        files = {}
        if origin is not None:
            records = one_row(connection.execute(
                "SELECT coalesce(json_object_agg(key, json_build_object('size', size, 'mtime_ns', mtime_ns, "
                "'status', status)), '{}')::text FROM facerec_images WHERE origin = %s", (origin,)))[0]
            files = json.loads(records)
        negatives = read_negatives(connection, dimension) if origin is None else Negatives.none(dimension)
        generation = generation_of(connection)
    return Gallery(vectors, names, paths, models["profile"], models, files, negatives=negatives), generation


def _listing(connection: psycopg.Connection, copied: _CopiedGallery, path: str, where: str,
             parameters: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The person and path of every vector, by id: the blocks' listings, those that held the separator in a
    name or path read again as JSON (a JSON array of a million pairs took seconds to build and to parse)."""
    for block, place in copied.unsplit.items():
        pairs = json.loads(one_row(connection.execute(
            _BLOCK_LISTING.format(size=_BLOCK_IDS, path=path, where=where), {**parameters, "block": block}))[0])
        copied.names[place] = [person for person, _ in pairs]
        copied.paths[place] = [image for _, image in pairs]
    names = list(itertools.chain.from_iterable(copied.names))
    paths = list(itertools.chain.from_iterable(copied.paths))
    if len(names) != len(copied.vectors):
        raise Damaged(f"it holds {len(copied.vectors):,} vectors but {len(names):,} names")
    return names, paths


# Bounds on the negative examples a reader fetches (checked in SQL first, as _check_rows does for the images).
MAX_NEGATIVES = 1_000_000


def read_negatives(connection: psycopg.Connection, dimension: int) -> Negatives:
    """Every negative example (none in a database made before the table), checked before it is fetched."""
    if not negatives_table(connection):
        return Negatives.none(dimension)
    count, misfits, person = one_row(connection.execute(
        "SELECT count(*), count(*) FILTER (WHERE octet_length(vector) <> %s), "
        "coalesce(max(octet_length(person)), 0) FROM facerec_negatives", (4 * dimension,)))
    if count > MAX_NEGATIVES:
        raise Damaged(f"it holds {count:,} negative examples, more than the {MAX_NEGATIVES:,} it may have")
    if misfits:
        raise Damaged(f"{plural(misfits, 'negative example')} of {count:,} not of the {dimension} numbers its model "
                       "record says")
    if person > MAX_PERSON_BYTES:
        raise Damaged(f"a negative example's person is {person:,} bytes, more than the {MAX_PERSON_BYTES:,} one may have")
    # made_at: every facerec_negatives has had it since the table's first version (NOT NULL DEFAULT now());
    # one without it (made by hand) reads with no time known (NULL), as an old embeddings file does
    made = "extract(epoch FROM made_at)::float8" if negatives_dated(connection) else "NULL::float8"
    rows = connection.execute(f"SELECT person, vector, {made} FROM facerec_negatives ORDER BY id").fetchall()
    names = [name for name, _, _ in rows]
    vectors = np.frombuffer(b"".join(bytes(vector) for _, vector, _ in rows), FLOAT32).reshape(len(rows), dimension)
    times = np.array([np.nan if at is None else at for _, _, at in rows], np.float64)
    try:
        check_unit_vectors(vectors, names)
    except ValueError as error:
        raise Damaged(f"a negative example: {error}") from None
    return Negatives(vectors.astype(np.float32), names, times)


def negatives_table(connection: psycopg.Connection) -> bool:
    """Whether facerec_negatives exists (a database made before it has none)."""
    return bool(one_row(connection.execute("SELECT to_regclass('facerec_negatives') IS NOT NULL"))[0])


def negatives_dated(connection: psycopg.Connection) -> bool:
    """Whether facerec_negatives (which exists) has its made_at column."""
    return bool(one_row(connection.execute(
        "SELECT EXISTS (SELECT FROM pg_attribute WHERE attrelid = 'facerec_negatives'::regclass "
        "AND attname = 'made_at' AND NOT attisdropped)"))[0])


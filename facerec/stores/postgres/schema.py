"""The gallery database's tables: made if missing, their version checked, a version-1 gallery converted,
the generation counted and NOTIFY sent for every change.

Tables (made on the first enrolment or sighting log, in one transaction; a store whose
schema_version is newer than SCHEMA_VERSION is refused):

    facerec_meta       key text PRIMARY KEY, value jsonb
                       'schema_version': 2 (1: vectors were float4[]; the first enrolment by this version
                                         converts them, see upgrade; a reader of version 1 is told to)
                       'gallery':        {"models": <enrolment.models_identity>, "dimension": 128}
                       'generation':     a number every committed change of the gallery increments
    facerec_images     one row per image of a dataset folder on one machine:
                       id, origin ("<hostname>:<absolute dataset path>"), key (path in the dataset,
                       "obama/obama1.jpg"), person, size, mtime_ns, status, vector bytea (the vector's
                       float32 numbers, little-endian, 4 bytes each; NULL when the image was skipped), made_at; UNIQUE (origin, key)
    facerec_visits     what --log-sightings writes: one row per visit of a person (or an unknown face) to a
                       camera, the same visits MQTT and webhooks are told (events/presence.py): id, camera,
                       run (one recogniser's run), visit (its number in the run), name, unknown_group (NULL
                       but for a stranger of a kept group), arrived, "left" (NULL while the visit is open),
                       distance (at the arrival); UNIQUE (camera, run, visit). Made with the others, or by
                       the first sighting log in a database made before it: no schema_version change (an
                       older facerec ignores the table)
    facerec_sightings  the log of facerec before 2026-12 (one row per track and name: camera, run, track,
                       name, first_seen, last_seen, faces, best_distance), kept for its rows and for older
                       facerec; this one no longer writes it
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

from typing import Any

import numpy as np
import psycopg
from psycopg.types.json import Jsonb

from ...errors import FacerecError
from .database import Damaged, one_row

SCHEMA_VERSION = 2
CHANNEL = "facerec_gallery"
SCHEMA_LOCK = 0x66616365  # pg_advisory_xact_lock key: one process creates the tables at a time
MAX_RECORD_BYTES = 65_536  # the model record (profile, model names, sha256): a few hundred bytes
FLOAT32 = np.dtype("<f4")  # a vector's numbers as the vector columns store them

NEGATIVES_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS facerec_negatives (
           id bigserial PRIMARY KEY,
           person text NOT NULL,
           vector bytea NOT NULL,
           made_at timestamptz NOT NULL DEFAULT now())""",
)
VISITS_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS facerec_visits (
           id bigserial PRIMARY KEY,
           camera text NOT NULL,
           run uuid NOT NULL,
           visit bigint NOT NULL,
           name text NOT NULL,
           unknown_group bigint,
           arrived timestamptz NOT NULL,
           "left" timestamptz,
           distance real,
           UNIQUE (camera, run, visit))""",
    "CREATE INDEX IF NOT EXISTS facerec_visits_arrived ON facerec_visits (arrived)",
)
SCHEMA = (
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
    *NEGATIVES_SCHEMA,
    *VISITS_SCHEMA,
)


def stored(vector: np.ndarray) -> bytes:
    """A vector as the vector column holds it."""
    return np.asarray(vector, FLOAT32).tobytes()


class TooLarge(int):
    """Stands in for a model record larger than MAX_RECORD_BYTES (its size), which is not fetched."""


def create_schema(connection: psycopg.Connection, location: str) -> None:
    """Make the tables if missing (one process at a time) and check the version.

    Tables that exist are not made again: a role that may only write sightings (no CREATE on the schema,
    no INSERT into facerec_meta) can still log them. They are all made in one transaction, so facerec_meta
    there means every table is.
    """
    if check_version(connection, location):
        return
    with connection.transaction():
        connection.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
        for statement in SCHEMA:
            connection.execute(statement)
        connection.execute("INSERT INTO facerec_meta VALUES ('schema_version', %s), ('generation', '0') "
                           "ON CONFLICT (key) DO NOTHING", (Jsonb(SCHEMA_VERSION),))
        check_version(connection, location)


def check_version(connection: psycopg.Connection, location: str) -> int:
    """The schema version, 0 if the database has no facerec tables; FacerecError if they are of a newer schema."""
    if one_row(connection.execute("SELECT to_regclass('facerec_meta') IS NOT NULL"))[0] is False:
        return 0
    row = connection.execute("SELECT CASE WHEN jsonb_typeof(value) = 'number' AND octet_length(value::text) <= 19 "
                             "THEN value END FROM facerec_meta WHERE key = 'schema_version'").fetchone()
    version = row[0] if row else None
    if type(version) is not int or version < 1:
        raise Damaged("its schema_version is not a whole number from 1")
    if version > SCHEMA_VERSION:
        raise FacerecError(f"the gallery in {location} has schema version {version}, newer than this facerec "
                           f"knows ({SCHEMA_VERSION}): upgrade facerec on this machine")
    return version


def upgrade(connection: psycopg.Connection, location: str) -> None:
    """A writer converts a version-1 gallery (vectors as float4[]) to this version's layout, once, in one
    transaction: readers see the old tables or the new, never half; one writer converts, the others wait
    for it (the schema lock) and find it done. NULL numbers stay short vectors, which a reader refuses."""
    if check_version(connection, location) >= SCHEMA_VERSION:
        return
    with connection.transaction():
        connection.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
        if check_version(connection, location) >= SCHEMA_VERSION:
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
        changed(connection)  # a watcher that was told the old version is unreadable reads it now


def gallery_record(connection: psycopg.Connection, lock: str = "") -> Any:
    """The model record as stored (checked by reading.model_record before use); one too large is not fetched."""
    row = connection.execute(f"SELECT CASE WHEN octet_length(value::text) <= %s THEN value END, "
                             f"octet_length(value::text) FROM facerec_meta WHERE key = 'gallery' {lock}",
                             (MAX_RECORD_BYTES,)).fetchone()
    if row is None:
        return None
    return row[0] if row[1] <= MAX_RECORD_BYTES else TooLarge(row[1])


def changed(connection: psycopg.Connection) -> None:
    """In a transaction that changed the gallery: count the change and tell the watchers when it commits."""
    connection.execute("UPDATE facerec_meta SET value = to_jsonb((value #>> '{}')::bigint + 1) "
                       "WHERE key = 'generation'")
    connection.execute("SELECT pg_notify(%s, '')", (CHANNEL,))


def generation_of(connection: psycopg.Connection) -> int | None:
    row = connection.execute("SELECT CASE WHEN jsonb_typeof(value) = 'number' AND octet_length(value::text) <= 19 "
                             "THEN value END FROM facerec_meta WHERE key = 'generation'").fetchone()
    if row is not None and type(row[0]) is not int:
        raise Damaged("its generation is not a whole number")
    return row[0] if row else None

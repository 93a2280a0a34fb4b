"""Sightings in the gallery database: the visits each camera saw (table facerec_visits, one row a visit: its
arrival written when it begins, its departure added when it ends), written about once a second from a
thread, kept while the database is lost."""

from __future__ import annotations

import sys
import threading
import time
import uuid
from collections import OrderedDict

import psycopg

from ...errors import FacerecError
from ..base import Sighting, SightingLog
from .database import CONNECT_TIMEOUT, RETRY_SECONDS, Database, one_row
from .schema import SCHEMA_LOCK, VISITS_SCHEMA, create_schema

SIGHTING_BATCH_SECONDS = 1.0
MAX_QUEUED_SIGHTINGS = 10_000  # rows (a visit is one row however long it lasts) kept while the database is lost
CLOSE_WAIT_SECONDS = 5.0


def open_sighting_log(database: Database, camera: str) -> PostgresSightingLog:
    """The sighting log of `camera`, once the tables exist and the role may add and update its rows."""
    def check(connection: psycopg.Connection) -> None:
        create_schema(connection, database.location)
        if one_row(connection.execute("SELECT to_regclass('facerec_visits') IS NULL"))[0]:
            with connection.transaction():  # a database made before the table: made once, by whoever comes first
                connection.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
                for statement in VISITS_SCHEMA:
                    connection.execute(statement)
        # refused now, not by the background writer later: the role must be able to add and update rows
        allowed = one_row(connection.execute("SELECT has_table_privilege('facerec_visits', 'INSERT') "
                                             "AND has_table_privilege('facerec_visits', 'UPDATE')"))[0]
        if not allowed:
            raise FacerecError(f"cannot keep sightings in the gallery database at {database._server} "
                               f"({database.location}): permission denied: this role may not INSERT and UPDATE "
                               "facerec_visits")

    database._using("keep sightings in", check)
    return PostgresSightingLog(database, camera)


class PostgresSightingLog(SightingLog):
    """Queues visits (a visit's arrival and departure one row) and writes them about once a second from a thread.

    While the database is lost the rows stay queued, at most MAX_QUEUED_SIGHTINGS (the
    oldest are dropped, with one warning), and are written when it is back.
    """

    def __init__(self, store: Database, camera: str) -> None:
        self._store = store
        self._camera = camera
        self._run = uuid.uuid4()
        self._lock = threading.Lock()
        self._queued: OrderedDict[int, Sighting] = OrderedDict()  # visit number -> its row as last told
        self._dropped = 0
        self._warned_lost = False
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._run_writer, name="facerec-sightings", daemon=True)
        self._thread.start()

    def log(self, sighting: Sighting) -> None:
        with self._lock:
            self._merge(sighting)

    def _merge(self, sighting: Sighting) -> None:
        """Queue `sighting` (under the lock): a departure replaces its visit's queued arrival, where it was in
        the queue; drop the oldest row when the queue is full."""
        if sighting.visit not in self._queued and len(self._queued) >= MAX_QUEUED_SIGHTINGS:
            self._queued.popitem(last=False)
            if not self._dropped:
                print(f"warning: more than {MAX_QUEUED_SIGHTINGS} sightings wait for the database "
                      f"{self._store.location}: the oldest are dropped", file=sys.stderr)
            self._dropped += 1
        self._queued[sighting.visit] = sighting

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
                    for sighting in (*batch.values(), *newer.values()):
                        self._merge(sighting)
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

    def _write(self, connection: psycopg.Connection, batch: OrderedDict[int, Sighting]) -> None:
        """One transaction: a visit's row is added at its arrival, and completed (left) at its departure."""
        rows = list(batch.values())
        with connection.transaction():
            connection.execute(
                'INSERT INTO facerec_visits (camera, run, visit, name, unknown_group, arrived, "left", distance) '
                "SELECT %s, %s, visit, name, unknown_group, to_timestamp(arrived), to_timestamp(departed), distance "
                "FROM unnest(%s::bigint[], %s::text[], %s::bigint[], %s::float8[], %s::float8[], %s::float4[]) "
                "AS batch(visit, name, unknown_group, arrived, departed, distance) "
                'ON CONFLICT (camera, run, visit) DO UPDATE SET "left" = coalesce(EXCLUDED."left", facerec_visits."left")',
                (self._camera, self._run, [row.visit for row in rows], [row.name for row in rows],
                 [row.unknown_group for row in rows], [row.arrived for row in rows], [row.left for row in rows],
                 [row.distance for row in rows]))

"""Sightings in the gallery database: who each camera saw, a track one row (first and last seen, faces, best
distance), written about once a second from a thread, kept while the database is lost."""

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
from .schema import create_schema

SIGHTING_BATCH_SECONDS = 1.0
MAX_QUEUED_SIGHTINGS = 10_000  # rows (a track is one row however long it lasts) kept while the database is lost
CLOSE_WAIT_SECONDS = 5.0


def open_sighting_log(database: Database, camera: str) -> PostgresSightingLog:
    """The sighting log of `camera`, once the tables exist and the role may add and update its rows."""
    def check(connection: psycopg.Connection) -> None:
        create_schema(connection, database.location)
        # refused now, not by the background writer later: the role must be able to add and update rows
        allowed = one_row(connection.execute("SELECT has_table_privilege('facerec_sightings', 'INSERT') "
                                             "AND has_table_privilege('facerec_sightings', 'UPDATE')"))[0]
        if not allowed:
            raise FacerecError(f"cannot keep sightings in the gallery database at {database._server} "
                               f"({database.location}): permission denied: this role may not INSERT and UPDATE "
                               "facerec_sightings")

    database._using("keep sightings in", check)
    return PostgresSightingLog(database, camera)


class PostgresSightingLog(SightingLog):
    """Queues sightings (merging a track's into one row) and writes them about once a second from a thread.

    While the database is lost the rows stay queued, at most MAX_QUEUED_SIGHTINGS (the
    oldest are dropped, with one warning), and are written when it is back.
    """

    def __init__(self, store: Database, camera: str) -> None:
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


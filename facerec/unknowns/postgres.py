"""Unknown faces in the PostgreSQL database of the gallery: every camera's recogniser adds to the same tables,
so the groups pool what all of them saw.

Tables (made by the first change, in one transaction; their own schema version, in facerec_unknown_meta):

    facerec_unknown_meta    key text PRIMARY KEY, value jsonb
                            'schema_version': 1; 'profile': the model the vectors are of (set by the first
                            track kept; another model is refused while tracks are kept); 'retention_days':
                            the retention of the last writer that gave one (every other applies it)
    facerec_unknown_groups  id bigserial, state 'open' | 'ignored' (ids are never reused)
    facerec_unknown_tracks  id bigserial, group_id (ON DELETE CASCADE), camera, track, run (a uuid of its own:
                            the sighting's run once named), first_seen, last_seen (seconds since the epoch),
                            video jsonb (NULL but for a track of a video file: {"file", "first", "last"}, its
                            name and the positions in seconds of the track's first and last frames; added by
                            the first change in a database made before it: no schema_version change, an older
                            facerec ignores the column and a read of a table without it finds no positions)
    facerec_unknown_faces   id bigserial, track_id (ON DELETE CASCADE), quality, seen, vector bytea (float32,
                            little-endian), jpeg bytea (NULL once the group is ignored: the vector stays as a
                            negative)

Each method is one transaction; those that change anything first take a transaction-level advisory lock
(_UNKNOWNS_LOCK): writers take turns, readers never wait. A named group leaves these tables: its tracks
become rows of facerec_sightings (camera, the track's own run, track, the name, first and last seen, faces
kept, best_distance 0: a person named it), and its visits in facerec_visits (--log-sightings) take the name.
A forget deletes the rows and then rewrites the faces' table (VACUUM FULL: it and its TOAST table get new files,
the old ones are deleted), so the deleted crops do not linger in the table's files (docs/unknown-people.md says
what the write-ahead log and backups keep).
"""

from __future__ import annotations

import contextlib
import threading
import uuid
from typing import Callable, Iterator, TypeVar

import numpy as np
import psycopg
from psycopg.types.json import Jsonb

from ..errors import FacerecError, record_kept
from ..stores.base import take_turn
from ..stores.postgres import PostgresStore
from .aging import NegativesAging
from .grouping import regroup as regroup_tracks
from .rules import (DAY_SECONDS, MAX_TEXT, track_faces, Placement, Settings, faces_to_drop, place_track, stable_ids,
                    video_problem, video_spans)
from .store import FACES_PER_TRACK, KeptFace, KeptTrack, NoSuchGroup, UnknownGroup, UnknownStore, VideoSpan

SCHEMA_VERSION = 1
_UNKNOWNS_LOCK = 0x66616375  # pg_advisory_xact_lock key: one change of the unknowns at a time
MAX_CROP_BYTES = 4 * 2**20  # a crop larger than this is not fetched (filestore's bound)
_T = TypeVar("_T")

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS facerec_unknown_meta (key text PRIMARY KEY, value jsonb NOT NULL)",
    """CREATE TABLE IF NOT EXISTS facerec_unknown_groups (
           id bigserial PRIMARY KEY,
           state text NOT NULL CHECK (state IN ('open', 'ignored')))""",
    """CREATE TABLE IF NOT EXISTS facerec_unknown_tracks (
           id bigserial PRIMARY KEY,
           group_id bigint NOT NULL REFERENCES facerec_unknown_groups ON DELETE CASCADE,
           camera text NOT NULL,
           track bigint NOT NULL,
           run uuid NOT NULL,
           first_seen float8 NOT NULL,
           last_seen float8 NOT NULL,
           video jsonb)""",
    "CREATE INDEX IF NOT EXISTS facerec_unknown_tracks_group ON facerec_unknown_tracks (group_id)",
    """CREATE TABLE IF NOT EXISTS facerec_unknown_faces (
           id bigserial PRIMARY KEY,
           track_id bigint NOT NULL REFERENCES facerec_unknown_tracks ON DELETE CASCADE,
           quality real NOT NULL,
           seen float8 NOT NULL,
           vector bytea NOT NULL,
           jpeg bytea)""",
    "CREATE INDEX IF NOT EXISTS facerec_unknown_faces_track ON facerec_unknown_faces (track_id)",
)
_TABLES = "SELECT to_regclass('facerec_unknown_meta') IS NOT NULL"
_VIDEO_COLUMN = ("SELECT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = 'facerec_unknown_tracks'::regclass "
                 "AND attname = 'video' AND NOT attisdropped)")


def _video(value: object) -> VideoSpan | None:
    """A track's video column as a VideoSpan; None for NULL or one that is not (the bounds of every write)."""
    if not (isinstance(value, dict) and set(value) == {"file", "first", "last"}):
        return None
    video = VideoSpan(value["file"], value["first"], value["last"])
    return video if video_problem(video) is None else None


def _video_column(connection: psycopg.Connection, add: bool = False) -> bool:
    """Whether the tracks' table has its video column; `add`: adding it to a table made before it (in a savepoint:
    a role that does not own the table keeps its tracks without positions, as before)."""
    if connection.execute(_VIDEO_COLUMN).fetchone()[0]:  # type: ignore[index]
        return True
    if add:
        with contextlib.suppress(psycopg.errors.InsufficientPrivilege), connection.transaction():
            connection.execute("ALTER TABLE facerec_unknown_tracks ADD COLUMN IF NOT EXISTS video jsonb")
            return True
    return False


def _vector(data: bytes, dimension: int) -> np.ndarray:
    return np.frombuffer(data, "<f4", count=dimension).astype(np.float32)


class PostgresUnknowns(UnknownStore):
    """The unknowns kept in the gallery's database at `url` (see the top of this module)."""

    def __init__(self, url: str, settings: Settings) -> None:
        self._gallery = PostgresStore(url)  # its connection, reconnection and masked messages
        self.location = self._gallery.location
        self.settings = settings
        self._negatives = NegativesAging(lambda: contextlib.nullcontext(self._gallery), settings,
                                        lambda: self._read(lambda connection: None, None))
        # held(): the writers' lock at session level on the store's connection (the transactions' own lock on the
        # same key is then granted to it at once); other threads of this process wait here.
        self._turn = threading.RLock()
        self._holding = False

    # --- transactions ---

    def _read(self, work: Callable[[psycopg.Connection], _T], empty: _T) -> _T:
        """`work` in a read-only transaction (REPEATABLE READ: one snapshot); `empty` when there are no tables."""
        def read(connection: psycopg.Connection) -> _T:
            with connection.transaction():
                connection.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                if not connection.execute(_TABLES).fetchone()[0]:  # type: ignore[index]
                    return empty
                self._check_version(connection)
                self._retention(connection, write=False)
                return work(connection)

        return self._gallery._using("read the unknown faces in", read)

    def _change(self, work: Callable[[psycopg.Connection], _T], vacuum: bool = False) -> _T:
        """`work` in one transaction, under the writers' lock, with the tables made if missing; the bounds
        applied before it and before it commits."""
        def change(connection: psycopg.Connection) -> _T:
            with connection.transaction():
                self._take_turn(connection, "pg_try_advisory_xact_lock")
                if not connection.execute(_TABLES).fetchone()[0]:  # type: ignore[index]
                    for statement in _SCHEMA:
                        connection.execute(statement)
                    connection.execute("INSERT INTO facerec_unknown_meta VALUES ('schema_version', %s)",
                                       (Jsonb(SCHEMA_VERSION),))
                self._check_version(connection)
                self._retention(connection, write=True)
                dropped = self._bound(connection)  # the work sees no face past the bounds
                result = work(connection)
                self.settings.dropped_oldest(dropped + self._bound(connection), self.location)
            record_kept(f"unknowns {self.location}", f"the unknown faces in {self.location} changed")
            if vacuum:
                with contextlib.suppress(psycopg.Error):  # another role's table: its owner's autovacuum does it
                    # FULL: the table and its TOAST table are rewritten into new files, the old ones deleted; a
                    # plain VACUUM only marks the dead rows' space free, the crops' bytes stay in the files
                    connection.execute("VACUUM FULL facerec_unknown_faces")
            return result

        with self._turn:
            result = self._gallery._using("keep unknown faces in", change)
        self._negatives.apply(always=False)
        return result

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        with self._turn:
            if self._holding:
                yield
                return
            self._gallery._using("keep unknown faces in",
                                 lambda connection: self._take_turn(connection, "pg_try_advisory_lock"))
            self._holding = True
            try:
                yield
            finally:
                self._holding = False
                with contextlib.suppress(FacerecError):  # a lost connection let it go already
                    self._gallery._using("keep unknown faces in", lambda connection: connection.execute(
                        "SELECT pg_advisory_unlock(%s)", (_UNKNOWNS_LOCK,)))

    def _take_turn(self, connection: psycopg.Connection, function: str) -> None:
        """Take the writers' lock (`function`: at transaction or session level), waiting as long as it takes and
        saying once for whom (as the file store's writers do)."""
        def holder() -> str:
            row = connection.execute(
                "SELECT a.application_name, a.pid FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid WHERE "
                "l.locktype = 'advisory' AND l.objid = %s::oid AND l.objsubid = 1 AND l.granted AND a.pid <> "
                "pg_backend_pid()", (_UNKNOWNS_LOCK,)).fetchone()
            return f"another process ({row[0] or 'a client'}, server pid {row[1]})" if row else "another process"

        take_turn(lambda: bool(connection.execute(f"SELECT {function}(%s)", (_UNKNOWNS_LOCK,)).fetchone()[0]),  # type: ignore[index]
                  holder, f"the unknown faces in {self.location}", None)

    def _retention(self, connection: psycopg.Connection, write: bool) -> None:
        """Adopt the retention kept in facerec_unknown_meta (Settings.kept_retention); `write`: keep this run's
        there when it gave one."""
        row = connection.execute("SELECT value FROM facerec_unknown_meta WHERE key = 'retention_days'").fetchone()
        days = self.settings.kept_retention(None if row is None else row[0])
        if write and self.settings.retention_given and (row is None or row[0] != days):
            connection.execute("INSERT INTO facerec_unknown_meta VALUES ('retention_days', %s) ON CONFLICT (key) DO "
                               "UPDATE SET value = EXCLUDED.value", (Jsonb(days),))

    @staticmethod
    def _check_version(connection: psycopg.Connection) -> None:
        row = connection.execute("SELECT value FROM facerec_unknown_meta WHERE key = 'schema_version'").fetchone()
        if row is None or type(row[0]) is not int or row[0] > SCHEMA_VERSION:
            raise FacerecError(f"the unknown faces' tables are of schema version {row and row[0]!r}, not one this "
                               f"facerec knows ({SCHEMA_VERSION}): upgrade facerec on this machine")

    def _cutoff(self) -> float:
        return self.settings.clock() - self.settings.retention_days * DAY_SECONDS

    def _bound(self, connection: psycopg.Connection) -> int:
        """Apply the retention and the maximum (rules.faces_to_drop); how many faces went for the maximum."""
        connection.execute("DELETE FROM facerec_unknown_tracks WHERE last_seen < %s", (self._cutoff(),))
        rows = connection.execute("SELECT id, seen FROM facerec_unknown_faces").fetchall()
        ids = np.array([row[0] for row in rows], np.int64)
        drop, excess = faces_to_drop(np.array([row[1] for row in rows]), ids, self.settings.clock(),
                                     self.settings.max_faces, self.settings.retention_days)
        if drop.any():
            connection.execute("DELETE FROM facerec_unknown_faces WHERE id = ANY(%s)", (ids[drop].tolist(),))
        connection.execute("DELETE FROM facerec_unknown_tracks t WHERE NOT EXISTS "
                           "(SELECT FROM facerec_unknown_faces f WHERE f.track_id = t.id)")
        connection.execute("DELETE FROM facerec_unknown_groups g WHERE NOT EXISTS "
                           "(SELECT FROM facerec_unknown_tracks t WHERE t.group_id = g.id)")
        return excess

    def _profile(self, connection: psycopg.Connection, dimension: int) -> None:
        """Refuse vectors of another model or size than those kept; the first track kept sets them."""
        row = connection.execute("SELECT value FROM facerec_unknown_meta WHERE key = 'profile'").fetchone()
        kept = connection.execute("SELECT EXISTS (SELECT FROM facerec_unknown_tracks)").fetchone()[0]  # type: ignore[index]
        wanted = {"profile": self.settings.profile, "dimension": dimension}
        if row is not None and kept and row[0] != wanted:
            raise FacerecError(f"the unknown faces in {self.location} are vectors of {row[0]}, not {wanted}: use "
                               "that --model, or `unknowns.py forget --all` first")
        connection.execute("INSERT INTO facerec_unknown_meta VALUES ('profile', %s) ON CONFLICT (key) DO UPDATE "
                           "SET value = EXCLUDED.value", (Jsonb(wanted),))

    def _state(self, connection: psycopg.Connection, group: int, lock: bool = False) -> str | None:
        row = connection.execute("SELECT state FROM facerec_unknown_groups WHERE id = %s"
                                 + (" FOR UPDATE" if lock else ""), (group,)).fetchone()
        return None if row is None else row[0]

    def _open_group(self, connection: psycopg.Connection, group: int, lock: bool = True) -> None:
        if self._state(connection, group, lock) != "open":
            raise NoSuchGroup(group)

    # --- the interface ---

    def add(self, track: KeptTrack) -> int | None:
        faces, vectors = track_faces(track)
        dimension = vectors.shape[1]

        def add(connection: psycopg.Connection) -> int | None:
            self._profile(connection, dimension)
            placement = self._placement(connection, vectors)
            if not placement.kept:
                return None
            group = placement.group
            if group is None:
                group = connection.execute("INSERT INTO facerec_unknown_groups (state) VALUES ('open') "
                                           "RETURNING id").fetchone()[0]  # type: ignore[index]
            video = None if track.video is None or not _video_column(connection, add=True) else Jsonb(
                {"file": track.video.file, "first": float(track.video.first), "last": float(track.video.last)})
            number = connection.execute(
                "INSERT INTO facerec_unknown_tracks (group_id, camera, track, run, first_seen, last_seen"
                f"{', video' if video is not None else ''}) VALUES (%s, %s, %s, %s, %s, %s"
                f"{', %s' if video is not None else ''}) RETURNING id",
                (group, track.camera[:MAX_TEXT], int(track.track), uuid.uuid4(), float(track.first_seen),
                 float(track.last_seen), *([video] if video is not None else []))).fetchone()[0]  # type: ignore[index]
            with connection.cursor() as cursor:
                cursor.executemany("INSERT INTO facerec_unknown_faces (track_id, quality, seen, vector, jpeg) "
                                   "VALUES (%s, %s, %s, %s, %s)",
                                   [(number, float(face.quality), float(face.seen), np.asarray(vector, "<f4").tobytes(),
                                     face.jpeg) for face, vector in zip(faces, vectors)])
            return int(group)

        return self._change(add)

    def _placement(self, connection: psycopg.Connection, vectors: np.ndarray) -> Placement:
        dimension = vectors.shape[1]
        rows = connection.execute(
            "SELECT f.vector, t.group_id, g.state = 'ignored' FROM facerec_unknown_faces f "
            "JOIN facerec_unknown_tracks t ON t.id = f.track_id JOIN facerec_unknown_groups g ON g.id = t.group_id "
            "WHERE f.seen >= %s AND t.last_seen >= %s AND octet_length(f.vector) = %s",
            (self._cutoff(), self._cutoff(), 4 * dimension)).fetchall()
        kept = np.array([_vector(row[0], dimension) for row in rows], np.float32).reshape(len(rows), dimension)
        return place_track(vectors, kept, np.array([row[1] for row in rows], np.int64),
                           np.array([row[2] for row in rows], bool), self.settings.threshold, self.settings.margin)

    def group_of(self, vectors: np.ndarray) -> int | None:
        vectors = np.atleast_2d(np.asarray(vectors, np.float32))

        def read(connection: psycopg.Connection) -> int | None:
            placement = self._placement(connection, vectors)
            if not placement.kept or placement.group is None:
                return None
            state = connection.execute("SELECT state FROM facerec_unknown_groups WHERE id = %s",
                                       (placement.group,)).fetchone()
            return placement.group if state is not None and state[0] == "open" else None

        return self._read(read, None)

    def groups(self) -> list[UnknownGroup]:
        def read(connection: psycopg.Connection) -> list[UnknownGroup]:
            cutoff = self._cutoff()
            rows = connection.execute(
                "SELECT t.group_id, sum(f.faces)::bigint, count(*), min(t.first_seen), max(t.last_seen), "
                "array_agg(DISTINCT left(t.camera, %s)) "
                "FROM facerec_unknown_tracks t JOIN facerec_unknown_groups g ON g.id = t.group_id AND g.state = 'open' "
                "JOIN (SELECT track_id, count(*) AS faces FROM facerec_unknown_faces WHERE seen >= %s "
                "GROUP BY track_id) f ON f.track_id = t.id WHERE t.last_seen >= %s GROUP BY t.group_id",
                (MAX_TEXT, cutoff, cutoff)).fetchall()
            videos: dict[int, list[VideoSpan | None]] = {}
            if _video_column(connection):
                for group_id, value in connection.execute(
                        "SELECT t.group_id, CASE WHEN octet_length(t.video::text) <= %s THEN t.video END "
                        "FROM facerec_unknown_tracks t JOIN facerec_unknown_groups g "
                        "ON g.id = t.group_id AND g.state = 'open' WHERE t.last_seen >= %s", (4 * MAX_TEXT, cutoff)).fetchall():
                    videos.setdefault(int(group_id), []).append(_video(value))  # None: a live camera's track
            groups = [UnknownGroup(int(row[0]), int(row[1]), int(row[2]), float(row[3]), float(row[4]),
                                   tuple(sorted(row[5])), video_spans(videos.get(int(row[0]), [])),
                                   None in videos.get(int(row[0]), [None]))
                      for row in rows]
            return sorted(groups, key=lambda g: (-g.faces, -g.tracks, -g.last_seen, g.group))

        return self._read(read, [])

    def best_faces(self, group: int, limit: int = FACES_PER_TRACK) -> list[KeptFace]:
        def read(connection: psycopg.Connection) -> list[KeptFace]:
            self._open_group(connection, group, lock=False)
            rows = connection.execute(
                "SELECT f.jpeg, f.vector, f.quality, f.seen FROM facerec_unknown_faces f "
                "JOIN facerec_unknown_tracks t ON t.id = f.track_id WHERE t.group_id = %s AND f.jpeg IS NOT NULL "
                "AND octet_length(f.jpeg) <= %s AND f.seen >= %s AND t.last_seen >= %s "
                "ORDER BY f.quality DESC, f.seen DESC, f.id LIMIT %s",
                (group, MAX_CROP_BYTES, self._cutoff(), self._cutoff(), limit)).fetchall()
            if not rows:  # its faces are past the retention: gone, as the next change drops them
                raise NoSuchGroup(group)
            return [KeptFace(bytes(row[0]), np.frombuffer(row[1], "<f4").astype(np.float32), float(row[2]),
                             float(row[3])) for row in rows]

        faces = self._read(read, None)
        if faces is None:  # no tables yet
            raise NoSuchGroup(group)
        return faces

    def ignore(self, group: int) -> None:
        def ignore(connection: psycopg.Connection) -> None:
            self._open_group(connection, group)
            connection.execute("UPDATE facerec_unknown_groups SET state = 'ignored' WHERE id = %s", (group,))
            connection.execute("UPDATE facerec_unknown_faces SET jpeg = NULL WHERE track_id IN "
                               "(SELECT id FROM facerec_unknown_tracks WHERE group_id = %s)", (group,))

        self._change(ignore, vacuum=True)

    def merge(self, into: int, other: int) -> None:
        def merge(connection: psycopg.Connection) -> None:
            self._open_group(connection, into)
            self._open_group(connection, other)
            if into == other:
                raise FacerecError(f"cannot merge group {into} with itself")
            connection.execute("UPDATE facerec_unknown_tracks SET group_id = %s WHERE group_id = %s", (into, other))
            connection.execute("DELETE FROM facerec_unknown_groups WHERE id = %s", (other,))

        self._change(merge)

    def named(self, group: int, person: str) -> None:
        def named(connection: psycopg.Connection) -> None:
            self._open_group(connection, group)
            if connection.execute("SELECT to_regclass('facerec_sightings') IS NOT NULL").fetchone()[0]:  # type: ignore[index]
                connection.execute(
                    "INSERT INTO facerec_sightings (camera, run, track, name, first_seen, last_seen, faces, "
                    "best_distance) SELECT t.camera, t.run, t.track, %s, to_timestamp(t.first_seen), "
                    "to_timestamp(t.last_seen), (SELECT count(*) FROM facerec_unknown_faces f WHERE f.track_id = t.id), "
                    "0 FROM facerec_unknown_tracks t WHERE t.group_id = %s ON CONFLICT DO NOTHING", (person, group))
            if connection.execute("SELECT to_regclass('facerec_visits') IS NOT NULL").fetchone()[0]:  # type: ignore[index]
                # the group's visits logged by --log-sightings (a stranger seen before) are that person's now
                connection.execute("UPDATE facerec_visits SET name = %s WHERE unknown_group = %s", (person, group))
            connection.execute("DELETE FROM facerec_unknown_groups WHERE id = %s", (group,))

        self._change(named, vacuum=True)

    def forget(self, group: int | None) -> int:
        def forget(connection: psycopg.Connection) -> int:
            if group is not None and self._state(connection, group, lock=True) is None:
                raise NoSuchGroup(group, "kept")
            which = "" if group is None else " WHERE t.group_id = %(group)s"
            count = connection.execute("SELECT count(*) FROM facerec_unknown_faces f JOIN facerec_unknown_tracks t "
                                       "ON t.id = f.track_id" + which, {"group": group}).fetchone()[0]  # type: ignore[index]
            connection.execute("DELETE FROM facerec_unknown_groups"
                               + ("" if group is None else " WHERE id = %(group)s"), {"group": group})
            return int(count)

        return self._change(forget, vacuum=True)

    def regroup(self) -> None:
        def regroup(connection: psycopg.Connection) -> None:
            rows = connection.execute(
                "SELECT t.id, t.group_id, f.vector FROM facerec_unknown_faces f "
                "JOIN facerec_unknown_tracks t ON t.id = f.track_id JOIN facerec_unknown_groups g ON g.id = t.group_id "
                "WHERE g.state = 'open' AND octet_length(f.vector) = (SELECT (value ->> 'dimension')::int * 4 "
                "FROM facerec_unknown_meta WHERE key = 'profile') ORDER BY t.id, f.id").fetchall()
            tracks: dict[int, tuple[int, list[np.ndarray]]] = {}
            for track, group, vector in rows:
                tracks.setdefault(track, (group, []))[1].append(np.frombuffer(vector, "<f4"))
            if not tracks:
                return
            labels = regroup_tracks([np.array(vectors) for _, vectors in tracks.values()], self.settings.threshold,
                                    self.settings.margin)

            def new_group() -> int:
                return connection.execute("INSERT INTO facerec_unknown_groups (state) VALUES ('open') "
                                          "RETURNING id").fetchone()[0]  # type: ignore[index]

            ids = stable_ids([group for group, _ in tracks.values()], labels, new_group)
            connection.execute("UPDATE facerec_unknown_tracks t SET group_id = n.group_id "
                               "FROM unnest(%s::bigint[], %s::bigint[]) AS n(id, group_id) WHERE t.id = n.id",
                               (list(tracks), ids))

        self._change(regroup)

    def expire_negatives(self) -> int:
        return self._negatives.apply()

    def close(self) -> None:
        self._gallery.close()


#!/usr/bin/env python3
"""What keeping unknown faces costs at the store's bound: one track kept (UnknownStore.add) and the groups listed
(groups()) with --faces faces already kept (default 20,000, store.MAX_FACES), in tracks of 5, each its own group
(random 128-d unit vectors, 8 kB crops): the file store beside an embeddings file, and with --url PostgreSQL.

    python bench/unknown_store.py
    python bench/unknown_store.py --url postgresql://postgres@127.0.0.1:PORT/DB   # an empty, throwaway database

The stores are filled directly (the file's index written whole, PostgreSQL's rows in one transaction), then
--repeat tracks are added through the API; the median is printed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from facerec.unknowns import FACES_PER_TRACK, MAX_FACES, KeptFace, KeptTrack, UnknownStore, open_unknowns  # noqa: E402
from facerec.unknowns.filestore import INDEX, _Face, _serialise, _State, _Track, unknowns_folder  # noqa: E402

CROP = bytes(8000)


def unit_vectors(rng: np.random.Generator, count: int) -> np.ndarray:
    vectors = rng.normal(size=(count, 128)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def fill_file(location: str, tracks: int, rng: np.random.Generator, now: float) -> None:
    folder = unknowns_folder(location)
    folder.mkdir(parents=True)
    state = _State("sface", 128)
    for number in range(tracks):
        group, track = state.new_id(0), state.new_id(1)
        state.groups[group] = ("open", None)
        state.tracks[track] = _Track(track, group, "door", number, now, now)
        for vector in unit_vectors(rng, FACES_PER_TRACK):
            face = state.new_id(2)
            state.faces[face] = _Face(face, track, 0.5, now, True, vector)
            (folder / f"{face}.jpg").write_bytes(CROP)
    (folder / INDEX).write_bytes(_serialise(state))


def fill_postgres(url: str, tracks: int, rng: np.random.Generator, now: float) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as connection, connection.transaction():
        for number in range(tracks):
            group = connection.execute("INSERT INTO facerec_unknown_groups (state) VALUES ('open') RETURNING id"
                                       ).fetchone()[0]
            track = connection.execute(
                "INSERT INTO facerec_unknown_tracks (group_id, camera, track, run, first_seen, last_seen) "
                "VALUES (%s, 'door', %s, %s, %s, %s) RETURNING id", (group, number, uuid.uuid4(), now, now)).fetchone()[0]
            connection.cursor().executemany(
                "INSERT INTO facerec_unknown_faces (track_id, quality, seen, vector, jpeg) VALUES (%s, 0.5, %s, %s, %s)",
                [(track, now, vector.astype("<f4").tobytes(), CROP) for vector in unit_vectors(rng, FACES_PER_TRACK)])


def timed(store: UnknownStore, rng: np.random.Generator, now: float, repeat: int) -> tuple[float, float]:
    """Median seconds of add, then of groups()."""
    adds, lists = [], []
    for number in range(repeat):
        track = KeptTrack("door", 10**6 + number, now, now,
                          tuple(KeptFace(CROP, vector, 0.5, now) for vector in unit_vectors(rng, FACES_PER_TRACK)))
        start = time.perf_counter()
        store.add(track)
        adds.append(time.perf_counter() - start)
        start = time.perf_counter()
        store.groups()
        lists.append(time.perf_counter() - start)
    return float(np.median(adds)), float(np.median(lists))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--faces", type=int, default=MAX_FACES)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--url", help="also PostgreSQL: an empty database it may fill")
    args = parser.parse_args()
    tracks = args.faces // FACES_PER_TRACK
    rng, now = np.random.default_rng(0), time.time()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        location = str(Path(folder) / "embeddings.pickle")
        fill_file(location, tracks, rng, now)
        with open_unknowns(location, "sface", max_faces=10**9) as store:
            rows.append(("embeddings file", *timed(store, rng, now, args.repeat)))
    if args.url:
        with open_unknowns(args.url, "sface", max_faces=10**9) as store:
            store.forget(None)  # makes the tables
            fill_postgres(args.url, tracks, rng, now)
            rows.append(("PostgreSQL", *timed(store, rng, now, args.repeat)))
    print(f"{tracks * FACES_PER_TRACK:,} faces kept ({tracks:,} tracks), median of {args.repeat}")
    print(f"{'store':<16} {'add (ms)':>9} {'groups() (ms)':>14}")
    for name, add, listing in rows:
        print(f"{name:<16} {1000 * add:>9.0f} {1000 * listing:>14.0f}")


if __name__ == "__main__":
    main()

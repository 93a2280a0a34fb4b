"""The gallery in PostgreSQL (facerec/stores/postgres/), against a real server started for the tests.

The server is tests/postgres_server.py's: initdb + pg_ctl in a temporary folder, on a
free loopback port; each test has a database of its own. Writers that must run at the
same time, or be killed, are real processes driving the Store API (WRITER below).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from conftest import PROJECT_ROOT, REQUIRE_ASSETS, shared_path
from postgres_server import PASSWORD, PASSWORD_ROLE, database_url, postgres_server  # noqa: F401 (fixtures)
from test_sface import known_store, models  # noqa: F401 (fixtures: extract_embeddings.py --model sface, the networks)

from facerec.catalogue import PROFILES
from facerec.enrolment import embed_face
from facerec.errors import FacerecError
from facerec.images import read_image
from facerec.matching import UNKNOWN, make_matcher
from facerec.stores import Gallery, GalleryCounts, Sighting, check_profile, load_store, save_store

try:
    import psycopg
    from psycopg.types.json import Jsonb
except ImportError:  # the driver is in requirements.txt; CI must not pass by skipping
    if REQUIRE_ASSETS:
        raise
    pytest.skip("psycopg is not installed: pip install -r requirements.txt", allow_module_level=True)
from facerec.stores.postgres import PostgresStore, reading, sightings, watching, writing  # noqa: E402
from facerec.stores.postgres.database import masked_text as _masked  # noqa: E402

MODELS = {"profile": "sface", "detector": "yunet", "embedder": "sface", "confidence": 0.9,
          "sha256": {"face_detection_yunet.onnx": "ab" * 32, "face_recognition_sface.onnx": "cd" * 32}}
DIMENSION = 128
WAIT = 30  # seconds an Event may take on a busy shared machine: a bound, not a timing claim
INJECTION = "Robert'); DROP TABLE faces;--"

# A writer process: records images start..stop-1 of one dataset through the Store API, printing each
# committed key; every 7th image is skipped (no vector), so statuses and vectors must agree.
WRITER = r"""
import sys
from pathlib import Path
import numpy as np
sys.path.insert(0, sys.argv[1])
from facerec.stores.postgres import PostgresStore
url, dataset, start, stop = sys.argv[2], Path(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
models = {"profile": "sface", "detector": "yunet", "embedder": "sface", "confidence": 0.9,
          "sha256": {"face_detection_yunet.onnx": "ab" * 32, "face_recognition_sface.onnx": "cd" * 32}}
writer = PostgresStore(url).open_writer(dataset, models, 128)
for index in range(start, stop):
    key = f"person{index % 10}/{index}.jpg"
    if index % 7 == 0:
        writer.record(key, {"size": index, "mtime_ns": index}, "no face found", f"person{index % 10}", None)
    else:
        vector = np.random.default_rng(index).normal(size=128).astype(np.float32)
        writer.record(key, {"size": index, "mtime_ns": index}, "used", f"person{index % 10}", vector / np.linalg.norm(vector))
    print(key, flush=True)
writer.finish()
print("finished", flush=True)
"""


def unit_vectors(count: int, seed: int = 0, dimension: int = DIMENSION) -> np.ndarray:
    vectors = np.random.default_rng(seed).normal(size=(count, dimension)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def vector_of(index: int) -> np.ndarray:
    """The vector WRITER records for image `index`."""
    vector = np.random.default_rng(index).normal(size=DIMENSION).astype(np.float32)
    return vector / np.linalg.norm(vector)


# What an enrolment of a small dataset records: (key, person, status, vector or None).
PEOPLE = ["obama", "Zoë Ångström", INJECTION, "李小龍"]


def dataset_records(seed: int = 0) -> list[tuple[str, str, str, np.ndarray | None]]:
    vectors = unit_vectors(12, seed)
    records = []
    for index in range(12):
        person = PEOPLE[index % len(PEOPLE)]
        key = f"{person}/{index}'.jpg"
        records.append((key, person, "used", vectors[index]) if index % 5 else (key, person, "no face found", None))
    return records


def signature(index: int) -> dict[str, int]:
    return {"size": 1000 + index, "mtime_ns": 1_700_000_000_123_456_789 + index}


def enrol(store: PostgresStore, dataset: Path, records, models=MODELS, force: bool = False):
    writer = store.open_writer(dataset, models, DIMENSION, force)
    for index, (key, person, status, vector) in enumerate(records):
        writer.record(key, signature(index), status, person, vector)
    counts = writer.finish()
    gallery = store.load()
    assert counts == GalleryCounts(len(gallery), len(gallery.people))  # counted, not loaded, by finish
    return writer, gallery


def generation(url: str) -> int:
    with psycopg.connect(url) as connection:
        return connection.execute("SELECT (value #>> '{}')::bigint FROM facerec_meta WHERE key = 'generation'"
                                  ).fetchone()[0]


def rows(url: str, statement: str, *parameters) -> list[tuple]:
    with psycopg.connect(url, autocommit=True) as connection:
        cursor = connection.execute(statement, parameters or None)
        return cursor.fetchall() if cursor.description else []


# --- the gallery ---

def test_round_trip_equals_the_pickle_fed_the_same_records(database_url, tmp_path):
    dataset = tmp_path / "dataset"
    records = dataset_records()
    store = PostgresStore(database_url)
    _, gallery = enrol(store, dataset, records)

    used = [(key, person, vector) for key, person, status, vector in records if vector is not None]
    files = {key: {**signature(index), "status": status} for index, (key, _, status, _) in enumerate(records)}
    pickle_path = tmp_path / "embeddings.pickle"
    save_store(Gallery(np.array([v for _, _, v in used]), [p for _, p, _ in used], [k for k, _, _ in used],
                              "sface", MODELS, files), pickle_path)
    pickled = load_store(pickle_path)

    assert gallery.names == pickled.names
    assert np.array_equal(gallery.vectors, pickled.vectors)
    assert gallery.vectors.dtype == np.float32
    assert (gallery.profile, gallery.models) == (pickled.profile, pickled.models)
    origin = f"{os.uname().nodename}:{dataset.resolve()}"
    assert gallery.paths == [f"{origin}/{key}" for key in pickled.paths]
    # what an enrolment of this dataset may reuse: the pickle's paths and file records
    known = store.known_images(dataset)
    assert (known.paths, known.names, known.files) == (pickled.paths, pickled.names, pickled.files)
    assert np.array_equal(known.vectors, pickled.vectors)
    # another store, another connection: the same gallery
    assert PostgresStore(database_url).load().names == pickled.names


def test_a_gallery_of_several_blocks_loads_as_written(database_url, tmp_path):
    # issue 22: the gallery comes in blocks of ids (reading._BLOCK_IDS), each block's vectors and listing in
    # one row: across blocks with gaps (skipped and deleted images), two dataset folders written in turns,
    # unicode names and paths, and one block whose listing holds the separator, the gallery is what was written
    store = PostgresStore(database_url)
    door, hall = tmp_path / "door", tmp_path / "hall ünïcode"
    for dataset in (door, hall):
        store.open_writer(dataset, MODELS, DIMENSION).finish()  # the tables and the model record
    origins = [writing.origin_of(door), writing.origin_of(hall)]
    people = ["Zoë Ångström", "李小龍", INJECTION, "d\u00e9j\u00e0 vu", "a\x1fb"]
    count = 2 * reading._BLOCK_IDS + 1000
    vectors = unit_vectors(count, seed=22)
    written = []  # (origin, key, person, size, mtime_ns, status, vector bytes or None), in id order
    for index in range(count):
        person = people[index % 4] if index != reading._BLOCK_IDS + 8 else people[4]  # one odd name, block 2
        key = f"{person}/фото {index}.jpg"
        skipped = index % 11 == 0
        written.append((origins[index // 1000 % 2], key, person, index, 10 * index, "no face found" if skipped
                        else "used", None if skipped else vectors[index].astype("<f4").tobytes()))
    with psycopg.connect(database_url) as connection:
        with connection.cursor().copy("COPY facerec_images (origin, key, person, size, mtime_ns, status, vector) "
                                      "FROM STDIN") as copy:
            for row in written:
                copy.write_row(row)
    deleted = set(range(3000, 3100)) | {count - 1}
    rows(database_url, "DELETE FROM facerec_images WHERE id - (SELECT min(id) FROM facerec_images) = ANY(%s)",
         sorted(deleted))
    kept = [(index, row) for index, row in enumerate(written) if row[6] is not None and index not in deleted]
    assert len({index // reading._BLOCK_IDS for index, _ in kept}) == 3

    gallery = PostgresStore(database_url).load()
    assert gallery.names == [row[2] for _, row in kept] and "a\x1fb" in gallery.names
    assert gallery.paths == [f"{row[0]}/{row[1]}" for _, row in kept]
    assert np.array_equal(gallery.vectors, vectors[[index for index, _ in kept]])
    assert gallery.vectors.dtype == np.float32 and gallery.vectors.flags.c_contiguous
    known = store.known_images(hall)
    mine = [(index, row) for index, row in kept if row[0] == origins[1]]
    assert known.names == [row[2] for _, row in mine] and known.paths == [row[1] for _, row in mine]
    assert np.array_equal(known.vectors, vectors[[index for index, _ in mine]])
    assert known.files == {row[1]: {"size": row[3], "mtime_ns": row[4], "status": row[5]}
                           for index, row in enumerate(written) if row[0] == origins[1] and index not in deleted}


def test_the_gallery_stream_read_in_pieces_of_any_size_is_the_same(database_url, tmp_path):
    # the server's COPY of the blocks is read as it comes: a row split anywhere (here in pieces of 1 to 4099
    # bytes) gives the same gallery as whole rows; a stream cut short is refused
    store = PostgresStore(database_url)
    _, gallery = enrol(store, tmp_path / "dataset", dataset_records())
    with psycopg.connect(database_url) as connection:
        statement = reading._GALLERY_BLOCKS.format(size=reading._BLOCK_IDS, path="origin || '/' || key", where="")
        with connection.cursor().copy(statement) as copy:
            stream = b"".join(bytes(chunk) for chunk in copy)
    for piece in (1, 7, 30, 4099):
        copied = reading._CopiedGallery(len(gallery), DIMENSION, "utf-8")
        for start in range(0, len(stream), piece):
            copied.feed(stream[start:start + piece])
        assert np.array_equal(copied.result(), gallery.vectors), piece
        assert (copied.names, copied.paths) == ([gallery.names], [gallery.paths]), piece
    cut = reading._CopiedGallery(len(gallery), DIMENSION, "utf-8")
    cut.feed(stream[:-3])
    with pytest.raises(ValueError, match="did not arrive whole"):
        cut.result()


def test_a_real_sface_gallery_names_the_probes_as_the_pickle_does(database_url, known_store, models, tmp_path):
    pickled = load_store(known_store)
    vectors = dict(zip(pickled.paths, pickled.vectors))
    store = PostgresStore(database_url)
    writer = store.open_writer(tmp_path / "dataset", pickled.models, pickled.vectors.shape[1])
    for key, record in pickled.files.items():  # what extract_embeddings.py recorded, image by image
        writer.record(key, {"size": record["size"], "mtime_ns": record["mtime_ns"]}, record["status"],
                      key.split("/")[0], vectors.get(key))
    assert writer.finish() == GalleryCounts(len(pickled), len(pickled.people))
    from_database = store.load()
    assert from_database.names == pickled.names and np.array_equal(from_database.vectors, pickled.vectors)

    detector, embedder = models
    probes = [embed_face(read_image(photo), detector, embedder).vector
              for photo in sorted(shared_path("faces/probe").iterdir()) if photo.suffix in (".jpg", ".png")]
    queries = np.array([vector for vector in probes if vector is not None])
    threshold = PROFILES["sface"].threshold
    answers = [[(match.name, match.distance) for match in make_matcher("nearest", gallery.vectors, gallery.names,
                                                                       threshold).match(queries)]
               for gallery in (pickled, from_database)]
    assert answers[0] == answers[1]
    assert sum(name != UNKNOWN for name, _ in answers[0]) >= len(queries) // 2  # it does name people


def test_add_change_and_delete_a_photo(database_url, tmp_path):
    dataset = tmp_path / "dataset"
    store = PostgresStore(database_url)
    first = unit_vectors(3, seed=1)
    enrol(store, dataset, [("a/1.jpg", "a", "used", first[0]), ("b/1.jpg", "b", "used", first[1]),
                           ("s/1.jpg", "s", "no face found", None)])

    writer = store.open_writer(dataset, MODELS, DIMENSION)
    assert sorted(writer.previous.files) == ["a/1.jpg", "b/1.jpg", "s/1.jpg"]
    before = generation(database_url)
    writer.record("a/1.jpg", signature(0), "used", "a", writer.previous.vectors[0])  # unchanged: nothing written
    writer.record("s/1.jpg", signature(2), "no face found", "s", None)
    assert generation(database_url) == before
    writer.record("b/1.jpg", {"size": 5, "mtime_ns": 6}, "used", "b", first[2])  # changed photo
    writer.record("c/1.jpg", {"size": 7, "mtime_ns": 8}, "no face found", "c", None)  # new photo, skipped
    writer.remove(["a/1.jpg"])  # deleted photo
    assert writer.finish() == GalleryCounts(1, 1)
    gallery = store.load()

    assert gallery.names == ["b"]
    assert np.array_equal(gallery.vectors, first[2:3])
    known = store.known_images(dataset)
    assert known.files == {"b/1.jpg": {"size": 5, "mtime_ns": 6, "status": "used"},
                           "s/1.jpg": {**signature(2), "status": "no face found"},
                           "c/1.jpg": {"size": 7, "mtime_ns": 8, "status": "no face found"}}
    assert rows(database_url, "SELECT count(*) FROM facerec_images") == [(3,)]


def test_two_datasets_on_two_machines_are_one_gallery(database_url, tmp_path):
    store = PostgresStore(database_url)
    enrol(store, tmp_path / "door", [("obama/1.jpg", "obama", "used", unit_vectors(1, 1)[0])])
    _, gallery = enrol(store, tmp_path / "hall", [("obama/1.jpg", "obama", "used", unit_vectors(1, 2)[0]),
                                                  ("biden/1.jpg", "biden", "used", unit_vectors(1, 3)[0])])
    # the same key in two dataset folders: two photos, neither overwrites the other
    assert gallery.names == ["obama", "obama", "biden"]
    assert len(store.known_images(tmp_path / "door")) == 1
    assert len(store.known_images(tmp_path / "hall")) == 2


def test_a_name_made_of_sql_is_just_a_name(database_url, tmp_path):
    rows(database_url, "CREATE TABLE faces (id int)")
    store = PostgresStore(database_url)
    key = f"{INJECTION}/x'); DELETE FROM facerec_images;--.jpg"
    _, gallery = enrol(store, tmp_path / "dataset", [(key, INJECTION, "used", unit_vectors(1)[0])])
    assert gallery.names == [INJECTION]
    assert store.known_images(tmp_path / "dataset").paths == [key]
    assert rows(database_url, "SELECT to_regclass('faces') IS NOT NULL") == [(True,)]
    camera = "door'); DROP TABLE facerec_visits;--"
    log = store.sighting_log(camera)
    log.log(Sighting(1, INJECTION, 1_700_000_000.0, distance=0.25))
    log.close()
    assert rows(database_url, "SELECT camera, name FROM facerec_visits") == [(camera, INJECTION)]


def test_names_and_paths_holding_the_separator_of_the_fast_listing_load_as_they_are(database_url, tmp_path):
    # issue 22: the names and paths come as one string split at chr(31); a name holding it is read as JSON
    store = PostgresStore(database_url)
    odd = [("a\x1fb/1.jpg", "a\x1fb", "used", unit_vectors(1, 3)[0]), ("c/\x1f.jpg", "c", "used", unit_vectors(1, 4)[0]),
           ("d/1.jpg", "d", "used", unit_vectors(1, 5)[0])]
    _, gallery = enrol(store, tmp_path / "dataset", odd)
    origin = f"{os.uname().nodename}:{(tmp_path / 'dataset').resolve()}"
    assert gallery.names == ["a\x1fb", "c", "d"]
    assert gallery.paths == [f"{origin}/{key}" for key, *_ in odd]
    plain = PostgresStore(database_url)
    writer = plain.open_writer(tmp_path / "dataset", MODELS, DIMENSION)
    writer.remove(["a\x1fb/1.jpg", "c/\x1f.jpg"])
    writer.finish()
    assert (plain.load().names, plain.load().paths) == (["d"], [f"{origin}/d/1.jpg"])


def test_a_file_name_that_is_not_utf8_is_stored_escaped_and_kept(database_url, tmp_path):
    store, dataset = PostgresStore(database_url), tmp_path / "dataset"
    key = "obama/caf\udce9.jpg"  # a Latin-1 file name, as Python lists it
    for run in range(2):
        writer = store.open_writer(dataset, MODELS, DIMENSION)
        writer.record(key, signature(0), "used", "obama", unit_vectors(1)[0])
        # as an enrolment does: what the store knew that the dataset no longer lists is removed
        writer.remove([known for known in (writer.previous.files if writer.previous else {}) if known != key])
        assert writer.finish() == GalleryCounts(1, 1), run
    assert store.known_images(dataset).paths == ["obama/caf\\xe9.jpg"]


# --- refusals ---

def test_a_store_of_another_profile_is_refused_and_shows_its_profile(database_url, tmp_path):
    store = PostgresStore(database_url)
    enrol(store, tmp_path / "dataset", dataset_records())
    openface = {"profile": "openface", "sha256": {"nn4.t7": "ef" * 32}}
    with pytest.raises(FacerecError, match=r"'sface' profile, not 'openface'.*--force") as refused:
        store.open_writer(tmp_path / "other", openface, DIMENSION)
    assert store.location in str(refused.value)
    other_files = {**MODELS, "sha256": {**MODELS["sha256"], "face_recognition_sface.onnx": "00" * 32}}
    with pytest.raises(FacerecError, match=r"other 'sface' models \(their sha256 differ"):
        store.open_writer(tmp_path / "dataset", other_files, DIMENSION)
    gallery = PostgresStore(database_url).load()
    assert gallery.profile == "sface" and gallery.models == MODELS
    with pytest.raises(FacerecError, match="made with the 'sface' profile: recognise with --model sface"):
        check_profile(gallery, store.location, "openface")
    assert len(gallery) == 9  # nothing was removed by the refusals

    writer = store.open_writer(tmp_path / "other", openface, DIMENSION, force=True)
    assert "emptying it (12 images from 1 dataset folder, every machine's)" in writer.warning
    assert writer.previous is None
    assert writer.finish() == GalleryCounts(0, 0)
    emptied = store.load()
    assert (len(emptied), emptied.profile, emptied.models) == (0, "openface", openface)


def test_an_enrolment_whose_gallery_was_emptied_for_other_models_stops(database_url, tmp_path):
    store = PostgresStore(database_url)
    writer = store.open_writer(tmp_path / "dataset", MODELS, DIMENSION)
    writer.record("a/1.jpg", signature(0), "used", "a", unit_vectors(1)[0])
    PostgresStore(database_url).open_writer(tmp_path / "other", {"profile": "openface"}, DIMENSION, force=True)
    with pytest.raises(FacerecError, match="emptied for other models by another enrolment"):
        writer.record("a/2.jpg", signature(1), "used", "a", unit_vectors(2)[1])
    assert rows(database_url, "SELECT count(*) FROM facerec_images") == [(0,)]


def test_a_newer_schema_is_refused(database_url, tmp_path):
    enrol(PostgresStore(database_url), tmp_path / "dataset", dataset_records())
    rows(database_url, "UPDATE facerec_meta SET value = '3' WHERE key = 'schema_version'")
    store = PostgresStore(database_url)
    for attempt in (store.load, lambda: store.open_writer(tmp_path / "dataset", MODELS, DIMENSION)):
        with pytest.raises(FacerecError, match=r"schema version 3, newer than this facerec knows \(2\): upgrade facerec"):
            attempt()


# The tables of schema version 1 (facerec before the vectors became bytea), as that version made them.
VERSION_1_SCHEMA = (
    "CREATE TABLE facerec_meta (key text PRIMARY KEY, value jsonb NOT NULL)",
    "CREATE TABLE facerec_images (id bigserial PRIMARY KEY, origin text NOT NULL, key text NOT NULL, "
    "person text NOT NULL, size bigint NOT NULL, mtime_ns bigint NOT NULL, status text NOT NULL, "
    "vector float4[] CHECK (array_ndims(vector) = 1), made_at timestamptz NOT NULL DEFAULT now(), "
    "UNIQUE (origin, key))",
    "CREATE TABLE facerec_sightings (id bigserial PRIMARY KEY, camera text NOT NULL, run uuid NOT NULL, "
    "track bigint, name text NOT NULL, first_seen timestamptz NOT NULL, last_seen timestamptz NOT NULL, "
    "faces integer NOT NULL, best_distance real NOT NULL, UNIQUE (camera, run, track, name))",
)


def version_1_gallery(url: str, dataset: Path, records) -> None:
    """A gallery of `records` as facerec's schema version 1 stored it (vectors as float4[])."""
    with psycopg.connect(url) as connection:
        for statement in VERSION_1_SCHEMA:
            connection.execute(statement)
        connection.execute("INSERT INTO facerec_meta VALUES ('schema_version', '1'), ('generation', '0'), "
                           "('gallery', %s)", (Jsonb({"models": MODELS, "dimension": DIMENSION}),))
        for index, (key, person, status, vector) in enumerate(records):
            connection.execute(
                "INSERT INTO facerec_images (origin, key, person, size, mtime_ns, status, vector) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s::float4[])",
                (writing.origin_of(dataset), key, person, *signature(index).values(), status,
                 None if vector is None else [float(number) for number in vector]))


def test_a_version_1_gallery_is_converted_by_the_next_enrolment_and_loads_the_same(postgres_server, database_url,
                                                                                   tmp_path):
    dataset, records = tmp_path / "dataset", dataset_records()
    version_1_gallery(database_url, dataset, records)
    _, expected = enrol(PostgresStore(postgres_server.url(postgres_server.new_database())), dataset, records)  # made by this version
    store = PostgresStore(database_url)
    with pytest.raises(FacerecError, match=r"has schema version 1, which this facerec reads once converted: the next "
                                           r"enrolment by this version \(extract_embeddings.py --embeddings "):
        store.load()
    assert rows(database_url, "SELECT value FROM facerec_meta WHERE key = 'schema_version'") == [(1,)]  # readers wait

    writer = store.open_writer(dataset, MODELS, DIMENSION)  # converts, then reads what it may reuse
    assert rows(database_url, "SELECT value FROM facerec_meta WHERE key = 'schema_version'") == [(2,)]
    assert rows(database_url, "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = "
                              "'facerec_images'::regclass AND attname = 'vector'") == [("bytea",)]
    for index, (key, person, status, vector) in enumerate(records):  # nothing to write again: all as recorded
        writer.record(key, signature(index), status, person, vector)
    assert writer.finish() == GalleryCounts(9, 4)
    converted = PostgresStore(database_url).load()
    assert converted.names == expected.names and converted.paths == expected.paths
    assert np.array_equal(converted.vectors, expected.vectors) and converted.vectors.dtype == np.float32
    assert rows(database_url, "SELECT octet_length(vector) FROM facerec_images WHERE vector IS NOT NULL "
                              "GROUP BY 1") == [(4 * DIMENSION,)]


def test_a_database_without_a_gallery_says_to_enrol(database_url, tmp_path):
    store = PostgresStore(database_url)
    with pytest.raises(FacerecError, match="holds no gallery yet: enrol people with extract_embeddings.py"):
        store.load()
    assert len(store.known_images(tmp_path / "dataset")) == 0
    assert rows(database_url, "SELECT to_regclass('facerec_meta')") == [(None,)]  # a reader creates nothing


def test_damaged_vectors_are_refused(database_url, tmp_path):
    enrol(PostgresStore(database_url), tmp_path / "dataset", dataset_records())
    rows(database_url, "UPDATE facerec_images SET vector = substr(vector, 1, 20) WHERE id = (SELECT max(id) "
                       "FROM facerec_images WHERE vector IS NOT NULL)")
    with pytest.raises(FacerecError, match="is damaged: 1 vector of 9 is not of the 128 numbers its model record says"):
        PostgresStore(database_url).load()
    rows(database_url, "UPDATE facerec_images SET vector = substr(vector, 1, 20)")
    with pytest.raises(FacerecError, match="is damaged: 9 vectors of 9 are not of the 128 numbers its model record says"):
        PostgresStore(database_url).load()
    rows(database_url, "UPDATE facerec_images SET vector = %s WHERE vector IS NOT NULL",
         np.full(128, 0.5, "<f4").tobytes())
    with pytest.raises(FacerecError, match=r"is damaged: vector 0 \(Zoë Ångström\) has length 5.657, but the embedders make vectors of length 1"):
        PostgresStore(database_url).load()


# --- credentials and an unreachable server ---

def test_a_password_never_appears_in_a_message(postgres_server, tmp_path, monkeypatch):
    database = postgres_server.new_database()
    right = postgres_server.url(database, PASSWORD_ROLE, PASSWORD)
    enrol(PostgresStore(right), tmp_path / "dataset", dataset_records())

    wrong = postgres_server.url(database, PASSWORD_ROLE, "wrong-Secret-42")
    with pytest.raises(FacerecError) as refused:
        PostgresStore(wrong)
    message = str(refused.value)
    assert f"127.0.0.1:{postgres_server.port}" in message and "password authentication failed" in message
    assert "wrong-Secret-42" not in message and f"{PASSWORD_ROLE}:***@" in message

    # the password from PGPASSFILE, the URL without one
    passfile = tmp_path / "pgpass"
    passfile.write_text(f"127.0.0.1:{postgres_server.port}:*:{PASSWORD_ROLE}:{PASSWORD}\n")
    passfile.chmod(0o600)
    monkeypatch.setenv("PGPASSFILE", str(passfile))
    assert len(PostgresStore(postgres_server.url(database, PASSWORD_ROLE)).load()) == 9

    # nothing listens there: the host and port are named, the password is not
    with pytest.raises(FacerecError) as down:
        PostgresStore(f"postgresql://{PASSWORD_ROLE}:{PASSWORD}@127.0.0.1:1/{database}?password={PASSWORD}")
    message = str(down.value)
    assert "cannot connect to the gallery database at 127.0.0.1:1" in message and "refused" in message
    assert PASSWORD not in message


def test_masking_hides_every_form_of_password():
    assert _masked("postgresql://ann:p@ss:w0rd@db.example:5433/gallery") == "postgresql://ann:***@db.example:5433/gallery"
    assert _masked("postgresql://ann@db/gallery?sslmode=require&password=x%40y") == \
        "postgresql://ann@db/gallery?sslmode=require&password=***"
    assert _masked("host=db password='a b' user=ann") == "host=db password=*** user=ann"
    assert _masked('FATAL: role "ann" said hunter2', ("hunter2",)) == 'FATAL: role "ann" said ***'


# --- concurrent and killed writers ---

def start_writer(url: str, dataset: Path, start: int, stop: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", WRITER, str(PROJECT_ROOT), url, str(dataset), str(start), str(stop)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def check_whole_images(url: str) -> list[tuple]:
    """Every row: a used image has a whole vector (the one WRITER made for it), a skipped one none."""
    images = rows(url, "SELECT key, status, vector FROM facerec_images ORDER BY key")
    for key, status, vector in images:
        index = int(key.split("/")[1].split(".")[0])
        if index % 7 == 0:
            assert (status, vector) == ("no face found", None), key
        else:
            assert status == "used" and np.array_equal(np.frombuffer(vector, "<f4"), vector_of(index)), key
    return images


def test_two_concurrent_writer_processes_neither_duplicate_nor_lose(database_url, tmp_path):
    dataset = tmp_path / "dataset"
    writers = [start_writer(database_url, dataset, 0, 150), start_writer(database_url, dataset, 50, 200)]
    for writer in writers:
        out, err = writer.communicate(timeout=300)
        assert writer.returncode == 0, err
        assert out.endswith("finished\n")
    images = check_whole_images(database_url)
    assert sorted(key for key, _, _ in images) == sorted(f"person{i % 10}/{i}.jpg" for i in range(200))
    gallery = PostgresStore(database_url).load()
    assert len(gallery) == sum(1 for i in range(200) if i % 7)


def test_a_killed_writer_leaves_whole_images_and_a_later_run_completes(database_url, tmp_path):
    dataset = tmp_path / "dataset"
    writer = start_writer(database_url, dataset, 0, 5000)
    committed = [writer.stdout.readline() for _ in range(40)]
    assert all(line.startswith("person") for line in committed)
    writer.send_signal(signal.SIGKILL)
    writer.communicate(timeout=60)
    images = check_whole_images(database_url)
    # every image it said it recorded is there; at most the one in flight beyond them
    keys = {key for key, _, _ in images}
    assert {line.strip() for line in committed} <= keys
    assert len(keys) < 5000
    assert len(PostgresStore(database_url).load()) == sum(1 for key in keys if int(key.split("/")[1][:-4]) % 7)

    again = start_writer(database_url, dataset, 0, 300)
    out, err = again.communicate(timeout=300)
    assert again.returncode == 0, err
    keys = {key for key, _, _ in check_whole_images(database_url)}
    assert {f"person{i % 10}/{i}.jpg" for i in range(300)} <= keys


# --- live updates ---

class Follower:
    """Collects what a watch reports; `changed`/`problem` are set at each report."""

    def __init__(self) -> None:
        self.galleries: list[Gallery] = []
        self.problems: list[str] = []
        self.changed = threading.Event()
        self.problem = threading.Event()

    def on_change(self, gallery: Gallery) -> None:
        self.galleries.append(gallery)
        self.changed.set()

    def on_problem(self, message: str) -> None:
        self.problems.append(message)
        self.problem.set()

    def next_gallery(self) -> Gallery:
        assert self.changed.wait(WAIT), "no on_change"
        self.changed.clear()
        return self.galleries[-1]


def test_a_watcher_sees_a_person_enrolled_and_removed_elsewhere(database_url, tmp_path):
    enrol(PostgresStore(database_url), tmp_path / "door", dataset_records())
    recogniser = PostgresStore(database_url)
    before = recogniser.load()
    writer = PostgresStore(database_url).open_writer(tmp_path / "hall", MODELS, DIMENSION)
    writer.record("early/1.jpg", signature(0), "used", "early", unit_vectors(1, 8)[0])
    follower = Follower()
    watch = recogniser.watch(follower.on_change, follower.on_problem)
    try:
        # enrolled after the recogniser loaded, before it watched: no notification, yet it is told
        assert follower.next_gallery().names == before.names + ["early"]
        writer.record("newcomer/1.jpg", signature(1), "used", "newcomer", unit_vectors(1, 9)[0])
        assert follower.next_gallery().names == before.names + ["early", "newcomer"]
        writer.remove(["newcomer/1.jpg", "early/1.jpg"])
        assert follower.next_gallery().names == before.names
        assert follower.problems == []
    finally:
        watch.stop()
    assert not any(thread.name == "facerec-gallery-watch" for thread in threading.enumerate())


def test_a_watcher_hands_on_the_gallery_its_store_loaded_and_does_not_read_it_again(database_url, tmp_path):
    # issue 22: the web page's Learn loads the gallery it wrote and uses it; a watch that sees that generation
    # hands on that very gallery (the follower already uses it: nothing is rebuilt), and reads a gallery only
    # for a generation its store has not loaded
    store = PostgresStore(database_url)
    writer = store.open_writer(tmp_path / "door", MODELS, DIMENSION)
    for index, (key, person, status, vector) in enumerate(dataset_records()):
        writer.record(key, signature(index), status, person, vector)
    assert writer.finish() == GalleryCounts(9, len({person for _, person, status, _ in dataset_records()
                                                     if status == "used"}))
    loaded = store.load()
    follower = Follower()
    watch = watching.GalleryWatch(store, follower.on_change, follower.on_problem, None)  # it holds none yet
    try:
        assert follower.next_gallery() is loaded
        PostgresStore(database_url).open_writer(tmp_path / "hall", MODELS, DIMENSION).record(
            "other/1.jpg", signature(21), "used", "other", unit_vectors(1, 8)[0])  # elsewhere: read anew
        elsewhere = follower.next_gallery()
        assert elsewhere is not loaded and elsewhere.names == loaded.names + ["other"]
        assert follower.problems == []
    finally:
        watch.stop()


def test_a_watcher_does_not_read_again_the_gallery_its_caller_holds(database_url, tmp_path):
    # issue 22: a recogniser that loaded the gallery and then watches it is not handed (nor read) that gallery
    # again: the first gallery it is given is the next one
    enrol(PostgresStore(database_url), tmp_path / "door", dataset_records())
    store = PostgresStore(database_url)
    held = store.load()
    reads, looked = [], threading.Event()
    read, generation_of = store._read, store._generation_of

    def counted_read(connection, origin):
        reads.append(origin)
        return read(connection, origin)

    def noted_generation(connection):
        looked.set()  # the watch has compared the database's generation with the one the caller holds
        return generation_of(connection)

    store._read, store._generation_of = counted_read, noted_generation
    follower = Follower()
    watch = store.watch(follower.on_change, follower.on_problem)
    try:
        assert looked.wait(WAIT)
        PostgresStore(database_url).open_writer(tmp_path / "hall", MODELS, DIMENSION).record(
            "other/1.jpg", signature(21), "used", "other", unit_vectors(1, 8)[0])
        assert follower.next_gallery().names == held.names + ["other"]
        assert len(follower.galleries) == 1 and reads == [None]
        assert follower.problems == []
    finally:
        watch.stop()


class FailedConnects:
    """Counts the store's connection attempts that fail (the real ones, spied on): a test waits for the store
    to have tried again, instead of sleeping for as long as a few retries should take."""

    def __init__(self, store: PostgresStore) -> None:
        self.failed = 0
        self.changed = threading.Condition()
        connect = store._connect

        def counted(*args, **kwargs):
            try:
                return connect(*args, **kwargs)
            except FacerecError:
                with self.changed:
                    self.failed += 1
                    self.changed.notify_all()
                raise

        store._connect = counted

    def wait_for(self, attempts: int) -> None:
        with self.changed:
            assert self.changed.wait_for(lambda: self.failed >= attempts, WAIT), f"{self.failed} failed attempts"


def test_a_watcher_survives_the_database_restarting(postgres_server, tmp_path):
    url = postgres_server.url(postgres_server.new_database())
    enrol(PostgresStore(url), tmp_path / "door", dataset_records())
    recogniser = PostgresStore(url)
    before = recogniser.load()
    follower = Follower()
    failed = FailedConnects(recogniser)
    watch = recogniser.watch(follower.on_change, follower.on_problem)
    try:
        postgres_server.stop()
        try:
            assert follower.problem.wait(WAIT), "the loss was not reported"
            follower.problem.clear()
            failed.wait_for(3)  # several reconnection attempts fail meanwhile: still one message
            assert len(follower.problems) == 1 and "unreachable" in follower.problems[0]
            assert "keeping the gallery already loaded" in follower.problems[0]
        finally:
            postgres_server.start()
        assert follower.problem.wait(WAIT), "the reconnection was not reported"
        assert len(follower.problems) == 2 and follower.problems[1].startswith("reconnected")
        # listening again: a change made now reaches it
        writer = PostgresStore(url).open_writer(tmp_path / "hall", MODELS, DIMENSION)
        writer.record("newcomer/1.jpg", signature(0), "used", "newcomer", unit_vectors(1, 9)[0])
        assert follower.next_gallery().names == before.names + ["newcomer"]
        # the store's own connection was lost too: its next load reconnects
        assert recogniser.load().names == before.names + ["newcomer"]
    finally:
        watch.stop()


# --- sightings ---

def readme_sightings_query() -> str:
    """The query docs/many-cameras.md gives users (after its <!-- sightings-query --> marker)."""
    text = (PROJECT_ROOT / "docs" / "many-cameras.md").read_text()
    found = re.search(r"<!-- sightings-query -->\s*```sql\n(.*?)```", text, re.S)
    assert found, "docs/many-cameras.md has no sightings query"
    return found.group(1)


def test_sightings_one_row_per_visit_and_the_readme_query(database_url, tmp_path):
    enrol(PostgresStore(database_url), tmp_path / "dataset", dataset_records())
    store = PostgresStore(database_url)
    start = 1_700_000_000.0
    door, hall = store.sighting_log("door"), store.sighting_log("hall")
    door.log(Sighting(1, "obama", start, distance=0.30))  # arrives ...
    door.log(Sighting(2, "biden", start + 5, distance=0.41))  # (still in view when the log closes)
    door.log(Sighting(1, "obama", start, start + 89 / 30, distance=0.30))  # ... and leaves: the same row
    hall.log(Sighting(1, "Unknown", start + 60, start + 61, unknown_group=7, distance=0.6))
    hall.log(Sighting(2, "obama", start + 62, start + 70, distance=0.35))
    door.close()
    hall.close()

    found = rows(database_url, 'SELECT camera, visit, name, unknown_group, extract(epoch FROM arrived), '
                               'extract(epoch FROM "left"), distance FROM facerec_visits ORDER BY camera, visit')
    assert [(camera, visit, name, group) for camera, visit, name, group, _, _, _ in found] == [
        ("door", 1, "obama", None), ("door", 2, "biden", None), ("hall", 1, "Unknown", 7), ("hall", 2, "obama", None)]
    obama_door = found[0]
    assert float(obama_door[4]) == pytest.approx(start) and float(obama_door[5]) == pytest.approx(start + 89 / 30)
    assert obama_door[6] == pytest.approx(0.30) and found[1][5] is None  # biden's visit is open

    answer = rows(database_url, readme_sightings_query().replace("now() - interval '1 day'", "'2023-01-01'"))
    assert [(name, camera, visits) for name, camera, _, _, visits in answer] == [
        ("obama", "hall", 1), ("Unknown", "hall", 1), ("biden", "door", 1), ("obama", "door", 1)]


def test_a_database_made_before_the_visits_table_gets_it_from_the_first_sighting_log(database_url, tmp_path):
    enrol(PostgresStore(database_url), tmp_path / "dataset", dataset_records())
    rows(database_url, "DROP TABLE facerec_visits")  # as a gallery made by facerec before 2026-12 is
    log = PostgresStore(database_url).sighting_log("door")
    log.log(Sighting(1, "obama", 1_700_000_000.0, 1_700_000_002.0, distance=0.3))
    log.close()
    assert rows(database_url, "SELECT name FROM facerec_visits") == [("obama",)]
    assert rows(database_url, "SELECT value FROM facerec_meta WHERE key = 'schema_version'") == [(2,)]


def test_sightings_wait_while_the_database_is_down(postgres_server, tmp_path, capfd):
    url = postgres_server.url(postgres_server.new_database())
    store = PostgresStore(url)
    log = store.sighting_log("door")
    failed = FailedConnects(store)
    postgres_server.stop()
    try:
        for visit in range(1, 31):  # 30 visits, each told at its arrival and at its departure
            log.log(Sighting(visit, "obama", 1_700_000_000.0 + visit, distance=0.3))
            log.log(Sighting(visit, "obama", 1_700_000_000.0 + visit, 1_700_000_000.5 + visit, distance=0.3))
        failed.wait_for(2)  # the writer tries (and fails) more than once meanwhile
    finally:
        postgres_server.start()
    log.close()
    assert rows(url, 'SELECT count(*), count("left") FROM facerec_visits') == [(30, 30)]
    err = capfd.readouterr().err
    assert err.count("sightings cannot be written now") == 1 and "they are kept" in err


def test_sightings_queued_beyond_the_bound_drop_the_oldest(postgres_server, monkeypatch, capfd):
    monkeypatch.setattr(sightings, "MAX_QUEUED_SIGHTINGS", 5)
    url = postgres_server.url(postgres_server.new_database())
    store = PostgresStore(url)
    log = store.sighting_log("door")
    failed = FailedConnects(store)
    postgres_server.stop()
    try:
        log.log(Sighting(1, "obama", 1_700_000_000.0, distance=0.3))
        log.log(Sighting(1, "obama", 1_700_000_000.0, 1_700_000_030.0, distance=0.3))  # one row, arrival and departure
        for visit in range(2, 8):  # a row each: 7 rows for 5 places
            log.log(Sighting(visit, f"visitor{visit}", 1_700_000_100.0 + visit, distance=0.4))
        failed.wait_for(2)  # the writer tries (and fails) more than once meanwhile
    finally:
        postgres_server.start()
    log.close()
    assert rows(url, "SELECT name FROM facerec_visits ORDER BY arrived") == [
        (f"visitor{visit}",) for visit in range(3, 8)]
    assert capfd.readouterr().err.count("the oldest are dropped") == 1

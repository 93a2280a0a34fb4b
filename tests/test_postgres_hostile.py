"""The PostgreSQL gallery against a hostile URL or database (issue 19, items 12-16 and 20), with the real scripts
and a real server (tests/postgres_server.py).

A URL, however malformed, never shows a part of its password, and fails with one `error:` line. What the
database holds is checked before use: every field of facerec_meta; the length of names, paths and vectors
and the number of vectors, in SQL, before any of them is fetched (the protocol trace of the connection
shows that neither the listing nor the COPY of the vectors is sent). A running recogniser that meets a
damaged gallery warns once, keeps the gallery it has and follows the database again once it is repaired.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conftest import run_script, shared_path
from helpers import assert_clean_failure
from paced_camera import LIN_FRAMES, LIN_PHOTO, WITHIN_TWO_SECONDS, PacedCamera, names, y4m_frames
from postgres_server import PASSWORD_ROLE, database_url, postgres_server  # noqa: F401 (fixtures)
from test_postgres_store import (DIMENSION, MODELS, WAIT, Follower, dataset_records, enrol, rows, signature,
                                 unit_vectors)
from test_sface import enrol as enrol_photos, linked_dataset, sface_model_args

from facerec.errors import FacerecError
from facerec.stores import masked
from facerec.stores.postgres import PostgresStore, reading

# --- item 12: passwords; item 20: one error line ---

PASSWORD_PARTS = ("Kq9v", "Xw7", "Zr5")  # every password below is made of these: none may be printed
MALFORMED = [
    "postgresql://{role}:Kq9v%zzXw7@{server}/postgres",  # a bad percent escape
    "postgresql://{role}:Kq9v/Xw7@{server}/postgres",  # a raw / (libpq: host "{role}", port "Kq9v")
    "postgresql://{role}:Kq9v Xw7@{server}/postgres",  # a space
    "postgresql://{role}:Kq9v@Xw7:Zr5@{server}/postgres",  # a raw @ and : (libpq: password "Kq9v", host "Xw7")
    "postgresql://{role}:Kq9v?Xw7@{server}/postgres",  # ? and # are the password's for libpq
    "postgresql://{role}:Kq9v#Xw7@{server}/postgres",
    "postgresql://{role}:Kq9v:Xw7@{server}/postgres",
    "postgresql://{role}:Kq9v%00Xw7@{server}/postgres",
    "postgresql://{role}:Kq9v\nXw7@{server}/postgres",
    "postgresql://{role}:Kq9vXw7@[::1/postgres",
    "postgresql://{role}:Kq9vXw7@127.0.0.1:port/postgres",
    "postgresql://{role}:Kq9vXw7@{server}/postgres?bogus=1",
    "postgresql://{server}/postgres?password=Kq9v%zzXw7",
    "postgresql://{server}/postgres?password=Kq9v Xw7&user={role}",
    "postgresql://{role}:Kq9vXw7@{server}/postgres?sslmode=bogus&password=Zr5",
    "postgres://{role}@corp:Kq9v@Xw7@{server}/postgres",
    "POSTGRESQL://{role}:Kq9v/Xw7@{server}/postgres",
    "postgresql://{role}:Kq9v/Xw7?user=Zr5@{server}/postgres",
]


def url_of(shape: str, server) -> str:
    return shape.format(role=PASSWORD_ROLE, server=f"127.0.0.1:{server.port}")


def assert_one_error_line(result, url: str) -> None:
    """Failed cleanly, with exactly one line `error: ...` and no part of a password anywhere."""
    assert_clean_failure(result)
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, (url, result.stderr)
    for part in PASSWORD_PARTS:
        assert part not in result.stdout + result.stderr, (url, result.stderr)


@pytest.mark.parametrize("shape", MALFORMED)
def test_no_part_of_a_password_is_printed_however_malformed_the_url(postgres_server, shape):  # noqa: F811
    url = url_of(shape, postgres_server)
    assert_one_error_line(run_script("evaluate.py", "--embeddings", url), url)


def test_every_script_keeps_the_password_of_a_malformed_url(postgres_server, tmp_path):  # noqa: F811
    dataset = linked_dataset(tmp_path / "dataset")
    for shape in (MALFORMED[0], MALFORMED[1], MALFORMED[3], MALFORMED[4]):
        url = url_of(shape, postgres_server)
        for result in (run_script("recognize_video.py", "--embeddings", url, "--no-display", *sface_model_args()),
                       run_script("extract_embeddings.py", "--dataset", str(dataset), "--embeddings", url,
                                  *sface_model_args()),
                       run_script("serve.py", "--dataset", str(dataset), "--embeddings", url, "--port", "0",
                                  *sface_model_args(), timeout=120)):
            assert_one_error_line(result, url)


def test_an_unclear_password_is_refused_with_how_to_write_it(postgres_server):  # noqa: F811
    url = url_of("postgresql://{role}:Kq9v/Xw7@{server}/postgres", postgres_server)
    result = run_script("evaluate.py", "--embeddings", url)
    assert_one_error_line(result, url)
    assert f"postgresql://{PASSWORD_ROLE}:***@127.0.0.1:{postgres_server.port}/postgres" in result.stderr
    assert "write @ as %40 and / as %2F" in result.stderr


def test_a_password_e_does_not_star_every_letter_e(postgres_server):  # noqa: F811
    url = f"postgresql://{PASSWORD_ROLE}:e@127.0.0.1:{postgres_server.port}/postgres?password=e"
    result = run_script("evaluate.py", "--embeddings", url)
    assert_clean_failure(result, f"cannot connect to the gallery database at 127.0.0.1:{postgres_server.port} "
                                 f"(postgresql://{PASSWORD_ROLE}:***@127.0.0.1:{postgres_server.port}/postgres"
                                 "?password=***)", f'password authentication failed for user "{PASSWORD_ROLE}"')
    assert masked(url) == f"postgresql://{PASSWORD_ROLE}@127.0.0.1:{postgres_server.port}/postgres"


@pytest.mark.parametrize("url, said", [
    ("postgresql://ann@127.0.0.1:1/db?bogus=1", 'invalid URI query parameter: "bogus"'),
    ("postgresql://ann@[::1/db", 'looking for matching "]" in IPv6 host address'),
    ("postgresql://ann@127.0.0.1:1/d%zzb", 'invalid percent-encoded token: "d%zzb"'),
])
def test_a_url_that_cannot_be_parsed_is_one_error_line(url, said):
    result = run_script("evaluate.py", "--embeddings", url)
    assert_clean_failure(result, f"error: {url} is not a PostgreSQL URL: ", said)
    assert result.stderr.count("\n") == 1, result.stderr


# --- item 13: every field of facerec_meta checked before use ---

def set_gallery(field: str, value: str) -> str:
    return f"UPDATE facerec_meta SET value = jsonb_set(value, '{{{field}}}', '{value}') WHERE key = 'gallery'"


HOSTILE_META = [
    (set_gallery("dimension", "-1"), "its model record says vectors of -1 numbers, not 1 to 4,096"),
    (set_gallery("dimension", "10000000000"), "its model record says vectors of 10,000,000,000 numbers, not 1 to 4,096"),
    (set_gallery("dimension", "0"), "its model record says vectors of 0 numbers"),
    (set_gallery("dimension", '"128"'), 'its model record is not {"models"'),
    (set_gallery("models", "[1]"), 'its model record is not {"models"'),
    (set_gallery("models,profile", '"no-such"'), "its model record names the model profile 'no-such', which this "
                                                 "version of facerec does not know"),
    ("UPDATE facerec_meta SET value = to_jsonb(repeat('A', 3000000)) WHERE key = 'gallery'",
     "its model record is 3,000,002 bytes, more than the 65,536 one may have"),
    ("UPDATE facerec_meta SET value = '\"1\"' WHERE key = 'schema_version'", "its schema_version is not a whole number"),
    ("UPDATE facerec_meta SET value = '\"7\"' WHERE key = 'generation'", "its generation is not a whole number"),
    ("UPDATE facerec_meta SET value = '1e30' WHERE key = 'generation'", "its generation is not a whole number"),
]


@pytest.mark.parametrize("statement, said", HOSTILE_META)
def test_a_hostile_gallery_record_is_one_clean_error(database_url, tmp_path, statement, said):  # noqa: F811
    enrol(PostgresStore(database_url), tmp_path / "dataset", dataset_records())
    rows(database_url, statement)
    result = run_script("evaluate.py", "--embeddings", database_url)
    assert_clean_failure(result, f"the gallery in {database_url} is damaged: {said}")
    assert result.stderr.count("\n") == 1, result.stderr


def change(url: str, statement: str) -> None:
    """`statement` as a committed change of the gallery: the generation counted, the watchers told."""
    rows(url, f"WITH done AS ({statement} RETURNING 1), counted AS (UPDATE facerec_meta SET value = "
              "to_jsonb((value #>> '{}')::bigint + 1) WHERE key = 'generation' RETURNING 1) "
              "SELECT pg_notify('facerec_gallery', '') FROM counted")


def test_a_watch_that_meets_a_damaged_gallery_warns_once_and_keeps_watching(database_url, tmp_path):  # noqa: F811
    enrol(PostgresStore(database_url), tmp_path / "door", dataset_records())
    recogniser = PostgresStore(database_url)
    before = recogniser.load()
    follower = Follower()
    watch = recogniser.watch(follower.on_change, follower.on_problem)
    try:
        writer = PostgresStore(database_url).open_writer(tmp_path / "hall", MODELS, DIMENSION)
        writer.record("newcomer/1.jpg", signature(0), "used", "newcomer", unit_vectors(1, 9)[0])
        assert follower.next_gallery().names == before.names + ["newcomer"]
        # damaged, and the newcomer deleted meanwhile; then damaged otherwise
        change(database_url, set_gallery("dimension", "-1"))
        change(database_url, "DELETE FROM facerec_images WHERE key = 'newcomer/1.jpg'")
        assert follower.problem.wait(WAIT), "the damage was not reported"
        change(database_url, set_gallery("dimension", "10000000000"))
        # repaired: the deletion made while it was damaged takes effect
        change(database_url, set_gallery("dimension", str(DIMENSION)))
        assert follower.next_gallery().names == before.names
        assert len(follower.galleries) == 2
        assert len(follower.problems) == 2, follower.problems
        assert "is damaged: its model record says vectors of -1 numbers" in follower.problems[0]
        assert follower.problems[0].endswith("keeping the gallery already loaded")
        assert follower.problems[1] == f"the gallery in {recogniser.location} is usable again"
    finally:
        watch.stop()


def test_a_running_recogniser_outlives_a_damaged_gallery_and_forgets_a_person_deleted_after(database_url,  # noqa: F811
                                                                                              tmp_path):
    enrol_photos(linked_dataset(tmp_path / "door"), database_url, *sface_model_args())
    hall = linked_dataset(tmp_path / "hall", {"lin": shared_path(LIN_PHOTO)})
    enrol_photos(hall, database_url, *sface_model_args())
    camera = PacedCamera(tmp_path / "camera.y4m", database_url, y4m_frames(LIN_FRAMES))
    try:
        camera.wait_for(lambda: any("lin" in names(record) for record in camera.records), "lin named")
        change(database_url, set_gallery("dimension", "-1"))
        camera.wait_for(lambda: "is damaged" in "".join(camera.stderr), "the warning")
        damaged = len(camera.records)
        camera.wait_for(lambda: len(camera.records) >= damaged + 10, "frames with the damaged gallery")
        assert all("lin" in names(record) for record in camera.records[damaged:])  # the gallery it had
        change(database_url, set_gallery("dimension", "10000000000"))
        rows(database_url, set_gallery("dimension", "128"))  # repaired (without telling anyone)
        shutil.rmtree(hall / "lin")  # then deleted on another machine
        enrol_photos(hall, database_url, *sface_model_args())
        deleted = len(camera.records)
        camera.wait_for(lambda: len(camera.records) >= deleted + WITHIN_TWO_SECONDS + 10, "frames after the deletion")
        assert not any("lin" in names(record) for record in camera.records[deleted + WITHIN_TWO_SECONDS:])
    finally:
        returncode = camera.stop()
    stderr = "".join(camera.stderr)
    assert returncode == 0 and "Traceback" not in stderr, stderr
    assert stderr.count("is damaged") == 1 and stderr.count("is usable again") == 1, stderr


# --- items 14-16: names, paths, vectors and their count bounded in SQL, before anything is fetched ---

class Traced:
    """A store whose connection's protocol messages are written to `path` (libpq's trace)."""

    def __init__(self, url: str, path: Path) -> None:
        self.store, self.path = PostgresStore(url), path
        self._file = open(path, "w")
        self.store._connection.pgconn.trace(self._file.fileno())

    def text(self) -> str:
        self.store._connection.pgconn.untrace()
        self._file.close()
        return self.path.read_text(errors="replace")


def assert_refused_unread(url: str, tmp_path: Path, said: str, read=lambda store: store.load()) -> None:
    """Reading the gallery is refused with `said`; neither its listing nor its vectors were asked for."""
    traced = Traced(url, tmp_path / "trace")
    with pytest.raises(FacerecError, match=said):
        read(traced.store)
    trace = traced.text()
    assert "json_agg" not in trace and "json_object_agg" not in trace and "COPY" not in trace
    assert len(trace) < 100_000  # what was received: no name, path or vector of megabytes


@pytest.mark.parametrize("column, size, said", [
    ("person", 3_000_000, "a person's name is 3,000,000 bytes, more than the 1,020 one may have"),
    ("key", 2_100, "a photo's path is 2,100 bytes, more than the 2,041 one may have"),  # (indexed: at most ~2.7 kB)
    ("origin", 5_000, "a dataset folder's name is 5,000 bytes, more than the 4,352 one may have"),
])
def test_a_huge_name_or_path_is_refused_before_it_is_fetched(database_url, tmp_path, column, size, said):  # noqa: F811
    enrol(PostgresStore(database_url), tmp_path / "dataset", dataset_records())
    if column == "origin":  # too long for the (origin, key) index: a hostile database has none
        rows(database_url, "ALTER TABLE facerec_images DROP CONSTRAINT facerec_images_origin_key_key")
    rows(database_url, f"UPDATE facerec_images SET {column} = repeat('A', {size}) WHERE id = "
                       "(SELECT max(id) FROM facerec_images WHERE vector IS NOT NULL)")
    assert_refused_unread(database_url, tmp_path, said)
    result = run_script("evaluate.py", "--embeddings", database_url)
    assert_clean_failure(result, said)
    assert result.stderr.count("\n") == 1, result.stderr


def test_a_huge_status_is_refused_before_the_images_of_a_dataset_are_fetched(database_url, tmp_path):  # noqa: F811
    enrol(PostgresStore(database_url), tmp_path / "dataset", dataset_records())
    rows(database_url, "UPDATE facerec_images SET status = repeat('A', 3000000) WHERE vector IS NULL")
    assert_refused_unread(database_url, tmp_path, "a photo's status is 3,000,000 bytes, more than the 4,096",
                          lambda store: store.known_images(tmp_path / "dataset"))


def test_a_huge_vector_is_refused_before_it_is_fetched(database_url, tmp_path):  # noqa: F811
    enrol(PostgresStore(database_url), tmp_path / "dataset", dataset_records())
    # in a block of ids of its own, so that it is sent whole unless refused first (random: not compressible)
    rows(database_url, "INSERT INTO facerec_images (id, origin, key, person, size, mtime_ns, status, vector) "
                       "SELECT 1000000, 'elsewhere:/d', 'big/1.jpg', 'big', 1, 1, 'used', "
                       "string_agg(float4send(random()::float4), ''::bytea) FROM generate_series(1, 1000000)")
    assert_refused_unread(database_url, tmp_path, "1 vector of 10 is not of the 128 numbers its model record says")


@pytest.mark.parametrize("change", ["substr(vector, 1, 511)", "vector || '\\x00'::bytea", "''::bytea"])
def test_a_vector_of_the_wrong_length_is_refused_before_it_is_fetched(database_url, tmp_path, change):  # noqa: F811
    enrol(PostgresStore(database_url), tmp_path / "dataset", dataset_records())
    rows(database_url, f"UPDATE facerec_images SET vector = {change} WHERE id = "
                       "(SELECT min(id) FROM facerec_images WHERE vector IS NOT NULL)")
    assert_refused_unread(database_url, tmp_path, "1 vector of 9 is not of the 128 numbers its model record says")
    assert_refused_unread(database_url, tmp_path, "1 vector of 9 is not of the 128 numbers its model record says",
                          lambda store: store.known_images(tmp_path / "dataset"))


def test_more_vectors_than_the_file_store_takes_are_refused_before_they_are_fetched(database_url, tmp_path,  # noqa: F811
                                                                                    monkeypatch):
    assert reading.MAX_VECTORS == 5_000_000  # the embeddings file's limit; made small here, not 5 million rows
    enrol(PostgresStore(database_url), tmp_path / "dataset", dataset_records())
    monkeypatch.setattr(reading, "MAX_VECTORS", 8)
    assert_refused_unread(database_url, tmp_path, "it holds 9 images with 9 vectors of 128 numbers, more than the 8 "
                                                  "vectors")
    monkeypatch.setattr(reading, "MAX_VECTORS", 9)
    assert len(PostgresStore(database_url).load()) == 9


def test_rows_with_far_apart_or_negative_ids_load_whole_and_at_once(database_url, tmp_path):  # noqa: F811
    """The gallery is read in blocks of ids: only blocks that hold rows are visited, so an id of 2^62 (a hostile
    or restored row) neither hangs the read nor drops a row, and a negative id lands in its own block."""
    store = PostgresStore(database_url)
    enrol(store, tmp_path / "dataset", dataset_records())
    written = store.load()
    rows(database_url, "UPDATE facerec_images SET id = 4611686018427387904 WHERE id = "
                       "(SELECT max(id) FROM facerec_images WHERE vector IS NOT NULL)")
    rows(database_url, "UPDATE facerec_images SET id = -5 WHERE id = "
                       "(SELECT min(id) FROM facerec_images WHERE vector IS NOT NULL)")
    loaded = PostgresStore(database_url).load()
    assert sorted(zip(loaded.names, loaded.paths)) == sorted(zip(written.names, written.paths))
    assert len(loaded.vectors) == len(written.vectors)

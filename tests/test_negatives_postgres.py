"""Negative examples in a real PostgreSQL gallery (tests/postgres_server.py): kept in facerec_negatives, read with
the gallery, told to watchers, kept by enrolments, made on first use in a database from before the table."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import run_script, shared_path
from helpers import assert_clean_failure
from postgres_server import database_url, postgres_server  # noqa: F401 (fixtures)
from test_postgres_store import (DIMENSION, MODELS, Follower, dataset_records, enrol, generation, rows, signature,
                                 unit_vectors)
from test_sface import enrol as extract, linked_dataset, sface_model_args

from facerec.errors import FacerecError
from facerec.follower import Naming
from facerec.matching import UNKNOWN
from facerec.stores.postgres import PostgresStore


def test_a_negative_is_kept_read_with_the_gallery_and_used_by_the_matcher(database_url, tmp_path):
    store = PostgresStore(database_url)
    _, gallery = enrol(store, tmp_path / "dataset", dataset_records())
    assert len(gallery.negatives) == 0
    person = gallery.names[0]
    face = gallery.vectors[0]
    assert Naming("nearest", 0.5).matcher(gallery).match(face)[0].name == person
    was = generation(database_url)
    kept = store.add_negative(person, face, {**MODELS, "confidence": 0.5})
    assert generation(database_url) == was + 1  # watchers are told
    assert kept.negatives.names == [person] and np.array_equal(kept.negatives.vectors, face[None])
    again = PostgresStore(database_url).load()
    assert again.negatives.names == [person] and np.array_equal(again.negatives.vectors, face[None])
    assert Naming("nearest", 0.5).matcher(again).match(face)[0].name == UNKNOWN
    assert rows(database_url, "SELECT person, octet_length(vector) FROM facerec_negatives") == [(person, 4 * DIMENSION)]


def test_a_negative_the_gallery_cannot_use_is_refused_and_nothing_is_written(database_url, tmp_path):
    store = PostgresStore(database_url)
    _, gallery = enrol(store, tmp_path / "dataset", dataset_records())
    for person, vector, models, message in [
        ("nobody", gallery.vectors[0], MODELS, "nobody is not in the gallery"),
        (gallery.names[0], gallery.vectors[0], {**MODELS, "profile": "openface"}, "other models"),
        (gallery.names[0], np.ones(DIMENSION, np.float32), MODELS, "has length"),
        (gallery.names[0], unit_vectors(1, 3, 64)[0], MODELS, "64-d vector"),
    ]:
        with pytest.raises(FacerecError, match=message):
            store.add_negative(person, vector, models)
    assert rows(database_url, "SELECT count(*) FROM facerec_negatives") == [(0,)]
    rows(database_url, "INSERT INTO facerec_negatives (person, vector) VALUES ('obama', '\\x000102')")
    with pytest.raises(FacerecError, match="damaged: 1 negative example of 1 not of the 128 numbers"):
        PostgresStore(database_url).load()
    rows(database_url, "DROP TABLE facerec_images, facerec_meta, facerec_sightings, facerec_negatives")
    with pytest.raises(FacerecError, match="holds no gallery yet"):
        PostgresStore(database_url).add_negative("obama", gallery.vectors[0], MODELS)


def test_a_watcher_is_given_the_gallery_with_the_new_negative_and_enrolment_keeps_it(database_url, tmp_path):
    store = PostgresStore(database_url)
    _, gallery = enrol(store, tmp_path / "dataset", dataset_records())
    watcher = PostgresStore(database_url)
    watcher.load()
    follower = Follower()
    watch = watcher.watch(follower.on_change, follower.on_problem)
    try:
        store.add_negative(gallery.names[1], gallery.vectors[3], MODELS)
        assert follower.next_gallery().negatives.names == [gallery.names[1]]
    finally:
        watch.stop()
    writer = store.open_writer(tmp_path / "dataset", MODELS, DIMENSION)  # an extraction re-run, a photo more
    writer.record("newcomer/1.jpg", signature(99), "used", "newcomer", unit_vectors(1, 42)[0])
    writer.finish()
    after = store.load()
    assert "newcomer" in after.names and after.negatives.names == [gallery.names[1]]


def test_a_database_from_before_the_table_reads_without_negatives_and_gets_it_on_first_use(database_url, tmp_path):
    store = PostgresStore(database_url)
    _, gallery = enrol(store, tmp_path / "dataset", dataset_records())
    rows(database_url, "DROP TABLE facerec_negatives")  # as a database made before this version
    assert len(PostgresStore(database_url).load().negatives) == 0
    kept = PostgresStore(database_url).add_negative(gallery.names[0], gallery.vectors[0], MODELS)
    assert kept.negatives.names == [gallery.names[0]]


def test_emptying_the_gallery_for_other_models_forgets_its_negatives(database_url, tmp_path):
    store = PostgresStore(database_url)
    _, gallery = enrol(store, tmp_path / "dataset", dataset_records())
    store.add_negative(gallery.names[0], gallery.vectors[0], MODELS)
    other = {**MODELS, "sha256": {"face_detection_yunet.onnx": "ef" * 32, "face_recognition_sface.onnx": "01" * 32}}
    enrol(store, tmp_path / "dataset", dataset_records(1), models=other, force=True)
    assert len(store.load().negatives) == 0


def test_unknowns_not_keeps_a_negative_in_a_postgresql_gallery_as_a_user_runs_it(database_url, tmp_path):
    extract(linked_dataset(tmp_path / "dataset"), database_url, *sface_model_args())
    lin = str(shared_path("faces/probe/lin-manuel-miranda.png"))
    result = run_script("unknowns.py", "--embeddings", database_url, *sface_model_args(), "not", "obama", lin)
    assert result.returncode == 0, result.stderr
    gallery = PostgresStore(database_url).load()
    assert gallery.negatives.names == ["obama"]
    assert Naming("nearest", 1.07).matcher(gallery).match(gallery.negatives.vectors)[0].name == UNKNOWN
    refused = run_script("unknowns.py", "--embeddings", database_url, *sface_model_args(), "not", "lin", lin)
    assert_clean_failure(refused, "lin is not in the gallery")
    assert len(PostgresStore(database_url).load().negatives) == 1

"""The embeddings file: round trips, the seed scripts' format, and refusal of bad or hostile files."""

import os
import pickle

import numpy as np
import pytest

from facerec.errors import FacerecError
from facerec.store import EmbeddingStore, load_store, save_store


def make_store(n=4, dimension=128, seed=0) -> EmbeddingStore:
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(n, dimension)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    names = [f"person{i % 2}" for i in range(n)]
    paths = [f"{name}/{i}.jpg" for i, name in enumerate(names)]
    files = {path: {"size": 10 + i, "mtime_ns": i, "status": "used"} for i, path in enumerate(paths)}
    return EmbeddingStore(vectors, names, paths, "openface", {"profile": "openface"}, files)


def test_save_then_load_gives_back_the_same_store(tmp_path):
    store = make_store()
    save_store(store, tmp_path / "e.pickle")
    loaded = load_store(tmp_path / "e.pickle")
    np.testing.assert_array_equal(loaded.vectors, store.vectors)
    assert (loaded.names, loaded.paths, loaded.profile, loaded.models, loaded.files) == (
        store.names, store.paths, store.profile, store.models, store.files)


def test_file_keeps_the_seed_scripts_keys(tmp_path):
    save_store(make_store(), tmp_path / "e.pickle")
    with open(tmp_path / "e.pickle", "rb") as handle:
        data = pickle.load(handle)
    assert len(data["embeddings"]) == len(data["names"]) == 4
    assert data["embeddings"][0].shape == (128,)
    assert data["names"] == ["person0", "person1", "person0", "person1"]


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_seed_format_loads_as_openface(tmp_path, protocol):
    # what the classic tutorial's extract_embeddings.py writes: flattened float64 vectors and names
    vectors = [np.random.default_rng(i).normal(size=128) for i in range(3)]
    vectors = [vector / np.linalg.norm(vector) for vector in vectors]  # OpenFace's vectors have length 1
    with open(tmp_path / "seed.pickle", "wb") as handle:
        handle.write(pickle.dumps({"embeddings": vectors, "names": ["a", "b", "a"]}, protocol=protocol))
    store = load_store(tmp_path / "seed.pickle")
    assert store.profile == "openface"
    assert store.names == ["a", "b", "a"]
    np.testing.assert_allclose(store.vectors, np.array(vectors), rtol=1e-6)


def test_a_failed_save_leaves_the_previous_file_intact(tmp_path, monkeypatch):
    target = tmp_path / "e.pickle"
    save_store(make_store(seed=1), target)
    before = target.read_bytes()

    def explode(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(pickle, "dump", explode)
    with pytest.raises(RuntimeError):
        save_store(make_store(seed=2), target)
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e.pickle"]


class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_pickle_that_would_run_code_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pickle"
    evil.write_bytes(pickle.dumps({"embeddings": [_RunsCode(marker)], "names": ["x"]}))
    with pytest.raises(FacerecError, match=r"evil\.pickle was refused: .*system"):
        load_store(evil)
    assert not marker.exists()


@pytest.mark.parametrize("content, problem", [
    (b"", "is empty"),
    (b"this is not a pickle at all", "not a readable embeddings pickle"),
    (pickle.dumps({"embeddings": [np.zeros(128)] * 3, "names": ["a"] * 3})[:40], "not a readable embeddings pickle"),
    (pickle.dumps([1, 2, 3]), 'expected a dict with "embeddings" and "names"'),
    (pickle.dumps({"embeddings": [np.zeros(128)] * 2, "names": ["a"]}), "2 embeddings but 1 names"),
    (pickle.dumps({"embeddings": [np.zeros(128), np.zeros(64)], "names": ["a", "b"]}), "different lengths"),
    (pickle.dumps({"embeddings": [np.full(128, np.nan)], "names": ["a"]}), "NaN"),
    (pickle.dumps({"embeddings": [np.zeros(128)], "names": [3]}), "list of strings"),
    (pickle.dumps({"embeddings": [["x"] * 128], "names": ["a"]}), "numeric vectors"),
])
def test_broken_files_give_a_message_naming_file_and_problem(tmp_path, content, problem):
    path = tmp_path / "broken.pickle"
    path.write_bytes(content)
    with pytest.raises(FacerecError) as caught:
        load_store(path)
    assert str(path) in str(caught.value)
    assert problem in str(caught.value)


def test_missing_file_says_how_to_make_one(tmp_path):
    with pytest.raises(FacerecError, match="does not exist: run extract_embeddings.py"):
        load_store(tmp_path / "nope.pickle")

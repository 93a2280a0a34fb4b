"""The embeddings file: round trips, the seed scripts' format, and refusal of bad or hostile files."""

import os
import pickle

import numpy as np
import pytest

import crafted_pickles
from conftest import run_script
from facerec.errors import FacerecError
from facerec.fileio import temporary_prefix
from facerec.stores import Gallery, NotAStore, UnusableStore, load_store, save_store


def make_store(n=4, dimension=128, seed=0) -> Gallery:
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(n, dimension)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    names = [f"person{i % 2}" for i in range(n)]
    paths = [f"{name}/{i}.jpg" for i, name in enumerate(names)]
    files = {path: {"size": 10 + i, "mtime_ns": i, "status": "used"} for i, path in enumerate(paths)}
    return Gallery(vectors, names, paths, "openface", {"profile": "openface"}, files)


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


def test_the_vectors_are_one_float32_array_and_the_classic_tutorials_idioms_still_work(tmp_path):
    # issue 22: one 2-D array (a million vectors load in about a second), still read as the seed's scripts read it
    from sklearn.preprocessing import LabelEncoder
    from sklearn.svm import SVC

    store = make_store(n=20)
    save_store(store, tmp_path / "e.pickle")
    with open(tmp_path / "e.pickle", "rb") as handle:
        data = pickle.load(handle)
    assert isinstance(data["embeddings"], np.ndarray) and data["embeddings"].shape == (20, 128)
    assert data["embeddings"].dtype == np.float32 and data["names"] == store.names
    rows = [vector for vector in data["embeddings"]]  # the seed iterates the embeddings
    assert len(rows) == 20 and all(row.shape == (128,) for row in rows)
    np.testing.assert_array_equal(np.array(data["embeddings"]), store.vectors)
    labels = LabelEncoder()  # train_model.py of the classic tutorial
    recognizer = SVC(C=1.0, kernel="linear").fit(data["embeddings"], labels.fit_transform(data["names"]))
    assert list(labels.inverse_transform(recognizer.predict(np.array(data["embeddings"])))) == store.names


@pytest.mark.parametrize("name", sorted(crafted_pickles.hostile_splits()))
def test_the_one_call_besides_numpys_is_refused_in_any_other_use(tmp_path, name):
    path = tmp_path / "e.pickle"
    path.write_bytes(crafted_pickles.hostile_splits()[name])
    with pytest.raises(NotAStore, match=r"was refused: it (calls getattr other|refers to builtins.dict|splits something|decodes more)"):
        load_store(path)


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


def write_pickle(path, content, protocol=4):
    path.write_bytes(pickle.dumps(content, protocol=protocol))
    return path


def unit_vectors(n, dimension=128, seed=0):
    vectors = np.random.default_rng(seed).normal(size=(n, dimension)).astype(np.float32)
    return list(vectors / np.linalg.norm(vectors, axis=1, keepdims=True))


@pytest.mark.parametrize("damage, problem", [
    (lambda c: c.update(files=list(c["files"])), '"files" must be a dict'),
    (lambda c: next(iter(c["files"].values())).pop("status"), 'the "files" record of'),
    (lambda c: next(iter(c["files"].values())).update(size="12"), '"size": int'),
    (lambda c: c.update(models={"a": [[[[[["deep"]]]]]]}), '"models" must be'),
    (lambda c: c.update(paths=["a"]), '"paths" must be a list'),
])
def test_a_store_with_malformed_records_is_damaged_not_a_traceback(tmp_path, damage, problem):
    save_store(make_store(), tmp_path / "e.pickle")
    # the records as format 1 keeps them (still loaded, still checked); format 2's columns below
    content = crafted_pickles.format1(pickle.loads((tmp_path / "e.pickle").read_bytes()))
    damage(content)
    path = write_pickle(tmp_path / "damaged.pickle", content)
    with pytest.raises(UnusableStore) as caught:
        load_store(path)
    assert f"embeddings file {path} is damaged: " in str(caught.value) and problem in str(caught.value)
    assert "run extract_embeddings.py" in str(caught.value)


@pytest.mark.parametrize("damage, problem", [
    (lambda f: f.update(size=[str(size) for size in f["size"]]), '"files" "size" must be a 1-D integer array'),
    (lambda f: f.update(mtime_ns=f["mtime_ns"].astype(np.float64)), '"files" "mtime_ns" must be a 1-D integer'),
    (lambda f: f.update(keys=f["keys"][:-1]), 'the "files" columns must be of one length'),
    (lambda f: f["status"].__setitem__(0, 12), '"files" "status" must be a list of strings'),
])
def test_a_store_with_malformed_file_columns_is_damaged_not_a_traceback(tmp_path, damage, problem):
    save_store(make_store(), tmp_path / "e.pickle")
    content = pickle.loads((tmp_path / "e.pickle").read_bytes())
    damage(content["files"])
    path = write_pickle(tmp_path / "damaged.pickle", content)
    with pytest.raises(UnusableStore) as caught:
        load_store(path)
    assert f"embeddings file {path} is damaged: " in str(caught.value) and problem in str(caught.value)


@pytest.mark.parametrize("vector, length", [(np.zeros(128), "length 0,"), (np.full(128, 0.5), "length 5.657"),
                                            (np.full(128, 1 / np.sqrt(128)) * 1.002, "length 1.002")])
def test_zero_or_non_unit_vectors_are_refused(tmp_path, vector, length):
    # an all-zero gallery would name every face (every query is at distance 1 from it)
    path = write_pickle(tmp_path / "e.pickle", {"embeddings": [vector] * 2 + unit_vectors(1), "names": ["obama"] * 3})
    with pytest.raises(UnusableStore, match=f"vector 0 \\(obama\\) has {length}.*within 0.001"):
        load_store(path)


def test_float16_and_float32_rounding_of_unit_vectors_is_accepted(tmp_path):
    vectors = unit_vectors(50)
    for dtype in (np.float16, np.float32, np.float64):
        path = write_pickle(tmp_path / "e.pickle", {"embeddings": [v.astype(dtype) for v in vectors], "names": ["a"] * 50})
        assert load_store(path).vectors.shape == (50, 128)


def test_a_store_of_an_unknown_profile_says_so_and_lists_the_known_ones(tmp_path):
    store = make_store()
    store.profile = "nonexistent"
    save_store(store, tmp_path / "e.pickle")
    with pytest.raises(UnusableStore) as caught:
        load_store(tmp_path / "e.pickle")
    message = str(caught.value)
    assert "records the model profile 'nonexistent', which this version of facerec does not know" in message
    assert "(it knows: openface, sface)" in message and "--model" not in message


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
@pytest.mark.parametrize("numpy1", [False, True])
def test_numpy_1_and_2_pickles_of_every_protocol_load(tmp_path, protocol, numpy1):
    path = tmp_path / "seed.pickle"
    path.write_bytes(crafted_pickles.tutorial_store(3, 128, protocol, numpy1))
    store = load_store(path)
    assert store.vectors.shape == (3, 128) and not store.profile_recorded and store.profile == "openface"


def test_a_two_dimensional_array_of_vectors_loads(tmp_path):
    path = write_pickle(tmp_path / "e.pickle", {"embeddings": np.array(unit_vectors(3)), "names": ["a", "b", "c"]}, 5)
    assert load_store(path).vectors.shape == (3, 128)


def test_a_classic_tutorial_file_is_described_as_recording_no_profile(tmp_path):
    path = tmp_path / "seed.pickle"
    path.write_bytes(crafted_pickles.tutorial_store(3, 128, 3))
    result = run_script("recognize_video.py", "--model", "sface", "--embeddings", str(path), "--no-display")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert (f"error: {path} records no model profile (a classic tutorial file); assumed openface: "
            "recognise with --model openface, or re-run extract_embeddings.py --model sface") in result.stderr
    assert "made with" not in result.stderr


def test_recognize_video_names_an_unknown_profile_without_suggesting_it(tmp_path):
    store = make_store()
    store.profile = "nonexistent"
    save_store(store, tmp_path / "e.pickle")
    result = run_script("recognize_video.py", "--embeddings", str(tmp_path / "e.pickle"), "--no-display")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "this version of facerec does not know (it knows: openface, sface)" in result.stderr
    assert "--model nonexistent" not in result.stderr


def test_temporary_names_fit_in_255_bytes(tmp_path):
    for name in ["e.pickle", "x" * 241, "x" * 242, "é" * 127, "x" * 255]:
        prefix = temporary_prefix(name)
        assert len(os.fsencode(prefix)) + 8 + len(".tmp") <= 255
        assert prefix == f".{name}." or len(os.fsencode(name)) + 14 > 255
    assert temporary_prefix("a" * 250 + "1") != temporary_prefix("a" * 250 + "2")


def test_a_pickle_cannot_change_the_loader_s_own_functions(tmp_path):
    # BUILD with a "slot state" on a global would setattr on it: here, the stand-in for numpy's _reconstruct
    import facerec.stores.picklefile.unpickler as store_module
    before = store_module._reconstruct.__defaults__
    path = tmp_path / "e.pickle"
    path.write_bytes(b"\x80\x02cnumpy._core.multiarray\n_reconstruct\nN}X\x0c\x00\x00\x00__defaults__)s\x86b.")
    with pytest.raises(FacerecError, match="was refused: it sets the state of something other than"):
        load_store(path)
    assert store_module._reconstruct.__defaults__ == before

"""Where extract_embeddings.py may write its store (issue 16 items 2, 5, 10, 15): only over an embeddings
file or nothing, checked before the work starts, and a failure at the end keeps the previous file."""

import os
import pickle
import resource
import signal
import subprocess
import sys

import numpy as np
import pytest

import crafted_pickles
from conftest import PROJECT_ROOT, run_script, shared_path
from helpers import assert_clean_failure, device_node, stand_in_openface

from facerec.stores import load_store


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    return ["--detector", str(shared_path("models")), "--embedding-model", str(stand_in_openface(folder))]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("dataset") / "dataset"
    (root / "obama").mkdir(parents=True)
    os.symlink(shared_path("faces/known/obama/obama.jpg"), root / "obama" / "obama.jpg")
    return root


@pytest.fixture(scope="module")
def good_store(models, dataset, tmp_path_factory):
    """The bytes of a store extract_embeddings.py made from `dataset`."""
    path = tmp_path_factory.mktemp("store") / "e.pickle"
    result = extract(models, dataset, path)
    assert result.returncode == 0, result.stderr
    return path.read_bytes()


def extract(models, dataset, embeddings, *extra, **kwargs):
    return run_script("extract_embeddings.py", "--dataset", str(dataset), "--embeddings", str(embeddings),
                      "--quiet", *models, *extra, **kwargs)


def assert_refused_before_work(result, *fragments):
    assert_clean_failure(result, *fragments)
    assert result.stdout == ""  # no report: nothing was enrolled before the refusal


# item 2: replace only an embeddings file ------------------------------------------------------

@pytest.mark.parametrize("content", [b"my notes, not a pickle\n", b"\xff\xd8\xff\xe0 a JPEG photo",
                                     b"#!/bin/sh\necho a script\n", pickle.dumps({"some": "other pickle"})])
def test_a_file_that_is_not_a_store_is_not_replaced_without_force(models, dataset, tmp_path, content):
    target = tmp_path / "precious.pickle"
    target.write_bytes(content)
    result = extract(models, dataset, target)
    assert_refused_before_work(result, f"embeddings file {target}", "replaces only an embeddings file", "--force")
    assert target.read_bytes() == content
    forced = extract(models, dataset, target, "--force")
    assert forced.returncode == 0, forced.stderr
    assert "warning:" in forced.stderr and "--force" in forced.stderr
    assert len(load_store(target)) == 1


@pytest.mark.parametrize("kind", ["null device", "fifo", "folder"])
def test_a_device_fifo_or_folder_is_never_replaced_even_with_force(models, dataset, tmp_path, kind):
    if kind == "fifo":
        target = tmp_path / "fifo.pickle"
        os.mkfifo(target)
    elif kind == "folder":
        target = tmp_path / "folder.pickle"
        target.mkdir()
    else:  # a private twin of /dev/null: a failing run must not replace the system's (as root it did)
        target = device_node(tmp_path, "null", 1, 3)
    for extra in ([], ["--force"]):
        result = extract(models, dataset, target, *extra, timeout=120)
        assert_refused_before_work(result, f"embeddings file {target} is", "not a regular file")
    assert os.path.exists(target) and not os.path.isfile(target)


def test_a_symbolic_link_is_followed_and_stays_a_link(models, dataset, tmp_path, good_store):
    real = tmp_path / "real" / "e.pickle"
    real.parent.mkdir()
    real.write_bytes(good_store)
    link = tmp_path / "link.pickle"
    os.symlink(real, link)
    os.utime(real, ns=(0, 0))
    result = extract(models, dataset, link)
    assert result.returncode == 0, result.stderr
    assert os.path.islink(link) and os.readlink(link) == str(real)
    assert real.stat().st_mtime_ns != 0  # the file the link points to was replaced
    assert len(load_store(link)) == 1
    assert sorted(p.name for p in real.parent.iterdir()) == ["e.pickle"]


def test_a_symbolic_link_to_a_file_that_is_not_a_store_is_refused(models, dataset, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("not a store")
    link = tmp_path / "link.pickle"
    os.symlink(notes, link)
    result = extract(models, dataset, link)
    assert_refused_before_work(result, f"embeddings file {link} is not", f"(a link to {notes})", "--force")
    assert os.path.islink(link) and notes.read_text() == "not a store"


def test_an_empty_file_is_replaced(models, dataset, tmp_path):
    target = tmp_path / "e.pickle"
    target.write_bytes(b"")
    result = extract(models, dataset, target)
    assert result.returncode == 0, result.stderr
    assert len(load_store(target)) == 1


# item 5: an unwritable target is refused before the work; a failure at the end keeps the previous file

@pytest.mark.parametrize("case", ["parent is a file", "empty name", "read-only place"])
def test_an_unwritable_target_is_refused_before_the_work(models, dataset, tmp_path, case):
    if case == "parent is a file":
        (tmp_path / "afile").write_text("x")
        target, message = str(tmp_path / "afile" / "e.pickle"), "cannot write embeddings file"
    elif case == "empty name":
        target, message = "", "is a folder, not a regular file"
    else:  # root ignores file modes; /sys refuses new files even to root
        target, message = "/sys/facerec-e.pickle", "cannot write embeddings file /sys/facerec-e.pickle"
    result = extract(models, dataset, target, cwd=tmp_path)
    assert_refused_before_work(result, message)
    assert sorted(p.name for p in tmp_path.iterdir()) == (["afile"] if case == "parent is a file" else [])


def _file_size_limit(limit):
    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def test_a_full_disk_at_the_end_is_an_error_line_and_keeps_the_previous_file(models, dataset, tmp_path, good_store):
    target = tmp_path / "e.pickle"
    target.write_bytes(good_store)
    limit = len(good_store) // 2  # as if the disk had room for half the new file
    result = subprocess.run([sys.executable, str(PROJECT_ROOT / "extract_embeddings.py"), "--dataset", str(dataset),
                             "--embeddings", str(target), "--quiet", *models],
                            capture_output=True, text=True, timeout=300, preexec_fn=_file_size_limit(limit))
    assert_clean_failure(result, f"cannot write embeddings file {target}", "the previous file (if any) is unchanged")
    assert "1 image used" in result.stdout  # the failure came at the end, after the work
    assert target.read_bytes() == good_store
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e.pickle"]  # no temporary file left


# item 10: file names up to 255 bytes ---------------------------------------------------------

def test_a_251_byte_file_name_works_and_a_256_byte_one_is_a_clean_error(models, dataset, tmp_path):
    long_name = "é" * 121 + ".pickle"  # 2 x 121 + 7 = 249 bytes
    long_name = "ab" + long_name
    assert len(long_name.encode()) == 251
    result = extract(models, dataset, tmp_path / long_name)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [long_name]
    too_long = "x" * 249 + ".pickle"
    result = extract(models, dataset, tmp_path / too_long)
    assert_refused_before_work(result, "cannot write embeddings file", "File name too long")


# item 15: a store with malformed records -----------------------------------------------------

def extract_over_damaged(models, dataset, target, content):
    """Write `content` (a store's dict, damaged) at target, then run extract_embeddings.py over it."""
    target.write_bytes(pickle.dumps(content))
    result = extract(models, dataset, target)
    assert result.returncode == 0, result.stderr
    assert "1 processed now" in result.stdout  # the image was redone, not taken from the damaged file
    return result


def test_vectors_of_another_length_from_the_same_models_are_redone(models, dataset, tmp_path, good_store):
    content = pickle.loads(good_store)
    content["embeddings"] = [np.full(64, 1 / 8, np.float32)]  # unit vectors, but 64-d: the models make 128-d
    result = extract_over_damaged(models, dataset, tmp_path / "e.pickle", content)
    assert "64-d vectors" in result.stderr and "every image is redone" in result.stderr
    assert load_store(tmp_path / "e.pickle").vectors.shape == (1, 128)


def test_a_store_in_the_older_layout_is_reused_and_rewritten_as_one_array(models, dataset, tmp_path, good_store):
    target = tmp_path / "e.pickle"
    old = crafted_pickles.format1(pickle.loads(good_store))  # a list of 1-D arrays, records as dicts
    target.write_bytes(pickle.dumps(old, protocol=4))
    result = extract(models, dataset, target)
    assert result.returncode == 0, result.stderr
    assert "0 processed now, 1 unchanged since the last run" in result.stdout  # its vector was reused
    data = pickle.loads(target.read_bytes())
    assert data["format"] == 2 and isinstance(data["embeddings"], np.ndarray) and data["embeddings"].shape == (1, 128)
    np.testing.assert_array_equal(data["embeddings"][0], old["embeddings"][0])
    assert load_store(target).files == old["files"]


@pytest.mark.parametrize("damage", ["files as a list", "record without status", "size not an int"])
def test_a_store_with_malformed_records_is_replaced_with_a_warning(models, dataset, tmp_path, good_store, damage):
    content = crafted_pickles.format1(pickle.loads(good_store))  # the records as format 1 keeps them, still checked
    record = next(iter(content["files"].values()))
    if damage == "files as a list":
        content["files"] = list(content["files"])
    elif damage == "record without status":
        del record["status"]
    else:
        record["size"] = "12"
    result = extract_over_damaged(models, dataset, tmp_path / "e.pickle", content)
    assert "is damaged" in result.stderr and "every image redone" in result.stderr
    assert load_store(tmp_path / "e.pickle").files == crafted_pickles.format1(pickle.loads(good_store))["files"]


def test_a_target_that_cannot_be_written_is_refused_before_any_model_is_looked_for(dataset, tmp_path):
    # the model folder is empty and no mirror answers: had the models been looked for first, the error
    # would list the files to download instead of the real problem
    empty_models = tmp_path / "models"
    empty_models.mkdir()
    folder = tmp_path / "a-folder"
    folder.mkdir()
    result = extract(["--detector", str(empty_models), "--embedding-model", str(empty_models / "missing.t7")],
                     dataset, folder, env={**os.environ, "FACEREC_MODEL_MIRROR": "http://127.0.0.1:9/"})
    assert_refused_before_work(result, f"embeddings file {folder} is a folder")
    assert "download" not in result.stderr

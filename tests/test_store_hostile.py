"""The embeddings file as an attacker writes it (issue 16 items 1 and 4): every script that reads a store
refuses it with one `error:` line and exit code 2, never a crash, a hang or a memory blow-up.

The scripts run in subprocesses limited to 2 GiB of address space: a crash or a runaway allocation
kills (or fails) the subprocess, not the test run.
"""

import os
import resource
import subprocess
import sys

import pytest

import crafted_pickles
from conftest import PROJECT_ROOT, shared_path
from helpers import CLIP, assert_clean_failure, device_node
from test_store_target import dataset, models  # noqa: F401  (fixtures: one photo, the stand-in models)

MEMORY_LIMIT = 2 << 30
READERS = ["recognize_video.py", "evaluate.py", "extract_embeddings.py"]


def _limit_memory():
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def run_limited(args, timeout=120, cwd=PROJECT_ROOT, preexec_fn=_limit_memory):
    """Run a command with at most 2 GiB of address space; the result as text."""
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout, preexec_fn=preexec_fn)


def read_store_with(script, store, models, dataset):
    """Run `script` so that the first thing it does with real work is reading `store`."""
    if script == "recognize_video.py":
        extra = ["--source", str(shared_path(CLIP)), "--no-display", "--json", *models]
    elif script == "extract_embeddings.py":
        extra = ["--dataset", str(dataset), "--quiet", *models]
    else:
        extra = []
    return run_limited([sys.executable, str(PROJECT_ROOT / script), "--embeddings", str(store), *extra])


@pytest.mark.parametrize("script", READERS)
@pytest.mark.parametrize("protocol", [2, 5])
def test_a_pickle_whose_dtype_declares_an_object_field_is_refused_not_dereferenced(
        script, protocol, models, dataset, tmp_path):
    store = tmp_path / "embeddings.pickle"
    store.write_bytes(crafted_pickles.object_field_v8(protocol))
    result = read_store_with(script, store, models, dataset)
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    assert_clean_failure(result, f"error: embeddings file {store}", "refused")
    if script == "extract_embeddings.py":  # not a store: it must not be replaced either
        assert store.read_bytes() == crafted_pickles.object_field_v8(protocol)


@pytest.mark.parametrize("name", sorted(crafted_pickles.hostile_arrays()))
def test_every_non_numeric_array_is_refused_before_numpy_builds_it(name, tmp_path):
    # in a subprocess: a crash must fail this test, not end the test run
    store = tmp_path / "embeddings.pickle"
    store.write_bytes(crafted_pickles.hostile_arrays()[name])
    result = run_limited([sys.executable, str(PROJECT_ROOT / "evaluate.py"), "--embeddings", str(store)])
    assert_clean_failure(result, f"error: embeddings file {store}")
    assert "refused" in result.stderr or "damaged" in result.stderr, result.stderr


@pytest.mark.parametrize("script", READERS)
@pytest.mark.parametrize("device", ["/dev/zero", "/dev/full", "fifo", "folder"])
def test_a_store_is_read_only_from_a_regular_file(script, device, models, dataset, tmp_path):
    if device == "fifo":
        device = tmp_path / "fifo.pickle"
        os.mkfifo(device)  # nobody writes to it: opening it to read would wait forever
    elif device.startswith("/dev/"):  # private twins of /dev/zero and /dev/full: never risk the system's
        device = device_node(tmp_path, device[5:], 1, {"/dev/zero": 5, "/dev/full": 7}[device])
    elif device == "folder":
        device = tmp_path / "folder.pickle"
        device.mkdir()
    result = read_store_with(script, device, models, dataset)
    assert_clean_failure(result, f"{device}", "not a regular file")


@pytest.mark.parametrize("script", READERS)
def test_repeated_references_cannot_expand_a_small_file_into_gigabytes(script, models, dataset, tmp_path):
    store = tmp_path / "embeddings.pickle"
    store.write_bytes(crafted_pickles.repeated_references())
    assert store.stat().st_size < 600_000  # 130,000 x 4096 values: 4 GB as float64
    result = read_store_with(script, store, models, dataset)
    assert_clean_failure(result, f"embeddings file {store}", "more than")


def test_a_nine_byte_pickle_cannot_make_the_unpickler_allocate_a_gigabyte(tmp_path):
    store = tmp_path / "embeddings.pickle"
    store.write_bytes(crafted_pickles.memo_bomb())
    # 512 MiB is plenty for the loader; CPython's C unpickler alone would need 1 GiB for this memo
    limit = 512 << 20
    result = run_limited([sys.executable, "-c", "from facerec.stores import load_store; import sys\n"
                          "try:\n    load_store(sys.argv[1])\nexcept Exception as e:\n    print(repr(e))",
                          str(store)],
                         preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (limit, limit)))
    assert result.returncode == 0, result.stderr
    # refused for what it is (a pickle of None), not for running out of memory
    assert result.stdout.startswith("NotAStore(") and "is not an embeddings file" in result.stdout, result.stdout


def test_the_loader_survives_thousands_of_mutated_and_crafted_pickles(tmp_path):
    # tests/store_fuzz.py: hypothesis mutates valid stores and hostile ones; any outcome other than
    # a loaded store or a FacerecError (another exception, a crash, a hang) fails it
    result = run_limited([sys.executable, str(PROJECT_ROOT / "tests" / "store_fuzz.py"), "--examples", "3000"],
                         timeout=240, cwd=tmp_path)
    assert result.returncode == 0, (result.returncode, result.stdout[-3000:], result.stderr[-3000:])
    assert int(result.stdout.split("fuzzed ")[1].split()[0]) >= 3000, result.stdout

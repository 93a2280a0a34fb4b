"""evaluate.py on hostile or odd vectors: refused with the row named, in bounded time and memory; profile thresholds."""

from __future__ import annotations

import os
import pickle
import resource
import subprocess
import sys

import numpy as np
import pytest

from conftest import PROJECT_ROOT
from facerec.evaluation import PairDistances, best_accuracy_threshold
from facerec.stores import Gallery, save_store
from helpers import assert_clean_failure
from test_evaluate import circle_vectors, table_rows, write_csvs

MEMORY_CAP = 1024 * 2**20


def _cap_memory():
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))


def evaluate(*args, timeout=60):
    """evaluate.py with its memory capped and a time limit: a runaway grid fails the test, not the machine."""
    return subprocess.run([sys.executable, str(PROJECT_ROOT / "evaluate.py"), *map(str, args)], cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=timeout, preexec_fn=_cap_memory,
                          env={**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"})


@pytest.mark.parametrize("change, message", [
    (lambda v: v.__setitem__((2, 1), 1e10), "line 3: the value 1e+10 is beyond ±10000"),
    (lambda v: v.__imul__(1e30), "line 1: the value 1e+30 is beyond ±10000"),
    (lambda v: v.__setitem__((4, 0), np.inf), "line 5: NaN or infinite value"),
])
def test_absurd_vectors_are_refused_with_the_row_named(tmp_path, change, message):
    vectors, names = circle_vectors()
    vectors = vectors.astype(np.float64)
    change(vectors)
    reps, labels = tmp_path / "reps.csv", tmp_path / "labels.csv"
    reps.write_text("".join(",".join(repr(float(x)) for x in row) + "\n" for row in vectors))
    labels.write_text("".join(f"{i},data/{n}/{i}.png\n" for i, n in enumerate(names)))
    assert_clean_failure(evaluate("--vectors", reps, "--labels", labels), f"vectors file {reps}, {message}")


def test_vectors_of_length_zero_are_refused(tmp_path):
    path = tmp_path / "e.pickle"
    path.write_bytes(pickle.dumps({"embeddings": [np.zeros(0, np.float32)] * 4, "names": ["a", "a", "b", "b"]}))
    # the store's loader refuses them first: every stored vector must be of length 1
    assert_clean_failure(evaluate("--embeddings", path), str(path), "vectors of length 1")


def test_the_threshold_grid_is_bounded_whatever_the_scale():
    """Distances near the largest accepted values: the search is as small as for unit vectors, and exact."""
    rng = np.random.default_rng(0)
    for scale in (1.0, 3.0, 7e4):
        same = np.sort(rng.uniform(0, 1.2, 40) * scale)
        different = np.sort(rng.uniform(0.8, 2.0, 300) * scale)
        pairs = PairDistances(same, different)
        found = best_accuracy_threshold(pairs, decimals=2)
        # the dense grid the function used to build, at the same decimals
        grid = np.arange(int(max(same[-1], different[-1]) * 100) + 2) / 100
        score = (np.searchsorted(same, grid) * len(different) - np.searchsorted(different, grid) * len(same))
        best = np.flatnonzero(score == score.max())
        gaps = np.flatnonzero(np.diff(best) != 1)
        run_end = best[gaps[0]] if len(gaps) else best[-1]
        assert found == grid[(best[0] + run_end) // 2], scale


def test_a_byte_order_mark_before_the_vectors_is_accepted(tmp_path):
    reps, labels = write_csvs(tmp_path, *circle_vectors())
    plain = evaluate("--vectors", reps, "--labels", labels, "--threshold", "0.6")
    for path in (reps, labels):
        with open(path, "rb") as handle:
            data = handle.read()
        with open(path, "wb") as handle:
            handle.write(b"\xef\xbb\xbf" + data)
    marked = evaluate("--vectors", reps, "--labels", labels, "--threshold", "0.6")
    assert marked.returncode == 0, marked.stderr
    assert marked.stdout == plain.stdout


def test_an_sface_store_is_evaluated_at_the_sface_threshold(tmp_path):
    from facerec.catalogue import PROFILES

    vectors, names = circle_vectors()
    path = tmp_path / "e.pickle"
    save_store(Gallery(vectors, names, [f"{n}/{i}.jpg" for i, n in enumerate(names)], profile="sface"), path)
    result = evaluate("--embeddings", path, "--match", "nearest", "--target-far", "0.2")
    assert result.returncode == 0, result.stderr
    threshold = f"{PROFILES['sface'].threshold:.4f}"
    assert table_rows(result.stdout, "threshold")[0][:2] == [threshold, "--threshold"]
    assert table_rows(result.stdout, "strategy")[0][:2] == ["nearest", threshold]


def test_too_few_pairs_for_the_target_rate_is_a_warning_not_a_threshold(tmp_path):
    reps, labels = write_csvs(tmp_path, *circle_vectors())
    result = evaluate("--vectors", reps, "--labels", labels, "--threshold", "0.6", "--target-far", "0.1")
    assert result.returncode == 0, result.stderr
    assert ("warning: no threshold for a false-match rate of 10%: it takes about 30 different-person pairs "
            "to estimate (3/rate), and there are 17") in result.stderr
    assert [row[1] for row in table_rows(result.stdout, "threshold")] == ["--threshold", "best balanced accuracy"]
    enough = evaluate("--vectors", reps, "--labels", labels, "--threshold", "0.6", "--target-far", "0.18")
    assert "warning" not in enough.stderr
    assert table_rows(enough.stdout, "threshold")[1][1] == "false-match rate <= 18%"

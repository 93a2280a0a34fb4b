"""Large galleries: approximate search (FAISS) against exact, the automatic choice, exact search at 10^6 rows."""

import importlib.util
import sys

import numpy as np
import pytest

from conftest import require
from facerec import matching
from facerec.errors import FacerecError
from facerec.matching import VectorIndex, NearestMatcher

DIMENSION = 128


@pytest.fixture
def faiss_installed():
    require(importlib.util.find_spec("faiss") is not None, "faiss is not installed (pip install faiss-cpu)")


def unit_rows(rows: np.ndarray) -> np.ndarray:
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    return rows


def random_gallery(size: int, seed: int = 0) -> np.ndarray:
    return unit_rows(np.random.default_rng(seed).standard_normal((size, DIMENSION), dtype=np.float32))


def noisy_copies(vectors: np.ndarray, count: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(queries, rows they copy): stored vectors plus noise, ~0.33 away, as a face near an enrolled one."""
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(vectors), count, replace=False)
    return unit_rows(vectors[rows] + rng.normal(0, 0.03, (count, vectors.shape[1])).astype(np.float32)), rows


def brute_force(vectors: np.ndarray, queries: np.ndarray, chunk: int = 100_000) -> tuple[np.ndarray, np.ndarray]:
    """(index, distance) of each query's nearest row, every distance in float64, a chunk of rows at a time."""
    best = np.full(len(queries), np.inf)
    index = np.zeros(len(queries), np.int64)
    queries = queries.astype(np.float64)
    for start in range(0, len(vectors), chunk):
        rows = vectors[start : start + chunk].astype(np.float64)
        for number, query in enumerate(queries):
            squared = np.einsum("ij,ij->i", rows - query, rows - query)
            closest = int(np.argmin(squared))
            if squared[closest] < best[number]:  # strictly closer: ties stay with the row stored first
                best[number], index[number] = squared[closest], start + closest
    return index, np.sqrt(best)


def test_approximate_finds_the_exact_nearest_of_noisy_copies_with_exact_distances(faiss_installed):
    # 141 cells, 48 scanned: a query near a stored vector is practically always in a scanned cell
    # (the benchmark measures recall 1.000 up to 3*10^4 rows, >= 0.997 up to 10^6; docs/large-galleries.md, "Measurements")
    vectors = random_gallery(20_000)
    queries, copied = noisy_copies(vectors, 300)
    approximate = VectorIndex(vectors, [str(i) for i in range(len(vectors))], search="approximate")
    assert approximate.search == "approximate"
    indices, distances = approximate.nearest(queries, k=3)
    exact_indices, exact_distances = VectorIndex(vectors, approximate.names, search="exact").nearest(queries, k=1)
    np.testing.assert_array_equal(indices[:, 0], exact_indices[:, 0])
    np.testing.assert_array_equal(indices[:, 0], copied)
    np.testing.assert_allclose(distances[:, 0], exact_distances[:, 0], rtol=0, atol=1e-12)
    measured = np.linalg.norm(vectors[indices].astype(np.float64) - queries[:, None, :].astype(np.float64), axis=2)
    np.testing.assert_allclose(distances, measured, rtol=0, atol=1e-6)
    assert np.all(np.diff(distances, axis=1) >= 0)


def test_approximate_keeps_the_hand_made_answers_and_ties(faiss_installed):
    vectors = np.array([[0, 1], [0, -1], [1, 0], [0.6, 0.8]], np.float32)
    queries = np.array([[1, 0], [-1, 0], [0.8, 0.6]], np.float32)
    exact = VectorIndex(vectors, list("abcd"), search="exact").nearest(queries, k=4)
    approximate = VectorIndex(vectors, list("abcd"), search="approximate").nearest(queries, k=4)
    np.testing.assert_array_equal(approximate[0], exact[0])  # (-1, 0) is as far from a as from b: a first
    np.testing.assert_array_equal(approximate[1], exact[1])


def test_rows_the_index_cannot_supply_are_searched_exactly(faiss_installed, monkeypatch):
    monkeypatch.setattr(matching, "_PROBED_CELLS", 1)  # one cell of ~45 rows cannot give 200
    vectors = random_gallery(2_000)
    queries, _ = noisy_copies(vectors, 5)
    approximate = VectorIndex(vectors, ["x"] * len(vectors), search="approximate").nearest(queries, k=200)
    exact = VectorIndex(vectors, ["x"] * len(vectors), search="exact").nearest(queries, k=200)
    np.testing.assert_array_equal(approximate[0], exact[0])
    np.testing.assert_array_equal(approximate[1], exact[1])


def test_empty_approximate_gallery_names_everyone_unknown(faiss_installed):
    gallery = VectorIndex(np.zeros((0, DIMENSION), np.float32), [], search="approximate")
    assert NearestMatcher(gallery, 0.55).match(random_gallery(2)) == [matching.Match(matching.UNKNOWN, None)] * 2


def test_auto_searches_exactly_below_the_threshold_and_approximately_from_it(faiss_installed):
    size = matching.APPROXIMATE_FROM
    vectors = random_gallery(size)
    assert VectorIndex(vectors[:-1], ["x"] * (size - 1)).search == "exact"
    assert VectorIndex(vectors, ["x"] * size).search == "approximate"
    assert VectorIndex(vectors, ["x"] * size, search="exact").search == "exact"
    assert VectorIndex(vectors[:10], ["x"] * 10, search="approximate").search == "approximate"


def test_without_faiss_auto_stays_exact_and_approximate_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "faiss", None)  # import faiss now raises ImportError
    monkeypatch.setattr(matching, "APPROXIMATE_FROM", 10)
    vectors = random_gallery(20)
    assert VectorIndex(vectors, ["x"] * 20).search == "exact"
    with pytest.raises(FacerecError, match="pip install faiss-cpu"):
        VectorIndex(vectors, ["x"] * 20, search="approximate")


def test_unknown_search_is_refused():
    with pytest.raises(ValueError, match="search"):
        VectorIndex(random_gallery(3), ["x"] * 3, search="fast")


def test_exact_search_in_a_million_rows_matches_float64_brute_force():
    vectors = random_gallery(1_000_000)  # 512 MB of float32
    rng = np.random.default_rng(2)
    near, copied = noisy_copies(vectors, 3, seed=3)
    queries = np.vstack([near, unit_rows(rng.standard_normal((3, DIMENSION), dtype=np.float32))])
    gallery = VectorIndex(vectors, ["x"] * len(vectors), search="exact")
    indices, distances = gallery.nearest(queries, k=2)
    expected_indices, expected_distances = brute_force(vectors, queries)
    np.testing.assert_array_equal(indices[:, 0], expected_indices)
    np.testing.assert_array_equal(indices[:3, 0], copied)
    np.testing.assert_allclose(distances[:, 0], expected_distances, rtol=0, atol=1e-9)
    assert np.all(distances[:, 1] >= distances[:, 0])

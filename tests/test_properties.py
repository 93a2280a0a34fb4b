"""Property-based tests (hypothesis) of the matcher and the embeddings store."""

import tempfile
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from facerec.matching import UNKNOWN, VectorIndex, NearestMatcher
from facerec.stores import Gallery, load_store, save_store

DIMENSION = 8
finite = st.floats(-1.0, 1.0, allow_nan=False, width=32)
vectors = st.integers(1, 40).flatmap(lambda n: arrays(np.float32, (n, DIMENSION), elements=finite))
names = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12)


@settings(max_examples=200, deadline=None)
@given(gallery=vectors, queries=arrays(np.float32, (3, DIMENSION), elements=finite),
       threshold=st.floats(0.0, 3.0), data=st.data())
def test_the_name_returned_is_the_one_at_the_smallest_distance(gallery, queries, threshold, data):
    labels = data.draw(st.lists(names, min_size=len(gallery), max_size=len(gallery)))
    matches = NearestMatcher(VectorIndex(gallery, labels), threshold).match(queries)
    for query, match in zip(queries, matches):
        distances = np.linalg.norm(gallery.astype(np.float64) - query.astype(np.float64), axis=1)
        best = distances.min()
        assert abs(match.distance - best) < 1e-9
        if best < threshold:
            closest = {labels[i] for i in np.flatnonzero(distances == best)}
            assert match.name in closest
            assert match.name == labels[int(np.argmin(distances))]  # ties: the first stored
        else:
            assert match.name == UNKNOWN


@settings(max_examples=60, deadline=None)
@given(rows=vectors, data=st.data())
def test_saving_then_loading_gives_back_the_same_data(rows, data):
    rows[np.linalg.norm(rows, axis=1) < 1e-3, 0] = 1.0  # the store holds unit vectors only
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    labels = data.draw(st.lists(names, min_size=len(rows), max_size=len(rows)))
    paths = data.draw(st.lists(st.text(max_size=20), min_size=len(rows), max_size=len(rows)))
    files = {path: {"size": i, "mtime_ns": i * 7, "status": "used"} for i, path in enumerate(paths)}
    store = Gallery(rows, labels, paths, "openface", {"profile": "openface", "sha256": {"a": "b"}}, files)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "e.pickle"
        save_store(store, path)
        loaded = load_store(path)
    np.testing.assert_array_equal(loaded.vectors, rows)
    assert loaded.vectors.dtype == np.float32
    assert (loaded.names, loaded.paths, loaded.profile, loaded.models, loaded.files) == (
        labels, paths, "openface", store.models, files)

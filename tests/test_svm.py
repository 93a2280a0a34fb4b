"""The svm strategy: hand-made clusters whose right answers are known by construction, k-fold counts,
the clip with sface end to end, and bad input through the scripts."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import run_script, shared_path
from helpers import CLIP
from shared_faces import NOT_IN_CLIP
from test_evaluate import table_rows, write_csvs
from test_sface import run_clip, sface_model_args

from facerec.catalogue import PROFILES
from facerec.crossvalidation import k_fold, stratified_folds
from facerec.errors import FacerecError
from facerec.matching import UNKNOWN, VectorIndex, SvmMatcher, make_matcher, needs_training
from facerec.stores import Gallery, save_store

DIMENSIONS = 8
THRESHOLD = 0.9
# Three people of 5 photos, each photo its person's axis (0, 1, 2) tilted by 0.1 towards one of the
# axes 3..7: two photos of one person are 0.14 apart, photos of two people 1.41 apart.
CLUSTERS = ("ann", "bob", "cat")


def unit(vector) -> np.ndarray:
    vector = np.asarray(vector, np.float64)
    return vector / np.linalg.norm(vector)


def axis(index: int) -> np.ndarray:
    return np.eye(DIMENSIONS)[index]


def cluster_gallery(extra: dict[str, np.ndarray] | None = None) -> tuple[np.ndarray, list[str], list[str]]:
    """(vectors, names, paths): the three clusters, then `extra` one-photo people."""
    vectors, names = [], []
    for person_axis, person in enumerate(CLUSTERS):
        for tilt in range(3, 8):
            vectors.append(unit(axis(person_axis) + 0.1 * axis(tilt)))
            names.append(person)
    for person, vector in (extra or {}).items():
        vectors.append(unit(vector))
        names.append(person)
    paths = [f"{name}/{index}.jpg" for index, name in enumerate(names)]
    return np.array(vectors, np.float32), names, paths


# "dot": one photo on axis 3, 1.34 from ann's photo tilted towards it, 1.41 from the others.
DOT = {"dot": axis(3)}
# A stranger on axis 7 with a small part of axis 6: 1.35 or more from every stored photo.
STRANGER = unit(axis(7) + 0.2 * axis(6))


def test_svm_names_each_cluster_and_refuses_the_stranger():
    vectors, names, paths = cluster_gallery(DOT)
    matcher = make_matcher("svm", vectors, names, THRESHOLD, paths)
    queries = [unit(axis(person_axis) - 0.05 * axis(5)) for person_axis in range(3)] + [STRANGER, unit(axis(3) + 0.05 * axis(6))]
    matches = matcher.match(np.array(queries, np.float32))
    assert [match.name for match in matches] == [*CLUSTERS, UNKNOWN, "dot"]
    for query, match in zip(queries, matches):
        # the distance is to the nearest photo of the person the SVM chose (named or not): that photo is the evidence
        row = paths.index(match.photo)
        assert match.distance == pytest.approx(np.linalg.norm(vectors[row] - query), abs=1e-6)
        same_person = [i for i, name in enumerate(names) if name == names[row]]
        assert match.distance == pytest.approx(min(np.linalg.norm(vectors[same_person] - query, axis=1)), abs=1e-6)
    assert matches[3].distance > THRESHOLD and matches[4].photo == paths[-1]


def test_a_name_needs_both_the_probability_and_the_distance():
    # ann and bob: photos of one cluster on axis 0, told apart only by +-0.05 along axis 1, in turn
    # (the SVM cannot separate them and its calibration learns that); cat on axis 2.
    mixed = [unit(axis(0) + 0.1 * axis(3 + index % 5) + (0.05 if index % 2 else -0.05) * axis(1)) for index in range(10)]
    vectors = np.array(mixed + [unit(axis(2) + 0.1 * axis(tilt)) for tilt in range(3, 8)], np.float32)
    names = ["ann"] * 5 + ["bob"] * 5 + ["cat"] * 5
    query = unit(axis(0) + 0.025 * axis(1))[None].astype(np.float32)  # 0.10 from a photo of bob
    [sure] = SvmMatcher(VectorIndex(vectors, names), THRESHOLD, min_probability=0.5).match(query)
    [unsure] = SvmMatcher(VectorIndex(vectors, names), THRESHOLD, min_probability=0.9).match(query)
    assert sure.name in ("ann", "bob") and unsure.name == UNKNOWN and unsure.distance == sure.distance < 0.11
    vectors, names, _ = cluster_gallery()
    # Towards ann's axis more than any other, but 1.02 from each of her photos: the distance says no.
    far = unit(axis(0) + 0.9 * axis(3) + 0.9 * axis(4) + 0.9 * axis(5) + 0.9 * axis(6) + 0.9 * axis(7))[None].astype(np.float32)
    [refused] = SvmMatcher(VectorIndex(vectors, names), THRESHOLD, min_probability=0.0).match(far)
    assert refused.name == UNKNOWN and refused.distance >= THRESHOLD
    [named] = SvmMatcher(VectorIndex(vectors, names), refused.distance + 0.01, min_probability=0.0).match(far)
    assert named.name == "ann"


def test_stratified_folds_deal_each_person_over_the_folds():
    names = ["a"] * 5 + ["b"] * 2 + ["c"] + ["d"] * 3
    assert stratified_folds(names, 5).tolist() == [0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0]
    assert stratified_folds(names, 2).tolist() == [0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0]


# In 5 folds each cluster person has one photo in each fold: named right every time (15 queries).
# The two one-photo people are strangers in their fold: "near" is 0.21 from a photo of ann and named
# ann, "dot" is 1.34 or more from everyone and rejected.
FOLD_EXTRA = {"near": unit(axis(0) + 0.1 * axis(3) + 0.3 * axis(7)), **DOT}
FOLD_COUNTS = (15, 15, 0, 0, 2, 1)  # queries, right, wrong, rejected, strangers, strangers named


@pytest.mark.parametrize("strategy", ["svm", "nearest"])
def test_k_fold_counts_are_exact(strategy):
    vectors, names, _ = cluster_gallery(FOLD_EXTRA)
    result = k_fold(vectors, names, strategy, THRESHOLD, folds=5)
    assert (result.queries, result.right, result.wrong, result.rejected, result.singletons,
            result.false_accepts) == FOLD_COUNTS


def test_evaluate_folds_prints_the_svm_rows_exactly(tmp_path):
    reps, labels = write_csvs(tmp_path, *cluster_gallery(FOLD_EXTRA)[:2])
    result = run_script("evaluate.py", "--vectors", reps, "--labels", labels, "--threshold", str(THRESHOLD),
                        "--folds", "5", "--min-probability", "0", "0.5")
    assert result.returncode == 0, result.stderr
    assert "stratified 5-fold identification" in result.stdout
    rows = {row[0]: row[1:] for row in table_rows(result.stdout.split("stratified 5-fold")[1], "strategy")}
    assert rows["svm p>=0"] == ["0.9000", "15", "15 (100.0%)", "0 (0.0%)", "0 (0.0%)", "2", "1 (50.0%)", "16 (94.1%)"]
    # clusters this clean leave the SVM sure of each of them (probability near 1): 0.5 changes nothing
    assert rows["svm p>=0.5"] == rows["svm p>=0"]
    assert set(rows) == {"nearest", "centroid", "vote", "svm p>=0", "svm p>=0.5"}
    assert needs_training("svm") and not needs_training("nearest")


def test_a_gallery_of_fewer_than_two_people_is_refused():
    vectors, names, _ = cluster_gallery()
    with pytest.raises(FacerecError, match="at least two people.*only 'ann'"):
        SvmMatcher(VectorIndex(vectors[:5], names[:5]), THRESHOLD)
    with pytest.raises(FacerecError, match="holds nobody"):
        SvmMatcher(VectorIndex(np.zeros((0, DIMENSIONS), np.float32), []), THRESHOLD)


def test_people_with_one_photo_are_learnt():
    """No one with two photos: each person's one vector, entered twice, is what the SVM learns."""
    vectors = np.array([axis(0), axis(1), axis(2)], np.float32)
    names = ["ann", "bob", "cat"]
    queries = np.array([unit(axis(0) + 0.2 * axis(5)), unit(axis(2) + 0.3 * axis(4)), STRANGER], np.float32)
    svm = make_matcher("svm", vectors, names, THRESHOLD).match(queries)
    assert [match.name for match in svm] == ["ann", "cat", UNKNOWN]
    assert [match.distance for match in svm[:2]] == pytest.approx([np.linalg.norm(queries[0] - vectors[0]),
                                                                  np.linalg.norm(queries[1] - vectors[2])])


# --- the scripts ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def clip_svm_run(tmp_path_factory):
    """The clip named with --match svm (alex_lacamoire and lin have one photo each)."""
    return run_clip(tmp_path_factory.mktemp("svm_clip"), "--match", "svm")


def test_clip_with_svm_names_lin_and_never_the_absent(clip_svm_run):
    named: dict[str, int] = {}
    for record in clip_svm_run:
        assert set(record) == {"frame", "faces"}
        for face in record["faces"]:
            assert set(face) == {"box", "confidence", "name", "distance", "match", "quality", "track"}
            named[face["name"]] = named.get(face["name"], 0) + 1
            if face["name"] != UNKNOWN:
                assert face["distance"] < PROFILES["sface"].threshold and face["match"].startswith(f"{face['name']}/"), face
    assert named.get("lin", 0) >= 100  # 149 with nearest
    assert not set(NOT_IN_CLIP) & set(named), named


def sface_store(tmp_path, names):
    path = tmp_path / "embeddings.pickle"
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((len(names), 128)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    save_store(Gallery(vectors.reshape(len(names), 128), list(names), [f"{n}/{i}.jpg" for i, n in enumerate(names)],
                              profile="sface"), path)
    return path


@pytest.mark.parametrize("names, extra, message", [
    (["ann", "ann"], [], "error: the svm strategy needs at least two people to tell apart, the gallery holds only 'ann'"),
    ([], [], "error: the svm strategy needs at least two people to tell apart, the gallery holds nobody"),
    (["ann", "bob"], ["--min-probability", "1.5"], "--min-probability: 1.5 is out of range"),
])
def test_bad_svm_input_is_one_clear_error(tmp_path, names, extra, message):
    embeddings = sface_store(tmp_path, names)
    result = run_script("recognize_video.py", "--embeddings", str(embeddings), "--source", str(shared_path(CLIP)),
                        "--no-display", "--match", "svm", *extra, *sface_model_args())
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert message in result.stderr.strip().splitlines()[-1], result.stderr


def test_evaluate_refuses_a_probability_out_of_range(tmp_path):
    reps, labels = write_csvs(tmp_path, *cluster_gallery()[:2])
    result = run_script("evaluate.py", "--vectors", reps, "--labels", labels, "--folds", "5", "--min-probability", "1.5")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "--min-probability: 1.5 is out of range" in result.stderr


def test_pair_scores_are_scikit_learns_one_vs_rest_scores():
    """The numpy combination of an RBF SVC's one-vs-one decisions equals the scores scikit-learn's own loop gives."""
    from sklearn.svm import SVC

    from facerec.classifier import pair_scores

    rng = np.random.default_rng(3)
    labels = np.arange(60) % 12
    vectors = rng.standard_normal((60, DIMENSIONS)) + labels[:, None] * 0.3
    svm = SVC(kernel="rbf", C=10.0, decision_function_shape="ovo").fit(vectors, labels)
    queries = rng.standard_normal((7, DIMENSIONS))
    ours = pair_scores(svm.decision_function(queries), 12)
    svm.decision_function_shape = "ovr"  # the same model, scored through scikit-learn's Python loop
    np.testing.assert_allclose(ours, svm.decision_function(queries), atol=1e-12)


def test_probabilities_sum_to_one_and_a_single_temperature_keeps_the_order_of_scores():
    from facerec.classifier import ProbabilisticSvm

    vectors, names, _ = cluster_gallery()
    labels = np.array([CLUSTERS.index(name) for name in names])
    classifier = ProbabilisticSvm(vectors, labels)
    probabilities = classifier.probabilities(vectors)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)
    assert (probabilities.argmax(axis=1) == labels).all()
    assert classifier.temperature > 0

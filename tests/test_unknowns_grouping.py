"""Grouping unknown faces into candidate people (facerec/unknowns/grouping.py), scored by BCubed."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.cluster import AgglomerativeClustering

from conftest import shared_path
from facerec.catalogue import PROFILES
from facerec.evaluation import load_labelled_vectors
from facerec.evaluation.clustering import bcubed
from facerec.unknowns.grouping import DEFAULT_MARGIN, LINKAGES, MARGINS, Groups, margin_for, regroup
from regroup import synthetic as random_tracks  # bench/regroup.py: tracks around random centres, near the cut

OPENFACE_THRESHOLD = PROFILES["openface"].threshold
SUBSET = 400  # the first 400 LFW vectors (people in alphabetical order): a few seconds


@pytest.fixture(scope="module")
def lfw():
    vectors, names = load_labelled_vectors(shared_path("embeddings/lfw_openface_reps.csv"),
                                           shared_path("embeddings/lfw_openface_labels.csv"))
    return vectors, np.array(names)


def test_bcubed_hand_example():
    # Groups {a, a, b} and {b, b}. Precision per item: a 2/3, a 2/3, b 1/3, b 1, b 1 -> 11/15.
    # Recall per item: a 2/2, a 2/2, b 1/3, b 2/3, b 2/3 -> 11/15.
    assert bcubed([0, 0, 0, 1, 1], ["a", "a", "b", "b", "b"]) == pytest.approx((11 / 15, 11 / 15))
    # One group of two people: precision 1/2, recall 1 (not the other way round).
    assert bcubed([7, 7, 7, 7], ["a", "a", "b", "b"]) == pytest.approx((0.5, 1.0))
    # Every item alone: precision 1, recall 1 / (its person's size): (1/2 + 1/2 + 1) / 3.
    assert bcubed([0, 1, 2], ["a", "a", "b"]) == pytest.approx((1.0, 2 / 3))
    with pytest.raises(ValueError):
        bcubed([0, 1], ["a"])


@pytest.mark.parametrize("cut", [OPENFACE_THRESHOLD - DEFAULT_MARGIN, 0.75])
@pytest.mark.parametrize("linkage", LINKAGES)
def test_regroup_is_agglomerative_clustering(lfw, linkage, cut):
    """Our full regroup makes the same groups as scikit-learn's agglomerative clustering at the same cut."""
    vectors = lfw[0][:SUBSET]
    ours = regroup(list(vectors), cut, 0.0, linkage)
    # scikit-learn merges below its distance_threshold, ours at or below the cut: no LFW distance equals either cut.
    theirs = AgglomerativeClustering(n_clusters=None, distance_threshold=cut, linkage=linkage).fit_predict(vectors)
    pairs_ours = ours[:, None] == ours[None, :]
    pairs_theirs = theirs[:, None] == theirs[None, :]
    assert np.array_equal(pairs_ours, pairs_theirs)
    assert len(set(ours)) < SUBSET  # it did group faces


def test_lfw_grouping_precision(lfw):
    """On real OpenFace vectors, a group holds one person (BCubed precision >= 0.98), and faces are grouped."""
    vectors, names = lfw[0][:SUBSET], lfw[1][:SUBSET]
    alone_recall = bcubed(np.arange(SUBSET), names)[1]
    full = regroup(list(vectors), OPENFACE_THRESHOLD)
    groups = Groups(OPENFACE_THRESHOLD)
    incremental = np.array([groups.add(vector) for vector in vectors])
    for labels in (full, incremental):
        precision, recall = bcubed(labels, names)
        assert precision >= 0.98
        assert recall > alone_recall + 0.05


def test_incremental_joins_same_person_and_starts_new_group(lfw):
    """A second track of a person joins that person's group; a different person starts a new group."""
    vectors, names = lfw
    sharon = vectors[names == "Ariel_Sharon"]
    arnold = vectors[names == "Arnold_Schwarzenegger"]
    groups = Groups(OPENFACE_THRESHOLD)
    assert groups.add(sharon[:5]) == 0
    assert groups.add(arnold[:5]) == 1
    assert groups.add(sharon[5:10]) == 0
    assert len(groups) == 2 and len(groups.members(0)) == 10 and len(groups.members(1)) == 5
    # The cut is stricter than the threshold: a margin of 0 would join more, never fewer.
    assert groups.cut == pytest.approx(OPENFACE_THRESHOLD - DEFAULT_MARGIN)


def test_regroup_keeps_tracks_together(lfw):
    vectors, names = lfw
    tracks = [vectors[names == person][:4] for person in ("Ariel_Sharon", "Arnold_Schwarzenegger", "Ariel_Sharon")]
    labels = regroup(tracks, OPENFACE_THRESHOLD)
    assert list(labels) == [0, 1, 0]


def test_bad_arguments():
    with pytest.raises(ValueError):
        Groups(0.55, margin=-0.1)
    with pytest.raises(ValueError):
        Groups(0.55, linkage="ward")
    with pytest.raises(ValueError):
        Groups(0.55).add(np.zeros((0, 128)))
    assert len(regroup([], 0.55)) == 0


def test_margin_per_profile():
    """Each profile has its measured margin; a profile never measured gets DEFAULT_MARGIN."""
    assert margin_for("sface") == MARGINS["sface"] != DEFAULT_MARGIN
    assert margin_for("openface") == DEFAULT_MARGIN
    assert margin_for("a-profile-nobody-measured") == DEFAULT_MARGIN


@pytest.fixture(scope="module")
def clip_tracks():
    for asset in ("video/short_hamilton_clip.mp4", "models/face_detection_yunet_2023mar_int8bq.onnx",
                  "models/face_recognition_sface_2021dec_int8bq.onnx"):
        shared_path(asset)  # skips (or fails under FACEREC_REQUIRE_ASSETS) when missing
    from clip_tracks import clip_tracks_sface
    tracks, people = clip_tracks_sface()
    return tracks, np.array(people)


def test_clip_tracks_grouped_with_the_sface_margin(clip_tracks):
    """The clip's real tracks (sface models, facerec's tracker), labelled by eye: with sface's margin every group
    holds one person and Lin-Manuel Miranda's two shots are one group; with openface's margin (0.04) two blurred
    strangers in the audience were grouped with a third person."""
    tracks, people = clip_tracks
    threshold = PROFILES["sface"].threshold
    for margin, strict in ((margin_for("sface"), True), (DEFAULT_MARGIN, False)):
        full = regroup(tracks, threshold, margin)
        groups = Groups(threshold, margin)
        incremental = np.array([groups.add(track) for track in tracks])
        for labels in (full, incremental):
            precision, recall = bcubed(labels, people)
            assert (precision >= 0.98) == strict
            if strict:
                assert len(set(labels[people == "lin"])) == 1
                assert recall > bcubed(np.arange(len(tracks)), people)[1]


@pytest.mark.parametrize("faces", [1, 5])
def test_single_linkage_regroup_gives_the_step_by_step_merges_groups(faces):
    """The connected components (the default, single linkage) are the groups of merging the nearest two while within
    the cut, over tracks of one and several faces whose distances straddle the cut."""
    from facerec.unknowns.grouping import _agglomerate, _in_order_of_first_track

    tracks = random_tracks(600, faces, 150)
    threshold, margin = PROFILES["sface"].threshold, MARGINS["sface"]
    ours = regroup(tracks, threshold, margin)
    merged = _in_order_of_first_track(_agglomerate(tracks, threshold - margin, "single"))
    assert np.array_equal(ours, merged)
    assert 150 <= len(set(ours)) < 600  # grouped, but not all into one


def test_regroup_needs_no_track_by_track_matrix():
    """12,000 one-face tracks: the track-by-track matrix alone would be 1.15 GB; single linkage stays far below."""
    import tracemalloc

    tracks = random_tracks(12_000, 1, 3_000, seed=1)
    tracemalloc.start()
    try:
        labels = regroup(tracks, PROFILES["sface"].threshold, MARGINS["sface"])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 200 * 2**20, f"{peak / 2**20:.0f} MB"
    assert len(labels) == 12_000 and len(set(labels)) < 12_000

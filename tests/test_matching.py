"""The matcher on hand-made galleries whose right answers are known."""

import math

import numpy as np
import pytest

from facerec.matching import UNKNOWN, CentroidMatcher, VectorIndex, Match, NearestMatcher, VoteMatcher, make_matcher, person_centroids


def unit(*components: float) -> np.ndarray:
    vector = np.array(components, dtype=np.float64)
    return vector / np.linalg.norm(vector)


GALLERY = VectorIndex(
    [unit(1, 0, 0), unit(0, 1, 0), unit(0, 0, 1), unit(1, 1, 0)],
    ["ann", "bob", "cy", "ann"],
)


def test_nearest_names_the_closest_vector_with_its_exact_distance():
    matcher = NearestMatcher(GALLERY, threshold=0.55)
    query = unit(1, 0.1, 0)
    [match] = matcher.match(query)
    assert match.name == "ann"
    assert match.distance == pytest.approx(np.linalg.norm(query - unit(1, 0, 0)), abs=1e-6)  # stored as float32


def test_batch_of_queries_gets_one_match_each_in_order():
    matches = NearestMatcher(GALLERY, threshold=0.55).match(np.stack([unit(0, 1, 0), unit(0, 0, 1), unit(1, 0, 0)]))
    assert [m.name for m in matches] == ["bob", "cy", "ann"]
    assert all(m.distance == pytest.approx(0, abs=1e-6) for m in matches)


def test_distance_at_or_above_threshold_is_unknown_with_its_distance():
    # (0,1,0) to (0,0,1) is sqrt(2); the threshold sits exactly there, so the name is refused
    gallery = VectorIndex([unit(0, 0, 1)], ["cy"])
    [at] = NearestMatcher(gallery, threshold=math.sqrt(2)).match(unit(0, 1, 0))
    assert at == Match(UNKNOWN, pytest.approx(math.sqrt(2)))
    [above] = NearestMatcher(gallery, threshold=math.sqrt(2) + 1e-6).match(unit(0, 1, 0))
    assert above.name == "cy"


def test_tie_goes_to_the_vector_stored_first():
    gallery = VectorIndex([unit(0, 1), unit(0, -1)], ["up", "down"])
    [match] = NearestMatcher(gallery, threshold=2.0).match(unit(1, 0))
    assert match.name == "up" and match.distance == pytest.approx(math.sqrt(2))
    reversed_gallery = VectorIndex([unit(0, -1), unit(0, 1)], ["down", "up"])
    assert NearestMatcher(reversed_gallery, threshold=2.0).match(unit(1, 0))[0].name == "down"


def test_empty_gallery_names_everyone_unknown_without_distance():
    empty = VectorIndex(np.zeros((0, 128), np.float32), [])
    for strategy in ("nearest", "centroid", "vote"):
        matches = make_matcher(strategy, empty.vectors, [], 0.55).match(np.ones((3, 128), np.float32) / np.sqrt(128))
        assert matches == [Match(UNKNOWN, None)] * 3


def test_k_nearest_are_sorted_closest_first():
    indices, distances = GALLERY.nearest(unit(1, 0.2, 0), k=3)
    assert list(indices[0]) == [0, 3, 1]
    assert np.all(np.diff(distances[0]) >= 0)


def test_centroid_is_the_normalised_mean_of_each_person():
    centroids = person_centroids(GALLERY.vectors, GALLERY.names)
    assert centroids.names == ["ann", "bob", "cy"]
    np.testing.assert_allclose(centroids.vectors[0], unit(unit(1, 0, 0)[0] + unit(1, 1, 0)[0], unit(1, 1, 0)[1], 0), atol=1e-6)
    [match] = CentroidMatcher(GALLERY, threshold=1.0).match(unit(1, 0, 0))
    assert match.name == "ann"
    assert match.distance == pytest.approx(np.linalg.norm(unit(1, 0, 0) - centroids.vectors[0]), abs=1e-6)


def test_vote_takes_the_majority_under_the_threshold():
    # two "ann" vectors a little further than one "bob" vector: nearest says bob, a vote of 3 says ann
    gallery = VectorIndex([unit(1, 0.30), unit(1, -0.30), unit(1, 0.25)], ["ann", "ann", "bob"])
    query = unit(1, 0)
    assert NearestMatcher(gallery, threshold=1.0).match(query)[0].name == "bob"
    [vote] = VoteMatcher(gallery, threshold=1.0, k=3).match(query)
    assert vote.name == "ann"
    assert vote.distance == pytest.approx(np.linalg.norm(query - unit(1, 0.30)), abs=1e-6)  # stored as float32
    # with a threshold that only bob's vector passes, bob wins alone
    bob_only = np.linalg.norm(query - unit(1, 0.26))
    assert VoteMatcher(gallery, threshold=bob_only, k=3).match(query)[0].name == "bob"


def test_vote_with_no_vector_under_the_threshold_is_unknown_at_the_nearest_distance():
    [match] = VoteMatcher(GALLERY, threshold=0.1, k=3).match(unit(1, 1, 1))
    assert match.name == UNKNOWN
    assert match.distance == pytest.approx(np.linalg.norm(unit(1, 1, 1) - unit(1, 1, 0)), abs=1e-6)


def test_near_ties_in_float32_are_resolved_exactly():
    # two vectors whose distances differ by less than float32 resolution of the fast path
    rng = np.random.default_rng(1)
    base = unit(*rng.normal(size=128))
    nudge = unit(*rng.normal(size=128)) * 1e-6
    gallery = VectorIndex([base + nudge, base], ["far", "near"])
    [match] = NearestMatcher(gallery, threshold=1.0).match(base)
    assert match.name == "near"


PHOTOS = ["ann/1.jpg", "bob/1.jpg", "cy/1.jpg", "ann/2.jpg"]  # one per row of GALLERY


def test_each_strategy_gives_the_photo_of_its_evidence():
    gallery = VectorIndex(GALLERY.vectors, GALLERY.names, paths=PHOTOS)
    near_second_ann = unit(1, 0.8, 0)  # closer to ann/2 (1, 1, 0) than to ann/1 (1, 0, 0)
    for strategy in ("nearest", "centroid", "vote"):
        [match] = make_matcher(strategy, gallery.vectors, gallery.names, 1.0, PHOTOS).match(near_second_ann)
        assert (match.name, match.photo) == ("ann", "ann/2.jpg"), strategy
    # centroid: the nearest photo of the person named, even when another person's photo is closer
    ann_far = unit(1, -0.2, 0)
    assert CentroidMatcher(gallery, threshold=1.0).match(ann_far)[0].photo == "ann/1.jpg"
    # vote: the winner's closest photo, not the overall closest one (bob's, as in test_vote_takes_the_majority...)
    voters = VectorIndex([unit(1, 0.30), unit(1, -0.30), unit(1, 0.25)], ["ann", "ann", "bob"], paths=["a1", "a2", "b"])
    [vote] = VoteMatcher(voters, threshold=1.0, k=3).match(unit(1, 0))
    assert (vote.name, vote.photo) == ("ann", "a1")  # a1 and a2 tie: the one stored first


def test_unknown_faces_get_the_photo_they_were_measured_against():
    gallery = VectorIndex(GALLERY.vectors, GALLERY.names, paths=PHOTOS)
    query = unit(0.1, 1, 1)  # nearest: bob and cy tie at the same distance, bob stored first
    for strategy in ("nearest", "centroid", "vote"):
        [match] = make_matcher(strategy, gallery.vectors, gallery.names, 0.1, PHOTOS).match(query)
        assert (match.name, match.photo) == (UNKNOWN, "bob/1.jpg"), strategy


def test_without_paths_or_with_the_seed_scripts_empty_paths_the_photo_is_none():
    assert NearestMatcher(GALLERY, 1.0).match(unit(1, 0, 0))[0].photo is None
    blank = VectorIndex(GALLERY.vectors, GALLERY.names, paths=[""] * 4)
    assert NearestMatcher(blank, 1.0).match(unit(1, 0, 0))[0].photo is None
    with pytest.raises(ValueError, match="one path per name"):
        VectorIndex(GALLERY.vectors, GALLERY.names, paths=PHOTOS[:3])

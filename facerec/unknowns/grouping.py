"""Grouping unknown faces into candidate people: unit vectors, one array of them per track.

A track's vectors stay together (one camera followed one face). Two groups are as far apart as the
*linkage* says, over every pair of their vectors (L2 distance):

- "single": the closest pair (a group grows along a chain of close faces: pose and light change slowly
  across tracks of one person),
- "average": the mean of all pairs,
- "complete": the farthest pair.

Two ways to group, with the same linkage and the same cut (the profile's threshold minus a margin, so a
group is stricter than naming a face):

- incremental (`Groups.add`): a new track joins the group nearest to it if that is within the cut, else
  it starts a group. It never merges two existing groups: that is what `regroup` is for.
- full (`regroup`): agglomerative clustering of all tracks, merging the nearest two groups while they are
  within the cut.

The linkage and each profile's margin (`margin_for`) were chosen by measurement: bench/unknowns.py (BCubed
precision and recall on labelled LFW OpenFace vectors, SFace vectors of ../shared/faces and SFace tracks of the
clip, against scikit-learn and dlib).
Pure numpy, no I/O.
"""

from __future__ import annotations

from typing import Literal, Sequence

import numpy as np

Linkage = Literal["single", "average", "complete"]
LINKAGES: tuple[Linkage, ...] = ("single", "average", "complete")
# Chosen with bench/unknowns.py (BCubed precision and recall of groups, against scikit-learn and dlib):
# single linkage reaches the best recall at precision >= 0.98 of every linkage on each data set (on LFW its regroup
# is scikit-learn's single-linkage agglomerative clustering, and DBSCAN's with min_samples 1 or 2).
DEFAULT_LINKAGE: Linkage = "single"
# The margin below the profile's threshold, in L2 distance, per profile: the profiles' distances differ in scale.
# openface, 1,000 LFW OpenFace vectors: 0.51 is the largest cut that keeps precision >= 0.98 (0.982, recall 0.564,
# as scikit-learn's and DBSCAN's best; dlib's chinese whispers 0.555).
# sface, the clip's 13 tracks as --keep-unknowns keeps them (best 5 vectors by quality; bench/unknowns.py,
# clip-tracks-sface): one person's tracks are up to 0.9136 apart (Lin-Manuel Miranda's two shots), two different
# blurred people in the audience 0.9226 (0.9125 and 0.9226 with every vector). The cut 0.915 lies in that gap:
# precision 1.000, recall 0.923, as the best of scikit-learn's and dlib's methods; on the 11 tracks that stayed
# Unknown, 9 groups of 9 people. With 0.04 (cut 1.03) those two people and a third were one group: precision 0.897.
# Alex Lacamoire's two tracks (1.079 apart; at the piano, and a close-up in profile) stay two groups: no cut joins
# them without joining strangers. The gap is 0.01 wide and rests on few tracks: measure again with more. The 27
# SFace faces of ../shared/faces group perfectly at every cut from 0.83 to the threshold, so they do not choose.
MARGINS: dict[str, float] = {"openface": 0.04, "sface": 0.155}
DEFAULT_MARGIN = MARGINS["openface"]  # where no profile is given (and for a profile not measured)


def margin_for(profile: str) -> float:
    """The grouping margin measured for a model profile (DEFAULT_MARGIN for one not measured)."""
    return MARGINS.get(profile, DEFAULT_MARGIN)


def _as_track(vectors: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
    track = np.asarray(vectors, dtype=np.float64)
    if track.ndim == 1:
        track = track[None, :]
    if track.ndim != 2 or len(track) == 0:
        raise ValueError("a track is a non-empty (n, d) array of vectors")
    return track


def _pairwise(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """L2 distances between the rows of a and of b (clipped at 0 against rounding)."""
    squared = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.sqrt(np.maximum(squared, 0.0))


def grouping_cut(threshold: float, margin: float = DEFAULT_MARGIN) -> float:
    """The largest distance at which two groups are one person: the profile's threshold minus the margin."""
    if margin < 0 or margin >= threshold:
        raise ValueError(f"margin {margin} must be at least 0 and below the threshold {threshold}")
    return threshold - margin


class Groups:
    """Groups built one track at a time (incremental grouping)."""

    def __init__(self, threshold: float, margin: float = DEFAULT_MARGIN, linkage: Linkage = DEFAULT_LINKAGE) -> None:
        if linkage not in LINKAGES:
            raise ValueError(f"unknown linkage {linkage!r}: one of {', '.join(LINKAGES)}")
        self.cut = grouping_cut(threshold, margin)
        self.linkage = linkage
        # Every vector in one array, with its group's index: a new track is compared with all of them at once.
        self._vectors: np.ndarray | None = None
        self._group = np.zeros(0, dtype=np.int64)
        self._count = 0

    @classmethod
    def of(cls, vectors: np.ndarray, groups: np.ndarray, threshold: float, margin: float = DEFAULT_MARGIN,
           linkage: Linkage = DEFAULT_LINKAGE) -> Groups:
        """Groups already made (a store's, read back): each vector's group index, 0 to count - 1."""
        made = cls(threshold, margin, linkage)
        groups = np.asarray(groups, dtype=np.int64)
        if len(groups):
            made._vectors = _as_track(vectors)
            made._group = groups
            made._count = int(groups.max()) + 1
        return made

    def __len__(self) -> int:
        return self._count

    def members(self, index: int) -> np.ndarray:
        """Group `index`'s vectors, in the order they joined."""
        if not 0 <= index < self._count or self._vectors is None:
            raise IndexError(f"no group {index}")
        return self._vectors[self._group == index]

    def distances(self, track: np.ndarray) -> np.ndarray:
        """The linkage distance from a track to each group."""
        track = _as_track(track)
        if self._vectors is None:
            return np.zeros(0)
        pairs = _pairwise(track, self._vectors)
        if self.linkage == "single":
            per_group = np.full(self._count, np.inf)
            np.minimum.at(per_group, self._group, pairs.min(0))
            return per_group
        if self.linkage == "complete":
            per_group = np.zeros(self._count)
            np.maximum.at(per_group, self._group, pairs.max(0))
            return per_group
        return np.bincount(self._group, pairs.sum(0), self._count) / (np.bincount(self._group, minlength=self._count)
                                                                       * len(track))

    def add(self, track: np.ndarray) -> int:
        """Put a track in the nearest group within the cut, or in a new group; its group's index."""
        track = _as_track(track)
        distances = self.distances(track)
        if len(distances) and distances.min() <= self.cut:
            index = int(distances.argmin())
        else:
            index = self._count
            self._count += 1
        self._vectors = track if self._vectors is None else np.vstack([self._vectors, track])
        self._group = np.concatenate([self._group, np.full(len(track), index)])
        return index


def _track_distances(tracks: list[np.ndarray], linkage: Linkage) -> np.ndarray:
    """Linkage distances between tracks, computed a track at a time (never the full vector-by-vector matrix)."""
    vectors = np.vstack(tracks)
    starts = np.cumsum([0] + [len(track) for track in tracks[:-1]])
    reduce = {"single": np.minimum, "complete": np.maximum, "average": np.add}[linkage]
    rows = np.empty((len(tracks), len(tracks)))
    for index, track in enumerate(tracks):
        per_track = reduce.reduceat(_pairwise(track, vectors), starts, axis=1)
        rows[index] = reduce.reduce(per_track, axis=0)
    if linkage == "average":
        sizes = np.array([len(track) for track in tracks], dtype=np.float64)
        rows /= sizes[:, None] * sizes[None, :]
    return rows


def regroup(tracks: Sequence[np.ndarray], threshold: float, margin: float = DEFAULT_MARGIN,
            linkage: Linkage = DEFAULT_LINKAGE) -> np.ndarray:
    """Full regroup: agglomerative clustering of the tracks, merging while the nearest groups are within the cut.

    Returns a group label per track (0, 1, ... in order of each group's first track). With single linkage
    (the default) the groups are the connected components of "some vector of one track is within the cut of
    some vector of the other" (single-linkage clustering stopped at a cut is exactly that), found from blocks
    of vector distances: memory linear in the vectors, no track-by-track matrix. The other linkages merge
    step by step over the track-by-track matrix: memory and time quadratic in the number of tracks.
    """
    if linkage not in LINKAGES:
        raise ValueError(f"unknown linkage {linkage!r}: one of {', '.join(LINKAGES)}")
    cut = grouping_cut(threshold, margin)
    tracks = [_as_track(track) for track in tracks]
    if not tracks:
        return np.zeros(0, dtype=np.int64)
    owner = _components_within(tracks, cut) if linkage == "single" else _agglomerate(tracks, cut, linkage)
    return _in_order_of_first_track(owner)


def _in_order_of_first_track(owner: np.ndarray) -> np.ndarray:
    """Labels 0, 1, ... numbering each track's cluster in order of the cluster's first track."""
    _, labels = np.unique(owner, return_inverse=True)
    first_seen: dict[int, int] = {}
    return np.array([first_seen.setdefault(int(label), len(first_seen)) for label in labels], dtype=np.int64)


# Distances computed at once in _components_within: 2**22 float64 (32 MB; 200 rows against 20,000 vectors).
_BLOCK_DISTANCES = 2**22


def _components_within(tracks: list[np.ndarray], cut: float) -> np.ndarray:
    """Single linkage at `cut`: a cluster id per track, the connected components of the tracks joined by a pair of
    vectors within the cut (the pair's distance computed as Groups and _track_distances do)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    vectors = np.vstack(tracks)
    track_of = np.repeat(np.arange(len(tracks)), [len(track) for track in tracks])
    squared = (vectors * vectors).sum(1)
    block = max(1, _BLOCK_DISTANCES // len(vectors))
    pairs: list[np.ndarray] = []
    for start in range(0, len(vectors), block):
        rows = vectors[start:start + block]
        distance = rows @ vectors[start:].T  # this block against itself and every later vector: each pair once
        distance *= -2.0  # in place from here: one (block, N) array and its mask
        distance += squared[start:start + block, None]
        distance += squared[None, start:]
        np.maximum(distance, 0.0, out=distance)
        np.sqrt(distance, out=distance)
        near_rows, near_columns = np.nonzero(distance <= cut)
        a, b = track_of[start + near_rows], track_of[start + near_columns]
        joined = a != b
        if joined.any():
            pairs.append(np.unique(np.stack([a[joined], b[joined]], axis=1), axis=0))
    edges = np.concatenate(pairs) if pairs else np.zeros((0, 2), np.int64)
    graph = coo_matrix((np.ones(len(edges), np.int8), (edges[:, 0], edges[:, 1])), shape=(len(tracks), len(tracks)))
    return connected_components(graph, directed=False)[1]


def _agglomerate(tracks: list[np.ndarray], cut: float, linkage: Linkage) -> np.ndarray:
    """Merge the nearest two clusters while within `cut` (each row's nearest cluster cached, so a merge costs one
    pass over the track-by-track matrix); a cluster id per track."""
    count = len(tracks)
    distance = _track_distances(tracks, linkage)
    np.fill_diagonal(distance, np.inf)
    sizes = np.array([len(track) for track in tracks], dtype=np.float64)
    owner = np.arange(count)  # the cluster (its surviving row) each track belongs to
    alive = np.ones(count, dtype=bool)
    nearest = distance.argmin(1)
    while True:
        rows = np.flatnonzero(alive)
        row_minima = distance[rows, nearest[rows]]
        if len(rows) < 2 or row_minima.min() > cut:
            break
        keep = rows[row_minima.argmin()]
        gone = nearest[keep]
        # Lance-Williams: the merged cluster's distance to every other cluster, from the two it replaces.
        if linkage == "single":
            merged = np.minimum(distance[keep], distance[gone])
        elif linkage == "complete":
            merged = np.maximum(distance[keep], distance[gone])
        else:
            merged = (sizes[keep] * distance[keep] + sizes[gone] * distance[gone]) / (sizes[keep] + sizes[gone])
        merged[keep] = merged[gone] = np.inf
        distance[keep], distance[:, keep] = merged, merged
        distance[gone], distance[:, gone] = np.inf, np.inf
        sizes[keep] += sizes[gone]
        alive[gone] = False
        owner[owner == gone] = keep
        # Rows whose nearest was one of the two, and the merged row, look again; others may now be nearer it.
        stale = alive & ((nearest == keep) | (nearest == gone))
        stale[keep] = True
        nearest[stale] = distance[stale].argmin(1)
        closer = alive & (merged < distance[np.arange(count), nearest])
        nearest[closer] = keep
    return owner

"""Naming faces: compare query vectors with the stored gallery by L2 distance.

Three strategies share one interface (`Matcher.match`):
- `nearest`: the name of the closest stored vector (the classic rule);
- `centroid`: the closest person's mean vector (re-normalised);
- `vote`: the majority name among the k closest vectors under the threshold.

A face whose best distance is at or above the threshold is `UNKNOWN`.
Distances for a whole batch of queries against the whole gallery come from
one matrix product; the few candidates near the minimum are then measured
again in float64 so reported distances and ties are exact.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter
from dataclasses import dataclass
from typing import Sequence

import numpy as np

UNKNOWN = "Unknown"
DEFAULT_VOTE_K = 5
# Squared-distance slack inside which float32 candidates are re-measured exactly.
_NEAR_TIE_SLACK = 1e-4


@dataclass(frozen=True)
class Match:
    """The name given to one face and its distance to the evidence (None: empty gallery)."""

    name: str
    distance: float | None


class Gallery:
    """Stored vectors as one float32 matrix, with one name per row."""

    def __init__(self, vectors: np.ndarray | Sequence[Sequence[float]], names: Sequence[str]) -> None:
        matrix = np.asarray(vectors, dtype=np.float32)
        if matrix.size == 0:
            matrix = matrix.reshape(0, matrix.shape[-1] if matrix.ndim == 2 else 0)
        if matrix.ndim != 2 or matrix.shape[0] != len(names):
            raise ValueError(f"gallery needs an (N, D) matrix and N names, got {matrix.shape} and {len(names)}")
        self.vectors = np.ascontiguousarray(matrix)
        self.names = list(names)
        self._squared_norms = np.einsum("ij,ij->i", self.vectors, self.vectors)

    def __len__(self) -> int:
        return len(self.names)

    def nearest(self, queries: np.ndarray, k: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """Return (indices, distances), each (M, min(k, N)), the k closest rows of each query, closest first.

        Ties go to the row stored first.
        """
        queries = np.atleast_2d(np.asarray(queries, dtype=np.float32))
        k = min(k, len(self))
        if k == 0:
            return np.empty((len(queries), 0), np.int64), np.empty((len(queries), 0), np.float64)
        approx = self._approximate_squared_distances(queries)
        # Everything within slack of the k-th smallest is a candidate, so float32 error cannot pick wrong.
        kth = np.partition(approx, k - 1, axis=1)[:, k - 1 : k]
        indices = np.empty((len(queries), k), np.int64)
        distances = np.empty((len(queries), k), np.float64)
        for row, query in enumerate(queries):
            candidates = np.flatnonzero(approx[row] <= kth[row, 0] + _NEAR_TIE_SLACK)
            exact = np.linalg.norm(self.vectors[candidates].astype(np.float64) - query.astype(np.float64), axis=1)
            order = np.lexsort((candidates, exact))[:k]
            indices[row] = candidates[order]
            distances[row] = exact[order]
        return indices, distances

    def _approximate_squared_distances(self, queries: np.ndarray) -> np.ndarray:
        query_norms = np.einsum("ij,ij->i", queries, queries)
        return query_norms[:, None] + self._squared_norms[None, :] - 2.0 * (queries @ self.vectors.T)


def person_centroids(vectors: np.ndarray, names: Sequence[str]) -> Gallery:
    """A gallery with one row per person: the mean of their vectors, scaled to unit length."""
    vectors = np.asarray(vectors, dtype=np.float64)
    people = list(dict.fromkeys(names))
    if not people:
        return Gallery(np.zeros((0, vectors.shape[1] if vectors.ndim == 2 else 0), np.float32), [])
    person_index = {person: index for index, person in enumerate(people)}
    rows = np.array([person_index[name] for name in names])
    sums = np.zeros((len(people), vectors.shape[1]))
    np.add.at(sums, rows, vectors)
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    return Gallery(sums / np.where(norms == 0, 1.0, norms), people)


class Matcher(ABC):
    """Names query vectors against a gallery; `threshold` is the L2 distance where Unknown begins."""

    def __init__(self, gallery: Gallery, threshold: float) -> None:
        self.gallery = gallery
        self.threshold = threshold

    def match(self, queries: np.ndarray) -> list[Match]:
        """One Match per row of `queries` (an (M, D) array)."""
        queries = np.atleast_2d(np.asarray(queries, dtype=np.float32))
        if len(self.gallery) == 0:
            return [Match(UNKNOWN, None) for _ in queries]
        return self._match(queries)

    @abstractmethod
    def _match(self, queries: np.ndarray) -> list[Match]: ...

    def _named(self, name: str, distance: float) -> Match:
        return Match(name if distance < self.threshold else UNKNOWN, distance)


class NearestMatcher(Matcher):
    """The name of the single closest stored vector."""

    def _match(self, queries: np.ndarray) -> list[Match]:
        indices, distances = self.gallery.nearest(queries, k=1)
        return [self._named(self.gallery.names[i], float(d)) for i, d in zip(indices[:, 0], distances[:, 0])]


class CentroidMatcher(NearestMatcher):
    """The closest person, each person represented by the normalised mean of their vectors."""

    def __init__(self, gallery: Gallery, threshold: float) -> None:
        super().__init__(person_centroids(gallery.vectors, gallery.names), threshold)


class VoteMatcher(Matcher):
    """The majority name among the k closest vectors that are under the threshold.

    Equal votes go to the name with the closer vector; the distance reported is
    the winner's closest one. With no vector under the threshold: Unknown and
    the overall nearest distance.
    """

    def __init__(self, gallery: Gallery, threshold: float, k: int = DEFAULT_VOTE_K) -> None:
        super().__init__(gallery, threshold)
        self.k = k

    def _match(self, queries: np.ndarray) -> list[Match]:
        indices, distances = self.gallery.nearest(queries, k=self.k)
        matches = []
        for row_indices, row_distances in zip(indices, distances):
            voters = [(self.gallery.names[i], d) for i, d in zip(row_indices, row_distances) if d < self.threshold]
            if not voters:
                matches.append(Match(UNKNOWN, float(row_distances[0])))
                continue
            votes = Counter(name for name, _ in voters)
            best = {}
            for name, distance in voters:  # voters are closest first
                best.setdefault(name, distance)
            winner = min(votes, key=lambda name: (-votes[name], best[name]))
            matches.append(Match(winner, float(best[winner])))
        return matches


MATCHERS: dict[str, type[Matcher]] = {
    "nearest": NearestMatcher,
    "centroid": CentroidMatcher,
    "vote": VoteMatcher,
}


def make_matcher(strategy: str, vectors: np.ndarray, names: Sequence[str], threshold: float) -> Matcher:
    """Build the matcher called `strategy` (a key of MATCHERS) over the stored vectors."""
    return MATCHERS[strategy](Gallery(vectors, names), threshold)

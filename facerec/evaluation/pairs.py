"""Pair distances and the rates a threshold gives: how well it separates same-person from different-person pairs.

Conventions (the pipeline's): a face matches when its L2 distance is *below*
the threshold (distance < t); at or above it, it is Unknown. Distances are
computed in float64 from the stored float32 vectors, as the matchers measure
their final candidates, so a pair counted here as under t is one the pipeline
would also call under t.

Thresholds suggested by this module lie on a decimal grid (4 decimals by
default), so the printed value is exactly the one evaluated: pasting it as
`--threshold` gives the printed rates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

DEFAULT_DECIMALS = 4
# Rows of the distance matrix computed at once (bounds the temporary memory).
_BLOCK_ROWS = 1024


@dataclass(frozen=True)
class PairDistances:
    """L2 distances of all unordered pairs of vectors, split by same / different person, each sorted ascending."""

    same: np.ndarray
    different: np.ndarray


@dataclass(frozen=True)
class PairRates:
    """How many pairs fall below `threshold`: same-person ones (true matches) and different-person ones (false)."""

    threshold: float
    true_matches: int
    same_pairs: int
    false_matches: int
    different_pairs: int

    @property
    def true_match_rate(self) -> float:
        return self.true_matches / self.same_pairs if self.same_pairs else math.nan

    @property
    def false_match_rate(self) -> float:
        return self.false_matches / self.different_pairs if self.different_pairs else math.nan

    @property
    def balanced_accuracy(self) -> float:
        """The mean of the true-match rate and the true-reject rate (1 - false-match rate)."""
        return (self.true_match_rate + 1.0 - self.false_match_rate) / 2.0


def person_codes(names: Sequence[str]) -> np.ndarray:
    """An integer per vector, equal for equal names."""
    index: dict[str, int] = {}
    return np.array([index.setdefault(name, len(index)) for name in names], dtype=np.int64)


def pair_distances(vectors: np.ndarray, names: Sequence[str]) -> PairDistances:
    """Distances of all N(N-1)/2 pairs, from matrix products over blocks of rows (8 bytes a pair in all)."""
    matrix = np.asarray(vectors, dtype=np.float64)
    if matrix.ndim != 2 or len(matrix) != len(names):
        raise ValueError(f"need an (N, D) matrix and N names, got {matrix.shape} and {len(names)}")
    codes = person_codes(names)
    squared = np.einsum("ij,ij->i", matrix, matrix)
    same_parts, different_parts = [], []
    for start in range(0, len(matrix), _BLOCK_ROWS):
        stop = min(start + _BLOCK_ROWS, len(matrix))
        block = squared[start:stop, None] + squared[None, :] - 2.0 * (matrix[start:stop] @ matrix.T)
        distances = np.sqrt(np.maximum(block, 0.0))
        rows, columns = np.nonzero(np.arange(start, stop)[:, None] < np.arange(len(matrix))[None, :])
        upper = distances[rows, columns]
        same = codes[start + rows] == codes[columns]
        same_parts.append(upper[same])
        different_parts.append(upper[~same])
    empty = np.empty(0, np.float64)
    return PairDistances(
        np.sort(np.concatenate(same_parts)) if same_parts else empty,
        np.sort(np.concatenate(different_parts)) if different_parts else empty,
    )


def rates_at(pairs: PairDistances, threshold: float) -> PairRates:
    """The counts of same- and different-person pairs strictly below `threshold`."""
    return PairRates(
        float(threshold),
        int(np.searchsorted(pairs.same, threshold, side="left")),
        len(pairs.same),
        int(np.searchsorted(pairs.different, threshold, side="left")),
        len(pairs.different),
    )


def rate_curves(pairs: PairDistances, thresholds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """True-match and false-match rates at each threshold (distance < t)."""
    thresholds = np.asarray(thresholds, dtype=np.float64)
    true_rate = np.searchsorted(pairs.same, thresholds, side="left") / max(len(pairs.same), 1)
    false_rate = np.searchsorted(pairs.different, thresholds, side="left") / max(len(pairs.different), 1)
    return true_rate, false_rate


def _largest_grid_point_at_most(value: float, scale: int) -> float:
    """The largest m/scale (m an integer) that is <= value, exactly as floats compare."""
    m = math.floor(value * scale)
    while m / scale > value:
        m -= 1
    while (m + 1) / scale <= value:
        m += 1
    return m / scale


def threshold_for_far(pairs: PairDistances, target_far: float, decimals: int = DEFAULT_DECIMALS) -> float:
    """The largest threshold on the decimal grid whose false-match rate is at most `target_far`.

    With k = floor(target_far * pairs) false matches allowed, that is the grid
    point at or below the (k+1)-th smallest different-person distance.
    """
    if not 0.0 <= target_far < 1.0:
        raise ValueError(f"target false-match rate must be in [0, 1), got {target_far}")
    different = pairs.different
    if len(different) == 0:
        raise ValueError("no different-person pairs")
    allowed = math.floor(target_far * len(different) + 1e-9)
    scale = 10**decimals
    if allowed >= len(different):
        return (math.floor(different[-1] * scale) + 1) / scale
    return _largest_grid_point_at_most(float(different[allowed]), scale)


def _grid_points_above(values: np.ndarray, scale: int) -> np.ndarray:
    """For each value, the integer m of the smallest grid point m/scale strictly above it, exactly as floats compare."""
    m = np.floor(values * scale).astype(np.int64) + 1
    m -= (m - 1) / scale > values  # float rounding can put the first guess one step off either way
    m += m / scale <= values
    return m


def best_accuracy_threshold(pairs: PairDistances, decimals: int = DEFAULT_DECIMALS) -> float:
    """The threshold on the decimal grid with the best balanced accuracy (mean of true-match and true-reject rates).

    Balanced, because different-person pairs far outnumber same-person ones:
    plain accuracy would favour rejecting everything. Where several grid points
    share the best value, the middle of the first such run is returned.

    The rates only change just above each distance, so only those grid points
    (and 0) are scored: the work is bounded by the number of pairs, whatever
    the distances' scale.
    """
    if len(pairs.same) == 0 or len(pairs.different) == 0:
        raise ValueError("need both same-person and different-person pairs")
    scale = 10**decimals
    # Grid indices where the counts may change; between two of them the score stays as at the first.
    steps = np.unique(np.concatenate([[0], _grid_points_above(np.concatenate([pairs.same, pairs.different]), scale)]))
    grid = steps / scale
    true_matches = np.searchsorted(pairs.same, grid, side="left").astype(np.int64)
    false_matches = np.searchsorted(pairs.different, grid, side="left").astype(np.int64)
    # Balanced accuracy times 2 * same * different, in integers so equal values compare equal.
    score = true_matches * len(pairs.different) - false_matches * len(pairs.same)
    best = np.flatnonzero(score == score.max())
    gaps = np.flatnonzero(np.diff(best) != 1)
    last = best[gaps[0]] if len(gaps) else best[-1]
    # The run covers grid indices steps[best[0]] up to just before the next step (the last step ends the grid).
    run_end = steps[last + 1] - 1 if last + 1 < len(steps) else steps[last]
    return float((steps[best[0]] + run_end) // 2 / scale)


def pairs_needed(target_far: float) -> int:
    """How many different-person pairs it takes to estimate a false-match rate of `target_far` (about 3/FAR).

    With n pairs and no false match seen, the rate may still be up to 3/n (95%
    confidence, the rule of three): fewer pairs cannot show a rate that low.
    """
    return math.ceil(3.0 / target_far - 1e-9)

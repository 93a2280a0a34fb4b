"""Measuring how well a threshold separates people: pair distances, rates, identification.

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

import csv
import math
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Iterable, Sequence

import numpy as np

from .errors import FacerecError
from .fileio import atomic_writer
from .matching import UNKNOWN, make_matcher

DEFAULT_DECIMALS = 4
# Largest threshold grid searched; a coarser grid is used beyond it (unnormalised vectors).
_MAX_GRID = 4_000_000
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


@dataclass(frozen=True)
class Identification:
    """Leave-one-out open-set identification: each vector named against all the others.

    Queries are vectors whose person has other vectors (right, wrong or rejected);
    the vectors of people seen once can only be rejected, or falsely accepted
    (given any name).
    """

    strategy: str
    threshold: float
    queries: int
    right: int
    wrong: int
    rejected: int
    singletons: int
    false_accepts: int

    @property
    def all_correct(self) -> int:
        """Vectors handled correctly: named right, or a person seen once rejected."""
        return self.right + self.singletons - self.false_accepts


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


def best_accuracy_threshold(pairs: PairDistances, decimals: int = DEFAULT_DECIMALS) -> float:
    """The threshold on the decimal grid with the best balanced accuracy (mean of true-match and true-reject rates).

    Balanced, because different-person pairs far outnumber same-person ones:
    plain accuracy would favour rejecting everything. Where several grid points
    share the best value, the middle of the first such run is returned.
    """
    if len(pairs.same) == 0 or len(pairs.different) == 0:
        raise ValueError("need both same-person and different-person pairs")
    largest = max(float(pairs.same[-1]), float(pairs.different[-1]))
    while decimals > 0 and largest * 10**decimals > _MAX_GRID:
        decimals -= 1
    scale = 10**decimals
    grid = np.arange(math.floor(largest * scale) + 2) / scale
    true_matches = np.searchsorted(pairs.same, grid, side="left").astype(np.int64)
    false_matches = np.searchsorted(pairs.different, grid, side="left").astype(np.int64)
    # Balanced accuracy times 2 * same * different, in integers so equal values compare equal.
    score = true_matches * len(pairs.different) - false_matches * len(pairs.same)
    best = np.flatnonzero(score == score.max())
    gaps = np.flatnonzero(np.diff(best) != 1)
    run_end = best[gaps[0]] if len(gaps) else best[-1]
    return float(grid[(best[0] + run_end) // 2])


def leave_one_out(vectors: np.ndarray, names: Sequence[str], strategy: str, threshold: float) -> Identification:
    """Name each vector with the `strategy` matcher built over all the other vectors."""
    vectors = np.asarray(vectors, dtype=np.float32)
    codes = person_codes(names)
    photos = np.bincount(codes)[codes]
    answers = []
    for query in range(len(names)):
        others = np.arange(len(names)) != query
        gallery_names = [name for index, name in enumerate(names) if index != query]
        match = make_matcher(strategy, vectors[others], gallery_names, threshold).match(vectors[query : query + 1])[0]
        answers.append((names[query], match.name, photos[query] > 1))
    return count_identification(strategy, threshold, answers)


def count_identification(label: str, threshold: float, answers: Iterable[tuple[str, str, bool]]) -> Identification:
    """Count (true name, name given, whether the gallery held that person) triples: a known person is
    named right, wrong or rejected; a stranger (not in the gallery) is rejected or wrongly named."""
    right = wrong = rejected = strangers = false_accepts = 0
    for truth, given, known in answers:
        if not known:
            strangers += 1
            false_accepts += given != UNKNOWN
        elif given == truth:
            right += 1
        elif given == UNKNOWN:
            rejected += 1
        else:
            wrong += 1
    return Identification(label, float(threshold), right + wrong + rejected, right, wrong, rejected,
                          strangers, false_accepts)


def _csv_rows(path: Path, what: str) -> list[tuple[int, list[str]]]:
    """The non-blank rows of a CSV file with their line numbers; FacerecError if it cannot be read."""
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = [(number, row) for number, row in enumerate(csv.reader(handle), start=1)
                    if any(field.strip() for field in row)]
    except FileNotFoundError:
        raise FacerecError(f"{what} file {path} does not exist") from None
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise FacerecError(f"cannot read {what} file {path}: {error}") from None
    if not rows:
        raise FacerecError(f"{what} file {path} is empty")
    return rows


def load_labelled_vectors(vectors_path: str | os.PathLike, labels_path: str | os.PathLike) -> tuple[np.ndarray, list[str]]:
    """Read OpenFace-style CSVs: one vector a row (no header), and labels `index,path` a row.

    Row i of the labels describes row i of the vectors; the person is the folder
    of the path (the index column is not used). Returns float32 vectors, as the
    pipeline stores them, and the person names.
    """
    vectors_path, labels_path = Path(vectors_path), Path(labels_path)
    rows = []
    for number, row in _csv_rows(vectors_path, "vectors"):
        try:
            rows.append([float(field) for field in row])
        except ValueError:
            raise FacerecError(f"vectors file {vectors_path}, line {number}: not a row of numbers") from None
        if len(rows[-1]) != len(rows[0]):
            raise FacerecError(f"vectors file {vectors_path}, line {number}: a row of length {len(rows[-1])}, "
                               f"but the first row has length {len(rows[0])}")
    vectors = np.array(rows, dtype=np.float32)
    if not np.all(np.isfinite(vectors)):
        raise FacerecError(f"vectors file {vectors_path} contains NaN or infinite values")
    names = []
    for number, row in _csv_rows(labels_path, "labels"):
        if len(row) != 2:
            raise FacerecError(f"labels file {labels_path}, line {number}: expected 'index,path', got {len(row)} fields")
        person = PurePosixPath(row[1].strip().replace("\\", "/")).parent.name
        if not person:
            raise FacerecError(f"labels file {labels_path}, line {number}: path {row[1]!r} has no folder "
                               "naming the person")
        names.append(person)
    if len(names) != len(vectors):
        raise FacerecError(f"{vectors_path} has {len(vectors)} vectors but {labels_path} has {len(names)} labels")
    return vectors, names


# One colour per marked threshold, the same in both plots (blue and red are the histograms').
_MARK_COLORS = ["black", "tab:green", "tab:orange", "tab:purple", "tab:brown", "tab:olive", "tab:cyan", "tab:gray"]


def _mark_color(index: int) -> str:
    return _MARK_COLORS[index % len(_MARK_COLORS)]


def _save_figure(figure, path: str | os.PathLike) -> None:
    with atomic_writer(path) as handle:
        figure.savefig(handle, format="png")


def _figure():
    """matplotlib's pyplot on the Agg backend (no display needed), imported only when plotting."""
    try:
        import matplotlib
    except ImportError:
        raise FacerecError("plots need matplotlib: pip install matplotlib") from None

    matplotlib.use("Agg")
    from matplotlib import pyplot

    return pyplot


def plot_distances(pairs: PairDistances, marks: Sequence[tuple[str, float]], path: str | os.PathLike) -> None:
    """PNG of the same- and different-person distance histograms (as densities), each mark a vertical line."""
    pyplot = _figure()
    figure, axes = pyplot.subplots(figsize=(8, 5), dpi=100)
    try:
        largest = max(float(pairs.same[-1]), float(pairs.different[-1]))
        bins = np.linspace(0.0, largest * 1.001, 81)
        axes.hist(pairs.different, bins=bins, density=True, alpha=0.55, color="tab:red",
                  label=f"different people ({len(pairs.different):,} pairs)")
        axes.hist(pairs.same, bins=bins, density=True, alpha=0.55, color="tab:blue",
                  label=f"same person ({len(pairs.same):,} pairs)")
        for index, (label, threshold) in enumerate(marks):
            axes.axvline(threshold, color=_mark_color(index), linestyle=["-", "--", ":", "-."][index % 4],
                         linewidth=1.5, label=f"{label}: {threshold:.4f}")
        axes.set_xlabel("L2 distance between the two vectors of a pair")
        axes.set_ylabel("density")
        axes.set_title("Pair distances: a pair matches when its distance is below the threshold")
        axes.set_ylim(0.0, axes.get_ylim()[1] * 1.4)  # room for the legend above the bars
        axes.legend(fontsize="small", loc="upper left", ncol=2)
        figure.tight_layout()
        _save_figure(figure, path)
    finally:
        pyplot.close(figure)


def plot_roc(pairs: PairDistances, marks: Sequence[tuple[str, float]], path: str | os.PathLike) -> None:
    """PNG of the ROC curve (true-match rate against false-match rate, log scale), each mark a point."""
    pyplot = _figure()
    figure, axes = pyplot.subplots(figsize=(8, 5), dpi=100)
    try:
        thresholds = np.concatenate([np.unique(np.concatenate([pairs.same, pairs.different])), [np.inf]])
        # Just above each distance, so every distinct operating point appears once.
        true_rate, false_rate = rate_curves(pairs, np.nextafter(thresholds, np.inf))
        floor = 0.5 / len(pairs.different)
        axes.step(np.maximum(false_rate, floor), true_rate, where="post", color="tab:blue")
        for index, (label, threshold) in enumerate(marks):
            rates = rates_at(pairs, threshold)
            axes.plot(max(rates.false_match_rate, floor), rates.true_match_rate, "osD^v"[index % 5], markersize=8,
                      color=_mark_color(index),
                      label=f"{label}: t={threshold:.4f}, true {rates.true_match_rate:.1%}, "
                            f"false {rates.false_match_rate:.2%}")
        axes.set_xscale("log")
        axes.set_xlim(floor, 1.0)
        axes.set_ylim(0.0, 1.01)
        axes.set_xlabel("false-match rate (different-person pairs below the threshold)")
        axes.set_ylabel("true-match rate (same-person pairs below the threshold)")
        axes.set_title("ROC: every threshold")
        axes.grid(True, which="both", alpha=0.3)
        axes.legend(fontsize="small", loc="lower right")
        figure.tight_layout()
        _save_figure(figure, path)
    finally:
        pyplot.close(figure)


def _percent(count: int, total: int, decimals: int = 1) -> str:
    return f"{count:,} ({count / total:.{decimals}%})" if total else f"{count:,} (-)"


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], left: int = 1) -> str:
    """Columns padded to their widest cell: the first `left` ones left-aligned, the others right-aligned."""
    widths = [max(len(row[column]) for row in [headers, *rows]) for column in range(len(headers))]
    lines = []
    for row in [headers, *rows]:
        cells = [cell.ljust(width) if column < left else cell.rjust(width)
                 for column, (cell, width) in enumerate(zip(row, widths))]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def pair_table(rows: Sequence[tuple[str, PairRates]]) -> str:
    """One line per (why it was chosen, rates at that threshold)."""
    return _table(
        ["threshold", "chosen as", "true matches", "false matches", "balanced accuracy"],
        [[f"{rates.threshold:.4f}", label, _percent(rates.true_matches, rates.same_pairs),
          _percent(rates.false_matches, rates.different_pairs, 2), f"{rates.balanced_accuracy:.1%}"]
         for label, rates in rows],
        left=2,
    )


def identification_table(results: Sequence[Identification]) -> str:
    """One line per leave-one-out run."""
    return _table(
        ["strategy", "threshold", "queries", "right", "wrong", "rejected", "seen once", "wrongly named", "all correct"],
        [[result.strategy, f"{result.threshold:.4f}", f"{result.queries:,}",
          _percent(result.right, result.queries), _percent(result.wrong, result.queries),
          _percent(result.rejected, result.queries), f"{result.singletons:,}",
          _percent(result.false_accepts, result.singletons), _percent(result.all_correct, result.queries + result.singletons)]
         for result in results],
    )

"""PNG plots of pair distances: the two histograms, and the ROC curve, with the chosen thresholds marked."""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from ..errors import FacerecError
from ..fileio import atomic_writer
from .pairs import PairDistances, rate_curves, rates_at


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

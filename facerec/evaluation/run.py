"""evaluate.py's run: read the labelled vectors (a gallery, or CSV files), then measure pairs and
identification and write the plots, as lines for the caller to show.

`evaluate` yields (kind, text) in the order they are meant to be read: kind "" is a line of
the report (standard output), "warning" a warning (standard error); nothing here prints.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from ..catalogue import DEFAULT_PROFILE, PROFILES
from ..crossvalidation import DEFAULT_FOLDS, k_fold
from ..errors import FacerecError
from ..matching import DEFAULT_MIN_PROBABILITY, MATCHERS, needs_training
from ..stores import open_store
from .identification import leave_one_out
from .pairs import best_accuracy_threshold, pair_distances, pairs_needed, rates_at, threshold_for_far
from .plots import plot_distances, plot_roc
from .tables import identification_table, pair_table
from .vectors import check_vectors, load_labelled_vectors

WARNING = "warning"
Line = tuple[str, str]  # (kind: "" or WARNING, text)


@dataclass
class LabelledVectors:
    """Vectors with the person of each, and the name of the profile that made them."""

    vectors: np.ndarray
    names: list[str]
    profile: str
    source: str  # where they came from, for messages


def read_labelled_vectors(gallery: str | os.PathLike | None, vectors: Path | None = None,
                          labels: Path | None = None) -> LabelledVectors:
    """The vectors of `vectors` + `labels` (CSV files: OpenFace's reps.csv and its labels, made by the openface
    profile) if given, else of the gallery at `gallery` (see stores.open_store), checked; FacerecError if unusable."""
    if vectors is not None and labels is not None:
        found, names = load_labelled_vectors(vectors, labels)
        return LabelledVectors(found, names, DEFAULT_PROFILE, str(vectors))
    with open_store(gallery) as store:
        snapshot, location = store.load(), store.location
    check_vectors(snapshot.vectors, [f"{location}, vector {index + 1}" + (f" ({path})" if path else "")
                                     for index, path in enumerate(snapshot.paths)])
    return LabelledVectors(snapshot.vectors, snapshot.names, snapshot.profile, location)


@dataclass
class Settings:
    """What to measure: evaluate.py's options."""

    thresholds: list[float] | None = None  # None: the threshold of the profile that made the vectors
    target_far: float = 0.001
    match: str = "all"  # a key of matching.MATCHERS, or "all"
    folds: int | None = None
    min_probabilities: list[float] = field(default_factory=lambda: [DEFAULT_MIN_PROBABILITY])
    plots: Path | None = None
    plot_prefix: str = ""


def thresholds_of(data: LabelledVectors, settings: Settings) -> list[float]:
    """The thresholds asked for, else the profile's; FacerecError for a profile this version does not know."""
    if settings.thresholds is not None:
        return list(settings.thresholds)
    if data.profile not in PROFILES:
        raise FacerecError(f"{data.source} was made with the profile {data.profile!r}, which this version "
                           "does not know: give the threshold(s) with --threshold")
    return [PROFILES[data.profile].threshold]


def evaluate(data: LabelledVectors, settings: Settings) -> Iterator[Line]:
    """The whole report, line by line (see the module); FacerecError when the vectors cannot be evaluated."""
    vectors, names = data.vectors, data.names
    thresholds = thresholds_of(data, settings)
    people = len(set(names))
    if len(names) < 2 or people < 2:
        raise FacerecError(f"only {people} person(s) in {len(names)} vector(s): evaluation needs at least two people")
    norms = np.linalg.norm(vectors, axis=1)
    if np.any(np.abs(norms - 1.0) > 1e-3):
        yield WARNING, (f"vector lengths range from {norms.min():.3g} to {norms.max():.3g}: the pipeline stores "
                        "unit vectors, so these distances may not match its thresholds")
    pairs = pair_distances(vectors, names)
    if len(pairs.same) == 0:
        raise FacerecError("every person has a single vector: evaluation needs someone with two or more")

    yield "", (f"{len(names):,} vectors of {people:,} people, {vectors.shape[1]} dimensions: "
               f"{len(pairs.same):,} same-person pairs, {len(pairs.different):,} different-person pairs")
    marks = [("--threshold", threshold) for threshold in thresholds]
    target = settings.target_far
    if len(pairs.different) >= pairs_needed(target):
        marks.append((f"false-match rate <= {target * 100:g}%", threshold_for_far(pairs, target)))
    else:
        yield WARNING, (f"no threshold for a false-match rate of {target * 100:g}%: it takes about "
                        f"{pairs_needed(target):,} different-person pairs to estimate (3/rate), and there are "
                        f"{len(pairs.different):,}; give a larger --target-far or more people")
    marks.append(("best balanced accuracy", best_accuracy_threshold(pairs)))
    yield "", "\npairs below the threshold (L2 distance < t):"
    yield "", pair_table([(label, rates_at(pairs, threshold)) for label, threshold in marks])

    strategies = list(MATCHERS) if settings.match == "all" else [settings.match]
    untrained = [strategy for strategy in strategies if not needs_training(strategy)]
    if untrained:
        yield "", "\nleave-one-out identification (each vector named against all the others):"
        yield "", identification_table([leave_one_out(vectors, names, strategy, threshold)
                                        for threshold in thresholds for strategy in untrained])
    if settings.folds is not None or len(untrained) < len(strategies):
        folds = settings.folds or DEFAULT_FOLDS
        yield "", f"\nstratified {folds}-fold identification (each fold named against the other folds):"
        yield "", identification_table([
            k_fold(vectors, names, strategy, threshold, folds, probability, label)
            for threshold in thresholds for strategy in strategies
            for probability, label in _settings(strategy, settings.min_probabilities)])

    if settings.plots is not None:
        written = [settings.plots / f"{settings.plot_prefix}distances.png",
                   settings.plots / f"{settings.plot_prefix}roc.png"]
        try:
            plot_distances(pairs, marks, written[0])
            plot_roc(pairs, marks, written[1])
        except OSError as error:
            raise FacerecError(f"cannot write the plots in {settings.plots}: {error.strerror or error}") from None
        yield "", f"\nplots: {written[0]}, {written[1]}"


def _settings(strategy: str, probabilities: Sequence[float]) -> list[tuple[float | None, str]]:
    """(min probability, table label) for each row of `strategy`: one per probability for svm."""
    if strategy != "svm":
        return [(None, strategy)]
    return [(probability, f"svm p>={probability:g}") for probability in probabilities]

#!/usr/bin/env python3
"""Measure how well a threshold and a matching strategy separate the people of a set of embeddings.

Prints, for all same-person and different-person pairs, the true-match and
false-match rates at the given threshold(s), at the threshold giving the
target false-match rate and at the one with the best balanced accuracy; then
leave-one-out identification (each vector named against all the others) for
each matching strategy that needs no training; with --folds (or --match svm),
stratified k-fold identification for every strategy, svm included. A pair or
a face matches when its L2 distance is below the threshold.
"""

from __future__ import annotations

from facerec.errors import exit_quietly_on_interrupt

exit_quietly_on_interrupt()  # first: a Ctrl-C during the slow imports below ends quietly

import sys
from pathlib import Path

import numpy as np

from facerec.catalogue import DEFAULT_PROFILE, PROFILES
from facerec.cli import add_store_arguments, bounded_number, distance_threshold, parser_for, positive_int, probability
from facerec.crossvalidation import DEFAULT_FOLDS, k_fold
from facerec.errors import FacerecError, main_guard
from facerec.evaluation import (best_accuracy_threshold, check_vectors, identification_table, leave_one_out,
                                load_labelled_vectors, pair_distances, pair_table, pairs_needed, plot_distances,
                                plot_roc, rates_at, threshold_for_far)
from facerec.matching import DEFAULT_MIN_PROBABILITY, MATCHERS, needs_training
from facerec.stores import open_store


@main_guard
def main(argv: list[str] | None = None) -> int:
    parser = parser_for(__doc__, "python evaluate.py --embeddings output/embeddings.pickle --plots plots\n"
                                 "  python evaluate.py --vectors reps.csv --labels labels.csv --threshold 0.55 0.8 1.0")
    source = parser.add_mutually_exclusive_group()
    add_store_arguments(source, " (used unless --vectors is given)")
    source.add_argument("--vectors", type=Path, metavar="CSV",
                        help="CSV of vectors, one a row, no header (OpenFace's reps.csv); needs --labels")
    parser.add_argument("--labels", type=Path, metavar="CSV",
                        help="CSV of 'index,path' rows, one per vector row; the person is the path's folder")
    parser.add_argument("--threshold", type=distance_threshold, nargs="+", default=None, metavar="T",
                        help="threshold(s) to report, L2 distance, 0 to 2 (default: the threshold of the profile "
                             "that made the embeddings file, e.g. " + ", ".join(
                                 f"{p.threshold:g} for {p.name}" for p in PROFILES.values())
                             + f"; {PROFILES[DEFAULT_PROFILE].threshold:g} ({DEFAULT_PROFILE}'s) for --vectors)")
    parser.add_argument("--target-far", type=bounded_number(float, 0.0, 1.0, low_inclusive=False), default=0.001,
                        metavar="RATE",
                        help="false-match rate to find a threshold for, as a fraction between 0 and 1 "
                             "(default: 0.001 = 0.1%%); it needs about 3/RATE different-person pairs")
    parser.add_argument("--match", choices=[*MATCHERS, "all"], default="all",
                        help="matching strategy to identify with (default: all, to compare them; "
                             "all includes svm only with --folds)")
    parser.add_argument("--folds", type=positive_int, default=None, metavar="K",
                        help=f"also stratified K-fold identification, svm included (default without it: none; "
                             f"{DEFAULT_FOLDS} folds with --match svm)")
    parser.add_argument("--min-probability", type=probability, nargs="+", default=[DEFAULT_MIN_PROBABILITY],
                        metavar="P", help="svm: smallest probability of its top name that names a face, 0 to 1 "
                                          f"(default: {DEFAULT_MIN_PROBABILITY})")
    parser.add_argument("--plots", type=Path, metavar="DIR",
                        help="write the distance histograms and the ROC curve as PNG files in DIR")
    parser.add_argument("--plot-prefix", default="", metavar="TEXT",
                        help="start of the plot file names (default: none: distances.png, roc.png)")
    args = parser.parse_args(argv)
    if args.vectors is not None and args.labels is None:
        parser.error("--vectors needs --labels")
    if args.vectors is None and args.labels is not None:
        parser.error("--labels goes with --vectors, not --embeddings")
    if args.target_far >= 1.0:
        parser.error("--target-far must be below 1")
    if args.folds == 1:
        parser.error("--folds must be at least 2")

    if args.vectors is None:
        with open_store(args.embeddings) as store:
            gallery, location = store.load(), store.location
        vectors, names = gallery.vectors, gallery.names
        check_vectors(vectors, [f"{location}, vector {index + 1}" + (f" ({path})" if path else "")
                                for index, path in enumerate(gallery.paths)])
        profile_name = gallery.profile
    else:
        vectors, names = load_labelled_vectors(args.vectors, args.labels)
        profile_name = DEFAULT_PROFILE  # OpenFace's reps.csv
    if args.threshold is None:
        if profile_name not in PROFILES:
            raise FacerecError(f"{location} was made with the profile {profile_name!r}, which this version "
                               "does not know: give the threshold(s) with --threshold")
        args.threshold = [PROFILES[profile_name].threshold]
    people = len(set(names))
    if len(names) < 2 or people < 2:
        raise FacerecError(f"only {people} person(s) in {len(names)} vector(s): evaluation needs at least two people")
    norms = np.linalg.norm(vectors, axis=1)
    if np.any(np.abs(norms - 1.0) > 1e-3):
        print(f"warning: vector lengths range from {norms.min():.3g} to {norms.max():.3g}: the pipeline stores "
              "unit vectors, so these distances may not match its thresholds", file=sys.stderr)
    pairs = pair_distances(vectors, names)
    if len(pairs.same) == 0:
        raise FacerecError("every person has a single vector: evaluation needs someone with two or more")

    print(f"{len(names):,} vectors of {people:,} people, {vectors.shape[1]} dimensions: "
          f"{len(pairs.same):,} same-person pairs, {len(pairs.different):,} different-person pairs")
    marks = [("--threshold", threshold) for threshold in args.threshold]
    if len(pairs.different) >= pairs_needed(args.target_far):
        marks.append((f"false-match rate <= {args.target_far * 100:g}%", threshold_for_far(pairs, args.target_far)))
    else:
        print(f"warning: no threshold for a false-match rate of {args.target_far * 100:g}%: it takes about "
              f"{pairs_needed(args.target_far):,} different-person pairs to estimate (3/rate), and there are "
              f"{len(pairs.different):,}; give a larger --target-far or more people", file=sys.stderr)
    marks.append(("best balanced accuracy", best_accuracy_threshold(pairs)))
    print("\npairs below the threshold (L2 distance < t):")
    print(pair_table([(label, rates_at(pairs, threshold)) for label, threshold in marks]))

    strategies = list(MATCHERS) if args.match == "all" else [args.match]
    untrained = [strategy for strategy in strategies if not needs_training(strategy)]
    if untrained:
        print("\nleave-one-out identification (each vector named against all the others):")
        print(identification_table([leave_one_out(vectors, names, strategy, threshold)
                                    for threshold in args.threshold for strategy in untrained]))
    if args.folds is not None or len(untrained) < len(strategies):
        folds = args.folds or DEFAULT_FOLDS
        print(f"\nstratified {folds}-fold identification (each fold named against the other folds):")
        print(identification_table([
            k_fold(vectors, names, strategy, threshold, folds, probability, label)
            for threshold in args.threshold for strategy in strategies
            for probability, label in _settings(strategy, args.min_probability)]))

    if args.plots is not None:
        written = [args.plots / f"{args.plot_prefix}distances.png", args.plots / f"{args.plot_prefix}roc.png"]
        try:
            plot_distances(pairs, marks, written[0])
            plot_roc(pairs, marks, written[1])
        except OSError as error:
            raise FacerecError(f"cannot write the plots in {args.plots}: {error.strerror or error}") from None
        print(f"\nplots: {written[0]}, {written[1]}")
    return 0


def _settings(strategy: str, probabilities: list[float]) -> list[tuple[float | None, str]]:
    """(min probability, table label) for each row of `strategy`: one per probability for svm."""
    if strategy != "svm":
        return [(None, strategy)]
    return [(probability, f"svm p>={probability:g}") for probability in probabilities]


if __name__ == "__main__":
    sys.exit(main())

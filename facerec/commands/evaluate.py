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

from facerec.catalogue import DEFAULT_PROFILE, PROFILES
from facerec.cli import add_store_arguments, bounded_number, distance_threshold, parser_for, positive_int, probability
from facerec.crossvalidation import DEFAULT_FOLDS
from facerec.commands import command_main
from facerec.evaluation.run import WARNING, Settings, evaluate, read_labelled_vectors
from facerec.matching import DEFAULT_MIN_PROBABILITY, MATCHERS


@command_main
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

    data = read_labelled_vectors(args.embeddings, args.vectors, args.labels)
    settings = Settings(args.threshold, args.target_far, args.match, args.folds, args.min_probability, args.plots,
                        args.plot_prefix)
    for kind, text in evaluate(data, settings):
        print(f"warning: {text}" if kind == WARNING else text, file=sys.stderr if kind == WARNING else sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())

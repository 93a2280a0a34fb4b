"""Evaluating a set of labelled vectors: how well thresholds and matching strategies separate the people.

One module per concept: `pairs` (pair distances, rates, suggested thresholds),
`identification` (leave-one-out naming), `vectors` (reading and checking the
vectors), `plots` (PNG figures) and `tables` (the printed tables). The names
below are the ones evaluate.py and the tests use.
"""

from .identification import Identification, count_identification, leave_one_out
from .pairs import (DEFAULT_DECIMALS, PairDistances, PairRates, best_accuracy_threshold, pair_distances, pairs_needed,
                    person_codes, rate_curves, rates_at, threshold_for_far)
from .plots import plot_distances, plot_roc
from .tables import identification_table, pair_table
from .vectors import check_vectors, load_labelled_vectors

__all__ = [
    "DEFAULT_DECIMALS", "Identification", "PairDistances", "count_identification", "PairRates", "best_accuracy_threshold", "check_vectors",
    "identification_table", "leave_one_out", "load_labelled_vectors", "pair_distances", "pair_table", "pairs_needed",
    "person_codes", "plot_distances", "plot_roc", "rate_curves", "rates_at", "threshold_for_far",
]

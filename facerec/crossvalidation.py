"""Stratified k-fold identification: each fold named by a matcher built on the other folds.

For strategies that train (svm), leave-one-out would train once per vector;
k folds train k times. The counts are those of leave-one-out
(`evaluation.Identification`): a query whose person has vectors in the other
folds is named right, wrong or rejected; one whose person has none there (a
person with one photo) is a stranger, correctly rejected or wrongly named.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .evaluation import Identification, count_identification, person_codes
from .matching import make_matcher

DEFAULT_FOLDS = 5


def stratified_folds(names: Sequence[str], folds: int) -> np.ndarray:
    """The fold (0 .. folds-1) of each vector: each person's vectors dealt in turn to consecutive folds.

    Deterministic (no shuffling): people in order of first appearance, each
    person's vectors in their order, each person starting where the previous
    one stopped, so folds differ in size by at most one and a person with n
    vectors has them in min(n, folds) different folds.
    """
    if folds < 2:
        raise ValueError(f"k-fold needs at least 2 folds, got {folds}")
    codes = person_codes(names)
    fold_of = np.empty(len(codes), np.int64)
    next_fold = 0
    for code in range(int(codes.max(initial=-1)) + 1):
        rows = np.flatnonzero(codes == code)
        fold_of[rows] = (next_fold + np.arange(len(rows))) % folds
        next_fold = (next_fold + len(rows)) % folds
    return fold_of


def k_fold(vectors: np.ndarray, names: Sequence[str], strategy: str, threshold: float, folds: int = DEFAULT_FOLDS,
           min_probability: float | None = None, label: str | None = None) -> Identification:
    """Name the vectors of each fold with the `strategy` matcher built on all the other folds.

    `min_probability` goes to the svm strategy; `label` names the row in the
    table (default: the strategy).
    """
    vectors = np.asarray(vectors, dtype=np.float32)
    names = list(names)
    fold_of = stratified_folds(names, folds)
    answers = []
    for fold in range(folds):
        test = np.flatnonzero(fold_of == fold)
        if not len(test):
            continue
        train = np.flatnonzero(fold_of != fold)
        gallery_names = [names[row] for row in train]
        known = set(gallery_names)
        matcher = make_matcher(strategy, vectors[train], gallery_names, threshold, min_probability=min_probability)
        answers += [(names[row], match.name, names[row] in known) for row, match in zip(test, matcher.match(vectors[test]))]
    return count_identification(label or strategy, threshold, answers)

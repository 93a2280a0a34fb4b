"""A support vector machine with class probabilities, for the svm matching strategy.

scikit-learn's SVC decides between every pair of classes (one-vs-one); its
probabilities (CalibratedClassifierCV) combine the pairs' decisions into one
score per class in a Python loop over the pairs, 83,845 of them for 410
people, and fit the calibration on several refits. Here the same scores are
combined with numpy, and one temperature is fitted on one held-out half.
A linear SVM (one-vs-rest) can be asked for, but trains no faster on large
galleries: it fits one problem per person over every vector (docs/thresholds.md,
"The classifier: svm").
"""

from __future__ import annotations

import warnings

import numpy as np

# Penalty of a misclassified training vector. Chosen with an earlier per-class (sigmoid) calibration, on LFW
# 5-fold at 0.55: C=10 named 299 of 717 right, C=1 183, both with 19 errors; not measured again since.
SVM_C = 10.0
_PAIR_BLOCK = 1 << 22
# At most this many held-out vectors are scored to fit the temperature (one number): scoring costs
# queries x pairs of people, minutes for 5,000 queries of 1,000 people.
_TEMPERATURE_QUERIES = 1000


def pair_scores(decisions: np.ndarray, classes: int) -> np.ndarray:
    """One-vs-one decisions (queries x pairs, pairs (i, j) with i < j in order) -> one score per class.

    The score is scikit-learn's (sklearn.multiclass._ovr_decision_function):
    the class's votes plus its summed confidence squashed into (-1/3, 1/3),
    so confidence only breaks equal votes. Vectorised over pairs with bincount.
    """
    decisions = decisions.reshape(len(decisions), -1)
    first, second = np.triu_indices(classes, 1)
    offsets = (np.arange(len(decisions)) * classes)[:, None]
    first, second = (first + offsets).ravel(), (second + offsets).ravel()
    size = len(decisions) * classes
    wins = (decisions >= 0).ravel().astype(np.float64)
    votes = np.bincount(first, wins, size) + np.bincount(second, 1.0 - wins, size)
    confidence = np.bincount(first, decisions.ravel(), size) - np.bincount(second, decisions.ravel(), size)
    return (votes + confidence / (3 * (np.abs(confidence) + 1))).reshape(len(decisions), classes)


def softmax(scores: np.ndarray, temperature: float) -> np.ndarray:
    """Rows of `scores` / temperature -> probabilities summing to 1."""
    scaled = scores / temperature
    scaled -= scaled.max(axis=1, keepdims=True)
    exponentials = np.exp(scaled)
    return exponentials / exponentials.sum(axis=1, keepdims=True)


def fit_temperature(scores: np.ndarray, labels: np.ndarray) -> float:
    """The temperature whose softmax gives held-out `scores` (queries x classes) the least log loss of `labels`."""
    from scipy.optimize import minimize_scalar

    def log_loss(log_temperature: float) -> float:
        scaled = scores / np.exp(log_temperature)
        scaled = scaled - scaled.max(axis=1, keepdims=True)
        return float(np.mean(np.log(np.exp(scaled).sum(axis=1)) - scaled[np.arange(len(labels)), labels]))

    return float(np.exp(minimize_scalar(log_loss, bounds=(-8.0, 8.0), method="bounded").x))


class ProbabilisticSvm:
    """An SVM over labelled vectors whose `probabilities` are softmax(class scores / one fitted temperature).

    Labels are 0 .. classes-1, each with at least two vectors (one in each
    held-out half). `kernel` "rbf" (one-vs-one, scores combined as
    scikit-learn does) or "linear" (one-vs-rest, its decision values as
    scores).
    """

    def __init__(self, vectors: np.ndarray, labels: np.ndarray, kernel: str = "rbf") -> None:
        self.classes = int(labels.max()) + 1
        self.kernel = kernel
        # one held-out half for the temperature: each label's vectors dealt alternately to the two halves
        order = np.argsort(labels, kind="stable")
        rank = np.arange(len(labels)) - np.searchsorted(labels[order], labels[order])
        held_out = np.zeros(len(labels), bool)
        held_out[order] = rank % 2 == 1
        half = self._fit(vectors[~held_out], labels[~held_out])
        scored = np.flatnonzero(held_out)[::-(-held_out.sum() // _TEMPERATURE_QUERIES)]  # evenly spread, at most
        self.temperature = fit_temperature(self._scores(half, vectors[scored]), labels[scored])
        self.svm = self._fit(vectors, labels)

    def _fit(self, vectors: np.ndarray, labels: np.ndarray):
        from sklearn.svm import SVC, LinearSVC

        # UserWarnings: "more classes than half the samples" (true of a gallery, and meant); liblinear's
        # ConvergenceWarning at its iteration cap (the scores are still usable)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            if self.kernel == "linear":
                return LinearSVC(C=SVM_C).fit(vectors, labels)
            return SVC(kernel="rbf", C=SVM_C, decision_function_shape="ovo").fit(vectors, labels)

    def _scores(self, svm, queries: np.ndarray) -> np.ndarray:
        queries = np.asarray(queries, np.float64)
        if self.kernel == "rbf":  # in blocks of ~4M pair decisions (32 MB a temporary array)
            block = max(1, _PAIR_BLOCK * 2 // (self.classes * (self.classes - 1)))
            return np.concatenate([pair_scores(svm.decision_function(queries[start:start + block]), self.classes)
                                   for start in range(0, len(queries), block)] or [np.empty((0, self.classes))])
        decisions = svm.decision_function(queries)
        if self.classes == 2:  # liblinear gives one column, positive for label 1
            return np.column_stack([-decisions, decisions])
        return decisions

    def probabilities(self, queries: np.ndarray) -> np.ndarray:
        """Queries (n x d) -> probabilities (n x classes), rows summing to 1."""
        return softmax(self._scores(self.svm, queries), self.temperature)

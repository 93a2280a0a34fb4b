"""Leave-one-out open-set identification: each vector named by a matcher built over all the others."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from ..matching import UNKNOWN, make_matcher
from .pairs import person_codes


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

"""How well a grouping of labelled items matches the people: BCubed precision and recall.

BCubed (Bagga and Baldwin 1998; Amigo et al. 2009) scores each item, then averages over items:
its precision is the share of its group that is its person, its recall the share of its person
that is in its group. One group per person scores 1 and 1; every item alone scores precision 1.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def bcubed(groups: Sequence[int] | np.ndarray, people: Sequence[object]) -> tuple[float, float]:
    """(precision, recall) of a group label per item against a person per item."""
    groups = np.asarray(groups)
    _, person_codes = np.unique(np.asarray(people, dtype=object).astype(str), return_inverse=True)
    if len(groups) != len(person_codes):
        raise ValueError(f"{len(groups)} group labels for {len(person_codes)} items")
    if len(groups) == 0:
        raise ValueError("no items to score")
    # Counts of each (group, person) cell, and per group and per person: no n-by-n matrix.
    _, group_codes = np.unique(groups, return_inverse=True)
    cells = np.zeros((group_codes.max() + 1, person_codes.max() + 1), dtype=np.int64)
    np.add.at(cells, (group_codes, person_codes), 1)
    both = cells[group_codes, person_codes]
    precision = both / cells.sum(1)[group_codes]
    recall = both / cells.sum(0)[person_codes]
    return float(precision.mean()), float(recall.mean())

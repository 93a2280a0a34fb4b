"""Text tables of the figures evaluate.py prints: pair rates and identification results."""

from __future__ import annotations

from typing import Sequence

from .identification import Identification
from .pairs import PairRates


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

"""Text for the user: counts with the right plural, and names printed so that any terminal shows them."""

from __future__ import annotations

import os
import unicodedata

# Characters that do not show as themselves: controls, format (e.g. right-to-left override), separators,
# private use, surrogates (a file name that is not UTF-8) and unassigned code points.
INVISIBLE_CATEGORIES = {
    "Cc": "a control character",
    "Cf": "a format character",
    "Zl": "a line separator",
    "Zp": "a paragraph separator",
    "Co": "a private-use character",
    "Cs": "a byte that is not UTF-8",
    "Cn": "an unassigned character",
}


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    """`1 image`, `2 images`; `1 person`, `2 people` with plural_form="people"."""
    return f"{count:,} {singular if count == 1 else plural_form or singular + 's'}"


def printable(text: str | os.PathLike) -> str:
    """`text` with every invisible character escaped (\\xff for a byte of a non-UTF-8 file name, \\u202e, ...).

    What it returns encodes under any UTF-8 terminal, even a strict one, and
    cannot move the cursor or reverse the line it is printed on.
    """
    text = os.fspath(text)
    if isinstance(text, bytes):
        text = os.fsdecode(text)
    out = []
    for char in text:
        if unicodedata.category(char) not in INVISIBLE_CATEGORIES:
            out.append(char)
        elif 0xDC80 <= ord(char) <= 0xDCFF:  # a byte os.fsdecode could not decode (surrogateescape)
            out.append(f"\\x{ord(char) - 0xDC00:02x}")
        else:
            out.append(char.encode("unicode_escape").decode("ascii"))
    return "".join(out)

"""Person names: one rule for what a name may be, whichever front end takes it (folder, --name, a form).

A name is a folder of the dataset and the label drawn on the video, so it
must show as itself: no control, format or separator character (a right-to-left
override can make a label read as another name), and one spelling per name
(NFC: a name typed as "e" plus a combining accent is the same person as "é").
"""

from __future__ import annotations

import os
import unicodedata
from typing import Iterable

from .errors import FacerecError
from .fileio import NAME_MAX as MAX_NAME_BYTES  # a name is a folder: at most the longest file name
from .text import INVISIBLE_CATEGORIES, printable


# The name the matcher gives a face it matches to nobody (matching.UNKNOWN, which is this): no person may be called
# so, in any case, or a stranger and that person would look the same on every label, event and sighting.
UNKNOWN = "Unknown"


def reserved_name(name: str) -> bool:
    """Whether `name` is the matcher's own (Unknown, in any case)."""
    return name.casefold() == UNKNOWN.casefold()


def normalise_name(name: str) -> str:
    """The NFC form of `name`, so that every spelling of a name is the same person."""
    return unicodedata.normalize("NFC", name)


def invisible_character(name: str) -> str | None:
    """What the first character of `name` that does not show as itself is (e.g. "a format character (U+202E)"), or None."""
    for char in name:
        what = INVISIBLE_CATEGORIES.get(unicodedata.category(char))
        if what:
            return f"{what} ({printable(char) if what == INVISIBLE_CATEGORIES['Cs'] else f'U+{ord(char):04X}'})"
    return None


def name_problem(name: str) -> str | None:
    """Why `name` cannot be a person's folder name, or None if it can.

    Refused: empty, `.` and `..` (or any name starting with a dot, which enrolment would ignore as
    hidden), path separators, invisible characters (see `invisible_character`), spaces at either end,
    and names too long for a file name.
    """
    if not name:
        return "it is empty"
    if name.startswith("."):
        return "it starts with a dot (., .. and hidden folders are not people)"
    if any(separator in name for separator in ("/", "\\", os.sep, os.altsep) if separator):
        return "it contains a path separator (/ or \\)"
    if character := invisible_character(name):
        return f"it contains {character}"
    if name != name.strip():
        return "it starts or ends with a space"
    if len(name.encode("utf-8")) > MAX_NAME_BYTES:
        return f"it is longer than {MAX_NAME_BYTES} bytes"
    if reserved_name(name):
        return f"{UNKNOWN} is what a face that matches nobody is called"
    return None


def check_person_name(name: str) -> str:
    """`name` in NFC if it can be a plain folder name inside the dataset, else FacerecError saying why."""
    name = normalise_name(name)
    problem = name_problem(name)
    if problem:
        raise FacerecError(f"person name '{printable(name)}' cannot be a folder name: {problem}; "
                           "use a plain name such as 'alice' or 'Bob Smith'")
    return name


MAX_CAMERA_CHARACTERS = 200  # a camera's name is a label, an MQTT topic level and a field of every kept face


def camera_problem(name: str) -> str | None:
    """Why `name` cannot name a camera (in sightings, events and kept unknown faces), or None if it can: empty,
    over MAX_CAMERA_CHARACTERS, or a character that does not show as itself (a control such as a newline, tab or
    DEL, a format character, a byte that is not UTF-8: see `invisible_character`)."""
    if not name:
        return "it is empty"
    if len(name) > MAX_CAMERA_CHARACTERS:
        return f"it is longer than {MAX_CAMERA_CHARACTERS} characters"
    if character := invisible_character(name):
        return f"it holds {character}"
    return None


def case_twins(names: Iterable[str]) -> list[list[str]]:
    """Groups of distinct names that differ only by case ("Obama", "obama"), each sorted."""
    groups: dict[str, set[str]] = {}
    for name in names:
        groups.setdefault(name.casefold(), set()).add(name)
    return [sorted(group) for group in groups.values() if len(group) > 1]

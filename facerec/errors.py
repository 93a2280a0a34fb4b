"""One exception type for every failure a user can fix, and the exit codes."""

from __future__ import annotations

import functools
import sys
from typing import Callable

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


class FacerecError(Exception):
    """A problem the user can fix: the message says what and how; no traceback is shown."""


def main_guard(main: Callable[[list[str] | None], int]) -> Callable[[list[str] | None], int]:
    """Wrap a script's main() so that a FacerecError or Ctrl-C ends with a message, not a traceback."""

    @functools.wraps(main)
    def guarded(argv: list[str] | None = None) -> int:
        try:
            return main(argv)
        except FacerecError as error:
            print(f"error: {error}", file=sys.stderr)
            return EXIT_USER_ERROR
        except KeyboardInterrupt:
            print("interrupted: nothing was written", file=sys.stderr)
            return EXIT_INTERRUPTED

    return guarded

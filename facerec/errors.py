"""One exception type for every failure a user can fix, the exit codes, and how a script ends on one (and shows
the "facerec" logger's records, which the library only logs)."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import signal
import sys
import threading
from typing import Callable, Iterator, Protocol

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 128 + signal.SIGPIPE  # what a shell shows for a Unix tool whose reader went away (`| head`)

# What the run has finished writing so far (key -> description), for a truthful message on Ctrl-C.
_kept: dict[str, str] = {}


class FacerecError(Exception):
    """A problem the user can fix: the message says what and how; no traceback is shown."""


def record_kept(key: str, description: str) -> None:
    """Note that a file (or set of files) is complete on disk, so an interruption says it was kept."""
    _kept[key] = description


def interrupted_message() -> str:
    """What a Ctrl-C leaves behind, as one line."""
    return f"interrupted: kept {'; '.join(_kept.values())}" if _kept else "interrupted: nothing was written"


def _in_main_thread() -> bool:
    """Signal handlers can only be changed from the main thread."""
    return threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def ctrl_c_deferred() -> Iterator[None]:
    """Hold a Ctrl-C back until the body is done (finishing a file), then raise it as usual."""
    if not _in_main_thread():
        yield
        return
    pressed: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: pressed.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if pressed:
        signal.raise_signal(signal.SIGINT)


def _exit_interrupted(signum: int, frame: object) -> None:
    # os._exit, not sys.exit: an exception raised inside an import can be wrapped by C code into an
    # ImportError with its own traceback (numpy does); before main() there is nothing to clean up.
    print(interrupted_message(), file=sys.stderr, flush=True)
    os._exit(EXIT_INTERRUPTED)


def exit_quietly_on_interrupt() -> None:
    """Call first thing in a script: a Ctrl-C during the (slow) imports then exits with 130, no traceback.

    main_guard puts Python's KeyboardInterrupt back once the script's main() runs.
    """
    if _in_main_thread():
        signal.signal(signal.SIGINT, _exit_interrupted)


def _silence_stdout() -> None:
    """Point standard output at /dev/null so the interpreter's final flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


class _CurrentStderr(logging.StreamHandler):
    """Writes to sys.stderr as it is when a record comes (a script run in-process by a test has it replaced)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self) -> object:
        return sys.stderr

    @stream.setter
    def stream(self, value: object) -> None:
        pass


def show_library_log() -> None:
    """The "facerec" logger's records (`downloading FILE to FOLDER/`) as plain lines on stderr, as a script shows
    them; once a process, and not passed on to the root logger's handlers (a server's own log)."""
    logger = logging.getLogger("facerec")
    if not any(isinstance(handler, _CurrentStderr) for handler in logger.handlers):
        logger.addHandler(_CurrentStderr())
        logger.setLevel(logging.INFO)
        logger.propagate = False


class ScriptMain(Protocol):
    """A script's main: its arguments (None: the command line's) in, its exit code out."""

    def __call__(self, argv: list[str] | None = None) -> int: ...


def main_guard(main: ScriptMain, shown: Callable[[str], str] = str) -> ScriptMain:
    """Wrap a script's main() so that a FacerecError, Ctrl-C or a closed pipe ends with a message, not a traceback
    (a FacerecError's passed through `shown` first: commands.as_run names the commands as installed)."""

    @functools.wraps(main)
    def guarded(argv: list[str] | None = None) -> int:
        if _in_main_thread():
            signal.signal(signal.SIGINT, signal.default_int_handler)
        _kept.clear()  # a main() called again in one process (bench) starts with nothing kept
        show_library_log()
        try:
            return main(argv)
        except FacerecError as error:
            print(f"error: {shown(str(error))}", file=sys.stderr)
            return EXIT_USER_ERROR
        except KeyboardInterrupt:
            print(interrupted_message(), file=sys.stderr)
            return EXIT_INTERRUPTED
        except BrokenPipeError:  # the reader of our output went away (`| head`): stop quietly, as Unix tools do
            _silence_stdout()
            return EXIT_BROKEN_PIPE
        finally:
            # main() is done (or exiting, as --help does): a Ctrl-C during the interpreter's shutdown ends quietly too
            exit_quietly_on_interrupt()

    return guarded

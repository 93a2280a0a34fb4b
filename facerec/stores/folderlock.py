"""One writer of an embeddings file at a time: an exclusive lock on the folder that holds it.

The lock is flock(2) on the folder itself, so nothing is created beside the file and
nothing is left behind: the kernel lets the lock go when the writer closes it or dies
(even by SIGKILL). Readers never take it (they read whole files, renamed into place).
Every embeddings file of one folder shares the lock: their writers take turns.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from ..text import printable
from .base import WRITER_WAIT_SECONDS, take_turn


class FolderLock:
    """The exclusive lock of one folder, held from `take` until `release` (or the end of the process)."""

    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd

    @classmethod
    def take(cls, folder: Path, what: str, wait: float | None = WRITER_WAIT_SECONDS) -> FolderLock:
        """Lock `folder` (which must exist), waiting as base.take_turn says (GalleryBusy naming the holder).
        OSError if the folder cannot be opened."""
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0))

        def try_take() -> bool:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                return False

        try:
            take_turn(try_take, lambda: _holder(fd), what, wait)
        except BaseException:
            os.close(fd)
            raise
        return cls(fd)

    def release(self) -> None:
        """Let the folder go (idempotent)."""
        if self._fd is not None:
            os.close(self._fd)  # closing the only descriptor ends the flock
            self._fd = None

    __del__ = release  # a writer dropped without finish or close lets the folder go with it


def _holder(fd: int) -> str:
    """Who holds the lock on the folder open as `fd`, as well as Linux tells (/proc/locks): e.g.
    "another process (extract_embeddings.py, pid 1234)"."""
    info = os.fstat(fd)
    try:
        with open("/proc/locks") as locks:
            lines = locks.read().splitlines()
    except OSError:
        return "another process"
    for line in lines:
        fields = line.split()
        # "1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF" (a waiting lock's line starts "1: -> FLOCK")
        if len(fields) < 6 or fields[1] != "FLOCK" or not fields[4].isdigit():
            continue
        major, minor, inode = (fields[5].split(":") + ["", "", ""])[:3]
        try:
            same = (int(major, 16), int(minor, 16), int(inode)) == (os.major(info.st_dev), os.minor(info.st_dev),
                                                                   info.st_ino)
        except ValueError:
            continue
        if same:
            pid = int(fields[4])
            whose = "another writer of this" if pid == os.getpid() else "another"
            return f"{whose} process ({_program(pid)}, pid {pid})"
    return "another process"


def _program(pid: int) -> str:
    """The script a process runs (its first argument ending in .py), else its program's name."""
    try:
        arguments = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "unknown program"
    names = [os.fsdecode(os.path.basename(argument)) for argument in arguments if argument]
    return printable(next((name for name in names if name.endswith(".py")), names[0] if names else "unknown program"))


"""Safe files: reading only regular files of a bounded size, naming what else is at a path, writing under a
temporary name renamed into place (a crash never leaves a half-written file), probing where a file can be written."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import stat
import mmap
import tempfile
from pathlib import Path
from typing import BinaryIO, Iterator, Literal, overload

import numpy as np

# The longest file name (one path component) the usual Linux file systems accept, in bytes.
NAME_MAX = 255
# mkstemp's temporary name: ".<name>." + 8 random characters + the suffix (".tmp")
_RANDOM = 8


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# mkstemp creates files readable by the owner only; finished files get the usual permissions.
_FILE_MODE = 0o666 & ~_current_umask()


_FILE_KINDS = [(stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
               (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")]


def file_kind(mode: int) -> str:
    """What a file that is not a regular one is, from its st_mode: "a FIFO", "a character device", ..."""
    return next((what for test, what in _FILE_KINDS if test(mode)), "a special file")


class NotRegularFile(OSError):
    """The path names a folder, FIFO, device or socket; `kind` says which (see file_kind)."""

    def __init__(self, path: str | os.PathLike, mode: int) -> None:
        super().__init__(errno.EINVAL, "not a regular file", str(path))
        self.kind = file_kind(mode)


class FileTooLarge(OSError):
    """The file has more than the bytes allowed: `size` by its status, or it grew while read (`grew`)."""

    def __init__(self, path: str | os.PathLike, size: int, grew: bool = False) -> None:
        super().__init__(errno.EFBIG, os.strerror(errno.EFBIG), str(path))
        self.size, self.grew = size, grew


@overload
def read_regular_file(path: str | os.PathLike, limit: int, anonymous: Literal[False] = False) -> bytes: ...
@overload
def read_regular_file(path: str | os.PathLike, limit: int, anonymous: Literal[True]) -> np.ndarray: ...
def read_regular_file(path: str | os.PathLike, limit: int, anonymous: bool = False) -> bytes | np.ndarray:
    """The content of `path` if it is a regular file of at most `limit` bytes; else NotRegularFile, FileTooLarge
    or the OSError of stat, open or read (FileNotFoundError for a missing file).

    A folder, device, FIFO or socket is never opened (stat first; O_NONBLOCK in case it is swapped for a FIFO
    before the open). With `anonymous` the bytes come as a writable uint8 array read straight into anonymous
    memory, sized by the file: np.empty asks for huge pages, which the kernel may first compact memory for (a
    read of half a gigabyte then took 3 times as long), and a bytearray is zeroed before it is written. It then
    raises FileTooLarge(grew=True) if the file grew past its status size while read; without, only past `limit`.
    """
    info = os.stat(path)
    if not stat.S_ISREG(info.st_mode):
        raise NotRegularFile(path, info.st_mode)
    if info.st_size > limit:
        raise FileTooLarge(path, info.st_size)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise NotRegularFile(path, info.st_mode)
        if info.st_size > limit:
            raise FileTooLarge(path, info.st_size)
        if not anonymous:
            data = handle.read(limit + 1)
            if len(data) > limit:
                raise FileTooLarge(path, len(data), grew=True)
            return data
        # the size it has now, plus one byte to notice a file still growing
        expected = min(info.st_size, limit)
        memory = mmap.mmap(-1, expected + 1)
        view, size = memoryview(memory), 0
        while size < len(memory) and (count := os.readv(fd, [view[size:]])):
            size += count
    if size > expected:
        raise FileTooLarge(path, size, grew=True)
    return np.frombuffer(memory, np.uint8)[:size]


def temporary_prefix(name: str, suffix: str = ".tmp") -> str:
    """The start of the temporary name used for writing `name`: ".<name>.", shortened to fit NAME_MAX.

    A name too long to take the temporary decoration keeps its first bytes and
    gets 8 hex digits of its hash, so that two long names sharing a start do not share temporaries.
    """
    prefix = f".{name}."
    encoded = os.fsencode(prefix)
    decoration = _RANDOM + len(os.fsencode(suffix))
    if len(encoded) + decoration <= NAME_MAX:
        return prefix
    digest = hashlib.sha256(os.fsencode(name)).hexdigest()[:8]
    room = NAME_MAX - decoration - len(".") - len("~") - len(digest) - len(".")
    return f".{os.fsdecode(os.fsencode(name)[:room])}~{digest}."


def check_writable(path: str | os.PathLike) -> None:
    """Raise OSError unless a file can be written at `path` now: its folder (created if missing) takes a new file.

    Creates and removes one temporary file; says nothing about free space.
    """
    target = Path(path)
    if len(os.fsencode(target.name)) > NAME_MAX:
        raise OSError(errno.ENAMETOOLONG, os.strerror(errno.ENAMETOOLONG), str(target))
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = temporary_file(target)
    os.close(fd)
    os.unlink(tmp_name)


def temporary_file(path: str | os.PathLike, suffix: str = ".tmp") -> tuple[int, str]:
    """(fd, name) of a new hidden file `.<name>.XXXXXXXX<suffix>` beside `path`, its name fitting NAME_MAX."""
    target = Path(path)
    return tempfile.mkstemp(prefix=temporary_prefix(target.name, suffix), suffix=suffix, dir=target.parent)


@contextlib.contextmanager
def written_temporary(path: str | os.PathLike, suffix: str = ".tmp") -> Iterator[tuple[BinaryIO, str]]:
    """(handle, name) of a new temporary beside `path` (its folder created if missing); once the body is done
    the content is on disk (fsync) with the usual permissions, for the caller to rename or link into place.
    The temporary is removed if the body raises; a name still there afterwards is the caller's to remove."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = temporary_file(target, suffix)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle, tmp_name
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, _FILE_MODE)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """Open a temporary file beside `path` for writing; on success it replaces `path`.

    If the body raises (or the process dies) `path` keeps its previous content
    and the temporary file is removed (or, on SIGKILL, left as an ignorable
    `.<name>.*.tmp` beside it; a very long name is shortened, see temporary_prefix).
    """
    with written_temporary(path) as (handle, tmp_name):
        yield handle
    try:
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


def read_inside(folder: str | os.PathLike, names: list[str], limit: int) -> bytes:
    """The bytes of the regular file folder/names[0]/.../names[-1] (at most `limit`), reached without following
    a symbolic link below `folder`: each name is opened with O_NOFOLLOW in the folder opened before it, so
    what is read really lies inside `folder`, whatever is swapped meanwhile (`folder` itself may be a link).

    OSError if a name is a link, is missing, is not a plain name, or the file is not a regular file of at
    most `limit` bytes (a FIFO or device is never waited on: O_NONBLOCK).
    """
    if not names or any(not name or name in (".", "..") or "/" in name or "\0" in name for name in names):
        raise OSError(errno.ENOENT, "not a plain file name", str(names))
    nofollow = os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0))
    try:
        for name in names[:-1]:
            inner = os.open(name, nofollow | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = inner
        inner = os.open(names[-1], nofollow | os.O_NONBLOCK, dir_fd=fd)
        os.close(fd)
        fd = inner
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise NotRegularFile(names[-1], info.st_mode)
        with os.fdopen(fd, "rb") as handle:
            fd = -1  # the handle closes it
            data = handle.read(limit + 1)
    finally:
        if fd >= 0:
            os.close(fd)
    if len(data) > limit:
        raise OSError(errno.EFBIG, os.strerror(errno.EFBIG), names[-1])
    return data

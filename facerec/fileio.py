"""Writing files so that a crash never leaves a half-written one behind; reading one only inside its folder."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import stat
import tempfile
from pathlib import Path
from typing import BinaryIO, Iterator

# The longest file name (one path component) the usual Linux file systems accept, in bytes.
NAME_MAX = 255
# mkstemp's temporary name: ".<name>." + 8 random characters + ".tmp"
_RANDOM_AND_SUFFIX = 8 + len(".tmp")


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# mkstemp creates files readable by the owner only; finished files get the usual permissions.
_FILE_MODE = 0o666 & ~_current_umask()


def temporary_prefix(name: str) -> str:
    """The start of the temporary name used for writing `name`: ".<name>.", shortened to fit NAME_MAX.

    A name too long to take the temporary decoration keeps its first bytes and
    gets 8 hex digits of its hash, so that two long names sharing a start do not share temporaries.
    """
    prefix = f".{name}."
    encoded = os.fsencode(prefix)
    if len(encoded) + _RANDOM_AND_SUFFIX <= NAME_MAX:
        return prefix
    digest = hashlib.sha256(os.fsencode(name)).hexdigest()[:8]
    room = NAME_MAX - _RANDOM_AND_SUFFIX - len(".") - len("~") - len(digest) - len(".")
    return f".{os.fsdecode(os.fsencode(name)[:room])}~{digest}."


def check_writable(path: str | os.PathLike) -> None:
    """Raise OSError unless a file can be written at `path` now: its folder (created if missing) takes a new file.

    Creates and removes one temporary file; says nothing about free space.
    """
    target = Path(path)
    if len(os.fsencode(target.name)) > NAME_MAX:
        raise OSError(errno.ENAMETOOLONG, os.strerror(errno.ENAMETOOLONG), str(target))
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=temporary_prefix(target.name), suffix=".tmp", dir=target.parent)
    os.close(fd)
    os.unlink(tmp_name)


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """Open a temporary file beside `path` for writing; on success it replaces `path`.

    If the body raises (or the process dies) `path` keeps its previous content
    and the temporary file is removed (or, on SIGKILL, left as an ignorable
    `.<name>.*.tmp` beside it; a very long name is shortened, see temporary_prefix).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=temporary_prefix(target.name), suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, _FILE_MODE)
        os.replace(tmp_name, target)
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
            raise OSError(errno.EINVAL, "not a regular file", names[-1])
        with os.fdopen(fd, "rb") as handle:
            fd = -1  # the handle closes it
            data = handle.read(limit + 1)
    finally:
        if fd >= 0:
            os.close(fd)
    if len(data) > limit:
        raise OSError(errno.EFBIG, os.strerror(errno.EFBIG), names[-1])
    return data

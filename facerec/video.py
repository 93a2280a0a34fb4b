"""Video sources: a webcam index, a video file or a stream URL, read in a background thread.

Decoding overlaps with inference. A file is read completely, frame by frame
(nothing dropped); a live camera or stream keeps only the newest frame, so a
slow consumer sees the present, not a growing backlog. Each frame keeps its
source index (`VideoSource.numbered`), so dropped frames leave gaps, not renumbering.
"""

from __future__ import annotations

import collections
import contextlib
import math
import os
import queue
import stat
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator
from urllib.parse import unquote, urlsplit

import cv2
import numpy as np

from .errors import FacerecError, ctrl_c_deferred, record_kept
from .detection import quiet_opencv
from .fileio import _FILE_MODE, check_writable, temporary_file

FILE_QUEUE_FRAMES = 16
READ_TIMES_KEPT = FILE_QUEUE_FRAMES + 4  # every frame waiting in the queue, and the one being recognised
DEFAULT_FPS = 30.0
END_OF_FRAMES = "end of video"
END_OF_STREAM = "end of stream"
# A live source silent for this long is treated as gone (unplugged camera, dead stream).
STALL_VARIABLE = "FACEREC_STALL_SECONDS"
DEFAULT_STALL_SECONDS = 10.0
STALL_RANGE = (0.1, 3600.0)
# A failed read of a live source that took this share of the stall time ended by the timeout: a stall.
STALL_SHARE = 0.9
# After the timeout fires, the decoder may still hand out the half-received frame before reads fail.
STALL_AFTERMATH_READS = 2
VIDEO_SUFFIXES = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG"}
MAX_CAMERA_INDEX = 2**31 - 1  # OpenCV takes a C int (beyond, cv2.error "Overload resolution failed")


def stall_seconds() -> float:
    """$FACEREC_STALL_SECONDS (default 10), checked; FacerecError naming the variable if it is not a sane number."""
    text = os.environ.get(STALL_VARIABLE)
    if text is None:
        return DEFAULT_STALL_SECONDS
    low, high = STALL_RANGE
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not low <= seconds <= high:  # also refuses nan
        raise FacerecError(f"{STALL_VARIABLE}={text!r} is not a number of seconds from {low:g} to {high:g}: "
                           f"set it to one (or unset it for {DEFAULT_STALL_SECONDS:g} s)")
    return seconds


@dataclass(frozen=True)
class SourceSpec:
    """What --source named: a camera index, a file path (also as a file:// URL) or a stream URL."""

    text: str

    @property
    def camera_index(self) -> int | None:
        return int(self.text) if self.text.isdigit() else None

    def check(self) -> None:
        """FacerecError for what no source can be: a camera index OpenCV cannot take."""
        index = self.camera_index
        if index is not None and index > MAX_CAMERA_INDEX:
            raise FacerecError(f"--source {self.text}: a camera index is at most {MAX_CAMERA_INDEX:,} "
                               "(cameras are numbered from 0)")

    @property
    def file_path(self) -> Path | None:
        """The file named, for a path or a file:// URL; None for a camera or a stream."""
        if self.camera_index is not None:
            return None
        if self.text.lower().startswith("file://"):
            return Path(unquote(urlsplit(self.text).path))
        return None if "://" in self.text else Path(self.text)

    @property
    def is_url(self) -> bool:
        """A stream (http, rtsp, ...); a file:// URL is a file."""
        return "://" in self.text and self.file_path is None

    @property
    def is_live(self) -> bool:
        """Cameras and streams produce frames in real time; files do not."""
        return self.camera_index is not None or self.is_url


def _checked_file(path: Path) -> os.stat_result:
    """The status of a source file, or FacerecError saying why it cannot be one."""
    try:
        status = os.stat(path)
    except FileNotFoundError:
        raise FacerecError(f"video source {str(path)!r} is neither a camera index, an existing file nor a URL") from None
    except OSError as error:
        raise FacerecError(f"cannot read video source {str(path)!r}: {error.strerror or error}") from None
    if stat.S_ISDIR(status.st_mode):
        raise FacerecError(f"video source {str(path)!r} is a folder, not a video file")
    return status


class VideoSource:
    """An opened source; iterate to get BGR frames until it ends, breaks or stalls.

    The reader thread alone decides why the frames ended (`ended_by`): the end of
    a file, a read error at frame N (a file that ends before the frame count its
    header gives), a stalled or ended stream. The consumer only reads it, once
    the frames are exhausted.
    """

    def __init__(self, text: str) -> None:
        self.spec = SourceSpec(str(text))
        self.spec.check()
        self.ended_by: str = END_OF_FRAMES
        path = self.spec.file_path
        self.stall_seconds = stall_seconds() if self.spec.is_live else None
        if path is not None:
            _checked_file(path)
            self.capture = cv2.VideoCapture(str(path))
        elif self.spec.camera_index is not None:
            with quiet_opencv():  # a missing camera makes every backend print its own warning
                self.capture = cv2.VideoCapture(self.spec.camera_index)
        else:  # a dead server must not hang the open or a read forever
            assert self.stall_seconds is not None  # a stream is live
            timeout_ms = int(self.stall_seconds * 1000)
            self.capture = cv2.VideoCapture(self.spec.text, cv2.CAP_ANY, [
                cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, timeout_ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, timeout_ms])
        if not self.capture.isOpened():
            if self.spec.camera_index is not None:
                raise FacerecError(f"cannot open camera {self.spec.text!r} (not there, or used by another program): "
                                   "use --source FILE or a stream URL")
            raise FacerecError(f"cannot open video source {self.spec.text!r}")
        ok, first = self.capture.read()
        if not ok or first is None:
            self.capture.release()
            raise FacerecError(f"video source {self.spec.text!r} opened but gave no frame (not a video, or the camera is busy)")
        self._first: np.ndarray | None = first
        self.frames_read = 1
        # what a file's header promises; a file that gives fewer frames broke off or is damaged
        self.frame_count = 0 if self.spec.is_live else max(0, int(self.capture.get(cv2.CAP_PROP_FRAME_COUNT)))
        self.fps = self.capture.get(cv2.CAP_PROP_FPS) or DEFAULT_FPS
        if not 1.0 <= self.fps <= 240.0:
            self.fps = DEFAULT_FPS
        self.frame_size = (first.shape[1], first.shape[0])
        self._frames: queue.Queue = queue.Queue(maxsize=1 if self.spec.is_live else FILE_QUEUE_FRAMES)
        # when the newest frames were read (index -> time.monotonic()): a frame's latency runs from there
        self.read_at: collections.OrderedDict[int, float] = collections.OrderedDict({0: time.monotonic()})
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read_loop, name="video-reader", daemon=True)
        self._thread.start()

    def _why_reading_stopped(self, last_slow_read: int | None) -> str:
        """Why a read that gave no frame ends the source; `last_slow_read` is the frame count at the last read
        that took the stall time (a stream's timeout fires there; the reads after it fail at once)."""
        if self.spec.is_live:
            if last_slow_read is not None and self.frames_read - last_slow_read <= STALL_AFTERMATH_READS:
                return f"stalled: no frame for {self.stall_seconds:g} s"
            return END_OF_STREAM
        if self.frames_read < self.frame_count:
            return f"read error at frame {self.frames_read} of {self.frame_count} (the file is damaged or ends early)"
        return END_OF_FRAMES

    def _read_loop(self) -> None:
        reason = END_OF_FRAMES
        last_slow_read = None
        try:
            while not self._stop.is_set():
                started = time.monotonic()
                ok, frame = self.capture.read()
                if self.stall_seconds is not None and time.monotonic() - started >= STALL_SHARE * self.stall_seconds:
                    last_slow_read = self.frames_read
                if not ok or frame is None:
                    reason = self._why_reading_stopped(last_slow_read)
                    break
                self.read_at[self.frames_read] = time.monotonic()
                if len(self.read_at) > READ_TIMES_KEPT:
                    self.read_at.popitem(last=False)
                self._put((self.frames_read, frame))
                self.frames_read += 1
        except cv2.error as error:
            reason = f"read error at frame {self.frames_read}: {error.err or error}"
        finally:
            self.ended_by = reason  # set before the end marker is queued: the consumer sees it after the last frame
            self._put(None)

    def _put(self, item: tuple[int, np.ndarray] | None) -> None:
        while not self._stop.is_set():
            try:
                if self.spec.is_live and item is not None:
                    self._frames.put_nowait(item)
                else:
                    self._frames.put(item, timeout=0.1)  # wake up now and then to see a stop request
                return
            except queue.Full:
                if self.spec.is_live and item is not None:  # drop the stale frame not taken yet
                    with contextlib.suppress(queue.Empty):
                        self._frames.get_nowait()

    def numbered(self) -> Iterator[tuple[int, np.ndarray]]:
        """(source frame index, frame) pairs; frames a live source dropped leave gaps in the indices."""
        if self._first is not None:
            first, self._first = self._first, None
            yield 0, first
        while True:
            # no timeout here: every read of a stream is bounded by the stall time, so the reader always ends
            item = self._frames.get()
            if item is None:
                return
            yield item

    def __iter__(self) -> Iterator[np.ndarray]:
        return (frame for _, frame in self.numbered())

    def close(self) -> None:
        """Stop the reader thread and release the device or file."""
        self._stop.set()
        self._thread.join(timeout=2.0)
        # a reader stuck inside read() on a stalled stream must not have its capture freed under it
        if not self._thread.is_alive():
            self.capture.release()

    def __enter__(self) -> "VideoSource":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def why_frames_ended(frames: Iterable[np.ndarray]) -> str:
    """Why an exhausted frame iterable stopped: a VideoSource says (end, stall, read error); others just end."""
    return getattr(frames, "ended_by", END_OF_FRAMES)


def numbered_frames(frames: Iterable[np.ndarray]) -> Iterable[tuple[int, np.ndarray]]:
    """(source frame index, frame) pairs: a VideoSource's own indices (gaps where it dropped frames), else 0, 1, 2..."""
    numbered = getattr(frames, "numbered", None)
    return numbered() if numbered is not None else enumerate(frames)


def open_source(text: str) -> VideoSource:
    """Open --source (camera index, file or URL) or raise FacerecError naming it."""
    return VideoSource(text)


def _looks_like_a_video(path: Path) -> bool:
    """True for an MP4/QuickTime or AVI file (by its first bytes), and for an empty file (nothing to lose)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(12)
    except OSError:  # unreadable: it cannot be told to be a video
        return False
    return (not head or head[4:8] in (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip")
            or (head[:4] == b"RIFF" and head[8:12] == b"AVI "))


def _first_non_folder(path: Path) -> Path:
    """The first of the folders leading to `path` that exists but is not a folder."""
    return next((parent for parent in reversed(path.parents) if parent.exists() and not parent.is_dir()), path.parent)


def check_output(text: str, source: str, force: bool = False) -> Path:
    """The file --output `text` will replace (a symlink is followed), checked before any work; else FacerecError.

    Refused: an empty name, a name without a video suffix, a folder or a device, the source video itself
    (also through a symlink or a hard link), a file that is not a video unless `force`, a folder that
    cannot be written. Missing parent folders are created.
    """
    if not text:
        raise FacerecError("--output '' is not a file name: give a video file such as annotated.mp4")
    path = Path(os.path.realpath(text)) if os.path.islink(text) else Path(text)
    try:
        status = os.stat(path)
    except FileNotFoundError:
        status = None
    except NotADirectoryError:
        raise FacerecError(f"cannot write video {text}: {_first_non_folder(path)} is not a folder") from None
    except OSError as error:
        raise FacerecError(f"cannot write video {text}: {error.strerror or error}") from None
    if status is not None:
        if stat.S_ISDIR(status.st_mode):
            raise FacerecError(f"--output {text} is a folder: give a file name inside it, such as {path / 'annotated.mp4'}")
        if not stat.S_ISREG(status.st_mode):
            raise FacerecError(f"--output {text} is not a regular file (a device, pipe or socket): choose a file name")
        source_path = SourceSpec(source).file_path
        with contextlib.suppress(OSError):
            if source_path is not None and os.path.samestat(status, os.stat(source_path)):
                raise FacerecError(f"--output {text} is the source video: writing it would destroy it; "
                                   "choose another name")
        if path.suffix.lower() in VIDEO_SUFFIXES and not force and not _looks_like_a_video(path):
            raise FacerecError(f"--output {text} exists and is not a video: refusing to replace it "
                               "(choose another name, or add --force to replace it)")
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        raise FacerecError(f"--output {text}: the name must end in .mp4 or .avi (.m4v and .mov also work)")
    try:
        check_writable(path)
    except (FileExistsError, NotADirectoryError):
        raise FacerecError(f"cannot write video {text}: {_first_non_folder(path)} is not a folder") from None
    except OSError as error:
        raise FacerecError(f"cannot write video {text}: {error.strerror or error}"
                           + (f" ({error.filename})" if error.filename else "")) from None
    return path


class VideoOutput:
    """An annotated video written under a temporary name and renamed into place when closed.

    Closing also happens on errors and Ctrl-C: the frames written up to then
    replace `path`, once the temporary file is checked to be a complete video
    holding all of them. If it is not (a full disk, a failed encoder) the
    previous file stays as it was and `problem` says why. A killed process
    leaves the previous file and a hidden `.<name>.*.partial.<ext>` beside it.
    """

    def __init__(self, path: str | Path, fps: float, frame_size: tuple[int, int]) -> None:
        self.path = Path(path)
        self.frames = 0
        self.problem: str | None = None
        self.outcome = ""
        try:
            # the same suffix, so OpenCV picks the same container
            fd, name = temporary_file(self.path, suffix=f".partial{self.path.suffix}")
        except OSError as error:
            raise FacerecError(f"cannot write video {self.path}: {error.strerror or error}") from None
        os.close(fd)
        self._temporary = Path(name)
        fourcc = cv2.VideoWriter.fourcc(*VIDEO_SUFFIXES[self.path.suffix.lower()])
        writer = cv2.VideoWriter(name, fourcc, fps, frame_size)
        if not writer.isOpened():
            self._temporary.unlink(missing_ok=True)
            raise FacerecError(f"cannot write video {self.path}: OpenCV could not start a {self.path.suffix} "
                               "encoder (use .mp4 or .avi)")
        self._writer: cv2.VideoWriter | None = writer  # None once closed
        self._last: np.ndarray | None = None
        self._attempted = 0

    def write(self, frame: np.ndarray, index: int | None = None) -> None:
        """Append `frame`. Given its source frame `index`, first hold the previous frame over the source
        frames dropped since: the file keeps the source's timing, and its frame k is source frame k."""
        if index is not None:
            filler = frame if self._last is None else self._last
            while self.frames < index:
                self._append(filler)
        self._append(frame)
        self._last = frame

    def _append(self, frame: np.ndarray) -> None:
        # A Ctrl-C lands between Python steps: after the encoder took the frame but before the count
        # moved, the file holds one frame more than `frames`. `_attempted` bounds what it may hold.
        if self._writer is None:
            raise FacerecError(f"cannot write video {self.path}: it is already closed")
        self._attempted = self.frames + 1
        self._writer.write(frame)
        self.frames += 1

    def _frames_in_temporary(self) -> int:
        capture = cv2.VideoCapture(str(self._temporary))
        try:
            return int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) if capture.isOpened() else 0
        finally:
            capture.release()

    def close(self) -> None:
        """Finish the file: rename it into place if it holds every frame written, else keep the previous one.

        Sets `outcome` (a line for the user) and, when the video could not be kept, `problem`.
        A Ctrl-C during this is held back until it is done, so the file and the message agree.
        """
        if self._writer is None:
            return
        with ctrl_c_deferred():
            self._finish(self._writer)

    def _finish(self, writer: cv2.VideoWriter) -> None:
        try:
            writer.release()
            self._writer = None
            previous = "is left as it was" if self.path.exists() else "was not created"
            found = self._frames_in_temporary() if self._attempted else 0
            if found and self.frames <= found <= self._attempted:
                self.frames = found
                os.chmod(self._temporary, _FILE_MODE)
                os.replace(self._temporary, self.path)
                self.outcome = f"annotated video: {self.path} ({self.frames} frames)"
                record_kept(str(self.path), f"annotated video {self.path} ({self.frames} frames)")
                return
            self._temporary.unlink(missing_ok=True)
            if not self.frames:
                self.outcome = f"annotated video: no frame was written, {self.path} {previous}"
            else:
                self.problem = (f"the annotated video could not be written completely ({found} of {self.frames} "
                                f"frames readable back; is the disk full?): {self.path} {previous}")
                self.outcome = self.problem
        except OSError as error:
            self._temporary.unlink(missing_ok=True)
            self.problem = self.outcome = f"cannot write video {self.path}: {error.strerror or error}"

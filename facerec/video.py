"""Video sources: a webcam index, a video file or a stream URL, read in a background thread.

Decoding overlaps with inference. A file is read completely, frame by frame
(nothing dropped); a live camera or stream keeps only the newest frame, so a
slow consumer sees the present, not a growing backlog. Each frame keeps its
source index (`VideoSource.numbered`), so dropped frames leave gaps, not renumbering.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import cv2
import numpy as np

from .errors import FacerecError

FILE_QUEUE_FRAMES = 16
DEFAULT_FPS = 30.0
END_OF_FRAMES = "end of video"
# A live source silent for this long is treated as gone (unplugged camera, dead stream).
STALL_SECONDS = float(os.environ.get("FACEREC_STALL_SECONDS", "10"))


@dataclass(frozen=True)
class SourceSpec:
    """What --source named: a camera index, a file path or a URL."""

    text: str

    @property
    def camera_index(self) -> int | None:
        return int(self.text) if self.text.isdigit() else None

    @property
    def is_url(self) -> bool:
        return "://" in self.text

    @property
    def is_live(self) -> bool:
        """Cameras and streams produce frames in real time; files do not."""
        return self.camera_index is not None or self.is_url


class VideoSource:
    """An opened source; iterate to get BGR frames until it ends, breaks or stalls."""

    def __init__(self, text: str) -> None:
        self.spec = SourceSpec(str(text))
        self.ended_by: str = END_OF_FRAMES
        if self.spec.camera_index is None and not self.spec.is_url and not Path(self.spec.text).is_file():
            raise FacerecError(f"video source {self.spec.text!r} is neither a camera index, an existing file nor a URL")
        if self.spec.camera_index is not None:
            self.capture = cv2.VideoCapture(self.spec.camera_index)
        elif self.spec.is_url:  # a dead server must not hang the open or a read forever
            timeout_ms = int(STALL_SECONDS * 1000)
            self.capture = cv2.VideoCapture(self.spec.text, cv2.CAP_ANY, [
                cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, timeout_ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, timeout_ms])
        else:
            self.capture = cv2.VideoCapture(self.spec.text)
        if not self.capture.isOpened():
            what = "camera" if self.spec.camera_index is not None else "video source"
            raise FacerecError(f"cannot open {what} {self.spec.text!r}")
        ok, first = self.capture.read()
        if not ok or first is None:
            self.capture.release()
            raise FacerecError(f"video source {self.spec.text!r} opened but gave no frame (not a video, or the camera is busy)")
        self._first: np.ndarray | None = first
        self._read_count = 1  # source frames read so far: the index of the next one
        self.fps = self.capture.get(cv2.CAP_PROP_FPS) or DEFAULT_FPS
        if not 1.0 <= self.fps <= 240.0:
            self.fps = DEFAULT_FPS
        self.frame_size = (first.shape[1], first.shape[0])
        self._frames: queue.Queue = queue.Queue(maxsize=1 if self.spec.is_live else FILE_QUEUE_FRAMES)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read_loop, name="video-reader", daemon=True)
        self._thread.start()

    def _read_loop(self) -> None:
        try:
            while not self._stop.is_set():
                ok, frame = self.capture.read()
                if not ok or frame is None:
                    break
                self._put((self._read_count, frame))
                self._read_count += 1
        except cv2.error as error:
            self.ended_by = f"read error: {error.err or error}"
        finally:
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
            try:
                item = self._frames.get(timeout=STALL_SECONDS if self.spec.is_live else None)
            except queue.Empty:
                self.ended_by = f"no frame for {STALL_SECONDS:.0f} s (source stalled)"
                return
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


class VideoOutput:
    """An annotated video written under a temporary name and renamed into place when closed.

    Closing also happens on errors and Ctrl-C, so what was written up to then
    is a complete, playable file; a killed process leaves only a hidden temp file.
    """

    def __init__(self, path: str | Path, fps: float, frame_size: tuple[int, int]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # same suffix, so OpenCV picks the same container for the temporary file
        self._temporary = self.path.with_name(f".{self.path.stem}.partial{self.path.suffix}")
        fourcc = cv2.VideoWriter_fourcc(*("mp4v" if self.path.suffix.lower() in (".mp4", ".m4v", ".mov") else "MJPG"))
        self._writer = cv2.VideoWriter(str(self._temporary), fourcc, fps, frame_size)
        if not self._writer.isOpened():
            raise FacerecError(f"cannot write video {self.path}: OpenCV has no encoder for {self.path.suffix or 'that name'} (use .mp4 or .avi)")
        self.frames = 0
        self._last: np.ndarray | None = None

    def write(self, frame: np.ndarray, index: int | None = None) -> None:
        """Append `frame`. Given its source frame `index`, first hold the previous frame over the source
        frames dropped since: the file keeps the source's timing, and its frame k is source frame k."""
        if index is not None:
            filler = frame if self._last is None else self._last
            while self.frames < index:
                self._writer.write(filler)
                self.frames += 1
        self._writer.write(frame)
        self._last = frame
        self.frames += 1

    def close(self) -> None:
        self._writer.release()
        if self._temporary.exists():
            self._temporary.replace(self.path)

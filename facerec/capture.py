"""Capturing a person's photos: a safe folder name, numbered files that never overwrite, the capture loop.

A photo is saved only when the frame holds exactly one face, so that every
file of dataset/<person>/ can be enrolled. Files are numbered 0001, 0002, ...
after the highest number already in the folder, written under a temporary
name and then linked to their number, which never replaces a file: a second
session, or another process writing at the same moment, never replaces an
earlier photo, and a crash never leaves a half-written one.
"""

from __future__ import annotations

import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Protocol, TextIO

import cv2
import numpy as np

from .detection import DetectedFace, Detector
from .display import KEY_SPACE, QUIT_KEYS
from .drawing import KNOWN_COLOUR, UNKNOWN_COLOUR, draw_faces, draw_label, label_rect
from .errors import FacerecError, record_kept
from .fileio import written_temporary
from .images import UnusablePhoto, decode_photo
from .names import case_twins, check_person_name
from .text import plural
from .video import why_frames_ended

PHOTO_FORMATS = {"jpg": [cv2.IMWRITE_JPEG_QUALITY, 95], "png": [cv2.IMWRITE_PNG_COMPRESSION, 3]}
NUMBER_DIGITS = 4
NUMBERED_PHOTO = re.compile(r"(\d+)\.[A-Za-z0-9]+")
MESSAGE_SECONDS = 1.5


def person_folder(dataset: Path, name: str) -> Path:
    """dataset/<name> for a checked name (in NFC); refused if the dataset or the person's path exists but is not a folder."""
    folder = Path(dataset) / check_person_name(name)
    for path in (Path(dataset), folder):
        if path.exists() and not path.is_dir():
            raise FacerecError(f"{path} exists but is not a folder: choose another --dataset or --name")
    return folder


def case_twin_folders(dataset: Path, name: str) -> list[str]:
    """Folders of `dataset` whose name differs from `name` only by case: enrolled as other people."""
    try:
        folders = [path.name for path in Path(dataset).iterdir() if path.is_dir()]
    except OSError:
        return []
    group = next((group for group in case_twins([name, *folders]) if name in group), [])
    return [folder for folder in group if folder != name]


def next_photo_number(folder: Path) -> int:
    """One more than the highest number naming a photo in `folder` (1 for a new or empty folder)."""
    if not folder.is_dir():
        return 1
    numbers = [int(match[1]) for path in folder.iterdir() if (match := NUMBERED_PHOTO.fullmatch(path.name))]
    return max(numbers, default=0) + 1


def encode_photo(image: np.ndarray, photo_format: str = "jpg") -> bytes:
    """The file content of `image` as a JPEG (quality 95) or PNG."""
    ok, encoded = cv2.imencode(f".{photo_format}", image, PHOTO_FORMATS[photo_format])
    if not ok:
        raise FacerecError(f"OpenCV could not encode the frame as {photo_format}")
    return encoded.tobytes()


def save_photo(folder: Path, data: bytes, photo_format: str = "jpg") -> Path:
    """Write encoded `data` to the next free `NNNN.<format>` of `folder` (created if needed) and return its path.

    The photo is written completely under a hidden temporary name first, then given its
    number with a hard link, which fails rather than replace a file: an existing photo, even
    one another process made a moment ago, is never replaced (the number is moved on), and a
    crash never leaves a half-written photo under a number (at most a hidden `.photo.*.tmp`).
    """
    try:
        with written_temporary(folder / "photo") as (handle, temporary):  # .photo.XXXXXXXX.tmp
            handle.write(data)
        try:
            number = next_photo_number(folder)
            while True:
                path = folder / f"{number:0{NUMBER_DIGITS}d}.{photo_format}"
                try:
                    os.link(temporary, path)
                except FileExistsError:
                    number += 1
                    continue
                record_kept(str(folder), f"photos in {folder}")
                return path
        finally:
            os.unlink(temporary)
    except OSError as error:
        raise FacerecError(f"cannot save a photo in {folder}: {error.strerror or error}") from None


def refusal(faces: list[DetectedFace]) -> str | None:
    """Why a frame with these faces must not be saved, or None if it can be."""
    if not faces:
        return "no face found"
    if len(faces) > 1:
        return f"{len(faces)} faces found: only the person should be in view"
    return None


def keep_photo(detector: Detector, folder: Path, data: bytes, photo_format: str = "jpg") -> tuple[Path | None, str]:
    """Save encoded `data` as the next photo of `folder` if it holds exactly one face.

    Returns (the saved path, "") or (None, why it was not saved). The photo is judged as
    extract_embeddings.py will read it, decoded from `data`: JPEG can lose a borderline face.
    """
    try:
        image = decode_photo(data)
    except UnusablePhoto as why:
        return None, str(why)
    reason = refusal(detector.detect(image))
    if reason:
        return None, reason
    return save_photo(folder, data, photo_format), ""


def photos(count: int) -> str:
    """`1 photo`, `2 photos`."""
    return plural(count, "photo")


class Screen(Protocol):
    """What the capture loop needs of a window (facerec.display.Window fits)."""

    @property
    def closed(self) -> bool: ...

    def show(self, frame: np.ndarray, wait_ms: int = 1) -> int | None: ...


@dataclass
class CaptureSummary:
    """What a capture session did."""

    folder: Path
    saved: list[Path] = field(default_factory=list)
    refused: int = 0
    ended_by: str = ""

    def lines(self, next_command: str) -> list[str]:
        """The closing report: how many saved, where, and (if any was) `next_command`, the command to run next."""
        out = [f"saved {photos(len(self.saved))} in {self.folder} ({self.refused} refused; stopped: {self.ended_by})"]
        if self.saved:
            out.append(f"next: {next_command}")
        return out


@dataclass
class _Message:
    """A line shown on the frame until a deadline."""

    text: str = ""
    colour: tuple[int, int, int] = KNOWN_COLOUR
    until: float = 0.0


def run_capture(frames: Iterable[np.ndarray], detector: Detector, screen: Screen, folder: Path, name: str,
                count: int | None = None, fps: float | None = None, photo_format: str = "jpg",
                out: TextIO | None = None, err: TextIO | None = None) -> CaptureSummary:
    """Show each frame with its faces boxed; SPACE saves it (when it holds one face), a quit key stops.

    `fps` paces a video file at its own speed (a live camera paces itself: leave it None).
    Stops after `count` photos if given, at the end of the frames, on a quit key, a closed window or Ctrl-C.
    Saved paths go to `out`, refusals to `err` (standard output and error by default).
    """
    out, err = out or sys.stdout, err or sys.stderr
    summary = CaptureSummary(folder)
    message = _Message()
    interval = 1.0 / fps if fps else 0.0
    shown_at = time.monotonic()
    try:
        for frame in frames:
            faces = detector.detect(frame)
            view = frame.copy()  # the drawings stay off the saved photo
            now = time.monotonic()
            showing = now < message.until
            draw_faces(view, [(face, name if len(faces) == 1 else "?", len(faces) == 1) for face in faces],
                       f"{name}: {len(summary.saved)} saved | SPACE saves, ESC quits",
                       keep_clear=[label_rect(view, message.text, 0, view.shape[0])] if showing else [])
            if showing:
                draw_label(view, message.text, 0, view.shape[0], message.colour)
            wait_ms = max(1, round((interval - (now - shown_at)) * 1000))
            key = screen.show(view, wait_ms)
            shown_at = time.monotonic()
            if key in QUIT_KEYS or screen.closed:
                summary.ended_by = "quit by the user"
                break
            if key != KEY_SPACE:
                continue
            path, reason = keep_photo(detector, folder, encode_photo(frame, photo_format), photo_format)
            if path is None:
                summary.refused += 1
                message = _Message(f"not saved: {reason}", UNKNOWN_COLOUR, shown_at + MESSAGE_SECONDS)
                print(message.text, file=err, flush=True)
                continue
            summary.saved.append(path)
            message = _Message(f"saved {path.name}", KNOWN_COLOUR, shown_at + MESSAGE_SECONDS)
            print(f"saved {path}", file=out, flush=True)
            if count is not None and len(summary.saved) >= count:
                summary.ended_by = f"{photos(count)} saved"
                break
        else:
            summary.ended_by = why_frames_ended(frames)
    except KeyboardInterrupt:
        summary.ended_by = "interrupted (Ctrl-C)"
    return summary

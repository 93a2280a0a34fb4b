"""Recognising faces in video: detect each frame, follow the faces as tracks, embed and match them, then show, save or print it."""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable, TextIO

import numpy as np

from .detection import DetectedFace, Detector
from .display import QUIT_KEYS, Window
from .drawing import draw_faces
from .embedding import Embedder
from .events import Presence
from .matching import UNKNOWN, Match, Matcher
from .pipelining import detected_ahead
from .stores import Sighting, SightingLog
from .text import printable
from .tracking import Tracker
from .video import VideoOutput, numbered_frames, why_frames_ended

FPS_SMOOTHING = 0.9  # weight of the past in the on-screen frame rate


@dataclass(frozen=True)
class RecognisedFace:
    """A detected face, the name it was given and, in a video, the id of its track."""

    face: DetectedFace
    match: Match
    track: int | None = None

    @property
    def label(self) -> str:
        """`#track name: distance` as drawn on the frame (no `#track` outside a video)."""
        text = self.match.name if self.match.distance is None else f"{self.match.name}: {self.match.distance:.2f}"
        return text if self.track is None else f"#{self.track} {text}"

    def as_json(self) -> dict:
        """The face as recognize_video.py --json gives it; "track" only for a face followed by a tracker.

        The name and the photo are escaped as the terminal shows them (`text.printable`): a file name that is not
        UTF-8 would otherwise put a lone surrogate in the JSON, which no UTF-8 consumer can decode.
        """
        distance = None if self.match.distance is None else round(self.match.distance, 4)
        photo = None if self.match.photo is None else printable(self.match.photo)
        record = {"box": list(self.face.box), "confidence": round(self.face.confidence, 4),
                  "name": printable(self.match.name), "distance": distance, "match": photo}
        if self.track is not None:
            record["track"] = self.track
        return record


class Recogniser:
    """Detector, embedder and matcher together: a frame in, its named faces out.

    Without a tracker every face is embedded and named on its own (a photo). With one (a video),
    faces keep track ids, only the faces the tracker asks for are embedded, and each face
    carries its track's name. `matcher` may be replaced at any time from another thread (a new
    gallery): each frame is named by the matcher it started with.
    """

    def __init__(self, detector: Detector, embedder: Embedder, matcher: Matcher,
                 tracker: Tracker | None = None) -> None:
        self.detector = detector
        self.embedder = embedder
        self.matcher = matcher
        self.tracker = tracker
        self.embedded = 0  # faces embedded so far

    def recognise(self, frame: np.ndarray, frame_index: int | None = None,
                  tracker: Tracker | None = None, faces: list[DetectedFace] | None = None) -> list[RecognisedFace]:
        """The faces of `frame`; `frame_index` (the source's, for a tracker) defaults to frames seen.

        `tracker` (default: the recogniser's own) follows one video: a server that recognises several
        videos at once with one set of networks gives each its own tracker. `faces`: the detector's
        faces of `frame`, when they were found already (detected_ahead).
        """
        tracker = self.tracker if tracker is None else tracker
        matcher = self.matcher  # one gallery for the whole frame, even if a new one arrives meanwhile
        faces = self.detector.detect(frame) if faces is None else faces
        if tracker is None:
            return [RecognisedFace(face, match) for face, match in zip(faces, self._embed(frame, faces, matcher)[1])]
        tracks = tracker.update(faces, frame_index, frame)
        due = [i for i, track in enumerate(tracks) if tracker.needs_embedding(track)]
        vectors, verdicts = self._embed(frame, [faces[i] for i in due], matcher)
        for i, vector, verdict in zip(due, vectors, verdicts):
            tracker.add_evidence(tracks[i], vector, verdict, matcher)
        return [RecognisedFace(face, track.match, track.id) for face, track in zip(faces, tracks)]

    def _embed(self, frame: np.ndarray, faces: list[DetectedFace], matcher: Matcher) -> tuple[np.ndarray, list[Match]]:
        """The faces' vectors and their own verdicts (none for no face)."""
        if not faces:
            return np.empty((0, self.embedder.dimension), np.float32), []
        self.embedded += len(faces)
        vectors = self.embedder.embed(frame, faces)
        return vectors, matcher.match(vectors)


def log_sightings(log: SightingLog | None, recognised: Iterable[RecognisedFace]) -> None:
    """Give `log` (if any) the named faces (not Unknown) of one frame just recognised."""
    if log is None:
        return
    now = time.time()
    named = [Sighting(item.match.name, float(item.match.distance), now, item.track)
             for item in recognised if item.match.name != UNKNOWN and item.match.distance is not None]
    if named:
        log.log(named)


def annotate(frame: np.ndarray, recognised: Iterable[RecognisedFace], fps: float) -> None:
    """Draw every face's box and label, and the frame rate, onto the frame; no label covers another or the rate."""
    draw_faces(frame, [(item.face, item.label, item.match.name != UNKNOWN) for item in recognised], f"{fps:.1f} fps")


@dataclass
class Summary:
    """What a recognition run saw."""

    frames: int = 0
    faces: int = 0
    names: Counter = field(default_factory=Counter)
    track_names: dict[int, Counter] = field(default_factory=dict)  # per track id: its faces per name
    seconds: float = 0.0
    ended_by: str = ""

    def add(self, recognised: list[RecognisedFace]) -> None:
        """Count one frame's faces."""
        self.frames += 1
        self.faces += len(recognised)
        self.names.update(item.match.name for item in recognised)
        for item in recognised:
            if item.track is not None:
                self.track_names.setdefault(item.track, Counter())[item.match.name] += 1

    @property
    def tracks(self) -> Counter:
        """Tracks per name, each track under the name it carried in most of its frames."""
        return Counter(names.most_common(1)[0][0] for names in self.track_names.values())

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def report(self) -> str:
        tracks = f", {len(self.track_names)} tracks ({per_name(self.tracks)})" if self.track_names else ""
        return (f"{self.frames} frames, {self.faces} faces ({per_name(self.names)}){tracks}, "
                f"{self.fps:.1f} frames/s; stopped: {self.ended_by}")


def per_name(counts: Counter) -> str:
    """`lin 148, obama 64`, most first (names escaped: `text.printable`); `none` when empty."""
    return ", ".join(f"{printable(name)} {count}" for name, count in counts.most_common()) or "none"


def run_recognition(frames: Iterable[np.ndarray], recogniser: Recogniser, window: Window | None = None,
                    output: VideoOutput | None = None, json_lines: TextIO | None = None,
                    sightings: SightingLog | None = None, events: Presence | None = None,
                    ahead: bool | None = None) -> Summary:
    """Recognise every frame until the frames end, a quit key, or Ctrl-C; return what was seen.

    Each frame's named faces go to `sightings` if given, its tracks to `events` (the caller closes both)."""
    # `ahead`: detect the next frame on another thread while this one is embedded and shown (the same names,
    # more frames a second). By default a file is, a live source (camera, stream) is not: on 2 busy cores that
    # made the time from a frame's capture to its names drawn longer (bench/live_path.py).
    if ahead is None:
        ahead = not getattr(getattr(frames, "spec", None), "is_live", False)
    summary = Summary()
    start = previous = time.perf_counter()
    fps = 0.0
    try:
        numbered = numbered_frames(frames)
        steps = (detected_ahead(numbered, recogniser.detector) if ahead
                 else ((index, frame, None) for index, frame in numbered))
        for index, frame, faces in steps:
            recognised = recogniser.recognise(frame, index, faces=faces)
            summary.add(recognised)
            log_sightings(sightings, recognised)
            if events is not None and recogniser.tracker is not None:
                events.saw(recogniser.tracker.tracks, index, recogniser.matcher)
            if json_lines is not None:
                record = {"frame": index, "faces": [item.as_json() for item in recognised]}
                json_lines.write(json.dumps(record) + "\n")
                json_lines.flush()
            now = time.perf_counter()
            instant = 1.0 / max(now - previous, 1e-6)
            fps = instant if summary.frames == 1 else FPS_SMOOTHING * fps + (1 - FPS_SMOOTHING) * instant
            previous = now
            if window is None and output is None:
                continue
            annotate(frame, recognised, fps)
            if output is not None:
                output.write(frame, index)
            if window is not None:
                key = window.show(frame)
                if key in QUIT_KEYS or window.closed:
                    summary.ended_by = "quit by the user"
                    break
        else:
            summary.ended_by = why_frames_ended(frames)
    except KeyboardInterrupt:
        summary.ended_by = "interrupted (Ctrl-C)"
    summary.seconds = time.perf_counter() - start
    return summary

"""Recognising faces in video: detect, embed and match each frame, then show, save or print it."""

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
from .matching import UNKNOWN, Match, Matcher
from .video import VideoOutput, why_frames_ended

FPS_SMOOTHING = 0.9  # weight of the past in the on-screen frame rate


@dataclass(frozen=True)
class RecognisedFace:
    """A detected face and the name it was given."""

    face: DetectedFace
    match: Match

    @property
    def label(self) -> str:
        """`name: distance` as drawn on the frame."""
        if self.match.distance is None:
            return self.match.name
        return f"{self.match.name}: {self.match.distance:.2f}"

    def as_json(self) -> dict:
        distance = None if self.match.distance is None else round(self.match.distance, 4)
        return {"box": list(self.face.box), "confidence": round(self.face.confidence, 4),
                "name": self.match.name, "distance": distance}


class Recogniser:
    """Detector, embedder and matcher together: a frame in, its named faces out."""

    def __init__(self, detector: Detector, embedder: Embedder, matcher: Matcher) -> None:
        self.detector = detector
        self.embedder = embedder
        self.matcher = matcher

    def recognise(self, frame: np.ndarray) -> list[RecognisedFace]:
        faces = self.detector.detect(frame)
        if not faces:
            return []
        matches = self.matcher.match(self.embedder.embed(frame, faces))
        return [RecognisedFace(face, match) for face, match in zip(faces, matches)]


def annotate(frame: np.ndarray, recognised: Iterable[RecognisedFace], fps: float) -> None:
    """Draw every face's box and label, and the frame rate, onto the frame; no label covers another or the rate."""
    draw_faces(frame, [(item.face, item.label, item.match.name != UNKNOWN) for item in recognised], f"{fps:.1f} fps")


@dataclass
class Summary:
    """What a recognition run saw."""

    frames: int = 0
    faces: int = 0
    names: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    ended_by: str = ""

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def report(self) -> str:
        per_name = ", ".join(f"{name} {count}" for name, count in self.names.most_common()) or "none"
        return (f"{self.frames} frames, {self.faces} faces ({per_name}), "
                f"{self.fps:.1f} frames/s; stopped: {self.ended_by}")


def run_recognition(frames: Iterable[np.ndarray], recogniser: Recogniser, window: Window | None = None,
                    output: VideoOutput | None = None, json_lines: TextIO | None = None) -> Summary:
    """Recognise every frame until the frames end, a quit key, or Ctrl-C; return what was seen."""
    summary = Summary()
    start = previous = time.perf_counter()
    fps = 0.0
    try:
        for index, frame in enumerate(frames):
            recognised = recogniser.recognise(frame)
            summary.frames += 1
            summary.faces += len(recognised)
            summary.names.update(item.match.name for item in recognised)
            if json_lines is not None:
                record = {"frame": index, "faces": [item.as_json() for item in recognised]}
                json_lines.write(json.dumps(record) + "\n")
                json_lines.flush()
            now = time.perf_counter()
            instant = 1.0 / max(now - previous, 1e-6)
            fps = instant if index == 0 else FPS_SMOOTHING * fps + (1 - FPS_SMOOTHING) * instant
            previous = now
            if window is None and output is None:
                continue
            annotate(frame, recognised, fps)
            if output is not None:
                output.write(frame)
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

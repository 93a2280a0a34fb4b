"""The camera runner: a video's frames through the pipeline until they end, each frame's faces handed on.

`run_recognition` recognises every frame of one source (recognition.FacePipeline) and gives its faces to
whoever asked: the events (MQTT, webhooks, the sightings log), the keeper of unknowns, the JSON lines, the drawn frame on
screen and in the output file. `Summary` is what the run saw. recognize_video.py runs it; the service
of several cameras (facerec/service/) grows from it.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterable, TextIO

import numpy as np

from .display import QUIT_KEYS, Window
from .drawing import annotate
from .events import Presence
from .faces import Face
from .pipelining import detected_ahead
from .recognition import FacePipeline
from .text import printable
from .tracking import Tracker
from .video import VideoOutput, numbered_frames, why_frames_ended

if TYPE_CHECKING:  # only the annotation: a run without --keep-unknowns does not load the keeper
    from .unknowns.keeping import UnknownKeeper

FPS_SMOOTHING = 0.9  # weight of the past in the on-screen frame rate


@dataclass
class Summary:
    """What a recognition run saw."""

    frames: int = 0
    faces: int = 0
    names: Counter = field(default_factory=Counter)
    track_names: dict[int, Counter] = field(default_factory=dict)  # per track id: its faces per name
    seconds: float = 0.0
    ended_by: str = ""

    def add(self, recognised: list[Face]) -> None:
        """Count one frame's faces."""
        self.frames += 1
        self.faces += len(recognised)
        self.names.update(face.name for face in recognised)
        for face in recognised:
            if face.track is not None:
                self.track_names.setdefault(face.track, Counter())[face.name] += 1

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


def run_recognition(frames: Iterable[np.ndarray], recogniser: FacePipeline, window: Window | None = None,
                    output: VideoOutput | None = None, json_lines: TextIO | None = None,
                    events: Presence | None = None,
                    ahead: bool | None = None, tracker: Tracker | None = None,
                    unknowns: UnknownKeeper | None = None) -> Summary:
    """Recognise every frame until the frames end, a quit key, or Ctrl-C; return what was seen.

    `tracker` follows the faces (default: the recogniser's own). Each frame's tracks go to `events` (the
    visits the sinks are told: MQTT, webhooks, the sightings log; the caller closes it), its faces and tracks to
    `unknowns` (--keep-unknowns; its tracks end with the run)."""
    # `ahead`: detect the next frame on another thread while this one is embedded and shown (the same names,
    # more frames a second). By default a file is, a live source (camera, stream) is not: on 2 busy cores that
    # made the time from a frame's capture to its names drawn longer (bench/live_path.py). A file is detected
    # ahead even when the embedder runs on two threads (OpenVINO): on a quiet machine that gave sface 0.77 of
    # detection alone against 0.68 one step at a time (bench/live_path.py, docs/benchmarks.md).
    if ahead is None:
        ahead = not getattr(getattr(frames, "spec", None), "is_live", False)
    followed = recogniser.tracker if tracker is None else tracker
    summary = Summary()
    start = previous = time.perf_counter()
    fps = 0.0
    try:
        numbered = numbered_frames(frames)
        steps = (detected_ahead(numbered, recogniser.detector) if ahead
                 else ((index, frame, None) for index, frame in numbered))
        for index, frame, faces in steps:
            recognised = recogniser.recognise(frame, index, tracker, faces=faces)
            summary.add(recognised)
            if events is not None and followed is not None:
                events.saw(followed.tracks, index, recogniser.matcher)
            if unknowns is not None and followed is not None:
                unknowns.saw(frame, recognised, followed.tracks, index)  # before the frame is drawn on
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
    finally:
        if unknowns is not None:
            unknowns.end()
    summary.seconds = time.perf_counter() - start
    return summary

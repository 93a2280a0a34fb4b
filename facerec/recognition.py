"""Recognising faces in video: detect each frame, follow the faces as tracks, embed and match them, then show, save or print it."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Sequence, TextIO

import numpy as np

from .detection import DetectedFace, Detector
from .display import QUIT_KEYS, Window
from .drawing import draw_faces
from .embedding import Embedder
from .errors import FacerecError
from .events import Presence
from .follower import GalleryFollower, Naming
from .gallery import check_profile, check_store_fits
from .matching import DEFAULT_MIN_PROBABILITY, MATCHERS, UNKNOWN, Match, Matcher
from .models import Models
from .pipelining import detected_ahead
from .stages import Stage, load_stages
from .stores import Gallery, Sighting, SightingLog, StoredGallery, open_gallery
from .text import printable
from .tracking import DEFAULT_EVERY, Tracker
from .video import VideoOutput, numbered_frames, open_source, why_frames_ended

if TYPE_CHECKING:  # unknowns/ reads Face records: it sits above this module
    from .unknowns.keeping import UnknownKeeper

FPS_SMOOTHING = 0.9  # weight of the past in the on-screen frame rate


@dataclass(eq=False)
class Face:
    """One face of an image: where the detector found it, who it is and, in a video, the id of its track.

    `detected` is the detector's finding (box, confidence, landmarks); `match` the name the gallery gave
    (None until it is matched); `values` what each per-face stage found, by the stage's name, also read
    as attributes (`face.quality`). Everything that shows a face (the JSON line, the web page, the
    drawing) reads it from here.
    """

    detected: DetectedFace
    match: Match | None = None
    track: int | None = None
    values: dict[str, Any] = field(default_factory=dict)
    vector: np.ndarray | None = None  # the embedder's vector of this face, when this frame embedded it (unknowns/keeping.py)

    def __getattr__(self, name: str) -> Any:
        values = self.__dict__.get("values", {})
        if name in values:
            return values[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    @property
    def box(self) -> tuple[int, int, int, int]:
        """(x1, y1, x2, y2) in pixels, inside the image."""
        return self.detected.box

    @property
    def confidence(self) -> float:
        return self.detected.confidence

    @property
    def landmarks(self) -> np.ndarray | None:
        return self.detected.landmarks

    @property
    def width(self) -> int:
        return self.detected.width

    @property
    def height(self) -> int:
        return self.detected.height

    @property
    def name(self) -> str:
        """The person's name, or Unknown."""
        return UNKNOWN if self.match is None else self.match.name

    @property
    def distance(self) -> float | None:
        """The L2 distance to the gallery's evidence for the name (None: nothing to compare with)."""
        return None if self.match is None else self.match.distance

    @property
    def photo(self) -> str | None:
        """The gallery image the face matched, where the matching strategy names one."""
        return None if self.match is None else self.match.photo

    @property
    def known(self) -> bool:
        return self.name != UNKNOWN

    @property
    def label(self) -> str:
        """`#track name: distance` as drawn on the frame (no `#track` outside a video)."""
        text = self.name if self.distance is None else f"{self.name}: {self.distance:.2f}"
        return text if self.track is None else f"#{self.track} {text}"

    def as_json(self) -> dict:
        """The face as recognize_video.py --json gives it: box, confidence, name, distance, match (the photo),
        then each stage's value, then "track" for a face followed by a tracker.

        The name and the photo are escaped as the terminal shows them (`text.printable`): a file name that is not
        UTF-8 would otherwise put a lone surrogate in the JSON, which no UTF-8 consumer can decode.
        """
        record = {"box": list(self.box), "confidence": round(self.confidence, 4), "name": printable(self.name),
                  "distance": _rounded(self.distance), "match": None if self.photo is None else printable(self.photo)}
        record.update((name, _rounded(value)) for name, value in self.values.items())
        if self.track is not None:
            record["track"] = self.track
        return record


RecognisedFace = Face  # its name before issue 20


def _rounded(value: Any) -> Any:
    return round(value, 4) if isinstance(value, float) else value


def run_stages(stages: Sequence[Stage], image: np.ndarray, detected: Sequence[DetectedFace]) -> list[Face]:
    """A Face record for each detected face of `image`, filled by every per-face stage."""
    faces = [Face(face) for face in detected]
    for stage in stages:
        for face, value in zip(faces, stage.run(image, detected)):
            face.values[stage.name] = value
    return faces


class FacePipeline:
    """Detect, the per-face stages, embed, match and track: a frame in, its named faces out.

    Without a tracker every face is embedded and named on its own (a photo). With one (a video),
    faces keep track ids, only the faces the tracker asks for are embedded, and each face
    carries its track's name. `matcher` may be replaced at any time from another thread (a new
    gallery): each frame is named by the matcher it started with.
    """

    def __init__(self, detector: Detector, embedder: Embedder, matcher: Matcher,
                 tracker: Tracker | None = None, stages: Sequence[Stage] | None = None) -> None:
        self.detector = detector
        self.embedder = embedder
        self.matcher = matcher
        self.tracker = tracker
        self.stages = load_stages() if stages is None else list(stages)  # default: the catalogue's
        self.embedded = 0  # faces embedded so far

    def recognise(self, frame: np.ndarray, frame_index: int | None = None,
                  tracker: Tracker | None = None, faces: list[DetectedFace] | None = None,
                  matcher: Matcher | None = None) -> list[Face]:
        """The faces of `frame`; `frame_index` (the source's, for a tracker) defaults to frames seen.

        `tracker` (default: the recogniser's own) follows one video: a server that recognises several
        videos at once with one set of networks gives each its own tracker. `faces`: the detector's
        faces of `frame`, when they were found already (detected_ahead). `matcher`: one camera's own (its
        threshold) instead of `self.matcher`.
        """
        tracker = self.tracker if tracker is None else tracker
        matcher = self.matcher if matcher is None else matcher  # one gallery for the whole frame
        records = run_stages(self.stages, frame, self.detector.detect(frame) if faces is None else faces)
        if tracker is None:
            for record, vector, match in zip(records, *self._embed(frame, records, matcher)):
                record.match, record.vector = match, vector
            return records
        tracks = tracker.update(records, frame_index, frame)
        due = [i for i, track in enumerate(tracks) if tracker.needs_embedding(track)]
        vectors, verdicts = self._embed(frame, [records[i] for i in due], matcher)
        for i, vector, verdict in zip(due, vectors, verdicts):
            tracker.add_evidence(tracks[i], vector, verdict, matcher)
            records[i].vector = vector
        for record, track in zip(records, tracks):
            record.match, record.track = track.match, track.id
        return records

    def _embed(self, frame: np.ndarray, faces: list[Face], matcher: Matcher) -> tuple[np.ndarray, list[Match]]:
        """The faces' vectors and their own verdicts (none for no face)."""
        if not faces:
            return np.empty((0, self.embedder.dimension), np.float32), []
        self.embedded += len(faces)
        vectors = self.embedder.embed(frame, [face.detected for face in faces])
        return vectors, matcher.match(vectors)


class Recogniser(FacePipeline):
    """A model profile's networks naming faces with a gallery: `recognise` a photo, `follow` a video.

    `gallery`: an open gallery (stores.open_gallery), or its location (an embeddings file or a
    postgresql:// URL, opened here and closed by `close`); a gallery with none yet names everyone
    Unknown. `threshold` (default: the profile's), `match` (matching.MATCHERS) and `min_probability`
    (--match svm) as the scripts' options; `every` as recognize_video.py --every. Inside
    `watching_gallery()` the gallery's changes by other processes are used from the next frame on;
    a change that cannot be used goes to `on_problem` (default: the "facerec" logger's warnings).
    FacerecError, with the scripts' messages, for a gallery of another profile or vector length.
    """

    def __init__(self, models: Models, gallery: StoredGallery | str | os.PathLike | None = None, *,
                 threshold: float | None = None, match: str = "nearest",
                 min_probability: float = DEFAULT_MIN_PROBABILITY, every: int = DEFAULT_EVERY,
                 on_problem: Callable[[str], None] | None = None) -> None:
        embedder = models.needs_embedder()
        if match not in MATCHERS:
            raise FacerecError(f"unknown matching strategy {match!r}: the strategies are {', '.join(sorted(MATCHERS))}")
        self._owned = not isinstance(gallery, StoredGallery)
        if isinstance(gallery, StoredGallery):
            opened = gallery
        else:
            opened = open_gallery(gallery, profile=models.profile.name)
        try:
            snapshot = opened.snapshot
            if snapshot is None:
                snapshot = Gallery.empty(models.profile.name, models.identity, embedder.dimension)
            check_profile(snapshot, opened.location, models.profile.name)
            check_store_fits(snapshot, opened.location, embedder)
            self.naming = Naming(match, models.threshold if threshold is None else threshold, min_probability)
            super().__init__(models.detector, embedder, self.naming.matcher(snapshot))
        except BaseException:
            if self._owned:
                opened.close()
            raise
        self.models, self.stored, self.every = models, opened, every
        self.follower = GalleryFollower(opened.store, self, self.naming, models.profile.name, snapshot,
                                        warn=on_problem or logging.getLogger("facerec").warning)

    @property
    def gallery(self) -> Gallery:
        """The gallery faces are named with now."""
        return self.follower.gallery

    @property
    def threshold(self) -> float:
        return self.naming.threshold

    def recognise(self, image: np.ndarray, frame_index: int | None = None,
                  tracker: Tracker | None = None, faces: list[DetectedFace] | None = None,
                  matcher: Matcher | None = None) -> list[Face]:
        """The faces of one BGR image (OpenCV's convention), most confident first, each named on its own.

        (`frame_index` and `tracker`: a frame of a video followed by that tracker, as `follow` does;
        `faces`: the detector's faces of `image` when they were found already; `matcher`: another threshold's.)
        """
        return super().recognise(image, frame_index, tracker, faces, matcher)

    def new_tracker(self) -> Tracker:
        """A tracker for one more video, embedding a followed face again at least every `every` frames."""
        return Tracker(self.every)

    def follow(self, source: str | int | os.PathLike | Iterable[np.ndarray]) -> Iterator[tuple[int, list[Face]]]:
        """(frame index, faces) for each frame of a video, its faces followed as tracks (`face.track`).

        `source`: a webcam index, a video file or a stream URL (opened and closed here, FacerecError if it
        cannot be), or any iterable of BGR frames.
        """
        tracker = self.new_tracker()
        with contextlib.ExitStack() as cleanup:
            if isinstance(source, (str, int, os.PathLike)):
                source = cleanup.enter_context(open_source(os.fspath(source) if not isinstance(source, int)
                                                           else str(source)))
            for index, frame in numbered_frames(source):
                yield index, self.recognise(frame, index, tracker)

    @contextlib.contextmanager
    def watching_gallery(self) -> Iterator[Recogniser]:
        """Use the gallery's changes (another process enrolled or deleted) inside the block."""
        with self.follower.following():
            yield self

    def close(self) -> None:
        """Close the gallery's store if this recogniser opened it."""
        if self._owned:
            self.stored.close()

    def __enter__(self) -> Recogniser:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def log_sightings(log: SightingLog | None, recognised: Iterable[Face]) -> None:
    """Give `log` (if any) the named faces (not Unknown) of one frame just recognised."""
    if log is None:
        return
    now = time.time()
    named = [Sighting(face.name, float(face.distance), now, face.track)
             for face in recognised if face.known and face.distance is not None]
    if named:
        log.log(named)


def annotate(frame: np.ndarray, recognised: Iterable[Face], fps: float) -> None:
    """Draw every face's box and label, and the frame rate, onto the frame; no label covers another or the rate."""
    draw_faces(frame, [(face.detected, face.label, face.known) for face in recognised], f"{fps:.1f} fps")


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
                    sightings: SightingLog | None = None, events: Presence | None = None,
                    ahead: bool | None = None, tracker: Tracker | None = None,
                    unknowns: UnknownKeeper | None = None) -> Summary:
    """Recognise every frame until the frames end, a quit key, or Ctrl-C; return what was seen.

    `tracker` follows the faces (default: the recogniser's own). Each frame's named faces go to
    `sightings` if given, its tracks to `events` (the caller closes both), its faces and tracks to
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
            log_sightings(sightings, recognised)
            if events is not None and followed is not None:
                events.saw(followed.tracks, index, recogniser.matcher)
            if unknowns is not None and followed is not None:
                unknowns.saw(frame, recognised, followed.tracks)  # before the frame is drawn on
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

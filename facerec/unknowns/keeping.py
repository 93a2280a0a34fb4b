"""Keeping unknown faces (--keep-unknowns): a video's tracks that stay Unknown, handed to the unknown store when they end.

After each frame the video loop gives an `UnknownKeeper` the frame, its Face records and the tracker's
live tracks (as it gives them to events.Presence). For each track it keeps the best FACES_PER_TRACK
faces by face quality (stages/quality.py), each with the vector the embedder made from that very face
in that frame (`Face.vector`: only frames where the track was embedded; nothing is embedded twice),
as a JPEG crop with a margin around the box (enough for the detector to find the face again when the
group is named and its crops enrolled). When the track ends (the tracker forgets it, a cut, a new id
because it became someone else, or the source ends: `end`) and it never carried a name, it becomes
a KeptTrack for the store; a track that carried a name at any moment is dropped. Storing runs off
the video loop (`KeptTracks`: one thread, bounded, like the event sinks), since a database can be slow.
Nothing is kept unless the user asks (--keep-unknowns): these are faces of people who agreed to nothing.
Only faces worth reviewing are kept: given the run's detector, `KeptTracks` keeps a face only if that detector
finds a face again in its crop at KEEP_CONFIDENCE (what enrolling the crop needs when the group is named), and a
track none of whose faces pass is not kept at all.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterable, Sequence

import cv2
import numpy as np

from ..detection import Detector, load_detector
from ..events.sink import OffLoop
from ..faces import Face
from ..stages.quality import factors, score
from ..text import plural, printable
from ..tracking import Track
from .rules import MAX_TEXT
from .store import FACES_PER_TRACK, KeptFace, KeptTrack, UnknownStore, VideoSpan

if TYPE_CHECKING:
    from ..video import VideoSource

MARGIN = 0.4  # of the box's width and height, added on each side of a kept crop: YuNet finds the face in it again
JPEG_QUALITY = 90
WAITING_TRACKS = 200  # finished tracks waiting for a slow store at most; beyond, the oldest are dropped (one warning)
CLOSE_SECONDS = 60.0  # at the end of a run, the store gets this long to keep what waits
# A kept crop must hold a face the detector finds again at this confidence. Quality cannot tell junk from faces on
# the clip (a dark blurred head and the WH.GOV logo's crops score 0.31 to 0.43, real audience faces 0.40 to 0.52);
# YuNet at 0.8 finds no face in the first and one in every crop of the others (docs/unknown-people.md).
KEEP_CONFIDENCE = 0.8


def face_crop(frame: np.ndarray, box: tuple[int, int, int, int], margin: float = MARGIN) -> bytes:
    """The JPEG of the face's box grown by `margin` of its size on each side, cut at the frame's edges."""
    x1, y1, x2, y2 = box
    dx, dy = round((x2 - x1) * margin), round((y2 - y1) * margin)
    height, width = frame.shape[:2]
    crop = frame[max(0, y1 - dy):min(height, y2 + dy), max(0, x1 - dx):min(width, x2 + dx)]
    ok, encoded = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:  # never for a non-empty BGR crop
        raise ValueError(f"cannot encode a face crop of {crop.shape}")
    return encoded.tobytes()


def quality_of(frame: np.ndarray, face: Face) -> float:
    """The face's quality: the stage's value where the recogniser ran it, else computed the same way."""
    value = face.values.get("quality")
    return float(value) if value is not None else score(factors(frame, face.detected))


@dataclass
class _Pending:
    """What is kept of one live track so far."""

    first_seen: float
    last_seen: float
    first_at: float | None = None  # its first and last frames' positions in a video file (None: a live camera)
    last_at: float | None = None
    named: bool = False
    faces: list[KeptFace] = field(default_factory=list)  # best quality first, at most `per_track`


class UnknownKeeper:
    """One video's unknown tracks (one tracker's): `saw` after each frame, `end` when the source ends.

    `hand` receives each finished track that stayed Unknown (KeptTracks.add keeps it off the loop).
    `end` may come from another thread than `saw` (a page that goes away while its frame is recognised).
    """

    def __init__(self, hand: Callable[[KeptTrack], None], camera: str, clock: Callable[[], float] = time.time,
                 per_track: int = FACES_PER_TRACK, video: tuple[str, float] | None = None) -> None:
        self.hand, self.camera, self._clock, self.per_track = hand, camera, clock, per_track
        # a video FILE's name and frames a second: its tracks carry their positions in it (file_video); the
        # wall-clock times of a file are when it was processed, which says nothing to the reviewer
        self.video = video
        self._tracks: dict[int, _Pending] = {}
        self._lock = threading.Lock()

    def saw(self, frame: np.ndarray, faces: Sequence[Face], tracks: Iterable[Track], index: int | None = None) -> None:
        """After a frame (before anything is drawn on it): its faces, the tracker's live tracks, and the frame's
        index in its source (a video file's tracks are placed in it by index / fps)."""
        with self._lock:
            self._saw(frame, faces, tracks, index)

    def _saw(self, frame: np.ndarray, faces: Sequence[Face], tracks: Iterable[Track], index: int | None) -> None:
        now = self._clock()
        at = None if self.video is None or index is None else index / self.video[1]
        for face in faces:
            if face.track is None:
                continue
            pending = self._tracks.setdefault(face.track, _Pending(now, now, at, at))
            pending.last_seen, pending.last_at = now, at
            if face.known:  # a track that carried a name is someone the gallery knows: nothing of it is kept
                pending.named = True
                pending.faces.clear()
            if pending.named or face.vector is None:
                continue
            quality = quality_of(frame, face)
            if len(pending.faces) == self.per_track and quality <= pending.faces[-1].quality:
                continue  # no better than the worst kept: not even encoded
            kept = KeptFace(face_crop(frame, face.box), np.asarray(face.vector, np.float32).copy(), quality, now)
            pending.faces = sorted([*pending.faces, kept], key=lambda item: -item.quality)[:self.per_track]
        live = {track.id for track in tracks}
        for track_id in [track_id for track_id in self._tracks if track_id not in live]:
            self._finish(track_id)

    def end(self) -> None:
        """The source ended (or starts again, with a new tracker): every track ends."""
        with self._lock:
            for track_id in list(self._tracks):
                self._finish(track_id)

    def _finish(self, track_id: int) -> None:
        pending = self._tracks.pop(track_id)
        if not pending.named and pending.faces:
            video = None
            if self.video is not None and pending.first_at is not None and pending.last_at is not None:
                video = VideoSpan(self.video[0], round(pending.first_at, 3), round(pending.last_at, 3))
            self.hand(KeptTrack(self.camera, track_id, pending.first_seen, pending.last_seen, tuple(pending.faces),
                                video))


class KeptTracks(OffLoop):
    """Finished unknown tracks given to `store` by a thread of its own: the video never waits for the store.

    At most `limit` tracks wait; beyond, the oldest are dropped with one warning. `close` gives the store
    `close_seconds` to keep what waits; it does not close the store (its opener does).
    """

    def __init__(self, store: UnknownStore, warn: Callable[[str], None], limit: int = WAITING_TRACKS,
                 close_seconds: float = CLOSE_SECONDS, detector: Detector | None = None) -> None:
        self.store = store
        self.kept = 0  # tracks the store kept (an ignored person's are not)
        self.failed = 0  # tracks the store could not keep (told once, counted after)
        self.final_report = ""  # report() as close() found it
        self.junk = 0  # tracks not kept: no face of theirs is found again in its crop
        # `detector`'s network, loaded again at KEEP_CONFIDENCE for this queue's thread alone (OpenCV's networks
        # are not shared between threads); None: every face is kept
        self._finder = None if detector is None else load_detector(detector.network, detector.paths, KEEP_CONFIDENCE)
        super().__init__("the unknown-face store", warn, limit, close_seconds, what="unknown tracks")

    def add(self, track: KeptTrack) -> None:
        self._put(self._keep, track)

    def _keep(self, track: KeptTrack) -> None:
        if self._finder is not None:
            faces = tuple(face for face in track.faces if self.finds_face(face.jpeg))
            if not faces:
                self.junk += 1
                return
            track = dataclasses.replace(track, faces=faces)
        try:
            if self.store.add(track) is not None:
                self.kept += 1
        except Exception as error:  # a full disk fails every track alike: one warning, then a count at the end
            self.failed += 1
            if self.failed == 1:
                self._warn(f"{self.name}: {error} (told once: later tracks that cannot be kept are counted)")

    def report(self) -> str:
        """What this run kept, and what the store holds now (its bounds may have dropped some since)."""
        try:
            groups = self.store.groups()
            now = f"; it holds {plural(sum(g.tracks for g in groups), 'track')} in {plural(len(groups), 'group')} " \
                  "to review now"
        except Exception as error:  # the store is gone: say so, the run's own count stands
            now = f"; the store cannot be read now ({error})"
        failed = f", {plural(self.failed, 'track')} could not be kept" if self.failed else ""
        junk = f", {plural(self.junk, 'track')} without a face found again at {KEEP_CONFIDENCE:g} not kept" \
            if self.junk else ""
        return f"{plural(self.kept, 'unknown track')} kept this run{failed}{junk}{now}"

    def finds_face(self, jpeg: bytes) -> bool:
        """Whether the detector finds a face in the crop at KEEP_CONFIDENCE (always True without a detector)."""
        if self._finder is None:
            return True
        image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
        return image is not None and bool(self._finder.detect(image))

    def keeper(self, camera: str, video: tuple[str, float] | None = None) -> UnknownKeeper:
        """A keeper for one more video of `camera`, handing its finished tracks to this queue (`video`: a
        file's name and frames a second, file_video's)."""
        return UnknownKeeper(self.add, camera, video=video)

    def close(self) -> None:
        self._finish()
        self.final_report = self.report()  # the store is still open here (its opener closes it after)


def file_video(source: VideoSource) -> tuple[str, float] | None:
    """A video file's name and frames a second, for its kept tracks' positions; None for a live source."""
    path = source.spec.file_path
    if source.spec.is_live or path is None:
        return None
    return printable(path.name)[:MAX_TEXT], float(source.fps)  # printable: a name any store keeps

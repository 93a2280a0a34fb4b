"""Tracks: faces followed from frame to frame, which of them need embedding, and the name each carries.

`Tracker.update` gives each detected face its track, `needs_embedding` says which tracks are due,
`add_evidence` decides a track's name from its verdicts (`NAMING_RULES`, default "held"). The rules
and the measurements behind every constant below: docs/tracks.md.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Callable, Protocol, Sequence

import cv2
import numpy as np

from .matching import UNKNOWN, Match, Matcher

Box = tuple[int, int, int, int]

# Chosen with bench/tracks.py (docs/tracks.md): at 10 a track is embedded about 3 times a second of 30 fps
# video, and the sface names on the clip agree with --every 1 as well as at 5.
DEFAULT_EVERY = 10
# A verdict whose distance is within this share of the threshold from it could have gone either way: the track is
# embedded again the next frame, so where the answer is in doubt its name rests on fresh evidence (docs/tracks.md).
DOUBT_MARGIN = 0.1
# ... except a named track whose last this many verdicts all gave it its name: it is settled, and embedded again only
# when due, moved or back. An Unknown track in doubt stays checked every frame (a known face turning towards the
# camera gets its name at once). On the clip this embeds 78 faces instead of 118 and names Alex Lacamoire's
# close-up profile in 8 more frames, changing no other face (docs/tracks.md; bench/tracks.py --stages rules).
SETTLED_AFTER = 3
MAX_MISSED = 10  # processed frames a track survives unseen (a head turned away, a detector miss)
MAX_SHIFT = 1.0  # a face further than this many face widths from where its track was heading is someone else
MAX_SCALE = 1.5  # ... and so is a face more than this much wider or narrower than the track's last box
# A box this far (in widths of its last embedded box) from where it was embedded, or this much
# larger or smaller, shows the face from a new angle or distance: embed it again.
REEMBED_SHIFT = 0.5
REEMBED_SCALE = 1.25
# A due track whose face now scores below this share of the quality of its last embedded frame waits for a
# better frame (at most `every` frames): a frame blurred by motion or a head turned away adds poor evidence.
POORER_FRAME = 0.8
EVIDENCE = 8  # the most recent embeddings of a track kept as its evidence (for its name, and to tell someone else)
VELOCITY_SMOOTHING = 0.5  # weight of the past in a track's velocity
# Frames are compared as 32x18 grey thumbnails: on the clip a cut changes them by 26 to 30 grey levels
# on average, and no two frames of one shot by more than 13.
THUMBNAIL_SIZE = (32, 18)
CUT_DIFFERENCE = 20.0


class Boxed(Protocol):
    """What the tracker needs of a face: its box (a DetectedFace, or a Face record with its quality)."""

    @property
    def box(self) -> Box: ...


def box_centre(box: Box) -> np.ndarray:
    return np.array([(box[0] + box[2]) / 2.0, (box[1] + box[3]) / 2.0])


def box_width(box: Box) -> float:
    return float(max(box[2] - box[0], 1))


@dataclass(eq=False)
class Track:
    """One face followed over frames: where it is, how it moves, and the evidence for its name."""

    id: int
    box: Box
    frame_index: int  # source frame index of the last sighting
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2))  # pixels per source frame
    sightings: int = 1
    missed: int = 0  # processed frames since the last sighting
    returned: bool = False  # seen again this frame after being missed
    since_embedding: int = 0  # processed frames since the last embedding
    embedded_box: Box | None = None
    vectors: deque = field(default_factory=lambda: deque(maxlen=EVIDENCE))
    verdicts: deque = field(default_factory=lambda: deque(maxlen=EVIDENCE))
    match: Match | None = None  # the name the track carries now (None until first embedded)
    in_doubt: bool = False  # its latest verdict was near the threshold: embed it again next frame
    quality: float | None = None  # the face's quality this frame (None: its faces carry no quality)
    embedded_quality: float | None = None  # ... in the frame it was last embedded from

    def predicted_centre(self, frame_index: int) -> np.ndarray:
        return box_centre(self.box) + self.velocity * (frame_index - self.frame_index)


def unit_mean(vectors: Sequence[np.ndarray]) -> np.ndarray:
    """The mean of unit vectors, scaled back to unit length (left as is if it is zero)."""
    mean = np.mean(np.asarray(vectors, dtype=np.float32), axis=0)
    norm = float(np.linalg.norm(mean))
    return mean / norm if norm > 0 else mean


class CutDetector:
    """Tells whether a frame starts a new shot: its thumbnail differs from the previous frame's by CUT_DIFFERENCE."""

    def __init__(self) -> None:
        self._previous: np.ndarray | None = None

    def is_cut(self, frame: np.ndarray) -> bool:
        grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) if frame.ndim == 3 else frame
        thumbnail = cv2.resize(grey, THUMBNAIL_SIZE, interpolation=cv2.INTER_AREA).astype(np.float32)
        previous, self._previous = self._previous, thumbnail
        return previous is not None and float(np.mean(np.abs(thumbnail - previous))) > CUT_DIFFERENCE


def name_of_frame(track: Track, matcher: Matcher) -> Match:
    """The latest frame's own verdict, as when each frame stood alone."""
    return track.verdicts[-1]


def name_of_mean(track: Track, matcher: Matcher) -> Match:
    """The matcher's verdict on the mean of the track's recent vectors (re-normalised)."""
    return matcher.match(unit_mean(track.vectors))[0]


def name_held(track: Track, matcher: Matcher) -> Match:
    """The latest verdict, but a name changes only when two consecutive verdicts agree on the new one:
    until then the track keeps its name, with the distance of the last verdict that gave it."""
    latest = track.verdicts[-1]
    if track.match is None or latest.name == track.match.name:
        return latest
    if len(track.verdicts) >= 2 and track.verdicts[-2].name == latest.name:
        return latest
    return track.match


def name_of_vote(track: Track, matcher: Matcher) -> Match:
    """The most frequent of the recent verdicts (Unknown votes too; a tie goes to the latest), at its median distance."""
    votes = Counter(verdict.name for verdict in track.verdicts)
    latest = {verdict.name: position for position, verdict in enumerate(track.verdicts)}
    winner = max(votes, key=lambda name: (votes[name], latest[name]))
    distances = [verdict.distance for verdict in track.verdicts if verdict.name == winner and verdict.distance is not None]
    return Match(winner, float(np.median(distances)) if distances else None)


NAMING_RULES: dict[str, Callable[[Track, Matcher], Match]] = {
    "frame": name_of_frame,
    "held": name_held,
    "mean": name_of_mean,
    "vote": name_of_vote,
}
DEFAULT_NAMING = "held"  # chosen with bench/tracks.py: docs/tracks.md


class Tracker:
    """Associates each frame's faces with tracks and keeps each track's evidence and name.

    `every`: embed a track at least every this many processed frames (1: every face of every frame).
    `naming`: a key of NAMING_RULES (default: "frame" when every is 1, else DEFAULT_NAMING).
    `doubt_margin`: a track whose latest distance is within this share of the threshold from it is
    embedded again the next frame (0: never for that reason), unless it is named and its last
    `settled_after` verdicts all gave that name (0: never settled, the rule before issue 22).
    """

    def __init__(self, every: int = DEFAULT_EVERY, naming: str | None = None, max_missed: int = MAX_MISSED,
                 doubt_margin: float = DOUBT_MARGIN, settled_after: int = SETTLED_AFTER) -> None:
        if every < 1:
            raise ValueError(f"every must be at least 1, got {every}")
        if settled_after < 0:
            raise ValueError(f"settled_after must be at least 0, got {settled_after}")
        self.every = every
        self.doubt_margin = doubt_margin
        self.settled_after = settled_after
        self.naming = naming or ("frame" if every == 1 else DEFAULT_NAMING)
        self._name_rule = NAMING_RULES[self.naming]
        self.max_missed = max_missed
        self.tracks: list[Track] = []
        self._ids = itertools.count(1)
        self._processed = 0
        self._cuts = CutDetector()

    def update(self, faces: Sequence[Boxed], frame_index: int | None = None,
               frame: np.ndarray | None = None) -> list[Track]:
        """The track of each face, in the order of `faces`.

        `frame_index`: the source's index of the frame (default: frames seen so far);
        `frame`: the picture itself, to notice cuts (without it, shots are not told apart).
        """
        if frame_index is None:
            frame_index = self._processed
        self._processed += 1
        if frame is not None and self._cuts.is_cut(frame):
            self.tracks = []
        pairs = self._associate(faces, frame_index)
        assigned: list[Track | None] = [None] * len(faces)
        for track_index, face_index in pairs:
            track = self.tracks[track_index]
            self._move(track, faces[face_index].box, frame_index)
            assigned[face_index] = track
        seen = {id(track) for track in assigned if track is not None}
        for track in self.tracks:
            if id(track) not in seen:
                track.missed += 1
                track.since_embedding += 1
        self.tracks = [track for track in self.tracks if track.missed <= self.max_missed]
        for face_index, face in enumerate(faces):
            if assigned[face_index] is None:
                track = Track(next(self._ids), face.box, frame_index)
                self.tracks.append(track)
                assigned[face_index] = track
        for followed, face in zip(assigned, faces):
            assert followed is not None
            followed.quality = getattr(face, "quality", None)  # Face records carry it where the quality stage runs
        return assigned  # type: ignore[return-value]  # every face has its track now

    def _associate(self, faces: Sequence[Boxed], frame_index: int) -> list[tuple[int, int]]:
        """(track index, face index) pairs, closest first, each track and face used once, within the gates."""
        if not self.tracks or not faces:
            return []
        predicted = np.array([track.predicted_centre(frame_index) for track in self.tracks])
        widths = np.array([box_width(track.box) for track in self.tracks])
        centres = np.array([box_centre(face.box) for face in faces])
        face_widths = np.array([box_width(face.box) for face in faces])
        shift = np.linalg.norm(predicted[:, None, :] - centres[None, :, :], axis=2) / widths[:, None]
        scale = np.abs(np.log(face_widths[None, :] / widths[:, None]))
        cost = shift + scale
        allowed = (shift <= MAX_SHIFT) & (scale <= math.log(MAX_SCALE))
        pairs, used_tracks, used_faces = [], set(), set()
        for flat in np.argsort(np.where(allowed, cost, np.inf), axis=None):
            track_index, face_index = divmod(int(flat), len(faces))
            if not allowed[track_index, face_index]:
                break  # the rest are outside the gates too
            if track_index in used_tracks or face_index in used_faces:
                continue
            pairs.append((track_index, face_index))
            used_tracks.add(track_index)
            used_faces.add(face_index)
        return pairs

    @staticmethod
    def _move(track: Track, box: Box, frame_index: int) -> None:
        elapsed = frame_index - track.frame_index
        if elapsed > 0:
            step = (box_centre(box) - box_centre(track.box)) / elapsed
            first_step = track.sightings == 1
            track.velocity = step if first_step else VELOCITY_SMOOTHING * track.velocity + (1 - VELOCITY_SMOOTHING) * step
        track.sightings += 1
        track.returned = track.missed > 0
        track.missed = 0
        track.since_embedding += 1
        track.box = box
        track.frame_index = frame_index

    def needs_embedding(self, track: Track) -> bool:
        """True when the track's face should be embedded this frame (new, back, in doubt, moved, resized or due)."""
        if track.match is None or track.returned or track.in_doubt:
            return True
        if track.since_embedding >= self.every and not self._waits_for_a_better_frame(track):
            return True
        assert track.embedded_box is not None
        width = box_width(track.embedded_box)
        moved = np.linalg.norm(box_centre(track.box) - box_centre(track.embedded_box)) / width
        resized = box_width(track.box) / width
        return bool(moved > REEMBED_SHIFT or not 1 / REEMBED_SCALE <= resized <= REEMBED_SCALE)

    def _waits_for_a_better_frame(self, track: Track) -> bool:
        """A due track whose face is poorer now than where it was last embedded waits (at most `every` frames)."""
        if self.every == 1 or track.since_embedding >= 2 * self.every:
            return False
        if track.quality is None or track.embedded_quality is None:
            return False
        return track.quality < POORER_FRAME * track.embedded_quality

    def add_evidence(self, track: Track, vector: np.ndarray, verdict: Match, matcher: Matcher) -> Match:
        """Record the track's new embedding and its own verdict; return (and keep) the name the rule now gives.

        An embedding at or beyond the threshold from the mean of the track's evidence is someone else:
        the track gets a new id and starts its evidence (and its name) afresh.
        """
        if track.vectors and float(np.linalg.norm(np.asarray(vector) - unit_mean(track.vectors))) >= matcher.threshold:
            track.id = next(self._ids)
            track.vectors.clear()
            track.verdicts.clear()
            track.match = None
        track.vectors.append(np.asarray(vector, dtype=np.float32))
        track.verdicts.append(verdict)
        track.embedded_box = track.box
        track.embedded_quality = track.quality
        track.since_embedding = 0
        track.match = self._name_rule(track, matcher)
        track.in_doubt = (verdict.distance is not None
                          and abs(verdict.distance - matcher.threshold) < self.doubt_margin * matcher.threshold
                          and not self._settled(track))
        return track.match

    def _settled(self, track: Track) -> bool:
        """Whether the track is named and its last `settled_after` verdicts all gave it that name."""
        if not self.settled_after or track.match is None or track.match.name == UNKNOWN:
            return False
        recent = list(track.verdicts)[-self.settled_after:]
        return len(recent) == self.settled_after and all(verdict.name == track.match.name for verdict in recent)

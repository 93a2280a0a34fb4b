"""What every kind of unknown store decides the same way, on arrays it read: where a new track goes (a group,
a new group, or nowhere: it is an ignored person), which group ids survive a regroup, which faces the bounds
drop. Pure numpy, no I/O: filestore.py and postgres.py only read and write what these say."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np

from .grouping import DEFAULT_MARGIN, Groups, grouping_cut
from ..errors import FacerecError
from .store import FACES_PER_TRACK, MAX_RETENTION_DAYS, KeptFace, KeptTrack, VideoSpan

DAY_SECONDS = 86_400.0
MAX_TEXT = 1024  # characters of a camera or person name kept with a face (checked on writing and on reading)
MAX_TRACK = 2**62  # a track's number is below it (a store's ids too)
MAX_VIDEO_SECONDS = 1e7  # a position in a video file is at most this (115 days: no file is longer)


@dataclass
class Settings:
    """How a store groups and bounds what it keeps (see open_unknowns), and whether it warned yet."""

    profile: str
    threshold: float
    margin: float
    max_faces: int
    retention_days: float
    clock: Callable[[], float]
    on_warning: Callable[[str], None]
    retention_given: bool = True  # False: the store's own retention replaces retention_days when it has one
    warned: bool = False

    def __post_init__(self) -> None:
        if self.max_faces < 1 or not 0 < self.retention_days <= MAX_RETENTION_DAYS:
            raise ValueError(f"max_faces must be at least 1 and retention_days above 0, at most {MAX_RETENTION_DAYS:g}")
        self.cut = grouping_cut(self.threshold, self.margin)  # ValueError for a margin that leaves no cut

    def kept_retention(self, days: object) -> float | None:
        """The retention a store keeps with its faces (None: none yet) after this run's: adopted unless this run
        gave its own, which the store keeps instead. FacerecError for a kept value out of bounds."""
        if self.retention_given:
            return self.retention_days
        if days is not None and not retention_fits(days):
            raise FacerecError(f"the retention kept with the unknown faces ({days!r:.40}) is not a number of days "
                               f"above 0, at most {MAX_RETENTION_DAYS:g}: give --unknowns-days to replace it")
        if days is not None:
            self.retention_days = float(days)  # type: ignore[arg-type]
        return days  # type: ignore[return-value]

    def dropped_oldest(self, count: int, where: str) -> None:
        """`count` faces were dropped for the maximum: warn once per run (per store opened)."""
        if count and not self.warned:
            self.warned = True
            self.on_warning(f"{where} keeps at most {self.max_faces:,} unknown faces: the oldest are dropped "
                            "(told once per run)")


def retention_fits(days: object) -> bool:
    """Whether `days` can be a retention kept with the faces: a number above 0, at most MAX_RETENTION_DAYS."""
    return type(days) in (int, float) and 0 < days <= MAX_RETENTION_DAYS  # type: ignore[operator]


@dataclass(frozen=True)
class Placement:
    """Where `place_track` puts a track: not kept (an ignored person), into group `group`, or (None) a new group."""

    kept: bool
    group: int | None = None


def track_faces(track: KeptTrack) -> tuple[list[KeptFace], np.ndarray]:
    """The faces a store keeps of `track` (its FACES_PER_TRACK best by quality) and their vectors as one float32
    array; ValueError for a track no store should keep (no face, numbers that are not finite, vectors of
    different sizes)."""
    problem = text_problem(track.camera)
    if problem:
        raise ValueError(f"a kept track's camera name {problem}")
    if not isinstance(track.track, (int, np.integer)) or not 0 <= int(track.track) < MAX_TRACK:
        raise ValueError(f"a kept track's number is a whole number from 0 to 2**62, not {track.track!r:.40}")
    faces = sorted(track.faces, key=lambda face: -face.quality)[:FACES_PER_TRACK]
    if not faces:
        raise ValueError("a kept track has at least one face")
    try:
        vectors = np.array([np.asarray(face.vector, np.float32).reshape(-1) for face in faces], np.float32)
    except ValueError:
        raise ValueError("the faces of a kept track have vectors of different sizes") from None
    problem = video_problem(track.video)
    if problem:
        raise ValueError(f"a kept track's video position {problem}")
    numbers = [track.first_seen, track.last_seen, *(face.quality for face in faces), *(face.seen for face in faces)]
    if not (np.isfinite(vectors).all() and np.isfinite(numbers).all() and vectors.shape[1]):
        raise ValueError("a kept track's times, qualities and vectors must be finite numbers")
    return faces, vectors


def text_problem(text: object) -> str | None:
    """Why `text` cannot be kept as a camera or person name (what every store can write and read back), or None."""
    if type(text) is not str:
        return "is not text"
    if len(text) > MAX_TEXT:
        return f"is longer than {MAX_TEXT:,} characters"
    try:
        text.encode("utf-8")
    except UnicodeError:
        return "is not UTF-8"
    return None


def place_track(track: np.ndarray, vectors: np.ndarray, owners: np.ndarray, negative: np.ndarray, threshold: float,
                margin: float = DEFAULT_MARGIN) -> Placement:
    """Where a new track goes, given every kept vector, its group id (`owners`) and whether it is a negative
    (of an ignored group). Within `threshold` of a negative: not kept. Else grouping.Groups' rule among the
    groups still to review: the nearest within the cut, or a new group."""
    if not len(owners):
        return Placement(True, None)
    vectors = np.asarray(vectors, dtype=np.float64).reshape(len(owners), -1)
    owners = np.asarray(owners, dtype=np.int64)
    negative = np.asarray(negative, dtype=bool)
    if negative.any():
        ignored = Groups.of(vectors[negative], np.zeros(int(negative.sum()), np.int64), threshold, margin)
        if ignored.distances(track).min() < threshold:
            return Placement(False)
    live = ~negative
    ids, inverse = np.unique(owners[live], return_inverse=True)
    groups = Groups.of(vectors[live], inverse, threshold, margin)
    distances = groups.distances(track)
    if len(distances) and distances.min() <= groups.cut:
        return Placement(True, int(ids[distances.argmin()]))
    return Placement(True, None)


def stable_ids(old: list[int], labels: np.ndarray, new_id: Callable[[], int]) -> list[int]:
    """The group id of each track after a regroup gave it `labels`, keeping old ids where groups survive: the
    new group holding most tracks of an old group keeps its id (largest overlaps first, each id once); the
    others get ids from `new_id()`."""
    overlaps = Counter(zip(labels.tolist(), old))
    taken: dict[int, int] = {}  # new label -> id
    used: set[int] = set()
    for (label, old_id), _ in sorted(overlaps.items(), key=lambda item: (-item[1], item[0][1], item[0][0])):
        if label not in taken and old_id not in used:
            taken[label] = old_id
            used.add(old_id)
    for label in sorted(set(labels.tolist()) - set(taken)):
        taken[label] = new_id()
    return [taken[label] for label in labels.tolist()]


def faces_to_drop(seen: np.ndarray, order: np.ndarray, now: float, max_faces: int,
                  retention_days: float) -> tuple[np.ndarray, int]:
    """Which faces the bounds drop (a mask), and how many of them only for the maximum: those seen more than
    `retention_days` before `now`, then the oldest (by `seen`, then `order`) beyond `max_faces`."""
    seen = np.asarray(seen, dtype=np.float64)
    drop = seen < now - retention_days * DAY_SECONDS
    left = np.flatnonzero(~drop)
    excess = len(left) - max_faces
    if excess > 0:
        oldest = left[np.lexsort((np.asarray(order)[left], seen[left]))[:excess]]
        drop[oldest] = True
    return drop, max(excess, 0)


def video_problem(video: object) -> str | None:
    """Why `video` cannot be kept as a track's place in a video file (checked on writing and on reading), or None
    (for None too: a live camera's track has none)."""
    if video is None:
        return None
    if not isinstance(video, VideoSpan):
        return "is not a VideoSpan"
    problem = text_problem(video.file)
    if problem:
        return f"names a file that {problem}"
    if not all(type(value) in (int, float) and math.isfinite(value) for value in (video.first, video.last)) \
            or not 0 <= video.first <= video.last <= MAX_VIDEO_SECONDS:
        return f"is not two positions from 0 to {MAX_VIDEO_SECONDS:g} s, the first not after the last"
    return None


def video_spans(spans: Iterable[VideoSpan | None]) -> tuple[VideoSpan, ...]:
    """A group's spans: one per file, from its tracks' earliest first position to their latest last, by name."""
    merged: dict[str, VideoSpan] = {}
    for span in spans:
        if span is None:
            continue
        seen = merged.get(span.file)
        merged[span.file] = span if seen is None else VideoSpan(span.file, min(seen.first, span.first),
                                                                max(seen.last, span.last))
    return tuple(merged[name] for name in sorted(merged))

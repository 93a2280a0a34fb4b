"""Where unknown faces are kept, beside the gallery they were not found in: the interface every kind implements.

The recogniser hands a finished Unknown track (`KeptTrack`: its best few crops with their vectors) to
`UnknownStore.add`; the store groups it with earlier tracks (grouping.py), bounds what it keeps (a
maximum number of faces, a retention in days) and answers the questions of `unknowns.py` and the web
page's Unknown tab. A file gallery keeps its unknowns beside the embeddings file, a PostgreSQL gallery
in tables of the same database, so many cameras pool theirs. `open_unknowns` (the package's) picks the kind;
this module imports neither kind, so that both share its types.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ContextManager

import numpy as np

from ..errors import FacerecError

MAX_FACES = 20_000  # faces kept at most (all groups together); beyond, the oldest go first, with one warning
RETENTION_DAYS = 30.0  # a face older than this (by when it was seen) is forgotten, unless the store keeps another
MAX_RETENTION_DAYS = 36_500.0  # a retention kept with the faces is at most this (100 years)
FACES_PER_TRACK = 5  # best crops kept of one track, by face quality


class NoSuchGroup(FacerecError):
    """The group asked for is not (or no longer) one to review: never made, named, ignored, merged or forgotten."""

    def __init__(self, group: int, what: str = "to review") -> None:
        super().__init__(f"there is no unknown group {group} {what}: `unknowns.py list` shows them")
        self.group = group


@dataclass(frozen=True)
class KeptFace:
    """One face crop of an unknown track: the JPEG bytes, its unit vector, its quality score and when it was seen."""

    jpeg: bytes
    vector: np.ndarray  # float32, (d,), unit length
    quality: float  # stages/quality.py, 0..1
    seen: float  # seconds since the epoch


@dataclass(frozen=True)
class VideoSpan:
    """Where in a video FILE a track was seen (a live camera's tracks have none: their times say when): the
    file's name and the positions, in seconds from its start, of the track's first and last frames."""

    file: str
    first: float
    last: float


@dataclass(frozen=True)
class KeptTrack:
    """A track that stayed Unknown until it ended: at most FACES_PER_TRACK faces, best quality first."""

    camera: str
    track: int
    first_seen: float  # seconds since the epoch
    last_seen: float
    faces: tuple[KeptFace, ...]
    video: VideoSpan | None = None  # a video file's track: where in the file (first/last_seen: when processed)


@dataclass(frozen=True)
class UnknownGroup:
    """A candidate person: the tracks grouped together, as `unknowns.py list --json` shows it."""

    group: int  # stable id: kept across runs, processes and regroups where the group survives
    faces: int
    tracks: int
    first_seen: float
    last_seen: float
    cameras: tuple[str, ...]
    videos: tuple[VideoSpan, ...] = ()  # its tracks from video files: one span per file (rules.video_spans)
    live: bool = True  # some of its tracks are a live camera's (no VideoSpan): its times say when they were seen


class UnknownStore(ABC):
    """Unknown faces of one gallery. Every method is one transaction: another process sees all of it or none."""

    location: str  # for messages: the folder, or the URL with any password masked

    @abstractmethod
    def add(self, track: KeptTrack) -> int | None:
        """Keep the track and group it (grouping.Groups' rule); its group's id, or None when it was not kept
        because it is within the profile's threshold of an ignored group (ignored people are not kept again)."""

    @abstractmethod
    def groups(self) -> list[UnknownGroup]:
        """The groups still to review (not ignored, not named), largest first."""

    def group_of(self, vectors: np.ndarray) -> int | None:
        """The group to review a track of these unit vectors (an (n, d) array) would join by `add`'s rule, without
        keeping anything; None if it would start a group, would not be kept, or its vectors do not fit (and from
        a store that cannot tell)."""
        return None

    @abstractmethod
    def best_faces(self, group: int, limit: int = FACES_PER_TRACK) -> list[KeptFace]:
        """The group's best faces by quality (FacerecError for a group that does not exist)."""

    @abstractmethod
    def ignore(self, group: int) -> None:
        """Never propose the group again; its faces are dropped, its vectors kept as a negative."""

    @abstractmethod
    def merge(self, into: int, other: int) -> None:
        """`other`'s tracks join `into`; `other` is gone."""

    @abstractmethod
    def named(self, group: int, person: str) -> None:
        """The group is now `person` (its crops were enrolled): it leaves the list, its crops and vectors are
        deleted, its sightings carry the name (the file: its tracks are kept under the name until the retention
        ends; PostgreSQL: they become facerec_sightings rows of `person`)."""

    @abstractmethod
    def forget(self, group: int | None) -> int:
        """Delete a group (None: every group, ignored and named ones included) for good: crops, vectors and
        tracks. Returns how many faces were deleted."""

    @abstractmethod
    def regroup(self) -> None:
        """Regroup every kept track from scratch (grouping.regroup), keeping ids where groups survive."""

    @abstractmethod
    def held(self) -> ContextManager[None]:
        """The writers' lock, held across several steps (naming: read the crops, enrol them, mark the group
        named) so that no other writer (forget, ignore, merge, add), of this process or another, changes the
        store in between; the changes made inside take it again freely."""

    def expire_negatives(self) -> int:
        """Drop the gallery's negative examples kept longer ago than the retention kept with these faces (it
        applies to both: unknowns/aging.py), saying how many in one warning; how many. Every kind does it by
        itself after its changes, at most once an hour; a run that opens the store calls this first."""
        return 0

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> UnknownStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

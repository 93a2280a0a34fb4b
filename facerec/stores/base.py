"""The seam every gallery store sits behind: an embeddings file today, a PostgreSQL database for many cameras.

Scripts open a store with `facerec.stores.open_store(PATH_OR_URL)` and use only what is
declared here, so they never know which kind they hold. Adding a kind of store means
adding one module with one `Store` subclass and one line in `open_store`.

    load()          the whole gallery, as one in-memory Gallery snapshot
    open_writer()   an enrolment: checked before any work, one image recorded at a time
    watch()         be told when someone else changed the gallery (live updates)
    sighting_log()  record who was seen, by which camera (where the store can keep it)
    add_negative()  keep a face as "not this person" (a negative example: see docs/negatives.md)
"""

from __future__ import annotations

import re
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable
from urllib.parse import unquote

import numpy as np

from ..errors import FacerecError

# A file written by the seed scripts records no profile; they used OpenFace.
LEGACY_PROFILE = "openface"


# A query parameter (at each ? and &, overlapping: a value may hold another ?): its name and value.
_QUERY_PARAMETER = re.compile(r"(?=[?&]([^=&?]*)=([^&]*))")


def password_spans(url: str) -> list[tuple[int, int]]:
    """Where `url` may hold a password, as sorted (start, end) offsets, found by the URL's structure, not by
    searching its text (a password "e" is not every e): the user-info's, from its first ':' to the last '@'
    after it, and the value of each password= parameter. Taken as widely as any reader could take it (libpq
    ends the user-info at the first '@' or '/', a person at the last '@'), so that no part of a password of
    a malformed URL is outside them."""
    begin = url.find("://") + 3
    if begin < 3:
        return []
    spans = []
    colon, last_at = url.find(":", begin), url.rfind("@", begin)
    if 0 <= colon < last_at:
        spans.append((colon + 1, last_at))
    spans += [match.span(2) for match in _QUERY_PARAMETER.finditer(url, begin)
              if unquote(match.group(1)).strip().lower() == "password"]
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def unclear_password(url: str) -> bool:
    """Whether readers could disagree on where `url`'s user:password@ ends: its user-info holds a raw '/' or
    '@' (libpq stops at the first of them, a person at the last '@', and the host and port libpq then
    reads would be parts of the password)."""
    begin = url.find("://") + 3
    colon, last_at = url.find(":", begin), url.rfind("@", begin)
    return begin >= 3 and 0 <= colon < last_at and any(mark in url[begin:last_at] for mark in "/@")


def starred(url: str, start: int = 0, end: int | None = None) -> str:
    """`url[start:end]` with each password in the URL (password_spans) replaced by ***."""
    end = len(url) if end is None else end
    out, at = [], start
    for span_start, span_end in password_spans(url):
        if span_end <= at or span_start >= end:
            continue
        out += [url[at:max(span_start, at)], "***"]
        at = min(span_end, end)
    out.append(url[at:end])
    return "".join(out)


def masked(location: str) -> str:
    """`location` fit to print: a URL without its password (in the user part or as ?password=), a path as it is.

    Without the password, not with stars: the result also goes into `next:` hints, which then
    work as they are (the password comes from PGPASSFILE or PGPASSWORD, as libpq finds it).
    """
    if "://" not in location:
        return location
    out, at = [], 0
    for start, end in password_spans(location):
        if location[start - 1] == ":":  # user:password@ -> user@ (and no @ without a user)
            user_start = location.find("://") + 3
            out.append(location[at:start - 1])
            at = end + 1 if start - 1 == user_start else end
        else:  # ?password=...&next -> ?next
            delimiter = max(location.rfind("?", 0, start), location.rfind("&", 0, start))
            out.append(location[at:delimiter])
            at = end
            if location[delimiter] == "?":
                at += 1 if location[end:end + 1] == "&" else 0
                out.append("?" if at < len(location) else "")
    out.append(location[at:])
    return "".join(out)


class NoGalleryYet(FacerecError):
    """Store.load found no gallery at the location yet (the pickle: no file); a server may start empty."""


class GalleryBusy(FacerecError):
    """Another writer holds the gallery (open_writer): one writer at a time, so that neither undoes the other."""


# How long a writer waits by default for another to let go before it is refused (GalleryBusy): long enough for
# a page's delete to rewrite a large file, short enough that a page never waits for an enrolment of an hour.
WRITER_WAIT_SECONDS = 5.0
_TURN_POLL_SECONDS = 0.2


def take_turn(try_take: Callable[[], bool], holder: Callable[[], str], what: str, wait: float | None) -> None:
    """Call `try_take` until it takes the writers' lock of `what` ("embeddings file F"). After `wait` seconds:
    GalleryBusy naming the `holder()`. `wait` None: wait for as long as it takes, saying once on standard
    error for whom (a script run while another enrols starts when that one has finished)."""
    deadline = None if wait is None else time.monotonic() + wait
    told = False
    while not try_take():
        if deadline is not None and time.monotonic() >= deadline:
            raise GalleryBusy(f"{what} is being written by {holder()}: one writer at a time, so that neither undoes "
                              "the other's changes; try again when it has finished")
        if deadline is None and not told:
            print(f"note: {what} is being written by {holder()}: waiting until it has finished (one writer at a "
                  "time)", file=sys.stderr, flush=True)
            told = True
        time.sleep(_TURN_POLL_SECONDS)


@dataclass(frozen=True)
class Negatives:
    """Faces the user said are not a person ("Not PERSON"): one unit vector each, with that person's name and
    when it was kept.

    Kept with the gallery by its store; matching.Matcher names a face PERSON only if it is nearer PERSON's
    photos than PERSON's negatives (docs/negatives.md). They age out with the unknowns' retention
    (Store.expire_negatives)."""

    vectors: np.ndarray  # (N, D) float32
    names: list[str]  # the person each vector is not
    # when each was kept (seconds since the epoch, float64); NaN: not known (an embeddings file written before
    # times were kept), until expire_negatives counts it as kept then
    made: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def __post_init__(self) -> None:
        if not len(self.made) and self.names:  # none given: not known
            object.__setattr__(self, "made", np.full(len(self.names), np.nan))
        elif len(self.made) != len(self.names):
            raise ValueError(f"{len(self.made)} times for {len(self.names)} negative examples")

    @classmethod
    def none(cls, dimension: int = 0) -> Negatives:
        return cls(np.zeros((0, dimension), np.float32), [])

    def __len__(self) -> int:
        return len(self.names)

    def without(self, person: str, vector: np.ndarray) -> Negatives | None:
        """These negatives without the first of `person` whose vector is `vector` exactly; None if there is none."""
        row = np.asarray(vector, np.float32).reshape(-1)
        for index, name in enumerate(self.names):
            if name == person and self.vectors.shape[1] == row.shape[0] and np.array_equal(self.vectors[index], row):
                return self.only(np.arange(len(self)) != index)
        return None

    def only(self, keep: np.ndarray) -> Negatives:
        """These negatives where `keep` (a bool per negative) is true."""
        return Negatives(self.vectors[keep], [name for name, kept in zip(self.names, keep) if kept], self.made[keep])

    def added(self, person: str, vector: np.ndarray, made: float) -> Negatives:
        """These negatives and one more, kept at `made`."""
        row = np.asarray(vector, np.float32).reshape(1, -1)
        vectors = np.concatenate([self.vectors, row]) if len(self) else row
        return Negatives(vectors, [*self.names, person], np.append(self.made, float(made)))

    def aged(self, before: float, now: float) -> tuple[Negatives, int] | None:
        """These negatives with those kept before `before` dropped and those of no known time counted as kept
        `now`, and how many were dropped; None when that changes nothing."""
        unknown = np.isnan(self.made)
        expired = self.made < before  # (NaN compares False: not expired)
        if not unknown.any() and not expired.any():
            return None
        stamped = Negatives(self.vectors, self.names, np.where(unknown, float(now), self.made))
        return stamped.only(~expired), int(expired.sum())


@dataclass
class Gallery:
    """A gallery as held in memory: vectors with their person names and source images, the model profile that
    made them, and the record of each image enrolled. A Store keeps it; matching.VectorIndex searches its vectors."""

    vectors: np.ndarray
    names: list[str]
    paths: list[str]
    profile: str = LEGACY_PROFILE
    models: dict[str, Any] = field(default_factory=dict)
    files: Mapping[str, dict[str, Any]] = field(default_factory=dict)  # {image key: {"size", "mtime_ns", "status"}}
    profile_recorded: bool = True  # False for a classic tutorial file: the profile is assumed
    negatives: Negatives = field(default_factory=Negatives.none)  # faces that are not a person (docs/negatives.md)

    @classmethod
    def empty(cls, profile: str, models: dict[str, Any], dimension: int) -> Gallery:
        return cls(np.zeros((0, dimension), np.float32), [], [], profile, dict(models), {})

    def __len__(self) -> int:
        return len(self.names)

    @property
    def people(self) -> list[str]:
        """Each person's name once, in order of first appearance."""
        return list(dict.fromkeys(self.names))


EmbeddingStore = Gallery  # its name before issue 20


@dataclass(frozen=True)
class GalleryCounts:
    """What a gallery holds after an enrolment (StoreWriter.finish): its vectors and people, not the gallery itself."""

    vectors: int
    people: int


@dataclass(frozen=True)
class Sighting:
    """One visit of a person (or an unknown face) to a camera, as events/presence.py opens and ends it: a
    row of the sightings log, told once when the visit begins (`left` None) and again when it ends."""

    visit: int  # its number in the recogniser's run: the arrival and the departure of one visit share it
    name: str
    arrived: float  # seconds since the epoch (time.time()): when the visit began
    left: float | None = None  # when the person was last seen, once the visit has ended
    unknown_group: int | None = None  # an unknown face of a kept group (--keep-unknowns)
    distance: float | None = None  # the face's distance when it arrived (None: the gallery was empty)


class SightingLog(ABC):
    """Where the visits of one camera go; `log` never blocks recognition (a slow or lost database only
    delays the rows)."""

    @abstractmethod
    def log(self, sighting: Sighting) -> None:
        """Queue a visit's row: its arrival, or its departure (which completes the same row)."""

    @abstractmethod
    def close(self) -> None:
        """Write what is queued (waiting a bounded time), then stop."""


class Watch(ABC):
    """A running subscription to a store's changes (see Store.watch)."""

    @abstractmethod
    def stop(self) -> None:
        """Stop being told; returns once the background thread has ended."""


class ToldOnce:
    """A watch's trouble (the store unusable, the database lost), told once however often it is met again,
    and its end told once too: every store's watch tells its user alike."""

    def __init__(self, tell: Callable[[str], None]) -> None:
        self._tell = tell
        self.now = False  # in trouble now

    def trouble(self, message: str) -> None:
        if not self.now:
            self.now = True
            self._tell(message)

    def over(self, message: str) -> None:
        if self.now:
            self.now = False
            self._tell(message)


class StoreWriter(ABC):
    """One enrolment into a store, from one dataset folder.

    A writer holds the gallery of its dataset from open_writer until `finish` or `close`: another writer
    of it waits meanwhile, or is refused (GalleryBusy), so two writers never undo each other's changes.
    `previous` is what the store already knows of this dataset's images (known_images), made by the same
    models (None: nothing reusable, every image is embedded again); its `files` records and
    vectors let enrolment skip unchanged images. Images are recorded one at a time; what a
    run that dies before `finish` leaves behind is the store's to say (the pickle: the file
    as it was; PostgreSQL: the images recorded so far, each whole).
    """

    previous: Gallery | None
    warning: str | None  # why what was there will be replaced or not reused, for the user

    @abstractmethod
    def record(self, key: str, signature: dict[str, int], status: str, person: str,
               vector: np.ndarray | None) -> None:
        """The outcome for image `key` (its path relative to the dataset): used with its vector, or skipped
        with `status` the reason. Replaces what was known of that image."""

    @abstractmethod
    def remove(self, keys: list[str]) -> None:
        """Forget these images of this dataset (deleted photos and people)."""

    @abstractmethod
    def finish(self) -> GalleryCounts:
        """Make the enrolment visible to every reader (the pickle writes its file atomically) and return what the
        whole gallery now holds (counts: Store.load gives the gallery, which a store may have at hand then).
        FacerecError if it cannot; the store is then as described above. Lets the gallery go for other writers
        (close)."""

    def close(self) -> None:
        """Let the gallery go for other writers without finishing (idempotent): what was not finished is
        as described above."""

    def __enter__(self) -> StoreWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class Store(ABC):
    """A gallery of face vectors that scripts read, enrol into and follow."""

    location: str  # for messages: the path, or the URL with any password masked

    @abstractmethod
    def load(self) -> Gallery:
        """The whole gallery now. FacerecError naming `location` if it cannot be read or used."""

    @abstractmethod
    def known_images(self, dataset: Path) -> Gallery:
        """What the store holds of `dataset`'s images, keyed (`paths`, `files`) by their path relative to it:
        the statuses a gallery page shows, and what an enrolment of that dataset may reuse."""

    @abstractmethod
    def check_writable(self, force: bool = False) -> None:
        """Refuse (FacerecError), before any model is loaded or downloaded, a store an enrolment could not
        write; open_writer checks again, with the models."""

    @abstractmethod
    def open_writer(self, dataset: Path, models: dict[str, Any], dimension: int,
                    force: bool = False, wait: float | None = WRITER_WAIT_SECONDS) -> StoreWriter:
        """Start an enrolment of `dataset` made with `models` (enrolment.models_identity) giving
        `dimension`-d vectors; check, before any work, that it can be written. FacerecError if not.
        While another writer holds the gallery, wait for it: at most `wait` seconds (then GalleryBusy),
        None: as long as it takes (see take_turn)."""

    @abstractmethod
    def watch(self, on_change: Callable[[Gallery], None],
              on_problem: Callable[[str], None]) -> Watch:
        """Call `on_change(gallery)` from a background thread whenever the gallery changed (elsewhere or
        here), with the gallery already loaded; `on_problem(message)` when the store became unreachable
        (once) and when it is back. The caller keeps using the gallery it has meanwhile."""

    @abstractmethod
    def sighting_log(self, camera: str) -> SightingLog:
        """A log of the sightings of `camera`; FacerecError if this kind of store cannot keep one."""

    def add_negative(self, person: str, vector: np.ndarray, models: dict[str, Any]) -> Gallery:
        """Keep `vector` (made by `models`, enrolment.models_identity) as a face that is not `person`, who must be in
        the gallery; one transaction (the pickle: the file rewritten atomically), which watchers see as a change.
        Returns the gallery as it now is. FacerecError if the gallery cannot take it."""
        raise FacerecError(f"{self.location} cannot keep negative examples")

    def expire_negatives(self, before: float, now: float) -> int:
        """Drop the negative examples kept before `before` (seconds since the epoch), and count those whose time is
        not known (kept before times were) as kept `now`: they expire one retention later, never silently at an
        upgrade. One transaction watchers see as a change, none when nothing changes (a reader who may not write
        is then never refused). How many were dropped; FacerecError if they cannot be."""
        return 0

    def remove_negative(self, person: str, vector: np.ndarray) -> Gallery:
        """Remove one negative example of `person` whose vector is `vector` exactly (as listed from this store),
        in one transaction watchers see as a change. Returns the gallery as it now is; FacerecError if there is
        no such negative (removed meanwhile)."""
        raise FacerecError(f"{self.location} keeps no negative examples")

    def close(self) -> None:
        """Release connections; the store is not used afterwards."""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()



"""Who is visiting one camera: a video's tracks, after each frame, turned into arrivals and departures of visits.

A visit is a person (or an unknown face) in view of one camera, open from the frame they are first named
until they have not been seen for `away_seconds` (or the source ends). Tracks come and go within it: a
face lost for a moment, a new track of the same person, a track flickering to Unknown and back change
nothing. Every sink sees the same visits.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Protocol

import numpy as np

from ..matching import UNKNOWN, Matcher
from ..tracking import Box, Track
from .sink import Event, EventSink

AWAY_SECONDS = 30.0  # --away-seconds: unseen this long on a camera, a person has left it


class Strangers(Protocol):
    """Which kept group of unknown faces a track's vectors fall in (--keep-unknowns): (group, visits) or None."""

    def recognise(self, vectors: np.ndarray) -> tuple[int, int] | None: ...


@dataclass
class _Sighting:
    """Where and when a visit's face was seen (by which track)."""

    time: float
    distance: float | None
    box: Box
    frame: int
    track: int


@dataclass
class _Visit:
    name: str
    arrival: _Sighting
    last: _Sighting
    unknown_group: int | None = None
    visits: int | None = None
    number: int = 0  # the visit's number in its Presence: what pairs its departure with its arrival


# A visit's key: ("person", name), ("group", kept group id) or ("track", track id) for an Unknown face
_Key = tuple[str, object]


class Presence:
    """Tells `sink` when a visit to `camera` begins (`arrived`) and ends (`left`), and which people the gallery knows.

    A named track seen in a frame opens its person's visit, or keeps it open. A track that has carried a
    person's name stays that person's while it turns Unknown (the flicker of a face turning away); a track
    renamed to another person for good (tracks' `held` rule) opens the other's visit, and the first person
    leaves when unseen for `away_seconds`. An Unknown track opens a visit of its own, or, with `strangers`
    (--keep-unknowns), its kept group's visit (`unknown_group` and the group's `visits` in the events); an
    Unknown visit of one track ends at once if that track is then named. Arrivals of a frame are told
    before its departures, so a sink's list of who is in view never empties between two visits.
    `saw` runs on the video loop; the sinks' queues do the rest. After `close` (another thread may call it:
    a server stopping) it tells nothing more.
    """

    def __init__(self, sink: EventSink, camera: str, clock: Callable[[], float] = time.time,
                 away_seconds: float = AWAY_SECONDS, strangers: Strangers | None = None) -> None:
        self.sink, self.camera, self._clock = sink, camera, clock
        self.away_seconds = away_seconds
        self.strangers = strangers
        self._visits: dict[_Key, _Visit] = {}  # open visits, in the order they began
        self._tracks: dict[int, _Key] = {}  # live track -> the visit it counts for
        self._group_visits: dict[int, int] = {}  # kept group -> its visits, as `strangers` said
        self._matcher: Matcher | None = None
        self._people: set[str] | None = None
        self._opened = 0  # visits opened so far
        self._lock = threading.Lock()
        self._closed = False

    def saw(self, tracks: Iterable[Track], frame_index: int, matcher: Matcher) -> None:
        """After a frame: `tracks` are the tracker's live tracks, `matcher` the one naming faces now."""
        with self._lock:
            if not self._closed:
                self._saw(list(tracks), frame_index, matcher)

    def _saw(self, tracks: list[Track], frame_index: int, matcher: Matcher) -> None:
        if matcher is not self._matcher:  # a new gallery (or the first): tell the sink whom it knows
            self._matcher = matcher
            people = set(matcher.index.names)
            if people != self._people:
                self._people = people
                self.sink.gallery(people)
        now = self._clock()
        arrivals: list[_Visit] = []
        ended: list[_Key] = []
        for track in tracks:
            if track.match is None or track.missed:  # not named yet, or not seen in this frame
                continue
            key, previous = self._key_of(track), self._tracks.get(track.id)
            self._tracks[track.id] = key
            if previous is not None and previous != key and previous[0] == "track":
                ended.append(previous)  # an unknown face that turned out to be someone: its visit ends now
            seen = _Sighting(now, track.match.distance, track.box, frame_index, track.id)
            visit = self._visits.get(key)
            if visit is None:
                group = int(key[1]) if key[0] == "group" else None  # type: ignore[call-overload]
                name = str(key[1]) if key[0] == "person" else UNKNOWN
                self._opened += 1
                visit = self._visits[key] = _Visit(name, seen, seen, group,
                                                   None if group is None else self._group_visits.get(group), self._opened)
                arrivals.append(visit)
            else:
                visit.last = seen
        live = {track.id for track in tracks}
        for track_id in [track_id for track_id in self._tracks if track_id not in live]:
            del self._tracks[track_id]
        ended += [key for key, visit in self._visits.items()
                  if key not in ended and now - visit.last.time >= self.away_seconds]
        for visit in arrivals:
            self.sink.arrived(self._event("arrived", visit, visit.arrival))
        for key in ended:
            self._leave(key)

    def _key_of(self, track: Track) -> _Key:
        """The visit a track seen now counts for."""
        assert track.match is not None
        if track.match.name != UNKNOWN:
            return ("person", track.match.name)
        previous = self._tracks.get(track.id)
        if previous is not None:  # a person's track flickering to Unknown stays theirs; an unknown one stays put
            return previous
        if self.strangers is not None and track.vectors:
            found = self.strangers.recognise(np.asarray(list(track.vectors), np.float32))
            if found is not None:
                group, visits = found
                self._group_visits[group] = visits
                return ("group", group)
        return ("track", track.id)

    def available(self, running: bool) -> None:
        """The camera gives frames again (True) or has gone and is being reconnected (False): MQTT's status."""
        with self._lock:
            if not self._closed:
                self.sink.available(running)

    def end(self) -> None:
        """The source ended (or starts again, with a new tracker): every visit ends."""
        with self._lock:
            for key in list(self._visits):
                self._leave(key)
            self._tracks.clear()

    def close(self) -> None:
        """Every visit ends; then each sink delivers what waits (for a while) and closes."""
        self.end()
        with self._lock:
            self._closed = True
        self.sink.close()

    def _leave(self, key: _Key) -> None:
        visit = self._visits.pop(key, None)
        if visit is not None:
            self.sink.left(self._event("left", visit, visit.last))

    def _event(self, kind: str, visit: _Visit, seen: _Sighting) -> Event:
        return Event(kind, visit.name, self.camera, seen.track, seen.time, seen.distance, seen.box, seen.frame,
                     visit.unknown_group, visit.visits, visit.number)

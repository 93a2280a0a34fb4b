"""Who is in view of one camera: a video's tracks, after each frame, turned into arrivals and departures."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterable

from ..matching import Matcher
from ..tracking import Box, Track
from .sink import Event, EventSink


@dataclass
class _InView:
    """A track announced as `name`, and where and when it was last seen."""

    name: str
    time: float
    distance: float | None
    box: Box
    frame: int


class Presence:
    """Tells `sink` when a track arrives and leaves, and which people the gallery knows.

    A track arrives when it first carries a name (in the frame it starts: it is embedded at once), and
    again under a new name when its name changes (having left under the old one). It leaves when the
    tracker forgets it (missed too long, a cut, a new id because it became someone else) or when the
    source ends (`end`). A departure carries the time, box and frame where the track was last seen.
    `saw` runs on the video loop: it compares ids and names; the sink's queue does the rest. After
    `close` (another thread may call it: a server stopping) it tells nothing more.
    """

    def __init__(self, sink: EventSink, camera: str, clock: Callable[[], float] = time.time) -> None:
        self.sink, self.camera, self._clock = sink, camera, clock
        self._in_view: dict[int, _InView] = {}
        self._matcher: Matcher | None = None
        self._people: set[str] | None = None
        self._lock = threading.Lock()
        self._closed = False

    def saw(self, tracks: Iterable[Track], frame_index: int, matcher: Matcher) -> None:
        """After a frame: `tracks` are the tracker's live tracks, `matcher` the one naming faces now."""
        with self._lock:
            if not self._closed:
                self._saw(tracks, frame_index, matcher)

    def _saw(self, tracks: Iterable[Track], frame_index: int, matcher: Matcher) -> None:
        if matcher is not self._matcher:  # a new gallery (or the first): tell the sink whom it knows
            self._matcher = matcher
            people = set(matcher.index.names)
            if people != self._people:
                self._people = people
                self.sink.gallery(people)
        now = self._clock()
        live = {track.id: (track, track.match) for track in tracks if track.match is not None}
        arrivals = []
        for track_id, (track, match) in live.items():
            seen = self._in_view.get(track_id)
            if seen is not None and seen.name != match.name:
                self._leave(track_id)
                seen = None
            if seen is None:
                arrivals.append(track_id)
            if seen is None or track.missed == 0:
                self._in_view[track_id] = _InView(match.name, now, match.distance, track.box, frame_index)
        for track_id in [track_id for track_id in self._in_view if track_id not in live]:
            self._leave(track_id)
        for track_id in arrivals:
            self.sink.arrived(self._event("arrived", track_id))

    def end(self) -> None:
        """The source ended (or starts again, with a new tracker): everyone in view leaves."""
        with self._lock:
            for track_id in list(self._in_view):
                self._leave(track_id)

    def close(self) -> None:
        """Everyone in view leaves; then each sink delivers what waits (for a while) and closes."""
        self.end()
        with self._lock:
            self._closed = True
        self.sink.close()

    def _leave(self, track_id: int) -> None:
        self.sink.left(self._event("left", track_id))
        del self._in_view[track_id]

    def _event(self, kind: str, track_id: int) -> Event:
        seen = self._in_view[track_id]
        return Event(kind, seen.name, self.camera, track_id, seen.time, seen.distance, seen.box, seen.frame)

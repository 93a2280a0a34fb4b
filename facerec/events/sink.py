"""What a sink is told (an Event), the interface every sink implements, and the queue that keeps sinks off the video."""

from __future__ import annotations

import collections
import datetime
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Callable, Iterable

from ..text import plural, printable

# Events (and gallery changes) waiting for one sink at most; beyond, the oldest is dropped (with one warning).
QUEUE_LIMIT = 1000
# At the end of a run a sink gets this long to deliver what waits (a broker that is down may never come back).
CLOSE_SECONDS = 10.0
# --seen-minutes at most: a year (a timer beyond threading.TIMEOUT_MAX, 292 years, fails in its own thread)
MAX_SEEN_MINUTES = 525_600


@dataclass(frozen=True)
class Event:
    """A visit to a camera beginning (a person first named there) or ending (unseen for --away-seconds, or the
    source ended); see presence.py."""

    type: str  # "arrived" or "left"
    name: str  # a gallery name, or Unknown
    camera: str
    track: int
    time: float  # seconds since the epoch: when the track got its name, or when it was last seen
    distance: float | None
    box: tuple[int, int, int, int]
    frame: int  # the source's frame index of that moment
    unknown_group: int | None = None  # an Unknown face in a kept group of unknown faces (--keep-unknowns)
    visits: int | None = None  # ... that group's visits so far (its kept tracks), this one included
    visit: int = 0  # the visit's number in its Presence (the same in its arrival and departure); not sent

    def as_json(self) -> dict:
        """The event as MQTT and webhooks carry it (time in ISO 8601, UTC; `unknown_group` and `visits` only
        for a stranger seen before)."""
        stamp = datetime.datetime.fromtimestamp(self.time, datetime.timezone.utc).isoformat(timespec="milliseconds")
        made = {"type": self.type, "name": printable(self.name), "camera": printable(self.camera), "track": self.track,
                "time": stamp, "distance": None if self.distance is None else round(self.distance, 4),
                "box": list(self.box), "frame": self.frame}
        if self.unknown_group is not None:
            made |= {"unknown_group": self.unknown_group, "visits": self.visits}
        return made


class EventSink(ABC):
    """Somewhere events go (an MQTT broker, a URL). Methods may block: QueuedSink calls them off the video loop."""

    undelivered = 0  # events it gave up on (its own count; the QueuedSink adds those still waiting at the end)

    @abstractmethod
    def arrived(self, event: Event) -> None: ...

    @abstractmethod
    def left(self, event: Event) -> None: ...

    def gallery(self, names: set[str]) -> None:
        """The people the gallery knows now (at the start and whenever it changes); most sinks ignore it."""

    def available(self, running: bool) -> None:
        """The camera gives frames (True) or is reconnecting (False, serve.py --config); most sinks ignore it."""

    @abstractmethod
    def close(self) -> None:
        """The source ended: deliver what is pending if possible, say goodbye, free the connection."""


class OffLoop:
    """Calls made in order by a thread of its own, named `name`: callers never wait. At most `limit` calls
    wait; beyond, the oldest is dropped and `warn` is told once. close() gives them `close_seconds` to finish;
    `what` names the calls in the warnings ("events")."""

    def __init__(self, name: str, warn: Callable[[str], None], limit: int = QUEUE_LIMIT,
                 close_seconds: float = CLOSE_SECONDS, what: str = "events") -> None:
        self.name, self._warn, self.what = name, warn, what
        self.close_seconds = close_seconds
        self.dropped = 0
        self._waiting: collections.deque = collections.deque(maxlen=limit)
        self._changed = threading.Condition()
        self._closing = False
        self._thread = threading.Thread(target=self._deliver, name=f"events-{name}", daemon=True)
        self._thread.start()

    def _put(self, method: Callable, argument: object) -> None:
        with self._changed:
            if len(self._waiting) == self._waiting.maxlen:
                self.dropped += 1
                if self.dropped == 1:
                    self._warn(f"{self.name} is not keeping up: {self._waiting.maxlen} {self.what} wait; the oldest "
                               "are dropped")
            self._waiting.append((method, argument))
            self._changed.notify()

    def _deliver(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self._waiting or self._closing)
                if not self._waiting:
                    return
                method, argument = self._waiting.popleft()
            try:
                method(argument)
            except Exception as error:  # a failed call never ends the others nor the video
                self._warn(f"{self.name}: {error}")

    def _finish(self, report: bool = True) -> int:
        """Let what waits be done (for `close_seconds` at most), then stop the thread; how many were not
        done (said in a warning if `report`)."""
        with self._changed:
            self._closing = True
            self._changed.notify()
        self._thread.join(self.close_seconds)
        undone = 0
        if self._thread.is_alive():  # still waiting (a broker that is down): give up on the rest
            with self._changed:
                undone = len(self._waiting) + 1
                self._waiting.clear()
            if report:
                self._warn(f"{self.name}: {undone} {self.what} not delivered in {self.close_seconds:g} s")
        return undone


class QueuedSink(OffLoop, EventSink):
    """`sink` run by its own thread: callers never wait for it. At most `limit` calls wait; beyond, the
    oldest is dropped and `warn` is told once. close() gives the sink `close_seconds` to catch up."""

    def __init__(self, sink: EventSink, name: str, warn: Callable[[str], None], limit: int = QUEUE_LIMIT,
                 close_seconds: float = CLOSE_SECONDS) -> None:
        self.sink = sink
        self.events = 0  # arrivals and departures handed to the sink (the dropped ones too): /metrics reads it
        super().__init__(name, warn, limit, close_seconds)

    def arrived(self, event: Event) -> None:
        self.events += 1
        self._put(self.sink.arrived, event)

    def left(self, event: Event) -> None:
        self.events += 1
        self._put(self.sink.left, event)

    def gallery(self, names: set[str]) -> None:
        self._put(self.sink.gallery, set(names))

    def available(self, running: bool) -> None:
        self._put(self.sink.available, running)

    def close(self) -> None:
        """Let the sink catch up, close it, and say in one warning how many events never reached it."""
        undone = self._finish(report=False)
        self.sink.close()
        lost = undone + self.sink.undelivered
        if lost:
            waiting = f", {undone} of them still waiting after {self.close_seconds:g} s" if undone else ""
            self._warn(f"{self.name}: {plural(lost, 'event')} not delivered{waiting}")


class Sinks(EventSink):
    """Several sinks told the same things (each already queued)."""

    def __init__(self, sinks: Iterable[EventSink]) -> None:
        self.sinks = list(sinks)

    def arrived(self, event: Event) -> None:
        for sink in self.sinks:
            sink.arrived(event)

    def left(self, event: Event) -> None:
        for sink in self.sinks:
            sink.left(event)

    def gallery(self, names: set[str]) -> None:
        for sink in self.sinks:
            sink.gallery(names)

    def available(self, running: bool) -> None:
        for sink in self.sinks:
            sink.available(running)

    def close(self) -> None:
        for sink in self.sinks:
            sink.close()

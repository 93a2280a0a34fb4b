"""The sightings log (--log-sightings) as one more sink: the visits MQTT and webhooks are told, one row each.

A visit's row is queued when it begins (its arrival) and completed when it ends (its departure, with the
time the person was last seen), so the table holds exactly the visits the other sinks were told. The log
(stores.SightingLog) writes from a thread of its own and keeps a bounded queue while its database is lost:
telling it never waits, so this sink needs no QueuedSink.
"""

from __future__ import annotations

from ..stores import Sighting, SightingLog
from .sink import Event, EventSink


class SightingsSink(EventSink):
    """Tells `log` each visit: its row at the arrival, the same row completed at the departure."""

    def __init__(self, log: SightingLog) -> None:
        self.log = log
        self._open: dict[int, Event] = {}  # visit number -> its arrival, until it leaves

    def arrived(self, event: Event) -> None:
        self._open[event.visit] = event
        self.log.log(_row(event, None))

    def left(self, event: Event) -> None:
        self.log.log(_row(self._open.pop(event.visit, event), event.time))

    def close(self) -> None:
        """Nothing: the log belongs to whoever opened it (stores.open_gallery closes it, after the departures)."""


def _row(arrival: Event, left: float | None) -> Sighting:
    return Sighting(arrival.visit, arrival.name, arrival.time, left, arrival.unknown_group, arrival.distance)

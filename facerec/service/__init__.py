"""Several cameras in one process (serve.py --config): the gallery loaded once, a set of networks a usable core
(serve.py adds them to the engine: Engine.add_networks), one CameraRunner a camera (its reader keeps only the
newest frame; each frame takes whichever set is free, fairly), health and metrics.

The web app reads `health()` (/api/health) and `metrics` (/metrics), and streams each camera's view
(/video?camera=NAME). `stop` ends every camera within a few seconds: their tracks leave (departures sent),
their Unknown tracks are kept; `close` then flushes and closes the events and sightings.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Callable, Iterable

from ..config import Camera
from ..events import AWAY_SECONDS, Presence, close_events, log_visits
from ..stores import SightingLog
from ..web.engine import Engine
from .camera import RUNNING, CameraRunner
from .metrics import ServiceMetrics

STOP_SECONDS = 3.0  # for the cameras' readers to end; SIGTERM must end the process within 5 s


def log_line(camera: str | None, message: str) -> None:
    """One line on standard error with the time (UTC) and the camera: what a service's journal needs."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    print(f"{stamp} {'camera ' + camera + ': ' if camera else ''}{message}", file=sys.stderr, flush=True)


def camera_warning(camera: str) -> Callable[[str], None]:
    return lambda message: log_line(camera, f"warning: {message}")


class Service:
    """The cameras of a configuration, started at once, recognised by `engine`."""

    def __init__(self, engine: Engine, cameras: Iterable[Camera], every: int,
                 events_for: Callable[[str], Presence | None] = lambda camera: None,
                 sightings_for: Callable[[str], SightingLog | None] = lambda camera: None,
                 away_seconds: float = AWAY_SECONDS) -> None:
        # FFmpeg prints "Connection refused" at every attempt to reach a camera that is down; the service says
        # once that it went and once that it is back. Read by OpenCV when it first opens a stream: before the cameras.
        os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
        self.engine = engine
        self.metrics = ServiceMetrics(self)
        self.cameras: dict[str, CameraRunner] = {}
        self._events: list[Presence] = []
        self._sightings: list[SightingLog] = []
        try:
            for camera in cameras:
                sightings = sightings_for(camera.name)
                self._sightings += [sightings] if sightings is not None else []
                # the sightings log is one more sink of the camera's visits (--log-sightings)
                events = log_visits(events_for(camera.name), sightings, camera.name, away_seconds)
                self._events += [events] if events is not None else []
                self.cameras[camera.name] = CameraRunner(camera, engine, every, camera_warning(camera.name), events,
                                                         self.metrics.observer(camera.name))
        except BaseException:
            self.stop()
            self.close()
            raise

    def health(self) -> tuple[dict, bool]:
        """({"cameras": {NAME: ...}, "gallery_vectors": N}, whether every camera runs)."""
        cameras = {name: camera.health() for name, camera in self.cameras.items()}
        return ({"cameras": cameras, "gallery_vectors": self.gallery_size()},
                all(camera.state == RUNNING for camera in self.cameras.values()))

    def event_counts(self) -> dict[str, tuple[int, int]]:
        """sink kind (mqtt, webhook) -> (events handed to it, events it dropped), all cameras together."""
        counts: dict[str, tuple[int, int]] = {}
        for presence in self._events:
            for queued in getattr(presence.sink, "sinks", []):
                kind = type(queued.sink).__name__.removesuffix("Sink").lower()
                handed, dropped = counts.get(kind, (0, 0))
                counts[kind] = (handed + queued.events, dropped + queued.dropped)
        return counts

    def gallery_size(self) -> int:
        return len(self.engine.gallery)

    def unknowns_kept(self) -> int:
        return 0 if self.engine.keeping is None else self.engine.keeping.kept

    def stop(self, seconds: float = STOP_SECONDS) -> None:
        """End every camera (waiting `seconds` at most, all together): their tracks end now either way."""
        for camera in self.cameras.values():
            camera.stop()
        deadline = time.monotonic() + seconds
        for camera in self.cameras.values():
            camera.join(max(0.0, deadline - time.monotonic()))
        for presence in self._events:
            presence.end()  # departures of whoever was in view, also of a reader still stuck in a read

    def close(self) -> None:
        """After stop: deliver and close the events (status offline), write and close the sightings."""
        for presence in self._events:
            close_events(presence)
        for sightings in self._sightings:
            sightings.close()
        self._events, self._sightings = [], []

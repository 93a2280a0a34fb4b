"""A server-side source (--source: camera index, file or stream) shown on the page as an MJPEG stream.

One reader thread runs while at least one page watches: it recognises each
frame with the engine, draws the boxes and labels, and keeps only the newest
JPEG. Each viewer gets the newest frame whenever it changes, so a slow viewer
skips frames instead of queueing them. A file is played at its own frame rate,
from the start again at its end. With `events` (serve.py --mqtt, --webhook) the
reader runs from the start and never stops, watched or not, and tells them who
arrives and leaves (everyone leaves when a file starts again).
"""

from __future__ import annotations

import threading
import time

import cv2

from ..errors import FacerecError
from ..events import Presence
from ..recognition import annotate
from ..video import open_source
from ..tracking import Tracker
from .engine import Engine

BOUNDARY = "frame"
JPEG_QUALITY = 80
FPS_SMOOTHING = 0.9


class SourceStream:
    """The annotated frames of one --source, for any number of viewers."""

    def __init__(self, text: str, engine: Engine, events: Presence | None = None) -> None:
        self.text = text
        self.engine = engine
        self.events = events
        self.problem = ""
        self._jpeg = b""
        self._number = 0
        self._viewers = 0
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None
        if events is not None:
            self.watch()  # a viewer that never leaves: events need the source whether a page looks or not

    def watch(self) -> None:
        """A viewer arrives: start the reader if it is not running."""
        with self._changed:
            self._viewers += 1
            if self._thread is None or not self._thread.is_alive():
                self.problem = ""
                self._thread = threading.Thread(target=self._run, name="source-reader", daemon=True)
                self._thread.start()

    def leave(self) -> None:
        with self._changed:
            self._viewers -= 1

    def next_jpeg(self, after: int, timeout: float = 1.0) -> tuple[int, bytes | None]:
        """(number, JPEG) of the first frame newer than `after`, or (after, None) on a timeout or a stopped source."""
        with self._changed:
            self._changed.wait_for(lambda: self._number > after or self.problem, timeout)
            if self._number > after:
                return self._number, self._jpeg
            return after, None

    def _publish(self, jpeg: bytes) -> None:
        with self._changed:
            self._jpeg, self._number = jpeg, self._number + 1
            self._changed.notify_all()

    def _run(self) -> None:
        try:
            while self._viewers > 0:
                with open_source(self.text) as source:
                    self._play(source)
                if self.events is not None:
                    self.events.end()  # the next pass has a new tracker
                if source.spec.is_live:
                    raise FacerecError(f"video source {self.text!r} ended: {source.ended_by}")
        except FacerecError as error:
            with self._changed:
                self.problem = str(error)
                self._changed.notify_all()

    def _play(self, source) -> None:
        interval = 0.0 if source.spec.is_live else 1.0 / source.fps
        fps, previous = 0.0, time.perf_counter()
        tracker = Tracker()
        for index, frame in source.numbered():
            if self._viewers <= 0:
                return
            recognised = self.engine.recognise(frame, tracker, index)
            if self.events is not None:
                self.events.saw(tracker.tracks, index, self.engine.recogniser.matcher)
            now = time.perf_counter()
            instant = 1.0 / max(now - previous, 1e-6)
            fps = instant if fps == 0.0 else FPS_SMOOTHING * fps + (1 - FPS_SMOOTHING) * instant
            annotate(frame, recognised, fps)
            ok, encoded = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
            if ok:
                self._publish(encoded.tobytes())
            time.sleep(max(0.0, interval - (time.perf_counter() - previous)))
            previous = time.perf_counter()

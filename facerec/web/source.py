"""A server-side source (--source: camera index, file or stream) shown on the page as an MJPEG stream.

One reader thread runs while at least one page watches: it recognises each
frame with the engine, draws the boxes and labels, and keeps only the newest
JPEG. Each viewer gets the newest frame whenever it changes, so a slow viewer
skips frames instead of queueing them. A file is played at its own frame rate,
from the start again at its end. Viewers wait in the event loop on one shared
future that the reader resolves for each frame: a viewer costs no thread, even
while the source is stalled. With `events` (serve.py --mqtt, --webhook) the
reader runs from the start and never stops, watched or not, and tells them who
arrives and leaves (everyone leaves when a file starts again). So it does with serve.py
--keep-unknowns, keeping the source's Unknown tracks under the camera's name.
"""

from __future__ import annotations

import asyncio
import threading
import time

import cv2

from ..errors import FacerecError
from ..events import Presence
from ..drawing import annotate
from ..video import open_source
from ..tracking import Tracker
from ..unknowns.keeping import UnknownKeeper, file_video
from .engine import Engine

BOUNDARY = "frame"
JPEG_QUALITY = 80
FPS_SMOOTHING = 0.9


class SourceStream:
    """The annotated frames of one --source, for any number of viewers."""

    def __init__(self, text: str, engine: Engine, events: Presence | None = None, camera: str = "") -> None:
        self.text = text
        self.engine = engine
        self.events = events
        self.camera = camera  # its name where its Unknown tracks are kept (serve.py --keep-unknowns)
        self._keeper: UnknownKeeper | None = None  # the current pass's
        self.problem = ""
        self._newest = (0, b"")  # (number, JPEG), replaced whole: read without a lock
        self._viewers = 0
        self._changed = threading.Lock()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._next: asyncio.Future | None = None  # resolved at the next frame or problem, for every viewer
        if events is not None or engine.keeping is not None:
            self.watch()  # a viewer that never leaves: events and kept unknowns need the source, watched or not

    def watch(self) -> None:
        """A viewer arrives (in the event loop, or before it runs for events' standing viewer): start the reader."""
        with self._changed:
            if self._next is None:
                try:
                    self._loop = asyncio.get_running_loop()
                    self._next = self._loop.create_future()
                except RuntimeError:  # no loop yet: the first page viewer makes the future
                    pass
            self._viewers += 1
            if self._thread is None or not self._thread.is_alive():
                self.problem = ""
                self._thread = threading.Thread(target=self._run, name="source-reader", daemon=True)
                self._thread.start()

    def stop(self) -> None:
        """The server stops: the tracks in view end now (an Unknown one is kept), not with a pass that never ends."""
        if self._keeper is not None:
            self._keeper.end()

    def leave(self) -> None:
        with self._changed:
            self._viewers -= 1

    async def next_jpeg(self, after: int, timeout: float = 1.0) -> tuple[int, bytes | None]:
        """(number, JPEG) of the first frame newer than `after`, or (after, None) on a timeout or a stopped source."""
        if self._newest[0] <= after and not self.problem and self._next is not None:
            await asyncio.wait([self._next], timeout=timeout)  # never cancels the shared future
        number, jpeg = self._newest
        return (number, jpeg) if number > after else (after, None)

    def _wake_viewers(self) -> None:
        """In the event loop: resolve the viewers' future and make the next one."""
        assert self._loop is not None and self._next is not None
        done, self._next = self._next, self._loop.create_future()
        done.set_result(None)

    def _changed_now(self) -> None:
        """From the reader thread: the newest frame or the problem changed."""
        if self._loop is not None:
            try:
                self._loop.call_soon_threadsafe(self._wake_viewers)
            except RuntimeError:  # the server is shutting down
                pass

    def _publish(self, jpeg: bytes) -> None:
        self._newest = (self._newest[0] + 1, jpeg)
        self._changed_now()

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
            self.problem = str(error)
            self._changed_now()

    def _play(self, source) -> None:
        interval = 0.0 if source.spec.is_live else 1.0 / source.fps
        tracker = Tracker()
        keeper = self._keeper = self.engine.keeper(self.camera, file_video(source))
        try:
            self._frames(source, tracker, keeper, interval)
        finally:
            if keeper is not None:
                keeper.end()  # the next pass has a new tracker

    def _frames(self, source, tracker: Tracker, keeper: UnknownKeeper | None, interval: float) -> None:
        fps, previous = 0.0, time.perf_counter()
        for index, frame in source.numbered():
            if self._viewers <= 0:
                return
            recognised = self.engine.recognise(frame, tracker, index, keeper)
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

"""One camera of the service: read, recognise with whichever set of networks is free, and come back when it drops.

A CameraRunner is the web page's SourceStream (its newest annotated JPEG for /video?camera=NAME) run
from the start, watched or not, with what a camera left running for weeks needs: a live stream that
ends, stalls or never answers is opened again after 1, 2, 4 ... at most 30 s, forever, with one
warning when it goes and one when it is back (its tracks end meanwhile: their departures are sent,
its Unknown ones kept); a file still ends at its end. Its own tracker (`every`), threshold,
detection confidence, events (the sightings log among their sinks) and kept unknowns; the counters /api/health and /metrics read.
"""

from __future__ import annotations

import copy
import threading
import time
from typing import Callable

import cv2

from ..config import Camera
from ..errors import FacerecError
from ..events import Presence
from ..matching import Matcher
from ..drawing import annotate
from ..tracking import Tracker
from ..unknowns.keeping import UnknownKeeper, file_video
from ..video import VideoSource, open_source
from ..web.engine import Engine
from ..web.source import FPS_SMOOTHING, JPEG_QUALITY, SourceStream

FIRST_RETRY_SECONDS = 1.0
LAST_RETRY_SECONDS = 30.0
RUNNING, RECONNECTING, STOPPED, STARTING = "running", "reconnecting", "stopped", "starting"


class CameraRunner(SourceStream):
    """`camera` recognised by `engine` (shared with the other cameras and the pages) until `stop`."""

    def __init__(self, camera: Camera, engine: Engine, every: int, warn: Callable[[str], None],
                 events: Presence | None = None,
                 observe_latency: Callable[[float], None] = lambda seconds: None) -> None:
        self.config, self.every, self.warn = camera, camera.every or every, warn
        self.observe_latency = observe_latency
        self.state = STARTING
        self.frames = self.dropped = self.faces = self.embeddings = self.reconnects = 0
        self.fps = 0.0
        self.in_view: list[str] = []  # the names in the newest frame recognised
        self.last_frame: float | None = None  # time.monotonic() of the newest frame recognised
        self._stopping = threading.Event()
        self._base: Matcher | None = None  # the recogniser's matcher the camera's own threshold was applied to
        self._matcher: Matcher | None = None
        super().__init__(camera.source, engine, events, camera.name)
        if self._thread is None:
            self.watch()  # a standing viewer: a camera of the service runs, watched or not

    @property
    def name(self) -> str:
        return self.config.name

    def health(self) -> dict:
        ago = None if self.last_frame is None else round(time.monotonic() - self.last_frame, 3)
        return {"state": self.state, "frames": self.frames, "fps": round(self.fps, 2) if self.state == RUNNING else 0.0, "last_frame_seconds_ago": ago,
                "reconnects": self.reconnects, "in_view": self.in_view if self.state == RUNNING else [],
                "source_problem": self.problem}

    def stop(self) -> None:
        """Ask the reader to end (it does within a frame, or its stream's stall time), and end the tracks now."""
        self._stopping.set()
        super().stop()

    def join(self, seconds: float) -> bool:
        """Wait up to `seconds` for the reader thread to end; whether it did."""
        if self._thread is not None:
            self._thread.join(seconds)
        return self._thread is None or not self._thread.is_alive()

    def _run(self) -> None:
        delay = FIRST_RETRY_SECONDS
        while not self._stopping.is_set():
            try:
                source = open_source(self.text)
            except FacerecError as error:
                why = str(error)
            else:
                with source:
                    self._back()
                    delay = FIRST_RETRY_SECONDS
                    self._play(source)
                why = f"video source ended: {source.ended_by}"
                if self.events is not None:
                    self.events.end()  # its tracks end with the stream: their departures are sent
                if not source.spec.is_live:
                    break  # a file ends at its end
            if self._stopping.is_set():
                break
            self._away(why, delay)
            self._stopping.wait(delay)
            delay = min(delay * 2, LAST_RETRY_SECONDS)
        self.state = STOPPED
        self._changed_now()

    def _back(self) -> None:
        if self.state == RECONNECTING:
            self.reconnects += 1
            self.warn("back: frames again")
            if self.events is not None:
                self.events.available(True)
        self.state = RUNNING

    def _away(self, why: str, delay: float) -> None:
        if self.state != RECONNECTING:  # one warning when it goes, never one per attempt
            self.warn(f"{why}; trying again after {delay:g} s, then up to every {LAST_RETRY_SECONDS:g} s, "
                      "until it answers")
            if self.events is not None:
                self.events.available(False)  # its MQTT status says offline meanwhile
        self.state = RECONNECTING

    def _play(self, source: VideoSource) -> None:  # type: ignore[override]
        tracker = Tracker(self.every)
        keeper = self._keeper = self.engine.keeper(self.name, file_video(source))
        try:
            self._camera_frames(source, tracker, keeper)
        finally:
            if keeper is not None:
                keeper.end()  # the next pass has a new tracker: its Unknown tracks are kept now

    def _own_matcher(self) -> Matcher | None:
        """The recogniser's matcher (the gallery now) with this camera's threshold, made again for a new gallery."""
        if self.config.threshold is None:
            return None
        base = self.engine.recogniser.matcher
        if base is not self._base:
            own = copy.copy(base)  # shares the gallery's index: only the threshold differs
            own.threshold = self.config.threshold
            self._base, self._matcher = base, own
        return self._matcher

    def _recognise(self, frame, index: int, tracker: Tracker, keeper: UnknownKeeper | None) -> list:
        # whichever set of networks is free first; this camera's frames (and tracker) stay on this one thread, in order
        with self.engine.networks.take() as networks:
            faces = networks.detector.detect(frame)
            if self.config.confidence is not None:  # the detector runs at the lowest confidence of all cameras
                faces = [face for face in faces if face.confidence >= self.config.confidence]
            before = networks.embedded
            own = self._own_matcher()
            recognised = networks.recognise(frame, index, tracker, faces=faces,
                                            matcher=self.engine.recogniser.matcher if own is None else own)
            self.embeddings += networks.embedded - before
        if keeper is not None:
            keeper.saw(frame, recognised, tracker.tracks, index)  # before the frame is drawn on
        return recognised

    def _camera_frames(self, source: VideoSource, tracker: Tracker, keeper: UnknownKeeper | None) -> None:
        interval = 0.0 if source.spec.is_live else 1.0 / source.fps
        previous_index, previous = -1, time.perf_counter()
        for index, frame in source.numbered():
            if self._stopping.is_set():
                return
            recognised = self._recognise(frame, index, tracker, keeper)
            if self.events is not None:
                self.events.saw(tracker.tracks, index, self.engine.recogniser.matcher)
            read_at = source.read_at.get(index)
            if read_at is not None:
                self.observe_latency(time.monotonic() - read_at)
            self.frames += 1
            self.dropped += max(0, index - previous_index - 1)  # a live source keeps only its newest frame
            self.faces += len(recognised)
            self.in_view = sorted({face.name for face in recognised})
            previous_index, self.last_frame = index, time.monotonic()
            now = time.perf_counter()
            instant = 1.0 / max(now - previous, 1e-6)
            self.fps = instant if self.fps == 0.0 else FPS_SMOOTHING * self.fps + (1 - FPS_SMOOTHING) * instant
            annotate(frame, recognised, self.fps)
            ok, encoded = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
            if ok:
                self._publish(encoded.tobytes())
            time.sleep(max(0.0, interval - (time.perf_counter() - previous)))  # a file at its own pace
            previous = time.perf_counter()

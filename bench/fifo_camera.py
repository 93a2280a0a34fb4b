"""A camera stand-in a recogniser cannot outrun (bench/postgres_store.py, and tests/paced_camera.py):
recognize_video.py --json reading a FIFO that is fed frames of a clip (YUV4MPEG2, which OpenCV reads as
it arrives), paced so that at most FRAMES_PER_SECOND frames reach it a second. "Within 2 s" can then be
counted in frames, which a busy machine cannot flake.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time

import cv2

LEAD = 4  # frames fed ahead of the last one the recogniser printed
FRAMES_PER_SECOND = 10  # at most: the feeder waits 1/FRAMES_PER_SECOND between frames
WITHIN_TWO_SECONDS = LEAD + 2 * FRAMES_PER_SECOND + 1  # frames the recogniser can print in 2 s, at most
START_SECONDS = 180  # bounds on waiting (loading models on a busy machine), never measures
WAIT_SECONDS = 120


def y4m_frames(clip, indices) -> tuple[bytes, list[bytes]]:
    """(stream header, frames) of those frames of the video `clip` as a YUV4MPEG2 stream."""
    capture = cv2.VideoCapture(str(clip))
    frames = []
    for index in range(max(indices) + 1):
        ok, frame = capture.read()
        assert ok
        if index in indices:
            frames.append(b"FRAME\n" + cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420).tobytes())
    capture.release()
    height, width = frame.shape[:2]
    return f"YUV4MPEG2 W{width} H{height} F25:1 Ip A1:1 C420jpeg\n".encode(), frames


class PacedCamera:
    """`command` (recognize_video.py --json ... --source FIFO) reading the FIFO `fifo`, fed in a loop with
    `frames` (y4m_frames), never more than LEAD frames ahead of the JSON lines it printed."""

    def __init__(self, fifo, command, frames):
        os.mkfifo(fifo)
        self.records, self.stderr = [], []
        self.arrivals: list[float] = []  # time.perf_counter() when each record arrived (for the bench)
        self.changed = threading.Condition()
        self._stop = threading.Event()
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        text=True)
        self._threads = [threading.Thread(target=target, daemon=True) for target in (
            lambda: self._collect(self.process.stdout, self.records, json.loads, self.arrivals),
            lambda: self._collect(self.process.stderr, self.stderr, str),
            lambda: self._feed(fifo, *frames))]
        for thread in self._threads:
            thread.start()

    def _collect(self, stream, into, parse, times=None):
        for line in stream:
            with self.changed:
                into.append(parse(line))
                if times is not None:
                    times.append(time.perf_counter())
                self.changed.notify_all()
        with self.changed:
            self.changed.notify_all()

    def _feed(self, fifo, header, frames):
        deadline = time.monotonic() + START_SECONDS
        while True:  # wait for the recogniser to open the FIFO (after loading its models), or to fail
            try:
                fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
                break
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    return
                time.sleep(0.05)
        os.set_blocking(fd, True)
        try:
            os.write(fd, header)
            written = 0
            while not self._stop.is_set():
                with self.changed:
                    self.changed.wait_for(lambda: len(self.records) >= written - LEAD or self._stop.is_set()
                                          or self.process.poll() is not None, timeout=1.0)
                if self.process.poll() is not None:
                    return
                if len(self.records) >= written - LEAD:
                    os.write(fd, frames[written % len(frames)])
                    written += 1
                    time.sleep(1 / FRAMES_PER_SECOND)
        except BrokenPipeError:
            pass
        finally:
            os.close(fd)  # the end of the stream: the recogniser ends

    def wait_for(self, condition, what):
        with self.changed:
            assert self.changed.wait_for(lambda: condition() or self.process.poll() is not None, WAIT_SECONDS), what
            assert condition(), f"{what}: recognize_video.py ended: {''.join(self.stderr)}"

    def stop(self) -> int:
        self._stop.set()
        try:
            return self.process.wait(timeout=60)
        finally:
            if self.process.poll() is None:
                self.process.kill()
            for thread in self._threads:
                thread.join(timeout=10)


def names(record) -> set:
    return {face["name"] for face in record["faces"]}

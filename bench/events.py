#!/usr/bin/env python3
"""recognize_video.py's frame rate over the clip without events, with --mqtt, and with its broker stopped (not a test).

Each run is a fresh `recognize_video.py --no-display --model sface` process (gallery: faces/known plus lin,
as the tests enrol it); its frame rate is the one its summary prints (the recognition loop, start-up
excluded). The broker is Debian's mosquitto on a free loopback port (bench/mqtt_broker.py). "Broker
stopped": the run connects, then the broker is stopped before the first frame and stays down to the
end, so every event waits in the queue (and is given up 10 s after the clip ends, which the frame rate
does not include). `--repeats R` runs the three conditions R times, interleaved, and keeps each one's
fastest run (the least disturbed on a shared machine); every run is printed too.

Then, in this process, the part of the video loop events take, which a loaded machine cannot hide: the
clip (decoded once) through the package's run_recognition with --mqtt's Presence, the broker up, then
stopped; the time spent in Presence.saw (comparing tracks, queueing events) per frame, against the
whole loop's time per frame.

Example (the table of docs/events.md):
  python bench/events.py --repeats 3
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import paho.mqtt.client as paho

from benchmark import CLIP, ROOT, enrolled, load_models, plain_frames
from mqtt_broker import Broker
from profiles import linked_gallery

CONDITIONS = ("no events", "--mqtt", "--mqtt, broker stopped")
WAIT_SECONDS = 120  # a bound on waiting for the run to connect, never a measure


def online(port: int, camera: str) -> tuple[threading.Event, paho.Client]:
    """(an Event set once the camera's status topic says online, the paho client listening for it)."""
    said = threading.Event()
    client = paho.Client(paho.CallbackAPIVersion.VERSION2)
    client.on_connect = lambda c, *_: c.subscribe(f"facerec/{camera}/status")
    client.on_message = lambda c, u, message: message.payload == b"online" and said.set()
    client.connect("127.0.0.1", port)
    client.loop_start()
    return said, client


def run(condition: str, command: list[str], broker: Broker, camera: str) -> float:
    """One run of `command` under `condition`: the frame rate its summary gives."""
    if condition == CONDITIONS[0]:
        done = subprocess.run(command, capture_output=True, text=True)
    else:
        command = [*command, "--mqtt", broker.url(), "--camera", camera]
        said, listener = online(broker.port, camera)
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if condition == CONDITIONS[2]:
            if not said.wait(WAIT_SECONDS):
                process.kill()
                raise RuntimeError("the run never said online")
            broker.stop()
        stderr = process.communicate()[1]
        listener.loop_stop()
        if broker.process is None:
            broker.start()
        done = subprocess.CompletedProcess(command, process.returncode, "", stderr)
    rate = re.search(r"([\d.]+) frames/s", done.stderr)
    if done.returncode != 0 or not rate:
        raise RuntimeError(f"recognize_video.py failed: {done.stderr}")
    return float(rate[1])


class TimedPresence:
    """A Presence whose saw() is timed (run_recognition calls only saw)."""

    def __init__(self, presence) -> None:
        self.presence, self.seconds, self.calls = presence, 0.0, 0

    def saw(self, *args) -> None:
        start = time.perf_counter()
        self.presence.saw(*args)
        self.seconds += time.perf_counter() - start
        self.calls += 1


def loop_share(embeddings: Path, broker: Broker) -> list[tuple[str, float, float]]:
    """(condition, µs per frame in Presence.saw, ms per frame of the whole loop), broker up then stopped."""
    from facerec.catalogue import PROFILES
    from facerec.events import close_events, open_events
    from facerec.matching import make_matcher
    from facerec.recognition import FacePipeline
    from facerec.running import run_recognition
    from facerec.stores import load_store
    from facerec.tracking import Tracker

    detector, embedder, *_ = load_models("sface")
    store = load_store(embeddings)
    frames = list(plain_frames())
    rows = []
    for condition in CONDITIONS[1:]:
        presence = open_events("bench-loop", lambda message: None, broker.url())
        if condition == CONDITIONS[2]:
            broker.stop()
        timed = TimedPresence(presence)
        recogniser = FacePipeline(detector, embedder, make_matcher("nearest", store.vectors, store.names,
                                                                 PROFILES["sface"].threshold), Tracker())
        summary = run_recognition(frames, recogniser, events=timed)
        close_events(presence)
        if broker.process is None:
            broker.start()
        rows.append((condition, timed.seconds / timed.calls * 1e6, summary.seconds / summary.frames * 1e3))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        work = Path(workdir)
        models, embeddings, _ = enrolled("sface", linked_gallery(work), work)
        command = [sys.executable, str(ROOT / "recognize_video.py"), "--embeddings", str(embeddings),
                   "--source", str(CLIP), "--no-display", *models]
        broker = Broker(work / "broker")
        rates: dict[str, list[float]] = {condition: [] for condition in CONDITIONS}
        try:
            for repeat in range(args.repeats):
                for condition in CONDITIONS:
                    rates[condition].append(run(condition, command, broker, f"bench{repeat}"))
                    print(f"{condition}: {rates[condition][-1]:.1f} frames/s", file=sys.stderr, flush=True)
            shares = loop_share(embeddings, broker)
        finally:
            broker.stop()
    base = max(rates[CONDITIONS[0]])
    print("| run | frames/s (fastest of %d) | runs | / no events |" % args.repeats)
    print("|---|---:|---|---:|")
    for condition in CONDITIONS:
        best = max(rates[condition])
        print(f"| {condition} | {best:.1f} | {', '.join(f'{rate:.1f}' for rate in rates[condition])} | "
              f"{best / base:.2f} |")
    print()
    print("| in the loop (run_recognition) | Presence.saw, µs per frame | whole loop, ms per frame | share |")
    print("|---|---:|---:|---:|")
    for condition, micro, milli in shares:
        print(f"| {condition} | {micro:.0f} | {milli:.1f} | {micro / (milli * 1e3):.2%} |")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""The clip's event timeline as Home Assistant would see it (not a test): every event and `people` message.

faces/known plus lin enrolled with the sface profile (as the tests do), then recognize_video.py over the clip
with --confidence 0.8 and --mqtt to Debian's mosquitto on a free loopback port (bench/mqtt_broker.py). Prints,
in the order the broker delivered them, each `events` message (frame, type, name, track, unknown_group) and
each retained `people` list. The counts are the same on a loaded machine (they depend on the frames, not the
speed) as long as the clip lasts less than --away-seconds.

Example (the timeline of docs/events.md):
  python bench/event_timeline.py
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import paho.mqtt.client as paho

from benchmark import CLIP, ROOT, model_paths
from mqtt_broker import Broker
from profiles import linked_gallery

CAMERA = "stage"
WAIT_SECONDS = 60  # a bound on waiting for the last message, never a measure


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        folder, embedder_file, _ = model_paths("sface")
        models = ["--model", "sface", "--detector", str(folder), "--embedding-model", str(embedder_file)]
        embeddings = Path(workdir) / "e.pickle"
        subprocess.run([sys.executable, str(ROOT / "extract_embeddings.py"), "--dataset",
                        str(linked_gallery(Path(workdir))), "--embeddings", str(embeddings), "--quiet", *models],
                       check=True, capture_output=True)
        broker = Broker(Path(workdir) / "broker")
        lines: list[str] = []
        done = threading.Event()

        def received(client, userdata, message) -> None:
            payload = message.payload.decode()
            if message.topic.endswith("/events"):
                event = json.loads(payload)
                group = f" group {event['unknown_group']}" if event.get("unknown_group") is not None else ""
                lines.append(f"frame {event['frame']:3d}  {event['type']:7s}  {event['name']} (track {event['track']})"
                             f"{group}")
            elif message.topic.endswith("/people"):
                lines.append(f"           people  {payload}")
            elif message.topic.endswith("/status") and payload == "offline":
                done.set()

        client = paho.Client(paho.CallbackAPIVersion.VERSION2)
        client.on_connect = lambda c, *_: c.subscribe(f"facerec/{CAMERA}/#", qos=1)
        client.on_message = received
        client.connect("127.0.0.1", broker.port)
        client.loop_start()
        try:
            subprocess.run([sys.executable, str(ROOT / "recognize_video.py"), "--embeddings", str(embeddings),
                            "--source", str(CLIP), "--no-display", "--confidence", "0.8", "--camera", CAMERA,
                            "--mqtt", broker.url(), "--no-mqtt-discovery", *models],
                           check=True, capture_output=True, text=True)
            done.wait(WAIT_SECONDS)
        finally:
            client.disconnect()
            client.loop_stop()
            broker.stop()
    print("\n".join(lines))
    arrivals = [line for line in lines if " arrived " in line]
    print(f"{len(arrivals)} arrivals, {sum(' left ' in line for line in lines)} departures, "
          f"{sum('people' in line for line in lines)} people messages")


if __name__ == "__main__":
    main()

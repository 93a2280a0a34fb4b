#!/usr/bin/env python3
"""The web page's path against recognize_video.py on the clip's frames: frames per second and round-trip time.

1. recognize_video.py --model sface --no-display --json on short_hamilton_clip.mp4, with the gallery of
   bench/profiles.py (faces/known plus lin): its own frames/s.
2. serve.py with the same gallery on a free loopback port; every frame of the clip, JPEG-encoded beforehand
   (quality 80, as the page's canvas sends them), goes over the page's WebSocket protocol with the page's
   window of 2 frames in flight. Frames/s is frames answered over the time from the first send to the last
   answer; round trip is per frame, from its send to its answer.

Example:
  python bench/web.py
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, deque
from pathlib import Path

from benchmark import CLIP, ROOT, model_paths
from profiles import run_profile

IN_FLIGHT = 2  # the page's MAX_IN_FLIGHT (facerec/web/static/live.js)
JPEG_QUALITY = 80


def clip_jpegs() -> list[bytes]:
    import cv2

    capture = cv2.VideoCapture(str(CLIP))
    frames = []
    while (read := capture.read())[0]:
        frames.append(cv2.imencode(".jpg", read[1], [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])[1].tobytes())
    capture.release()
    return frames


def through_the_page_protocol(url: str, frames: list[bytes]) -> dict:
    from websockets.sync.client import connect

    from facerec.web.protocol import pack_frame

    sent_at, trips, names, dropped = {}, [], Counter(), 0
    waiting = deque(range(len(frames)))
    with connect(url.replace("http://", "ws://").rstrip("/") + "/ws", max_size=None) as ws:
        start = time.perf_counter()
        answered = 0
        while answered < len(frames):
            while waiting and len(sent_at) < IN_FLIGHT:
                number = waiting.popleft()
                sent_at[number] = time.perf_counter()
                ws.send(pack_frame(number, frames[number]))
            answer = json.loads(ws.recv())
            trips.append(time.perf_counter() - sent_at.pop(answer["frame"]))
            dropped += answer["dropped"]
            names.update(face["name"] for face in answer["faces"])
            answered += 1 + answer["dropped"]
            for number in [n for n in sent_at if n < answer["frame"]]:  # answered as dropped
                sent_at.pop(number)
        seconds = time.perf_counter() - start
    trips_ms = sorted(1000 * trip for trip in trips)
    return {"frames": len(trips), "dropped": dropped, "fps": len(trips) / seconds,
            "rtt_median_ms": statistics.median(trips_ms), "rtt_p90_ms": trips_ms[int(0.9 * (len(trips_ms) - 1))],
            "detected": sum(names.values()), "named": sum(n for name, n in names.items() if name != "Unknown")}


def serve(models: list[str], workdir: Path) -> tuple[subprocess.Popen, str]:
    server = subprocess.Popen([sys.executable, str(ROOT / "serve.py"), *models, "--port", "0",
                               "--embeddings", str(workdir / "sface.pickle"), "--dataset", str(workdir / "dataset")],
                              stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    for line in server.stdout:
        if line.startswith("facerec web page: "):
            return server, line.split(": ", 1)[1].strip()
    raise RuntimeError("serve.py printed no URL")


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args(argv)
    sys.path.insert(0, str(ROOT))
    frames = clip_jpegs()
    with tempfile.TemporaryDirectory() as workdir:
        workdir = Path(workdir)
        script = run_profile("sface", None, workdir)
        folder, embedder_file, _ = model_paths("sface")
        server, url = serve(["--model", "sface", "--detector", str(folder), "--embedding-model", str(embedder_file)],
                            workdir)
        try:
            page = through_the_page_protocol(url, frames)
        finally:
            server.terminate()
            server.wait()
    print(f"{CLIP.name}, {len(frames)} frames, sface, {os.cpu_count()} cores, one run")
    print(f"{'path':<34} {'frames/s':>8} {'RTT median':>10} {'RTT p90':>8} {'detected':>8} {'named':>6}")
    print(f"{'recognize_video.py --no-display':<34} {script['fps']:>8.1f} {'':>10} {'':>8} "
          f"{script['detected']:>8} {script['named']:>6}")
    print(f"{'serve.py, WebSocket, 2 in flight':<34} {page['fps']:>8.1f} {page['rtt_median_ms']:>8.0f}ms "
          f"{page['rtt_p90_ms']:>6.0f}ms {page['detected']:>8} {page['named']:>6}")
    print(f"server path / script: {page['fps'] / script['fps']:.2f}x; frames dropped by the server: {page['dropped']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

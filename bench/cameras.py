"""Several RTSP cameras in one serve.py --config process against as many recognize_video.py processes.

    python bench/cameras.py --cameras 1 2 4 8 --seconds 60
    python bench/cameras.py --cameras 4 --soak 1800 --csv /tmp/facerec-soak.csv

Each camera is the shared clip looped, served by GStreamer's RTSP server (bench/rtsp_camera.py, Debian's
/usr/bin/python3 with gir1.2-gst-rtsp-server-1.0). For each count N, on the sface profile with a gallery of
../shared/faces/known:
  one process    serve.py --config with N cameras: frames named per second per camera and frames dropped from
                 /api/health and /metrics, latency from capture to names (median and 90th percentile, from the
                 histogram's buckets: an upper bound), peak memory (VmHWM)
  N processes    recognize_video.py --json --source rtsp://... each: frames per second and dropped from the JSON
                 frame numbers (gaps), peak memory summed; latency is not measured there (no capture time)
With --soak SECONDS, one serve.py --config process only, for SECONDS: VmRSS and open fds every 30 s into a CSV,
then the growth of memory from the end of minute 2 (after warm-up) to the end, fds min/max, frames named.
Figures on a shared machine are noisy: the counts (frames, drops) more than the speeds.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Iterator

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
from rtsp_camera import RtspCamera  # noqa: E402

from facerec.catalogue import PROFILES  # noqa: E402

SHARED = Path(os.environ.get("FACEREC_SHARED", ROOT.parent / "shared"))
CLIP = SHARED / "video" / "short_hamilton_clip.mp4"
START_SECONDS = 180
SOAK_EVERY, SOAK_WARMUP = 30.0, 120.0  # the soak samples every 30 s; growth counts from the end of minute 2


def model_args() -> list[str]:
    models = SHARED / "models"
    return ["--model", "sface", "--detector", str(models),
            "--embedding-model", str(models / PROFILES["sface"].embedder.files[0].filename)]


def peak_kb(pid: int, field: str = "VmHWM") -> int:
    """A memory figure of /proc/PID/status in kB: VmHWM (the peak) or VmRSS (now)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def percentile(buckets: list[tuple[float, float]], share: float) -> float:
    """The upper bound of the bucket holding `share` of the observations ((le, cumulative count) sorted)."""
    total = buckets[-1][1]
    for bound, count in buckets:
        if total and count >= share * total:
            return bound
    return float("nan")


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@contextlib.contextmanager
def serving(urls: dict[str, str], gallery: Path, folder: Path) -> Iterator[tuple[subprocess.Popen, str]]:
    """serve.py --config with `urls` as cameras, once every camera has counted a frame: (process, base URL)."""
    config = folder / "cameras.toml"
    config.write_text("".join(f'[cameras.{name}]\nsource = "{url}"\n' for name, url in urls.items()))
    server = subprocess.Popen([sys.executable, str(ROOT / "serve.py"), *model_args(), "--embeddings", str(gallery),
                               "--port", "0", "--config", str(config), "--dataset", str(folder / "dataset")],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = server.stdout.readline() if server.stdout else ""
        base = line.split(": ", 1)[1].strip().rstrip("/")
        deadline = time.monotonic() + START_SECONDS
        while True:
            status, body = get(base + "/api/health")
            cameras = json.loads(body)["cameras"]
            if status == 200 and all(camera["frames"] > 0 for camera in cameras.values()):
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"the cameras did not all run within {START_SECONDS} s: {cameras}")
            time.sleep(0.5)
        yield server, base
    finally:
        server.terminate()
        server.wait(timeout=60)


def one_process(urls: dict[str, str], gallery: Path, folder: Path, seconds: float) -> dict:
    with serving(urls, gallery, folder) as (server, base):
        before, started = metrics(base), time.monotonic()
        time.sleep(seconds)  # the measured window
        after, elapsed = metrics(base), time.monotonic() - started
        memory = peak_kb(server.pid)
    frames = [after[("facerec_frames_total", name)] - before[("facerec_frames_total", name)] for name in urls]
    dropped = [after[("facerec_frames_dropped_total", name)] - before[("facerec_frames_dropped_total", name)]
               for name in urls]
    buckets: dict[float, float] = {}
    for (metric, label), value in after.items():
        if metric == "facerec_frame_latency_seconds_bucket":
            bound = float(label.split("|")[1])
            buckets[bound] = buckets.get(bound, 0) + value - before.get((metric, label), 0)
    ordered = sorted(buckets.items())
    return {"fps": [count / elapsed for count in frames], "dropped": sum(dropped),
            "p50": percentile(ordered, 0.5), "p90": percentile(ordered, 0.9), "memory_mb": memory / 1024}


def metrics(base: str) -> dict[tuple[str, str], float]:
    """(sample, camera or 'camera|le') -> value from /metrics (a few lines of text: no parser needed here)."""
    found = {}
    for line in get(base + "/metrics")[1].decode().splitlines():
        match = re.match(r'(\w+)\{camera="([^"]+)"(?:,le="([^"]+)")?\} (\S+)', line)
        if match:
            name, camera, bound, value = match.groups()
            found[(name, camera + (f"|{bound}" if bound else ""))] = float(value)
    return found


def separate_processes(urls: dict[str, str], gallery: Path, seconds: float) -> dict:
    processes, lines = [], []
    for url in urls.values():
        process = subprocess.Popen([sys.executable, str(ROOT / "recognize_video.py"), *model_args(),
                                    "--embeddings", str(gallery), "--source", url, "--no-display", "--json"],
                                   stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        seen: list[tuple[float, int]] = []
        threading.Thread(target=lambda p=process, s=seen: [s.append((time.monotonic(), json.loads(line)["frame"]))
                                                           for line in p.stdout], daemon=True).start()
        processes.append(process)
        lines.append(seen)
    deadline = time.monotonic() + START_SECONDS
    while not all(lines) and time.monotonic() < deadline:
        time.sleep(0.5)
    started = time.monotonic()
    time.sleep(seconds)
    ended = time.monotonic()
    memory = sum(peak_kb(process.pid) for process in processes)
    for process in processes:
        process.terminate()
        process.wait(timeout=60)
    fps, dropped = [], 0
    for seen in lines:
        window = [frame for at, frame in seen if started <= at <= ended]
        fps.append(len(window) / (ended - started))
        dropped += (window[-1] - window[0] + 1 - len(window)) if window else 0
    return {"fps": fps, "dropped": dropped, "memory_mb": memory / 1024}


def soak(urls: dict[str, str], gallery: Path, folder: Path, seconds: float, out: Path) -> None:
    """One serve.py --config for `seconds`: its memory (VmRSS) and open fds every SOAK_EVERY s into `out` (CSV),
    then the summary: growth from the end of the warm-up (SOAK_WARMUP s) to the end, fds min/max, frames."""
    rows: list[dict[str, float]] = []
    with serving(urls, gallery, folder) as (server, base):
        started = time.monotonic()
        while True:
            elapsed = time.monotonic() - started
            counts = metrics(base)
            rows.append({"seconds": round(elapsed), "rss_kb": peak_kb(server.pid, "VmRSS"),
                         "fds": len(os.listdir(f"/proc/{server.pid}/fd")),
                         "frames": sum(counts.get(("facerec_frames_total", name), 0) for name in urls),
                         "dropped": sum(counts.get(("facerec_frames_dropped_total", name), 0) for name in urls),
                         "reconnects": sum(counts.get(("facerec_reconnects_total", name), 0) for name in urls)})
            with out.open("w", newline="") as handle:  # rewritten at each sample: readable while it runs
                writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
                writer.writeheader()
                writer.writerows(rows)
            if elapsed >= seconds:
                break
            time.sleep(min(SOAK_EVERY, max(0.0, seconds - elapsed)))
    warm = next((row for row in rows if row["seconds"] >= SOAK_WARMUP), rows[0])
    last, fds = rows[-1], [row["fds"] for row in rows]
    print(f"soak: {len(urls)} cameras, {last['seconds']:.0f} s, {len(rows)} samples in {out}")
    print(f"  RSS after warm-up ({warm['seconds']:.0f} s) {warm['rss_kb'] / 1024:.0f} MB, last {last['rss_kb'] / 1024:.0f}"
          f" MB, peak {max(row['rss_kb'] for row in rows) / 1024:.0f} MB, growth "
          f"{100 * (last['rss_kb'] / warm['rss_kb'] - 1):+.1f}% (goal <= 10%)")
    print(f"  open fds min {min(fds)} max {max(fds)} (goal: constant)")
    print(f"  frames {last['frames'] - rows[0]['frames']:.0f} named, {last['dropped'] - rows[0]['dropped']:.0f} dropped,"
          f" reconnects {last['reconnects']:.0f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cameras", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--seconds", type=float, default=60.0, help="the measured window of each run")
    parser.add_argument("--soak", type=float, metavar="SECONDS",
                        help="instead: one process with the first count of --cameras for SECONDS, memory and fds "
                             "sampled every 30 s")
    parser.add_argument("--csv", type=Path, default=Path(tempfile.gettempdir()) / "facerec-soak.csv",
                        help="the soak's samples (default: %(default)s)")
    args = parser.parse_args()
    reason = RtspCamera.available()
    if reason:
        raise SystemExit(reason)
    with tempfile.TemporaryDirectory(prefix="facerec-cameras-") as temporary:
        folder = Path(temporary)
        gallery = folder / "embeddings.pickle"
        subprocess.run([sys.executable, str(ROOT / "extract_embeddings.py"), *model_args(), "--dataset",
                        str(SHARED / "faces" / "known"), "--embeddings", str(gallery)], check=True,
                       capture_output=True)
        run_seconds = args.soak if args.soak else args.seconds
        loops = max(2, int((run_seconds + START_SECONDS) / 9) + 1)  # the clip is 9.2 s: longer than a run
        clip = RtspCamera.looped(CLIP, folder / "looped.mp4", loops)
        if args.soak:
            names = [f"cam{index}" for index in range(args.cameras[0])]
            with RtspCamera({name: clip for name in names}) as server:
                soak({name: server.url(name) for name in names}, gallery, folder, args.soak, args.csv)
            return
        print("| cameras | how | named frames/s per camera (min-max) | dropped | latency p50 / p90 (s) | peak memory (MB) |")
        print("|---:|---|---|---:|---|---:|")
        for count in args.cameras:
            names = [f"cam{index}" for index in range(count)]
            for how in ("one process", "separate processes"):
                with RtspCamera({name: clip for name in names}) as server:
                    urls = {name: server.url(name) for name in names}
                    result = (one_process(urls, gallery, folder, args.seconds) if how == "one process"
                              else separate_processes(urls, gallery, args.seconds))
                latency = (f"{result['p50']:g} / {result['p90']:g}" if "p50" in result else "not measured")
                print(f"| {count} | {how} | {min(result['fps']):.1f}-{max(result['fps']):.1f} | {result['dropped']:.0f} "
                      f"| {latency} | {result['memory_mb']:.0f} |", flush=True)


if __name__ == "__main__":
    main()

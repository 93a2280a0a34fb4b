#!/usr/bin/env python3
"""serve.py under three attacks (issue 19 items 5, 7, 8): is a legitimate client still answered, how fast,
and how much memory does the server take? Everything on loopback; each attack is bounded in count and time.

For each attack a fresh serve.py (sface, obama and biden enrolled) runs; a victim from 127.0.0.1 asks once
every 0.25 s (10 s timeout) while the attacker (other 127.x addresses) runs for --seconds; the server's
resident memory is sampled every 20 ms.

  slowloris   under `ulimit -n 1024`: 2,000 connections (made within 10 s) that send half a request's head
              and stop, then held for --seconds; the victim GETs /api/info
  websocket   100 WebSockets from one address, each sending a 16 MiB frame minus its last byte,
              then 16 from four addresses sending frames just under the frame limit (4 MiB);
              the victim, a page's WebSocket opened before, sends a photo and waits for its answer
  bomb        8 POSTs at once to /api/recognize of a 97 KB PNG declaring 10000 x 10000 (100 MP), again
              and again, and 6 pages sending it as frames; the victim page as above

Example:
  python bench/web_attacks.py                    # all three, 15 s each
  python bench/web_attacks.py --attack bomb --seconds 10
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

from attack_clients import BINARY, bomb_png, half_sent, send_frame, websocket
from benchmark import ROOT, SHARED, model_paths

VICTIM_EVERY = 0.25
VICTIM_TIMEOUT = 10.0
PHOTO = SHARED / "faces" / "probe" / "obama1.jpg"


class Serving:
    """serve.py on a free loopback port with obama and biden enrolled in `workdir`."""

    def __init__(self, workdir: Path, file_limit: int | None = None) -> None:
        folder, embedder, _ = model_paths("sface")
        models = ["--model", "sface", "--detector", str(folder), "--embedding-model", str(embedder)]
        dataset, embeddings = workdir / "dataset", workdir / "sface.pickle"
        if not embeddings.exists():
            for person in ("obama", "biden"):
                shutil.copytree(SHARED / "faces" / "known" / person, dataset / person)
            subprocess.run([sys.executable, str(ROOT / "extract_embeddings.py"), *models, "--dataset", str(dataset),
                            "--embeddings", str(embeddings)], check=True, capture_output=True)

        def limit() -> None:
            if file_limit:
                resource.setrlimit(resource.RLIMIT_NOFILE, (file_limit, file_limit))

        self.process = subprocess.Popen([sys.executable, str(ROOT / "serve.py"), *models, "--port", "0",
                                         "--embeddings", str(embeddings), "--dataset", str(dataset)],
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=limit,
                                        env={**os.environ, "PYTHONUNBUFFERED": "1"})
        for line in self.process.stdout:
            if line.startswith("facerec web page: "):
                url = urlsplit(line.split(": ", 1)[1].strip())
                self.host, self.port = url.hostname, url.port
                break
        else:
            raise RuntimeError(f"serve.py printed no URL: {self.process.stderr.read()}")
        self.peak_kb, self.sampling = self.rss_kb(), True
        self.start_kb = self.peak_kb
        threading.Thread(target=self.sample, daemon=True).start()
        self.log, self.log_bytes = [], 0  # read as it comes: a full pipe would stall the server
        self.reader = threading.Thread(target=self.read_log, daemon=True)
        self.reader.start()

    def read_log(self) -> None:
        for line in self.process.stderr:
            self.log_bytes += len(line)
            if self.log_bytes < 65536:
                self.log.append(line)

    def rss_kb(self) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def sample(self) -> None:
        while self.sampling:
            with contextlib.suppress(OSError):
                self.peak_kb = max(self.peak_kb, self.rss_kb())
            time.sleep(0.02)

    def stop(self) -> str:
        """Stop the server; the start of its log (standard error)."""
        self.sampling = False
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.reader.join(10)
        return "".join(self.log)


class Victim:
    """A legitimate client asking every VICTIM_EVERY seconds in a thread: latencies of the answered ones."""

    def __init__(self, ask) -> None:
        self.ask, self.sent, self.latencies, self.running = ask, 0, [], True
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        while self.running:
            started = time.perf_counter()
            self.sent += 1
            with contextlib.suppress(Exception):
                if self.ask():
                    self.latencies.append(time.perf_counter() - started)
            time.sleep(max(0.0, VICTIM_EVERY - (time.perf_counter() - started)))

    def __enter__(self) -> "Victim":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.running = False
        self.thread.join(VICTIM_TIMEOUT + 5)

    def summary(self) -> str:
        if not self.latencies:
            return f"answered 0/{self.sent}"
        ms = sorted(1000 * latency for latency in self.latencies)
        return (f"answered {len(ms)}/{self.sent}, latency median {statistics.median(ms):.0f} ms, "
                f"p90 {ms[int(0.9 * (len(ms) - 1))]:.0f} ms, max {ms[-1]:.0f} ms")


def http_victim(server: Serving, path: str):
    def ask() -> bool:
        connection = http.client.HTTPConnection(server.host, server.port, timeout=VICTIM_TIMEOUT)
        try:
            connection.request("GET", path)
            return connection.getresponse().status == 200
        finally:
            connection.close()
    return ask


def page_victim(server: Serving, stack: contextlib.ExitStack):
    """A page's WebSocket, opened now: each ask sends the photo as a frame and waits for its answer."""
    from websockets.sync.client import connect

    from facerec.web.protocol import pack_frame

    ws = stack.enter_context(connect(f"ws://{server.host}:{server.port}/ws", max_size=None))
    photo, number = PHOTO.read_bytes(), [0]

    def ask() -> bool:
        number[0] += 1
        ws.send(pack_frame(number[0], photo))
        while True:
            answer = json.loads(ws.recv(timeout=VICTIM_TIMEOUT))
            if answer["frame"] == number[0]:
                return "faces" in answer
    return ask


def slowloris(server: Serving, seconds: float, victim_ask) -> tuple[Victim, str]:
    with Victim(victim_ask) as victim:
        time.sleep(1)
        sockets = half_sent(server.host, server.port, 2000, source="127.0.0.3", seconds=10)
        time.sleep(seconds)  # held open (those the server has not closed)
        for sock in sockets:
            sock.close()
    return victim, "2000 half-sent requests"


def websockets_attack(server: Serving, seconds: float, victim_ask) -> tuple[Victim, str]:
    accepted = 0
    with Victim(victim_ask) as victim:
        time.sleep(1)
        opened = []
        for _ in range(100):  # one address, as one attacker: all open at once, then the frames
            with contextlib.suppress(OSError):
                status, sock = websocket(server.host, server.port, source="127.0.0.3")
                opened.append(sock)
                accepted += status == 101
        for sock in opened:
            with contextlib.suppress(OSError):
                send_frame(sock, BINARY, bytes(16 * 2**20 - 1), declared=16 * 2**20)
        under = []
        for index in range(16):  # four addresses, frames just under the limit
            with contextlib.suppress(OSError):
                status, sock = websocket(server.host, server.port, source=f"127.0.4.{index // 4 + 1}")
                under.append(sock)
                if status == 101:
                    with contextlib.suppress(OSError):
                        send_frame(sock, BINARY, bytes(4 * 2**20 - 1), declared=4 * 2**20)
        time.sleep(seconds)
        for sock in opened + under:
            sock.close()
    return victim, f"100 WebSockets with 16 MiB - 1 byte ({accepted} accepted), then 16 with 4 MiB - 1"


def bomb(server: Serving, seconds: float, victim_ask) -> tuple[Victim, str]:
    from websockets.sync.client import connect

    from facerec.web.protocol import pack_frame

    data, deadline, refused = bomb_png(10000, 10000), time.monotonic() + seconds, []

    def poster() -> None:
        while time.monotonic() < deadline:
            connection = http.client.HTTPConnection(server.host, server.port, timeout=120,
                                                    source_address=("127.0.0.3", 0))
            with contextlib.suppress(Exception):
                connection.request("POST", "/api/recognize", body=data)
                refused.append(connection.getresponse().status)
            connection.close()

    def page(index: int) -> None:
        with contextlib.suppress(Exception), connect(f"ws://{server.host}:{server.port}/ws", max_size=None) as ws:
            number = 0
            while time.monotonic() < deadline:
                number += 1
                ws.send(pack_frame(number, data))
                ws.recv(timeout=120)

    with Victim(victim_ask) as victim:
        time.sleep(1)
        threads = [threading.Thread(target=poster) for _ in range(8)] + \
                  [threading.Thread(target=page, args=(n,)) for n in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    statuses = ", ".join(f"{status}: {refused.count(status)}" for status in sorted(set(refused)))
    return victim, f"8 bomb POSTs at a time and 6 bomb pages (POST answers {statuses})"


# attack -> (its function, the server's open-file limit, its victim: "http" GETs /api/info, "page" a WebSocket)
ATTACKS = {"slowloris": (slowloris, 1024, "http"), "websocket": (websockets_attack, None, "page"),
           "bomb": (bomb, None, "page")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--attack", choices=sorted(ATTACKS), action="append", help="(default: all three)")
    parser.add_argument("--seconds", type=float, default=15.0, help="how long each attack runs (default: 15)")
    parser.add_argument("--log", action="store_true", help="print each server's standard error")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    with tempfile.TemporaryDirectory() as workdir:
        for name in args.attack or list(ATTACKS):
            attack, file_limit, kind = ATTACKS[name]
            server = Serving(Path(workdir), file_limit)
            with contextlib.ExitStack() as stack:
                ask = http_victim(server, "/api/info") if kind == "http" else page_victim(server, stack)
                with Victim(ask) as quiet_victim:
                    time.sleep(5)
                victim, what = attack(server, args.seconds, ask)
            log = server.stop()
            if args.log:
                print(log)
            print(f"{name}: {what}" + (f" (ulimit -n {file_limit})" if file_limit else ""))
            print(f"  before the attack: {quiet_victim.summary()}")
            print(f"  during the attack: {victim.summary()}")
            print(f"  server memory: {server.start_kb / 1024:.0f} MB at start, peak {server.peak_kb / 1024:.0f} MB; "
                  f"log {server.log_bytes:,} bytes ({log.count('Traceback')} tracebacks in its first 64 KB)",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

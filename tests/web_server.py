"""serve.py started for real as a subprocess on a free loopback port, and a small HTTP client for it.

Used by tests/test_web_api.py and tests/test_web_browser.py.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Iterator
from urllib.parse import urlsplit

from conftest import PROJECT_ROOT, shared_path
from test_sface import enrol, sface_model_args

START_SECONDS = 120  # loading the models on a busy shared machine


def copied_dataset(root: Path, people=("obama", "biden")) -> Path:
    """root/dataset with copies (not links: the server writes and deletes there) of some people of faces/known."""
    dataset = root / "dataset"
    for person in people:
        shutil.copytree(shared_path("faces/known") / person, dataset / person)
    return dataset


def enrolled(root: Path, people=("obama", "biden")) -> tuple[Path, Path]:
    """(dataset, embeddings) with those people copied and learned by extract_embeddings.py --model sface."""
    dataset = copied_dataset(root, people)
    embeddings = root / "embeddings.pickle"
    enrol(dataset, embeddings, *sface_model_args())
    return dataset, embeddings


class Server:
    """A running serve.py: its URL, token, and requests to it."""

    def __init__(self, dataset: Path, embeddings: Path, *extra: str, host: str = "127.0.0.1", env: dict | None = None,
                 preexec_fn=None) -> None:
        """`env` is added to the environment; `preexec_fn` runs in the child before serve.py (e.g. a ulimit)."""
        self.dataset, self.embeddings = dataset, embeddings
        command = [sys.executable, str(PROJECT_ROOT / "serve.py"), *sface_model_args(), "--dataset", str(dataset),
                   "--embeddings", str(embeddings), "--host", host, "--port", "0", *extra]
        self.process = subprocess.Popen(command, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        text=True, env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
                                        preexec_fn=preexec_fn)
        lines: queue.Queue = queue.Queue()
        threading.Thread(target=lambda: [lines.put(line) for line in self.process.stdout] and None,
                         daemon=True).start()
        deadline = time.monotonic() + START_SECONDS
        self.url = ""
        while not self.url:
            try:
                line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                self.stop()
                raise AssertionError(f"serve.py printed no URL: {self.process.stderr.read()}") from None
            if line.startswith("facerec web page: "):
                self.url = line.split(": ", 1)[1].strip()
        parts = urlsplit(self.url)
        self.host, self.port = parts.hostname, parts.port
        self.token = parts.query.removeprefix("token=") or None

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None,
                token: bool = True, raw: bool = False) -> tuple[int, dict | bytes, http.client.HTTPResponse]:
        """(status, JSON (bytes if raw or not JSON), response); the token goes as a Bearer header unless token=False."""
        headers = dict(headers or {})
        if token and self.token:
            headers.setdefault("Authorization", f"Bearer {self.token}")
        connection = http.client.HTTPConnection(self.host, self.port, timeout=120)
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            data = response.read()
        finally:
            connection.close()
        if not raw and response.getheader("content-type", "").startswith("application/json"):
            return response.status, json.loads(data), response
        return response.status, data, response

    def json(self, method: str, path: str, content: dict | None = None, **headers: str) -> tuple[int, dict]:
        body = None if content is None else json.dumps(content).encode()
        status, answer, _ = self.request(method, path, body, {k.replace("_", "-"): v for k, v in headers.items()})
        return status, answer

    def learned(self, key: str | None = None) -> dict:
        """POST /api/learn, then the progress once it is no longer learning."""
        status, progress = self.json("POST", "/api/learn", **({"X_Enrolment": key} if key else {}))
        assert status == 202, progress
        while progress["state"] == "learning":
            time.sleep(0.1)
            progress = self.json("GET", "/api/learn")[1]
        return progress

    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}/ws"

    def rss_kb(self) -> int:
        """The server's resident memory, from /proc."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def threads(self) -> int:
        """The server's thread count, from /proc."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("Threads:"):
                return int(line.split()[1])
        raise AssertionError("no Threads")

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> str:
        """Stop the server (Ctrl-C, as a user would); its standard error."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.process.stderr.read()


@contextlib.contextmanager
def serving(root: Path, *extra: str, people=("obama", "biden"), host: str = "127.0.0.1") -> Iterator[Server]:
    """A server on those people (copied to root and learned), stopped at the end."""
    dataset, embeddings = enrolled(root, people)
    server = Server(dataset, embeddings, *extra, host=host)
    try:
        yield server
    finally:
        server.stop()

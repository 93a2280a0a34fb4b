"""Events POSTed to a URL as JSON, with a timeout and retries (the QueuedSink in front keeps it off the video loop).

With a secret, each POST is signed: `X-Facerec-Timestamp` (seconds since the epoch) and `X-Facerec-Signature:
sha256=<hex HMAC-SHA256 of the exact body, keyed by the secret>` (docs/events.md shows a receiver checking it).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import threading
import urllib.error
import urllib.request
from typing import Callable
from urllib.parse import unquote, urlsplit, urlunsplit

from ..errors import FacerecError
from ..stores import masked
from .sink import Event, EventSink

TIMEOUT_SECONDS = 5.0
ATTEMPTS = 4  # one try and three retries, waiting 1, 2 then 4 s
FIRST_WAIT_SECONDS = 1.0


class WebhookSink(EventSink):
    """POSTs each event's JSON to `url` (http or https; user:password@ in it becomes Basic authentication)."""

    def __init__(self, url: str, warn: Callable[[str], None], timeout: float = TIMEOUT_SECONDS,
                 attempts: int = ATTEMPTS, first_wait: float = FIRST_WAIT_SECONDS, secret: bytes | None = None) -> None:
        self.shown = f"--webhook {masked(url)}"
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018  (raises ValueError for a bad port)
        except ValueError:
            raise FacerecError(f"{self.shown} is not a valid URL") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise FacerecError(f"{self.shown}: give an http:// or https:// URL with a host")
        self.headers = {"Content-Type": "application/json", "User-Agent": "facerec"}
        if parts.username is not None:
            login = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
            self.headers["Authorization"] = "Basic " + base64.b64encode(login).decode()
        self.url = urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path or "/", parts.query, ""))
        self.timeout, self.attempts, self.first_wait = timeout, attempts, first_wait
        self.secret = secret
        self._warn = warn
        self._failing = False  # warned about failures since the last delivery
        self._closing = threading.Event()

    def arrived(self, event: Event) -> None:
        self._post(event)

    def left(self, event: Event) -> None:
        self._post(event)

    def _post(self, event: Event) -> None:
        body = json.dumps(event.as_json()).encode()
        wait = self.first_wait
        for attempt in range(1, self.attempts + 1):
            try:
                request = urllib.request.Request(self.url, body, {**self.headers, **self.signed(body)}, method="POST")
                with urllib.request.urlopen(request, timeout=self.timeout):
                    self._failing = False
                    return
            except urllib.error.HTTPError as error:
                problem = f"HTTP {error.code} {error.reason}"
                if 400 <= error.code < 500 and error.code not in (408, 429):  # asking again will not help
                    break
            except (urllib.error.URLError, OSError) as error:
                problem = str(getattr(error, "reason", None) or error)
            if attempt == self.attempts or self._closing.wait(wait):
                break
            wait *= 2
        if not self._failing:  # one warning per outage, not one per event
            self._failing = True
            self._warn(f"{self.shown}: an event was not delivered ({problem}); later ones are tried too")

    def signed(self, body: bytes) -> dict[str, str]:
        """The signature headers of `body` (none without a secret), made afresh for each attempt."""
        if self.secret is None:
            return {}
        return {"X-Facerec-Timestamp": str(int(time.time())),
                "X-Facerec-Signature": "sha256=" + hmac.new(self.secret, body, hashlib.sha256).hexdigest()}

    def close(self) -> None:
        self._closing.set()

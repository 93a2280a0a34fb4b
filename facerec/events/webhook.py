"""Events POSTed to a URL as JSON, with a timeout and retries (the QueuedSink in front keeps it off the video loop).

The POST is made with http.client, not urllib: a redirect is never followed (urllib follows it, turns the
POST into a GET without its body, sends the Basic login to whatever host it names, and follows ftp:// too),
and the timeout bounds the whole request, however slowly the receiver trickles its answer (urllib's
bounds each read only).

With a secret, each POST is signed: `X-Facerec-Timestamp` (seconds since the epoch) and `X-Facerec-Signature:
sha256=<hex HMAC-SHA256 of the exact body, keyed by the secret>` (docs/events.md shows a receiver checking it).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import socket
import threading
import time
from typing import Callable
from urllib.parse import unquote, urlsplit, urlunsplit

from ..errors import FacerecError
from ..stores import masked
from ..text import printable
from .sink import Event, EventSink

TIMEOUT_SECONDS = 5.0  # for the whole request: connecting, sending, and the answer's status line and headers
ATTEMPTS = 4  # one try and three retries, waiting 1, 2 then 4 s
FIRST_WAIT_SECONDS = 1.0


def shown_url(url: str) -> str:
    """`url` fit to print: without its password, its last path segment or its query, where webhook URLs keep
    their secrets (Home Assistant's /api/webhook/ID, Slack's and Discord's tokens, ?token=)."""
    try:
        parts = urlsplit(masked(url))
    except ValueError:
        return masked(url).partition("?")[0].rpartition("/")[0] + "/***"
    head, _, last = parts.path.rstrip("/").rpartition("/")
    path = f"{head}/***" if last else parts.path
    return urlunsplit((parts.scheme, parts.netloc, path, "***" if parts.query else "", ""))


class WebhookSink(EventSink):
    """POSTs each event's JSON to `url` (http or https; user:password@ in it becomes Basic authentication)."""

    def __init__(self, url: str, warn: Callable[[str], None], timeout: float = TIMEOUT_SECONDS,
                 attempts: int = ATTEMPTS, first_wait: float = FIRST_WAIT_SECONDS, secret: bytes | None = None) -> None:
        self.shown = f"--webhook {shown_url(url)}"
        try:
            parts = urlsplit(url)
            self.port = parts.port
        except ValueError:
            raise FacerecError(f"{self.shown} is not a valid URL") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise FacerecError(f"{self.shown}: give an http:// or https:// URL with a host")
        self.https, self.host = parts.scheme == "https", parts.hostname
        self.headers = {"Content-Type": "application/json", "User-Agent": "facerec"}
        if parts.username is not None:
            login = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
            self.headers["Authorization"] = "Basic " + base64.b64encode(login).decode()
        self.target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.timeout, self.attempts, self.first_wait = timeout, attempts, first_wait
        self.undelivered = 0
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
                status, reason, location = self._request(body)
                if 200 <= status < 300:
                    self._failing = False
                    return
                problem = f"HTTP {status} {printable(reason[:100])}"
                if 300 <= status < 400:  # never followed: it could lead anywhere, with the login
                    where = f" to {shown_url(location)}" if location else ""
                    problem += f": a redirect{where}, not followed"
                    break
                if 400 <= status < 500 and status not in (408, 429):  # asking again will not help
                    break
            except TimeoutError:
                problem = f"no answer within {self.timeout:g} s"
            except (OSError, http.client.HTTPException) as error:
                problem = printable(str(getattr(error, "strerror", None) or error)[:200]) or type(error).__name__
            if attempt == self.attempts or self._closing.wait(wait):
                break
            wait *= 2
        if self._closing.is_set():  # given up at the end: the QueuedSink counts it with those still waiting
            return
        self.undelivered += 1
        if not self._failing:  # one warning per outage, not one per event
            self._failing = True
            self._warn(f"{self.shown}: an event was not delivered ({problem}); later ones are tried too")

    def _request(self, body: bytes) -> tuple[int, str, str | None]:
        """One POST: (status, reason, Location). TimeoutError if it takes longer than self.timeout in all."""
        kind = http.client.HTTPSConnection if self.https else http.client.HTTPConnection
        connection = kind(self.host, self.port, timeout=self.timeout)
        deadline = _Deadline(connection, self.timeout)
        try:
            connection.connect()
            deadline.check()
            connection.request("POST", self.target, body, {**self.headers, **self.signed(body)})
            response = connection.getresponse()
            deadline.check()
            return response.status, response.reason, response.getheader("Location")
        except (OSError, http.client.HTTPException):
            deadline.check()  # cut by the deadline: say so, not "connection reset"
            raise
        finally:
            deadline.cancel()
            connection.close()

    def signed(self, body: bytes) -> dict[str, str]:
        """The signature headers of `body` (none without a secret), made afresh for each attempt."""
        if self.secret is None:
            return {}
        return {"X-Facerec-Timestamp": str(int(time.time())),
                "X-Facerec-Signature": "sha256=" + hmac.new(self.secret, body, hashlib.sha256).hexdigest()}

    def close(self) -> None:
        self._closing.set()


class _Deadline:
    """Shuts a connection's socket down `seconds` after it is made: whatever the request is waiting for (a
    TLS handshake, a status line trickled a byte at a time) then ends at once."""

    def __init__(self, connection: http.client.HTTPConnection, seconds: float) -> None:
        self._connection, self._lock, self._expired = connection, threading.Lock(), False
        self._end = time.monotonic() + seconds
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def _expire(self) -> None:
        with self._lock:
            self._expired = True
            sock = self._connection.sock
            if sock is not None:
                try:  # socket.socket's shutdown, not SSLSocket's (which drops its TLS state first)
                    socket.socket.shutdown(sock, socket.SHUT_RDWR)
                except OSError:
                    pass

    def check(self) -> None:
        """TimeoutError if the time is up (the socket may have been cut, or may have been made too late to be)."""
        with self._lock:
            if self._expired or time.monotonic() >= self._end:
                raise TimeoutError

    def cancel(self) -> None:
        self._timer.cancel()

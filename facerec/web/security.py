"""Who may use the server: the access token, the Host a loopback server answers to, same-origin writes.

A server bound to a loopback address needs no token, but still refuses
requests whose Host is not a loopback name (a web site that rebinds its DNS
name to 127.0.0.1) and writes or WebSockets sent from another origin (a web
site posting to localhost). Any other address requires the token on every
request and WebSocket: `?token=` (the page's URL, which also sets a cookie for
the page's own requests), `Authorization: Bearer`, or that cookie.
"""

from __future__ import annotations

import json
import secrets
from http.cookies import SimpleCookie
from typing import Awaitable, Callable
from urllib.parse import parse_qs

LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")
TOKEN_COOKIE = "facerec_token"
SAFE_METHODS = ("GET", "HEAD")

Scope = dict
Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]


def is_loopback(host: str) -> bool:
    return host.strip("[]") in LOOPBACK_HOSTS


def new_token() -> str:
    return secrets.token_urlsafe(18)


def _headers(scope: Scope) -> dict[str, str]:
    return {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope.get("headers", [])}


def _host_name(host_header: str) -> str:
    """The host of a Host header, without its port ("[::1]:8000" -> "::1")."""
    if host_header.startswith("["):
        return host_header[1:host_header.find("]")]
    return host_header.rsplit(":", 1)[0] if host_header.count(":") == 1 else host_header


def presented_token(scope: Scope) -> tuple[str | None, bool]:
    """(the token the request carries, whether it came in the query string) or (None, False)."""
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    if query.get("token"):
        return query["token"][0], True
    headers = _headers(scope)
    authorization = headers.get("authorization", "")
    if authorization.lower().startswith("bearer "):
        return authorization[7:].strip(), False
    cookie = SimpleCookie()
    try:
        cookie.load(headers.get("cookie", ""))
    except Exception:  # a malformed cookie header is no token
        return None, False
    return (cookie[TOKEN_COOKIE].value, False) if TOKEN_COOKIE in cookie else (None, False)


class AccessGuard:
    """ASGI middleware that refuses (401, 403) what the rules above forbid, for HTTP and WebSockets alike."""

    def __init__(self, app: Callable, token: str | None, loopback: bool) -> None:
        self.app = app
        self.token = token
        self.loopback = loopback

    def refusal(self, scope: Scope) -> tuple[int, str, bool]:
        """(status, message, token came in the query string); status 0 lets the request through."""
        headers = _headers(scope)
        host = headers.get("host", "")
        if self.loopback and not is_loopback(_host_name(host)):
            return 403, f"this server answers to 127.0.0.1 or localhost, not {host!r}", False
        origin = headers.get("origin")
        if origin is not None and (scope["type"] == "websocket" or scope.get("method") not in SAFE_METHODS):
            own = {f"http://{host}", f"https://{host}"}
            if origin not in own:
                return 403, f"requests from another site ({origin}) are refused", False
        if self.token is None:
            return 0, "", False
        token, in_query = presented_token(scope)
        if token is None:
            return 401, "this server needs its access token: open the URL serve.py printed (with ?token=...)", False
        if not secrets.compare_digest(token.encode(), self.token.encode()):
            return 403, "wrong access token", False
        return 0, "", in_query

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        status, message, token_in_query = self.refusal(scope)
        if status:
            # a WebSocket's handshake is refused with the same HTTP answer (the ASGI websocket.http.response extension)
            kind = "http" if scope["type"] == "http" else "websocket.http"
            body = json.dumps({"error": message}).encode()
            await send({"type": f"{kind}.response.start", "status": status,
                        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
            await send({"type": f"{kind}.response.body", "body": body})
            return
        if not token_in_query or scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_cookie(event: dict) -> None:
            if event["type"] == "http.response.start":  # the page's own requests then carry the token
                cookie = f"{TOKEN_COOKIE}={self.token}; Path=/; HttpOnly; SameSite=Strict"
                event = {**event, "headers": [*event.get("headers", []), (b"set-cookie", cookie.encode())]}
            await send(event)

        await self.app(scope, receive, send_with_cookie)

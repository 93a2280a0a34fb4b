"""What one client may hold of the server: open connections, time to send a request, WebSockets, images at work.

A connection must send its request's head within HEADER_SECONDS of opening (or
of its previous answer), else it is closed: half-sent requests (slowloris)
cannot pile up. Open connections are capped below the process's open-file
limit (raised to its hard limit at start): when the cap is reached, the
connection that has waited longest for its request's head is closed to make
room, so accepting new connections never fails. WebSockets are capped per
server and per client address; each client address has at most one image
decoded and recognised at a time, and the whole server MAX_DECODES.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import logging
import os
import resource
from typing import AsyncIterator

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

HEADER_SECONDS = 10.0
FILE_RESERVE = 128  # descriptors kept for the models, the dataset, the store, threads and the database
# connections accepted at once before any is looked at (asyncio accepts up to the listen backlog in one go):
# the cap keeps room for two such bursts, so that accepting never fails for lack of descriptors
ACCEPT_BURST = 128
MAX_WEBSOCKETS = 16
MAX_WEBSOCKETS_PER_CLIENT = 4
MAX_DECODES = 2  # images decoded at once, whoever sent them: the machine's cores, not its memory, set the pace
FREED_MEMORY_THRESHOLD = 1024 * 1024  # buffers from this size up go straight back to the system when freed
M_MMAP_THRESHOLD, M_ARENA_MAX = -3, -8  # mallopt's parameters (glibc's malloc.h)

log = logging.getLogger("uvicorn.error")


def raise_file_limit() -> int:
    """Raise this process's open-file limit to its hard limit; the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
    return soft if soft != resource.RLIM_INFINITY else 65536


def connection_cap(file_limit: int) -> int:
    """How many connections may be open at once under `file_limit` open files."""
    return max(16, file_limit - FILE_RESERVE - 2 * ACCEPT_BURST)


def _mallopt(parameter: int, value: int) -> None:
    """glibc's mallopt(parameter, value); nothing where the C library is not glibc."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        if libc is not None and hasattr(libc, "mallopt"):
            libc.mallopt(parameter, value)
    except OSError:  # not glibc: nothing to tune
        pass


def limit_malloc_arenas(arenas: int) -> None:
    """At most `arenas` glibc malloc arenas from now on (call it before threads start), unless $MALLOC_ARENA_MAX
    already says how many. glibc gives each thread that allocates an arena of its own, up to 8 a core, and an
    arena keeps what it once held: serve.py --config with 4 cameras held 397 MB with glibc's default and 340 MB
    with one arena a core (bench/service_memory.py, docs/service.md "How it scales")."""
    if not os.environ.get("MALLOC_ARENA_MAX"):
        _mallopt(M_ARENA_MAX, max(1, arenas))


def give_back_freed_memory() -> None:
    """Make glibc return large freed buffers (frames, uploads) to the system at once.

    By default glibc raises its mmap threshold after the first large buffer is freed, so later frames
    come from the heap and the memory of closed WebSockets stays with the process.
    """
    _mallopt(M_MMAP_THRESHOLD, FREED_MEMORY_THRESHOLD)  # a fixed threshold stays fixed


def http_protocol(cap: int) -> type[H11Protocol]:
    """uvicorn's h11 protocol with the head timeout and the connection cap above (`cap` connections)."""
    waiting: dict[Guarded, None] = {}  # connections waiting for a request's head, oldest first

    class Guarded(H11Protocol):
        head_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            if len(self.connections) > cap:
                oldest = next(iter(waiting), None)
                if oldest is None:  # every connection is busy with a request: this one waits for none
                    log.warning("server full: %d connections are open, a new one was closed", cap)
                    transport.close()
                    return
                log.warning("server full: %d connections are open, those waiting longest for a request are closed",
                            cap)
                oldest.close_waiting()
            self.await_head()

        def await_head(self) -> None:
            waiting[self] = None
            self.cancel_head_timer()
            self.head_timer = self.loop.call_later(HEADER_SECONDS, self.close_waiting)

        def cancel_head_timer(self) -> None:
            if self.head_timer is not None:
                self.head_timer.cancel()
                self.head_timer = None

        def close_waiting(self) -> None:
            """Close this connection if it is still waiting for a request's head."""
            waiting.pop(self, None)
            self.cancel_head_timer()
            if not self.transport.is_closing():
                self.transport.close()

        def handle_events(self) -> None:
            super().handle_events()
            if self.conn.their_state is not h11.IDLE and self in waiting:  # a request's head has arrived
                waiting.pop(self, None)
                self.cancel_head_timer()

        def handle_websocket_upgrade(self, event: h11.Request) -> None:
            waiting.pop(self, None)
            self.cancel_head_timer()
            super().handle_websocket_upgrade(event)

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
                self.await_head()

        def connection_lost(self, exc: Exception | None) -> None:
            waiting.pop(self, None)
            self.cancel_head_timer()
            super().connection_lost(exc)

    return Guarded


class WebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's WebSocket protocol that lets go of a closed connection's half-received frame at once, and
    refuses a handshake with an HTTP answer quietly.

    The frame being received sits in the websockets parser, a generator that refers to its protocol: that
    cycle waits for Python's cyclic garbage collector, which an idle server may not run for a long time.
    """

    async def send(self, message) -> None:  # type: ignore[override]
        await super().send(message)
        if message["type"] == "websocket.http.response.body" and not message.get("more_body", False):
            self.handshake_complete = True  # uvicorn 0.54 forgets it and logs an error for each refused handshake

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self.conn.reader.buffer.clear()
        self.frames = []


class ClientSlots:
    """Open WebSockets, per server and per client address: a new one is refused beyond the caps."""

    def __init__(self, per_server: int = MAX_WEBSOCKETS, per_client: int = MAX_WEBSOCKETS_PER_CLIENT) -> None:
        self.per_server, self.per_client = per_server, per_client
        self.open: dict[str, int] = {}

    def refusal(self, client: str) -> tuple[int, str] | None:
        """(status, message) if `client` may not open one more, else None (and it is counted: release it)."""
        if self.open.get(client, 0) >= self.per_client:
            return 429, f"this address already has {self.per_client} live pages open: close one"
        if sum(self.open.values()) >= self.per_server:
            return 503, f"the server already serves {self.per_server} live pages: try again later"
        self.open[client] = self.open.get(client, 0) + 1
        return None

    def release(self, client: str) -> None:
        self.open[client] -= 1
        if not self.open[client]:
            del self.open[client]


class Turns:
    """One image at a time per client address, first come first served: a client sending many waits for itself."""

    def __init__(self) -> None:
        self.locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def of(self, client: str) -> AsyncIterator[None]:
        lock, users = self.locks.get(client, (asyncio.Lock(), 0))
        self.locks[client] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self.locks[client]
            if users == 1:
                del self.locks[client]
            else:
                self.locks[client] = (lock, users - 1)

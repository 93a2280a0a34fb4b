"""Hostile clients of serve.py, on loopback only: half-sent requests, raw WebSocket frames, decompression bombs.

Used by bench/web_attacks.py and tests/test_web_hardening.py. Each client can come from its own loopback
address (127.0.0.2, 127.0.0.3, ...: every 127.x.y.z is this computer), so that limits per client address
can be told from limits per server.
"""

from __future__ import annotations

import base64
import contextlib
import os
import selectors
import socket
import struct
import time
import zlib

HALF_REQUEST = b"GET /api/info HTTP/1.1\r\nHost: x\r\n"  # the blank line that ends the head never comes
TEXT, BINARY = 0x1, 0x2


def loopback_socket(source: str = "127.0.0.1") -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((source, 0))
    return sock


def half_sent(host: str, port: int, count: int, source: str = "127.0.0.3", seconds: float = 10.0
              ) -> list[socket.socket]:
    """`count` connections (non-blocking, all at once), each sending HALF_REQUEST once connected; returns
    them all (the caller closes them). Gives up on the ones not connected after `seconds`."""
    sockets = []
    with selectors.DefaultSelector() as selector:  # epoll: select() stops at descriptor 1024
        for _ in range(count):
            sock = loopback_socket(source)
            sock.setblocking(False)
            sock.connect_ex((host, port))
            sockets.append(sock)
            selector.register(sock, selectors.EVENT_WRITE)
        deadline = time.monotonic() + seconds
        while selector.get_map() and time.monotonic() < deadline:
            for key, _ in selector.select(0.5):
                selector.unregister(key.fileobj)
                if key.fileobj.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                    with contextlib.suppress(OSError):
                        key.fileobj.send(HALF_REQUEST)
    return sockets


def websocket(host: str, port: int, source: str = "127.0.0.1", path: str = "/ws", timeout: float = 30.0
              ) -> tuple[int, socket.socket]:
    """A raw WebSocket handshake: (HTTP status answered, the socket; on 101 ready for frames)."""
    sock = loopback_socket(source)
    sock.settimeout(timeout)
    sock.connect((host, port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            break
        head += chunk
    status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/") else 0
    return status, sock


def frame_header(opcode: int, length: int) -> bytes:
    """A client frame's header (final, masked with a zero key, so the payload goes as it is)."""
    if length < 126:
        size = struct.pack(">B", 0x80 | length)
    elif length < 65536:
        size = struct.pack(">BH", 0x80 | 126, length)
    else:
        size = struct.pack(">BQ", 0x80 | 127, length)
    return struct.pack(">B", 0x80 | opcode) + size + b"\0\0\0\0"


def send_frame(sock: socket.socket, opcode: int, payload: bytes, declared: int | None = None) -> None:
    """Send a frame declaring `declared` bytes (default: the payload's length) with `payload` after the header."""
    sock.sendall(frame_header(opcode, len(payload) if declared is None else declared) + payload)


def closed_by_server(sock: socket.socket, seconds: float = 30.0) -> bool:
    """Whether the server closes `sock` within `seconds` (what it sends meanwhile is read and dropped)."""
    sock.settimeout(seconds)
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            if not sock.recv(65536):
                return True
    except ConnectionResetError:
        return True
    except (TimeoutError, socket.timeout):
        return False
    return False


def bomb_png(width: int, height: int) -> bytes:
    """A valid grey PNG of width x height black pixels: 97 KB for 10000 x 10000, which decodes into 300 MB."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    compressor = zlib.compressobj(9)
    row = bytes(width + 1)  # filter byte 0, then the pixels
    body = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")

"""An on-screen window that shows frames and reports the keys pressed."""

from __future__ import annotations

import os
import socket
import struct
import sys

import cv2
import numpy as np

from .errors import FacerecError

KEY_ESC = 27
KEY_SPACE = 32
QUIT_KEYS = {KEY_ESC, ord("q"), ord("Q")}


X_TCP_BASE_PORT = 6000  # display N listens on TCP port 6000+N
PROBE_SECONDS = 2.0
# The 12-byte X11 connection setup: little-endian, protocol 11.0, no authorisation sent.
X_SETUP_REQUEST = b"l\0" + struct.pack("<HHHH", 11, 0, 0, 0) + b"\0\0"


def _x_server_answers(family: int, address: str | tuple[str, int]) -> bool:
    """True if an X server at `address` answers a connection setup (success, failure or "authenticate").

    Any answer means a server is there (it may still want the cookie Qt will send); no
    connection, a hang-up (a dead SSH X forward) or silence for PROBE_SECONDS means there is none.
    """
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.settimeout(PROBE_SECONDS)
            probe.connect(address)
            probe.sendall(X_SETUP_REQUEST)
            return probe.recv(1) in (b"\0", b"\1", b"\2")
    except OSError:  # refused, unreachable, timed out, reset, unknown host
        return False


def display_problem() -> str | None:
    """Why no window can be opened here, or None if one can (as far as a real X handshake can tell).

    OpenCV's GUI (Qt) aborts the whole process with a core dump when it cannot
    reach the X display, so this must be checked before any window is created:
    a local display through its socket, a remote one (host:N, an SSH forward)
    through TCP port 6000+N.
    """
    if not sys.platform.startswith("linux"):
        return None
    display = os.environ.get("DISPLAY", "")
    if not display:
        return "no display (DISPLAY is not set)"
    host, _, screen = display.rpartition(":")
    protocol, _, host = host.rpartition("/")
    number = screen.split(".", 1)[0]
    if not number.isdigit():
        return f"DISPLAY={display!r} is not a display name such as :0 or localhost:10.0"
    if host in ("", "unix") or protocol == "unix":
        path = f"/tmp/.X11-unix/X{number}"
        answers = _x_server_answers(socket.AF_UNIX, path) or _x_server_answers(socket.AF_UNIX, "\0" + path)
    else:
        answers = _x_server_answers(socket.AF_INET6 if ":" in host else socket.AF_INET,
                                    (host.strip("[]"), X_TCP_BASE_PORT + int(number)))
    return None if answers else f"no X server answers on display {display}"


class Window:
    """A named OpenCV window; `show` displays a frame and returns the key pressed (or None)."""

    def __init__(self, title: str, hint: str = "") -> None:
        """Open the window; raise FacerecError (with `hint` appended) when there is no display."""
        self.title = title
        advice = f"; {hint}" if hint else ""
        problem = display_problem()
        if problem:
            raise FacerecError(f"cannot open a window: {problem}{advice}")
        try:
            cv2.namedWindow(title, cv2.WINDOW_AUTOSIZE)
        except cv2.error:
            raise FacerecError(f"cannot open a window{advice}") from None

    def show(self, frame: np.ndarray, wait_ms: int = 1) -> int | None:
        cv2.imshow(self.title, frame)
        key = cv2.waitKey(wait_ms)
        return None if key < 0 else key & 0xFF

    @property
    def closed(self) -> bool:
        """True once the user closed the window with the mouse."""
        try:
            return cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1
        except cv2.error:
            return True

    def close(self) -> None:
        try:
            cv2.destroyWindow(self.title)
            cv2.waitKey(1)
        except cv2.error:
            pass

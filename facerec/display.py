"""An on-screen window that shows frames and reports the keys pressed."""

from __future__ import annotations

import os
import re
import socket
import sys

import cv2
import numpy as np

from .errors import FacerecError

KEY_ESC = 27
KEY_SPACE = 32
QUIT_KEYS = {KEY_ESC, ord("q"), ord("Q")}


def display_problem() -> str | None:
    """Why no window can be opened here, or None if one can (as far as can be told without opening one).

    OpenCV's GUI aborts the whole process when it finds no X display, so this
    must be checked before any window is created.
    """
    if not sys.platform.startswith("linux"):
        return None
    display = os.environ.get("DISPLAY", "")
    if not display:
        return "no display (DISPLAY is not set)"
    local = re.fullmatch(r"(?:unix)?:(\d+)(?:\.\d+)?", display)
    if local:
        with socket.socket(socket.AF_UNIX) as probe:
            try:
                probe.connect(f"/tmp/.X11-unix/X{local[1]}")
            except OSError:
                return f"no X server answers on display {display}"
    return None


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

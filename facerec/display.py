"""An on-screen window that shows frames and reports the keys pressed."""

from __future__ import annotations

import cv2
import numpy as np

from .errors import FacerecError

KEY_ESC = 27
KEY_SPACE = 32
QUIT_KEYS = {KEY_ESC, ord("q"), ord("Q")}


class Window:
    """A named OpenCV window; `show` displays a frame and returns the key pressed (or None)."""

    def __init__(self, title: str) -> None:
        self.title = title
        try:
            cv2.namedWindow(title, cv2.WINDOW_AUTOSIZE)
        except cv2.error:
            raise FacerecError("cannot open a window (no display?): use --no-display") from None

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

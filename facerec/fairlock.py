"""A lock handed to its waiters in the order they asked: cameras sharing one set of networks take turns.

threading.Lock favours whoever runs: a camera's thread that releases it and asks again at
once can take it back before a waiting camera wakes, and one camera starves the others.
"""

from __future__ import annotations

import collections
import threading


class FairLock:
    """First come, first served; a context manager like threading.Lock."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._waiting: collections.deque[threading.Event] = collections.deque()
        self._held = False

    def acquire(self) -> None:
        with self._guard:
            if not self._held:
                self._held = True
                return
            turn = threading.Event()
            self._waiting.append(turn)
        turn.wait()  # release() hands the lock over: it stays held, now by this thread

    def release(self) -> None:
        with self._guard:
            if self._waiting:
                self._waiting.popleft().set()
            else:
                self._held = False

    def __enter__(self) -> FairLock:
        self.acquire()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()

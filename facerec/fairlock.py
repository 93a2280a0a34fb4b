"""Handed to waiters in the order they asked: cameras sharing sets of networks take turns.

threading.Lock favours whoever runs: a camera's thread that releases it and asks again at
once can take it back before a waiting camera wakes, and one camera starves the others.
FairPool does the same for several interchangeable things (a set of networks for each core):
a waiter gets whichever is free first, waiters in the order they asked; FairLock is a pool of one.
"""

from __future__ import annotations

import collections
import contextlib
import threading
from typing import Generic, Iterable, Iterator, TypeVar

T = TypeVar("T")


class _Waiter(Generic[T]):
    def __init__(self) -> None:
        self.handed = threading.Event()
        self.item: T | None = None


class FairPool(Generic[T]):
    """`items` lent one holder at a time each, first come, first served."""

    def __init__(self, items: Iterable[T]) -> None:
        self._guard = threading.Lock()
        self._free: collections.deque[T] = collections.deque(items)
        self._waiting: collections.deque[_Waiter[T]] = collections.deque()
        self.size = len(self._free)
        self.in_use = self.most_in_use = 0  # lent now; the most lent at once (several working in parallel)

    def add(self, item: T) -> None:
        """One more item to lend (a waiter, if any, gets it now)."""
        with self._guard:
            self.size += 1
            if self._waiting:
                self._lent()
            self._hand_over(item)

    def acquire(self) -> T:
        with self._guard:
            if self._free:  # (never while some wait: release hands over to them)
                self._lent()
                return self._free.popleft()
            waiter: _Waiter[T] = _Waiter()
            self._waiting.append(waiter)
        waiter.handed.wait()  # release() hands an item over: it stays lent, now to this thread
        return waiter.item  # type: ignore[return-value]

    def release(self, item: T) -> None:
        with self._guard:
            if not self._waiting:
                self.in_use -= 1
            self._hand_over(item)

    def _hand_over(self, item: T) -> None:
        """To the first waiter, else back to the free ones (under the guard)."""
        if self._waiting:
            waiter = self._waiting.popleft()
            waiter.item = item
            waiter.handed.set()
        else:
            self._free.append(item)  # at the end: the items take turns even with one holder

    @contextlib.contextmanager
    def take(self) -> Iterator[T]:
        item = self.acquire()
        try:
            yield item
        finally:
            self.release(item)

    def _lent(self) -> None:
        self.in_use += 1
        self.most_in_use = max(self.most_in_use, self.in_use)


class FairLock:
    """First come, first served; a context manager like threading.Lock."""

    def __init__(self) -> None:
        self._pool: FairPool[None] = FairPool([None])

    @property
    def _waiting(self) -> collections.deque:
        return self._pool._waiting

    def acquire(self) -> None:
        self._pool.acquire()

    def release(self) -> None:
        self._pool.release(None)

    def __enter__(self) -> FairLock:
        self.acquire()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()

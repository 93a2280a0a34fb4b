"""FairLock: the cameras sharing one set of networks get it in the order they asked (facerec/fairlock.py)."""

from __future__ import annotations

import threading
import time

from facerec.fairlock import FairLock

WAIT_SECONDS = 30  # a bound on a busy machine, never a measure


def wait_until(condition) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.001)


def test_waiters_get_the_lock_in_the_order_they_asked_and_a_releaser_cannot_take_it_back():
    lock, order = FairLock(), []
    lock.acquire()

    def take(number: int) -> None:
        with lock:
            order.append(number)

    threads = []
    for number in range(5):
        thread = threading.Thread(target=take, args=(number,))
        thread.start()
        threads.append(thread)
        wait_until(lambda: len(lock._waiting) == number + 1)  # queued before the next one asks
    lock.release()
    lock.acquire()  # asks again at once, as a camera's loop does: it comes after every waiter
    order.append("again")
    lock.release()
    for thread in threads:
        thread.join(WAIT_SECONDS)
    assert order == [0, 1, 2, 3, 4, "again"]

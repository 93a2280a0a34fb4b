"""FairLock and FairPool: the cameras sharing sets of networks get one in the order they asked (facerec/fairlock.py)."""

from __future__ import annotations

import threading
import time

from facerec.fairlock import FairLock, FairPool

WAIT_SECONDS = 3  # a bound on a busy machine, never a measure


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


def test_a_pool_lends_each_item_to_one_holder_at_a_time_then_to_waiters_in_the_order_they_asked():
    pool, got = FairPool(["x", "y"]), []
    first, second = pool.acquire(), pool.acquire()
    assert (first, second) == ("x", "y") and pool.in_use == pool.most_in_use == 2

    def take(number: int) -> None:
        got.append((number, pool.acquire()))  # kept: each waiter holds what it gets

    threads = []
    for number in range(3):
        thread = threading.Thread(target=take, args=(number,))
        thread.start()
        threads.append(thread)
        wait_until(lambda: len(pool._waiting) == number + 1)  # queued before the next one asks
    pool.release(second)  # to the first waiter, not back to the free ones
    wait_until(lambda: len(got) == 1)
    pool.add("z")  # one more item: the next waiter gets it at once
    wait_until(lambda: len(got) == 2)
    pool.release(first)
    for thread in threads:
        thread.join(WAIT_SECONDS)
    assert got == [(0, "y"), (1, "z"), (2, "x")]
    assert pool.size == 3 and pool.in_use == pool.most_in_use == 3
    for _, item in got:
        pool.release(item)
    assert pool.in_use == 0 and list(pool._free) == ["y", "z", "x"]
    assert pool.acquire() == "y"  # the one free longest: the items take turns

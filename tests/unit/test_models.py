"""Model-loading plumbing shared by both model services."""

from __future__ import annotations

import os
import threading
import time

import pytest

from common.errors import Timeout
from common.models import FairLock, configure_threads


def test_fair_lock_hands_over_in_arrival_order() -> None:
    """A thread re-acquiring in a loop must not starve the others waiting for the model."""
    lock, order = FairLock(), []
    lock.acquire()
    threads = []
    for name in ("a", "b", "c"):
        thread = threading.Thread(
            target=lambda n=name: (lock.acquire(), order.append(n), lock.release())
        )
        thread.start()
        threads.append(thread)
        time.sleep(0.05)  # let each one queue up before the next
    lock.release()
    for thread in threads:
        thread.join(timeout=5)
    assert order == ["a", "b", "c"]


def test_acquire_times_out_on_a_held_lock_and_leaves_the_queue() -> None:
    lock = FairLock()
    assert lock.acquire()
    assert lock.acquire(timeout=0) is False  # no wait at all
    assert lock.acquire(timeout=0.05) is False
    assert lock.waiting == 0  # the waiter that gave up is gone from the queue
    lock.release()
    assert lock.acquire(timeout=0) is True  # and the lock is free, not handed to a ghost
    lock.release()


def test_a_waiter_that_gives_up_is_skipped_and_the_others_keep_their_turns() -> None:
    lock, order = FairLock(), []
    lock.acquire()

    def take(name: str, timeout: float | None) -> None:
        if lock.acquire(timeout=timeout):
            order.append(name)
            lock.release()
        else:
            order.append(f"{name} gave up")

    threads = []
    for name, timeout in (("a", None), ("b", 0.2), ("c", None)):
        thread = threading.Thread(target=take, args=(name, timeout))
        thread.start()
        threads.append(thread)
        time.sleep(0.05)  # queue them in this order
    threads[1].join(timeout=5)  # b gives up while the lock is still held
    assert order == ["b gave up"]
    assert lock.waiting == 2
    lock.release()
    for thread in threads:
        thread.join(timeout=5)
    assert order == ["b gave up", "a", "c"]
    assert lock.acquire(timeout=0) is True
    lock.release()


def test_timeouts_racing_hand_overs_never_lose_the_lock_or_break_exclusion() -> None:
    """Many threads with tiny timeouts: a hand-over that meets a timeout is kept, not lost."""
    lock = FairLock()
    inside, peak = [0], [0]
    counter = threading.Lock()

    def worker(seed: int) -> None:
        for i in range(150):
            timeout = ((seed * 7 + i) % 4) * 0.0005
            if lock.acquire(timeout=timeout):
                with counter:
                    inside[0] += 1
                    peak[0] = max(peak[0], inside[0])
                with counter:
                    inside[0] -= 1
                lock.release()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads), "a waiter never woke"
    assert peak[0] == 1
    assert lock.waiting == 0
    assert lock.acquire(timeout=0) is True  # nobody holds it: no hand-over went missing
    lock.release()


def test_until_a_passed_deadline_raises_timeout_even_on_a_free_lock() -> None:
    lock = FairLock()
    with pytest.raises(Timeout):
        with lock.until(time.time() - 1):
            raise AssertionError("must not run")
    assert lock.acquire(timeout=0) is True  # released again
    lock.release()


def test_until_gives_up_at_the_deadline_while_another_holds_the_lock() -> None:
    lock = FairLock()
    lock.acquire()
    with pytest.raises(Timeout):
        with lock.until(time.time() + 0.1):
            raise AssertionError("must not run")
    assert lock.waiting == 0
    lock.release()
    with lock.until(time.time() + 5):
        assert lock.acquire(timeout=0) is False  # held inside the block
    assert lock.acquire(timeout=0) is True
    lock.release()


def test_configure_threads_zero_means_every_core() -> None:
    import torch

    before = torch.get_num_threads()
    try:
        assert configure_threads(0) == (os.cpu_count() or 1)
        assert torch.get_num_threads() == (os.cpu_count() or 1)
        assert configure_threads(1) == 1
    finally:
        torch.set_num_threads(before)


def test_large_buffers_are_mapped_on_their_own_under_glibc():
    import platform

    from common.models import release_large_buffers

    expected = platform.libc_ver()[0] == "glibc"
    assert release_large_buffers() is expected

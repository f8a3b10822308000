"""Model-loading plumbing shared by both model services."""

from __future__ import annotations

import threading
import time

from common.models import FairLock


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

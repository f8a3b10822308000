"""Bucket monitor: the batching policy of the STR worker, free of RabbitMQ and torch.

The RabbitMQ worker (pika, one thread) and the embedded engine (request threads plus one
recognition thread) gather crops from many requests into recognition batches with the same rules,
so the rules live here once:

- flush when the bucket holds ``max_batch`` crops (``STR_MAX_BATCH``, default 350);
- flush when the oldest crop has waited ``max_wait_ms`` (``STR_MAX_WAIT_MS``, default 50 ms);
- policy ``adaptive`` (default, ``STR_BUCKET_POLICY``): also flush at once when the consumer is
  idle and nothing more is known to be queued upstream, so a lone request on a quiet service is
  not held back by the delay (TorchServe documents that a fixed batch delay makes every request
  wait the full delay under light load). Under load the consumer is busy running the previous
  batch, crops pile up meanwhile, and batches fill by themselves;
- policy ``fixed``: plain fill-or-timeout, which is what a batch-size/latency study wants.

A batch never holds more than ``max_batch`` crops, crops leave in arrival order (FIFO), and the
crops of one request may span several batches and share a batch with other requests' crops.

``BucketMonitor`` is the pure policy (not thread-safe, injectable clock, no sleeping).
``BlockingBucket`` is a thin Condition-based wrapper for the embedded engine. ``run_batch`` is the
one batch loop both consumers share: recognise a batch, survive its failure, count it, and split
its readings per owner.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from common import metrics
from common.config import Settings
from common.results import OwnerReadings, Reading

log = logging.getLogger(__name__)

POLICIES = ("adaptive", "fixed")

Clock = Callable[[], float]

# Deadlines are sums of float seconds; a microsecond of slack keeps "wait time_until_flush, then
# poll" from finding the batch a rounding error short of due and spinning on tiny waits.
_SLACK_S = 1e-6


@dataclass(frozen=True)
class BucketConfig:
    """Validated batching settings; services build it with ``from_settings``."""

    # The defaults are the settings' (STR_MAX_BATCH 350; STR_MAX_WAIT_MS 50 ms: long enough for
    # the crops of requests that arrive together to meet in one batch, short next to CRAFT's own
    # time per image, so the fixed-policy worst case stays a small share of a request's latency).
    max_batch: int = Settings.str_max_batch
    max_wait_ms: float = Settings.str_max_wait_ms
    policy: str = Settings.str_bucket_policy

    def __post_init__(self) -> None:
        if isinstance(self.max_batch, bool) or not isinstance(self.max_batch, int):
            raise ValueError(f"max_batch must be an integer, got {self.max_batch!r}")
        if self.max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {self.max_batch}")
        wait = self.max_wait_ms
        if isinstance(wait, bool) or not isinstance(wait, int | float) or wait != wait:
            raise ValueError(f"max_wait_ms must be a number, got {wait!r}")
        if wait < 0 or wait == float("inf"):
            raise ValueError(f"max_wait_ms must be finite and >= 0, got {wait}")
        if self.policy not in POLICIES:
            raise ValueError(f"policy must be one of {POLICIES}, got {self.policy!r}")

    @property
    def max_wait_s(self) -> float:
        return self.max_wait_ms / 1000.0

    @classmethod
    def from_settings(cls, settings: Settings) -> BucketConfig:
        """The bucket part of the service settings (STR_MAX_BATCH, STR_MAX_WAIT_MS, ...)."""
        return cls(settings.str_max_batch, settings.str_max_wait_ms, settings.str_bucket_policy)


@dataclass(frozen=True)
class BucketItem:
    """One crop waiting for recognition.

    ``owner`` says whose crop it is (a request id, a reply address) so the caller can route the
    result back; ``payload`` is opaque to the policy, and ``run_batch`` reads it as a
    ``CropPayload`` (its index in the request and its image).
    """

    owner: Hashable
    payload: Any = None


@dataclass(frozen=True)
class Batch:
    """A flushed group of crops plus what metrics need about it."""

    id: str
    items: tuple[BucketItem, ...]
    oldest_wait_s: float  # how long the batch's oldest crop sat in the bucket (bucket wait)
    flushed_at: float  # clock time of the flush
    reason: str  # "full" | "timeout" | "idle" | "forced"

    @property
    def size(self) -> int:
        return len(self.items)


def _new_batch_id() -> str:
    return uuid.uuid4().hex


@dataclass
class _Entry:
    item: BucketItem
    enqueued_at: float


class BucketMonitor:
    """Pure batching policy. Not thread-safe: guard it with one lock or use ``BlockingBucket``.

    ``now`` arguments default to ``clock()``; tests pass a fake clock or explicit times. The
    monitor never sleeps: callers ask ``time_until_flush`` and wait that long themselves.

    ``upstream_empty``: the caller knows of no further crops waiting to be added (the broker's
    prefetch buffer is drained, no request thread is mid-``put``). ``worker_idle``: the consumer
    is free to run a batch now (False while the previous batch is still running in another
    thread). Only the adaptive policy looks at them, and only when both are true.
    """

    def __init__(
        self,
        config: BucketConfig | None = None,
        *,
        clock: Clock = time.monotonic,
        id_factory: Callable[[], str] = _new_batch_id,
    ) -> None:
        self.config = config if config is not None else BucketConfig()
        self._clock = clock
        self._new_id = id_factory
        self._entries: deque[_Entry] = deque()

    # -- filling ---------------------------------------------------------------------------
    def add(self, item: BucketItem, now: float | None = None) -> None:
        """Queue one crop; its wait starts now."""
        stamp = self._clock() if now is None else now
        self._entries.append(_Entry(item, stamp))

    def add_many(self, items: Iterable[BucketItem], now: float | None = None) -> int:
        """Queue crops in order with one shared arrival time; returns how many were added."""
        stamp = self._clock() if now is None else now
        before = len(self._entries)
        self._entries.extend(_Entry(item, stamp) for item in items)
        return len(self._entries) - before

    def discard(self, owner: Hashable) -> int:
        """Drop every queued crop of ``owner`` (its request gave up); returns how many."""
        kept = deque(entry for entry in self._entries if entry.item.owner != owner)
        dropped = len(self._entries) - len(kept)
        self._entries = kept
        return dropped

    # -- inspecting ------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._entries)

    def _deadline(self) -> float:
        return self._entries[0].enqueued_at + self.config.max_wait_s

    def _reason(self, now: float, upstream_empty: bool, worker_idle: bool) -> str | None:
        if not self._entries:
            return None
        if len(self._entries) >= self.config.max_batch:
            return "full"
        if now >= self._deadline() - _SLACK_S:
            return "timeout"
        if self.config.policy == "adaptive" and upstream_empty and worker_idle:
            return "idle"
        return None

    def time_until_flush(
        self, now: float | None = None, *, upstream_empty: bool = False, worker_idle: bool = True
    ) -> float | None:
        """Seconds until a batch is due if nothing else happens.

        None: the bucket is empty, so wait for the next ``add``. 0.0: due now, call ``poll``.
        Adding crops can only bring the flush closer, so a waiter should wake on new crops too.
        """
        if not self._entries:
            return None
        now = self._clock() if now is None else now
        if self._reason(now, upstream_empty, worker_idle) is not None:
            return 0.0
        return max(0.0, self._deadline() - now)

    # -- flushing --------------------------------------------------------------------------
    def poll(
        self, now: float | None = None, *, upstream_empty: bool = False, worker_idle: bool = True
    ) -> Batch | None:
        """Return the next batch if the policy says flush now, else None.

        Call it again after a flush: a bucket holding more than ``max_batch`` crops (one large
        request) stays due and yields further full batches.
        """
        now = self._clock() if now is None else now
        reason = self._reason(now, upstream_empty, worker_idle)
        if reason is None:
            return None
        return self._take(now, reason)

    def flush(self, now: float | None = None) -> Batch | None:
        """Take up to ``max_batch`` crops regardless of policy (shutdown); None when empty."""
        if not self._entries:
            return None
        now = self._clock() if now is None else now
        return self._take(now, "forced")

    def _take(self, now: float, reason: str) -> Batch:
        count = min(self.config.max_batch, len(self._entries))
        oldest = self._entries[0].enqueued_at
        items = tuple(self._entries.popleft().item for _ in range(count))
        return Batch(
            id=self._new_id(),
            items=items,
            oldest_wait_s=max(0.0, now - oldest),
            flushed_at=now,
            reason=reason,
        )


class BucketClosed(RuntimeError):
    """Raised by ``BlockingBucket.put`` after ``close``."""


class BlockingBucket:
    """Thread-safe bucket for the embedded engine.

    Request threads ``put``/``put_many`` crops; the one recognition thread loops on
    ``get_batch``, which blocks until the policy says a batch is due. The recognition thread only
    calls ``get_batch`` when it has nothing to run, and request threads add a whole request's
    crops in one ``put_many``, so by default it reports itself idle with nothing more upstream:
    under the adaptive policy a lone request goes out at once, while crops that arrive during a
    running batch collect into the next one.

    The monitor's clock must be real monotonic seconds here, because waits use real time.
    """

    def __init__(self, monitor: BucketMonitor | None = None) -> None:
        self.monitor = monitor if monitor is not None else BucketMonitor()
        self._cond = threading.Condition()
        self._closed = False

    def put_many(self, items: Iterable[BucketItem]) -> int:
        """Add crops atomically (one request's crops stay contiguous) and wake the consumer."""
        items = list(items)
        with self._cond:
            if self._closed:
                raise BucketClosed("bucket is closed")
            added = self.monitor.add_many(items)
            if added:
                self._cond.notify_all()
            return added

    def discard(self, owner: Hashable) -> int:
        with self._cond:
            return self.monitor.discard(owner)

    def __len__(self) -> int:
        with self._cond:
            return len(self.monitor)

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Refuse new crops and wake waiters; queued crops still come out of ``get_batch``."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def get_batch(
        self, timeout: float | None = None, *, upstream_empty: bool = True
    ) -> Batch | None:
        """Block until a batch is due and return it; None on ``timeout`` seconds or when closed
        and empty. After ``close`` the remaining crops come out at once, ``max_batch`` at a time.
        """
        with self._cond:
            end = None if timeout is None else time.monotonic() + timeout
            while True:
                batch = self.monitor.poll(upstream_empty=upstream_empty, worker_idle=True)
                if batch is not None:
                    return batch
                if self._closed:
                    return self.monitor.flush()
                wait = self.monitor.time_until_flush(upstream_empty=upstream_empty)
                if end is not None:
                    remaining = end - time.monotonic()
                    if remaining <= 0:
                        return None
                    wait = remaining if wait is None else min(wait, remaining)
                self._cond.wait(wait)


class CropPayload(Protocol):
    """What ``run_batch`` needs of a bucket item's payload."""

    @property
    def index(self) -> int: ...  # the crop's position in its request

    @property
    def image(self) -> np.ndarray: ...  # the greyscale crop


@dataclass(frozen=True)
class Crop:
    """The plain payload: a crop and its position in its request (the embedded bucket's)."""

    index: int
    image: np.ndarray


RecognizeFn = Callable[[Sequence[np.ndarray]], list[Reading]]


def run_batch(batch: Batch, recognize: RecognizeFn) -> dict[Hashable, OwnerReadings]:
    """Read one bucket batch and split its readings per owner: the one batch loop.

    The str worker and the embedded bucket both call it, so a bucket batch is counted in one
    place (its size and its oldest crop's wait; the recogniser counts crops, forward passes and
    recognition time itself) and a failing batch answers each of its requests with an error
    instead of taking the consumer down.
    """
    metrics.BUCKET_WAIT_SECONDS.observe(batch.oldest_wait_s)
    started = time.perf_counter()
    error = None
    try:
        readings = recognize([item.payload.image for item in batch.items])
    except Exception as exc:  # report to the requests, keep serving
        log.exception("recognition failed on batch %s", batch.id)
        readings, error = [], f"recognition failed: {type(exc).__name__}"
    str_ms = (time.perf_counter() - started) * 1000.0
    metrics.BATCH_SIZE.observe(batch.size)
    out: dict[Hashable, OwnerReadings] = {}
    for position, item in enumerate(batch.items):
        owned = out.setdefault(item.owner, OwnerReadings(batch.id, batch.size, str_ms))
        if error is None:
            owned.results[item.payload.index] = readings[position]
        else:
            owned.errors[item.payload.index] = error
    return out

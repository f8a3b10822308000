"""Batched reading as the pipeline sees it: send a request's crops, wait for every reading.

Both bucket readers (the RabbitMQ one and the in-process one) share this: each request gets an
id, its crops go out, and the bucket's per-owner answers (``OwnerReadings``) are matched back by
that id until every crop is read, one fails, or the request's time runs out.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from common.errors import Timeout, UpstreamError
from common.results import BatchRef, OwnerReadings, Reading


@dataclass(frozen=True)
class BatchedReading:
    """Readings of one request's crops in input order, and the bucket batches that carried them."""

    results: list[Reading]
    batches: list[BatchRef]  # in the order they answered
    str_ms: float  # recognition time of those batches, summed
    total_ms: float  # from submitting the crops to the last reading

    @property
    def queue_wait_ms(self) -> float:
        return max(0.0, self.total_ms - self.str_ms)


@dataclass
class Waiting:
    """A request whose crops are out for recognition."""

    crops: Sequence[np.ndarray]
    deadline: float
    started: float = field(default_factory=time.perf_counter)
    results: dict[int, Reading] = field(default_factory=dict)
    batches: dict[str, tuple[int, float]] = field(default_factory=dict)
    error: str | None = None
    done: threading.Event = field(default_factory=threading.Event)

    def add(self, readings: OwnerReadings) -> None:
        if readings.errors:
            self.fail(next(iter(readings.errors.values())))
            return
        self.results.update(readings.results)
        if readings.batch_id:
            self.batches[readings.batch_id] = (readings.batch_size, readings.str_ms)
        if len(self.results) >= len(self.crops):
            self.done.set()

    def fail(self, error: str) -> None:
        self.error = error
        self.done.set()

    def timed_out(self, timeout_s: float) -> Timeout:
        return Timeout(
            f"recognition did not finish in the {timeout_s:.1f}s left of the request's "
            f"OCR_TIMEOUT_S budget ({len(self.results)} of {len(self.crops)} crops read)"
        )

    def reading(self) -> BatchedReading:
        if self.error is not None:
            raise UpstreamError(f"recognition failed for this request: {self.error}")
        return BatchedReading(
            results=[self.results[i] for i in range(len(self.crops))],
            batches=[BatchRef(bid, size) for bid, (size, _) in self.batches.items()],
            str_ms=sum(ms for _, ms in self.batches.values()),
            total_ms=(time.perf_counter() - self.started) * 1000.0,
        )


class BucketReader:
    """What both readers share: requests waiting for their readings, matched by request id.

    Subclasses send a request's crops (``_send``), call ``_deliver`` with each answer, and may
    drop what is still queued of a request that has finished (``_forget``).
    """

    def __init__(self) -> None:
        self._waiting: dict[str, Waiting] = {}
        self._lock = threading.Lock()

    def read(self, crops: Sequence[np.ndarray], timeout_s: float) -> BatchedReading:
        """Recognise ``crops`` through the bucket; Timeout (504) if they aren't read in time."""
        if not crops:
            return BatchedReading([], [], 0.0, 0.0)
        request_id = uuid.uuid4().hex
        waiting = Waiting(crops, deadline=time.time() + timeout_s)
        with self._lock:
            self._waiting[request_id] = waiting
        try:
            self._send(request_id, waiting)
            if not waiting.done.wait(max(0.0, waiting.deadline - time.time())):
                raise waiting.timed_out(timeout_s)
            return waiting.reading()
        finally:
            with self._lock:
                self._waiting.pop(request_id, None)  # a late answer for it is dropped
            self._forget(request_id)

    def queued_crops(self) -> int:
        """Crops waiting for recognition (the bucket's, or the crops queue's last known)."""
        raise NotImplementedError

    def close(self) -> None:
        """Stop the reader's thread."""

    def _deliver(self, request_id: str, readings: OwnerReadings) -> None:
        with self._lock:
            waiting = self._waiting.get(request_id)
        if waiting is not None:  # else the request has finished or given up
            waiting.add(readings)

    def _waiting_requests(self) -> list[tuple[str, Waiting]]:
        with self._lock:
            return list(self._waiting.items())

    def _send(self, request_id: str, waiting: Waiting) -> None:
        raise NotImplementedError

    def _forget(self, request_id: str) -> None:
        """Drop whatever of a finished request is still queued (nothing, by default)."""

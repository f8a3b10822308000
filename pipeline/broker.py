"""Batched recognition for the pipeline: over RabbitMQ, or in process with the same bucket.

Both clients answer ``read(crops, timeout_s) -> BatchedReading``. The RabbitMQ client publishes
one message per crop and waits for the workers' replies on its own exclusive reply queue; the
in-process twin feeds the same BucketMonitor policy the workers use, so embedded mode batches
exactly like the distributed one without a broker.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pika
import pika.exceptions

from common import metrics
from common.amqp import (
    CONNECTION_ERRORS,
    declare_crops_queue,
    open_connection,
    probe_queue,
    serve_forever,
)
from common.config import Settings
from common.errors import Overloaded, Timeout, UpstreamError
from common.messages import CROP_CONTENT_TYPE, MessageError, Reply, encode_crop

log = logging.getLogger(__name__)

EMBEDDED_QUEUE = "embedded"  # the queue label of the in-process bucket's depth
PROBE_EVERY_S = 2.0  # how often the pipeline learns the crops queue's consumers and depth
REPROBE_WAIT_S = 2.0  # longest a request waits for a fresh probe when the last saw no worker


@dataclass
class BatchedReading:
    """Readings of one request's crops in input order, and the batches that carried them."""

    results: list[tuple[str, float]]
    batches: list[dict]  # [{"id", "size"}] in the order they answered
    str_ms: float  # recognition time of those batches, summed
    total_ms: float  # from submitting the crops to the last reading

    @property
    def queue_wait_ms(self) -> float:
        return max(0.0, self.total_ms - self.str_ms)


@dataclass
class _Waiting:
    """A request whose crops are out for recognition."""

    crops: Sequence[np.ndarray]
    deadline: float
    started: float = field(default_factory=time.perf_counter)
    results: dict[int, tuple[str, float]] = field(default_factory=dict)
    batches: dict[str, tuple[int, float]] = field(default_factory=dict)
    error: str | None = None
    done: threading.Event = field(default_factory=threading.Event)

    def add(self, reply: Reply) -> None:
        if reply.errors:
            self.error = next(iter(reply.errors.values()))
            self.done.set()
            return
        self.results.update(reply.results)
        if reply.batch_id:
            self.batches[reply.batch_id] = (reply.batch_size, reply.str_ms)
        if len(self.results) >= len(self.crops):
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
            batches=[{"id": bid, "size": size} for bid, (size, _) in self.batches.items()],
            str_ms=sum(ms for _, ms in self.batches.values()),
            total_ms=(time.perf_counter() - self.started) * 1000.0,
        )


class _RecognitionClient:
    """What both clients share: requests waiting for their readings, matched by request id."""

    def __init__(self) -> None:
        self._waiting: dict[str, _Waiting] = {}
        self._lock = threading.Lock()

    def read(self, crops: Sequence[np.ndarray], timeout_s: float) -> BatchedReading:
        """Recognise ``crops`` through the bucket; Timeout (504) if they aren't read in time."""
        if not crops:
            return BatchedReading([], [], 0.0, 0.0)
        request_id = uuid.uuid4().hex
        waiting = _Waiting(crops, deadline=time.time() + timeout_s)
        with self._lock:
            self._waiting[request_id] = waiting
        try:
            self._send(request_id, waiting)
            if not waiting.done.wait(max(0.0, waiting.deadline - time.time())):
                raise waiting.timed_out(timeout_s)
            return waiting.reading()
        finally:
            with self._lock:
                self._waiting.pop(request_id, None)  # a late reply for it is dropped
            self._forget(request_id)

    def _deliver(self, request_id: str, reply: Reply) -> None:
        with self._lock:
            waiting = self._waiting.get(request_id)
        if waiting is not None:  # else the request has finished or given up
            waiting.add(reply)

    def _send(self, request_id: str, waiting: _Waiting) -> None:
        raise NotImplementedError

    def _forget(self, request_id: str) -> None:
        """Drop whatever of a finished request is still queued (nothing, by default)."""


class RabbitRecognitionClient(_RecognitionClient):
    """Sends crops to the str workers through RabbitMQ and matches replies by correlation id.

    One I/O thread owns the pika connection (pika connections are not thread-safe); request
    threads hand it work with ``add_callback_threadsafe``. If the broker restarts, the thread
    reconnects and republishes the crops of every request still waiting, so none is lost. Every
    ``PROBE_EVERY_S`` it also learns how many workers consume the crops queue and how many crops
    wait there, so readiness and admission can refuse work nobody would read.
    """

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self.settings = settings
        self._connection: pika.BlockingConnection | None = None
        self._channel = None
        self._reply_queue = ""
        self._ready = threading.Event()
        self._stopping = threading.Event()
        self.consumers: int | None = None  # workers on the crops queue at the last probe
        self._queued = 0
        self._probed = threading.Condition()
        self._probes = 0  # how many probes have completed, so a waiter can see a fresh one
        self._thread = threading.Thread(target=self._run, name="rabbit-replies", daemon=True)
        self._thread.start()

    @property
    def connected(self) -> bool:
        return self._ready.is_set()

    def wait_connected(self, timeout_s: float) -> bool:
        return self._ready.wait(timeout_s)

    def queued_crops(self) -> int:
        """Crops waiting in the crops queue at the last probe (not those workers hold)."""
        return self._queued

    def _send(self, request_id: str, waiting: _Waiting) -> None:
        if not self._ready.wait(min(max(0.0, waiting.deadline - time.time()), 5.0)):
            raise Overloaded("the message broker is not reachable", retry_after_s=5)
        if self.consumers == 0 and self._fresh_consumers() == 0:
            raise Overloaded(
                f"no str worker is consuming {self.settings.str_queue}", retry_after_s=5
            )
        self._submit(request_id, waiting)

    def _fresh_consumers(self) -> int | None:
        """Probe again before refusing, so a worker that has just started isn't missed."""
        connection = self._connection
        if connection is None:
            return self.consumers
        with self._probed:
            seen = self._probes
        try:
            connection.add_callback_threadsafe(self._probe)
        except CONNECTION_ERRORS:
            return self.consumers
        with self._probed:
            self._probed.wait_for(lambda: self._probes != seen, REPROBE_WAIT_S)
        return self.consumers

    def close(self) -> None:
        self._stopping.set()
        connection = self._connection
        if connection is not None:
            try:
                connection.add_callback_threadsafe(lambda: None)
            except CONNECTION_ERRORS:
                pass
        self._thread.join(timeout=5)

    # -- the I/O thread ---------------------------------------------------------------------

    def _submit(self, request_id: str, waiting: _Waiting) -> None:
        connection = self._connection
        if connection is None:
            raise Overloaded("the message broker is not reachable", retry_after_s=5)
        try:
            connection.add_callback_threadsafe(lambda: self._publish_safely(request_id, waiting))
        except CONNECTION_ERRORS:
            # The I/O thread republishes every waiting request once it has reconnected.
            log.warning("broker connection lost while submitting %s; it will be resent", request_id)

    def _publish_safely(self, request_id: str, waiting: _Waiting) -> None:
        """Publish on the I/O thread; a failure that isn't the connection's fails the request."""
        try:
            self._publish(request_id, waiting)
        except CONNECTION_ERRORS:
            raise
        except Exception as exc:  # noqa: BLE001 - the waiting request must hear of it
            log.exception("could not publish the crops of %s", request_id)
            waiting.error = f"could not publish crops: {type(exc).__name__}"
            waiting.done.set()

    def _publish(self, request_id: str, waiting: _Waiting) -> None:
        remaining_ms = int((waiting.deadline - time.time()) * 1000)
        if remaining_ms <= 0 or self._channel is None:
            return
        count = len(waiting.crops)
        for index, crop in enumerate(waiting.crops):
            if index in waiting.results:
                continue
            body, headers = encode_crop(crop, index, count, waiting.deadline)
            self._channel.basic_publish(
                exchange="",
                routing_key=self.settings.str_queue,
                body=body,
                properties=pika.BasicProperties(
                    correlation_id=request_id,
                    reply_to=self._reply_queue,
                    expiration=str(remaining_ms),
                    content_type=CROP_CONTENT_TYPE,
                    headers=headers,
                ),
            )

    def _on_reply(self, channel, method, props, body: bytes) -> None:  # noqa: ANN001
        try:
            reply = Reply.decode(body)
        except MessageError as exc:
            log.warning("dropping malformed reply for %s: %s", props.correlation_id, exc)
            return
        self._deliver(props.correlation_id or "", reply)

    def _probe(self) -> None:
        """On the I/O thread: the crops queue's consumers and ready messages, by passive declare."""
        channel = self._channel
        if channel is None:
            return
        consumers, queued = probe_queue(channel, self.settings.str_queue)
        with self._probed:
            self.consumers, self._queued = consumers, queued
            self._probes += 1
            self._probed.notify_all()

    def _run(self) -> None:
        serve_forever(self._serve, self._stopping, log)

    def _serve(self, connected: Callable[[], None]) -> None:
        try:
            with open_connection(self.settings.rabbitmq_url) as connection:
                channel = connection.channel()
                declare_crops_queue(channel, self.settings)
                declared = channel.queue_declare(queue="", exclusive=True, auto_delete=True)
                self._reply_queue = declared.method.queue
                channel.basic_consume(self._reply_queue, self._on_reply, auto_ack=True)
                self._connection, self._channel = connection, channel
                self._probe()
                with self._lock:
                    resend = list(self._waiting.items())
                for request_id, waiting in resend:  # requests out when the broker went away
                    self._publish_safely(request_id, waiting)
                self._ready.set()
                connected()
                next_probe = time.monotonic() + PROBE_EVERY_S
                while not self._stopping.is_set():
                    connection.process_data_events(time_limit=0.5)
                    if time.monotonic() >= next_probe:
                        self._probe()
                        next_probe = time.monotonic() + PROBE_EVERY_S
        finally:
            self._ready.clear()
            self._connection = self._channel = None
            with self._probed:
                self.consumers = None  # unknown until the next connection's probe
                self._probes += 1
                self._probed.notify_all()


class InProcessRecognitionClient(_RecognitionClient):
    """The embedded twin: the same bucket policy feeding a recogniser thread, no broker.

    ``recognize`` takes a list of crops and returns readings in order; it runs on one thread, so
    batches never overlap, exactly like one str worker.
    """

    def __init__(
        self,
        settings: Settings,
        recognize: Callable[[Sequence[np.ndarray]], list[tuple[str, float]]],
    ) -> None:
        from str_service.bucket import BlockingBucket, BucketConfig, BucketMonitor

        super().__init__()
        self._bucket = BlockingBucket(BucketMonitor(BucketConfig.from_settings(settings)))
        self._recognize = recognize
        # No broker here, so the queue-depth metric reports the crops waiting in this bucket.
        self._depth = metrics.QUEUE_DEPTH.labels(EMBEDDED_QUEUE)
        self._thread = threading.Thread(target=self._run, name="embedded-str", daemon=True)
        self._thread.start()

    connected = True

    def wait_connected(self, timeout_s: float) -> bool:
        return True

    def _send(self, request_id: str, waiting: _Waiting) -> None:
        from str_service.bucket import BucketItem

        self._bucket.put_many(
            BucketItem(owner=request_id, payload=(index, crop))
            for index, crop in enumerate(waiting.crops)
        )
        self._depth.set(len(self._bucket))

    def _forget(self, request_id: str) -> None:
        self._bucket.discard(request_id)
        self._depth.set(len(self._bucket))

    def queued_crops(self) -> int:
        """Crops waiting in the in-process bucket (the embedded twin of the crops queue)."""
        return len(self._bucket)

    def close(self) -> None:
        self._bucket.close()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while True:
            batch = self._bucket.get_batch(timeout=None)
            if batch is None:
                if self._bucket.closed:
                    return
                continue
            self._depth.set(len(self._bucket))
            metrics.BUCKET_WAIT_SECONDS.observe(batch.oldest_wait_s)
            started = time.perf_counter()
            error = None
            try:
                readings = self._recognize([item.payload[1] for item in batch.items])
            except Exception as exc:  # noqa: BLE001 - report to the requests, keep serving
                log.exception("recognition failed on batch %s", batch.id)
                readings, error = [], f"recognition failed: {type(exc).__name__}"
            str_ms = (time.perf_counter() - started) * 1000.0
            metrics.STR_SECONDS.observe(str_ms / 1000.0)
            metrics.BATCH_SIZE.observe(batch.size)
            metrics.STR_CROPS.inc(batch.size)
            replies: dict[str, Reply] = {}
            for position, item in enumerate(batch.items):
                reply = replies.setdefault(
                    item.owner, Reply(item.owner, batch.id, batch.size, str_ms)
                )
                index = item.payload[0]
                if error is None:
                    reply.results[index] = readings[position]
                else:
                    reply.errors[index] = error
            for owner, reply in replies.items():
                self._deliver(owner, reply)

"""The batched path over RabbitMQ: one message per crop to the str workers, replies matched back.

The workers run the same bucket as the embedded reader (``pipeline.local_bucket``); this reader
publishes a request's crops on the durable crops queue and waits for the workers' replies on its
own exclusive reply queue.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import pika
import pika.exceptions

from common.amqp import (
    CONNECTION_ERRORS,
    declare_crops_queue,
    open_connection,
    probe_queue,
    serve_forever,
)
from common.config import Settings
from common.errors import Overloaded
from common.messages import CROP_CONTENT_TYPE, MessageError, Reply, encode_crop
from pipeline.reading import BucketReader, Waiting

log = logging.getLogger(__name__)

PROBE_EVERY_S = 2.0  # how often the pipeline learns the crops queue's consumers and depth
REPROBE_WAIT_S = 2.0  # longest a request waits for a fresh probe when the last saw no worker


class RabbitBucketReader(BucketReader):
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

    def _send(self, request_id: str, waiting: Waiting) -> None:
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

    def _submit(self, request_id: str, waiting: Waiting) -> None:
        connection = self._connection
        if connection is None:
            raise Overloaded("the message broker is not reachable", retry_after_s=5)
        try:
            connection.add_callback_threadsafe(lambda: self._publish_safely(request_id, waiting))
        except CONNECTION_ERRORS:
            # The I/O thread republishes every waiting request once it has reconnected.
            log.warning("broker connection lost while submitting %s; it will be resent", request_id)

    def _publish_safely(self, request_id: str, waiting: Waiting) -> None:
        """Publish on the I/O thread; a failure that isn't the connection's fails the request."""
        try:
            self._publish(request_id, waiting)
        except CONNECTION_ERRORS:
            raise
        except Exception as exc:  # the waiting request must hear of it
            log.exception("could not publish the crops of %s", request_id)
            waiting.fail(f"could not publish crops: {type(exc).__name__}")

    def _publish(self, request_id: str, waiting: Waiting) -> None:
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

    def _on_reply(self, channel, method, props, body: bytes) -> None:
        try:
            reply = Reply.decode(body)
        except MessageError as exc:
            log.warning("dropping malformed reply for %s: %s", props.correlation_id, exc)
            return
        self._deliver(props.correlation_id or "", reply.readings)

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
                # Resend the requests that were out when the broker went away.
                for request_id, waiting in self._waiting_requests():
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

"""The str worker: consumes crops from RabbitMQ, batches them in a bucket, replies per request.

Run ``python -m str_service.worker`` (``--check`` only tests that the broker answers). Start as
many as you like, on any machines that reach the broker: they share the durable crops queue.

Threads: pika's connection belongs to the main thread, which consumes, fills the bucket and sends
replies; recognition runs in a second thread so that heartbeats keep flowing during a long batch.
The only way back from the recognition thread is ``add_callback_threadsafe``. Replies are
published before the crops are acked, so a worker killed mid-batch loses nothing: the broker
redelivers its unacked crops to another worker.

No message may take a worker down: a malformed one gets an error reply and is acked; one that
can't be answered (no usable reply address) or that fails unexpectedly is rejected to the
dead-letter queue. A message that kills workers anyway is dead-lettered by the quorum queue's
delivery limit.
"""

from __future__ import annotations

import logging
import os
import queue
import socket
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass

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
from common.messages import (
    REPLY_CONTENT_TYPE,
    MessageError,
    Reply,
    UnanswerableMessage,
    decode_crop,
    header_int,
    reply_address,
)
from common.results import OwnerReadings
from common.worker_process import serve_worker, worker_settings
from str_service.bucket import (
    Batch,
    BucketConfig,
    BucketItem,
    BucketMonitor,
    RecognizeFn,
    run_batch,
)

log = logging.getLogger("str_service.worker")

QUIET_POLL_S = 0.002  # no delivery within this long means nothing more is queued for us
QUEUE_DEPTH_EVERY_S = 5.0


@dataclass(frozen=True)
class Pending:
    """A crop in the bucket, with what is needed to answer and ack it."""

    delivery_tag: int
    request_id: str
    reply_to: str
    index: int
    deadline: float
    image: np.ndarray


class Worker:
    """One consumer of the crops queue; ``run()`` blocks until ``stop()`` or a signal."""

    def __init__(self, settings: Settings, recognize: RecognizeFn, name: str | None = None) -> None:
        self.settings = settings
        self.recognize = recognize
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self.bucket_config = BucketConfig.from_settings(settings)
        self.prefetch = 2 * self.bucket_config.max_batch  # one batch running, the next filling
        self._stopping = threading.Event()
        self._jobs: queue.Queue[tuple | None] = queue.Queue()
        self._busy = False
        self._thread = threading.Thread(target=self._recognition_loop, daemon=True)

    def stop(self) -> None:
        self._stopping.set()

    def run(self) -> None:
        """Consume until stopped, reconnecting with back-off whenever the broker goes away."""
        self._thread.start()
        serve_forever(self._consume, self._stopping, log)
        self._jobs.put(None)
        self._thread.join(timeout=30)

    # -- the connection thread ---------------------------------------------------------------

    def _consume(self, connected: Callable[[], None]) -> None:
        try:
            with open_connection(self.settings.rabbitmq_url) as connection:
                self._consume_on(connection, connected)
        finally:
            self._busy = False  # a batch of a dead connection is abandoned; the broker redelivers

    def _consume_on(
        self, connection: pika.BlockingConnection, connected: Callable[[], None]
    ) -> None:
        channel = connection.channel()
        declare_crops_queue(channel, self.settings)
        channel.basic_qos(prefetch_count=self.prefetch)
        bucket = BucketMonitor(self.bucket_config)
        arrived = [0]

        def on_message(ch, method, props, body) -> None:
            arrived[0] += 1
            self._on_message(ch, bucket, method.delivery_tag, props, body)

        channel.basic_consume(self.settings.str_queue, on_message, auto_ack=False)
        connected()
        log.info("worker %s consuming %s", self.name, self.settings.str_queue)
        next_depth_probe = 0.0
        while not self._stopping.is_set():
            idle = not self._busy
            wait = bucket.time_until_flush(worker_idle=idle)
            limit = 0.5 if wait is None else min(max(wait, 0.0), 0.5)
            if len(bucket) and idle:
                limit = min(limit, QUIET_POLL_S)
            arrived[0] = 0
            connection.process_data_events(time_limit=limit)
            if not self._busy:
                batch = bucket.poll(upstream_empty=arrived[0] == 0, worker_idle=True)
                if batch is not None:
                    self._dispatch(channel, connection, batch)
            if time.monotonic() >= next_depth_probe:
                next_depth_probe = time.monotonic() + QUEUE_DEPTH_EVERY_S
                _, depth = probe_queue(channel, self.settings.str_queue)
                metrics.QUEUE_DEPTH.labels(self.settings.str_queue).set(depth)
        channel.stop_consuming()
        while self._busy:  # let the running batch reply and ack before closing
            connection.process_data_events(time_limit=0.1)

    def _on_message(self, channel, bucket: BucketMonitor, tag: int, props, body: bytes) -> None:
        """pika's callback: nothing but a lost connection may escape it, or the worker dies."""
        try:
            self._accept(channel, bucket, tag, props, body)
        except CONNECTION_ERRORS:
            raise  # the consume loop reconnects; the broker redelivers what wasn't acked
        except Exception:  # one bad message must not take the worker down
            log.exception("unexpected failure handling message %s; dead-lettering it", tag)
            self._dead_letter(channel, tag, "unexpected")

    def _accept(self, channel, bucket: BucketMonitor, tag: int, props, body: bytes) -> None:
        try:
            crop = decode_crop(body, props.headers, props.correlation_id, props.reply_to)
        except UnanswerableMessage as exc:
            log.warning("dead-lettering unanswerable message: %s", exc)
            self._dead_letter(channel, tag, "unanswerable")
            return
        except MessageError as exc:
            log.warning("rejecting undecodable message: %s", exc)
            self._reply_error(channel, props, str(exc))
            channel.basic_ack(tag)
            return
        if crop.expired():
            channel.basic_ack(tag)  # its request has given up; drop the work
            return
        pending = Pending(
            tag, crop.request_id, crop.reply_to, crop.index, crop.deadline, crop.image
        )
        bucket.add(BucketItem(owner=(crop.reply_to, crop.request_id), payload=pending))

    def _dead_letter(self, channel, tag: int, reason: str) -> None:
        """Reject without requeue: the crops queue's DLX routes it to the dead-letter queue."""
        channel.basic_nack(tag, requeue=False)
        metrics.DEAD_LETTERS.labels(reason).inc()

    def _reply_error(self, channel, props, message: str) -> None:
        """Tell the request its crop was bad; only called with a valid reply address."""
        address = reply_address(props.correlation_id, props.reply_to)
        if address is None:
            return
        request_id, reply_to = address
        index = header_int(props.headers, "index")
        reply = Reply(
            request_id,
            "",
            0,
            0.0,
            errors={-1 if index is None else index: message},
            worker=self.name,
        )
        self._publish_reply(channel, reply_to, request_id, reply)

    def _dispatch(self, channel, connection: pika.BlockingConnection, batch: Batch) -> None:
        now = time.time()
        live = [item for item in batch.items if item.payload.deadline > now]
        for item in batch.items:
            if item.payload.deadline <= now:
                channel.basic_ack(item.payload.delivery_tag)
        if not live:
            return
        self._busy = True
        live_batch = Batch(
            batch.id, tuple(live), batch.oldest_wait_s, batch.flushed_at, batch.reason
        )
        self._jobs.put((connection, channel, live_batch))

    def _finish(self, channel, batch: Batch, answers: dict[Hashable, OwnerReadings]) -> None:
        """Runs on the connection thread: reply to each request, then ack its crops."""
        members: dict[Hashable, list[Pending]] = defaultdict(list)
        for item in batch.items:
            members[item.owner].append(item.payload)
        try:
            for key, readings in answers.items():
                reply_to, request_id = key
                reply = Reply.of(request_id, readings, self.name)
                self._answer_group(channel, reply_to, reply, members[key])
        finally:
            self._busy = False

    def _answer_group(self, channel, reply_to: str, reply: Reply, members: list[Pending]) -> None:
        """Reply to one request and ack its crops; dead-letter them if the reply can't be made."""
        request_id = reply.request_id
        try:
            self._publish_reply(channel, reply_to, request_id, reply)
        except CONNECTION_ERRORS:
            raise
        except Exception:  # this request's crops fail, the worker goes on
            log.exception("could not reply to %s; dead-lettering its crops", request_id)
            for pending in members:
                self._dead_letter(channel, pending.delivery_tag, "unexpected")
            return
        for pending in members:
            channel.basic_ack(pending.delivery_tag)

    def _publish_reply(self, channel, reply_to: str, request_id: str, reply: Reply) -> None:
        channel.basic_publish(
            exchange="",
            routing_key=reply_to,
            body=reply.encode(),
            properties=pika.BasicProperties(
                correlation_id=request_id, content_type=REPLY_CONTENT_TYPE
            ),
        )

    # -- the recognition thread ----------------------------------------------------------------

    def _recognition_loop(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            connection, channel, batch = job
            answers = run_batch(batch, self.recognize)

            def finish(b=batch, a=answers, ch=channel) -> None:
                self._finish(ch, b, a)

            try:
                connection.add_callback_threadsafe(finish)
            except CONNECTION_ERRORS:
                log.warning("connection closed while batch %s ran; the broker redelivers", batch.id)
                self._busy = False


def main(argv: Sequence[str] | None = None) -> int:
    settings = worker_settings(argv, __doc__.splitlines()[0])
    if isinstance(settings, int):
        return settings

    from str_service.recognizer import Recognizer

    recognizer = Recognizer.from_settings(settings)
    worker = Worker(settings, lambda crops: recognizer.recognize(crops).results)
    log.info(
        "model %s ready; metrics on %s:%s",
        recognizer.model_name,
        settings.bind,
        settings.metrics_port or "(off)",
    )
    serve_worker(worker, settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""RabbitMQ plumbing shared by the pipeline's client and the str workers.

pika never reconnects by itself, and a connection belongs to the one thread that opened it; both
sides therefore run a loop that opens a connection, serves until it breaks, and opens a new one
with back-off.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pika
import pika.exceptions

CONNECTION_ERRORS = (
    pika.exceptions.AMQPConnectionError,
    pika.exceptions.AMQPChannelError,
    pika.exceptions.StreamLostError,
    ConnectionError,
)
HEARTBEAT_S = 30


@contextmanager
def open_connection(url: str) -> Iterator[pika.BlockingConnection]:
    """A blocking connection that is closed on exit, quietly if the broker already dropped it."""
    params = pika.URLParameters(url)
    params.heartbeat = HEARTBEAT_S
    connection = pika.BlockingConnection(params)
    try:
        yield connection
    finally:
        if connection.is_open:
            try:
                connection.close()
            except CONNECTION_ERRORS:
                pass


def declare_crops_queue(channel, name: str):  # noqa: ANN001, ANN201 - pika's types
    """The crops queue is durable so that queued work survives a broker restart."""
    return channel.queue_declare(queue=name, durable=True)


def serve_forever(
    serve_once: Callable[[], None],
    stopping: threading.Event,
    log: logging.Logger,
    max_delay_s: float = 10.0,
) -> None:
    """Run ``serve_once`` until ``stopping`` is set, reconnecting with back-off when it breaks."""
    delay = 0.5
    while not stopping.is_set():
        try:
            serve_once()
            delay = 0.5
        except CONNECTION_ERRORS as exc:
            if stopping.is_set():
                break
            log.warning("broker connection lost (%s); reconnecting in %.1fs", exc, delay)
        stopping.wait(delay)
        delay = min(delay * 2, max_delay_s)


def broker_reachable(url: str, timeout_s: float = 5.0) -> bool:
    """True when the broker accepts an AMQP connection (readiness and healthchecks use it)."""
    params = pika.URLParameters(url)
    params.socket_timeout = timeout_s
    params.blocked_connection_timeout = timeout_s
    params.connection_attempts = 1
    try:
        pika.BlockingConnection(params).close()
    except CONNECTION_ERRORS:
        return False
    return True

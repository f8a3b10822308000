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

from common.config import Settings

CONNECTION_ERRORS = (
    pika.exceptions.AMQPConnectionError,
    pika.exceptions.AMQPChannelError,
    pika.exceptions.StreamLostError,
    ConnectionError,
)
HEARTBEAT_S = 30
PRECONDITION_FAILED = 406


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


class QueueConfigError(RuntimeError):
    """A work queue exists with other arguments; only an operator can resolve that."""


def declare_crops_queue(channel, settings: Settings):
    """Declare the crops queue and its dead-letter route; returns the queue's Declare-Ok.

    A message that killed ``STR_DELIVERY_LIMIT`` workers, or a rejected (poison) one, goes to
    ``STR_QUEUE``.dead (``declare_work_queue``).
    """
    return declare_work_queue(
        channel,
        settings.str_queue,
        settings.str_delivery_limit,
        settings.dead_letter_exchange,
        settings.dead_letter_queue,
    )


def declare_work_queue(channel, queue: str, delivery_limit: int, exchange: str, dead: str):
    """Declare a work queue and its dead-letter route; returns the queue's Declare-Ok.

    A durable quorum queue: its delivery limit dead-letters a message that killed
    ``delivery_limit`` consumers, and rejected (poison) messages go the same way. The DLX is a
    headers exchange bound on the first death's reason, so messages that merely expired (their
    request gave up) are dropped rather than kept. Raises QueueConfigError, with the fix, when a
    queue of that name exists with other arguments (e.g. the classic queue of an older version).
    """
    try:
        channel.exchange_declare(exchange, exchange_type="headers", durable=True)
        channel.queue_declare(dead, durable=True)
        for reason in ("rejected", "delivery_limit"):
            channel.queue_bind(
                dead,
                exchange,
                arguments={"x-match": "any-with-x", "x-first-death-reason": reason},
            )
        return channel.queue_declare(
            queue,
            durable=True,
            arguments={
                "x-queue-type": "quorum",
                "x-delivery-limit": delivery_limit,
                "x-dead-letter-exchange": exchange,
            },
        )
    except pika.exceptions.ChannelClosedByBroker as exc:
        if exc.reply_code != PRECONDITION_FAILED:
            raise
        raise QueueConfigError(
            f"the broker refuses to declare {queue!r} as a quorum queue with delivery limit "
            f"{delivery_limit} and dead-letter exchange {exchange!r}: a queue or "
            f"exchange of that name exists with other arguments ({exc.reply_text}). Delete it "
            f"once it holds nothing you need (rabbitmqctl delete_queue {queue}) and it is "
            "redeclared on the next attempt"
        ) from None


def probe_queue(channel, name: str) -> tuple[int, int]:
    """(consumers, messages ready) of an existing queue, by a passive declare."""
    method = channel.queue_declare(name, passive=True).method
    return method.consumer_count, method.message_count


def serve_forever(
    serve_once: Callable[[Callable[[], None]], None],
    stopping: threading.Event,
    log: logging.Logger,
    max_delay_s: float = 10.0,
    initial_delay_s: float = 0.5,
) -> None:
    """Run ``serve_once`` until ``stopping`` is set, reconnecting with back-off when it breaks.

    ``serve_once`` gets a ``connected()`` callback to call once its connection is set up and
    serving: a drop after that starts the back-off over, so one long outage doesn't make every
    later reconnect wait the longest delay. Attempts that fail before connecting double it.
    """
    delay = initial_delay_s
    while not stopping.is_set():
        served = threading.Event()
        try:
            serve_once(served.set)
            if stopping.is_set():
                break
            problem = "connection closed"
        except QueueConfigError as exc:
            if stopping.is_set():
                break
            log.error("%s; retrying in %.0fs", exc, max_delay_s)
            stopping.wait(max_delay_s)
            delay = initial_delay_s
            continue
        except CONNECTION_ERRORS as exc:
            if stopping.is_set():
                break
            problem = f"broker connection lost ({exc or type(exc).__name__})"
        if served.is_set():
            delay = initial_delay_s
        log.warning("%s; reconnecting in %.1fs", problem, delay)
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

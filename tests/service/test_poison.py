"""Poison messages on the real broker: no message may take a str worker down.

Two real worker processes share a crops queue of this test's own; malformed messages of every kind
are either answered with an error naming the problem or dead-lettered, the workers live on and
still read real crops. RabbitMQ's own mechanisms are checked too: the quorum queue's delivery limit
dead-letters a message that keeps killing its consumer, an expired crop is dropped rather than
dead-lettered, a leftover classic queue is reported with its fix, and the pipeline's client knows
when no worker consumes.
"""

from __future__ import annotations

import logging
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal

import numpy as np
import pika
import pika.exceptions
import pytest
import requests

from common.amqp import QueueConfigError, declare_crops_queue, probe_queue
from common.config import Settings
from common.errors import Overloaded
from common.messages import Reply, encode_crop
from pipeline.rabbit_reader import RabbitBucketReader
from str_service.worker import Worker
from tests.render import png_bytes, render_words
from tests.service.conftest import (
    EXPECTED,
    FAST,
    PAGE,
    amqp_channel,
    ocr_stack,
    rabbitmqctl_queue,
    start_worker_process,
    wait_until,
)

MINE = "<reply queue>"  # stands for this test's reply queue in the table below
GOOD = {"index": 0, "count": 1, "height": 2, "width": 3, "deadline_ms": 0}  # deadline set later

# (name, body, headers, correlation_id, reply_to, what the error reply says | "dead")
POISON = [
    ("repro", b"x", {"index": "abc"}, "c-repro", MINE, "'index' must be an integer, got str"),
    ("no headers", b"x" * 6, None, "c-noheaders", MINE, "'index' is missing"),
    ("shape vs body", b"x" * 5, {**GOOD}, "c-shape", MINE, "body holds 5 bytes, expected 2x3"),
    (
        "huge shape",
        b"x",
        {**GOOD, "height": 10**9, "width": 10**9},
        "c-huge",
        MINE,
        "declared shape 1000000000x1000000000 is outside",
    ),
    ("empty body", b"", {**GOOD}, "c-empty", MINE, "body is empty"),
    ("bool index", b"x" * 6, {**GOOD, "index": True}, "c-bool", MINE, "got bool True"),
    (
        "decimal index",
        b"x" * 6,
        {**GOOD, "index": Decimal("0.5")},
        "c-decimal",
        MINE,
        "'index' must be an integer, got Decimal",
    ),
    ("bytes index", b"x" * 6, {**GOOD, "index": b"0"}, "c-bytes", MINE, "got bytes b'0'"),
    ("list height", b"x" * 6, {**GOOD, "height": [2]}, "c-list", MINE, "'height' must be an"),
    ("index past count", b"x" * 6, {**GOOD, "index": 3}, "c-past", MINE, "index 3 is outside"),
    ("non-UTF-8 correlation id", b"x" * 6, {**GOOD}, b"\xff\xfe", MINE, "dead"),
    ("missing reply_to", b"x" * 6, {**GOOD}, "c-noreply", None, "dead"),
    ("missing correlation id", b"x" * 6, {**GOOD}, None, MINE, "dead"),
    ("non-UTF-8 reply_to", b"x" * 6, {**GOOD}, "c-badreply", b"\xff", "dead"),
]


@pytest.fixture
def settings(base_settings: Settings, queue_name: str) -> Settings:
    return base_settings.with_overrides(str_queue=queue_name)


def consumers(settings: Settings) -> int:
    """Consumers of the crops queue; 0 while it doesn't exist."""
    try:
        with amqp_channel(settings.rabbitmq_url) as channel:
            return probe_queue(channel, settings.str_queue)[0]
    except pika.exceptions.ChannelClosedByBroker:
        return 0


def drain(channel, queue: str, expected: int, timeout_s: float) -> list:
    """Up to ``expected`` messages from ``queue`` (auto-acked), waiting at most ``timeout_s``."""
    got = []
    end = time.monotonic() + timeout_s
    while len(got) < expected and time.monotonic() < end:
        method, props, body = channel.basic_get(queue, auto_ack=True)
        if method is None:
            time.sleep(0.1)
            continue
        got.append((props, body))
    return got


def hold_one(channel, queue: str, timeout_s: float) -> bool:
    """Take one message from ``queue`` without acking it; False if none came in time."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if channel.basic_get(queue, auto_ack=False)[0] is not None:
            return True
        time.sleep(0.1)
    return False


def hello_crop() -> np.ndarray:
    image, boxes = render_words([["HELLO"]])
    (x0, y0), (x1, y1) = boxes[0][1][0], boxes[0][1][2]
    return np.ascontiguousarray(image[int(y0) : int(y1), int(x0) : int(x1), 0])


@pytest.fixture
def two_workers(settings: Settings) -> Iterator[list[subprocess.Popen]]:
    """Two real ``python -m str_service.worker`` processes consuming the test's queue."""
    processes = [start_worker_process(settings) for _ in range(2)]
    try:
        if not wait_until(lambda: rabbitmqctl_queue(settings.str_queue)[2] == 2, 180, 1.0):
            logs = [p.communicate(timeout=5)[0] if p.poll() is not None else "" for p in processes]
            pytest.fail(f"the two workers never both consumed: {logs}")
        yield processes
    finally:
        for process in processes:
            if process.poll() is None:
                process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
            print(process.stdout.read() if process.stdout else "")  # shown with -s or on failure


def test_poison_messages_leave_both_workers_alive_and_serving(
    settings, two_workers, detector, recognizer
) -> None:
    deadline_ms = int((time.time() + 120) * 1000)
    answered = {cid: says for _, _, _, cid, _, says in POISON if says != "dead"}
    dead = {name for name, *_, says in POISON if says == "dead"}
    with amqp_channel(settings.rabbitmq_url) as channel:
        reply_queue = channel.queue_declare("", exclusive=True).method.queue
        for name, body, headers, cid, reply_to, _ in POISON:
            if headers is not None:
                headers = {**headers, "probe": name}
                if "deadline_ms" in headers:
                    headers["deadline_ms"] = deadline_ms
            channel.basic_publish(
                "",
                settings.str_queue,
                body,
                pika.BasicProperties(
                    correlation_id=cid,
                    reply_to=reply_queue if reply_to == MINE else reply_to,
                    headers=headers,
                ),
            )

        replies = {
            p.correlation_id: Reply.decode(b) for p, b in drain(channel, reply_queue, 10, 60)
        }
        assert set(replies) == set(answered), "every answerable message gets one error reply"
        for cid, says in answered.items():
            (message,) = replies[cid].errors.values()
            assert says in message, (cid, message)
            assert not replies[cid].results
        assert replies["c-repro"].errors == {-1: replies["c-repro"].errors[-1]}  # no int() on it

        corpses = drain(channel, settings.dead_letter_queue, len(dead), 30)
        assert {p.headers["probe"] for p, _ in corpses} == dead
        assert {p.headers["x-first-death-reason"] for p, _ in corpses} == {"rejected"}

        assert [p.poll() for p in two_workers] == [None, None], "both workers must be alive"
        assert wait_until(lambda: rabbitmqctl_queue(settings.str_queue) == (0, 0, 2), 30, 1.0)
        assert probe_queue(channel, settings.dead_letter_queue)[1] == 0, "nothing else died"

        body, headers = encode_crop(hello_crop(), 0, 1, time.time() + 60)
        channel.basic_publish(
            "",
            settings.str_queue,
            body,
            pika.BasicProperties(correlation_id="real", reply_to=reply_queue, headers=headers),
        )
        ((props, raw),) = drain(channel, reply_queue, 1, 60)
        assert props.correlation_id == "real"
        assert Reply.decode(raw).results[0][0] == "HELLO"

    with ocr_stack("distributed", settings, detector, recognizer, workers=0) as (url, _):
        response = requests.post(
            url + "/pipeline",
            files={"image": ("p.png", png_bytes(render_words(PAGE)[0]))},
            data=FAST,
            timeout=120,
        )
    assert response.status_code == 200, response.text
    assert response.json()["text"] == EXPECTED
    assert [p.poll() for p in two_workers] == [None, None]


def test_a_message_that_keeps_killing_its_consumer_is_dead_lettered(settings) -> None:
    """A consumer that dies holding the message (its channel closes unacked) each time."""
    limited = settings.with_overrides(str_delivery_limit=2)
    body, headers = encode_crop(hello_crop(), 0, 1, time.time() + 60)
    deliveries = 0
    with amqp_channel(limited.rabbitmq_url) as channel:
        declare_crops_queue(channel, limited)
        channel.basic_publish(
            "", limited.str_queue, body, pika.BasicProperties(headers={**headers, "probe": "k"})
        )
        connection = channel.connection
        for _ in range(limited.str_delivery_limit + 3):
            victim = connection.channel()
            held = hold_one(victim, limited.str_queue, 5)
            victim.close()  # as a crashed worker's would: the broker takes the message back
            if not held:
                break
            deliveries += 1
        ((props, dead_body),) = drain(channel, limited.dead_letter_queue, 1, 10)
    assert dead_body == body and props.headers["probe"] == "k"
    assert props.headers["x-first-death-reason"] == "delivery_limit"
    assert deliveries == limited.str_delivery_limit + 1  # the first delivery and `limit` more
    assert rabbitmqctl_queue(limited.str_queue)[:2] == (0, 0)


def test_an_expired_crop_is_dropped_not_dead_lettered(settings) -> None:
    body, headers = encode_crop(hello_crop(), 0, 1, time.time() + 0.05)
    with amqp_channel(settings.rabbitmq_url) as channel:
        declare_crops_queue(channel, settings)
        channel.basic_publish(
            "", settings.str_queue, body, pika.BasicProperties(expiration="50", headers=headers)
        )
        time.sleep(0.5)
        assert channel.basic_get(settings.str_queue, auto_ack=True)[0] is None
        assert wait_until(lambda: rabbitmqctl_queue(settings.str_queue)[:2] == (0, 0), 10, 0.5)
        assert probe_queue(channel, settings.dead_letter_queue)[1] == 0


def test_a_leftover_classic_queue_is_reported_with_its_fix(settings, caplog) -> None:
    with amqp_channel(settings.rabbitmq_url) as channel:
        channel.queue_declare(settings.str_queue, durable=True)  # as the old code declared it
        with pytest.raises(QueueConfigError) as caught:
            declare_crops_queue(channel, settings)
    assert f"rabbitmqctl delete_queue {settings.str_queue}" in str(caught.value)
    assert "quorum" in str(caught.value)

    worker = Worker(settings, lambda crops: [("fake", 1.0)] * len(crops), name="classic")
    thread = threading.Thread(target=worker.run, daemon=True)
    with caplog.at_level(logging.INFO, logger="str_service.worker"):
        thread.start()
        try:
            assert wait_until(lambda: any(r.levelno == logging.ERROR for r in caplog.records), 20)
            with amqp_channel(settings.rabbitmq_url) as channel:
                channel.queue_delete(settings.str_queue)  # what the log tells the operator to do
            assert wait_until(lambda: consumers(settings) == 1, 30, 0.5), "it must recover"
        finally:
            worker.stop()
            thread.join(timeout=30)
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "rabbitmqctl delete_queue" in errors[0].getMessage()
    assert all(r.exc_info is None for r in caplog.records), "no tracebacks"


def test_the_pipeline_client_knows_when_no_worker_consumes(settings) -> None:
    client = RabbitBucketReader(settings)
    crop = hello_crop()
    try:
        assert client.wait_connected(20)
        assert client.consumers == 0 and client.queued_crops() == 0
        started = time.monotonic()
        with pytest.raises(Overloaded) as caught:
            client.read([crop], timeout_s=30)
        assert caught.value.message == f"no str worker is consuming {settings.str_queue}"
        assert caught.value.headers == {"Retry-After": "5"}
        assert time.monotonic() - started < 10, "refused at once, not after the timeout"

        with amqp_channel(settings.rabbitmq_url) as channel:  # a backlog nobody reads yet
            for index in range(3):
                body, headers = encode_crop(crop, index, 3, time.time() + 60)
                channel.basic_publish(
                    "",
                    settings.str_queue,
                    body,
                    pika.BasicProperties(
                        correlation_id=uuid.uuid4().hex, reply_to="nobody", headers=headers
                    ),
                )
        assert wait_until(lambda: client.queued_crops() == 3, 10)

        worker = Worker(settings, lambda crops: [("fake", 0.5)] * len(crops), name="t")
        thread = threading.Thread(target=worker.run, daemon=True)
        thread.start()
        try:
            # The next read re-probes at once, so a worker that has just started is found.
            assert wait_until(lambda: consumers(settings) == 1, 30, 0.2)
            reading = client.read([crop, crop], timeout_s=30)
            assert reading.results == [("fake", 0.5), ("fake", 0.5)]
            assert wait_until(lambda: client.consumers == 1 and client.queued_crops() == 0, 10)
        finally:
            worker.stop()
            thread.join(timeout=30)
    finally:
        client.close()


class ExplodingWorker(Worker):
    """A worker whose message handling fails unexpectedly on messages marked ``explode``."""

    def _accept(self, channel, bucket, tag, props, body) -> None:
        if (props.headers or {}).get("explode"):
            raise RuntimeError("a bug in message handling")
        super()._accept(channel, bucket, tag, props, body)


def test_an_unexpected_failure_dead_letters_the_message_and_the_worker_goes_on(
    settings, caplog
) -> None:
    from prometheus_client import REGISTRY

    def unexpected() -> float:
        labels = {"reason": "unexpected"}
        return REGISTRY.get_sample_value("ocr_dead_letters_total", labels) or 0.0

    before = unexpected()
    worker = ExplodingWorker(settings, lambda crops: [("fake", 0.5)] * len(crops), name="x")
    thread = threading.Thread(target=worker.run, daemon=True)
    body, headers = encode_crop(hello_crop(), 0, 1, time.time() + 60)
    with caplog.at_level(logging.INFO, logger="str_service.worker"):
        thread.start()
        try:
            assert wait_until(lambda: consumers(settings) == 1, 30, 0.2)
            with amqp_channel(settings.rabbitmq_url) as channel:
                reply_queue = channel.queue_declare("", exclusive=True).method.queue
                for cid, extra in (("boom", {"explode": 1}), ("fine", {})):
                    channel.basic_publish(
                        "",
                        settings.str_queue,
                        body,
                        pika.BasicProperties(
                            correlation_id=cid, reply_to=reply_queue, headers=headers | extra
                        ),
                    )
                ((props, raw),) = drain(channel, reply_queue, 1, 30)
                assert props.correlation_id == "fine"
                assert Reply.decode(raw).results == {0: ("fake", 0.5)}
                ((dead, _),) = drain(channel, settings.dead_letter_queue, 1, 10)
                assert dead.correlation_id == "boom"
                assert dead.headers["x-first-death-reason"] == "rejected"
            assert thread.is_alive() and consumers(settings) == 1
        finally:
            worker.stop()
            thread.join(timeout=30)
    assert unexpected() == before + 1
    logged = [r for r in caplog.records if "dead-lettering it" in r.getMessage()]
    assert len(logged) == 1 and logged[0].exc_info is not None  # once, with what went wrong

"""The str workers on the real broker: bad messages, expiry, kills, dropped connections."""

from __future__ import annotations

import signal
import subprocess
import threading
import time

import numpy as np
import pika
import pytest
import requests

from common.config import Settings
from common.messages import Reply, encode_crop
from tests.render import png_bytes, render_words
from tests.service.conftest import (
    ThreadWorker,
    amqp_channel,
    ocr_stack,
    queue_depth,
    start_worker_process,
    wait_until,
)

PAGE = [["HELLO", "world"], ["OCR", "2024", "pipeline"]]
EXPECTED = "HELLO world\nOCR 2024 pipeline"
FAST = {"canvas_size": "640", "mag_ratio": "1.0"}


@pytest.fixture
def settings(base_settings: Settings, queue_name: str) -> Settings:
    return base_settings.with_overrides(str_queue=queue_name)


def rabbitmqctl_queue(name: str) -> tuple[int, int, int]:
    """(ready, unacked, consumers) of a queue, as the broker itself counts them."""
    out = subprocess.run(
        [
            "rabbitmqctl",
            "-q",
            "list_queues",
            "name",
            "messages_ready",
            "messages_unacknowledged",
            "consumers",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    for line in out.splitlines():
        parts = line.split()
        if parts and parts[0] == name:
            return int(parts[1]), int(parts[2]), int(parts[3])
    return 0, 0, 0


def publish_and_wait_reply(
    url: str, queue: str, body: bytes, headers: dict | None, expect_reply: bool = True
) -> Reply | None:
    """Publish one raw message to the crops queue and return the reply it gets, if any."""
    with amqp_channel(url) as channel:
        channel.queue_declare(queue, durable=True)
        reply_queue = channel.queue_declare("", exclusive=True).method.queue
        channel.basic_publish(
            "",
            queue,
            body,
            pika.BasicProperties(correlation_id="probe-1", reply_to=reply_queue, headers=headers),
        )
        deadline = time.monotonic() + (20 if expect_reply else 3)
        while time.monotonic() < deadline:
            method, props, reply = channel.basic_get(reply_queue, auto_ack=True)
            if method is not None:
                assert props.correlation_id == "probe-1"
                return Reply.decode(reply)
            time.sleep(0.1)
    return None


def test_undecodable_message_is_answered_with_an_error_and_acked(settings, recognizer, broker):
    with ThreadWorker(settings, recognizer):
        reply = publish_and_wait_reply(
            broker, settings.str_queue, b"\x00garbage", {"index": 0, "count": 1, "height": 30}
        )
        assert reply is not None and reply.errors, "the worker must answer a bad message"
        assert wait_until(lambda: rabbitmqctl_queue(settings.str_queue)[:2] == (0, 0), 15)


def test_crop_is_read_and_expired_crop_is_dropped(settings, recognizer, broker):
    image, boxes = render_words([["HELLO"]])
    gray = image[:, :, 0].copy()
    (x0, y0), (x1, y1) = boxes[0][1][0], boxes[0][1][2]
    crop = np.ascontiguousarray(gray[int(y0) : int(y1), int(x0) : int(x1)])
    with ThreadWorker(settings, recognizer):
        body, headers = encode_crop(crop, 0, 1, time.time() + 30)
        reply = publish_and_wait_reply(broker, settings.str_queue, body, headers)
        assert reply is not None and reply.results[0][0] == "HELLO"
        assert reply.batch_size == 1 and reply.batch_id

        body, headers = encode_crop(crop, 0, 1, time.time() - 1)  # its request gave up already
        assert publish_and_wait_reply(broker, settings.str_queue, body, headers, False) is None
        assert wait_until(lambda: rabbitmqctl_queue(settings.str_queue)[:2] == (0, 0), 15)


def test_a_killed_worker_loses_no_crops(settings, detector, recognizer, broker):
    """SIGKILL the worker that holds a request's crops: the other worker answers them."""
    tuned = settings.with_overrides(
        str_max_batch=16, str_bucket_policy="fixed", str_max_wait_ms=4000, ocr_timeout_s=90
    )
    image = png_bytes(render_words(PAGE)[0])
    first = start_worker_process(tuned)
    second = None
    try:
        assert wait_until(lambda: rabbitmqctl_queue(tuned.str_queue)[2] == 1, 60, 0.5), (
            "first worker never consumed"
        )
        with ocr_stack("distributed", tuned, detector, recognizer, workers=0) as (url, _):
            answer: dict = {}
            thread = threading.Thread(
                target=lambda: answer.update(
                    r=requests.post(
                        url + "/pipeline", files={"image": ("p.png", image)}, data=FAST, timeout=120
                    )
                )
            )
            thread.start()
            # The first worker holds all 5 crops unacked while its 4 s bucket fills.
            assert wait_until(lambda: rabbitmqctl_queue(tuned.str_queue)[1] == 5, 60, 0.2)
            second = start_worker_process(tuned)
            assert wait_until(lambda: rabbitmqctl_queue(tuned.str_queue)[2] == 2, 60, 0.5)
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=10)
            thread.join(timeout=120)
        response = answer["r"]
        assert response.status_code == 200, response.text
        assert response.json()["text"] == EXPECTED
        assert wait_until(lambda: queue_depth(broker, tuned.str_queue) == 0, 10)
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(timeout=30)


def test_pipeline_and_worker_recover_when_the_broker_drops_every_connection(
    settings, detector, recognizer, broker
):
    tuned = settings.with_overrides(str_bucket_policy="fixed", str_max_wait_ms=3000)
    image = png_bytes(render_words(PAGE)[0])
    with ocr_stack("distributed", tuned, detector, recognizer) as (url, engine):
        answer: dict = {}
        thread = threading.Thread(
            target=lambda: answer.update(
                r=requests.post(
                    url + "/pipeline", files={"image": ("p.png", image)}, data=FAST, timeout=120
                )
            )
        )
        thread.start()
        assert wait_until(lambda: rabbitmqctl_queue(tuned.str_queue)[1] == 5, 60, 0.2)
        subprocess.run(
            ["rabbitmqctl", "-q", "close_all_connections", "test: broker restart"],
            check=True,
            timeout=60,
        )
        thread.join(timeout=120)
        assert answer["r"].status_code == 200, answer["r"].text
        assert answer["r"].json()["text"] == EXPECTED
        # And the reconnected pair keeps serving.
        again = requests.post(
            url + "/pipeline", files={"image": ("p.png", image)}, data=FAST, timeout=120
        )
        assert again.status_code == 200 and again.json()["text"] == EXPECTED
        assert engine.readiness()[0]

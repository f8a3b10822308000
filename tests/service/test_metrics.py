"""Every Prometheus metric appears on /metrics and moves when the work it measures happens.

Covers the embedded pipeline, the std and str services, the RabbitMQ str worker (queue depth from
the broker).
"""

from __future__ import annotations

import threading
import time
import uuid

import cv2
import numpy as np
import pika
import requests

from common.amqp import declare_crops_queue
from common.messages import CROP_CONTENT_TYPE, Reply, encode_crop
from monitoring.loadtest import metric_total, parse_metrics
from tests.render import png_bytes, render_words
from tests.servers import serve
from tests.service.conftest import FAST, PAGE, ThreadWorker, amqp_channel, ocr_stack, wait_until


def scrape(url: str) -> dict:
    response = requests.get(url + "/metrics", timeout=30)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    return parse_metrics(response.text)


def moved(before: dict, after: dict, name: str, **labels: str) -> float:
    assert any(key[0] == name for key in after), f"{name} is not on /metrics"
    return metric_total(after, name, **labels) - metric_total(before, name, **labels)


def post_image(url: str, path: str, image: bytes, **fields: str) -> requests.Response:
    return requests.post(url + path, files={"image": ("p.png", image)}, data=fields, timeout=120)


def test_embedded_pipeline_metrics_move(base_settings, detector, recognizer) -> None:
    image = png_bytes(render_words(PAGE)[0])
    with ocr_stack("embedded", base_settings, detector, recognizer) as (url, _):
        before = scrape(url)
        sequential = post_image(url, "/ocr", image, **FAST)
        batched = post_image(url, "/pipeline", image, **FAST)
        missing = requests.post(url + "/ocr", files={"other": ("x", b"1")}, timeout=30)
        after = scrape(url)
    assert sequential.status_code == batched.status_code == 200
    assert missing.status_code == 400
    words = len(sequential.json()["words"]), len(batched.json()["words"])
    assert words == (5, 5)
    # The default (fast) profile reads each rendered line's close words as one crop.
    n_seq, n_bat = len(sequential.json()["lines"]), len(batched.json()["lines"])
    n_batches = len(batched.json()["batches"])
    assert n_seq == n_bat == 2

    latency = "ocr_request_seconds_count"
    assert moved(before, after, latency, endpoint="/ocr", mode="sequential") == 2
    assert moved(before, after, latency, endpoint="/pipeline", mode="batched") == 1
    assert moved(before, after, "ocr_request_seconds_sum", endpoint="/pipeline") > 0
    errors = moved(before, after, "ocr_errors_total", endpoint="/ocr", code="missing_image")
    assert errors == 1
    assert moved(before, after, "ocr_std_seconds_count") == 2
    assert moved(before, after, "ocr_std_seconds_sum") > 0
    assert moved(before, after, "ocr_boxes_per_document_count") == 2
    assert moved(before, after, "ocr_boxes_per_document_sum") == sum(words)
    # Sequential: one recognition per crop; batched: one per bucket batch.
    assert moved(before, after, "ocr_str_seconds_count") == n_seq + n_batches
    assert moved(before, after, "ocr_str_seconds_sum") > 0
    assert moved(before, after, "ocr_str_crops_total") == n_seq + n_bat
    # Bucket batches only on the batched path; forward passes on both (a crop read again after
    # the contrast stretch adds one).
    assert moved(before, after, "ocr_str_batch_size_count") == n_batches
    assert moved(before, after, "ocr_str_batch_size_sum") == n_bat
    assert moved(before, after, "ocr_str_forward_size_count") >= n_seq + n_batches
    assert moved(before, after, "ocr_str_forward_size_sum") >= n_seq + n_bat
    assert moved(before, after, "ocr_bucket_wait_seconds_count") == n_batches
    assert ("ocr_queue_depth", (("queue", "embedded"),)) in after


def test_embedded_queue_depth_counts_crops_waiting_in_the_bucket(base_settings) -> None:
    from pipeline.local_bucket import LocalBucketReader

    release = threading.Event()

    def slow_recognize(crops):  # holds the bucket's only consumer
        release.wait(10)
        return [("x", 1.0)] * len(crops)

    def depth() -> float:
        from common.metrics import render_metrics

        values = parse_metrics(render_metrics()[0].decode())
        return values.get(("ocr_queue_depth", (("queue", "embedded"),)), -1.0)

    client = LocalBucketReader(base_settings, slow_recognize)
    crop = np.zeros((8, 16), np.uint8)
    first = threading.Thread(target=client.read, args=([crop], 20))
    second = threading.Thread(target=client.read, args=([crop] * 3, 20))
    try:
        first.start()
        time.sleep(0.3)  # the first crop is taken and its batch is stuck in slow_recognize
        second.start()
        assert wait_until(lambda: depth() == 3, 5), depth()
        release.set()
        first.join(10)
        second.join(10)
        assert wait_until(lambda: depth() == 0, 5), depth()
    finally:
        release.set()
        client.close()


def test_std_and_str_services_metrics_move(base_settings, detector, recognizer) -> None:
    from std_service.app import create_app as std_app
    from str_service.app import create_app as str_app

    image, boxes = render_words(PAGE)
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    crops = []
    for _, quad in boxes[:2]:
        (x0, y0), (x1, y1) = quad[0], quad[2]
        ok, png = cv2.imencode(".png", gray[int(y0) : int(y1), int(x0) : int(x1)])
        crops.append(("crops", ("c.png", png.tobytes(), "image/png")))
    with (
        serve(std_app(base_settings, detector)) as std,
        serve(str_app(base_settings, recognizer)) as str_,
    ):
        before = scrape(std)
        detection = post_image(std, "/detection", png_bytes(image), **FAST)
        recognition = requests.post(str_ + "/recognition", files=crops, timeout=60)
        bad = requests.post(
            str_ + "/recognition",
            files={"image": ("p.png", png_bytes(image))},
            data={"boxes": "[[1, 2]]"},
            timeout=60,
        )
        after = scrape(str_)  # one process, one registry: either URL shows both services
    assert detection.status_code == recognition.status_code == 200
    assert bad.status_code == 400
    n_boxes = len(detection.json()["boxes"])
    forwards = recognition.json()["forward_passes"]

    latency = "ocr_request_seconds_count"
    assert moved(before, after, latency, service="std", endpoint="/detection") == 1
    assert moved(before, after, latency, service="str", endpoint="/recognition") == 2
    assert moved(before, after, "ocr_std_seconds_count") == 1
    assert moved(before, after, "ocr_boxes_per_document_count") == 1
    assert moved(before, after, "ocr_boxes_per_document_sum") == n_boxes > 0
    assert moved(before, after, "ocr_str_seconds_count") == 1
    assert moved(before, after, "ocr_str_crops_total") == 2
    assert moved(before, after, "ocr_str_forward_size_count") == len(forwards)
    assert moved(before, after, "ocr_str_forward_size_sum") == sum(forwards) >= 2
    assert moved(before, after, "ocr_str_batch_size_count") == 0  # no bucket on /recognition
    code = moved(before, after, "ocr_errors_total", service="str", code="invalid_boxes")
    assert code == 1


def test_worker_reports_queue_depth_batches_and_bucket_wait(
    broker, queue_name, base_settings, recognizer
) -> None:
    from common.metrics import render_metrics

    settings = base_settings.with_overrides(str_queue=queue_name, str_max_batch=2)
    count = 10
    crop = cv2.cvtColor(render_words([["word"]])[0], cv2.COLOR_RGB2GRAY)
    before = parse_metrics(render_metrics()[0].decode())
    with amqp_channel(broker) as channel:
        declare_crops_queue(channel, settings)
        reply_queue = channel.queue_declare("", exclusive=True).method.queue
        request_id = uuid.uuid4().hex
        for index in range(count):  # all queued before the worker starts: a backlog
            body, headers = encode_crop(crop, index, count, time.time() + 60)
            channel.basic_publish(
                "",
                queue_name,
                body,
                pika.BasicProperties(
                    correlation_id=request_id,
                    reply_to=reply_queue,
                    content_type=CROP_CONTENT_TYPE,
                    headers=headers,
                ),
            )
        read: set[int] = set()
        depths: list[float] = []  # the gauge is re-probed every 5 s, so watch it while it works
        key = ("ocr_queue_depth", (("queue", queue_name),))
        with ThreadWorker(settings, recognizer):
            deadline = time.monotonic() + 60
            while len(read) < count and time.monotonic() < deadline:
                depths.append(parse_metrics(render_metrics()[0].decode()).get(key, -1.0))
                method, _, body = channel.basic_get(reply_queue, auto_ack=True)
                if method is None:
                    time.sleep(0.05)
                    continue
                read.update(Reply.decode(body).results)
    after = parse_metrics(render_metrics()[0].decode())
    assert read == set(range(count))
    # The worker asked the broker at start-up, while most of the backlog was still queued
    # (prefetch is 2 x STR_MAX_BATCH = 4).
    assert max(depths) >= count - 4
    assert moved(before, after, "ocr_str_batch_size_sum") == count
    batches = moved(before, after, "ocr_str_batch_size_count")
    assert count / 2 <= batches <= count  # STR_MAX_BATCH=2 caps every batch
    assert moved(before, after, "ocr_bucket_wait_seconds_count") == batches
    assert moved(before, after, "ocr_str_seconds_count") == batches
    assert moved(before, after, "ocr_str_crops_total") == count

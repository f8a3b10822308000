"""Overload and costly requests on the real pipeline: refusals at once, late work dropped.

The embedded pipeline with the real models is served under the services' own HTTP front with a
small OCR_MAX_INFLIGHT; ten times that many /pipeline requests arrive at once. Every wait is
bounded; the model's work is measured by counting its calls, not by timing it.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import pytest
import requests

from common.config import Settings
from common.geometry import crop_quad
from pipeline.app import create_app
from pipeline.topology import build_topology
from std_service.preprocess import network_input_hw
from str_service.forward_plan import plan_forward_passes
from str_service.preprocess import prepare_crop
from tests.render import png_bytes, render_words
from tests.servers import assert_error, serve
from tests.service.conftest import ocr_stack

MAX_INFLIGHT = 2
CONCURRENT = 10 * MAX_INFLIGHT
PAGE_WORDS = [["HELLO", "world"], ["OCR", "2024", "pipeline"]]
EXPECTED_TEXT = "HELLO world\nOCR 2024 pipeline"
PAGE, PLACED = render_words(PAGE_WORDS)
PAGE_PNG = png_bytes(PAGE)
TALL_PAGE = render_words(PAGE_WORDS * 3)[0]  # taller, so OVER_BUDGET exceeds the default budget
SMALL_CANVAS = {"canvas_size": "640"}
OVER_BUDGET = {"canvas_size": "4096", "mag_ratio": "5"}  # within the ranges, over 1280 x 1280
CLIENT_TIMEOUT_S = 120
REFUSAL_BOUND_S = 5.0  # a refusal does no model work; generous for a shared, loaded machine
HEALTH_BOUND_S = 5.0


def rss_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


def post(
    url: str, path: str, data: dict | None = None, image: bytes = PAGE_PNG, **kwargs: object
) -> requests.Response:
    return requests.post(
        url + path,
        files={"image": ("page.png", image)},
        data=data if data is not None else SMALL_CANVAS,
        timeout=CLIENT_TIMEOUT_S,
        **kwargs,
    )


@pytest.fixture
def settings(base_settings: Settings) -> Settings:
    return base_settings.with_overrides(ocr_max_inflight=MAX_INFLIGHT)


@pytest.fixture
def embedded(settings: Settings, detector, recognizer) -> Iterator[tuple[str, object]]:
    engine = build_topology(settings, detector, recognizer)
    app = create_app(settings, engine)
    try:
        with serve(app) as url:
            yield url, app
    finally:
        engine.close()


class Counting:
    """Wraps a model method to count the calls that reach it."""

    def __init__(self, target: object, name: str, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        original = getattr(target, name)

        def counted(*args: object, **kwargs: object) -> object:
            self.calls += 1
            return original(*args, **kwargs)

        monkeypatch.setattr(target, name, counted)


# ---------------------------------------------------------------- ten times the capacity


def test_excess_requests_are_refused_at_once_and_health_stays_fast(embedded) -> None:
    url, app = embedded
    admission = app.extensions["ocr_admission"]
    assert post(url, "/pipeline").status_code == 200  # warm up before measuring memory
    rss_before = rss_bytes()
    start = threading.Barrier(CONCURRENT)
    stop = threading.Event()
    health: list[float] = []
    peak = [0]

    def probe() -> None:
        while not stop.is_set() and len(health) < 600:
            peak[0] = max(peak[0], admission.in_flight)
            t0 = time.monotonic()
            response = requests.get(url + "/healthz", timeout=HEALTH_BOUND_S)
            assert response.status_code == 200
            health.append(time.monotonic() - t0)
            time.sleep(0.1)

    def one(_: int) -> tuple[requests.Response, float]:
        start.wait(timeout=30)
        t0 = time.monotonic()
        response = post(url, "/pipeline")
        return response, time.monotonic() - t0

    prober = threading.Thread(target=probe)
    prober.start()
    try:
        with ThreadPoolExecutor(max_workers=CONCURRENT) as pool:
            answers = list(pool.map(one, range(CONCURRENT)))
    finally:
        stop.set()
        prober.join(timeout=30)

    accepted = [(r, s) for r, s in answers if r.status_code == 200]
    refused = [(r, s) for r, s in answers if r.status_code == 503]
    assert len(accepted) + len(refused) == CONCURRENT, [r.text for r, _ in answers]
    assert len(accepted) >= MAX_INFLIGHT and refused, (len(accepted), len(refused))
    for response, _ in accepted:
        assert response.json()["text"] == EXPECTED_TEXT
    for response, seconds in refused:
        assert_error(response, 503, "overloaded")
        assert int(response.headers["Retry-After"]) >= 1
        assert seconds < REFUSAL_BOUND_S, seconds
    assert health and max(health) < HEALTH_BOUND_S
    assert peak[0] <= MAX_INFLIGHT
    assert admission.in_flight == 0
    assert rss_bytes() - rss_before < 1 << 30
    # Nothing is left running: the next request is admitted and answered.
    assert post(url, "/pipeline").json()["text"] == EXPECTED_TEXT


def test_batched_requests_are_refused_while_too_many_crops_wait(
    base_settings: Settings,
    detector,
    recognizer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A fixed 30 s bucket holds the first request's 2 crops (one per line) until its 8 s deadline.
    tuned = base_settings.with_overrides(
        str_max_queued_crops=1,
        str_bucket_policy="fixed",
        str_max_wait_ms=30_000,
        ocr_timeout_s=8.0,
    )
    detect = Counting(detector, "detect", monkeypatch)
    engine = build_topology(tuned, detector, recognizer)
    try:
        with serve(create_app(tuned, engine)) as url:
            with ThreadPoolExecutor(max_workers=1) as pool:
                first = pool.submit(post, url, "/pipeline")
                deadline = time.monotonic() + 30
                while engine.pipeline.batched.queued_crops() == 0:
                    assert time.monotonic() < deadline, "no crop reached the bucket"
                    assert not first.done(), first.result().text
                    time.sleep(0.05)
                detections = detect.calls
                second = post(url, "/pipeline")
                assert_error(second, 503, "overloaded")
                assert "STR_MAX_QUEUED_CROPS" in second.json()["error"]["message"]
                assert second.headers["Retry-After"]
                assert detect.calls == detections  # refused before any detection
                assert_error(first.result(timeout=60), 504, "timeout")
            assert engine.pipeline.batched.queued_crops() == 0
    finally:
        engine.close()


# ---------------------------------------------------------------- cost budget and deadlines


@pytest.mark.parametrize("mode", ["embedded", "distributed"])
def test_detection_over_the_pixel_budget_is_422_before_the_model(
    mode: str,
    base_settings: Settings,
    detector,
    recognizer,
    queue_name: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    detect = Counting(detector, "detect", monkeypatch)
    settings = base_settings.with_overrides(str_queue=queue_name)
    height, width = network_input_hw(
        *TALL_PAGE.shape[:2], int(OVER_BUDGET["canvas_size"]), float(OVER_BUDGET["mag_ratio"])
    )
    assert height * width > settings.ocr_max_detect_pixels
    with ocr_stack(mode, settings, detector, recognizer) as (url, _):
        for path in ("/detection", "/ocr", "/pipeline"):
            response = post(url, path, OVER_BUDGET, png_bytes(TALL_PAGE))
            error = assert_error(response, 422, "over_budget")
            assert f"OCR_MAX_DETECT_PIXELS={settings.ocr_max_detect_pixels}" in error["message"]
            assert f"{width}x{height} = {width * height} pixels" in error["message"]
    assert detect.calls == 0


def test_work_past_its_deadline_never_reaches_a_model(
    embedded,
    detector,
    recognizer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, _ = embedded
    forward = Counting(recognizer, "_forward", monkeypatch)
    detect = Counting(detector, "detect", monkeypatch)
    boxes = json.dumps([quad for _, quad in PLACED])
    past = {"X-OCR-Deadline": str(int((time.time() - 1) * 1000))}
    for path, data in (("/recognition", {"boxes": boxes}), ("/detection", SMALL_CANVAS)):
        assert_error(post(url, path, data, headers=past), 504, "timeout")
    for path in ("/ocr", "/pipeline"):
        assert_error(post(url, path, headers=past), 504, "timeout")
    assert forward.calls == 0 and detect.calls == 0


def test_a_long_read_stops_at_the_deadline_between_forward_passes(
    base_settings: Settings,
    detector,
    recognizer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    word, quad = PLACED[0]
    quads = [quad] * base_settings.str_max_crops  # 500, the most one request may send
    gray = cv2.cvtColor(PAGE, cv2.COLOR_RGB2GRAY)
    prepared = prepare_crop(crop_quad(gray, np.asarray(quad)), recognizer.spec)
    plan = plan_forward_passes(
        [prepared.width] * len(quads),
        [prepared.content_width] * len(quads),
        max_batch=recognizer.max_batch,
        height=recognizer.spec.imgH,
        max_batch_pixels=recognizer.max_batch_pixels,
    )
    assert len(plan.passes) >= 4, "the read must take several forward passes"
    forward = Counting(recognizer, "_forward", monkeypatch)
    tuned = base_settings.with_overrides(ocr_timeout_s=0.3)
    engine = build_topology(tuned, detector, recognizer)
    try:
        with serve(create_app(tuned, engine)) as url:
            response = post(url, "/recognition", {"boxes": json.dumps(quads)})
    finally:
        engine.close()
    assert_error(response, 504, "timeout")
    assert forward.calls < len(plan.passes), (forward.calls, len(plan.passes))


# ---------------------------------------------------------------- one API key, every topology


def test_one_api_key_works_across_the_distributed_topology(
    base_settings: Settings,
    detector,
    recognizer,
    queue_name: str,
) -> None:
    settings = base_settings.with_overrides(str_queue=queue_name, ocr_api_key="one-key")
    key = {"X-API-Key": "one-key"}
    with ocr_stack("distributed", settings, detector, recognizer) as (url, engine):
        ready = requests.get(url + "/readyz", timeout=30)
        assert ready.status_code == 200, ready.text
        assert all(ready.json()["checks"].values())
        for path in ("/ocr", "/pipeline"):
            response = post(url, path, headers=key)
            assert response.status_code == 200, (path, response.text)
            assert response.json()["text"] == EXPECTED_TEXT
        detection = post(url, "/detection", headers=key)
        assert detection.status_code == 200, detection.text
        boxes = json.dumps([quad for _, quad in PLACED])
        reading = post(url, "/recognition", {"boxes": boxes}, headers=key)
        assert reading.status_code == 200, reading.text
        assert [r["text"] for r in reading.json()["results"]] == [w for w, _ in PLACED]
        for path in ("/ocr", "/pipeline", "/detection"):
            assert_error(post(url, path), 401, "unauthorized")

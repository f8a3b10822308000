"""What a request is admitted to: the in-flight limit, the deadline it carries, the pixels it may
make CRAFT read.

The admission counter is tested alone and inside a create_base_app app (Flask's test client,
threads holding requests open); the detection budget against what preprocessing really builds.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from flask import Flask, jsonify
from prometheus_client import REGISTRY

from common.admission import MODEL_PATHS, Admission
from common.config import Settings
from common.errors import OverBudget, Overloaded
from common.http import create_base_app, request_deadline
from common.params import DetectionParams
from std_service.preprocess import check_detect_budget, network_input_hw, prepare
from tests.http_fixtures import add_failing_routes

WAIT_S = 10.0  # bound on every wait for another thread


# ---------------------------------------------------------------- the counter


def test_admits_up_to_the_limit_and_refuses_the_next_at_once() -> None:
    admission = Admission(2)
    assert admission.try_admit() and admission.try_admit()
    assert admission.in_flight == 2
    assert not admission.try_admit()
    assert admission.in_flight == 2  # a refusal counts nothing
    admission.release()
    assert admission.in_flight == 1
    assert admission.try_admit()
    for _ in range(2):
        admission.release()
    assert admission.in_flight == 0


def test_admit_raises_overloaded_with_retry_after() -> None:
    admission = Admission(1)
    admission.admit()
    with pytest.raises(Overloaded) as refused:
        admission.admit()
    assert refused.value.status == 503 and refused.value.code == "overloaded"
    assert int(refused.value.headers["Retry-After"]) >= 1
    assert "OCR_MAX_INFLIGHT" in refused.value.message


def test_release_without_admit_is_a_bug_not_a_negative_count() -> None:
    admission = Admission(1)
    with pytest.raises(RuntimeError):
        admission.release()
    assert admission.in_flight == 0


def test_concurrent_admits_never_exceed_the_limit() -> None:
    admission, peak, lock = Admission(3), [0], threading.Lock()

    def worker() -> None:
        for _ in range(200):
            if admission.try_admit():
                with lock:
                    peak[0] = max(peak[0], admission.in_flight)
                admission.release()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=WAIT_S)
    assert peak[0] <= 3
    assert admission.in_flight == 0


# ---------------------------------------------------------------- in an app


def in_flight_gauge(service: str) -> float:
    value = REGISTRY.get_sample_value("ocr_in_flight_requests", {"service": service})
    return value or 0.0


def blocking_app(
    service: str, limit: int, gate: threading.Event, entered: threading.Event
) -> Flask:
    app = create_base_app(service, Settings(ocr_max_inflight=limit))

    @app.post("/pipeline")
    def pipeline():
        entered.set()
        gate.wait(WAIT_S)
        return jsonify({"ok": True})

    add_failing_routes(app, crash="/detection", overloaded="/recognition", retry_after_s=5)

    @app.post("/other")
    def other():
        return jsonify({"ok": True})

    @app.get("/healthz")
    def healthz():
        return jsonify({"status": "ok"})

    return app


def test_app_refuses_past_the_limit_while_health_and_metrics_answer() -> None:
    gate, entered = threading.Event(), threading.Event()
    app = blocking_app("unit-admission", 1, gate, entered)
    admission = app.extensions["ocr_admission"]
    held: list[int] = []
    thread = threading.Thread(
        target=lambda: held.append(app.test_client().post("/pipeline", json={}).status_code)
    )
    thread.start()
    try:
        assert entered.wait(WAIT_S)
        assert admission.in_flight == 1
        assert in_flight_gauge("unit-admission") == 1
        client = app.test_client()
        for path in sorted(MODEL_PATHS - {"/ocr", "/batch_ocr"}):
            refused = client.post(path, json={})
            assert refused.status_code == 503, path
            assert refused.get_json()["error"]["code"] == "overloaded"
            assert refused.headers["Retry-After"] == "1"
        # Neither health nor metrics nor a non-model endpoint counts or waits.
        assert client.get("/healthz").status_code == 200
        assert client.get("/metrics").status_code == 200
        assert client.post("/other", json={}).status_code == 200
        assert admission.in_flight == 1
    finally:
        gate.set()
        thread.join(timeout=WAIT_S)
    assert held == [200]
    assert admission.in_flight == 0
    assert in_flight_gauge("unit-admission") == 0


def test_a_request_that_fails_gives_its_place_back() -> None:
    gate, entered = threading.Event(), threading.Event()
    gate.set()
    app = blocking_app("unit-admission-fail", 1, gate, entered)
    admission = app.extensions["ocr_admission"]
    client = app.test_client()
    assert client.post("/detection", json={}).status_code == 500  # an unexpected exception
    assert admission.in_flight == 0
    assert client.post("/recognition", json={}).status_code == 503  # an OcrError of its own
    assert admission.in_flight == 0
    assert client.post("/pipeline", json={}).status_code == 200  # the place is free again
    assert admission.in_flight == 0


def test_unauthorized_requests_are_not_counted() -> None:
    app = create_base_app("unit-admission-key", Settings(ocr_max_inflight=1, ocr_api_key="k"))

    @app.post("/pipeline")
    def pipeline():
        return jsonify({})

    client = app.test_client()
    assert client.post("/pipeline", json={}).status_code == 401
    assert app.extensions["ocr_admission"].in_flight == 0
    assert client.post("/pipeline", json={}, headers={"X-API-Key": "k"}).status_code == 200


# ---------------------------------------------------------------- the deadline header


def deadline_app(timeout_s: float) -> Flask:
    settings = Settings(ocr_timeout_s=timeout_s)
    app = create_base_app("unit-deadline", settings)

    @app.post("/recognition")
    def recognition():
        return jsonify({"deadline": request_deadline(settings)})

    return app


def test_a_model_endpoint_gets_arrival_plus_the_timeout() -> None:
    client = deadline_app(60.0).test_client()
    before = time.time()
    deadline = client.post("/recognition", json={}).get_json()["deadline"]
    assert before + 60.0 <= deadline <= time.time() + 60.0


def test_an_earlier_caller_deadline_wins_and_a_later_one_is_capped() -> None:
    client = deadline_app(60.0).test_client()
    soon = time.time() + 5.0
    header = {"X-OCR-Deadline": str(int(soon * 1000))}
    got = client.post("/recognition", json={}, headers=header).get_json()["deadline"]
    assert got == pytest.approx(int(soon * 1000) / 1000.0)
    late = {"X-OCR-Deadline": str(int((time.time() + 3600) * 1000))}
    capped = client.post("/recognition", json={}, headers=late).get_json()["deadline"]
    assert capped <= time.time() + 60.0


@pytest.mark.parametrize("value", ["soon", "-5", "0", "nan", "inf", "12:00"])
def test_an_invalid_deadline_header_is_400(value: str) -> None:
    response = (
        deadline_app(60.0)
        .test_client()
        .post("/recognition", json={}, headers={"X-OCR-Deadline": value})
    )
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "invalid_parameter" and "X-OCR-Deadline" in error["message"]


# ---------------------------------------------------------------- the detection budget


@pytest.mark.parametrize(
    ("height", "width", "canvas_size", "mag_ratio"),
    [
        (100, 200, 1280, 1.5),
        (333, 1000, 640, 1.0),
        (1000, 333, 2048, 1.5),
        (37, 1999, 4096, 5.0),
        (1, 5000, 960, 0.1),
        (777, 777, 1280, 2.0),
        (1500, 1100, 1600, 1.5),
    ],
)
def test_detect_pixels_are_the_canvas_preprocessing_builds(
    height: int, width: int, canvas_size: int, mag_ratio: float
) -> None:
    image = np.zeros((height, width, 3), np.uint8)
    canvas = prepare(image, canvas_size, mag_ratio)
    assert network_input_hw(height, width, canvas_size, mag_ratio) == canvas.padded_hw
    assert canvas.array.shape[:2] == canvas.padded_hw


def test_budget_refuses_only_what_exceeds_it() -> None:
    params = DetectionParams(canvas_size=2048, mag_ratio=1.5)
    padded_h, padded_w = network_input_hw(1000, 1500, 2048, 1.5)
    pixels = padded_h * padded_w
    check_detect_budget(1000, 1500, params, budget=pixels)  # exactly the budget: allowed
    with pytest.raises(OverBudget) as refused:
        check_detect_budget(1000, 1500, params, budget=pixels - 1)
    assert refused.value.status == 422 and refused.value.code == "over_budget"
    message = refused.value.message
    assert str(pixels) in message and str(pixels - 1) in message
    assert "OCR_MAX_DETECT_PIXELS" in message


@pytest.mark.parametrize(("height", "width"), [(1, 1), (480, 640), (4000, 3000), (200, 9000)])
def test_default_parameters_always_fit_the_default_budget(height: int, width: int) -> None:
    check_detect_budget(height, width, DetectionParams(), Settings().ocr_max_detect_pixels)

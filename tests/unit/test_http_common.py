"""common.http: the JSON error contract, request parsing, API key, health and metrics routes.

A tiny app built with create_base_app and two routes that use the helpers the way the services
do; Flask's test client drives it in-process.
"""

from __future__ import annotations

import base64
import io
import logging

import numpy as np
import pytest
from flask import Flask, jsonify, request
from flask.testing import FlaskClient
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

from common.config import Settings
from common.errors import InvalidParameter
from common.http import (
    add_health_routes,
    create_base_app,
    parse_deadline,
    request_images,
    request_json_param,
    request_param,
)
from common.images import decode_image
from tests.http_fixtures import CRASH_DETAIL, add_failing_routes


def png_bytes(width: int = 6, height: int = 4) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((height, width, 3), 200, np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def build_app(settings: Settings, ready: dict | None = None) -> Flask:
    app = create_base_app("unit-http", settings)
    state = ready if ready is not None else {"ready": True}

    @app.post("/echo")
    def echo():
        blobs = request_images(request)
        image = decode_image(blobs[0], settings.ocr_max_pixels)
        return jsonify(
            {
                "shape": list(image.shape),
                "threshold": request_param(request, "threshold"),
                "boxes": request_json_param(request, "boxes"),
            }
        )

    @app.post("/many")
    def many():
        blobs = request_images(request, "images", many=True)
        return jsonify({"sizes": [list(decode_image(b).shape[:2]) for b in blobs]})

    add_failing_routes(app, crash="/boom", overloaded="/busy", retry_after_s=3)
    add_health_routes(app, lambda: (state["ready"], {"models": {"craft": state["ready"]}}))
    return app


@pytest.fixture()
def client() -> FlaskClient:
    return build_app(Settings()).test_client()


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body


# ---------------------------------------------------------------- images in


def test_every_request_gets_an_access_log_line(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="ocr.access"):
        client.get("/healthz")
        client.post("/busy")
    lines = [r.getMessage() for r in caplog.records if r.name == "ocr.access"]
    assert len(lines) == 2
    assert " GET /healthz 200 " in lines[0]
    assert " POST /busy 503 " in lines[1] and lines[1].endswith("ms")


def test_multipart_image_is_accepted(client: FlaskClient) -> None:
    response = client.post(
        "/echo",
        data={"image": (io.BytesIO(png_bytes()), "a.png"), "threshold": "0.6"},
        content_type="multipart/form-data",
    )
    assert response.status_code == 200
    assert response.get_json() == {"shape": [4, 6, 3], "threshold": "0.6", "boxes": None}


def test_base64_json_image_is_accepted(client: FlaskClient) -> None:
    encoded = base64.b64encode(png_bytes()).decode()
    response = client.post("/echo", json={"image": encoded, "threshold": 0.6})
    assert response.status_code == 200
    assert response.get_json()["shape"] == [4, 6, 3]
    assert response.get_json()["threshold"] == 0.6


def test_data_url_json_image_is_accepted(client: FlaskClient) -> None:
    encoded = "data:image/png;base64," + base64.b64encode(png_bytes()).decode()
    assert client.post("/echo", json={"image": encoded}).status_code == 200


def test_many_images_keep_their_order(client: FlaskClient) -> None:
    first, second = png_bytes(6, 4), png_bytes(3, 9)
    payload = {"images": [base64.b64encode(b).decode() for b in (first, second)]}
    assert client.post("/many", json=payload).get_json() == {"sizes": [[4, 6], [9, 3]]}
    multipart = {"images": [(io.BytesIO(first), "1.png"), (io.BytesIO(second), "2.png")]}
    response = client.post("/many", data=multipart, content_type="multipart/form-data")
    assert response.get_json() == {"sizes": [[4, 6], [9, 3]]}


def test_text_plain_body_is_415(client: FlaskClient) -> None:
    response = client.post("/echo", data="hello", content_type="text/plain")
    assert_error(response, 415, "unsupported_media_type")


def test_body_without_content_type_is_415(client: FlaskClient) -> None:
    assert_error(client.post("/echo", data=png_bytes()), 415, "unsupported_media_type")


def test_malformed_json_is_400_invalid_parameter(client: FlaskClient) -> None:
    response = client.post("/echo", data='{"image": ', content_type="application/json")
    assert_error(response, 400, "invalid_parameter")


def test_json_that_is_not_an_object_is_400(client: FlaskClient) -> None:
    assert_error(client.post("/echo", json=["abc"]), 400, "invalid_parameter")


@pytest.mark.parametrize(
    "send",
    [
        {"json": {}},
        {"json": {"image": None}},
        {"json": {"image": ""}},
        {"data": {"other": "x"}, "content_type": "multipart/form-data"},
        {"data": {"image": (io.BytesIO(b""), "empty.png")}, "content_type": "multipart/form-data"},
    ],
)
def test_missing_image_is_400(client: FlaskClient, send: dict) -> None:
    assert_error(client.post("/echo", **send), 400, "missing_image")


@pytest.mark.parametrize("value", ["not base64 at all!", "abc", 12345, ["x"]])
def test_bad_base64_is_400_invalid_parameter(client: FlaskClient, value: object) -> None:
    assert_error(client.post("/echo", json={"image": value}), 400, "invalid_parameter")


def test_undecodable_image_is_400_invalid_image(client: FlaskClient) -> None:
    encoded = base64.b64encode(b"GIF89a but not really").decode()
    assert_error(client.post("/echo", json={"image": encoded}), 400, "invalid_image")


def test_image_over_the_pixel_limit_is_413(monkeypatch: pytest.MonkeyPatch) -> None:
    client = build_app(Settings(ocr_max_pixels=10)).test_client()
    encoded = base64.b64encode(png_bytes(6, 4)).decode()
    assert_error(client.post("/echo", json={"image": encoded}), 413, "image_too_large")


@pytest.mark.parametrize("as_json", [False, True])
def test_body_over_upload_limit_is_413(as_json: bool) -> None:
    client = build_app(Settings(ocr_max_upload_mb=0.001)).test_client()  # about 1 KB
    big = bytes(5000)
    if as_json:
        response = client.post("/echo", json={"image": base64.b64encode(big).decode()})
    else:
        response = client.post(
            "/echo",
            data={"image": (io.BytesIO(big), "big.png")},
            content_type="multipart/form-data",
        )
    assert_error(response, 413, "payload_too_large")


# ---------------------------------------------------------------- parameters


def test_query_string_parameter(client: FlaskClient) -> None:
    encoded = base64.b64encode(png_bytes()).decode()
    response = client.post("/echo?threshold=0.3", json={"image": encoded})
    assert response.get_json()["threshold"] == "0.3"


def test_json_param_from_form_string_and_from_json(client: FlaskClient) -> None:
    boxes = [[[0, 0], [5, 0], [5, 3], [0, 3]]]
    response = client.post(
        "/echo",
        data={"image": (io.BytesIO(png_bytes()), "a.png"), "boxes": "[[[0,0],[5,0],[5,3],[0,3]]]"},
        content_type="multipart/form-data",
    )
    assert response.get_json()["boxes"] == boxes
    encoded = base64.b64encode(png_bytes()).decode()
    response = client.post("/echo", json={"image": encoded, "boxes": boxes})
    assert response.get_json()["boxes"] == boxes


def test_malformed_json_param_is_400(client: FlaskClient) -> None:
    response = client.post(
        "/echo",
        data={"image": (io.BytesIO(png_bytes()), "a.png"), "boxes": "[[0, 0"},
        content_type="multipart/form-data",
    )
    body = assert_error(response, 400, "invalid_parameter")
    assert "boxes" in body["error"]["message"]


# ---------------------------------------------------------------- routing and failures


def test_unknown_path_is_404_json(client: FlaskClient) -> None:
    assert_error(client.get("/nope"), 404, "not_found")


def test_wrong_method_is_405_json(client: FlaskClient) -> None:
    assert_error(client.get("/echo"), 405, "method_not_allowed")


def test_unexpected_exception_is_500_json_without_traceback(client: FlaskClient) -> None:
    response = client.post("/boom", json={})
    assert_error(response, 500, "internal_error")
    text = response.get_data(as_text=True)
    assert "Traceback" not in text
    assert CRASH_DETAIL not in text and "RuntimeError" not in text


def test_overloaded_carries_retry_after(client: FlaskClient) -> None:
    response = client.post("/busy", json={})
    assert_error(response, 503, "overloaded")
    assert response.headers["Retry-After"] == "3"


# ---------------------------------------------------------------- API key


@pytest.fixture()
def keyed_client() -> FlaskClient:
    return build_app(Settings(ocr_api_key="s3cret")).test_client()


def test_api_key_required_when_set(keyed_client: FlaskClient) -> None:
    encoded = base64.b64encode(png_bytes()).decode()
    assert_error(keyed_client.post("/echo", json={"image": encoded}), 401, "unauthorized")
    wrong = keyed_client.post("/echo", json={"image": encoded}, headers={"X-API-Key": "guess"})
    assert_error(wrong, 401, "unauthorized")
    right = keyed_client.post("/echo", json={"image": encoded}, headers={"X-API-Key": "s3cret"})
    assert right.status_code == 200


def test_health_and_metrics_stay_open_with_api_key(keyed_client: FlaskClient) -> None:
    assert keyed_client.get("/healthz").status_code == 200
    assert keyed_client.get("/readyz").status_code == 200
    assert keyed_client.get("/metrics").status_code == 200


def test_no_api_key_needed_when_unset(client: FlaskClient) -> None:
    encoded = base64.b64encode(png_bytes()).decode()
    assert client.post("/echo", json={"image": encoded}).status_code == 200


# ---------------------------------------------------------------- health and metrics


def test_healthz_and_readyz() -> None:
    state = {"ready": False}
    client = build_app(Settings(), ready=state).test_client()
    assert client.get("/healthz").get_json() == {"status": "ok"}
    not_ready = client.get("/readyz")
    assert not_ready.status_code == 503
    assert not_ready.get_json() == {"ready": False, "models": {"craft": False}}
    state["ready"] = True
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.get_json()["ready"] is True


def scrape(client: FlaskClient) -> dict:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.get_data(as_text=True))
        for sample in family.samples
    }


def test_metrics_serve_prometheus_text(client: FlaskClient) -> None:
    echo = (
        "ocr_request_seconds_count",
        (("endpoint", "/echo"), ("mode", ""), ("service", "unit-http")),
    )
    refused = (
        "ocr_errors_total",
        (("code", "unsupported_media_type"), ("endpoint", "/echo"), ("service", "unit-http")),
    )
    before = scrape(client)  # metrics are per process, so other tests may have counted already
    encoded = base64.b64encode(png_bytes()).decode()
    client.post("/echo", json={"image": encoded})
    client.post("/echo", data="x", content_type="text/plain")
    after = scrape(client)
    assert after[echo] - before.get(echo, 0) == 2  # errors are timed too
    assert after[refused] - before.get(refused, 0) == 1
    assert not any(labels and dict(labels).get("endpoint") == "/metrics" for _, labels in after)


# ---------------------------------------------------------------- deadlines


def test_parse_deadline_takes_the_earlier_of_the_budget_and_the_header() -> None:
    now = 1_700_000_000.0
    assert parse_deadline(None, now, 60.0) == now + 60.0
    assert parse_deadline("  ", now, 60.0) == now + 60.0
    assert parse_deadline(str(int((now + 5) * 1000)), now, 60.0) == pytest.approx(now + 5)
    assert parse_deadline(str(int((now + 500) * 1000)), now, 60.0) == now + 60.0
    assert parse_deadline(str(int((now - 5) * 1000)), now, 60.0) == pytest.approx(now - 5)


@pytest.mark.parametrize("header", ["x", "-1", "0", "NaN", "inf", "1e400"])
def test_parse_deadline_rejects_what_is_not_an_epoch_in_milliseconds(header: str) -> None:
    with pytest.raises(InvalidParameter, match="X-OCR-Deadline"):
        parse_deadline(header, 1_700_000_000.0, 60.0)

"""std_service over real HTTP: bad input gets its 4xx JSON error, good input gets its boxes.

The bad-input cases fail before the network runs, so they are cheap; the few real detections
use canvas 640 to keep CPU time down (the official defaults are the parity tests' business).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from common.config import Settings
from monitoring.scoring import iou, rect
from std_service.app import create_app
from tests.render import png_bytes, png_header_only, render_words
from tests.servers import assert_error, serve
from tests.service.conftest import past_deadline, post_with_deadline

DEV_IMAGE = "ic15train_img_1.jpg"
SMALL = {"canvas_size": "640"}
FAST = {"canvas_size": "640", "mag_ratio": "1.0"}
PAGE_WORDS = [["HELLO", "world"], ["OCR", "2024", "pipeline"]]
PAGE, PAGE_QUADS = render_words(PAGE_WORDS)
PAGE_PNG = png_bytes(PAGE)
PAGE_FILES = [("image", ("page.png", PAGE_PNG))]
TIMEOUT_S = 120


def gif_bytes() -> bytes:
    from io import BytesIO

    from PIL import Image

    out = BytesIO()
    Image.new("RGB", (20, 10), "white").save(out, format="GIF")
    return out.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@pytest.fixture(scope="module")
def std_url(base_settings: Settings, detector) -> Iterator[str]:
    with serve(create_app(base_settings, detector)) as url:
        yield url


def detect(url: str, image: bytes, **fields: str) -> requests.Response:
    return requests.post(
        f"{url}/detection", files={"image": ("page.png", image)}, data=fields, timeout=TIMEOUT_S
    )


def detect_json(url: str, payload: dict) -> requests.Response:
    return requests.post(f"{url}/detection", json=payload, timeout=TIMEOUT_S)


def rect_iou(a: list[list[float]], b: list[list[float]]) -> float:
    """IoU of the two quads' bounding rectangles (the words here are axis-aligned)."""
    return iou(rect(a), rect(b))


def assert_valid_boxes(answer: dict, width: int, height: int) -> None:
    assert answer["width"] == width and answer["height"] == height
    assert answer["model"] == "craft_mlt_25k"
    assert {"preprocess", "network", "postprocess"} <= set(answer["timings_ms"])
    for box in answer["boxes"]:
        quad = np.asarray(box["quad"], dtype=np.float64)
        assert quad.shape == (4, 2)
        assert np.all((quad[:, 0] >= 0) & (quad[:, 0] <= width))
        assert np.all((quad[:, 1] >= 0) & (quad[:, 1] <= height))
        assert 0.0 < box["score"] <= 1.0


# ---------------------------------------------------------------- bad input, one test per case

TRUNCATED_PNG = PAGE_PNG[: len(PAGE_PNG) // 2]
HUGE_HEADER_PNG = png_header_only(30_000, 30_000)

Send = Callable[[str], requests.Response]

BAD_REQUESTS: dict[str, tuple[Send, int, str]] = {
    "not_an_image": (lambda u: detect(u, b"this is plain text"), 400, "invalid_image"),
    "gif_is_not_supported": (lambda u: detect(u, gif_bytes()), 400, "invalid_image"),
    "truncated_png": (lambda u: detect(u, TRUNCATED_PNG), 400, "invalid_image"),
    "truncated_png_as_base64": (
        lambda u: detect_json(u, {"image": b64(TRUNCATED_PNG)}),
        400,
        "invalid_image",
    ),
    "empty_image_file": (lambda u: detect(u, b""), 400, "missing_image"),
    "multipart_without_image": (
        lambda u: requests.post(f"{u}/detection", files={"canvas_size": (None, "640")}),
        400,
        "missing_image",
    ),
    "empty_json_body": (
        lambda u: requests.post(
            f"{u}/detection", data=b"", headers={"Content-Type": "application/json"}
        ),
        400,
        "missing_image",
    ),
    "json_without_image": (lambda u: detect_json(u, {"canvas_size": 640}), 400, "missing_image"),
    "empty_body_no_content_type": (
        lambda u: requests.post(f"{u}/detection", data=b""),
        415,
        "unsupported_media_type",
    ),
    "png_header_claiming_30000x30000": (
        lambda u: detect(u, HUGE_HEADER_PNG),
        413,
        "image_too_large",
    ),
    "png_header_claiming_30000x30000_as_base64": (
        lambda u: detect_json(u, {"image": b64(HUGE_HEADER_PNG)}),
        413,
        "image_too_large",
    ),
    "text_threshold_above_1": (
        lambda u: detect(u, PAGE_PNG, text_threshold="1.5"),
        400,
        "invalid_parameter",
    ),
    "low_text_zero": (lambda u: detect(u, PAGE_PNG, low_text="0"), 400, "invalid_parameter"),
    "link_threshold_negative": (
        lambda u: detect(u, PAGE_PNG, link_threshold="-0.1"),
        400,
        "invalid_parameter",
    ),
    "canvas_size_too_big": (
        lambda u: detect(u, PAGE_PNG, canvas_size="100000"),
        400,
        "invalid_parameter",
    ),
    "canvas_size_not_a_number": (
        lambda u: detect(u, PAGE_PNG, canvas_size="big"),
        400,
        "invalid_parameter",
    ),
    "canvas_size_fractional": (
        lambda u: detect(u, PAGE_PNG, canvas_size="640.5"),
        400,
        "invalid_parameter",
    ),
    "mag_ratio_nan": (lambda u: detect(u, PAGE_PNG, mag_ratio="nan"), 400, "invalid_parameter"),
    "poly_not_a_boolean": (lambda u: detect(u, PAGE_PNG, poly="maybe"), 400, "invalid_parameter"),
    "json_parameter_out_of_range": (
        lambda u: detect_json(u, {"image": b64(PAGE_PNG), "text_threshold": 7}),
        400,
        "invalid_parameter",
    ),
    "json_image_not_base64": (
        lambda u: detect_json(u, {"image": "not base64 at all!"}),
        400,
        "invalid_parameter",
    ),
    "json_body_not_json": (
        lambda u: requests.post(
            f"{u}/detection", data=b"{image:", headers={"Content-Type": "application/json"}
        ),
        400,
        "invalid_parameter",
    ),
    "json_nested_too_deep": (
        lambda u: requests.post(
            f"{u}/detection", data=b"[" * 100_000, headers={"Content-Type": "application/json"}
        ),
        400,
        "invalid_parameter",
    ),
    "content_type_text_plain": (
        lambda u: requests.post(
            f"{u}/detection", data=PAGE_PNG, headers={"Content-Type": "text/plain"}
        ),
        415,
        "unsupported_media_type",
    ),
    "content_type_raw_png": (
        lambda u: requests.post(
            f"{u}/detection", data=PAGE_PNG, headers={"Content-Type": "image/png"}
        ),
        415,
        "unsupported_media_type",
    ),
    "canvas_over_the_pixel_budget": (
        lambda u: detect(
            u, png_bytes(render_words(PAGE_WORDS * 3)[0]), canvas_size="4096", mag_ratio="5"
        ),
        422,
        "over_budget",
    ),
    "deadline_header_not_a_number": (
        lambda u: post_with_deadline(f"{u}/detection", PAGE_FILES, "tomorrow"),
        400,
        "invalid_parameter",
    ),
    "deadline_passed": (
        lambda u: post_with_deadline(f"{u}/detection", PAGE_FILES, past_deadline()),
        504,
        "timeout",
    ),
    "get_on_detection": (lambda u: requests.get(f"{u}/detection"), 405, "method_not_allowed"),
    "unknown_path": (lambda u: requests.post(f"{u}/detect", data=PAGE_PNG), 404, "not_found"),
}


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_bad_input_gets_its_json_error(std_url: str, case: str) -> None:
    send, status, code = BAD_REQUESTS[case]
    assert_error(send(std_url), status, code)
    assert requests.get(f"{std_url}/healthz", timeout=10).status_code == 200


def test_service_keeps_detecting_after_every_bad_request(std_url: str) -> None:
    for case, (send, status, _) in BAD_REQUESTS.items():
        assert send(std_url).status_code == status, case
    response = detect(std_url, PAGE_PNG, **FAST)
    assert response.status_code == 200, response.text
    assert len(response.json()["boxes"]) == len(PAGE_QUADS)


def test_upload_over_the_size_limit_is_413(base_settings: Settings, detector) -> None:
    settings = base_settings.with_overrides(ocr_max_upload_mb=0.01)  # about 10 KB
    big = png_bytes(np.random.default_rng(0).integers(0, 256, (120, 120, 3), dtype=np.uint8))
    assert len(big) > 20_000
    with serve(create_app(settings, detector)) as url:
        assert_error(detect(url, big), 413, "payload_too_large")
        assert requests.get(f"{url}/healthz", timeout=10).status_code == 200


def test_pixel_limit_is_configurable(base_settings: Settings, detector) -> None:
    settings = base_settings.with_overrides(ocr_max_pixels=PAGE.shape[0] * PAGE.shape[1] - 1)
    with serve(create_app(settings, detector)) as url:
        assert_error(detect(url, PAGE_PNG), 413, "image_too_large")


# ---------------------------------------------------------------- good input


@pytest.fixture(scope="module")
def dev_image(dev_dir: Path) -> tuple[bytes, np.ndarray, list[dict]]:
    data = (dev_dir / "images" / DEV_IMAGE).read_bytes()
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    labels = json.loads((dev_dir / "labels" / f"{Path(DEV_IMAGE).stem}.json").read_text())
    return data, image, labels["words"]


@pytest.fixture(scope="module")
def dev_answer(std_url: str, dev_image) -> dict:
    response = detect(std_url, dev_image[0], **SMALL)
    assert response.status_code == 200, response.text
    return response.json()


def test_dev_image_gets_its_word_boxes_in_image_pixels(dev_image, dev_answer: dict) -> None:
    _, image, truth = dev_image
    height, width = image.shape[:2]
    assert_valid_boxes(dev_answer, width, height)
    boxes = [box["quad"] for box in dev_answer["boxes"]]
    # The canvas is half the image (ratio 0.5), so boxes only land on the words if they were
    # scaled back to the pixels of the image as sent.
    found = [w for w in truth if any(rect_iou(w["quad"], q) >= 0.5 for q in boxes)]
    assert len(found) >= 5, (len(found), len(truth), boxes)
    assert "polygon" not in dev_answer["boxes"][0]


def test_higher_text_threshold_gives_fewer_boxes(std_url: str, dev_image, dev_answer) -> None:
    strict = detect(std_url, dev_image[0], text_threshold="0.9", **SMALL)
    assert strict.status_code == 200, strict.text
    # At the default 0.7 this image has 7 boxes, at 0.9 only 1: the parameter took effect.
    assert len(strict.json()["boxes"]) < len(dev_answer["boxes"])


def test_rendered_page_boxes_come_in_reading_order_and_base64_matches_multipart(
    std_url: str,
) -> None:
    multipart = detect(std_url, PAGE_PNG, **FAST)
    as_json = detect_json(std_url, {"image": b64(PAGE_PNG), "canvas_size": 640, "mag_ratio": 1.0})
    assert multipart.status_code == 200, multipart.text
    assert as_json.status_code == 200, as_json.text
    answer = multipart.json()
    assert_valid_boxes(answer, PAGE.shape[1], PAGE.shape[0])
    assert as_json.json()["boxes"] == answer["boxes"]
    quads = [box["quad"] for box in answer["boxes"]]
    assert len(quads) == len(PAGE_QUADS)
    # Box i lies on word i in the order the words were drawn: line by line, left to right.
    for (word, truth), quad in zip(PAGE_QUADS, quads, strict=True):
        assert rect_iou(truth, quad) >= 0.5, (word, truth, quad)


def test_poly_true_returns_a_polygon_per_box(std_url: str) -> None:
    response = detect_json(
        std_url, {"image": b64(PAGE_PNG), "canvas_size": 640, "mag_ratio": 1.0, "poly": True}
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert_valid_boxes(answer, PAGE.shape[1], PAGE.shape[0])
    assert len(answer["boxes"]) == len(PAGE_QUADS)
    for box in answer["boxes"]:
        polygon = np.asarray(box["polygon"], dtype=np.float64)
        assert polygon.ndim == 2 and polygon.shape[0] >= 4 and polygon.shape[1] == 2
        assert np.all(polygon >= 0)
        assert np.all(polygon[:, 0] <= PAGE.shape[1]) and np.all(polygon[:, 1] <= PAGE.shape[0])


def error_count(url: str, code: str) -> float:
    """This service's ocr_errors_total for ``code`` on /detection, read from /metrics."""
    response = requests.get(f"{url}/metrics", timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    wanted = {"service": "std", "endpoint": "/detection", "code": code}
    return sum(
        sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
        if sample.name == "ocr_errors_total" and sample.labels == wanted
    )


def test_health_ready_and_metrics(std_url: str) -> None:
    health = requests.get(f"{std_url}/healthz", timeout=10)
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    ready = requests.get(f"{std_url}/readyz", timeout=10)
    assert ready.status_code == 200, ready.text
    assert ready.json()["ready"] is True and ready.json()["name"] == "craft_mlt_25k"
    before = error_count(std_url, "invalid_image")
    assert_error(detect(std_url, b"not an image"), 400, "invalid_image")
    assert error_count(std_url, "invalid_image") == before + 1

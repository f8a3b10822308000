"""str_service over real HTTP: bad boxes and crops get their 4xx JSON errors, good ones are read.

The words are drawn by the test (tests/render.py), so the expected text is known exactly and no
shared data is needed. The server allows STR_MAX_CROPS = 5, the number of words on the page, so
the happy paths run at the limit and one more is refused.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator

import numpy as np
import pytest
import requests

from common.config import Settings
from str_service.app import create_app
from tests.render import png_bytes, png_header_only, render_words
from tests.servers import assert_error, serve
from tests.service.conftest import past_deadline, post_with_deadline

PAGE_WORDS = [["HELLO", "world"], ["OCR", "2024", "pipeline"]]
PAGE, PLACED = render_words(PAGE_WORDS)
PAGE_PNG = png_bytes(PAGE)
WORDS = [word for word, _ in PLACED]
QUADS = [quad for _, quad in PLACED]
MAX_CROPS = len(WORDS)
ORDER = [3, 0, 4, 2, 1]  # not reading order: answers must follow the input order
TIMEOUT_S = 120


def crop_png(quad: list[list[float]]) -> bytes:
    (x0, y0), (x1, y1) = np.min(quad, axis=0).astype(int), np.max(quad, axis=0).astype(int)
    return png_bytes(PAGE[y0:y1, x0:x1])


CROPS = [crop_png(quad) for quad in QUADS]
CROP_FILES = [("crops", ("c.png", CROPS[0]))]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@pytest.fixture(scope="module")
def str_url(base_settings: Settings, recognizer) -> Iterator[str]:
    settings = base_settings.with_overrides(str_max_crops=MAX_CROPS)
    with serve(create_app(settings, recognizer)) as url:
        yield url


def recognize_boxes(url: str, boxes: object, image: bytes = PAGE_PNG) -> requests.Response:
    """Multipart: the image as a file, ``boxes`` as a form string (sent as is when a str)."""
    text = boxes if isinstance(boxes, str) else json.dumps(boxes)
    return requests.post(
        f"{url}/recognition",
        files={"image": ("page.png", image)},
        data={"boxes": text},
        timeout=TIMEOUT_S,
    )


def recognize_crops(url: str, crops: list[bytes]) -> requests.Response:
    files = [("crops", (f"crop{i}.png", blob)) for i, blob in enumerate(crops)]
    return requests.post(f"{url}/recognition", files=files, timeout=TIMEOUT_S)


def post_json(url: str, payload: object) -> requests.Response:
    """JSON body; NaN and Infinity go out as Python's json writes them (requests refuses to)."""
    return requests.post(
        f"{url}/recognition",
        data=json.dumps(payload),
        headers={"Content-Type": "application/json"},
        timeout=TIMEOUT_S,
    )


def assert_reads(response: requests.Response, words: list[str]) -> dict:
    assert response.status_code == 200, response.text
    answer = response.json()
    assert [r["text"] for r in answer["results"]] == words
    assert all(0.0 < r["confidence"] <= 1.0 for r in answer["results"])
    # Every crop goes through at least one forward batch (low-confidence re-reads add more).
    passes = answer["forward_passes"]
    assert passes and all(size >= 1 for size in passes)
    assert sum(passes) >= len(words)
    assert "batches" not in answer  # forward passes are not bucket batches
    assert "english_g2" in answer["model"]
    assert answer["timings_ms"]["total"] > 0
    return answer


def square(x: float, y: float, side: float = 10) -> list[list[float]]:
    return [[x, y], [x + side, y], [x + side, y + side], [x, y + side]]


# ---------------------------------------------------------------- bad input, one test per case

Send = Callable[[str], requests.Response]
HEIGHT, WIDTH = PAGE.shape[:2]
GOOD = QUADS[0]
NAN_BOX = "[[[NaN, 0], [10, 0], [10, 10], [0, 10]]]"  # Python's json parses NaN; strict JSON can't

BAD_REQUESTS: dict[str, tuple[Send, int, str]] = {
    "box_with_three_points": (lambda u: recognize_boxes(u, [GOOD[:3]]), 400, "invalid_boxes"),
    "box_with_five_points": (
        lambda u: recognize_boxes(u, [GOOD + [GOOD[0]]]),
        400,
        "invalid_boxes",
    ),
    "box_with_3d_points": (
        lambda u: recognize_boxes(u, [[[x, y, 0] for x, y in GOOD]]),
        400,
        "invalid_boxes",
    ),
    "box_as_eight_flat_numbers": (
        lambda u: recognize_boxes(u, [[v for point in GOOD for v in point]]),
        400,
        "invalid_boxes",
    ),
    "box_with_nan_in_form_field": (lambda u: recognize_boxes(u, NAN_BOX), 400, "invalid_boxes"),
    "box_with_infinity_in_form_field": (
        lambda u: recognize_boxes(u, NAN_BOX.replace("NaN", "Infinity")),
        400,
        "invalid_boxes",
    ),
    "box_with_nan_in_json_body": (
        lambda u: post_json(u, {"image": b64(PAGE_PNG), "boxes": [square(float("nan"), 0)]}),
        400,
        "invalid_boxes",
    ),
    "box_with_null": (
        lambda u: recognize_boxes(u, [[[None, 0], [10, 0], [10, 10], [0, 10]]]),
        400,
        "invalid_boxes",
    ),
    "box_with_string": (
        lambda u: recognize_boxes(u, [[["left", 0], [10, 0], [10, 10], [0, 10]]]),
        400,
        "invalid_boxes",
    ),
    "box_with_numeric_string": (
        lambda u: recognize_boxes(u, [[["5", 0], [10, 0], [10, 10], [0, 10]]]),
        400,
        "invalid_boxes",
    ),
    "box_with_boolean": (
        lambda u: recognize_boxes(u, [[[True, 0], [10, 0], [10, 10], [0, 10]]]),
        400,
        "invalid_boxes",
    ),
    "box_right_of_the_image": (
        lambda u: recognize_boxes(u, [square(WIDTH + 5, 5)]),
        400,
        "invalid_boxes",
    ),
    "box_above_the_image": (lambda u: recognize_boxes(u, [square(5, -50)]), 400, "invalid_boxes"),
    "box_starting_at_the_bottom_edge": (
        lambda u: recognize_boxes(u, [square(5, HEIGHT)]),
        400,
        "invalid_boxes",
    ),
    "box_with_zero_area_point": (
        lambda u: recognize_boxes(u, [[[5, 5]] * 4]),
        400,
        "invalid_boxes",
    ),
    "box_with_zero_area_line": (
        lambda u: recognize_boxes(u, [[[5, 5], [50, 5], [50, 5], [5, 5]]]),
        400,
        "invalid_boxes",
    ),
    "boxes_not_a_list": (lambda u: recognize_boxes(u, {"quad": GOOD}), 400, "invalid_boxes"),
    "boxes_not_json": (lambda u: recognize_boxes(u, "[[[1, 2]"), 400, "invalid_parameter"),
    "boxes_nested_too_deep": (
        lambda u: recognize_boxes(u, "[" * 100_000),
        400,
        "invalid_parameter",
    ),
    "image_without_boxes": (
        lambda u: requests.post(
            f"{u}/recognition", files={"image": ("page.png", PAGE_PNG)}, timeout=TIMEOUT_S
        ),
        400,
        "invalid_parameter",
    ),
    "boxes_without_image": (
        lambda u: post_json(u, {"boxes": QUADS}),
        400,
        "missing_image",
    ),
    "image_not_an_image": (
        lambda u: recognize_boxes(u, QUADS, image=b"plain text"),
        400,
        "invalid_image",
    ),
    "image_header_claiming_30000x30000": (
        lambda u: recognize_boxes(u, [square(0, 0)], image=png_header_only(30_000, 30_000)),
        413,
        "image_too_large",
    ),
    "more_boxes_than_the_limit": (
        lambda u: recognize_boxes(u, QUADS + [GOOD]),
        413,
        "payload_too_large",
    ),
    "more_crops_than_the_limit": (
        lambda u: recognize_crops(u, CROPS + [CROPS[0]]),
        413,
        "payload_too_large",
    ),
    "more_crops_than_the_limit_as_json": (
        lambda u: post_json(u, {"crops": [b64(c) for c in CROPS + [CROPS[0]]]}),
        413,
        "payload_too_large",
    ),
    "crop_not_an_image": (
        lambda u: recognize_crops(u, [CROPS[0], b"plain text"]),
        400,
        "invalid_image",
    ),
    "crop_truncated_png": (
        lambda u: recognize_crops(u, [CROPS[0][: len(CROPS[0]) // 2]]),
        400,
        "invalid_image",
    ),
    "crop_not_an_image_as_json": (
        lambda u: post_json(u, {"crops": [b64(b"plain text")]}),
        400,
        "invalid_image",
    ),
    "crop_not_base64": (
        lambda u: post_json(u, {"crops": ["not base64 at all!"]}),
        400,
        "invalid_parameter",
    ),
    "crop_not_a_string": (lambda u: post_json(u, {"crops": [12]}), 400, "invalid_parameter"),
    "empty_crops_list": (lambda u: post_json(u, {"crops": []}), 400, "missing_image"),
    "empty_json_body": (
        lambda u: requests.post(
            f"{u}/recognition", data=b"", headers={"Content-Type": "application/json"}
        ),
        400,
        "missing_image",
    ),
    "content_type_text_plain": (
        lambda u: requests.post(
            f"{u}/recognition", data=PAGE_PNG, headers={"Content-Type": "text/plain"}
        ),
        415,
        "unsupported_media_type",
    ),
    "deadline_header_not_a_number": (
        lambda u: post_with_deadline(f"{u}/recognition", CROP_FILES, "-1"),
        400,
        "invalid_parameter",
    ),
    "deadline_passed": (
        lambda u: post_with_deadline(f"{u}/recognition", CROP_FILES, past_deadline()),
        504,
        "timeout",
    ),
}


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_bad_input_gets_its_json_error(str_url: str, case: str) -> None:
    send, status, code = BAD_REQUESTS[case]
    assert_error(send(str_url), status, code)
    assert requests.get(f"{str_url}/healthz", timeout=10).status_code == 200


def test_errors_name_the_bad_box_and_crop(str_url: str) -> None:
    box = assert_error(recognize_boxes(str_url, [GOOD, GOOD[:3]]), 400, "invalid_boxes")
    assert "box 1" in box["message"]
    crop = assert_error(recognize_crops(str_url, [CROPS[0], b"xx"]), 400, "invalid_image")
    assert "crop 1" in crop["message"]
    limit = assert_error(recognize_crops(str_url, CROPS + CROPS), 413, "payload_too_large")
    assert "STR_MAX_CROPS" in limit["message"]


def test_service_keeps_reading_after_every_bad_request(str_url: str) -> None:
    for case, (send, status, _) in BAD_REQUESTS.items():
        assert send(str_url).status_code == status, case
    assert_reads(recognize_crops(str_url, [CROPS[0]]), [WORDS[0]])


# ---------------------------------------------------------------- good input


def test_image_and_boxes_are_read_in_input_order(str_url: str) -> None:
    boxes = [QUADS[i] for i in ORDER]
    multipart = assert_reads(recognize_boxes(str_url, boxes), [WORDS[i] for i in ORDER])
    as_json = post_json(str_url, {"image": b64(PAGE_PNG), "boxes": boxes})
    assert_reads(as_json, [WORDS[i] for i in ORDER])
    assert as_json.json()["results"] == multipart["results"]


def test_boxes_poking_out_of_the_image_are_clipped_and_read(str_url: str) -> None:
    # The image is one tight word crop; the box runs 50 px past every edge of it.
    poking = [[-50, -50], [1000, -50], [1000, 1000], [-50, 1000]]
    assert_reads(recognize_boxes(str_url, [poking], image=CROPS[0]), [WORDS[0]])


def test_crops_are_read_in_input_order(str_url: str) -> None:
    crops = [CROPS[i] for i in ORDER]
    multipart = assert_reads(recognize_crops(str_url, crops), [WORDS[i] for i in ORDER])
    as_json = post_json(str_url, {"crops": [b64(c) for c in crops]})
    assert_reads(as_json, [WORDS[i] for i in ORDER])
    assert as_json.json()["results"] == multipart["results"]


def test_health_and_ready(str_url: str) -> None:
    health = requests.get(f"{str_url}/healthz", timeout=10)
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    ready = requests.get(f"{str_url}/readyz", timeout=10)
    assert ready.status_code == 200, ready.text
    assert ready.json()["ready"] is True and "english_g2" in ready.json()["model"]

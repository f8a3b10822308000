"""The pipeline end to end, in both topologies, with the real weights and the real broker."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from common.config import Settings
from tests.render import png_bytes, render_words
from tests.service.conftest import ocr_stack, rabbitmqctl_queue, wait_until

MODES = ["embedded", "distributed"]
SMALL_CANVAS = {"canvas_size": "640"}
FAST = {"canvas_size": "640", "mag_ratio": "1.0"}  # detection is not the point: keep it cheap
PAGE_WORDS = [["HELLO", "world"], ["OCR", "2024", "pipeline"]]


def post(url: str, path: str, image: bytes, **fields: str) -> requests.Response:
    return requests.post(url + path, files={"image": ("page.png", image)}, data=fields, timeout=120)


def batch_ocr(url: str, images: list[bytes]) -> list[dict]:
    """POST /batch_ocr with ``images``; its per-image answers, in order."""
    response = requests.post(
        url + "/batch_ocr",
        files=[("images", (f"p{i}.png", blob)) for i, blob in enumerate(images)],
        data=SMALL_CANVAS,
        timeout=120,
    )
    assert response.status_code == 200, response.text
    return response.json()["results"]


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest, broker: str) -> str:
    return request.param


@pytest.fixture
def settings(base_settings: Settings, queue_name: str) -> Settings:
    return base_settings.with_overrides(str_queue=queue_name)


def test_ocr_and_pipeline_read_a_rendered_page(mode, settings, detector, recognizer) -> None:
    image, _ = render_words(PAGE_WORDS)
    with ocr_stack(mode, settings, detector, recognizer) as (url, _):
        sequential = post(url, "/ocr", png_bytes(image), **SMALL_CANVAS)
        batched = post(url, "/pipeline", png_bytes(image), **SMALL_CANVAS)
    assert sequential.status_code == 200, sequential.text
    assert batched.status_code == 200, batched.text
    seq, bat = sequential.json(), batched.json()
    assert seq["mode"] == "sequential" and bat["mode"] == "batched"
    assert seq["text"] == "HELLO world\nOCR 2024 pipeline"
    assert bat["text"] == seq["text"]
    assert [w["text"] for w in bat["words"]] == [w["text"] for w in seq["words"]]
    assert [line["text"] for line in seq["lines"]] == ["HELLO world", "OCR 2024 pipeline"]
    # The default (fast) profile reads each rendered line's close words as one crop.
    assert len(bat["words"]) == 5
    assert sum(b["size"] for b in bat["batches"]) == len(bat["lines"]) == 2
    assert {"std", "str", "queue_wait", "total"} <= set(bat["timings_ms"])
    for word in seq["words"]:
        assert 0.0 <= word["confidence"] <= 1.0 and 0.0 <= word["det_score"] <= 1.0
        assert len(word["quad"]) == 4


def test_batch_ocr_answers_each_image_in_order(mode, settings, detector, recognizer) -> None:
    pages = [["FIRST", "page"]], [["SECOND"]], [["third", "PAGE", "here"]]
    images = [png_bytes(render_words(lines)[0]) for lines in pages]
    with ocr_stack(mode, settings, detector, recognizer) as (url, _):
        results = batch_ocr(url, images)
    assert [r["text"] for r in results] == ["FIRST page", "SECOND", "third PAGE here"]
    assert all(r["mode"] == "batched" for r in results)


@pytest.mark.parametrize("policy", ["adaptive", "fixed"])
def test_batch_ocr_reads_all_its_images_crops_in_one_batch(
    mode, policy, settings, detector, recognizer, monkeypatch
) -> None:
    # Detection of every image comes first, then one read: even the adaptive bucket, which
    # flushes at once on a quiet service, sees all the request's crops together. STR_MAX_BATCH
    # (350 by default) is far above the 4 crops (one per rendered line: the fast profile reads
    # a line's close words as one crop), so they fit in a single batch.
    if mode == "distributed" and policy == "adaptive":
        # The worker takes 2 ms without a delivery to mean "nothing more queued"; on a loaded
        # test machine the publishing thread can stall that long between two crops of one read
        # and split it. A longer quiet window keeps this about ocr_many, not about scheduling.
        monkeypatch.setattr("str_service.worker.QUIET_POLL_S", 0.25)
    pages = [
        [["HELLO", "world"], ["OCR", "2024", "pipeline"]],
        [["alpha", "beta"]],
        [["RED", "GREEN"]],
    ]
    images = [png_bytes(render_words(lines)[0]) for lines in pages]
    tuned = settings.with_overrides(str_bucket_policy=policy, str_max_wait_ms=300)
    assert tuned.str_max_batch > 4
    with ocr_stack(mode, tuned, detector, recognizer) as (url, _):
        results = batch_ocr(url, images)
    for result, lines in zip(results, pages, strict=True):
        assert [w["text"] for w in result["words"]] == [w for line in lines for w in line]
        assert result["text"] == "\n".join(" ".join(line) for line in lines)
        assert result["mode"] == "batched"
        assert {"std", "str", "queue_wait", "total"} <= set(result["timings_ms"])
    # Every image names the same single batch, which carried all nine crops.
    assert all(r["batches"] == results[0]["batches"] for r in results), results
    assert len(results[0]["batches"]) == 1, results[0]["batches"]
    assert sum(len(r["words"]) for r in results) == 9
    assert results[0]["batches"][0]["size"] == sum(len(r["lines"]) for r in results) == 4


def test_concurrent_requests_share_batches_that_never_exceed_the_maximum(
    mode, settings, detector, recognizer
) -> None:
    words = [
        ["alpha", "beta", "gamma", "delta"],
        ["one", "two", "three", "four", "five"],
        ["RED", "GREEN", "BLUE"],
    ]
    image = png_bytes(render_words(words, scale=0.9)[0])
    expected = "\n".join(" ".join(line) for line in words)
    # A fixed 5 s bucket outlasts the time between two requests' detections, so their crops
    # meet in one batch; a maximum of 16 against 12 crops a request forces splitting. All 8
    # requests are admitted at once (OCR_MAX_INFLIGHT), so none is refused with 503.
    tuned = settings.with_overrides(
        str_max_batch=16, str_bucket_policy="fixed", str_max_wait_ms=5000, ocr_max_inflight=8
    )
    with ocr_stack(mode, tuned, detector, recognizer) as (url, _):
        with ThreadPoolExecutor(max_workers=8) as pool:
            answers = list(
                pool.map(lambda _: post(url, "/pipeline", image, **SMALL_CANVAS), range(8))
            )
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    bodies = [a.json() for a in answers]
    assert all(b["text"] == expected for b in bodies)
    sizes: dict[str, int] = {}
    requests_per_batch: dict[str, int] = {}
    for body in bodies:
        for batch in body["batches"]:
            sizes[batch["id"]] = batch["size"]
            requests_per_batch[batch["id"]] = requests_per_batch.get(batch["id"], 0) + 1
    assert max(sizes.values()) <= 16
    assert max(requests_per_batch.values()) >= 2, requests_per_batch


def test_crops_that_wait_past_the_timeout_get_504_and_leave_nothing_behind(
    mode, settings, detector, recognizer, broker
) -> None:
    image = png_bytes(render_words(PAGE_WORDS)[0])
    # The bucket (the worker's, or the in-process one) holds crops 8 s; the request has 4 s.
    tuned = settings.with_overrides(
        ocr_timeout_s=4.0, str_bucket_policy="fixed", str_max_wait_ms=8_000
    )
    with ocr_stack(mode, tuned, detector, recognizer, workers=1) as (url, engine):
        response = post(url, "/pipeline", image, **SMALL_CANVAS)
        assert response.status_code == 504, response.text
        assert response.json()["error"]["code"] == "timeout"
        if mode == "distributed":
            # The worker drops the expired crops when its bucket flushes, and acks them.
            assert wait_until(lambda: rabbitmqctl_queue(tuned.str_queue)[:2] == (0, 0), 30.0, 2.0)
        else:
            assert len(engine.pipeline.batched._bucket) == 0
        # The service is still healthy and serves the next request.
        assert requests.get(url + "/healthz", timeout=5).status_code == 200


def test_sequential_ocr_past_the_timeout_gets_504(mode, settings, detector, recognizer) -> None:
    image = png_bytes(render_words(PAGE_WORDS)[0])
    tuned = settings.with_overrides(ocr_timeout_s=0.2)  # detection alone takes longer
    with ocr_stack(mode, tuned, detector, recognizer) as (url, _):
        response = post(url, "/ocr", image, **SMALL_CANVAS)
        assert response.status_code == 504, response.text
        assert response.json()["error"]["code"] == "timeout"


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        (b"not an image at all", None, 400, "invalid_image"),
        (None, None, 400, "missing_image"),
        (b"{not json", "application/json", 400, "invalid_parameter"),
        (b"hello", "text/plain", 415, "unsupported_media_type"),
    ],
)
def test_bad_requests_get_json_errors(
    settings, detector, recognizer, body, content_type, status, code
) -> None:
    with ocr_stack("embedded", settings, detector, recognizer) as (url, _):
        for path in ("/ocr", "/pipeline", "/batch_ocr"):
            if content_type is None:
                files = {"image": ("x.png", body)} if body is not None else None
                response = requests.post(url + path, files=files, data={"x": "1"}, timeout=30)
            else:
                response = requests.post(
                    url + path, data=body, headers={"Content-Type": content_type}, timeout=30
                )
            if path == "/batch_ocr" and code == "invalid_image" and content_type is None:
                # /batch_ocr reads the repeated 'images' field, so 'image' alone is missing.
                assert response.json()["error"]["code"] == "missing_image"
                continue
            assert response.status_code == status, (path, response.text)
            assert response.json()["error"]["code"] == code


def _dev_pages(dev_dir: Path) -> list[Path]:
    return sorted((dev_dir / "images").iterdir())


@pytest.mark.parametrize("mode_name", MODES)
def test_ocr_and_pipeline_agree_on_every_dev_image(
    mode_name, settings, detector, recognizer, dev_dir, broker
) -> None:
    # Every dev image is checked, half in each topology: both run the same OcrPipeline code, and
    # checking all sixteen twice would double the suite's longest test.
    pages = _dev_pages(dev_dir)[MODES.index(mode_name) :: 2]
    words_read = 0
    with ocr_stack(mode_name, settings, detector, recognizer) as (url, _):
        for page in pages:
            blob = page.read_bytes()
            seq = post(url, "/ocr", blob, **FAST)
            bat = post(url, "/pipeline", blob, **FAST)
            assert seq.status_code == 200 and bat.status_code == 200, page.name
            seq_words = [(w["text"], w["quad"]) for w in seq.json()["words"]]
            bat_words = [(w["text"], w["quad"]) for w in bat.json()["words"]]
            assert seq_words == bat_words, page.name
            assert seq.json()["text"] == bat.json()["text"], page.name
            words_read += len(seq_words)
    assert words_read > 10 * len(pages)  # (a scene photo may hold no word CRAFT finds at 640)


def test_dev_image_words_are_read(settings, detector, recognizer, dev_dir) -> None:
    """A FUNSD form read end to end finds most of its ground-truth words."""
    page = dev_dir / "images" / "funsd_81186212.png"
    truth = json.loads((dev_dir / "labels" / "funsd_81186212.json").read_text())
    expected = {w["text"].lower().strip(".,:;()") for w in truth["words"] if w["text"] != "###"}
    with ocr_stack("embedded", settings, detector, recognizer) as (url, _):
        response = post(url, "/pipeline", page.read_bytes())
    assert response.status_code == 200
    found = {w["text"].lower().strip(".,:;()") for w in response.json()["words"]}
    recall = len(found & expected) / len(expected)
    assert recall > 0.6, recall

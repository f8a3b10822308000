"""OcrPipeline.ocr_many with fake backends: one read for the whole request, split back in order.

The fake reader sees only crops, so each test image encodes where a crop came from in its
pixels: image ``k`` has value ``80 * k + x`` in column ``x``, and box ``j`` starts at column
``4 * j``; a crop's first pixel names its image and box.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import numpy as np
import pytest

from common.config import Settings
from common.documents import PageImage
from common.errors import InvalidImage, Overloaded, Timeout
from common.layout import in_reading_order
from common.params import DetectionParams
from common.results import BatchRef, Box, Detection, as_quad
from pipeline.ocr import OcrPipeline
from pipeline.reading import BatchedReading
from tests.render import png_bytes

WIDTH = 80  # columns per image, and the pixel offset between images


def page(k: int) -> bytes:
    row = (np.arange(WIDTH) + WIDTH * k).astype(np.uint8)
    return png_bytes(np.repeat(np.tile(row, (8, 1))[:, :, None], 3, axis=2))


def word(k: int, j: int) -> str:
    return f"p{k}w{j}"


class FakeDetector:
    """Finds ``boxes[k]`` boxes on image ``k`` in one row, left to right."""

    def __init__(self, boxes: Sequence[int], delay_s: float = 0.0) -> None:
        self.boxes = boxes
        self.delay_s = delay_s
        self.calls: list[int] = []
        self._lock = threading.Lock()

    def detect(self, page: PageImage, params: DetectionParams, deadline: float) -> Detection:
        if time.time() >= deadline:
            raise Timeout("deadline passed before detection")
        k = int(page.image[0, 0, 0]) // WIDTH
        with self._lock:
            self.calls.append(k)
        time.sleep(self.delay_s)
        quads = [
            [[4 * j, 1], [4 * j + 3, 1], [4 * j + 3, 6], [4 * j, 6]] for j in range(self.boxes[k])
        ]
        boxes, lines = in_reading_order([Box(as_quad(quad), 0.9) for quad in quads])
        return Detection(WIDTH, 8, boxes, lines)


class FakeReader:
    """The bucket as one batch per read; it records what each read carried."""

    def __init__(self, queued: int = 0) -> None:
        self.queued = queued
        self.reads: list[list[str]] = []
        self.timeouts: list[float] = []

    def read(self, crops: Sequence[np.ndarray], timeout_s: float) -> BatchedReading:
        texts = []
        for crop in crops:
            value = int(crop[0, 0])
            texts.append(word(value // WIDTH, (value % WIDTH) // 4))
        self.reads.append(texts)
        self.timeouts.append(timeout_s)
        batches = [BatchRef(f"batch{len(self.reads)}", len(crops))] if crops else []
        return BatchedReading([(t, 0.99) for t in texts], batches, 5.0, 12.0)

    def queued_crops(self) -> int:
        return self.queued


class NoSequential:
    def read_one(self, crop: np.ndarray, deadline: float) -> tuple[str, float]:
        raise AssertionError("the batched path never reads one crop at a time")


def make(boxes: Sequence[int], **kwargs: float) -> tuple[OcrPipeline, FakeDetector, FakeReader]:
    # The official profile reads one crop per box, so each crop's pixels name its box.
    settings = Settings(ocr_timeout_s=30.0, str_max_queued_crops=100, ocr_profile="official")
    detector = FakeDetector(boxes, kwargs.get("delay_s", 0.0))
    reader = FakeReader(int(kwargs.get("queued", 0)))
    return OcrPipeline(settings, detector, NoSequential(), reader), detector, reader


def test_all_images_crops_go_in_one_read_and_come_back_per_image_in_order() -> None:
    boxes = [2, 0, 3]
    pipeline, detector, reader = make(boxes)
    answers = [r.export() for r in pipeline.ocr_many([page(k) for k in range(3)])]
    assert sorted(detector.calls) == [0, 1, 2]
    # One read, every crop of the request, image by image in reading order.
    assert reader.reads == [[word(k, j) for k in range(3) for j in range(boxes[k])]]
    assert len(answers) == 3
    for k, answer in enumerate(answers):
        assert [w["text"] for w in answer["words"]] == [word(k, j) for j in range(boxes[k])]
        assert answer["text"] == " ".join(word(k, j) for j in range(boxes[k]))
        assert answer["mode"] == "batched"
        assert (answer["width"], answer["height"]) == (WIDTH, 8)
        assert answer["batches"] == [{"id": "batch1", "size": 5}]
        timings = answer["timings_ms"]
        assert set(timings) == {"std", "str", "queue_wait", "total"}
        assert (timings["str"], timings["queue_wait"]) == (5.0, 7.0)  # the shared read's
        assert timings["total"] >= timings["std"]
    assert answers[1]["words"] == [] and answers[1]["lines"] == []


def test_a_request_whose_images_have_no_boxes_still_answers() -> None:
    pipeline, _, reader = make([0, 0])
    answers = [r.export() for r in pipeline.ocr_many([page(0), page(1)])]
    assert [a["words"] for a in answers] == [[], []]
    assert [a["text"] for a in answers] == ["", ""]
    assert reader.reads == [[]]


def test_the_read_gets_what_is_left_of_the_per_image_budget() -> None:
    pipeline, _, reader = make([1, 1])
    before = time.time()
    pipeline.ocr_many([page(0), page(1)])
    # No deadline given: OCR_TIMEOUT_S (30 s) for each of the two images, less detection.
    assert 30.0 < reader.timeouts[0] <= 60.0
    deadline = before + 5.0
    pipeline.ocr_many([page(0), page(1)], None, deadline)
    assert reader.timeouts[1] <= 5.0


def test_the_queued_crops_check_refuses_before_any_work() -> None:
    pipeline, detector, reader = make([1, 1], queued=101)
    with pytest.raises(Overloaded):
        pipeline.ocr_many([page(0), page(1)])
    assert detector.calls == [] and reader.reads == []


def test_a_bad_image_fails_the_request_before_detection() -> None:
    pipeline, detector, reader = make([1, 1])
    with pytest.raises(InvalidImage):
        pipeline.ocr_many([page(0), b"not an image"])
    assert detector.calls == [] and reader.reads == []


def test_a_deadline_that_passes_during_detection_is_a_timeout_and_reads_nothing() -> None:
    pipeline, _, reader = make([1, 1], delay_s=0.2)
    with pytest.raises(Timeout, match="detection alone took it"):
        pipeline.ocr_many([page(0), page(1)], None, time.time() + 0.1)
    assert reader.reads == []


def test_a_deadline_already_passed_at_detection_is_a_timeout() -> None:
    pipeline, _, reader = make([1, 1])
    with pytest.raises(Timeout):
        pipeline.ocr_many([page(0), page(1)], None, time.time() - 1.0)
    assert reader.reads == []


def test_pipeline_endpoint_still_reads_one_image_in_one_read() -> None:
    pipeline, _, reader = make([3])
    answer = pipeline.ocr_batched(page(0)).export()
    assert [w["text"] for w in answer["words"]] == [word(0, j) for j in range(3)]
    assert answer["batches"] == [{"id": "batch1", "size": 3}]
    assert reader.reads == [[word(0, j) for j in range(3)]]

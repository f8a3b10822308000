"""The fast profile: int8 graphs within stated tolerances of float32, a deterministic detection
scale, and pages read through merged segments that keep their words and quads."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from common.config import Settings
from common.documents import PageImage
from common.geometry import crop_quad
from common.params import DetectionParams
from monitoring.scoring import iou, rect
from pipeline.embedded import embedded_engine
from std_service.detector import Detector
from std_service.preprocess import resize_plan
from str_service.recognizer import Recognizer
from tests.render import png_bytes, render_words

pytest.importorskip("onnxruntime")

LINES = [["Invoice", "2024"], ["Total", "due", "74.68"], ["Thank", "you", "kindly"]]
PAGE, WORDS = render_words(LINES, scale=1.6, thickness=3)
FAST = Settings(ocr_threads=2, ocr_device="cpu")


@pytest.fixture(scope="module")
def fast_detector() -> Detector:
    return Detector.from_settings(FAST)


@pytest.fixture(scope="module")
def fast_recognizer() -> Recognizer:
    return Recognizer.from_settings(FAST)


def _iou(a, b) -> float:
    return iou(rect(a), rect(b))


def _inside(x: float, y: float, quad) -> bool:
    (x0, y0), (x1, y1) = np.min(quad, axis=0), np.max(quad, axis=0)
    return x0 <= x <= x1 and y0 <= y <= y1


def test_the_default_profile_is_fast_and_int8_on_the_cpu(fast_detector, fast_recognizer):
    assert FAST.ocr_profile == "fast" and FAST.profile.int8
    assert fast_detector.runtime == fast_recognizer.runtime == "onnx"


def test_only_the_fast_profile_corrects_readings(recognizer, fast_recognizer):
    """The fast recogniser carries the English word list and leaves out doubtful words; the
    official one reads greedily, every word (its parity with EasyOCR holds). The next tests
    show the corrections leave crisp words."""
    assert fast_recognizer.lexicon is not None and "invoice" in fast_recognizer.lexicon
    assert fast_recognizer.min_word_confidence == FAST.profile.min_word_confidence > 0
    assert recognizer.lexicon is None and recognizer.min_word_confidence == 0


def test_a_twin_without_the_word_list_shares_the_network(fast_recognizer):
    """monitoring.levers measures the word list on and off with one loaded, calibrated model."""
    greedy = fast_recognizer.reading_with(None)
    assert greedy.lexicon is None and greedy.min_word_confidence == 0
    assert fast_recognizer.lexicon is not None and fast_recognizer.min_word_confidence > 0
    assert greedy.onnx is fast_recognizer.onnx and greedy.loaded is fast_recognizer.loaded


def test_int8_craft_finds_the_boxes_float_finds(detector, fast_detector):
    """Tolerance: every float32 box has an int8 box at IoU >= 0.8, and no extra boxes; the
    region map within 0.1 everywhere (int8 rounding of a [0, 1] score map)."""
    params = DetectionParams()
    ours = fast_detector.detect(PAGE, params, return_maps=True)
    reference = detector.detect(PAGE, params, return_maps=True)
    assert len(ours.boxes) == len(reference.boxes) == len(WORDS)
    for want in reference.boxes:
        assert max(_iou(want.quad, got.quad) for got in ours.boxes) >= 0.8
    assert np.abs(ours.region - reference.region).max() < 0.1


def test_int8_recogniser_reads_what_float_reads(recognizer, fast_recognizer):
    """Tolerance: the same text for every rendered word, confidences within 0.05 (the fast
    recogniser's word list and formats included: crisp words and "74.68" are left as read)."""
    crops = [crop_quad(PAGE[:, :, 0], np.asarray(quad)) for _, quad in WORDS]
    ours = fast_recognizer.recognize(crops).results
    reference = recognizer.recognize(crops).results
    assert [text for text, _ in ours] == [text for text, _ in reference]
    assert [text for text, _ in ours] == [word for word, _ in WORDS]
    for (_, got), (_, want) in zip(ours, reference, strict=True):
        assert got == pytest.approx(want, abs=0.05)


def test_the_detection_scale_follows_the_text_size_and_is_deterministic(detector):
    big, words = render_words([["LARGE", "print"], ["reads", "at", "half"]], scale=4, thickness=8)
    canvas = np.full((1400, 1000, 3), 255, np.uint8)
    canvas[: big.shape[0], : big.shape[1]] = big
    official = resize_plan(*canvas.shape[:2], 1280, 1.5)[2]
    adaptive = DetectionParams(text_height=16.0)
    first = detector.detect(canvas, adaptive)
    second = detector.detect(canvas, adaptive)
    assert first.ratio == second.ratio < official / 1.5
    assert [b.quad for b in first.boxes] == [b.quad for b in second.boxes]
    for _, quad in words:  # every word lies inside a box found at the lower scale
        cx, cy = np.mean(quad, axis=0)
        assert any(_inside(cx, cy, box.quad) for box in first.boxes)
    assert detector.detect(canvas, DetectionParams()).ratio == pytest.approx(official)


def test_lone_glyphs_add_no_box_where_craft_found_every_word(fast_detector):
    """The fast profile also boxes lone characters CRAFT missed (tests/unit/test_glyphs.py);
    on a page where it found every word, that keeps its boxes as they are."""
    params = FAST.profile.detection
    assert params.lone_glyphs and not DetectionParams().lone_glyphs
    found = fast_detector.detect(PAGE, params)
    without = fast_detector.detect(PAGE, replace(params, lone_glyphs=False))
    assert [box.quad for box in found.boxes] == [box.quad for box in without.boxes]
    assert found.lines == without.lines and len(found.boxes) == len(WORDS)


def test_a_page_read_in_segments_keeps_every_word_and_its_quad(detector, recognizer):
    engine = embedded_engine(FAST, detector, recognizer)
    try:
        page = engine.pipeline.ocr_batched(png_bytes(PAGE)).page
    finally:
        engine.close()
    assert [word.text for word in page.words] == [word for word, _ in WORDS]
    for word, (_, quad) in zip(page.words, WORDS, strict=True):
        assert _iou(word.box.quad, quad) >= 0.5
    assert page.text.splitlines() == [" ".join(line) for line in LINES]


def test_the_official_profile_reads_one_crop_per_box(detector, recognizer):
    settings = FAST.with_overrides(ocr_profile="official")
    engine = embedded_engine(settings, detector, recognizer)
    try:
        document = engine.pipeline.prepare(PageImage(PAGE))
    finally:
        engine.close()
    assert document.segments == tuple((i,) for i in range(len(document.detection.boxes)))
    assert len(document.crops) == len(WORDS)

"""The ONNX Runtime graphs (float32) compute what torch computes: CRAFT's maps and boxes, the
recogniser's probabilities and readings."""

from __future__ import annotations

import numpy as np
import pytest

from common.geometry import crop_quad
from std_service.detector import Detector
from str_service.preprocess import prepare_crop
from str_service.recognizer import Recognizer
from tests.render import render_words

pytest.importorskip("onnxruntime")

PAGE, WORDS = render_words([["HELLO", "world"], ["OCR", "2024", "pipeline"]])


@pytest.fixture(scope="module")
def onnx_detector() -> Detector:
    return Detector(device="cpu", runtime="onnx", threads=2)


def test_craft_maps_match_torch_within_1e_5(detector, onnx_detector):
    page = PAGE
    ours = onnx_detector.detect(page, return_maps=True)
    reference = detector.detect(page, return_maps=True)
    assert onnx_detector.runtime == "onnx"
    assert np.abs(ours.region - reference.region).max() < 1e-5
    assert np.abs(ours.affinity - reference.affinity).max() < 1e-5
    flat = [[c for p in b.quad for c in p] for b in ours.boxes]
    expected = [[c for p in b.quad for c in p] for b in reference.boxes]
    assert len(flat) == len(expected)
    for got, want in zip(flat, expected, strict=True):
        assert got == pytest.approx(want, abs=1)


@pytest.fixture(scope="module")
def onnx_recognizer() -> Recognizer:
    return Recognizer(device="cpu", runtime="onnx", threads=2)


def _crops() -> list[np.ndarray]:
    gray = PAGE[:, :, 0]
    return [crop_quad(gray, np.asarray(quad)) for _, quad in WORDS]


def test_recogniser_probabilities_match_torch_within_1e_4(recognizer, onnx_recognizer):
    assert onnx_recognizer.runtime == "onnx"
    prepared = [prepare_crop(crop, recognizer.spec) for crop in _crops()]
    width = max(p.width for p in prepared)
    pixels = [p.pixels for p in prepared]
    ours = onnx_recognizer._forward(pixels, width)
    reference = recognizer._forward(pixels, width)
    assert ours.shape == reference.shape
    assert np.abs(ours - reference).max() < 1e-4


def test_recogniser_readings_match_torch(recognizer, onnx_recognizer):
    ours = onnx_recognizer.recognize(_crops()).results
    reference = recognizer.recognize(_crops()).results
    assert [text for text, _ in ours] == [text for text, _ in reference]
    for (_, got), (_, want) in zip(ours, reference, strict=True):
        assert got == pytest.approx(want, abs=1e-4)

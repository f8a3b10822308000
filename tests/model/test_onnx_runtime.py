"""OCR_RUNTIME=onnx computes what torch computes: CRAFT's maps and boxes."""

from __future__ import annotations

import numpy as np
import pytest

from std_service.detector import Detector
from tests.render import render_words

pytest.importorskip("onnxruntime")

PAGE, _ = render_words([["HELLO", "world"], ["OCR", "2024", "pipeline"]])


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

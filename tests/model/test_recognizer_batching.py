"""Batched recognition with the real english_g2 weights: results come back in input order and
equal one-crop-at-a-time results; synthetic words are read correctly (no shared data needed)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from str_service.decoding import ctc_greedy_decode, ctc_probabilities
from str_service.preprocess import pad_right, prepare_crop
from str_service.recognizer import Recognizer

torch.set_num_threads(2)

WORDS = ["HELLO", "world", "2024", "Invoice", "TOTAL:", "Receipt", "12.50", "OCR"]


def render(text: str, scale: float = 1.0, thickness: int = 2) -> np.ndarray:
    """Black text on white with a small margin, like a tight detector box."""
    font = cv2.FONT_HERSHEY_SIMPLEX
    (w, h), baseline = cv2.getTextSize(text, font, scale, thickness)
    image = np.full((h + baseline + 12, w + 12), 255, np.uint8)
    cv2.putText(image, text, (6, h + 6), font, scale, 0, thickness, cv2.LINE_AA)
    return image


@pytest.fixture(scope="module")
def crops():
    # Words of several lengths and sizes, so the crops fall into several padded widths.
    sizes = [("OCR", 1.0), ("HELLO", 0.8), ("Invoice", 1.4), ("2024", 1.0), ("TOTAL: 12.50", 1.0)]
    sizes += [("OCR", 1.4), ("world", 1.2)]
    return [render(word, scale) for word, scale in sizes]


def test_synthetic_words_are_read(recognizer):
    result = recognizer.recognize([render(w) for w in WORDS])
    assert [text for text, _ in result.results] == WORDS
    assert all(conf > 0.5 for _, conf in result.results)


def test_rgb_crops_read_like_greyscale(recognizer):
    gray = render("HELLO")
    rgb = np.repeat(gray[:, :, None], 3, axis=2)
    assert recognizer.recognize([rgb]).results == recognizer.recognize([gray]).results


def test_batched_results_equal_one_at_a_time_in_input_order(recognizer, crops):
    widths = {prepare_crop(c, recognizer.spec).width for c in crops}
    assert len(widths) >= 3
    batched = recognizer.recognize(crops, max_batch=2)
    assert max(batched.forward_passes) <= 2
    assert sum(batched.forward_passes) == len(crops)
    single = [recognizer.recognize([c]).results[0] for c in crops]
    assert [t for t, _ in batched.results] == [t for t, _ in single]
    for (_, a), (_, b) in zip(batched.results, single, strict=True):
        assert a == pytest.approx(b, abs=1e-5)
    assert {"preprocess", "forward", "decode", "total"} <= set(batched.timings_ms)


def test_padding_past_a_crops_own_width_changes_its_reading(recognizer):
    # Why crops are grouped by exact width: the BiLSTM reads the padding too.
    prepared = prepare_crop(render("HELLO"), recognizer.spec)
    readings = []
    for width in (prepared.width, prepared.width + 128):
        image = torch.from_numpy(pad_right(prepared.pixels, width)[None, None])
        with torch.inference_mode():
            probs = torch.softmax(recognizer.loaded.model(image), 2)[0].numpy()
        readings.append(ctc_greedy_decode(ctc_probabilities(probs), recognizer.charset))
    assert readings[0][1] != readings[1][1]


def test_settings_choose_device_and_batch_limit():
    from common.config import Settings

    recognizer = Recognizer.from_settings(Settings(ocr_device="cpu", str_max_batch=7))
    assert recognizer.device.type == "cpu" and recognizer.max_batch == 7
    assert recognizer.model_name == "english_g2.pth (None-VGG-BiLSTM-CTC)"


def test_empty_input_gives_empty_result(recognizer):
    result = recognizer.recognize([])
    assert result.results == [] and result.forward_passes == []

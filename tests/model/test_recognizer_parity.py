"""The recogniser reproduces EasyOCR's english_g2 readings of the parity crops (fp32, no
quantisation), its exact network inputs, and its raw logits."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch

from common.geometry import crop_quad
from str_service.preprocess import pad_right, prepare_crop

torch.set_num_threads(2)


@pytest.fixture(scope="module")
def parity_crops(parity_dir, dev_dir):
    """(reference word entry, crop) for every parity word, cut as the reference cut them."""
    words = json.loads((parity_dir / "rec_words.json").read_text())["images"]
    out = []
    for name, entry in words.items():
        image_path = next(dev_dir.glob(f"images/{name}.*"))
        gray = cv2.imread(str(image_path), cv2.IMREAD_GRAYSCALE)
        labels = json.loads((dev_dir / "labels" / f"{name}.json").read_text())["words"]
        for word in entry["words"]:
            quad = np.asarray(labels[word["gt_index"]]["quad"], np.float32)
            out.append((word, crop_quad(gray, quad)))
    assert len(out) == 167
    return out


def test_readings_match_easyocr_fp32(recognizer, parity_crops):
    result = recognizer.recognize([crop for _, crop in parity_crops])
    assert len(result.results) == len(parity_crops)
    assert max(result.forward_passes) <= recognizer.max_batch
    matched, diffs = 0, []
    for (word, _), (text, conf) in zip(parity_crops, result.results, strict=True):
        if text == word["fp32"]["text"]:
            matched += 1
            diffs.append(abs(conf - word["fp32"]["conf"]))
    assert matched / len(parity_crops) >= 0.98
    assert max(diffs) <= 0.02
    # The one crop the reference re-read after the contrast stretch is among those read twice.
    assert result.contrast_crops >= 1


def test_padded_widths_and_network_inputs_match(recognizer, parity_crops, parity_dir):
    tensors = np.load(parity_dir / "rec_tensors.npz")
    checked = 0
    for word, crop in parity_crops:
        prepared = prepare_crop(crop, recognizer.spec)
        assert prepared.width == word["input_w"]
        if "tensors" not in word:
            continue
        reference = tensors[word["tensors"] + "__input"]
        mine = pad_right(prepared.pixels, prepared.width).astype(np.float16)
        np.testing.assert_array_equal(mine, reference)
        checked += 1
    assert checked == 20


def test_logits_match(recognizer, parity_crops, parity_dir):
    tensors = np.load(parity_dir / "rec_tensors.npz")
    saved = [(w, c) for w, c in parity_crops if "tensors" in w]
    for word, crop in saved:
        prepared = prepare_crop(crop, recognizer.spec)
        image = torch.from_numpy(pad_right(prepared.pixels, prepared.width)[None, None])
        with torch.inference_mode():
            logits = recognizer.loaded.model(image)[0].numpy()
        reference = tensors[word["tensors"] + "__logits"]
        assert logits.shape == reference.shape == (prepared.width // 4 - 1, 97)
        np.testing.assert_allclose(logits, reference, atol=1e-3, rtol=0)

"""Pure pieces of the recogniser: EasyOCR's resize rules, padding, contrast stretch, batch
planning and decoding. No model needed."""

from __future__ import annotations

import math

import numpy as np
import pytest

from str_service.charsets import make_charset
from str_service.decoding import attn_greedy_decode, ctc_greedy_decode
from str_service.dtrb import ModelSpec
from str_service.forward_plan import plan_forward_passes
from str_service.preprocess import (
    adjust_contrast_grey,
    easyocr_fit_width,
    easyocr_resize_to_height,
    pad_right,
    prepare_crop,
    to_gray,
)


def test_horizontal_crop_goes_to_height_64_and_pads_to_a_multiple_of_64():
    crop = np.zeros((20, 130), np.uint8)  # ratio 6.5
    step1, width = easyocr_resize_to_height(crop)
    assert step1.shape == (64, int(64 * (130 / 20)))  # 416
    assert width == 64 * 7
    assert easyocr_fit_width(step1, width).shape == (64, 416)  # already fits: no second resize


def test_vertical_crop_goes_to_width_64_then_is_squeezed_into_one_block():
    crop = np.zeros((90, 30), np.uint8)  # h / w = 3
    step1, width = easyocr_resize_to_height(crop)
    assert step1.shape == (192, 64)
    assert width == 64 * 3
    fitted = easyocr_fit_width(step1, width)
    assert fitted.shape == (64, math.ceil(64 * 64 / 192))


def test_square_and_tiny_crops_get_one_block():
    for shape in [(10, 10), (1, 1), (64, 64)]:
        _, width = easyocr_resize_to_height(np.zeros(shape, np.uint8))
        assert width == 64


def test_normalisation_maps_0_and_255_to_minus_one_and_one():
    crop = np.zeros((64, 128), np.uint8)
    crop[:, 64:] = 255
    pixels = prepare_crop(crop, ModelSpec()).pixels
    assert pixels.dtype == np.float32
    assert pixels.min() == -1.0 and pixels.max() == 1.0


def test_pad_right_repeats_the_last_column():
    image = np.arange(6, dtype=np.float32).reshape(2, 3)
    padded = pad_right(image, 5)
    np.testing.assert_array_equal(padded[:, :3], image)
    np.testing.assert_array_equal(padded[:, 3:], [[2, 2], [5, 5]])


def test_dtrb_preprocessing_stretches_to_the_fixed_size():
    spec = ModelSpec(output_channel=512, imgH=32, imgW=100, num_class=37, preprocess="dtrb")
    prepared = prepare_crop(np.zeros((17, 300), np.uint8), spec)
    assert prepared.pixels.shape == (32, 100) and prepared.width == 100


def test_contrast_stretch_only_touches_low_contrast_crops():
    rng = np.random.default_rng(0)
    flat = rng.integers(100, 201, size=(64, 200)).astype(np.uint8)  # contrast ~0.27 < 0.5
    stretched = adjust_contrast_grey(flat)
    low, high = np.percentile(flat, 10), np.percentile(flat, 90)
    dark, light = flat <= low, flat >= high
    assert stretched[light].min() - stretched[dark].max() > 2 * (high - low)
    order = np.argsort(flat, axis=None, kind="stable")
    assert np.all(np.diff(stretched.reshape(-1)[order].astype(int)) >= 0)  # order kept
    sharp = np.where(rng.random((64, 200)) > 0.5, 250, 5).astype(np.uint8)
    assert adjust_contrast_grey(sharp) is sharp


def test_to_gray_accepts_rgb_rgba_and_single_channel():
    rgb = np.zeros((4, 5, 3), np.uint8)
    rgb[..., 0] = 255  # pure red: BT.601 luma 76
    assert to_gray(rgb)[0, 0] == 76
    assert to_gray(np.dstack([rgb, np.full((4, 5), 255, np.uint8)]))[0, 0] == 76
    assert to_gray(np.zeros((4, 5, 1), np.uint8)).shape == (4, 5)
    with pytest.raises(ValueError):
        to_gray(np.zeros((0, 5), np.uint8))
    with pytest.raises(ValueError):
        to_gray(np.zeros((4, 5), np.float32))


def test_plan_groups_by_exact_width_and_respects_max_batch():
    widths = [128, 256, 128, 64, 256, 128, 128]
    content = [100, 250, 128, 40, 200, 90, 120]
    plan = plan_forward_passes(widths, content, max_batch=3, max_batch_pixels=None)
    assert max(plan.sizes) <= 3
    assert sorted(i for b in plan.passes for i in b) == list(range(len(widths)))
    for batch, width in zip(plan.passes, plan.widths, strict=True):
        assert {widths[i] for i in batch} == {width}
    assert list(plan.widths) == sorted(plan.widths)
    # 4 crops of width 128 with a limit of 3 split evenly, not 3 + 1.
    assert sorted(len(b) for b, w in zip(plan.passes, plan.widths, strict=True) if w == 128) == [
        2,
        2,
    ]


def test_width_grouping_carries_less_padding_than_one_tensor():
    rng = np.random.default_rng(1)
    content = rng.integers(40, 900, size=200)
    widths = [64 * math.ceil(c / 64) for c in content]
    plan = plan_forward_passes(widths, content, max_batch=350)
    grouped = plan.padding_pixels
    widest = max(widths)  # one tensor: every crop padded to the widest
    single = sum((widest - min(int(c), widest)) * 64 for c in content)
    assert grouped < single / 5
    assert plan.content_pixels == int(content.sum()) * 64


def test_pixel_budget_limits_batches_of_very_wide_crops():
    widths = [4096] * 10
    plan = plan_forward_passes(widths, widths, max_batch=350, max_batch_pixels=4096 * 64 * 4)
    assert max(plan.sizes) <= 4 and sum(plan.sizes) == 10


def test_ctc_greedy_merges_repeats_drops_blanks_and_scores_like_easyocr():
    charset = make_charset(4, "CTC", "abc")
    path = [1, 1, 0, 1, 2, 0, 0, 3, 3]  # a a - a b - - c c -> "aabc"
    probs = np.full((len(path), 4), 0.02, np.float32)
    best = np.array([0.9, 0.8, 0.99, 0.7, 0.6, 0.95, 0.9, 0.5, 0.9], np.float32)
    for step, (cls, p) in enumerate(zip(path, best, strict=True)):
        probs[step, cls] = p
    text, conf = ctc_greedy_decode(probs, charset)
    assert text == "aabc"
    non_blank = best[np.array(path) != 0].astype(np.float64)
    assert conf == pytest.approx(non_blank.prod() ** (2 / math.sqrt(non_blank.size)))


def test_ctc_all_blank_reads_empty_with_zero_confidence():
    charset = make_charset(4, "CTC", "abc")
    probs = np.tile(np.array([0.97, 0.01, 0.01, 0.01], np.float32), (5, 1))
    assert ctc_greedy_decode(probs, charset) == ("", 0.0)


def test_attn_decoding_stops_at_end_of_sequence():
    charset = make_charset(5, "Attn", "xyz")  # [GO], [s], x, y, z
    steps = [2, 4, 1, 3]  # x z [s] y
    probs = np.full((4, 5), 0.05, np.float32)
    for step, cls in enumerate(steps):
        probs[step, cls] = 0.8
    text, conf = attn_greedy_decode(probs, charset)
    assert text == "xz"
    assert conf == pytest.approx(0.8 * 0.8)

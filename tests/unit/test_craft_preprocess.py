"""CRAFT input preparation and detection parameters: pure functions, no model."""

from __future__ import annotations

import numpy as np
import pytest

from common.errors import InvalidParameter
from common.params import DetectionParams, parse_fields
from std_service.preprocess import IMAGENET_MEAN, IMAGENET_STD, prepare, resize_plan, round_up


@pytest.mark.parametrize(
    ("hw", "canvas", "mag", "expected"),
    [
        # The three parity images at the official defaults (sizes from parity/README.md).
        ((1079, 623), 1280, 1.5, (1280, 739, 1280 / 1079)),
        ((1000, 781), 1280, 1.5, (1280, 999, 1.28)),
        ((720, 1280), 1280, 1.5, (720, 1280, 1.0)),
        # Small images are magnified by mag_ratio when that stays under the canvas.
        ((100, 200), 1280, 1.5, (150, 300, 1.5)),
        ((160, 480), 512, 1.5, (170, 512, 512 / 480)),
        # Truncation, not rounding: 333 * 0.5 = 166.5 -> 166.
        ((333, 1000), 2000, 0.5, (166, 500, 0.5)),
    ],
)
def test_resize_plan(hw, canvas, mag, expected) -> None:
    new_h, new_w, ratio = resize_plan(hw[0], hw[1], canvas, mag)
    assert (new_h, new_w) == expected[:2]
    assert ratio == pytest.approx(expected[2], rel=1e-12)


def test_resize_plan_keeps_at_least_one_pixel() -> None:
    assert resize_plan(1, 4000, 1280, 1.5)[:2] == (1, 1280)


def test_round_up_to_32() -> None:
    assert [round_up(n) for n in (1, 32, 33, 739, 999, 1280)] == [32, 32, 64, 768, 1024, 1280]


def test_prepare_pastes_top_left_and_normalizes_padding() -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(50, 70, 3), dtype=np.uint8)
    prepared = prepare(image, canvas_size=1280, mag_ratio=1.0)  # no resize at ratio 1
    assert prepared.ratio == 1.0
    assert prepared.resized_hw == (50, 70)
    assert prepared.padded_hw == (64, 96)
    assert prepared.array.shape == (64, 96, 3) and prepared.array.dtype == np.float32
    mean = np.array(IMAGENET_MEAN) * 255
    std = np.array(IMAGENET_STD) * 255
    np.testing.assert_allclose(prepared.array[:50, :70], (image - mean) / std, rtol=1e-5)
    # Padding is normalised too, so it is -mean/std, not 0 (the network was tested this way).
    np.testing.assert_allclose(prepared.array[60, 90], -mean / std, rtol=1e-6)
    np.testing.assert_allclose(prepared.array[10, 80], -mean / std, rtol=1e-6)


def test_prepare_resizes_rgb_channels_independently() -> None:
    image = np.zeros((40, 40, 3), dtype=np.uint8)
    image[..., 0] = 255  # pure red stays pure red after the bilinear resize
    prepared = prepare(image, canvas_size=1280, mag_ratio=1.5)
    assert prepared.resized_hw == (60, 60)
    red = (255 - IMAGENET_MEAN[0] * 255) / (IMAGENET_STD[0] * 255)
    green = -IMAGENET_MEAN[1] / IMAGENET_STD[1]
    np.testing.assert_allclose(prepared.array[:60, :60, 0], red, rtol=1e-5)
    np.testing.assert_allclose(prepared.array[:60, :60, 1], green, rtol=1e-5)


def test_default_params_are_the_official_defaults() -> None:
    params = DetectionParams()
    assert (params.canvas_size, params.mag_ratio) == (1280, 1.5)
    assert (params.text_threshold, params.link_threshold, params.low_text) == (0.7, 0.4, 0.4)
    assert params.poly is False
    assert params.validate() is params


def test_params_from_form_strings() -> None:
    params = parse_fields(
        DetectionParams,
        {
            "canvas_size": "960",
            "mag_ratio": " 2 ",
            "text_threshold": "0.6",
            "link_threshold": "1",
            "low_text": "0.35",
            "poly": "true",
            "image": b"ignored: not a parameter",
        },
    )
    assert params == DetectionParams(960, 2.0, 0.6, 1.0, 0.35, True)


def test_params_from_json_values_and_empty_fields() -> None:
    params = parse_fields(
        DetectionParams,
        {"canvas_size": 640, "mag_ratio": 1, "low_text": None, "text_threshold": "", "poly": 0},
    )
    assert params == DetectionParams(canvas_size=640, mag_ratio=1.0)
    assert parse_fields(DetectionParams, {"canvas_size": "1024.0"}).canvas_size == 1024


@pytest.mark.parametrize("value", ["yes", "On", "1", True, 1])
def test_poly_true_spellings(value) -> None:
    assert parse_fields(DetectionParams, {"poly": value}).poly is True


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("canvas_size", "abc"),
        ("canvas_size", "31"),
        ("canvas_size", "4097"),
        ("canvas_size", "640.5"),
        ("canvas_size", True),
        ("mag_ratio", "0.09"),
        ("mag_ratio", "5.01"),
        ("mag_ratio", "nan"),
        ("mag_ratio", "inf"),
        ("text_threshold", "0"),
        ("text_threshold", "1.0001"),
        ("link_threshold", "-0.1"),
        ("low_text", "x"),
        ("low_text", [0.4]),
        ("poly", "maybe"),
        ("poly", 2),
    ],
)
def test_params_reject_bad_values(name, value) -> None:
    with pytest.raises(InvalidParameter) as info:
        parse_fields(DetectionParams, {name: value})
    assert info.value.code == "invalid_parameter"
    assert info.value.status == 400
    assert name in info.value.message


@pytest.mark.parametrize(
    "changes",
    [
        {"canvas_size": 32},
        {"canvas_size": 4096},
        {"mag_ratio": 0.1},
        {"mag_ratio": 5},
        {"text_threshold": 1.0},
        {"low_text": 1e-6},
    ],
)
def test_params_accept_range_bounds(changes) -> None:
    parse_fields(DetectionParams, changes)


def test_validate_catches_direct_construction() -> None:
    with pytest.raises(InvalidParameter):
        DetectionParams(canvas_size=10_000).validate()
    with pytest.raises(InvalidParameter):
        DetectionParams(low_text=0.0).validate()

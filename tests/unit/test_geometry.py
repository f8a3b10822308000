"""common.geometry: quad order, validation and crops (reading order: test_layout.py)."""

from __future__ import annotations

import itertools
import math

import cv2
import numpy as np
import pytest

from common.errors import InvalidBoxes
from common.geometry import (
    crop_quad,
    is_axis_aligned,
    order_quad,
    parse_quads,
    quad_area,
    text_direction,
)


def rect(x: float, y: float, w: float, h: float) -> np.ndarray:
    return np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]], dtype=np.float32)


def rotated_rect(cx: float, cy: float, w: float, h: float, degrees: float) -> np.ndarray:
    """Corners TL, TR, BR, BL of a w x h box turned clockwise on screen by ``degrees``."""
    a = math.radians(degrees)
    ux, uy = math.cos(a), math.sin(a)  # along the text
    vx, vy = -uy, ux  # down the text
    corners = [(-w / 2, -h / 2), (w / 2, -h / 2), (w / 2, h / 2), (-w / 2, h / 2)]
    return np.array([[cx + s * ux + t * vx, cy + s * uy + t * vy] for s, t in corners], np.float32)


def signed_area(quad: np.ndarray) -> float:
    """Positive for clockwise order on screen (y pointing down)."""
    x, y = quad[:, 0].astype(np.float64), quad[:, 1].astype(np.float64)
    return float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2


# ---------------------------------------------------------------- order_quad, area, alignment


def test_order_quad_any_shuffle_gives_clockwise_from_top_left() -> None:
    expected = rect(10, 20, 50, 15)
    for perm in itertools.permutations(range(4)):
        ordered = order_quad(expected[list(perm)])
        assert ordered.dtype == np.float32 and ordered.shape == (4, 2)
        np.testing.assert_array_equal(ordered, expected)


@pytest.mark.parametrize("degrees", [-30, -10, -2, 2, 10, 30])
def test_order_quad_rotated_boxes(degrees: float) -> None:
    expected = rotated_rect(100, 80, 60, 20, degrees)
    for perm in [(0, 1, 2, 3), (2, 0, 3, 1), (3, 2, 1, 0), (1, 3, 0, 2)]:
        ordered = order_quad(expected[list(perm)])
        np.testing.assert_allclose(ordered, expected, atol=1e-4)
        assert signed_area(ordered) > 0


def test_order_quad_accepts_flat_and_nested_lists() -> None:
    flat = [40, 10, 0, 0, 40, 0, 0, 10]  # (40,10), (0,0), (40,0), (0,10)
    np.testing.assert_array_equal(order_quad(flat), rect(0, 0, 40, 10))


def test_quad_area() -> None:
    box = rect(3, 4, 10, 5)
    assert quad_area(box) == pytest.approx(50)
    assert quad_area(box[::-1]) == pytest.approx(50)  # counter-clockwise too
    assert quad_area(rotated_rect(50, 50, 30, 8, 25)) == pytest.approx(240, rel=1e-4)
    assert quad_area([[0, 0], [5, 5], [10, 10], [2, 2]]) == 0  # collinear


def test_is_axis_aligned() -> None:
    assert is_axis_aligned(rect(5, 5, 40, 12))
    nudged = rect(5, 5, 40, 12)
    nudged[1, 1] += 0.8  # within the 1 px tolerance
    assert is_axis_aligned(nudged)
    assert not is_axis_aligned(rotated_rect(50, 50, 40, 12, 10))
    assert is_axis_aligned(rotated_rect(50, 50, 40, 12, 10), tolerance=10)


# ---------------------------------------------------------------- parse_quads


@pytest.mark.parametrize(
    "bad",
    [
        "not a list",
        {"quad": [[0, 0]]},
        None,
        [[[0, 0], [10, 0], [10, 10]]],  # three points
        [[[0, 0, 0], [10, 0, 0], [10, 10, 0], [0, 10, 0]]],  # 3-D points
        [[0, 0, 10, 0, 10, 10, 0, 10]],  # flat list of eight numbers
        [[[0, 0], [10, 0], [10, 10], [0]]],  # ragged
        [[["a", "b"], [10, 0], [10, 10], [0, 10]]],  # not numbers
        [5],
    ],
)
def test_parse_quads_rejects_wrong_shapes(bad: object) -> None:
    with pytest.raises(InvalidBoxes):
        parse_quads(bad, 100, 100)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_parse_quads_rejects_non_finite(value: float) -> None:
    quad = rect(0, 0, 10, 10).tolist()
    quad[2][0] = value
    with pytest.raises(InvalidBoxes, match="non-finite"):
        parse_quads([quad], 100, 100)


@pytest.mark.parametrize(
    "quad",
    [
        rect(-50, 10, 30, 10),  # left of the image
        rect(110, 10, 30, 10),  # right
        rect(10, -40, 30, 10),  # above
        rect(10, 100, 30, 10),  # starts exactly at the bottom edge
        rect(-30, 10, 30, 10),  # ends exactly at the left edge
    ],
)
def test_parse_quads_rejects_boxes_wholly_outside(quad: np.ndarray) -> None:
    with pytest.raises(InvalidBoxes, match="outside"):
        parse_quads([quad.tolist()], 100, 100)


def test_parse_quads_rejects_zero_area() -> None:
    with pytest.raises(InvalidBoxes, match="zero area"):
        parse_quads([[[5, 5], [5, 5], [5, 5], [5, 5]]], 100, 100)
    with pytest.raises(InvalidBoxes, match="zero area"):
        parse_quads([[[0, 0], [10, 10], [20, 20], [30, 30]]], 100, 100)
    # Clipping can leave a sliver with no area: only 0.2 px of this box lies inside.
    with pytest.raises(InvalidBoxes):
        parse_quads([rect(-10, 10, 10.2, 0.5).tolist()], 100, 100)


def test_parse_quads_names_the_bad_box() -> None:
    good = rect(0, 0, 10, 10).tolist()
    with pytest.raises(InvalidBoxes, match="box 2"):
        parse_quads([good, good, [[1, 2]]], 100, 100)


def test_parse_quads_clips_partially_outside_boxes() -> None:
    quads = parse_quads([rect(-5, 90, 30, 20).tolist(), rect(80, -3, 40, 10).tolist()], 100, 100)
    np.testing.assert_array_equal(quads[0], [[0, 90], [25, 90], [25, 100], [0, 100]])
    np.testing.assert_array_equal(quads[1], [[80, 0], [100, 0], [100, 7], [80, 7]])


def test_parse_quads_keeps_good_boxes_in_order() -> None:
    raw = [rect(10, 10, 20, 5).tolist(), [[1, 1], [9, 1], [9, 4], [1, 4]]]
    quads = parse_quads(raw, 50, 50)
    assert len(quads) == 2
    assert all(q.dtype == np.float32 and q.shape == (4, 2) for q in quads)
    np.testing.assert_array_equal(quads[1], raw[1])
    assert parse_quads([], 50, 50) == []


# ---------------------------------------------------------------- crop_quad


def test_axis_aligned_crop_is_the_exact_slice() -> None:
    image = np.random.default_rng(0).integers(0, 256, (40, 60, 3), dtype=np.uint8)
    quad = np.array([[10.3, 5.7], [40.2, 5.7], [40.2, 20.1], [10.3, 20.1]], np.float32)
    crop = crop_quad(image, quad)
    # floor of the minimum, ceil of the maximum: rows 5..20, columns 10..40
    np.testing.assert_array_equal(crop, image[5:21, 10:41])


def test_nearly_axis_aligned_crop_is_still_a_slice() -> None:
    image = np.random.default_rng(1).integers(0, 256, (40, 60), dtype=np.uint8)
    quad = np.array([[10, 5], [40.6, 5.4], [40, 20], [10.5, 20]], np.float32)
    np.testing.assert_array_equal(crop_quad(image, quad), image[5:20, 10:41])


def test_axis_aligned_crop_is_clipped_to_the_image() -> None:
    image = np.random.default_rng(2).integers(0, 256, (30, 30, 3), dtype=np.uint8)
    crop = crop_quad(image, rect(20, 22, 15, 15))
    np.testing.assert_array_equal(crop, image[22:30, 20:30])


def word_pattern(width: int = 80, height: int = 24) -> np.ndarray:
    """An upright 'word': dark vertical strokes like letters, and a solid block at the top-left
    that is the only dark thing in that corner, so a flip or a turn is detectable."""
    word = np.full((height, width), 255, np.uint8)
    for x in range(20, width - 4, 9):
        word[height // 2 :, x : x + 4] = 0  # strokes in the bottom half only
    word[: height // 2, : width // 4] = 0  # top-left marker
    return word


@pytest.mark.parametrize("degrees", [-25, -8, 12, 30])
def test_rotated_crop_comes_out_upright(degrees: float) -> None:
    word = word_pattern()
    height, width = word.shape
    canvas_size = 200
    cx = cy = canvas_size / 2
    # Place the word on a white canvas, centred, turned clockwise on screen by `degrees`.
    source = np.array([[0, 0], [width, 0], [width, height], [0, height]], np.float32)
    target = rotated_rect(cx, cy, width, height, degrees)
    matrix = cv2.getAffineTransform(source[:3], target[:3])
    canvas = cv2.warpAffine(
        word, matrix, (canvas_size, canvas_size), flags=cv2.INTER_LINEAR, borderValue=255
    )
    canvas = cv2.cvtColor(canvas, cv2.COLOR_GRAY2RGB)

    quad = order_quad(target[[2, 0, 3, 1]])  # a detector may give corners in any order
    crop = crop_quad(canvas, quad)
    assert crop.shape[2] == 3
    assert abs(crop.shape[0] - height) <= 1 and abs(crop.shape[1] - width) <= 1

    grey = crop[..., 0].astype(np.float64)
    h, w = grey.shape
    top_left = grey[2 : h // 2 - 2, 2 : w // 4 - 2].mean()
    top_right = grey[2 : h // 2 - 2, w // 2 :].mean()
    bottom_right = grey[h // 2 + 2 : -2, w // 2 :].mean()
    assert top_left < 60  # the marker stayed top-left
    assert top_right > 200  # nothing dark in the top-right
    assert 60 < bottom_right < 200  # the strokes are in the bottom half
    resized = cv2.resize(grey, (width, height), interpolation=cv2.INTER_LINEAR)
    assert np.corrcoef(resized.ravel(), word.astype(np.float64).ravel())[0, 1] > 0.85


def test_crop_with_nothing_inside_the_image_is_rejected() -> None:
    image = np.zeros((50, 50, 3), np.uint8)
    with pytest.raises(InvalidBoxes):
        crop_quad(image, rect(10, 10, 0, 5))  # zero width
    with pytest.raises(InvalidBoxes):
        crop_quad(image, rect(60, 10, 10, 5))  # right of the image


def _turned(x: float, width: float, degrees: float) -> list[tuple[float, float]]:
    """A word box ``width`` x 12 at x, turned by ``degrees`` about its centre."""
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    corners = [(-width / 2, -6), (width / 2, -6), (width / 2, 6), (-width / 2, 6)]
    return [(x + a * c - b * s, 100 + a * s + b * c) for a, b in corners]


def test_text_direction_is_the_long_words_median() -> None:
    """One box a colon tilts by 4 degrees, however long, moves a level line's direction not at
    all; a mean would lean by a fifth of it."""
    line = [_turned(0, 30, 0.0), _turned(60, 40, 4.0), _turned(120, 36, 0.0), _turned(180, 48, 0.0)]
    assert text_direction(line) == pytest.approx((1.0, 0.0))
    assert math.degrees(math.atan2(*text_direction([_turned(0, 40, 2.0)])[::-1])) == pytest.approx(
        2.0
    )
    assert text_direction([]) == (1.0, 0.0)

"""CRAFT post-processing: the windowed box extraction must equal the full-map computation.

``_full_map_boxes`` below is a deliberately plain restatement of the official getDetBoxes_core
(a full-size mask per component, as the reference code does). It is slow, which is the point of
the windowed version; on the small maps here that does not matter.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from common.layout import in_reading_order
from common.results import Box
from std_service.postprocess import (
    MapBox,
    box_from_points,
    detect_map_boxes,
    dilation_iterations,
    map_boxes_to_image,
    polygon_for_box,
    to_image_coords,
)

DEFAULTS = {"text_threshold": 0.7, "link_threshold": 0.4, "low_text": 0.4}


def _full_map_boxes(
    textmap: np.ndarray,
    linkmap: np.ndarray,
    text_threshold: float,
    link_threshold: float,
    low_text: float,
) -> list[tuple[int, np.ndarray, float]]:
    """(label, quad, mean region score) per kept component, computed on full-size masks."""
    map_h, map_w = textmap.shape
    text = textmap > np.float32(low_text)
    link = linkmap > np.float32(link_threshold)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(
        (text | link).astype(np.uint8), connectivity=4
    )
    result = []
    for k in range(1, count):
        area = int(stats[k, cv2.CC_STAT_AREA])
        if area < 10:
            continue
        component = labels == k
        if textmap[component].max() < np.float32(text_threshold):
            continue
        segmap = np.zeros(textmap.shape, dtype=np.uint8)
        segmap[component] = 255
        segmap[link & ~text] = 0
        x, y = int(stats[k, cv2.CC_STAT_LEFT]), int(stats[k, cv2.CC_STAT_TOP])
        w, h = int(stats[k, cv2.CC_STAT_WIDTH]), int(stats[k, cv2.CC_STAT_HEIGHT])
        niter = int(math.sqrt(area * min(w, h) / (w * h)) * 2)
        sx, sy = max(x - niter, 0), max(y - niter, 0)
        ex, ey = min(x + w + niter + 1, map_w), min(y + h + niter + 1, map_h)
        kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (1 + niter, 1 + niter))
        segmap[sy:ey, sx:ex] = cv2.dilate(segmap[sy:ey, sx:ex], kernel)
        rows, cols = np.where(segmap != 0)
        points = np.stack([cols, rows], axis=1)
        box = cv2.boxPoints(cv2.minAreaRect(points))
        side_a, side_b = np.linalg.norm(box[0] - box[1]), np.linalg.norm(box[1] - box[2])
        if abs(1 - max(side_a, side_b) / (min(side_a, side_b) + 1e-5)) <= 0.1:
            left, right = points[:, 0].min(), points[:, 0].max()
            top, bottom = points[:, 1].min(), points[:, 1].max()
            box = np.array(
                [[left, top], [right, top], [right, bottom], [left, bottom]], dtype=np.float32
            )
        box = np.roll(box, 4 - int(box.sum(axis=1).argmin()), axis=0)
        result.append((k, box, float(textmap[component].mean())))
    return result


def _smooth_field(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    field = cv2.GaussianBlur(rng.random(shape).astype(np.float32), (0, 0), sigma)
    field -= field.min()
    return (field / field.max() * rng.uniform(0.8, 1.05)).astype(np.float32)


def _stamp(canvas: np.ndarray, cx: float, cy: float, sx: float, sy: float, angle: float) -> None:
    """Add a rotated Gaussian blob (a 'character' or a 'link') to a score map."""
    rows, cols = np.mgrid[0 : canvas.shape[0], 0 : canvas.shape[1]].astype(np.float32)
    c, s = math.cos(angle), math.sin(angle)
    u = (cols - cx) * c + (rows - cy) * s
    v = -(cols - cx) * s + (rows - cy) * c
    canvas += np.exp(-0.5 * ((u / sx) ** 2 + (v / sy) ** 2)).astype(np.float32)


def _word_maps(
    rng: np.random.Generator, shape: tuple[int, int], n_words: int
) -> tuple[np.ndarray, np.ndarray]:
    """Rotated rows of character blobs joined by link blobs, some cut by the map border."""
    text = np.zeros(shape, dtype=np.float32)
    link = np.zeros(shape, dtype=np.float32)
    for _ in range(n_words):
        n_chars = int(rng.integers(1, 7))
        angle = float(rng.uniform(-0.8, 0.8))
        size = float(rng.uniform(2.0, 5.0))
        x0, y0 = rng.uniform(-10, shape[1]), rng.uniform(-5, shape[0])
        step = size * 2.2
        for i in range(n_chars):
            cx, cy = x0 + i * step * math.cos(angle), y0 + i * step * math.sin(angle)
            _stamp(text, cx, cy, size, size * rng.uniform(1.0, 1.6), angle)
            if i:
                mx, my = cx - step * math.cos(angle) / 2, cy - step * math.sin(angle) / 2
                _stamp(link, mx, my, size * 0.6, size, angle)
    return np.clip(text, 0, 1.02), np.clip(link, 0, 1.0)


def _assert_same(
    windowed: list[MapBox], reference: list[tuple[int, np.ndarray, float]], what: str
) -> None:
    assert [b.label for b in windowed] == [k for k, _, _ in reference], what
    for box, (_, quad, score) in zip(windowed, reference, strict=True):
        np.testing.assert_array_equal(box.quad, quad, err_msg=what)
        assert box.score == pytest.approx(score, rel=1e-6, abs=1e-7), what


@pytest.mark.parametrize("seed", range(8))
def test_windowed_boxes_equal_full_map_reference_on_noise(seed: int) -> None:
    rng = np.random.default_rng(seed)
    shape = (int(rng.integers(60, 140)), int(rng.integers(60, 180)))
    textmap = _smooth_field(rng, shape, float(rng.uniform(1.2, 4.0)))
    linkmap = _smooth_field(rng, shape, float(rng.uniform(1.2, 4.0)))
    params = {
        "text_threshold": float(rng.uniform(0.5, 0.9)),
        "link_threshold": float(rng.uniform(0.3, 0.7)),
        "low_text": float(rng.uniform(0.2, 0.6)),
    }
    reference = _full_map_boxes(textmap, linkmap, **params)
    assert reference, "the synthetic map should produce at least one box"
    _assert_same(detect_map_boxes(textmap, linkmap, **params), reference, f"seed {seed}")


@pytest.mark.parametrize("seed", range(6))
def test_windowed_boxes_equal_full_map_reference_on_words(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    textmap, linkmap = _word_maps(rng, (120, 160), n_words=14)
    reference = _full_map_boxes(textmap, linkmap, **DEFAULTS)
    assert len(reference) >= 3
    _assert_same(detect_map_boxes(textmap, linkmap, **DEFAULTS), reference, f"seed {seed}")


def test_filters_small_and_faint_components() -> None:
    textmap = np.zeros((40, 60), dtype=np.float32)
    linkmap = np.zeros_like(textmap)
    textmap[2:5, 2:5] = 0.95  # 9 pixels: below the minimum area of 10
    textmap[10:20, 10:30] = 0.65  # large but never reaches text_threshold
    textmap[25:35, 30:55] = 0.9  # kept
    boxes = detect_map_boxes(textmap, linkmap, **DEFAULTS)
    assert len(boxes) == 1
    assert boxes[0].score == pytest.approx(0.9)
    xs, ys = boxes[0].quad[:, 0], boxes[0].quad[:, 1]
    assert xs.min() <= 30 and xs.max() >= 54 and ys.min() <= 25 and ys.max() >= 34


def test_links_join_characters_into_one_word_box() -> None:
    textmap = np.zeros((30, 80), dtype=np.float32)
    linkmap = np.zeros_like(textmap)
    for x0 in (5, 25, 45):
        textmap[10:20, x0 : x0 + 12] = 0.9
    assert len(detect_map_boxes(textmap, linkmap, **DEFAULTS)) == 3
    linkmap[12:18, 14:50] = 0.8
    boxes = detect_map_boxes(textmap, linkmap, **DEFAULTS)
    assert len(boxes) == 1
    assert boxes[0].quad[:, 0].min() <= 5 and boxes[0].quad[:, 0].max() >= 56


def test_dilation_margin_follows_component_thickness() -> None:
    assert dilation_iterations(area=100, width=10, height=10) == 6  # int(sqrt(10) * 2)
    assert dilation_iterations(area=40, width=40, height=1) == 2
    assert dilation_iterations(area=12, width=6, height=6) == 2  # int(sqrt(2) * 2)
    assert dilation_iterations(area=900, width=30, height=60) == 7  # int(sqrt(15) * 2)


def test_box_corners_start_top_left_and_run_clockwise() -> None:
    # a slanted bar of pixels
    xs = np.concatenate([np.arange(10, 60) for _ in range(5)])
    ys = np.concatenate([np.arange(10, 60) // 3 + dy for dy in range(5)])
    quad = box_from_points(xs, ys)
    assert int(np.argmin(quad.sum(axis=1))) == 0
    edges = np.roll(quad, -1, axis=0) - quad
    x, y = quad[:, 0], quad[:, 1]
    signed_area = np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y)
    assert signed_area > 0  # clockwise on screen (y grows downwards)
    assert np.linalg.norm(edges[0]) > np.linalg.norm(edges[1])  # first edge runs along the text


def test_near_square_box_is_axis_aligned() -> None:
    # A rotated square (diamond) of pixels: its min-area box is ambiguous, so bounds are used.
    canvas = np.zeros((40, 40), dtype=np.uint8)
    cv2.fillConvexPoly(canvas, np.array([[20, 5], [35, 20], [20, 35], [5, 20]], dtype=np.int32), 1)
    ys, xs = np.nonzero(canvas)
    quad = box_from_points(xs, ys)
    np.testing.assert_array_equal(quad, [[5, 5], [35, 5], [35, 35], [5, 35]])


def _curved_word_labels() -> tuple[np.ndarray, np.ndarray]:
    """A map with one arc-shaped word (label 1) of 10 characters; returns labels and centres."""
    textmap = np.zeros((90, 200), dtype=np.float32)
    centres = []
    for i in range(10):
        cx = 20 + i * 16
        cy = 25 + 0.012 * (cx - 100) ** 2
        centres.append((cx, cy))
        _stamp(textmap, cx, cy, 6, 7, 0.0)
    linkmap = np.zeros_like(textmap)
    for (ax, ay), (bx, by) in zip(centres, centres[1:], strict=False):
        _stamp(linkmap, (ax + bx) / 2, (ay + by) / 2, 4, 6, 0.0)
    return np.clip(textmap, 0, 1), np.clip(linkmap, 0, 1), np.array(centres)


def test_polygon_follows_a_curved_word() -> None:
    textmap, linkmap, centres = _curved_word_labels()
    boxes = detect_map_boxes(textmap, linkmap, **DEFAULTS, poly=True)
    assert len(boxes) == 1
    polygon = boxes[0].polygon
    assert polygon is not None and polygon.shape == (14, 2)
    contour = polygon.astype(np.float32).reshape(-1, 1, 2)
    inside = [cv2.pointPolygonTest(contour, (float(x), float(y)), False) for x, y in centres[1:-1]]
    assert all(v >= 0 for v in inside)
    # It hugs the arc: much less area than the straight box around the whole arc.
    assert cv2.contourArea(contour) < 0.75 * cv2.contourArea(boxes[0].quad.reshape(-1, 1, 2))


def test_polygon_gives_up_where_the_official_code_does() -> None:
    labels = np.zeros((60, 120), dtype=np.int32)
    labels[10:50, 10:110] = 1  # a solid block fills its box: no polygon needed
    block = np.array([[10, 10], [109, 10], [109, 49], [10, 49]], dtype=np.float32)
    assert polygon_for_box(block, labels, 1) is None
    small = np.array([[10, 10], [30, 10], [30, 25], [10, 25]], dtype=np.float32)
    assert polygon_for_box(small, labels, 1) is None  # under 30 map pixels on a side


def test_map_boxes_scale_to_image_clip_and_read_in_order() -> None:
    ratio = 1.25  # image -> resized; map -> image is x 2 / ratio = 1.6
    lower = MapBox(quad=np.float32([[10, 40], [50, 40], [50, 50], [10, 50]]), score=0.8, label=1)
    upper_right = MapBox(
        quad=np.float32([[60, 5], [90, 5], [90, 15], [60, 15]]), score=0.9, label=2
    )
    upper_left = MapBox(quad=np.float32([[-2, 6], [40, 6], [40, 16], [-2, 16]]), score=0.7, label=3)
    boxes, _ = in_reading_order(
        map_boxes_to_image([lower, upper_right, upper_left], ratio, 140, 100, poly=True)
    )
    assert [b.score for b in boxes] == [0.7, 0.9, 0.8]
    assert isinstance(boxes[0], Box)
    np.testing.assert_allclose(boxes[0].quad, [[0, 9.6], [64, 9.6], [64, 25.6], [0, 25.6]])
    np.testing.assert_allclose(boxes[1].quad[1], [140, 8])  # 90 * 1.6 = 144, clipped to width 140
    assert boxes[0].polygon == boxes[0].quad  # no polygon found: the quad stands in
    quad = [list(point) for point in boxes[2].quad]
    assert boxes[2].export() == {"quad": quad, "score": 0.8, "polygon": quad}


def test_to_image_coords_scales_by_two_over_ratio() -> None:
    points = np.array([[10.0, 20.0], [30.5, 0.0]])
    assert to_image_coords(points, 0.5, 1000, 1000) == ((40.0, 80.0), (122.0, 0.0))

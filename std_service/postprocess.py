"""From CRAFT score maps to word boxes, with the same results as the official ``getDetBoxes``.

The official code builds a full-size mask (and runs several full-map comparisons) for every
connected component, so on a text-dense page its cost grows with components x map area. Here each
component is handled inside its own bounding region, padded by the dilation margin, which is the
only area where its mask can be non-zero; the boxes come out identical (tests/unit check this
against a full-map implementation).

Coordinates are score-map pixels (x, y) until ``map_boxes_to_image`` scales them to the image.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from common.results import Box, Quad, as_quad

NET_SCALE = 2  # score maps are at half the network input's resolution
MIN_COMPONENT_AREA = 10  # components smaller than this (in map pixels) are noise
DIAMOND_TOLERANCE = 0.1  # a near-square rotated box is replaced by its axis-aligned bounds

# Polygon mode constants of the official getPoly_core.
POLY_CONTROL_POINTS = 5
POLY_MAX_LEN_RATIO = 0.7
POLY_EXPAND_RATIO = 1.45
POLY_MAX_R = 2.0
POLY_STEP_R = 0.2
POLY_MIN_SIDE = 30


@dataclass
class MapBox:
    """One detected word in score-map coordinates.

    ``score`` is the mean region (character) score over the pixels of the word's connected
    component. The official code reports no confidence at all; the mean is used (rather than the
    maximum, which is >= text_threshold for every kept box by construction) because it separates
    crisp words from faint or partly-linked blobs, and it is cheap: the pixels are already at hand.
    """

    quad: np.ndarray  # (4, 2) float32, clockwise from the corner with the smallest x + y
    score: float
    label: int  # connected-component label, i.e. the official output order
    polygon: np.ndarray | None = None  # (14, 2) float64 when polygon mode found one


def binarize(
    textmap: np.ndarray, linkmap: np.ndarray, low_text: float, link_threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """Strict '>' thresholds in float32, as cv2.threshold(THRESH_BINARY) does on float maps."""
    text = textmap > np.float32(low_text)
    link = linkmap > np.float32(link_threshold)
    return text, link


def dilation_iterations(area: int, width: int, height: int) -> int:
    """The official margin: grows with the component's thickness relative to its bounding box."""
    return int(math.sqrt(area * min(width, height) / (width * height)) * 2)


def box_from_points(xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Minimum-area rectangle of pixel coordinates, ordered clockwise from min x + y.

    A rotated box whose sides are within 10% of each other is ambiguous in orientation (a
    diamond), so it is replaced by the axis-aligned bounding box of the points.
    """
    points = np.stack([xs, ys], axis=1)
    box = cv2.boxPoints(cv2.minAreaRect(points))
    side_a = np.linalg.norm(box[0] - box[1])
    side_b = np.linalg.norm(box[1] - box[2])
    if abs(1 - max(side_a, side_b) / (min(side_a, side_b) + 1e-5)) <= DIAMOND_TOLERANCE:
        left, right, top, bottom = xs.min(), xs.max(), ys.min(), ys.max()
        box = np.array(
            [[left, top], [right, top], [right, bottom], [left, bottom]], dtype=np.float32
        )
    start = int(box.sum(axis=1).argmin())
    return np.roll(box, 4 - start, axis=0)


def detect_map_boxes(
    textmap: np.ndarray,
    linkmap: np.ndarray,
    text_threshold: float,
    link_threshold: float,
    low_text: float,
    poly: bool = False,
) -> list[MapBox]:
    """Word boxes from the region and affinity maps, in connected-component label order."""
    textmap = np.asarray(textmap, dtype=np.float32)
    linkmap = np.asarray(linkmap, dtype=np.float32)
    map_h, map_w = textmap.shape
    text, link = binarize(textmap, linkmap, low_text, link_threshold)
    # Pixels joined only by an affinity link belong to the component but not to its box shape.
    link_only = link & ~text
    count, labels, stats, _ = cv2.connectedComponentsWithStats(
        (text | link).astype(np.uint8), connectivity=4
    )
    boxes: list[MapBox] = []
    for k in range(1, count):
        x, y, w, h, area = (int(v) for v in stats[k, :5])
        if area < MIN_COMPONENT_AREA:
            continue
        member = labels[y : y + h, x : x + w] == k
        scores = textmap[y : y + h, x : x + w][member]
        if scores.max() < np.float32(text_threshold):
            continue

        niter = dilation_iterations(area, w, h)
        sx, sy = max(x - niter, 0), max(y - niter, 0)
        ex, ey = min(x + w + niter + 1, map_w), min(y + h + niter + 1, map_h)
        segmap = np.zeros((ey - sy, ex - sx), dtype=np.uint8)
        inner = segmap[y - sy : y - sy + h, x - sx : x - sx + w]
        inner[member & ~link_only[y : y + h, x : x + w]] = 255
        kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (1 + niter, 1 + niter))
        segmap = cv2.dilate(segmap, kernel)

        ys, xs = np.nonzero(segmap)
        quad = box_from_points(xs + sx, ys + sy)
        boxes.append(MapBox(quad=quad, score=float(scores.mean()), label=k))

    if poly:
        for box in boxes:
            box.polygon = polygon_for_box(box.quad, labels, box.label)
    return boxes


def _column_extents(mask: np.ndarray) -> list[tuple[int, int, int]]:
    """(column, first row, last row) for every column holding at least two mask pixels."""
    counts = mask.sum(axis=0)
    first = mask.argmax(axis=0)
    last = mask.shape[0] - 1 - mask[::-1].argmax(axis=0)
    return [(int(i), int(first[i]), int(last[i])) for i in np.flatnonzero(counts >= 2)]


def _touches(mask: np.ndarray, segment: np.ndarray) -> bool:
    """Whether a 1-pixel line between two points (truncated to int) crosses the mask."""
    line = np.zeros(mask.shape, dtype=np.uint8)
    cv2.line(line, (int(segment[0]), int(segment[1])), (int(segment[2]), int(segment[3])), 1, 1)
    return bool(np.any(mask & (line != 0)))


def polygon_for_box(box: np.ndarray, labels: np.ndarray, label: int) -> np.ndarray | None:
    """Official polygon mode (curved text): a 14-point outline following the word's centre line.

    The word is rectified along its box; in 2 * 5 + 1 vertical strips the odd strips each give a
    pivot at their tallest column, their heights give the half-height, and the line through even
    strip centres gives the local slope. Two end caps are pushed outwards until they leave the
    word. Returns None where the official code gives up (small or blocky words, too few pivots).

    Only a (w x h) warp of ``labels`` is computed, never a full-size mask, so this is cheap.
    """
    box = np.asarray(box, dtype=np.float32)
    w = int(np.linalg.norm(box[0] - box[1]) + 1)
    h = int(np.linalg.norm(box[1] - box[2]) + 1)
    if w < POLY_MIN_SIDE or h < POLY_MIN_SIDE:
        return None
    target = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    forward = cv2.getPerspectiveTransform(box, target)
    warped = cv2.warpPerspective(labels, forward, (w, h), flags=cv2.INTER_NEAREST)
    try:
        inverse = np.linalg.inv(forward)
    except np.linalg.LinAlgError:
        return None
    mask = warped == label

    columns = _column_extents(mask)
    tallest = max((bottom - top + 1 for _, top, bottom in columns), default=-1)
    if h * POLY_MAX_LEN_RATIO < tallest:  # the word fills its box: the quad already fits
        return None

    n_strips = POLY_CONTROL_POINTS * 2 + 1
    strip_w = w / n_strips
    pivots: list[tuple[int, float] | None] = [None] * POLY_CONTROL_POINTS
    pivot_heights = [0] * POLY_CONTROL_POINTS
    centres = [[0.0, 0.0] for _ in range(n_strips)]  # sums of (x, centre y), then means
    strip, in_strip, best = 0, 0, -1
    for x, top, bottom in columns:
        if (strip + 1) * strip_w <= x and strip <= n_strips:
            if in_strip == 0:
                break
            centres[strip] = [centres[strip][0] / in_strip, centres[strip][1] / in_strip]
            in_strip, strip, best = 0, strip + 1, -1
        cy = (top + bottom) * 0.5
        col_h = bottom - top + 1
        centres[strip] = [centres[strip][0] + x, centres[strip][1] + cy]
        in_strip += 1
        if strip % 2 == 0:
            continue
        if best < col_h:
            pivots[(strip - 1) // 2] = (x, cy)
            pivot_heights[(strip - 1) // 2] = col_h
            best = col_h
    if in_strip != 0:
        # Like the reference, this divides the *last* strip's sums even when the walk ended
        # earlier (then they are still zero); kept for identical output.
        centres[-1] = [centres[-1][0] / in_strip, centres[-1][1] / in_strip]

    if any(p is None for p in pivots) or strip_w < max(pivot_heights) * 0.25:
        return None
    points: list[tuple[int, float]] = pivots  # type: ignore[assignment]
    half_h = float(np.median(pivot_heights)) * POLY_EXPAND_RATIO / 2

    spans = []  # per pivot: (top x, top y, bottom x, bottom y), perpendicular to the local slope
    for i, (px, py) in enumerate(points):
        dx = centres[i * 2 + 2][0] - centres[i * 2][0]
        dy = centres[i * 2 + 2][1] - centres[i * 2][1]
        if dx == 0:
            spans.append([px, py - half_h, px, py + half_h])
            continue
        angle = -math.atan2(dy, dx)
        c, s = half_h * math.cos(angle), half_h * math.sin(angle)
        spans.append([px - s, py - c, px + s, py + c])

    def slope(a: tuple[int, float], b: tuple[int, float]) -> float:
        return (b[1] - a[1]) / (b[0] - a[0])

    grad_start = slope(points[0], points[1]) + slope(points[1], points[2])
    grad_end = slope(points[-1], points[-2]) + slope(points[-2], points[-3])
    start_cap = end_cap = None
    for r in np.arange(0.5, POLY_MAX_R, POLY_STEP_R):
        step_x = 2 * half_h * r
        last_try = r + 2 * POLY_STEP_R >= POLY_MAX_R
        if start_cap is None:
            step_y = grad_start * step_x
            cand = np.array(spans[0]) - np.array([step_x, step_y, step_x, step_y])
            if last_try or not _touches(mask, cand):
                start_cap = cand
        if end_cap is None:
            step_y = grad_end * step_x
            cand = np.array(spans[-1]) + np.array([step_x, step_y, step_x, step_y])
            if last_try or not _touches(mask, cand):
                end_cap = cand
        if start_cap is not None and end_cap is not None:
            break
    if start_cap is None or end_cap is None:
        return None

    outline = [(start_cap[0], start_cap[1])]
    outline += [(s[0], s[1]) for s in spans]
    outline += [(end_cap[0], end_cap[1]), (end_cap[2], end_cap[3])]
    outline += [(s[2], s[3]) for s in reversed(spans)]
    outline.append((start_cap[2], start_cap[3]))
    homog = np.column_stack([np.asarray(outline, dtype=np.float64), np.ones(len(outline))])
    back = homog @ inverse.T
    return back[:, :2] / back[:, 2:3]


def to_image_coords(points: np.ndarray, ratio: float, width: int, height: int) -> Quad:
    """Map score-map points to image pixels (x 2 / ratio) and clip them to [0, w] x [0, h]."""
    scaled = np.asarray(points, dtype=np.float64) * (NET_SCALE / ratio)
    scaled[:, 0] = np.clip(scaled[:, 0], 0, width)
    scaled[:, 1] = np.clip(scaled[:, 1], 0, height)
    return as_quad(scaled.tolist())


def map_boxes_to_image(
    map_boxes: list[MapBox], ratio: float, width: int, height: int, poly: bool
) -> list[Box]:
    """Score-map boxes as image-pixel Boxes, in the order given (the detector sorts them).

    ``ratio`` is the resize ratio (resized / original); in polygon mode a box without a polygon
    gets its quad as one, as the official code does.
    """
    boxes = []
    for mb in map_boxes:
        quad = to_image_coords(mb.quad, ratio, width, height)
        polygon = None
        if poly:
            source = mb.polygon if mb.polygon is not None else mb.quad
            polygon = to_image_coords(source, ratio, width, height)
        boxes.append(Box(quad=quad, score=mb.score, polygon=polygon))
    return boxes

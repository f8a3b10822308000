"""The detection scale chosen from the text's own size (``DetectionParams.text_height``).

CRAFT's cost grows with the canvas area (about 4 us per pixel on two CPU cores), and the
official scale (the long side x1.5, at most 1280) suits small print and wastes most of its
pixels on large print: on receipts, half the scale reads as well. So a first pass at a low
resolution (``PROBE_LONG_SIDE``) measures the height of the page's smaller words (the first
quartile: ``SMALL_TEXT_QUANTILE``), and the page is detected at the ratio that brings it to
``text_height`` canvas pixels, never above the official ratio nor below the probe's. The smaller
words decide because large print survives a lower scale and small print does not: on a receipt
whose headings are twice its item lines, the median word set a scale at which the item lines'
digits were lost. When that ratio is close to the probe's, the probe's boxes are the answer.
Pure functions of sizes and boxes, so the choice is deterministic for an image.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from common.results import Box

PROBE_LONG_SIDE = 640  # the first pass's long side, in pixels
REUSE_TOLERANCE = 0.15  # a ratio within 15 % above the probe's keeps the probe's boxes
SMALL_TEXT_QUANTILE = 0.25  # the word height the scale serves: a quarter of the words are smaller


def small_text_height(boxes: Sequence[Box]) -> float | None:
    """The first quartile (``SMALL_TEXT_QUANTILE``) of the boxes' extents across their text
    direction, in image pixels, linearly interpolated."""
    heights = []
    for box in boxes:
        (x0, y0), (x1, y1), (x2, y2), (x3, y3) = box.quad
        heights.append((math.hypot(x3 - x0, y3 - y0) + math.hypot(x2 - x1, y2 - y1)) / 2.0)
    return float(np.quantile(heights, SMALL_TEXT_QUANTILE)) if heights else None


def probe_ratio(height: int, width: int, official_ratio: float) -> float | None:
    """The first pass's ratio, or None when the official scale is about as cheap (a small
    image), so one pass at the official scale is the whole detection."""
    ratio = PROBE_LONG_SIDE / max(height, width)
    return ratio if ratio * (1.0 + REUSE_TOLERANCE) < official_ratio else None


def detection_ratio(
    text_px: float | None, text_height: float, probe: float, official_ratio: float
) -> float:
    """The ratio to detect at, given the small words' height ``text_px`` the probe found (in
    image pixels): ``probe`` itself means the probe's boxes are kept. No words found means
    the text may be too small for the probe, so the official scale decides."""
    if text_px is None or text_px <= 0:
        return official_ratio
    wanted = min(official_ratio, text_height / text_px)
    return probe if wanted <= probe * (1.0 + REUSE_TOLERANCE) else wanted

"""Reading units: neighbouring words on a line read as one crop, and the text mapped back to words.

The default recogniser (english_g2) was trained on text lines and reads spaces, so a crop that
holds a few neighbouring words reads better than each word alone: decimals stay whole ("74.68",
not "74 68"), and letters at tight box edges survive. EasyOCR reads merged boxes for the same
reason. A *segment* is a run of consecutive words of one line whose gaps are under
``max_gap`` x the text height; the crop is the segment's quad widened by ``margin`` x the height
on every side. A whole layout line is not a segment: across form columns that reads worse.

The reading of a segment is mapped back to words so the contract keeps ``words`` with quads: the
gaps between the boxes are aligned with the spaces in the text (by position along the line, the
text's characters spread evenly over the segment), boxes whose gap is not a space become one
word, and a box that holds several tokens is split in proportion to their characters.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from common.geometry import text_direction
from common.results import Box, Quad

# A token gap and a box gap further apart than this many text heights are not the same gap.
_UNMATCHED_COST = 1.0


@dataclass(frozen=True)
class SegmentWord:
    """One word of a segment's reading: where it is and what it says."""

    box: Box
    text: str
    confidence: float


def _extent(quad: Quad, u: tuple[float, float]) -> tuple[float, float, float, float]:
    along = [x * u[0] + y * u[1] for x, y in quad]
    across = [-x * u[1] + y * u[0] for x, y in quad]
    return min(along), max(along), min(across), max(across)


def _from_frame(a: float, b: float, u: tuple[float, float]) -> tuple[float, float]:
    return (a * u[0] - b * u[1], a * u[1] + b * u[0])


def _rectangle(u: tuple[float, float], a0: float, a1: float, b0: float, b1: float) -> Quad:
    return (
        _from_frame(a0, b0, u),
        _from_frame(a1, b0, u),
        _from_frame(a1, b1, u),
        _from_frame(a0, b1, u),
    )


def reading_segments(
    quads: Sequence[Quad], lines: Sequence[Sequence[int]], max_gap: float
) -> tuple[tuple[int, ...], ...]:
    """Split each line (indices into ``quads``, left to right) into segments.

    A word joins the segment before it when the gap between them along the text is at most
    ``max_gap`` x the taller one's height and their heights differ by less than half. With
    ``max_gap`` <= 0 every word is its own segment (the official word-by-word reading).
    """
    segments: list[tuple[int, ...]] = []
    for line in lines:
        current: list[int] = []
        for index in line:
            if current and max_gap > 0 and _joins(quads[current[-1]], quads[index], max_gap):
                current.append(index)
            else:
                if current:
                    segments.append(tuple(current))
                current = [index]
        if current:
            segments.append(tuple(current))
    return tuple(segments)


def _joins(left: Quad, right: Quad, max_gap: float) -> bool:
    u = text_direction([left, right])
    _, a1, b0, b1 = _extent(left, u)
    c0, _, d0, d1 = _extent(right, u)
    h_left, h_right = b1 - b0, d1 - d0
    taller = max(h_left, h_right)
    if taller <= 0 or min(h_left, h_right) < 0.5 * taller:
        return False
    return c0 - a1 <= max_gap * taller


def segment_quad(quads: Sequence[Quad], margin: float, size: tuple[int, int] | None = None) -> Quad:
    """The segment's crop: the rectangle along its words' direction (``text_direction``) around
    all of them, widened by ``margin`` x its height on every side (the recogniser needs the white
    around the letters that a tight detection box cuts off), its corners kept inside an image
    of ``size`` (width, height) when given. One word without a margin is its own quad,
    unchanged: the official reading."""
    if len(quads) == 1 and margin == 0:
        return quads[0]
    u = text_direction(quads)
    extents = [_extent(q, u) for q in quads]
    a0, a1 = min(e[0] for e in extents), max(e[1] for e in extents)
    b0, b1 = min(e[2] for e in extents), max(e[3] for e in extents)
    pad = margin * (b1 - b0)
    quad = _rectangle(u, a0 - pad, a1 + pad, b0 - pad, b1 + pad)
    if size is None:
        return quad
    width, height = size
    return tuple(  # type: ignore[return-value]
        (min(max(x, 0.0), float(width)), min(max(y, 0.0), float(height))) for x, y in quad
    )


def split_reading(text: str, confidence: float, boxes: Sequence[Box]) -> list[SegmentWord]:
    """Words for a segment's reading: one per whitespace token where the text has tokens.

    A one-box segment keeps its reading whole (the word-by-word answer, unchanged). Otherwise
    the box gaps are aligned with the token gaps; each aligned run of boxes and tokens becomes
    one word per token, on the run's boxes (split by characters when the run holds several
    tokens). A reading without tokens leaves every box an empty word.
    """
    if len(boxes) == 1:
        return [SegmentWord(boxes[0], text, confidence)]
    spans = _token_spans(text)
    if not spans:
        return [SegmentWord(box, "", confidence) for box in boxes]
    u = text_direction([box.quad for box in boxes])
    extents = [_extent(box.quad, u) for box in boxes]
    start, end = extents[0][0], max(e[1] for e in extents)
    height = max(max(e[3] - e[2] for e in extents), 1e-6)
    length = max(len(text.rstrip()) - spans[0][0], 1)
    offset = spans[0][0]

    def at(char: float) -> float:  # position along the line of a character offset
        return start + (end - start) * (char - offset) / length

    box_gaps = [(extents[i][1] + extents[i + 1][0]) / 2.0 for i in range(len(boxes) - 1)]
    token_gaps = [at((spans[j][1] + spans[j + 1][0]) / 2.0) for j in range(len(spans) - 1)]
    pairs = _align(box_gaps, token_gaps, height)

    words: list[SegmentWord] = []
    box_from = token_from = 0
    for box_cut, token_cut in [*pairs, (len(boxes) - 1, len(spans) - 1)]:
        run_boxes = boxes[box_from : box_cut + 1]
        run_spans = spans[token_from : token_cut + 1]
        words.extend(_run_words(text, run_spans, run_boxes, confidence, u))
        box_from, token_from = box_cut + 1, token_cut + 1
    return words


def _token_spans(text: str) -> list[tuple[int, int]]:
    spans, i = [], 0
    while i < len(text):
        if text[i].isspace():
            i += 1
            continue
        j = i
        while j < len(text) and not text[j].isspace():
            j += 1
        spans.append((i, j))
        i = j
    return spans


def _align(box_gaps: list[float], token_gaps: list[float], height: float) -> list[tuple[int, int]]:
    """Monotone pairs (box gap i, token gap j) that are the same gap, by least total distance.

    Edit-distance alignment: pairing costs the distance in text heights, leaving a gap unpaired
    costs ``_UNMATCHED_COST`` (a box gap left alone joins two boxes into one word; a token gap
    left alone splits a box). When there are as many gaps of each, they pair one to one.
    """
    n, m = len(box_gaps), len(token_gaps)
    if n == m:
        return list(zip(range(n), range(m), strict=True))
    inf = float("inf")
    cost = [[inf] * (m + 1) for _ in range(n + 1)]
    cost[0] = [j * _UNMATCHED_COST for j in range(m + 1)]
    for i in range(1, n + 1):
        cost[i][0] = i * _UNMATCHED_COST
        for j in range(1, m + 1):
            paired = cost[i - 1][j - 1] + abs(box_gaps[i - 1] - token_gaps[j - 1]) / height
            cost[i][j] = min(
                paired, cost[i - 1][j] + _UNMATCHED_COST, cost[i][j - 1] + _UNMATCHED_COST
            )
    pairs: list[tuple[int, int]] = []
    i, j = n, m
    while i > 0 and j > 0:
        paired = cost[i - 1][j - 1] + abs(box_gaps[i - 1] - token_gaps[j - 1]) / height
        if math.isclose(cost[i][j], paired):
            pairs.append((i - 1, j - 1))
            i, j = i - 1, j - 1
        elif math.isclose(cost[i][j], cost[i - 1][j] + _UNMATCHED_COST):
            i -= 1
        else:
            j -= 1
    return pairs[::-1]


def _run_words(
    text: str,
    spans: Sequence[tuple[int, int]],
    boxes: Sequence[Box],
    confidence: float,
    u: tuple[float, float],
) -> list[SegmentWord]:
    score = sum(box.score for box in boxes) / len(boxes)
    if len(spans) == 1:
        box = boxes[0] if len(boxes) == 1 else Box(_hull(boxes, u), score)
        return [SegmentWord(box, text[spans[0][0] : spans[0][1]], confidence)]
    extents = [_extent(box.quad, u) for box in boxes]
    a0, a1 = min(e[0] for e in extents), max(e[1] for e in extents)
    b0, b1 = min(e[2] for e in extents), max(e[3] for e in extents)
    first, last = spans[0][0], spans[-1][1]
    scale = (a1 - a0) / max(last - first, 1)
    return [
        SegmentWord(
            Box(_rectangle(u, a0 + (s - first) * scale, a0 + (e - first) * scale, b0, b1), score),
            text[s:e],
            confidence,
        )
        for s, e in spans
    ]


def _hull(boxes: Sequence[Box], u: tuple[float, float]) -> Quad:
    extents = [_extent(box.quad, u) for box in boxes]
    return _rectangle(
        u,
        min(e[0] for e in extents),
        max(e[1] for e in extents),
        min(e[2] for e in extents),
        max(e[3] for e in extents),
    )

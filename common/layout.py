"""Reading order: group recognized words into lines and join them into the document's text.

Works in the page's own text direction rather than on raw image y, so a photo taken a little
askew still reads line by line: the dominant direction is the width-weighted mean of the word
directions (each quad's top-left -> top-right edge), every word centre is projected onto that
direction (x') and its normal (y'), and words join a line when their extents across the line
overlap by more than half of the smaller word's height. Within a line the expected y' of the next
word follows the line's own slope, so gently skewed or curved lines stay together.

The output matches the HTTP contract: ``lines: [{quad, text, words}]`` with ``words`` the indices
of the input words, lines top to bottom, words left to right, ``text`` = lines joined by newlines.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypedDict

Point = Sequence[float]
Quad = list[list[float]]

# Two words share a line when their vertical extents overlap by more than this share of the
# smaller height (a common rule of thumb; EasyOCR's paragraph grouping uses the same 0.5).
DEFAULT_MIN_OVERLAP = 0.5


class Line(TypedDict):
    quad: Quad
    text: str
    words: list[int]


@dataclass
class _Word:
    index: int
    text: str
    points: list[tuple[float, float]]
    cx: float  # centre in the page frame (along the text direction)
    cy: float  # centre in the page frame (across it, growing downwards)
    height: float  # extent across the text direction
    slope: float  # tan of the word's angle relative to the page direction


@dataclass
class _LineAcc:
    words: list[_Word] = field(default_factory=list)

    @property
    def last(self) -> _Word:
        return self.words[-1]

    def slope(self) -> float:
        """Slope through the line's centres once there are two, else the words' own mean."""
        if len(self.words) >= 2:
            first, last = self.words[0], self.words[-1]
            dx = last.cx - first.cx
            if dx > 1e-9:
                return (last.cy - first.cy) / dx
        return sum(w.slope for w in self.words) / len(self.words)


def _points(quad: Any) -> list[tuple[float, float]]:
    pts = [(float(p[0]), float(p[1])) for p in quad]
    if len(pts) != 4:
        raise ValueError(f"a quad needs 4 points, got {len(pts)}")
    return pts


def _unit(dx: float, dy: float) -> tuple[float, float]:
    norm = math.hypot(dx, dy)
    if norm < 1e-12:
        return (1.0, 0.0)
    return (dx / norm, dy / norm)


def _direction(pts: list[tuple[float, float]]) -> tuple[float, float, float]:
    """Text direction of a quad (TL, TR, BR, BL) as a unit vector plus the quad's width."""
    (x0, y0), (x1, y1), (x2, y2), (x3, y3) = pts
    dx = (x1 - x0) + (x2 - x3)
    dy = (y1 - y0) + (y2 - y3)
    return (*_unit(dx, dy), math.hypot(dx, dy) / 2.0)


def _page_direction(quads: list[list[tuple[float, float]]]) -> tuple[float, float]:
    """Width-weighted mean direction: long words say more about the page's skew than short."""
    sx = sy = 0.0
    for pts in quads:
        ux, uy, width = _direction(pts)
        sx += ux * width
        sy += uy * width
    return _unit(sx, sy)


def _to_frame(p: tuple[float, float], u: tuple[float, float]) -> tuple[float, float]:
    # along u, and along the normal n = (-uy, ux), which points down when u points right
    return (p[0] * u[0] + p[1] * u[1], -p[0] * u[1] + p[1] * u[0])


def _prepare(index: int, word: Mapping[str, Any], u: tuple[float, float]) -> _Word:
    pts = _points(word["quad"])
    framed = [_to_frame(p, u) for p in pts]
    xs = [p[0] for p in framed]
    ys = [p[1] for p in framed]
    ux, uy, _ = _direction(pts)
    # the word's angle relative to the page direction, as a slope in the page frame
    along, across = _to_frame((ux, uy), u)
    slope = across / along if along > 1e-6 else 0.0
    # height across the text: mean of the left and right edges, measured in the page frame
    left = abs(framed[3][1] - framed[0][1])
    right = abs(framed[2][1] - framed[1][1])
    height = (left + right) / 2.0
    if height < 1e-6:
        height = max(max(ys) - min(ys), 1e-6)
    return _Word(
        index=index,
        text=str(word.get("text", "")),
        points=pts,
        cx=sum(xs) / 4.0,
        cy=sum(ys) / 4.0,
        height=height,
        slope=slope,
    )


def _overlap_ratio(cy_a: float, h_a: float, cy_b: float, h_b: float) -> float:
    """Overlap of two centre-based extents as a share of the smaller one."""
    top = max(cy_a - h_a / 2.0, cy_b - h_b / 2.0)
    bottom = min(cy_a + h_a / 2.0, cy_b + h_b / 2.0)
    return max(0.0, bottom - top) / min(h_a, h_b)


def _bounding_quad(words: list[_Word]) -> Quad:
    """Smallest quad aligned with the line's own direction that holds all its words' corners."""
    sx = sy = 0.0
    for w in words:
        ux, uy, width = _direction(w.points)
        sx += ux * width
        sy += uy * width
    u = _unit(sx, sy)
    framed = [_to_frame(p, u) for w in words for p in w.points]
    a0, a1 = min(p[0] for p in framed), max(p[0] for p in framed)
    b0, b1 = min(p[1] for p in framed), max(p[1] for p in framed)

    def back(a: float, b: float) -> list[float]:
        # inverse of _to_frame: a*u + b*n
        return [a * u[0] - b * u[1], a * u[1] + b * u[0]]

    return [back(a0, b0), back(a1, b0), back(a1, b1), back(a0, b1)]


def group_lines(
    words: Sequence[Mapping[str, Any]],
    *,
    min_overlap: float = DEFAULT_MIN_OVERLAP,
    max_gap: float | None = None,
) -> list[Line]:
    """Group words (dicts with ``quad`` and ``text``) into lines in reading order.

    ``min_overlap``: share of the smaller height two words must overlap across the line.
    ``max_gap``: if set, a horizontal gap wider than this many word heights starts a new line
    (splits form columns); by default a line runs across the whole page.
    """
    if not words:
        return []
    u = _page_direction([_points(w["quad"]) for w in words])
    prepared = [_prepare(i, w, u) for i, w in enumerate(words)]
    prepared.sort(key=lambda w: (w.cx, w.cy))

    lines: list[_LineAcc] = []
    for word in prepared:
        best: _LineAcc | None = None
        best_score = 0.0
        for line in lines:
            last = line.last
            # Follow the line's slope (curved or skewed lines), or not: over a short span the slope
            # of a few centres is noise from descenders and capitals ("Type of" sits lower than
            # "Product"), so either way of lining up counts.
            expected = last.cy + line.slope() * (word.cx - last.cx)
            score = max(
                _overlap_ratio(expected, last.height, word.cy, word.height),
                _overlap_ratio(last.cy, last.height, word.cy, word.height),
            )
            if score <= min_overlap:
                continue
            if max_gap is not None:
                gap = (word.cx - last.cx) - _half_width(word, u) - _half_width(last, u)
                if gap > max_gap * max(word.height, last.height):
                    continue
            if score > best_score:
                best, best_score = line, score
        if best is None:
            lines.append(_LineAcc([word]))
        else:
            best.words.append(word)

    lines.sort(key=lambda line: (sum(w.cy for w in line.words) / len(line.words), line.words[0].cx))
    out: list[Line] = []
    for line in lines:
        ordered = sorted(line.words, key=lambda w: w.cx)
        out.append(
            Line(
                quad=_bounding_quad(ordered),
                text=" ".join(w.text for w in ordered if w.text),
                words=[w.index for w in ordered],
            )
        )
    return out


def _half_width(word: _Word, u: tuple[float, float]) -> float:
    xs = [_to_frame(p, u)[0] for p in word.points]
    return (max(xs) - min(xs)) / 2.0


def full_text(lines: Sequence[Mapping[str, Any]]) -> str:
    """Lines' text joined by newlines; lines without text are left out."""
    return "\n".join(line["text"] for line in lines if line["text"])


def line_word_order(lines: Sequence[Mapping[str, Any]]) -> list[int]:
    """Word indices in reading order, for callers that want the words list sorted too."""
    return [i for line in lines for i in line["words"]]


def reading_order(quads: Sequence[Any]) -> list[int]:
    """Indices of bare quads in reading order: how the detector sorts the boxes it returns."""
    return line_word_order(group_lines([{"quad": q, "text": ""} for q in quads]))


def layout(
    words: Sequence[Mapping[str, Any]],
    *,
    min_overlap: float = DEFAULT_MIN_OVERLAP,
    max_gap: float | None = None,
) -> tuple[list[Line], str]:
    """Lines and full text in one call: what /ocr and /pipeline put in their answers."""
    lines = group_lines(words, min_overlap=min_overlap, max_gap=max_gap)
    return lines, full_text(lines)

"""Reading order: group recognized words into lines and join them into the document's text.

Works in the page's own text direction rather than on raw image y, so a photo taken a little
askew still reads line by line: the dominant direction is the width-weighted mean of the word
directions (each quad's top-left -> top-right edge), every word centre is projected onto that
direction (x') and its normal (y'), and words join a line when their extents across the line
overlap by more than half of the smaller word's height. Within a line the expected y' of the next
word follows the line's own slope, so gently skewed or curved lines stay together.

Grouping needs only the quads, so it runs once, in detection (``in_reading_order``); the page
builder ``build_page`` then joins those lines with the readings into the typed ``Page``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from common.geometry import text_direction
from common.results import Box, Detection, Line, Page, Quad, Reading, Word
from common.segments import split_reading

# Two words share a line when their vertical extents overlap by more than this share of the
# smaller height (a common rule of thumb; EasyOCR's paragraph grouping uses the same 0.5).
DEFAULT_MIN_OVERLAP = 0.5


@dataclass
class _Word:
    index: int
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


def _to_frame(p: tuple[float, float], u: tuple[float, float]) -> tuple[float, float]:
    # along u, and along the normal n = (-uy, ux), which points down when u points right
    return (p[0] * u[0] + p[1] * u[1], -p[0] * u[1] + p[1] * u[0])


def _prepare(index: int, pts: list[tuple[float, float]], u: tuple[float, float]) -> _Word:
    framed = [_to_frame(p, u) for p in pts]
    xs = [p[0] for p in framed]
    ys = [p[1] for p in framed]
    ux, uy = text_direction([pts])
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


def line_quad(quads: Sequence[Any]) -> Quad:
    """Smallest quad aligned with the line's own direction that holds all its words' corners."""
    points = [_points(quad) for quad in quads]
    u = text_direction(points)
    framed = [_to_frame(p, u) for pts in points for p in pts]
    a0, a1 = min(p[0] for p in framed), max(p[0] for p in framed)
    b0, b1 = min(p[1] for p in framed), max(p[1] for p in framed)

    def back(a: float, b: float) -> tuple[float, float]:
        # inverse of _to_frame: a*u + b*n
        return (a * u[0] - b * u[1], a * u[1] + b * u[0])

    return (back(a0, b0), back(a1, b0), back(a1, b1), back(a0, b1))


def reading_lines(
    quads: Sequence[Any],
    *,
    min_overlap: float = DEFAULT_MIN_OVERLAP,
    max_gap: float | None = None,
) -> list[list[int]]:
    """Group word quads into lines: indices of ``quads``, lines top to bottom, left to right.

    ``min_overlap``: share of the smaller height two words must overlap across the line.
    ``max_gap``: if set, a horizontal gap wider than this many word heights starts a new line
    (splits form columns); by default a line runs across the whole page.
    """
    if not len(quads):
        return []
    points = [_points(quad) for quad in quads]
    u = text_direction(points)
    prepared = [_prepare(i, pts, u) for i, pts in enumerate(points)]
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
    return [[w.index for w in sorted(line.words, key=lambda w: w.cx)] for line in lines]


def _half_width(word: _Word, u: tuple[float, float]) -> float:
    xs = [_to_frame(p, u)[0] for p in word.points]
    return (max(xs) - min(xs)) / 2.0


def reading_order(quads: Sequence[Any]) -> list[int]:
    """Indices of quads in reading order: line by line, each left to right."""
    return [i for line in reading_lines(quads) for i in line]


def in_reading_order(
    boxes: Sequence[Box],
) -> tuple[tuple[Box, ...], tuple[tuple[int, ...], ...]]:
    """The boxes sorted into reading order, and their lines as indices into the sorted boxes.

    Detection calls this once; every later step (the page builder, the exporters) reuses the
    lines instead of grouping again.
    """
    lines = reading_lines([box.quad for box in boxes])
    ordered = tuple(boxes[i] for line in lines for i in line)
    renumbered: list[tuple[int, ...]] = []
    start = 0
    for line in lines:
        renumbered.append(tuple(range(start, start + len(line))))
        start += len(line)
    return ordered, tuple(renumbered)


def build_page(
    detection: Detection,
    readings: Sequence[Reading],
    segments: Sequence[Sequence[int]] | None = None,
) -> Page:
    """The one builder of typed results: a detection, its reading units and one reading per unit.

    ``segments`` are the units the recogniser read (runs of box indices within a line, see
    ``common.segments``); by default every box is its own unit, one word per box. Each reading
    is mapped back to words with ``split_reading``, so a page always has words with quads.
    """
    if segments is None:
        segments = [(i,) for i in range(len(detection.boxes))]
    if len(readings) != len(segments):
        raise ValueError(f"{len(readings)} readings for {len(segments)} reading units")
    words: list[Word] = []
    words_from: dict[int, list[int]] = {}  # a unit's first box -> the unit's word indices
    for segment, (text, confidence) in zip(segments, readings, strict=True):
        parts = split_reading(text, confidence, [detection.boxes[i] for i in segment])
        words_from[segment[0]] = list(range(len(words), len(words) + len(parts)))
        words.extend(Word(part.box, part.text, part.confidence) for part in parts)
    members = [[w for box in line for w in words_from.get(box, ())] for line in detection.lines]
    lines = tuple(
        Line(
            quad=line_quad([words[i].box.quad for i in indices]),
            words=tuple(indices),
            text=" ".join(words[i].text for i in indices if words[i].text),
        )
        for indices in members
        if indices
    )
    return Page(detection.width, detection.height, tuple(words), lines)

"""Neighbouring words read as one crop, and the reading mapped back to words with quads."""

from __future__ import annotations

import math

import pytest

from common.layout import build_page
from common.results import Box, Detection
from common.segments import reading_segments, segment_quad, split_reading


def rect(x: float, y: float, w: float, h: float) -> tuple:
    return ((x, y), (x + w, y), (x + w, y + h), (x, y + h))


def test_close_words_form_a_segment_and_a_far_one_does_not():
    quads = [rect(0, 0, 40, 20), rect(48, 0, 30, 20), rect(200, 0, 30, 20)]
    assert reading_segments(quads, [[0, 1, 2]], max_gap=0.5) == ((0, 1), (2,))


def test_no_gap_means_word_by_word():
    quads = [rect(0, 0, 40, 20), rect(42, 0, 30, 20)]
    assert reading_segments(quads, [[0, 1]], max_gap=0) == ((0,), (1,))


def test_a_much_smaller_word_starts_its_own_segment():
    quads = [rect(0, 0, 40, 40), rect(42, 10, 20, 10)]
    assert reading_segments(quads, [[0, 1]], max_gap=0.5) == ((0,), (1,))


def test_segment_quad_adds_the_margin_on_every_side():
    quad = segment_quad([rect(0, 10, 40, 20), rect(48, 10, 30, 20)], margin=0.1)
    assert [c for p in quad for c in p] == pytest.approx([-2, 8, 80, 8, 80, 32, -2, 32])


def tilted(x: float, y: float, w: float, h: float, slope: float) -> tuple:
    """The box ``rect(x, y, w, h)`` turned by ``slope`` about its centre."""
    cx, cy = x + w / 2, y + h / 2
    return tuple(
        (cx + (px - cx) - (py - cy) * slope, cy + (py - cy) + (px - cx) * slope)
        for px, py in rect(x, y, w, h)
    )


def test_a_tilted_first_word_does_not_tilt_its_line():
    """CRAFT's box of "Timing:" leans 6 degrees (a colon and a descender) on a level line: the
    segment's crop follows the line's words, not its first box, or a long line's crop spans the
    lines around it and reads as garbage."""
    line = [tilted(0, 100, 50, 17, 0.105)] + [rect(58 + 45 * i, 100, 40, 17) for i in range(16)]
    (segment,) = reading_segments(line, [list(range(17))], max_gap=1.0)
    quad = segment_quad([line[i] for i in segment], margin=0.1)
    assert math.dist(quad[0], quad[3]) < 2 * 17  # a line and its margin, not three lines
    words = split_reading(" ".join(f"w{i}" for i in range(17)), 0.9, [Box(q, 1.0) for q in line])
    assert max(math.dist(w.box.quad[0], w.box.quad[3]) for w in words) < 2 * 17


def test_one_word_without_margin_keeps_its_quad():
    quad = ((0, 0), (10, 1), (10, 11), (0, 10))
    assert segment_quad([quad], margin=0) == quad


def test_as_many_tokens_as_boxes_map_one_to_one():
    boxes = [Box(rect(0, 0, 40, 20), 1.0), Box(rect(48, 0, 30, 20), 1.0)]
    words = split_reading("TOTAL 12.00", 0.9, boxes)
    assert [(w.text, w.box.quad) for w in words] == [
        ("TOTAL", boxes[0].quad),
        ("12.00", boxes[1].quad),
    ]


def test_two_boxes_read_as_one_token_become_one_word_on_both():
    boxes = [Box(rect(0, 0, 20, 20), 1.0), Box(rect(24, 0, 20, 20), 1.0)]
    (word,) = split_reading("74.68", 0.8, boxes)
    assert word.text == "74.68"
    assert [c for p in word.box.quad for c in p] == pytest.approx([0, 0, 44, 0, 44, 20, 0, 20])


def test_a_box_holding_two_tokens_is_split_by_characters():
    boxes = [Box(rect(0, 0, 90, 20), 1.0), Box(rect(100, 0, 40, 20), 1.0)]
    words = split_reading("ab cdef gh", 0.7, boxes)
    assert [w.text for w in words] == ["ab", "cdef", "gh"]
    first, second = words[0].box.quad, words[1].box.quad
    assert first[0][0] == pytest.approx(0) and first[1][0] < second[0][0] <= 90
    assert words[2].box.quad == boxes[1].quad


def test_an_empty_reading_leaves_every_box_an_empty_word():
    boxes = [Box(rect(0, 0, 20, 20), 1.0), Box(rect(24, 0, 20, 20), 1.0)]
    assert [w.text for w in split_reading("", 0.1, boxes)] == ["", ""]


def test_build_page_with_segments_keeps_lines_and_word_quads():
    boxes = (
        Box(rect(0, 0, 20, 20), 1.0),
        Box(rect(24, 0, 20, 20), 1.0),
        Box(rect(0, 40, 60, 20), 1.0),
    )
    detection = Detection(100, 80, boxes, ((0, 1), (2,)))
    page = build_page(detection, [("74.68", 0.9), ("Total", 0.8)], [(0, 1), (2,)])
    assert [w.text for w in page.words] == ["74.68", "Total"]
    assert [line.words for line in page.lines] == [(0,), (1,)]
    assert page.text == "74.68\nTotal"


def test_segment_quad_stays_inside_the_image():
    quad = segment_quad([rect(1, 1, 40, 20)], margin=0.5, size=(45, 30))
    xs, ys = [p[0] for p in quad], [p[1] for p in quad]
    assert min(xs) == 0 and max(xs) == 45 and min(ys) == 0 and max(ys) == 30

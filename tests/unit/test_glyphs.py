"""Lone characters CRAFT misses, found as uncovered ink on a detected line (std_service.glyphs).

Each page is drawn in numpy: a receipt line whose words have boxes (as CRAFT would give them)
and ink the boxes leave out, and the test checks which ink becomes a box.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from common.results import Box
from std_service.detector import with_lone_glyphs
from std_service.glyphs import missed_glyphs, page_ink

LINE_TOP, LINE_BOTTOM = 103, 127  # a 24 px tall line of words, as its boxes give it


def page(width: int = 600, height: int = 300) -> np.ndarray:
    return np.full((height, width), 250, dtype=np.uint8)


def word_box(x0: float, x1: float) -> tuple[tuple[float, float], ...]:
    return ((x0, LINE_TOP), (x1, LINE_TOP), (x1, LINE_BOTTOM), (x0, LINE_BOTTOM))


def receipt_line() -> tuple[np.ndarray, list, list]:
    """'1   SR 0809152   7.45' where CRAFT found 'SR 0809152' and '7.45' but not the '1'."""
    gray = page()
    for x, text in ((40, "1"), (120, "SR 0809152"), (420, "7.45")):
        cv2.putText(gray, text, (x, 124), cv2.FONT_HERSHEY_SIMPLEX, 0.9, 20, 2)
    quads = [word_box(115, 330), word_box(415, 495)]
    return gray, quads, [(0, 1)]


def contains(quad, x: float, y: float) -> bool:
    xs, ys = [p[0] for p in quad], [p[1] for p in quad]
    return min(xs) <= x <= max(xs) and min(ys) <= y <= max(ys)


def test_the_lone_character_of_a_line_gets_a_box():
    gray, quads, lines = receipt_line()
    found = missed_glyphs(gray, quads, lines)
    assert len(found) == 1
    (quad,) = found
    assert contains(quad, 48, 112)  # around the "1"
    xs, ys = [p[0] for p in quad], [p[1] for p in quad]
    assert max(xs) < 115 and LINE_TOP - 10 < min(ys) and max(ys) < LINE_BOTTOM + 10
    assert missed_glyphs(gray, quads, lines) == found  # deterministic


def test_ink_a_box_covers_or_touches_is_left_to_it():
    gray, quads, lines = receipt_line()
    with_one = [word_box(35, 70), *quads]
    assert missed_glyphs(gray, with_one, [(0, 1, 2)]) == []
    # A stroke the box cut off, just outside its edge, is part of the word, not a character.
    assert missed_glyphs(gray, [word_box(40, 65), *quads], [(0, 1, 2)]) == []


@pytest.mark.parametrize(
    "draw",
    [
        lambda g: cv2.circle(g, (60, 115), 3, 20, -1),  # a dot: too small
        lambda g: cv2.line(g, (20, 116), (100, 116), 20, 2),  # a rule: too wide
        lambda g: cv2.rectangle(g, (40, 104), (75, 128), 20, -1),  # a solid block
        lambda g: cv2.rectangle(g, (40, 106), (58, 124), 20, 2),  # a form's checkbox
        lambda g: cv2.putText(g, "1", (40, 200), cv2.FONT_HERSHEY_SIMPLEX, 0.9, 20, 2),
        lambda g: cv2.putText(g, "1", (40, 130), cv2.FONT_HERSHEY_SIMPLEX, 3.0, 20, 6),
    ],
    ids=["dot", "rule", "block", "checkbox", "off-line", "too-tall"],
)
def test_ink_that_is_no_character_of_the_line_is_ignored(draw):
    gray = page()
    for x, text in ((120, "SR 0809152"), (420, "7.45")):
        cv2.putText(gray, text, (x, 124), cv2.FONT_HERSHEY_SIMPLEX, 0.9, 20, 2)
    draw(gray)
    quads = [word_box(115, 330), word_box(415, 495)]
    assert missed_glyphs(gray, quads, [(0, 1)]) == []


def test_round_and_crossed_letters_are_no_frames():
    gray = page()
    cv2.putText(gray, "O", (40, 124), cv2.FONT_HERSHEY_SIMPLEX, 0.8, 20, 2)
    cv2.putText(gray, "H", (240, 124), cv2.FONT_HERSHEY_SIMPLEX, 0.8, 20, 2)
    assert len(missed_glyphs(gray, [word_box(415, 495)], [(0,)])) == 2


def test_characters_side_by_side_are_one_box():
    gray = page()
    cv2.putText(gray, "1x", (40, 124), cv2.FONT_HERSHEY_SIMPLEX, 0.9, 20, 2)
    cv2.putText(gray, "2.10", (420, 124), cv2.FONT_HERSHEY_SIMPLEX, 0.9, 20, 2)
    found = missed_glyphs(gray, [word_box(415, 495)], [(0,)])
    assert len(found) == 1 and contains(found[0], 48, 112) and contains(found[0], 72, 118)


def test_a_photo_is_no_print_on_paper():
    gray, quads, lines = receipt_line()
    assert page_ink(gray) is not None
    photo = gray.copy()
    photo[:150] = 60  # a dark half: a scene, whose dark class is no ink
    assert page_ink(photo) is None
    assert missed_glyphs(photo, quads, lines) == []


def test_no_boxes_no_lines_nothing_to_add():
    assert missed_glyphs(page(), [], []) == []


def test_the_new_boxes_join_the_detection_in_reading_order():
    gray, quads, lines = receipt_line()
    rgb = cv2.cvtColor(gray, cv2.COLOR_GRAY2RGB)
    boxes = tuple(Box(quad, 0.9) for quad in quads)
    region = np.zeros((150, 300), dtype=np.float32)  # the map of a 1.0 canvas: half the page
    region[53:63, 20:30] = 0.3  # CRAFT saw a little over the "1", not enough for a word
    found, found_lines = with_lone_glyphs(rgb, boxes, ((0, 1),), region, 1.0, poly=True)
    assert [box.quad for box in found[1:]] == quads  # the "1" comes first on its line
    assert found_lines == ((0, 1, 2),)
    assert 0.0 < found[0].score < 0.3 and found[0].polygon == found[0].quad

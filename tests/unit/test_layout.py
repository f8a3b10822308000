"""Layout: word quads -> lines in reading order; the page builder -> lines' text, full text."""

from __future__ import annotations

import math

import pytest

from common.layout import build_page, in_reading_order, reading_lines, reading_order
from common.results import Box, Detection, as_quad


def box(x: float, y: float, w: float, h: float) -> list[list[float]]:
    return [[x, y], [x + w, y], [x + w, y + h], [x, y + h]]


def rotated(cx: float, cy: float, w: float, h: float, degrees: float) -> list[list[float]]:
    """Quad of a w*h box centred at (cx, cy), turned clockwise on screen by `degrees`."""
    a = math.radians(degrees)
    ux, uy = math.cos(a), math.sin(a)
    nx, ny = -uy, ux
    corners = [(-w / 2, -h / 2), (w / 2, -h / 2), (w / 2, h / 2), (-w / 2, h / 2)]
    return [[cx + s * ux + t * nx, cy + s * uy + t * ny] for s, t in corners]


def word(text: str, quad) -> dict:
    return {"quad": quad, "text": text, "confidence": 0.9, "det_score": 0.8}


def group_lines(words, **options) -> list[dict]:
    """The exported lines of a page built from ``words`` in their input order."""
    return [line.export() for line in _page(words, **options).lines]


def layout(words) -> tuple[list[dict], str]:
    page = _page(words)
    return [line.export() for line in page.lines], page.text


def full_text(lines) -> str:
    return "\n".join(line["text"] for line in lines if line["text"])


def line_word_order(lines) -> list[int]:
    return [i for line in lines for i in line["words"]]


def _page(words, **options):
    boxes = tuple(Box(as_quad(w["quad"]), w.get("det_score", 0.8)) for w in words)
    lines = reading_lines([w["quad"] for w in words], **options)
    detection = Detection(100, 100, boxes, tuple(tuple(line) for line in lines))
    return build_page(detection, [(w["text"], w.get("confidence", 0.9)) for w in words])


def test_empty():
    assert group_lines([]) == []
    assert layout([]) == ([], "")


def test_single_word():
    lines, text = layout([word("hello", box(10, 20, 50, 15))])
    assert text == "hello"
    assert lines == [{"quad": box(10, 20, 50, 15), "text": "hello", "words": [0]}]


def test_two_lines_shuffled_input():
    words = [
        word("world", box(70, 12, 60, 18)),  # 0, line 1 right (slightly lower)
        word("second", box(12, 50, 70, 20)),  # 1, line 2 left
        word("Hello", box(10, 10, 50, 20)),  # 2, line 1 left
        word("line", box(90, 52, 40, 18)),  # 3, line 2 right
    ]
    lines, text = layout(words)
    assert text == "Hello world\nsecond line"
    assert [line["words"] for line in lines] == [[2, 0], [1, 3]]
    assert line_word_order(lines) == [2, 0, 1, 3]
    # bounding quad of the first line: x 10..130, y 10..30
    flat = [c for point in lines[0]["quad"] for c in point]
    assert flat == pytest.approx([10, 10, 130, 10, 130, 30, 10, 30])


def test_small_overlap_is_a_new_line():
    # overlap of 4 px on 20 px tall words = 20 %: two lines, upper one first
    lines = group_lines([word("low", box(100, 16, 40, 20)), word("up", box(0, 0, 40, 20))])
    assert [line["text"] for line in lines] == ["up", "low"]


def test_large_overlap_is_the_same_line():
    # overlap of 14 px on 20 px = 70 %
    lines = group_lines([word("b", box(100, 6, 40, 20)), word("a", box(0, 0, 40, 20))])
    assert [line["text"] for line in lines] == ["a b"]


def test_small_word_next_to_tall_word_joins_its_line():
    # a short "-" inside the height of a tall heading stays on the heading's line
    words = [word("Title", box(0, 0, 100, 40)), word("-", box(110, 15, 10, 8))]
    assert full_text(group_lines(words)) == "Title -"


@pytest.mark.parametrize("degrees", [-15.0, 8.0, 20.0])
def test_skewed_page_reads_line_by_line(degrees):
    # two lines of three words on a page turned by `degrees`: raw image y would interleave them
    a = math.radians(degrees)
    ux, uy, nx, ny = math.cos(a), math.sin(a), -math.sin(a), math.cos(a)
    texts = [["the", "quick", "fox"], ["jumps", "over", "dogs"]]
    words = []
    for row, row_texts in enumerate(texts):
        for col, t in enumerate(row_texts):
            s, n = 60.0 * col, 30.0 * row
            words.append(
                word(
                    t,
                    rotated(
                        200 + s * ux + n * nx, 200 + s * uy + n * ny, 50, 20, a * 180 / math.pi
                    ),
                )
            )
    words = words[::-1]  # input order must not matter
    lines, text = layout(words)
    assert text == "the quick fox\njumps over dogs"
    # the line quad follows the skew: its top edge has the page's angle
    (x0, y0), (x1, y1) = lines[0]["quad"][0], lines[0]["quad"][1]
    assert math.degrees(math.atan2(y1 - y0, x1 - x0)) == pytest.approx(degrees, abs=0.5)
    # and it holds every corner of its words
    assert len(lines[0]["words"]) == 3


def test_gently_curving_line_stays_together():
    # the baseline bends downwards: from the third word on, each word sits 7 px lower than the
    # last (only 30 % overlap with it), but follows the slope the line has shown so far
    offsets = [0, 4, 11, 18, 25]
    words = [word(f"w{i}", box(40 * i, dy, 35, 10)) for i, dy in enumerate(offsets)]
    lines = group_lines(words)
    assert len(lines) == 1 and lines[0]["text"] == "w0 w1 w2 w3 w4"


def test_max_gap_splits_columns():
    words = [word("Name:", box(0, 0, 50, 20)), word("Date:", box(400, 0, 50, 20))]
    assert len(group_lines(words)) == 1
    split = group_lines(words, max_gap=3.0)
    assert [line["text"] for line in split] == ["Name:", "Date:"]


def test_words_with_empty_text_keep_their_index_but_add_no_spaces():
    words = [
        word("a", box(0, 0, 20, 20)),
        word("", box(30, 0, 20, 20)),
        word("b", box(60, 0, 20, 20)),
    ]
    lines, text = layout(words)
    assert lines[0]["words"] == [0, 1, 2]
    assert text == "a b"


def test_bad_quad_is_rejected():
    with pytest.raises(ValueError):
        group_lines([word("x", [[0, 0], [1, 0], [1, 1]])])


def test_skewed_page_orders_lines_along_the_page_not_the_image():
    # turned 20 degrees clockwise, the first line (right half of the page) sits lower in image y
    # than the start of the second line: reading order must still put it first
    a = math.radians(20.0)
    ux, uy, nx, ny = math.cos(a), math.sin(a), -math.sin(a), math.cos(a)

    def at(s: float, n: float, text: str) -> dict:
        return word(text, rotated(100 + s * ux + n * nx, 100 + s * uy + n * ny, 50, 20, 20.0))

    words = [at(0, 30, "second"), at(120, 0, "first"), at(180, 0, "line"), at(240, 0, "here")]
    assert words[1]["quad"][0][1] > words[0]["quad"][0][1]
    assert full_text(group_lines(words)) == "first line here\nsecond"


def test_reading_order_of_bare_quads_is_lines_then_left_to_right() -> None:
    def box(x: float, y: float, w: float = 40, h: float = 20) -> list[list[float]]:
        return [[x, y], [x + w, y], [x + w, y + h], [x, y + h]]

    quads = [box(200, 60), box(10, 10), box(10, 62), box(120, 12)]
    assert reading_order(quads) == [1, 3, 2, 0]


def test_short_words_with_descenders_do_not_split_a_form_line() -> None:
    """A FUNSD form line as CRAFT boxes it: "Type of Product, size(s) & list price"."""

    def box(x0: float, y0: float, x1: float, y1: float) -> list[list[float]]:
        return [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]

    words = [
        {"quad": box(91, 306, 131, 322), "text": "Type"},
        {"quad": box(138, 303, 156, 316), "text": "of"},
        {"quad": box(162, 306, 228, 319), "text": "Product,"},
        {"quad": box(247, 303, 284, 316), "text": "size"},
        {"quad": box(284, 306, 309, 319), "text": "(s)"},
        {"quad": box(338, 303, 375, 316), "text": "list"},
        {"quad": box(384, 306, 431, 319), "text": "price"},
    ]
    assert full_text(group_lines(words)) == "Type of Product, size (s) list price"


def test_detection_order_renumbers_lines_over_the_sorted_boxes() -> None:
    boxes = [Box(as_quad(box(x, y, 40, 20)), 0.9) for x, y in [(200, 60), (10, 10), (10, 62)]]
    ordered, lines = in_reading_order(boxes)
    assert [b.quad for b in ordered] == [boxes[1].quad, boxes[2].quad, boxes[0].quad]
    assert lines == ((0,), (1, 2))


def test_page_builder_needs_one_reading_per_box() -> None:
    detection = Detection(10, 10, (Box(as_quad(box(0, 0, 5, 5)), 0.9),), ((0,),))
    with pytest.raises(ValueError):
        build_page(detection, [])

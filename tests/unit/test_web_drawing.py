"""The annotated image: confidence colours, quads, number tags beside them, PNG encoding."""

from __future__ import annotations

import io
import math

import pytest
from PIL import Image

from tests.web_fixtures import ANSWER
from web import drawing, labels
from web.errors import PageError


def test_confidence_colours_run_from_red_to_green():
    low, mid, high = (drawing.confidence_colour(v) for v in (0.0, 0.5, 1.0))
    assert low[0] > low[1] and high[1] > high[0]  # red-dominant low, green-dominant high
    assert mid[0] > 150 and mid[1] > 120  # amber in between
    greens = [drawing.confidence_colour(v / 10)[1] for v in range(0, 6)]
    assert greens == sorted(greens)
    assert drawing.confidence_colour(1.7) == high and drawing.confidence_colour(-3) == low
    for bad in (math.nan, None, "x"):
        assert drawing.confidence_colour(bad) == drawing.UNKNOWN_COLOUR


def test_draw_quads_outlines_each_word_in_its_confidence_colour():
    image = Image.new("RGB", (200, 100), "white")
    drawn = drawing.draw_quads(image, ANSWER["words"], (200, 100))
    assert drawn.size == (200, 100)
    assert image.getpixel((50, 40)) == (255, 255, 255)  # the input is left alone
    assert drawn.getpixel((50, 40)) == drawing.confidence_colour(0.95)  # bottom edge of word 1
    assert drawn.getpixel((150, 40)) == drawing.confidence_colour(0.12)  # bottom edge of word 2
    assert drawn.getpixel((50, 25)) == (255, 255, 255)  # inside stays visible


def test_draw_quads_scales_quads_to_the_image_shown():
    # The answer refers to a 400x200 image; the picture shown is 200x100.
    image = Image.new("RGB", (200, 100), "white")
    words = [{"quad": [[20, 20], [180, 20], [180, 80], [20, 80]], "confidence": 1.0}]
    drawn = drawing.draw_quads(image, words, (400, 200))
    assert drawn.getpixel((50, 40)) == drawing.confidence_colour(1.0)  # y 80 -> 40
    assert drawn.getpixel((50, 80)) == (255, 255, 255)


def test_draw_quads_shrinks_huge_images_and_skips_bad_quads():
    image = Image.new("RGB", (4000, 1000), "white")
    words = [
        {"quad": [[0, 500], [4000, 500], [4000, 600], [0, 600]], "confidence": 1.0},
        {"quad": "nonsense", "confidence": 1.0},
        {"quad": [[0, 0], [math.inf, 0], [1, 1], [0, 1]], "confidence": 1.0},
    ]
    drawn = drawing.draw_quads(image, words, (4000, 1000), max_side=1000)
    assert drawn.size == (1000, 250)
    assert drawn.getpixel((500, 150)) == drawing.confidence_colour(1.0)  # y 600 -> 150


def test_open_image_applies_exif_orientation_like_the_services():
    buffer = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise for display
    Image.new("RGB", (60, 20), "white").save(buffer, format="JPEG", exif=exif)
    assert drawing.open_image(buffer.getvalue()).size == (20, 60)


def test_open_image_rejects_garbage_readably():
    with pytest.raises(PageError) as caught:
        drawing.open_image(b"definitely not an image")
    assert caught.value.code == "invalid_image"


def test_png_bytes_round_trip():
    image = Image.new("RGB", (7, 5), (1, 2, 3))
    assert Image.open(io.BytesIO(drawing.png_bytes(image))).getpixel((3, 3)) == (1, 2, 3)


# --- number tags beside their quads ("the first hour": numbers hid the letters they label) ----


def interior(quad, margin: int):
    """Pixels well inside a quad's axis-aligned box: where its letters are."""
    xs, ys = [p[0] for p in quad], [p[1] for p in quad]
    return [
        (x, y)
        for x in range(int(min(xs)) + margin, int(max(xs)) - margin + 1)
        for y in range(int(min(ys)) + margin, int(max(ys)) - margin + 1)
    ]


def test_number_tags_leave_every_quads_interior_visible():
    # A top-left corner word (no room above or left), one on the top edge, and two lines
    # stacked so close that a tag above the lower word would land on the upper one.
    quads = [
        [[0, 0], [80, 0], [80, 30], [0, 30]],
        [[150, 0], [260, 0], [260, 30], [150, 30]],
        [[40, 120], [200, 120], [200, 150], [40, 150]],
        [[40, 154], [200, 154], [200, 184], [40, 184]],
        [[300, 100], [380, 90], [385, 130], [305, 140]],  # tilted
    ]
    words = [
        {"quad": q, "confidence": c} for q, c in zip(quads, (0.1, 0.3, 0.6, 0.8, 1.0), strict=True)
    ]
    drawn = drawing.draw_quads(Image.new("RGB", (400, 300), "white"), words)
    line = max(2, round(400 / 600))
    for quad in quads[:4]:
        covered = [p for p in interior(quad, line + 1) if drawn.getpixel(p) != (255, 255, 255)]
        assert not covered, (quad, covered[:5])
    # ...and every tag was drawn: its colour shows outside the outlines, number in white.
    counts = {colour: n for n, colour in drawn.getcolors(maxcolors=1 << 20)}
    for word in words:
        assert counts.get(drawing.confidence_colour(word["confidence"]), 0) > 150, word


def labels_overlap(a, b) -> bool:
    return a[0] < b[2] and a[2] > b[0] and a[1] < b[3] and a[3] > b[1]


def test_label_places_avoid_their_own_box_and_stay_inside_the_image():
    boxes = [(0, 0, 80, 30), (150, 0, 260, 30), (40, 120, 200, 150), (40, 154, 200, 184)]
    rects = labels.place_labels(boxes, [(16, 14)] * len(boxes), (400, 300), gap=2)
    for rect in rects:
        assert 0 <= rect[0] <= rect[2] <= 400 and 0 <= rect[1] <= rect[3] <= 300
        for other in boxes:  # no tag lies on any word here: there is room around each
            assert not labels_overlap(rect, other), (rect, other)
    assert rects[0][1] >= 30  # the corner word has its tag below it
    assert rects[2][3] <= 120  # the upper line's tag sits above it
    assert rects[3][2] <= 40 or rects[3][0] >= 200  # the lower one's beside it, not between


def test_a_quad_filling_the_image_still_gets_its_tag_inside_the_image():
    drawn = drawing.draw_quads(
        Image.new("RGB", (60, 30), "white"),
        [{"quad": [[0, 0], [60, 0], [60, 30], [0, 30]], "confidence": 1.0}],
    )
    assert drawn.size == (60, 30)
    [rect] = labels.place_labels([(0, 0, 60, 30)], [(16, 14)], (60, 30))
    assert rect[0] >= 0 and rect[1] >= 0 and rect[2] <= 60 and rect[3] <= 30

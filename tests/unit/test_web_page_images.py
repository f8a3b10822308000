"""A document's pages as the page draws on them: PDF pages at the answer's size, TIFF frames."""

from __future__ import annotations

import io
import math
import sys

import numpy as np
import pytest
from PIL import Image

from tests.web_fixtures import png
from web import page_images
from web.errors import PageError

# Page 1 is 144 x 72 pt with a black box from (36, 18) to (72, 36) pt; page 2 is 100 x 200 pt.
PAGE_SIZES = [(144, 72), (100, 200)]
BOX_PT = (36, 18, 72, 36)


def two_page_pdf() -> bytes:
    from fpdf import FPDF

    pdf = FPDF(unit="pt")
    pdf.set_auto_page_break(False)
    pdf.add_page(format=PAGE_SIZES[0])
    x0, y0, x1, y1 = BOX_PT
    pdf.rect(x0, y0, x1 - x0, y1 - y0, style="F")
    pdf.add_page(format=PAGE_SIZES[1])
    return bytes(pdf.output())


def two_page_tiff() -> bytes:
    buffer = io.BytesIO()
    first, second = Image.new("RGB", (40, 20), "red"), Image.new("RGB", (30, 60), "blue")
    first.save(buffer, format="TIFF", save_all=True, append_images=[second])
    return buffer.getvalue()


def test_pdf_page_is_rendered_at_the_answers_width_with_the_words_where_they_are():
    image = page_images.page_image(two_page_pdf(), 0, (400, 200))
    assert image.mode == "RGB" and image.size == (400, 200)
    scale = 400 / 144
    x0, y0, x1, y1 = (round(v * scale) for v in BOX_PT)
    pixels = np.asarray(image)
    assert pixels[(y0 + y1) // 2, (x0 + x1) // 2].max() < 40  # inside the box: black
    assert pixels[y0 - 5, x0 - 5].min() > 215 and pixels[y1 + 5, x1 + 5].min() > 215


def test_pdf_pages_match_the_pipelines_own_rendering():
    """The quads are in the pixels the pipeline rendered (OCR_PDF_DPI): each page shown here
    must be that image, size for size, whatever the DPI."""
    from common.documents import DocumentLimits, open_document

    data = two_page_pdf()
    for dpi in (72.0, 150.0, 200.0, 301.0):
        document = open_document(data, DocumentLimits(max_pixels=10**8, max_pages=5, dpi=dpi))
        for index, read in enumerate(document.pages):
            height, width = read.image.shape[:2]
            shown = np.asarray(page_images.page_image(data, index, (width, height)))
            assert shown.shape == read.image.shape, (dpi, index)
            assert np.abs(shown.astype(int) - read.image.astype(int)).mean() < 1.0


def test_pdf_page_without_a_size_is_rendered_at_the_pipelines_default_dpi():
    image = page_images.page_image(two_page_pdf(), 1)
    assert image.size == (math.ceil(100 * 200 / 72), math.ceil(200 * 200 / 72))


@pytest.mark.parametrize("dpi", [50, 72, 96, 150, 200, 300, 333, 600])
@pytest.mark.parametrize("page_pt", [(612, 792), (595.28, 841.89), (100, 200), (1, 1000)])
def test_render_scale_gives_both_sides_the_pipeline_rendered(dpi, page_pt):
    pipeline = dpi / 72
    size = tuple(math.ceil(side * pipeline) for side in page_pt)
    scale = page_images.render_scale(page_pt, size)
    assert tuple(math.ceil(side * scale) for side in page_pt) == size


@pytest.mark.parametrize(
    ("data", "index", "expected"),
    [
        (b"%PDF-1.7\nnot really a PDF", 0, "can't display this PDF"),
        (None, 2, "no page 3"),
        (None, -1, "no page 0"),
    ],
    ids=["corrupt", "past the end", "negative"],
)
def test_unshowable_pdf_pages_are_page_errors(data, index, expected):
    with pytest.raises(PageError) as caught:
        page_images.page_image(data or two_page_pdf(), index, (100, 50))
    assert caught.value.code == "invalid_pdf" and expected in caught.value.message


def test_without_pypdfium2_a_pdf_page_is_a_readable_warning(monkeypatch):
    monkeypatch.setitem(sys.modules, "pypdfium2", None)  # import pypdfium2 -> ImportError
    with pytest.raises(PageError) as caught:
        page_images.page_image(two_page_pdf(), 0, (100, 50))
    assert caught.value.code == "no_pdf_renderer" and "pypdfium2" in caught.value.message
    assert page_images.page_image(png(), 0).size == (64, 32)  # images need no PDF renderer


def test_tiff_pages_are_its_frames():
    data = two_page_tiff()
    first, second = (page_images.page_image(data, index) for index in (0, 1))
    assert first.size == (40, 20) and first.getpixel((0, 0)) == (255, 0, 0)
    assert second.size == (30, 60) and second.getpixel((0, 0)) == (0, 0, 255)
    with pytest.raises(PageError, match="no page 3"):
        page_images.page_image(data, 2)


def test_pdfs_are_told_apart_from_images_as_the_pipeline_does():
    assert page_images.is_pdf(two_page_pdf()) and page_images.is_pdf(b"\n  %PDF-1.4 ...")
    assert not page_images.is_pdf(png()) and not page_images.is_pdf(two_page_tiff())

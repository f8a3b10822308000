"""The exporters on hand-made pages: text, hOCR read back, and the searchable PDF's text layer."""

from __future__ import annotations

import html
import re
import shutil
import subprocess

import numpy as np
import pytest

from common.documents import PageImage
from common.exports import export_hocr, export_pdf, export_text
from common.results import Box, Line, Page, Word
from tests.exported import hocr_items, pdf_pages_text, pdf_word_boxes


def word(text: str, x: float, y: float, w: float, h: float, confidence: float = 0.9) -> Word:
    return Word(Box(((x, y), (x + w, y), (x + w, y + h), (x, y + h)), 0.8), text, confidence)


def make_page() -> Page:
    words = (
        word("Total", 20, 20, 80, 24),
        word("due:", 110, 20, 60, 24),
        word("<74.68>", 180, 20, 100, 24, 0.5),
        word("", 300, 20, 20, 24),  # a box read as nothing
        word("Thanks", 20, 70, 110, 24),
    )
    lines = (
        Line(((20, 20), (320, 20), (320, 44), (20, 44)), (0, 1, 2, 3), "Total due: <74.68>"),
        Line(((20, 70), (130, 70), (130, 94), (20, 94)), (4,), "Thanks"),
    )
    return Page(400, 120, words, lines)


def test_text_is_the_pages_text_separated_by_form_feeds():
    page = make_page()
    assert export_text([page, page]) == f"{page.text}\f{page.text}\n"


def test_hocr_reads_back_into_the_same_words_boxes_and_confidences():
    items = hocr_items(export_hocr([make_page()]))
    classes = [item[0] for item in items]
    assert classes == ["ocr_page", "ocr_line", *["ocrx_word"] * 3, "ocr_line", "ocrx_word"]
    assert items[0][1] == "bbox 0 0 400 120; ppageno 0"
    words = [(text, title) for cls, title, text in items if cls == "ocrx_word"]
    assert [text for text, _ in words] == ["Total", "due:", "<74.68>", "Thanks"]
    assert words[2][1] == "bbox 180 20 280 44; x_wconf 50"


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="needs poppler-utils (pdftotext)")
def test_the_pdf_text_layer_lies_on_the_words(tmp_path):
    page = make_page()
    image = PageImage(np.full((page.height, page.width, 3), 255, np.uint8))
    path = tmp_path / "page.pdf"
    path.write_bytes(export_pdf([page, page], [image, image]))
    assert [text.split() for text in pdf_pages_text(path)] == [
        ["Total", "due:", "<74.68>", "Thanks"]
    ] * 2
    found = pdf_word_boxes(path)
    expected = [w for w in page.words if w.text] * 2
    assert [text for text, _ in found] == [html.escape(w.text) for w in expected]
    for (_, got), want in zip(found, expected, strict=True):
        (wx0, wy0), _, (wx1, wy1), _ = want.box.quad
        assert got == pytest.approx([wx0, wy0, wx1, wy1], abs=3), want.text


@pytest.mark.skipif(shutil.which("pdfinfo") is None, reason="needs poppler-utils (pdfinfo)")
def test_a_pdf_page_keeps_its_physical_size_and_its_words_boxes(tmp_path):
    """A page rendered from a PDF at 300 dpi goes back at its own size, not at PDF_DPI's."""
    page = make_page()
    image = PageImage(np.full((page.height, page.width, 3), 255, np.uint8), dpi=300.0)
    path = tmp_path / "page.pdf"
    path.write_bytes(export_pdf([page], [image]))
    info = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True, check=True)
    size = re.search(r"Page size:\s+([\d.]+) x ([\d.]+) pts", info.stdout)
    assert size is not None, info.stdout
    assert [float(v) for v in size.groups()] == pytest.approx(
        [page.width * 72 / 300, page.height * 72 / 300], abs=0.01
    )
    found = dict(pdf_word_boxes(path, dpi=300.0))
    (x0, y0), _, (x1, y1), _ = page.words[0].box.quad
    assert found["Total"] == pytest.approx([x0, y0, x1, y1], abs=3)


def test_a_page_comes_back_whole_from_its_json_answer():
    page = make_page()
    assert Page.from_export(page.export()) == page

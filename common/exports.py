"""The formats people keep an OCR result in, made from the typed pages: text, hOCR, searchable PDF.

JSON is ``Page.export``; these are the others a request can ask for with ``format``. Every
exporter takes pages in order (one per image), so an answer of several images is one document.

- ``txt``: each page's text (lines joined by newlines), pages separated by a form feed, as
  ``pdftotext`` separates them.
- ``hocr``: XHTML with ``ocr_page``, ``ocr_line`` and ``ocrx_word`` elements, each with its
  ``bbox`` in image pixels, words with ``x_wconf`` (confidence, 0-100).
- ``pdf``: each page's image with an invisible text layer (PDF text render mode 3) where the
  words are, so a viewer finds and selects them and ``pdftotext`` extracts them. Built with
  fpdf2: pure Python, maintained, and it does exactly this (images, core fonts, invisible text
  and horizontal stretching) without a C library to install.
"""

from __future__ import annotations

import html
import io
from collections.abc import Callable, Iterable, Sequence

import cv2
import numpy as np

from common.documents import POINTS_PER_INCH, PageImage
from common.geometry import bounding_box
from common.results import Page, Quad

FORMATS = ("json", "txt", "hocr", "pdf")
MEDIA_TYPES = {
    "json": "application/json",
    "txt": "text/plain; charset=utf-8",
    "hocr": "application/xhtml+xml; charset=utf-8",
    "pdf": "application/pdf",
}
PDF_DPI = 150  # an image's physical size assumes this many pixels per inch (PDFs keep theirs)
_FONT = "helvetica"
_DESCENT = 0.2  # share of a word box's height below the baseline (Helvetica's descenders)


def _bbox(quad: Quad) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = bounding_box(np.asarray(quad))
    return round(x0), round(y0), round(x1), round(y1)


def export_document(
    fmt: str, pages: Sequence[Page], images: Callable[[], Iterable[PageImage]]
) -> str | bytes:
    """``pages`` as one ``txt``, ``hocr`` or ``pdf`` document; ``images`` is called for the
    PDF only (the page images are needed there alone)."""
    if fmt == "txt":
        return export_text(pages)
    if fmt == "hocr":
        return export_hocr(pages)
    if fmt == "pdf":
        return export_pdf(pages, images())
    raise ValueError(f"no exporter for {fmt!r}")


def export_text(pages: Sequence[Page]) -> str:
    return "\f".join(page.text for page in pages) + "\n"


def export_hocr(pages: Sequence[Page]) -> str:
    """One hOCR document; lines and words in reading order, empty readings left out."""
    body = []
    for number, page in enumerate(pages, start=1):
        body.append(
            f'<div class="ocr_page" id="page_{number}" '
            f'title="bbox 0 0 {page.width} {page.height}; ppageno {number - 1}">'
        )
        for line_number, line in enumerate(page.lines, start=1):
            words = [(i, page.words[i]) for i in line.words if page.words[i].text]
            if not words:
                continue
            x0, y0, x1, y1 = _bbox(line.quad)
            body.append(
                f' <span class="ocr_line" id="line_{number}_{line_number}" '
                f'title="bbox {x0} {y0} {x1} {y1}">'
            )
            for index, word in words:
                wx0, wy0, wx1, wy1 = _bbox(word.box.quad)
                confidence = round(100 * word.confidence)
                body.append(
                    f'  <span class="ocrx_word" id="word_{number}_{index + 1}" '
                    f'title="bbox {wx0} {wy0} {wx1} {wy1}; x_wconf {confidence}">'
                    f"{html.escape(word.text)}</span>"
                )
            body.append(" </span>")
        body.append("</div>")
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN" '
        '"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">\n'
        '<html xmlns="http://www.w3.org/1999/xhtml" xml:lang="en" lang="en">\n'
        "<head>\n<title>OCR</title>\n"
        '<meta http-equiv="Content-Type" content="text/html; charset=utf-8"/>\n'
        '<meta name="ocr-system" content="ocr-pipeline (CRAFT + DTRB)"/>\n'
        '<meta name="ocr-capabilities" content="ocr_page ocr_line ocrx_word"/>\n'
        "</head>\n<body>\n" + "\n".join(body) + "\n</body>\n</html>\n"
    )


def export_pdf(pages: Sequence[Page], images: Iterable[PageImage]) -> bytes:
    """A searchable PDF: page ``i`` is ``images[i]`` (the page that was read) with
    ``pages[i]``'s words as invisible text, each stretched to its box's width. A page keeps
    the physical size it had (a PDF page's, from the resolution it was rendered at); an image
    without a resolution is placed at PDF_DPI. ``images`` may be an iterator: each image is
    taken as its page is written; a count that differs from ``pages``' is a ValueError."""
    from fpdf import FPDF
    from fpdf.enums import TextMode

    pdf = FPDF(unit="pt")
    pdf.set_auto_page_break(False)
    pdf.set_margin(0)
    for page, image in zip(pages, images, strict=True):
        scale = POINTS_PER_INCH / (image.dpi or PDF_DPI)  # points per image pixel
        width, height = page.width * scale, page.height * scale
        pdf.add_page(format=(width, height))
        ok, jpeg = cv2.imencode(
            ".jpg", cv2.cvtColor(image.image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95]
        )
        if not ok:
            raise ValueError("could not encode the page image")
        pdf.image(io.BytesIO(jpeg.tobytes()), x=0, y=0, w=width, h=height)
        pdf.text_mode = TextMode.INVISIBLE
        for line in page.lines:
            for index in line.words:
                word = page.words[index]
                text = word.text.encode("latin-1", "replace").decode("latin-1").strip()
                if not text:
                    continue
                x0, y0, x1, y1 = (v * scale for v in _bbox(word.box.quad))
                size = max(1.0, (y1 - y0) * (1 - _DESCENT) / 0.72)  # cap height ~0.72 em
                pdf.set_font(_FONT, size=size)
                pdf.set_stretching(100.0)  # get_string_width counts the current stretching
                natural = pdf.get_string_width(text)
                pdf.set_stretching(100.0 * (x1 - x0) / natural if natural > 0 else 100.0)
                pdf.text(x0, y1 - (y1 - y0) * _DESCENT, text)
        pdf.text_mode = TextMode.FILL
        pdf.set_stretching(100.0)
    return bytes(pdf.output())

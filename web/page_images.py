"""A document's pages as pictures to draw its answer on: a PDF's rendered, a TIFF's frames.

The answer's quads are in the pixels of the page the pipeline read. A PDF page is rendered here
at a scale that gives the answer's width and height in pixels (about width_px / width_pt), so
the boxes land on the words whatever OCR_PDF_DPI the pipeline rendered at. The page renders the
upload it already holds: the pipeline has no route that answers page images, and getting them
out of its searchable PDF would cost a second read of the document and still need a renderer.
"""

from __future__ import annotations

import threading

from PIL import Image

from web.drawing import open_image
from web.errors import PageError

PDF_MAGIC = b"%PDF-"
POINTS_PER_INCH = 72.0
FALLBACK_DPI = 200.0  # the pipeline's OCR_PDF_DPI default, for an answer without a page width

# PDFium is not thread-safe, and Streamlit runs each browser session's script in a thread of its
# own: one render at a time.
_PDFIUM_LOCK = threading.Lock()


def is_pdf(data: bytes) -> bool:
    """What the pipeline takes for a PDF: the ``%PDF-`` header near the start."""
    return data[:1024].lstrip().startswith(PDF_MAGIC)


def page_image(data: bytes, index: int, size: tuple[int, int] | None = None) -> Image.Image:
    """Page ``index`` (from 0) of the upload as RGB: a PDF's rendered at ``size`` (the answer's
    page width and height in pixels), an image's or TIFF's frame as the pipeline decoded it."""
    if is_pdf(data):
        return _pdf_page(data, index, size)
    return open_image(data, frame=index)


def render_scale(page_pt: tuple[float, float], size: tuple[int, int] | None) -> float:
    """Pixels per point that render a page of ``page_pt`` points at ``size`` pixels.

    PDFium rounds each side up (ceil(side_pt * scale)), so width / width_pt can come out a pixel
    taller than the pipeline's page; the middle of the scales that give both sides is exact.
    """
    width_pt, height_pt = page_pt
    if not size or min(size) < 1 or width_pt <= 0 or height_pt <= 0:
        return FALLBACK_DPI / POINTS_PER_INCH
    width, height = size
    low = max((width - 1) / width_pt, (height - 1) / height_pt)
    high = min(width / width_pt, height / height_pt)
    return (low + high) / 2 if low < high else width / width_pt


def _pdf_page(data: bytes, index: int, size: tuple[int, int] | None) -> Image.Image:
    try:
        import pypdfium2 as pdfium
    except ImportError:  # the web image installs requirements-web.txt only
        raise PageError(
            "no_pdf_renderer",
            "The page can't show PDF pages here: pypdfium2 is not installed where it runs. "
            "The words and text are the pipeline's all the same.",
        ) from None
    with _PDFIUM_LOCK:
        try:
            pdf = pdfium.PdfDocument(data)
        except pdfium.PdfiumError as exc:
            raise PageError("invalid_pdf", f"The page can't display this PDF ({exc}).") from None
        try:
            if not 0 <= index < len(pdf):
                raise PageError("invalid_pdf", f"The PDF has no page {index + 1} to display.")
            return _render(pdf, index, render_scale(pdf.get_page_size(index), size))
        finally:
            pdf.close()


def _render(pdf, index: int, scale: float) -> Image.Image:
    import pypdfium2 as pdfium

    page = pdf[index]
    try:
        bitmap = page.render(scale=scale, rev_byteorder=True)
        try:
            return bitmap.to_pil().convert("RGB")  # a copy: the bitmap is freed below
        finally:
            bitmap.close()
    except pdfium.PdfiumError as exc:
        message = f"The page can't display PDF page {index + 1} ({exc})."
        raise PageError("invalid_pdf", message) from None
    finally:
        page.close()

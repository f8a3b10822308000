"""Uploads as pages: a PDF rasterised, a multi-page TIFF page by page, any other image as one.

The engine reads pages; this is the one place that turns an upload into them, so every
endpoint, the CLI and the exporters agree on what a document is. Every limit is checked from
the file's structure before a pixel is rendered: the page count (OCR_MAX_PAGES) and each page's
size at the rendering resolution (OCR_MAX_PIXELS), so a PDF declaring thousands of pages or a
page 50,000 px tall costs only the reading of its page tree.

PDFs are rendered with pypdfium2 (PDFium, the renderer of Chromium: maintained, fast, permissively
licensed, and a wheel with no system library to install).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from common.errors import (
    EmptyDocument,
    EncryptedPdf,
    ImageTooLarge,
    InvalidImage,
    InvalidPdf,
    OcrError,
    TooManyPages,
)
from common.images import decode_pages

PDF_MAGIC = b"%PDF-"
POINTS_PER_INCH = 72.0

# PDFium is not thread-safe: the only state shared between requests is this lock, which lets
# one thread at a time into it (rendering a page takes tens of milliseconds).
_PDFIUM_LOCK = threading.Lock()


@dataclass(frozen=True)
class DocumentLimits:
    """How an upload may be turned into pages (``Settings.document_limits``)."""

    max_pixels: int  # OCR_MAX_PIXELS, per page
    max_pages: int  # OCR_MAX_PAGES, per request
    dpi: float  # OCR_PDF_DPI: the resolution PDF pages are rendered at


@dataclass(frozen=True, eq=False)
class PageImage:
    """One page to read: its RGB pixels, and its resolution where the source gives one."""

    image: np.ndarray  # HxWx3 uint8 RGB
    dpi: float | None = None  # PDF pages: the rendering resolution; images: unknown
    source: bytes | None = None  # the upload itself, when this page is the whole of it

    def encoded(self) -> bytes:
        """The page as bytes for a service that decodes it again (std_service): the upload as
        sent when it is a single image, else a lossless PNG of the rendered page."""
        if self.source is not None:
            return self.source
        ok, png = cv2.imencode(".png", cv2.cvtColor(self.image, cv2.COLOR_RGB2BGR))
        if not ok:
            raise InvalidImage("could not encode the page as PNG")
        return png.tobytes()


@dataclass(frozen=True)
class Document:
    """An upload as pages. ``kind`` is ``image`` (one picture), ``pdf`` or ``tiff`` (a TIFF
    of several pages); a PDF or a multi-page TIFF is answered page by page."""

    kind: str
    pages: tuple[PageImage, ...]

    @property
    def paged(self) -> bool:
        return self.kind != "image"


def open_document(
    data: bytes, limits: DocumentLimits, only: Sequence[int] | None = None
) -> Document:
    """The pages of a PDF, a multi-page TIFF or any image ``common.images`` decodes; with
    ``only``, just those pages (0-based; a job reads its document a page at a time, its every
    page checked at submission by ``check_document``), after the checks."""
    if _is_pdf(data):
        count, pages = _read_pdf(data, limits, only, every_page=only is None)
        return Document("pdf", tuple(pages))
    count, images = decode_pages(data, limits.max_pixels, limits.max_pages, only)
    if count == 1:
        return Document("image", tuple(PageImage(image, source=data) for image in images))
    return Document("tiff", tuple(PageImage(image) for image in images))


def check_document(data: bytes, limits: DocumentLimits) -> int:
    """The page count of a document that ``open_document`` would open, every check made and
    no page rendered: what a job stores at submission, before any work."""
    if _is_pdf(data):
        return _read_pdf(data, limits, (), every_page=True)[0]
    return decode_pages(data, limits.max_pixels, limits.max_pages, ())[0]


def page_count(data: bytes) -> int:
    """How many pages a file has, from its structure alone (a PDF's page tree, a TIFF's page
    directories), whatever the limits: what a progress bar counts before the work. An
    unreadable file counts one page; opening it says what is wrong."""
    try:
        return check_document(data, DocumentLimits(2**62, 2**31, 72.0))
    except OcrError:
        return 1


def _is_pdf(data: bytes) -> bool:
    return data[:1024].lstrip().startswith(PDF_MAGIC)


def _read_pdf(
    data: bytes, limits: DocumentLimits, only: Sequence[int] | None, every_page: bool
) -> tuple[int, list[PageImage]]:
    """The page count and the rendered pages (all, or ``only`` those), after the checks: the
    page count, and the size of every page (``every_page``) or of those rendered. A job checks
    every page once, at submission, and then opens its pages one by one: checking all of them
    again for each would make a 10,000-page job's reading quadratic."""
    scale = limits.dpi / POINTS_PER_INCH
    with _PDFIUM_LOCK:
        pdf = _open_pdf(data)
        try:
            count = len(pdf)
            if count < 1:
                raise EmptyDocument("the PDF has no pages")
            if count > limits.max_pages:
                raise TooManyPages(
                    f"the PDF has {count} pages; the limit is {limits.max_pages} (OCR_MAX_PAGES)"
                )
            chosen = range(count) if only is None else only
            if any(not 0 <= index < count for index in chosen):
                raise InvalidPdf(f"the PDF has {count} pages, not pages {list(chosen)}")
            for index in range(count) if every_page else chosen:
                # PDFium's own rounding of the rendered size, so the check is of what renders
                width, height = (math.ceil(side * scale) for side in pdf.get_page_size(index))
                _check_page(index + 1, width, height, limits)
            return count, [_render_page(pdf, index, scale, limits.dpi) for index in chosen]
        finally:
            pdf.close()


def _open_pdf(data: bytes):
    """The PDF opened by PDFium (the caller closes it, while ``data`` is still alive), or the
    error saying why not. Opened through the raw call: pypdfium2's own treats a PDF without
    pages as a failure and reports whatever error PDFium last recorded, even another file's."""
    import pypdfium2 as pdfium
    import pypdfium2.raw as raw

    document = raw.FPDF_LoadMemDocument64(data, len(data), None)
    if not document:
        if raw.FPDF_GetLastError() in (raw.FPDF_ERR_PASSWORD, raw.FPDF_ERR_SECURITY):
            raise EncryptedPdf("the PDF is encrypted and needs a password; send it decrypted")
        raise InvalidPdf("the PDF is truncated or corrupt: PDFium could not open it")
    return pdfium.PdfDocument(document)


def _check_page(number: int, width: int, height: int, limits: DocumentLimits) -> None:
    if width < 1 or height < 1:
        raise InvalidPdf(f"PDF page {number} has no area ({width}x{height} px)")
    if width * height > limits.max_pixels:
        raise ImageTooLarge(
            f"PDF page {number} is {width}x{height} = {width * height} pixels at "
            f"{limits.dpi:g} dpi; the limit is {limits.max_pixels} (OCR_MAX_PIXELS)"
        )


def _render_page(pdf, index: int, scale: float, dpi: float) -> PageImage:
    import pypdfium2 as pdfium

    page = pdf[index]
    try:
        bitmap = page.render(scale=scale, rev_byteorder=True)
        try:
            pixels = np.array(bitmap.to_numpy()[:, :, :3])  # a copy: the bitmap is freed below
        finally:
            bitmap.close()
    except pdfium.PdfiumError as exc:
        raise InvalidPdf(f"PDF page {index + 1} could not be rendered: {exc}") from None
    finally:
        page.close()
    return PageImage(pixels, dpi=dpi)

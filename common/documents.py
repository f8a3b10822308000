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

import io
import math
import threading
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

from common.errors import (
    EmptyDocument,
    EncryptedPdf,
    ImageTooLarge,
    InvalidImage,
    InvalidPdf,
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


def open_document(data: bytes, limits: DocumentLimits) -> Document:
    """The pages of a PDF, a multi-page TIFF or any image ``common.images`` decodes."""
    if data[:1024].lstrip().startswith(PDF_MAGIC):
        return Document("pdf", tuple(_render_pdf(data, limits)))
    images = decode_pages(data, limits.max_pixels, limits.max_pages)
    if len(images) == 1:
        return Document("image", (PageImage(images[0], source=data),))
    return Document("tiff", tuple(PageImage(image) for image in images))


def page_count(data: bytes) -> int:
    """How many pages ``open_document`` would give, from the file's structure alone (a PDF's
    page tree, a TIFF's page directories): what a progress bar counts before the work. An
    unreadable file counts one page; opening it says what is wrong."""
    try:
        if data[:1024].lstrip().startswith(PDF_MAGIC):
            with _PDFIUM_LOCK:
                pdf = _open_pdf(data)
                try:
                    return max(1, len(pdf))
                finally:
                    pdf.close()
        image = Image.open(io.BytesIO(data))
        return max(1, getattr(image, "n_frames", 1)) if image.format == "TIFF" else 1
    except Exception:  # any unreadable file is one page, for opening it to report on
        return 1


def _render_pdf(data: bytes, limits: DocumentLimits) -> list[PageImage]:
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
            for index in range(count):
                # PDFium's own rounding of the rendered size, so the check is of what renders
                width, height = (math.ceil(side * scale) for side in pdf.get_page_size(index))
                _check_page(index + 1, width, height, limits)
            return [_render_page(pdf, index, scale, limits.dpi) for index in range(count)]
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

"""Uploads into pages (common/documents.py): PDFs at the set resolution, TIFFs page by page, the
limits checked from the file's structure, each bad document with its own error."""

from __future__ import annotations

import numpy as np
import pytest
from fpdf import FPDF

from common.config import Settings
from common.documents import DocumentLimits, open_document, page_count
from common.errors import EmptyDocument, EncryptedPdf, ImageTooLarge, InvalidPdf, TooManyPages
from common.images import decode_image
from tests.render import (
    blank_pdf,
    pdf_bytes,
    pdf_without_pages,
    png_bytes,
    render_words,
    tiff_bytes,
)

LIMITS = Settings().document_limits


def test_a_pdf_page_renders_at_the_set_resolution_in_rgb():
    image, _ = render_words([["Hello", "world"]])
    document = open_document(pdf_bytes([image, image]), LIMITS)
    assert document.kind == "pdf" and document.paged and len(document.pages) == 2
    page = document.pages[0]
    assert page.dpi == LIMITS.dpi
    assert page.image.dtype == np.uint8 and page.image.shape[2] == 3
    height, width = image.shape[:2]
    assert page.image.shape[:2] == pytest.approx((height, width), abs=1)
    assert np.abs(page.image[:height, :width].astype(int) - image[:, :width]).mean() < 8
    at_100 = open_document(pdf_bytes([image]), DocumentLimits(LIMITS.max_pixels, 4, 100.0))
    assert at_100.pages[0].image.shape[1] == pytest.approx(width / 2, abs=1)


def test_a_single_image_is_one_page_that_sends_itself_on_and_a_document_page_sends_png():
    image, _ = render_words([["Hi"]])
    blob = png_bytes(image)
    document = open_document(blob, LIMITS)
    assert document.kind == "image" and not document.paged
    assert document.pages[0].encoded() is blob
    page = open_document(tiff_bytes([image, image]), LIMITS).pages[1]
    assert np.array_equal(decode_image(page.encoded()), image)


def test_tiff_pages_are_counted_and_limited_before_they_are_decoded():
    image, _ = render_words([["Hi"]])
    assert open_document(tiff_bytes([image]), LIMITS).kind == "image"
    assert page_count(tiff_bytes([image] * 3)) == 3
    with pytest.raises(TooManyPages, match="more than 2 pages"):
        open_document(tiff_bytes([image] * 3), DocumentLimits(LIMITS.max_pixels, 2, 200.0))
    small = DocumentLimits(image.shape[0] * image.shape[1] - 1, 8, 200.0)
    with pytest.raises(ImageTooLarge, match="page 1 is"):
        open_document(tiff_bytes([image, image]), small)


def test_page_count_reads_the_structure_and_counts_an_unreadable_file_as_one():
    assert page_count(blank_pdf(5)) == 5
    assert page_count(b"not a document") == 1
    assert page_count(png_bytes(render_words([["a"]])[0])) == 1


def test_a_pdf_over_the_page_limit_is_refused_without_rendering():
    with pytest.raises(TooManyPages, match="3000 pages; the limit is 32"):
        open_document(blank_pdf(3000, (72, 72)), LIMITS)


@pytest.mark.parametrize(
    ("blob", "error"),
    [
        (blank_pdf(2)[:300], InvalidPdf),
        (b"%PDF-1.7\n" + b"\x00" * 100, InvalidPdf),
        (blank_pdf(1, (612, 18000)), ImageTooLarge),  # 1700 x 50,000 px at 200 dpi
    ],
    ids=["truncated", "garbage", "50000-px-tall"],
)
def test_each_bad_pdf_gets_its_own_error(blob, error):
    with pytest.raises(error):
        open_document(blob, LIMITS)


def test_an_encrypted_pdf_needs_a_password_but_an_owner_only_lock_opens():
    with pytest.raises(EncryptedPdf):
        open_document(blank_pdf(1, password="secret"), LIMITS)
    owner_only = FPDF(unit="pt")
    owner_only.add_page(format=(200, 200))
    owner_only.set_encryption(owner_password="owner")
    assert len(open_document(bytes(owner_only.output()), LIMITS).pages) == 1


def test_a_pdf_without_pages_is_empty_even_right_after_an_encrypted_one():
    """PDFium keeps its last error; an empty PDF must not inherit the previous file's."""
    with pytest.raises(EncryptedPdf):
        open_document(blank_pdf(1, password="secret"), LIMITS)
    with pytest.raises(EmptyDocument):
        open_document(pdf_without_pages(), LIMITS)

"""PDFs and multi-page TIFFs on /ocr, /pipeline and /batch_ocr, in both topologies.

The tests make their documents from pages they draw (tests/render.py), so they know each page's
words; a PDF's pages are sized so that the service's rendering at OCR_PDF_DPI gives back the
drawn pixels, which lets the answers' boxes be compared with the drawn ones.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest
import requests

from monitoring.scoring import iou, rect
from tests.exported import pdf_pages_text, pdf_word_boxes
from tests.render import (
    blank_pdf,
    pdf_bytes,
    pdf_without_pages,
    png_bytes,
    render_words,
    tiff_bytes,
)
from tests.service.conftest import ocr_stack

PAGES = [
    [["Invoice", "2024"], ["Total", "due", "74.68"]],
    [["Thank", "you"]],
]
FIELDS = {"canvas_size": "640"}
DPI = 200.0  # Settings' OCR_PDF_DPI default


def words_of(lines: list[list[str]]) -> list[str]:
    return [word for line in lines for word in line]


@pytest.fixture(scope="module")
def drawn() -> list[tuple]:
    return [render_words(lines) for lines in PAGES]


def _post(url: str, path: str, name: str, blob: bytes, **fields: str) -> requests.Response:
    field = "images" if path == "/batch_ocr" else "image"
    return requests.post(url + path, files={field: (name, blob)}, data=FIELDS | fields, timeout=180)


def _box(quad: list[list[float]]) -> list[float]:
    xs, ys = [p[0] for p in quad], [p[1] for p in quad]
    return [min(xs), min(ys), max(xs), max(ys)]


def test_a_pdf_answers_page_by_page_on_every_path_and_its_pages_share_one_read(
    mode, settings, detector, recognizer, drawn
):
    blob = pdf_bytes([image for image, _ in drawn])
    with ocr_stack(mode, settings, detector, recognizer) as (url, _):
        answers = {path: _post(url, path, "doc.pdf", blob) for path in ("/ocr", "/pipeline")}
        many = _post(url, "/batch_ocr", "doc.pdf", blob)
    for path, response in answers.items():
        assert response.status_code == 200, (path, response.text)
        answer = response.json()
        assert "words" not in answer  # a document's words are its pages'
        assert [page["page"] for page in answer["pages"]] == [1, 2]
        for page, (image, boxes), lines in zip(answer["pages"], drawn, PAGES, strict=True):
            # PDFium rounds the rendered size up: a pixel more where points don't divide evenly
            assert (page["height"], page["width"]) == pytest.approx(image.shape[:2], abs=1)
            assert [word["text"] for word in page["words"]] == words_of(lines), path
            for word, (_, quad) in zip(page["words"], boxes, strict=True):
                # on the drawn word: the page's own pixels, not another scale's
                assert iou(rect(word["quad"]), rect(quad)) > 0.5, word["text"]
        assert answer["text"] == "Invoice 2024\nTotal due 74.68\fThank you"
    batched = answers["/pipeline"].json()
    crops = sum(batch["size"] for batch in batched["batches"])
    # both pages' crops went to the bucket in one read; a segment holds a line's words
    assert len(batched["batches"]) == 1 and crops == 3, batched["batches"]
    assert many.status_code == 200, many.text
    assert many.json()["results"][0]["text"] == batched["text"]


def test_a_multi_page_tiff_is_a_document_and_a_single_image_keeps_its_fields(
    mode, settings, detector, recognizer, drawn
):
    tiff = tiff_bytes([image for image, _ in drawn])
    single = tiff_bytes([drawn[1][0]])
    with ocr_stack(mode, settings, detector, recognizer) as (url, _):
        document = _post(url, "/pipeline", "doc.tif", tiff)
        image = _post(url, "/pipeline", "page.tif", single)
    assert document.status_code == 200, document.text
    pages = document.json()["pages"]
    assert [words_of(lines) for lines in PAGES] == [
        [word["text"] for word in page["words"]] for page in pages
    ]
    assert image.status_code == 200, image.text
    assert "pages" not in image.json()
    assert image.json()["text"] == "Thank you"


def test_batch_ocr_mixes_documents_and_images_in_input_order(
    settings, detector, recognizer, drawn, broker
):
    files = [
        ("images", ("doc.pdf", pdf_bytes([image for image, _ in drawn]))),
        ("images", ("page.png", png_bytes(drawn[1][0]))),
    ]
    with ocr_stack("embedded", settings, detector, recognizer) as (url, _):
        response = requests.post(url + "/batch_ocr", files=files, data=FIELDS, timeout=180)
    assert response.status_code == 200, response.text
    document, image = response.json()["results"]
    assert [page["text"] for page in document["pages"]] == [
        "Invoice 2024\nTotal due 74.68",
        "Thank you",
    ]
    assert image["text"] == "Thank you" and "pages" not in image
    assert document["batches"] == image["batches"]  # one read for the whole request


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="needs poppler-utils (pdftotext)")
def test_a_pdf_comes_back_searchable_at_its_own_page_size(
    mode, settings, detector, recognizer, drawn, tmp_path
):
    source = pdf_bytes([image for image, _ in drawn])
    with ocr_stack(mode, settings, detector, recognizer) as (url, _):
        answer = _post(url, "/pipeline", "doc.pdf", source).json()
        searchable = _post(url, "/pipeline", "doc.pdf", source, format="pdf")
        hocr = _post(url, "/ocr", "doc.pdf", source, format="hocr")
    assert searchable.status_code == 200, searchable.text
    path = tmp_path / "searchable.pdf"
    path.write_bytes(searchable.content)
    assert [text.split() for text in pdf_pages_text(path)] == [words_of(p) for p in PAGES]
    expected = [(w["text"], _box(w["quad"])) for page in answer["pages"] for w in page["words"]]
    found = pdf_word_boxes(path, dpi=DPI)
    assert [text for text, _ in found] == [text for text, _ in expected]
    for (text, got), (_, want) in zip(found, expected, strict=True):
        assert got == pytest.approx(want, abs=3), text
    sizes = [_page_sizes(path), _page_sizes_of(source, tmp_path)]
    assert sizes[0] == pytest.approx(sizes[1], abs=0.5)  # the input's page size, in points
    assert hocr.status_code == 200 and hocr.text.count('class="ocr_page"') == 2


def _page_sizes(path) -> list[float]:
    out = subprocess.run(
        ["pdfinfo", "-f", "1", "-l", "99", str(path)], capture_output=True, text=True, check=True
    ).stdout
    return [
        float(v)
        for line in out.splitlines()
        if line.startswith("Page") and "size:" in line
        for v in line.split("size:")[1].split("pts")[0].split(" x ")
    ]


def _page_sizes_of(blob: bytes, tmp_path) -> list[float]:
    path = tmp_path / "source.pdf"
    path.write_bytes(blob)
    return _page_sizes(path)


BAD_DOCUMENTS = {
    "truncated": (lambda: blank_pdf(2)[:300], 400, "invalid_pdf"),
    "not a pdf after its header": (lambda: b"%PDF-1.7\n" + b"\x00garbage" * 50, 400, "invalid_pdf"),
    "encrypted": (lambda: blank_pdf(1, password="secret"), 422, "encrypted_pdf"),
    "no pages": (pdf_without_pages, 400, "empty_document"),
    "thousands of pages": (lambda: blank_pdf(3000, (72, 72)), 413, "too_many_pages"),
    # 8.5 in wide, 250 in tall: 1700 x 50,000 px at 200 dpi, over OCR_MAX_PIXELS
    "a page 50,000 px tall": (lambda: blank_pdf(1, (612, 18000)), 413, "image_too_large"),
}


@pytest.mark.parametrize("case", list(BAD_DOCUMENTS))
def test_a_bad_document_gets_its_error_before_any_work_and_the_service_keeps_serving(
    case, settings, detector, recognizer, drawn, broker
):
    make, status, code = BAD_DOCUMENTS[case]
    blob = make()
    with ocr_stack("embedded", settings, detector, recognizer) as (url, _):
        answers = [_post(url, path, "bad.pdf", blob) for path in ("/ocr", "/pipeline")]
        good = _post(url, "/pipeline", "page.png", png_bytes(drawn[1][0]))
    for answer in answers:
        assert answer.status_code == status, answer.text
        assert answer.json()["error"]["code"] == code
    assert good.status_code == 200 and good.json()["text"] == "Thank you"


def test_the_page_limit_counts_a_whole_request(
    base_settings, queue_name, detector, recognizer, drawn, broker
):
    settings = base_settings.with_overrides(str_queue=queue_name, ocr_max_pages=3)
    two_pages = pdf_bytes([image for image, _ in drawn])
    tiff = tiff_bytes([drawn[1][0]] * 4)
    with ocr_stack("embedded", settings, detector, recognizer) as (url, _):
        over_tiff = _post(url, "/pipeline", "doc.tif", tiff)
        files = [("images", (f"d{i}.pdf", two_pages)) for i in range(2)]
        over_batch = requests.post(url + "/batch_ocr", files=files, data=FIELDS, timeout=180)
    assert over_tiff.status_code == 413, over_tiff.text
    assert over_tiff.json()["error"]["code"] == "too_many_pages"
    assert over_batch.status_code == 413, over_batch.text
    assert "2 files have more than 3 pages" in over_batch.json()["error"]["message"]


def test_a_document_with_more_pages_than_a_service_admits_at_once_is_read_whole(
    base_settings, queue_name, detector, recognizer, drawn, broker
):
    """Distributed, each page is a /detection call: no more go at once than std admits."""
    settings = base_settings.with_overrides(str_queue=queue_name, ocr_max_inflight=2)
    blob = pdf_bytes([image for image, _ in drawn] * 3)
    with ocr_stack("distributed", settings, detector, recognizer) as (url, _):
        answer = _post(url, "/pipeline", "doc.pdf", blob)
    assert answer.status_code == 200, answer.text
    assert [page["text"] for page in answer.json()["pages"]] == [
        "Invoice 2024\nTotal due 74.68",
        "Thank you",
    ] * 3

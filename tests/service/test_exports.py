"""format=txt|hocr|pdf on /ocr, /pipeline and /batch_ocr, in both topologies, on rendered pages."""

from __future__ import annotations

import shutil

import pytest
import requests

from tests.exported import hocr_items, pdf_pages_text, pdf_word_boxes
from tests.render import png_bytes, render_words
from tests.service.conftest import ocr_stack

FIRST = [["Invoice", "2024"], ["Total", "due", "74.68"]]
SECOND = [["Thank", "you"]]
FIELDS = {"canvas_size": "640"}


def _post(url: str, path: str, blob: bytes, **fields: str) -> requests.Response:
    return requests.post(
        url + path, files={"image": ("page.png", blob)}, data=FIELDS | fields, timeout=120
    )


def _words(answer: dict) -> list[tuple[str, list[float]]]:
    out = []
    for word in answer["words"]:
        xs, ys = [p[0] for p in word["quad"]], [p[1] for p in word["quad"]]
        out.append((word["text"], [min(xs), min(ys), max(xs), max(ys)]))
    return out


def test_each_format_carries_the_json_answers_words(mode, settings, detector, recognizer, tmp_path):
    blob = png_bytes(render_words(FIRST)[0])
    with ocr_stack(mode, settings, detector, recognizer) as (url, _):
        answer = _post(url, "/pipeline", blob).json()
        text = _post(url, "/pipeline", blob, format="txt")
        hocr = _post(url, "/ocr", blob, format="hocr")
        pdf = requests.post(
            url + "/pipeline?format=pdf", files={"image": ("p.png", blob)}, data=FIELDS, timeout=120
        )
    expected = _words(answer)
    assert [word for word, _ in expected] == [w for line in FIRST for w in line]
    assert text.headers["Content-Type"].startswith("text/plain")
    assert text.text == answer["text"] + "\n"

    assert hocr.headers["Content-Type"].startswith("application/xhtml+xml")
    words = [(t, title) for cls, title, t in hocr_items(hocr.text) if cls == "ocrx_word"]
    assert [t for t, _ in words] == [word for word, _ in expected]
    for (_, title), (_, box) in zip(words, expected, strict=True):
        bbox = [float(v) for v in title.split(";")[0].split()[1:]]
        assert bbox == pytest.approx(box, abs=1)

    assert pdf.headers["Content-Type"] == "application/pdf"
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler-utils) is not installed to read the PDF back")
    path = tmp_path / "ocr.pdf"
    path.write_bytes(pdf.content)
    assert pdf_pages_text(path)[0].split() == [word for word, _ in expected]
    for (word, got), (_, box) in zip(pdf_word_boxes(path), expected, strict=True):
        assert got == pytest.approx(box, abs=3), word


def test_batch_ocr_exports_one_document_with_a_page_per_image(
    mode, settings, detector, recognizer, tmp_path
):
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler-utils) is not installed to read the PDF back")
    images = [png_bytes(render_words(lines)[0]) for lines in (FIRST, SECOND)]
    files = [("images", (f"p{i}.png", blob)) for i, blob in enumerate(images)]
    with ocr_stack(mode, settings, detector, recognizer) as (url, _):
        pdf = requests.post(
            url + "/batch_ocr", files=files, data=FIELDS | {"format": "pdf"}, timeout=120
        )
        text = requests.post(
            url + "/batch_ocr", files=files, data=FIELDS | {"format": "txt"}, timeout=120
        )
    assert pdf.status_code == 200, pdf.text
    path = tmp_path / "batch.pdf"
    path.write_bytes(pdf.content)
    pages = [page.split() for page in pdf_pages_text(path)]
    assert pages == [[w for line in FIRST for w in line], [w for line in SECOND for w in line]]
    assert text.text.split("\f") == ["Invoice 2024\nTotal due 74.68", "Thank you\n"]


def test_an_unknown_format_is_a_400_and_the_service_keeps_serving(settings, detector, recognizer):
    blob = png_bytes(render_words(SECOND)[0])
    with ocr_stack("embedded", settings, detector, recognizer) as (url, _):
        bad = _post(url, "/pipeline", blob, format="docx")
        good = _post(url, "/pipeline", blob)
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "invalid_parameter"
    assert "json, txt, hocr, pdf" in bad.json()["error"]["message"]
    assert good.status_code == 200 and good.json()["text"] == "Thank you"

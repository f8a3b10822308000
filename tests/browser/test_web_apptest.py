"""The Streamlit pages, run by streamlit.testing's AppTest against a stand-in pipeline over HTTP.

The stand-in answers in the contract's shapes in milliseconds, so these tests check what the page
does with answers and failures (tables, text, downloads, summaries, readable errors) without
loading a model.
"""

from __future__ import annotations

import io
import json
import socket
import time
from pathlib import Path

import pytest
from flask import Response, jsonify, request
from PIL import Image, UnidentifiedImageError
from streamlit.testing.v1 import AppTest

from tests.web_fixtures import png, stand_in_pipeline

APP = Path(__file__).resolve().parents[2] / "web" / "app.py"
RUN_TIMEOUT_S = 30

METRICS = """\
# TYPE ocr_request_seconds histogram
ocr_request_seconds_bucket{endpoint="/ocr",le="1.0",mode="sequential",service="pipeline"} 3.0
ocr_request_seconds_bucket{endpoint="/ocr",le="+Inf",mode="sequential",service="pipeline"} 4.0
ocr_request_seconds_count{endpoint="/ocr",mode="sequential",service="pipeline"} 4.0
ocr_request_seconds_sum{endpoint="/ocr",mode="sequential",service="pipeline"} 3.0
ocr_str_batch_size_bucket{le="8.0"} 2.0
ocr_str_batch_size_bucket{le="64.0"} 3.0
ocr_str_batch_size_bucket{le="+Inf"} 3.0
ocr_str_batch_size_count 3.0
ocr_str_batch_size_sum 60.0
ocr_bucket_wait_seconds_bucket{le="0.05"} 3.0
ocr_bucket_wait_seconds_bucket{le="+Inf"} 3.0
ocr_bucket_wait_seconds_count 3.0
ocr_bucket_wait_seconds_sum 0.03
ocr_std_seconds_bucket{le="+Inf"} 3.0
ocr_std_seconds_count 3.0
ocr_std_seconds_sum 84.7113
ocr_errors_total{code="invalid_image",endpoint="/ocr",service="pipeline"} 2.0
"""


def answer_for(width: int, height: int, mode: str) -> dict:
    words = [
        {
            "quad": [[2, 2], [width // 2, 2], [width // 2, height // 2], [2, height // 2]],
            "text": "Alpha",
            "confidence": 0.91,
            "det_score": 0.8,
        },
        {
            "quad": [[width // 2, 2], [width - 2, 2], [width - 2, height // 2], [width // 2, 2]],
            "text": "Beta",
            "confidence": 0.31,
            "det_score": 0.6,
        },
    ]
    timings = {"std": 12.0, "str": 3.0, "total": 16.0}
    if mode == "batched":
        timings["queue_wait"] = 1.0
    return {
        "mode": mode,
        "width": width,
        "height": height,
        "words": words,
        "lines": [],
        "text": "Alpha Beta",
        "timings_ms": timings,
    }


def document_for(mode: str) -> dict:
    """A two-page document's answer: page 1 reads "Alpha Beta", page 2 (a different size)
    "Gamma"."""
    first = {k: v for k, v in answer_for(200, 100, mode).items() if k != "timings_ms"}
    second = {
        "width": 100,
        "height": 200,
        "words": [
            {
                "quad": [[10, 10], [90, 10], [90, 40], [10, 40]],
                "text": "Gamma",
                "confidence": 0.7,
                "det_score": 0.9,
            }
        ],
        "lines": [],
        "text": "Gamma",
    }
    pages = [{"page": 1, **first}, {"page": 2, **second}]
    return {
        "mode": mode,
        "pages": pages,
        "text": "Alpha Beta\fGamma",
        "timings_ms": answer_for(1, 1, mode)["timings_ms"],
    }


# Uploads the stand-in refuses as the pipeline would: file name -> (status, code).
DOCUMENT_ERRORS = {
    "locked.pdf": (422, "encrypted_pdf"),
    "broken.pdf": (400, "invalid_pdf"),
    "empty.pdf": (400, "empty_document"),
    "huge.pdf": (413, "too_many_pages"),
}
EXPORT_TYPES = {"pdf": "application/pdf", "hocr": "application/xhtml+xml", "txt": "text/plain"}


def error(status: int, code: str, message: str):
    return jsonify({"error": {"code": code, "message": message}}), status


@pytest.fixture(scope="module")
def fake_pipeline():
    """Answers /ocr and /pipeline like the pipeline: a single image's answer, a document's for a
    PDF, the export a ``format`` asks for, the contract's errors; and /metrics."""
    seen: list[dict] = []

    def ocr():
        upload = request.files["image"]
        data = upload.read()
        seen.append({"path": request.path, "form": dict(request.form)})
        if upload.filename.startswith("slow"):
            time.sleep(1.5)
        if upload.filename in DOCUMENT_ERRORS:
            return error(*DOCUMENT_ERRORS[upload.filename], "refused by the stand-in")
        mode = "batched" if request.path == "/pipeline" else "sequential"
        fmt = request.form.get("format")
        if fmt and upload.filename.startswith("busy"):
            return error(503, "overloaded", "queue full")
        if fmt:
            body = f"{fmt} export of {upload.filename} by {request.path}".encode()
            return Response(body, content_type=EXPORT_TYPES[fmt])
        if data.startswith(b"%PDF-"):
            return jsonify(document_for(mode))
        try:
            width, height = Image.open(io.BytesIO(data)).size
        except UnidentifiedImageError:
            return error(400, "invalid_image", "not a recognised image")
        return jsonify(answer_for(width, height, mode))

    with stand_in_pipeline(ocr, METRICS) as url:
        yield url, seen


def two_page_pdf() -> bytes:
    """A real two-page PDF (the page renders it to draw the boxes on), 200 x 100 and 100 x 200."""
    from fpdf import FPDF

    pdf = FPDF(unit="pt")
    pdf.add_page(format=(200, 100))
    pdf.add_page(format=(100, 200))
    return bytes(pdf.output())


@pytest.fixture
def page(fake_pipeline, monkeypatch) -> AppTest:
    url, seen = fake_pipeline
    seen.clear()
    monkeypatch.setenv("PIPELINE_URL", url)
    monkeypatch.delenv("OCR_API_KEY", raising=False)
    monkeypatch.delenv("WEB_TIMEOUT_S", raising=False)
    return AppTest.from_file(APP, default_timeout=RUN_TIMEOUT_S).run()


def upload_and_read(page: AppTest, files: list[tuple[str, bytes, str]]) -> AppTest:
    page.file_uploader(key="uploads").set_value(files).run()
    return page.button(key="read").click().run()


def no_traceback(page: AppTest) -> None:
    assert not page.exception, [e.message for e in page.exception]


def test_empty_page_asks_for_an_upload(page):
    no_traceback(page)
    assert page.title[0].value == "Read text from documents"
    assert "Upload one or more images or PDFs" in page.info[0].value
    uploader = page.file_uploader(key="uploads")
    assert uploader.allowed_type == [
        ".pdf", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp"
    ]  # fmt: skip
    assert uploader.label.startswith("Images or documents (PDF,")


def test_one_image_shows_words_text_downloads_and_timings(page, fake_pipeline):
    _, seen = fake_pipeline
    page.number_input(key="canvas_size").set_value(640)
    upload_and_read(page, [("scan.png", png(), "image/png")])
    no_traceback(page)
    assert not page.error
    assert seen == [
        {
            "path": "/ocr",
            "form": {
                "canvas_size": "640",
                "mag_ratio": "1.5",
                "text_threshold": "0.7",
                "link_threshold": "0.4",
                "low_text": "0.4",
            },
        }
    ]
    assert page.code[0].value == "Alpha Beta"
    table = page.dataframe[0].value
    assert list(table["text"]) == ["Alpha", "Beta"] and list(table["#"]) == [1, 2]
    assert "canvas 640 px" in page.caption[0].value and "Sequential" in page.caption[0].value
    labels = [button.label for button in page.get("download_button")]
    assert labels == ["Download .txt", "Download JSON"]
    assert len(page.image) == 1  # the annotated image
    assert len(page.get("vega_lite_chart")) == 1  # the timings chart


def test_batched_mode_calls_the_pipeline_endpoint(page, fake_pipeline):
    _, seen = fake_pipeline
    page.radio(key="mode").set_value("batched")
    upload_and_read(page, [("scan.png", png(), "image/png")])
    no_traceback(page)
    assert [call["path"] for call in seen] == ["/pipeline"]
    assert "Batched" in page.caption[0].value
    outcome = next(iter(page.session_state["outcomes"].values()))
    assert "queue_wait" in outcome.answer["timings_ms"]


def test_several_files_get_a_progress_bar_a_summary_and_per_file_errors(page):
    files = [
        ("one.png", png(), "image/png"),
        ("broken.png", b"this is not an image", "image/png"),
        ("two.png", png(80, 40), "image/png"),
    ]
    upload_and_read(page, files)
    no_traceback(page)
    summary = page.dataframe[0].value
    assert list(summary["file"]) == ["one.png", "broken.png", "two.png"]
    assert list(summary["status"]) == ["ok", "error", "ok"]
    assert page.get("progress")[0].proto.text == "Done: 2 of 3 read."
    assert len(page.tabs) == 3
    [error] = page.error
    assert "broken.png" in error.value and "could not read this file as an image" in error.value
    assert [code.value for code in page.code] == ["Alpha Beta", "Alpha Beta"]


def test_results_survive_reruns_and_follow_the_uploads(page):
    upload_and_read(page, [("a.png", png(), "image/png"), ("b.png", png(50), "image/png")])
    assert len(page.session_state["outcomes"]) == 2
    page.radio(key="mode").set_value("batched").run()  # a rerun without reading again
    assert len(page.code) == 2
    page.file_uploader(key="uploads").set_value([("a.png", png(), "image/png")]).run()
    assert len(page.session_state["outcomes"]) == 1  # b.png's result is forgotten
    assert [code.value for code in page.code] == ["Alpha Beta"]
    page.file_uploader(key="uploads").set_value(None).run()
    assert len(page.session_state["outcomes"]) == 0 and not page.code


def test_backend_down_is_a_readable_message(monkeypatch):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("PIPELINE_URL", f"http://127.0.0.1:{port}")
    page = AppTest.from_file(APP, default_timeout=RUN_TIMEOUT_S).run()
    upload_and_read(page, [("scan.png", png(), "image/png")])
    no_traceback(page)
    [error] = page.error
    assert "Can't reach the OCR backend" in error.value and str(port) in error.value


def test_timeout_is_a_readable_message(page, monkeypatch):
    monkeypatch.setenv("WEB_TIMEOUT_S", "0.3")
    upload_and_read(page, [("slow.png", png(), "image/png")])
    no_traceback(page)
    [error] = page.error
    assert "did not answer within 0.3 s" in error.value


def test_monitoring_page_summarises_the_metrics(page):
    page.switch_page("views/monitoring.py").run()
    no_traceback(page)
    assert page.title[0].value == "Pipeline metrics"
    tiles = {metric.label: metric.value for metric in page.metric}
    assert tiles["Requests"] == "4"
    assert tiles["Mean batch size"] == "20.0"
    assert tiles["Mean bucket wait"] == "10.0 ms"
    assert tiles["Mean STD time"] == "28.2 s"  # was "28,237.1 ms", which the tile cut off
    assert all(len(value) <= 9 for value in tiles.values()), tiles
    assert tiles["Errors"] == "2"
    assert list(page.dataframe[0].value["endpoint"]) == ["/ocr"]


def test_monitoring_page_with_backend_down(monkeypatch):
    monkeypatch.setenv("PIPELINE_URL", "http://127.0.0.1:9")
    page = AppTest.from_file(APP, default_timeout=RUN_TIMEOUT_S).run()
    page.switch_page("views/monitoring.py").run()
    no_traceback(page)
    assert "Can't reach the OCR backend" in page.error[0].value


def test_uploader_states_and_enforces_the_backends_limit(page, fake_pipeline, monkeypatch):
    # The pipeline's OCR_MAX_UPLOAD_MB (20), not Streamlit's 200 MB: the widget's limit is what
    # the browser shows ("Limit 20MB per file") and refuses past.
    assert page.file_uploader(key="uploads").proto.max_upload_size_mb == 20
    monkeypatch.setenv("OCR_MAX_UPLOAD_MB", "5")
    smaller = AppTest.from_file(APP, default_timeout=RUN_TIMEOUT_S).run()
    assert smaller.file_uploader(key="uploads").proto.max_upload_size_mb == 5


def test_words_table_widths_and_timing_labels_reach_the_page(page):
    upload_and_read(page, [("scan.png", png(), "image/png")])
    no_traceback(page)
    columns = json.loads(page.dataframe[0].proto.columns)
    widths = {name: column.get("width") for name, column in columns.items() if name != "_index"}
    assert widths == {"#": 40, "text": 150, "confidence": 100, "det_score": 80}
    spec = json.loads(page.get("vega_lite_chart")[0].proto.spec)
    marks = [layer["mark"]["type"] for layer in spec["layer"]]
    assert marks == ["bar", "text"]  # the values are printed on the bars
    assert spec["layer"][1]["encoding"]["text"]["field"] == "label"


# --- documents: page by page, exports, errors --------------------------------------------------


def page_selector(page: AppTest):
    selectors = [w for w in page.number_input if w.label.startswith("Page")]
    return selectors[0] if selectors else None


def test_a_document_is_shown_page_by_page(page):
    upload_and_read(page, [("report.pdf", two_page_pdf(), "application/pdf")])
    no_traceback(page)
    assert not page.error and not page.warning  # the PDF page was rendered for the boxes
    assert page.caption[0].value.startswith("2 pages · 3 words · Sequential")
    selector = page_selector(page)
    assert selector is not None and selector.label == "Page (1–2)" and selector.value == 1
    assert [code.value for code in page.code] == ["Alpha Beta"]
    assert list(page.dataframe[0].value["text"]) == ["Alpha", "Beta"]
    assert any(block.value == "**Text of page 1**" for block in page.markdown)
    assert len(page.image) == 1

    selector.set_value(2).run()
    no_traceback(page)
    assert not page.warning
    assert [code.value for code in page.code] == ["Gamma"]
    assert list(page.dataframe[0].value["text"]) == ["Gamma"]
    assert any(block.value == "**Text of page 2**" for block in page.markdown)
    assert len(page.image) == 1
    assert (page_selector(page).min, page_selector(page).max) == (1, 2)  # no page 3 to move to


def test_a_single_image_has_no_page_selector(page):
    upload_and_read(page, [("scan.png", png(), "image/png")])
    no_traceback(page)
    assert page_selector(page) is None
    assert any(block.value == "**Text**" for block in page.markdown)


def download_labels(page: AppTest) -> list[str]:
    return [button.label for button in page.get("download_button")]


def test_exports_are_fetched_when_asked_for_with_the_answers_settings(page, fake_pipeline):
    _, seen = fake_pipeline
    page.number_input(key="canvas_size").set_value(640)
    upload_and_read(page, [("scan.png", png(), "image/png")])
    read_call = seen[-1]
    assert [button.label for button in page.button if button.label.startswith("Make")] == [
        "Make searchable PDF",
        "Make hOCR",
    ]
    page.radio(key="mode").set_value("batched").run()  # the sidebar moves on after reading
    assert len(seen) == 1  # nothing is fetched before it is asked for

    page.button(key=f"make-pdf-{only_key(page)}").click().run()
    no_traceback(page)
    assert len(seen) == 2
    assert seen[-1] == {"path": "/ocr", "form": read_call["form"] | {"format": "pdf"}}
    assert download_labels(page) == ["Download .txt", "Download JSON", "Download searchable PDF"]
    outcome = page.session_state["outcomes"][only_key(page)]
    assert outcome.exports == {"pdf": b"pdf export of scan.png by /ocr"}

    page.button(key=f"make-hocr-{only_key(page)}").click().run()
    assert seen[-1]["form"]["format"] == "hocr" and len(seen) == 3
    assert download_labels(page)[-1] == "Download hOCR"
    page.run()  # later reruns keep the exports without asking again
    assert len(seen) == 3 and len(download_labels(page)) == 4


def only_key(page: AppTest) -> str:
    [key] = page.session_state["outcomes"].keys()
    return key


def test_a_documents_exports_are_offered_too(page, fake_pipeline):
    _, seen = fake_pipeline
    upload_and_read(page, [("report.pdf", two_page_pdf(), "application/pdf")])
    page.button(key=f"make-hocr-{only_key(page)}").click().run()
    no_traceback(page)
    assert seen[-1]["form"]["format"] == "hocr"
    assert download_labels(page)[-1] == "Download hOCR"


def test_an_export_that_fails_is_a_readable_message_and_can_be_retried(page, fake_pipeline):
    _, seen = fake_pipeline
    upload_and_read(page, [("busy.png", png(), "image/png")])
    page.button(key=f"make-pdf-{only_key(page)}").click().run()
    no_traceback(page)
    [error] = page.error
    assert "The backend is busy" in error.value
    assert download_labels(page) == ["Download .txt", "Download JSON"]
    assert page.button(key=f"make-pdf-{only_key(page)}").label == "Make searchable PDF"
    assert page.code[0].value == "Alpha Beta"  # the result itself stays


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("locked.pdf", "password-protected"),
        ("broken.pdf", "could not open this PDF"),
        ("empty.pdf", "no pages to read"),
        ("huge.pdf", "OCR_MAX_PAGES"),
    ],
)
def test_document_errors_are_readable_messages(page, name, expected):
    upload_and_read(page, [(name, b"%PDF-1.7 whatever", "application/pdf")])
    no_traceback(page)
    [error] = page.error
    assert name in error.value and expected in error.value
    assert "refused by the stand-in" in error.value  # the backend's own words stay visible


def test_the_summary_counts_a_documents_pages(page):
    files = [("report.pdf", two_page_pdf(), "application/pdf"), ("one.png", png(), "image/png")]
    upload_and_read(page, files)
    no_traceback(page)
    summary = page.dataframe[0].value
    assert list(summary["pages"]) == [2, 1] and list(summary["words"]) == [3, 2]
    assert len(page.tabs) == 2

"""The web page's HTTP client without Streamlit: configuration, calls, answers, error wording."""

from __future__ import annotations

import ast
import json
import socket
import time
from pathlib import Path

import pytest
from flask import Response, jsonify, request

from tests.web_fixtures import ANSWER, png, stand_in_pipeline
from web import client
from web.errors import PageError

WEB_DIR = Path(client.__file__).resolve().parent
SERVICE_PACKAGES = {"common", "std_service", "str_service", "pipeline", "monitoring"}


# --- the page stays a pure HTTP client ---------------------------------------------------------


def test_web_imports_no_service_code():
    """web/ deploys alone (its image has no torch and no service code), so it can't import them."""
    offenders = []
    for path in WEB_DIR.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            else:
                continue
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in SERVICE_PACKAGES]
    assert offenders == []


# --- configuration -----------------------------------------------------------------------------


def test_every_error_code_of_the_contract_has_its_wording():
    """The page words each error the services answer with (the jobs API's in JOB_HINTS); a new
    code needs a sentence here."""
    from common.errors import ERRORS_BY_CODE
    from web.errors import ERROR_HINTS, JOB_HINTS

    assert set(ERRORS_BY_CODE) - set(ERROR_HINTS) - set(JOB_HINTS) == set()


def test_config_reads_pipeline_url_key_and_timeout():
    config = client.WebConfig.from_env(
        {"PIPELINE_URL": "http://pipeline:5000/", "OCR_API_KEY": "s3cret", "WEB_TIMEOUT_S": "30"}
    )
    assert config.pipeline_url == "http://pipeline:5000"
    assert config.headers() == {"X-API-Key": "s3cret"}
    assert config.timeout_s == 30


@pytest.mark.parametrize("raw", ["", "abc", "-1", "nan", "inf"])
def test_config_falls_back_to_defaults_for_unusable_values(raw):
    config = client.WebConfig.from_env({"WEB_TIMEOUT_S": raw, "PIPELINE_URL": "  "})
    assert config.pipeline_url == client.DEFAULT_PIPELINE_URL
    assert config.timeout_s == client.DEFAULT_TIMEOUT_S
    assert config.headers() == {}


def test_modes_map_to_the_contract_endpoints():
    assert client.endpoint_for("sequential") == "/ocr"
    assert client.endpoint_for("batched") == "/pipeline"
    with pytest.raises(ValueError):
        client.endpoint_for("turbo")


def test_pdfs_are_uploaded_as_pdfs():
    assert client.UPLOAD_TYPES[0] == "pdf" and set(client.IMAGE_TYPES) < set(client.UPLOAD_TYPES)
    assert client.mime_type("Report.PDF") == "application/pdf"
    assert client.mime_type("scan.tif") == "image/tiff"


def test_detection_fields_are_formatted_for_the_form():
    fields = client.detection_fields({"canvas_size": 640.0, "mag_ratio": 1.5, "low_text": 0.35})
    assert fields == {"canvas_size": "640", "mag_ratio": "1.5", "low_text": "0.35"}


# --- answers and error wording -----------------------------------------------------------------


DOCUMENT = {
    "mode": "sequential",
    "pages": [
        {
            "page": 1,
            "width": 200,
            "height": 100,
            "words": ANSWER["words"],
            "lines": [],
            "text": "a",
        },
        {"page": 2, "width": 200, "height": 100, "words": [], "lines": [], "text": ""},
    ],
    "text": "a\f",
    "timings_ms": {"total": 5.0},
}


def test_parse_answer_returns_the_json_of_a_success():
    assert client.parse_answer(200, json.dumps(ANSWER).encode()) == ANSWER


def test_parse_answer_takes_a_documents_pages():
    assert client.parse_answer(200, json.dumps(DOCUMENT).encode()) == DOCUMENT


@pytest.mark.parametrize(
    "pages",
    [[], [{"page": 1}], ["page"], [{"page": 1, "words": "Hello"}]],
    ids=["no pages", "page without words", "not a page", "words not a list"],
)
def test_parse_answer_refuses_pages_without_words(pages):
    body = json.dumps(DOCUMENT | {"pages": pages}).encode()
    with pytest.raises(PageError) as caught:
        client.parse_answer(200, body)
    assert caught.value.code == "bad_answer"


@pytest.mark.parametrize(
    ("status", "code", "detail", "expected"),
    [
        (400, "invalid_image", "not a recognised image", "could not read this file as an image"),
        (413, "image_too_large", "image is 9000x9000", "OCR_MAX_PIXELS"),
        (503, "overloaded", "queue full", "busy"),
        (504, "timeout", "gave up after 60 s", "smaller canvas"),
        (401, "unauthorized", "missing X-API-Key", "OCR_API_KEY"),
        (400, "invalid_pdf", "the PDF is truncated or corrupt", "could not open this PDF"),
        (400, "empty_document", "the PDF has no pages", "no pages to read"),
        (413, "too_many_pages", "the PDF has 900 pages", "split it into smaller files"),
        (422, "encrypted_pdf", "the PDF is encrypted", "password-protected"),
    ],
)
def test_error_answers_become_readable_sentences(status, code, detail, expected):
    body = json.dumps({"error": {"code": code, "message": detail}}).encode()
    with pytest.raises(PageError) as caught:
        client.parse_answer(status, body)
    assert caught.value.code == code
    assert expected in caught.value.message
    assert detail in caught.value.message  # the backend's own words stay visible


@pytest.mark.parametrize(
    ("status", "body", "code", "expected"),
    [
        (502, b"<html>Bad Gateway</html>", "http_error", "HTTP 502"),
        (404, b"", "http_error", "HTTP 404"),
        (
            418,
            json.dumps({"error": {"code": "teapot", "message": "short"}}).encode(),
            "teapot",
            "418",
        ),
        (200, b"<html>a login page</html>", "bad_answer", "PIPELINE_URL"),
        (200, b'{"status": "ok"}', "bad_answer", "not with an OCR result"),
    ],
)
def test_unexpected_answers_are_explained(status, body, code, expected):
    with pytest.raises(PageError) as caught:
        client.parse_answer(status, body)
    assert caught.value.code == code
    assert expected in caught.value.message
    assert "Traceback" not in caught.value.message


@pytest.mark.parametrize(
    ("fmt", "content_type"),
    [
        ("pdf", "application/pdf"),
        ("hocr", "application/xhtml+xml; charset=utf-8"),
        ("txt", "text/plain; charset=utf-8"),
    ],
)
def test_parse_export_returns_the_file_of_its_media_type(fmt, content_type):
    assert client.parse_export(200, b"file", content_type, fmt) == b"file"


def test_parse_export_refuses_an_answer_that_is_not_the_export():
    """A pipeline that ignores ``format`` answers JSON: that must not be saved as a PDF."""
    with pytest.raises(PageError) as caught:
        client.parse_export(200, json.dumps(ANSWER).encode(), "application/json", "pdf")
    assert caught.value.code == "bad_answer" and "searchable PDF" in caught.value.message


def test_parse_export_words_error_answers_like_parse_answer():
    body = json.dumps({"error": {"code": "overloaded", "message": "queue full"}}).encode()
    with pytest.raises(PageError) as caught:
        client.parse_export(503, body, "application/json", "hocr")
    assert caught.value.code == "overloaded" and "busy" in caught.value.message


# --- calling a real HTTP server ----------------------------------------------------------------


EXPORT_TYPES = {"pdf": "application/pdf", "hocr": "application/xhtml+xml", "txt": "text/plain"}


@pytest.fixture(scope="module")
def fake_pipeline():
    """A stand-in that records what it receives and answers like the pipeline (JSON, or the
    export a ``format`` field asks for)."""
    seen: list[dict] = []

    def ocr():
        upload = request.files["image"]
        seen.append(
            {
                "path": request.path,
                "form": dict(request.form),
                "filename": upload.filename,
                "mimetype": upload.mimetype,
                "size": len(upload.read()),
                "key": request.headers.get("X-API-Key"),
            }
        )
        if request.form.get("sleep"):
            time.sleep(float(request.form["sleep"]))
        fmt = request.form.get("format")
        if fmt:
            return Response(f"{fmt} of {request.path}", content_type=EXPORT_TYPES[fmt])
        return jsonify(ANSWER | {"mode": "batched" if request.path == "/pipeline" else "x"})

    with stand_in_pipeline(ocr, "ocr_errors_total 3.0\n") as url:
        yield url, seen


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_read_document_posts_the_image_and_settings_to_the_mode_endpoint(fake_pipeline):
    url, seen = fake_pipeline
    config = client.WebConfig(url, api_key="k", timeout_s=10)
    data = png()
    answer = client.read_document(config, "scan.PNG", data, "batched", {"canvas_size": "640"})
    assert answer["mode"] == "batched"
    assert seen[-1] == {
        "path": "/pipeline",
        "form": {"canvas_size": "640"},
        "filename": "scan.PNG",
        "mimetype": "image/png",
        "size": len(data),
        "key": "k",
    }


@pytest.mark.parametrize("fmt", ["pdf", "hocr", "txt"])
def test_fetch_export_asks_the_mode_endpoint_for_the_format(fake_pipeline, fmt):
    url, seen = fake_pipeline
    config = client.WebConfig(url, api_key="k", timeout_s=10)
    export = client.fetch_export(
        config, "doc.pdf", b"%PDF-1.4", "sequential", fmt, {"low_text": "0.3"}
    )
    assert export == f"{fmt} of /ocr".encode()
    assert seen[-1]["path"] == "/ocr" and seen[-1]["mimetype"] == "application/pdf"
    assert seen[-1]["form"] == {"low_text": "0.3", "format": fmt}  # the answer's fields too
    assert seen[-1]["key"] == "k"


def test_fetch_export_knows_only_the_pipelines_formats():
    with pytest.raises(ValueError, match="unknown export"):
        client.fetch_export(client.WebConfig(closed_port_url()), "a.png", png(), "batched", "docx")


def test_fetch_export_with_the_backend_down_is_a_readable_error():
    config = client.WebConfig(closed_port_url(), timeout_s=5)
    with pytest.raises(PageError) as caught:
        client.fetch_export(config, "a.png", png(), "batched", "pdf")
    assert caught.value.code == "backend_down"


def test_backend_down_is_a_readable_error():
    config = client.WebConfig(closed_port_url(), timeout_s=5)
    with pytest.raises(PageError) as caught:
        client.read_document(config, "a.png", png(), "sequential")
    assert caught.value.code == "backend_down"
    assert config.pipeline_url in caught.value.message
    assert "PIPELINE_URL" in caught.value.message


def test_slow_backend_is_a_readable_timeout(fake_pipeline):
    url, _ = fake_pipeline
    config = client.WebConfig(url, timeout_s=0.3)
    with pytest.raises(PageError) as caught:
        client.read_document(config, "a.png", png(), "sequential", {"sleep": "1.5"})
    assert caught.value.code == "timeout"
    assert "0.3 s" in caught.value.message


def test_fetch_metrics_returns_the_text_or_a_readable_error(fake_pipeline):
    url, _ = fake_pipeline
    assert client.fetch_metrics(client.WebConfig(url)) == "ocr_errors_total 3.0\n"
    with pytest.raises(PageError) as caught:
        client.fetch_metrics(client.WebConfig(closed_port_url()))
    assert caught.value.code == "backend_down"


# --- upload limit and how Streamlit is started --------------------------------------------------


def test_upload_limit_follows_the_pipelines_setting():
    from common.config import Settings

    default = client.WebConfig.from_env({})
    assert default.max_upload_mb == Settings().ocr_max_upload_mb == 20
    assert client.WebConfig.from_env({"OCR_MAX_UPLOAD_MB": "7.9"}).max_upload_mb == 7
    for bad in ("x", "-1", "inf", "0"):
        assert client.WebConfig.from_env({"OCR_MAX_UPLOAD_MB": bad}).max_upload_mb == 20, bad
    assert client.WebConfig.from_env({"OCR_MAX_UPLOAD_MB": "0.5"}).max_upload_mb == 1
    assert client.upload_limit_mb(default, 200) == 20  # Streamlit's 200 MB default is not used
    big = client.WebConfig.from_env({"OCR_MAX_UPLOAD_MB": "50"})
    assert client.upload_limit_mb(big, 20) == 20  # never more than Streamlit's server takes


def test_streamlit_is_started_without_deploy_button_and_with_the_real_upload_limit():
    import tomllib

    root = WEB_DIR.parent
    config = tomllib.loads((root / ".streamlit" / "config.toml").read_text())
    assert config["client"]["toolbarMode"] == "minimal"
    assert config["server"]["maxUploadSize"] == client.DEFAULT_MAX_UPLOAD_MB
    for path in ("deploy/supervisord.embedded.conf", "deploy/supervisord.services.conf"):
        text = (root / path).read_text()
        assert "--client.toolbarMode minimal" in text and "--server.maxUploadSize 20" in text
    cmd = [line for line in (root / "web" / "Dockerfile").read_text().splitlines() if "CMD" in line]
    assert '"--client.toolbarMode", "minimal"' in cmd[-1]
    assert '"--server.maxUploadSize", "20"' in cmd[-1]

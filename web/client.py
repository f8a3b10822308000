"""The page's HTTP client of the pipeline: where it is, what to send, what came back.

It speaks the pipeline's HTTP contract only and imports no service code, so the page deploys
alone. Every failure leaves here as a PageError (web/errors.py), worded for the page.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from web.errors import ERROR_HINTS, PageError, error_message, unreachable
from web.metrics_view import scrape_text

DEFAULT_PIPELINE_URL = "http://127.0.0.1:5000"
DEFAULT_TIMEOUT_S = 120.0
CONNECT_TIMEOUT_S = 5.0
METRICS_TIMEOUT_S = 10.0
# The pipeline's OCR_MAX_UPLOAD_MB default: the uploader refuses what the backend would refuse.
DEFAULT_MAX_UPLOAD_MB = 20

# The extensions the uploader accepts: the formats the services decode, PDFs first (documents).
IMAGE_TYPES = ("png", "jpg", "jpeg", "tif", "tiff", "webp", "bmp")
UPLOAD_TYPES = ("pdf", *IMAGE_TYPES)
MIME_TYPES = {
    "pdf": "application/pdf",
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "tif": "image/tiff",
    "tiff": "image/tiff",
    "webp": "image/webp",
    "bmp": "image/bmp",
}

# mode -> (endpoint, label shown to the user)
MODES = {
    "sequential": ("/ocr", "Sequential (/ocr)"),
    "batched": ("/pipeline", "Batched (/pipeline)"),
}


@dataclass(frozen=True)
class ExportFormat:
    """One of the files the pipeline makes of a result (``format=...``), as the page offers it."""

    label: str
    suffix: str  # appended to the upload's stem for the download's name
    mime: str  # the media type the pipeline answers it with (and the download is saved as)


# format -> how the page offers it. The read page makes .txt and JSON itself (the answer's text
# is the pipeline's txt export, pages joined by form feeds); fetch_export and a job's result
# (web/jobs_client.py) take all four.
EXPORT_FORMATS = {
    "pdf": ExportFormat("searchable PDF", "-searchable.pdf", "application/pdf"),
    "hocr": ExportFormat("hOCR", ".hocr", "application/xhtml+xml"),
    "txt": ExportFormat(".txt", ".txt", "text/plain"),
    "json": ExportFormat("JSON", ".json", "application/json"),
}
# What a read's timeout suggests; other calls (web/jobs_client.py) suggest their own.
READ_TIMEOUT_HINT = "Try a smaller canvas size, or set WEB_TIMEOUT_S higher."

# Official CRAFT defaults: where the page's detection settings start.
DETECTION_DEFAULTS = {
    "canvas_size": 1280,
    "mag_ratio": 1.5,
    "text_threshold": 0.7,
    "link_threshold": 0.4,
    "low_text": 0.4,
}


@dataclass(frozen=True)
class WebConfig:
    """Where the backend is and how long to wait for it, from the environment."""

    pipeline_url: str = DEFAULT_PIPELINE_URL
    api_key: str | None = None
    timeout_s: float = DEFAULT_TIMEOUT_S
    max_upload_mb: int = DEFAULT_MAX_UPLOAD_MB

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> WebConfig:
        env = os.environ if env is None else env
        url = env.get("PIPELINE_URL", "").strip() or DEFAULT_PIPELINE_URL
        raw_timeout = env.get("WEB_TIMEOUT_S", "").strip()
        try:
            timeout = float(raw_timeout) if raw_timeout else DEFAULT_TIMEOUT_S
        except ValueError:
            timeout = DEFAULT_TIMEOUT_S
        if not (math.isfinite(timeout) and timeout > 0):
            timeout = DEFAULT_TIMEOUT_S
        return cls(
            url.rstrip("/"),
            env.get("OCR_API_KEY", "").strip() or None,
            timeout,
            _upload_mb(env.get("OCR_MAX_UPLOAD_MB", "")),
        )

    def headers(self) -> dict[str, str]:
        return {"X-API-Key": self.api_key} if self.api_key else {}


def _upload_mb(raw: str) -> int:
    """OCR_MAX_UPLOAD_MB as the whole megabytes Streamlit's uploader takes (at least 1).

    Rounded down, so a file the page lets through is never one the pipeline refuses.
    """
    try:
        value = float(raw.strip()) if raw.strip() else DEFAULT_MAX_UPLOAD_MB
    except ValueError:
        return DEFAULT_MAX_UPLOAD_MB
    if not (math.isfinite(value) and value > 0):
        return DEFAULT_MAX_UPLOAD_MB
    return max(1, math.floor(value))


def upload_limit_mb(config: WebConfig, server_limit_mb: float) -> int:
    """The uploader's per-file limit: the backend's, but never above what Streamlit's server
    (``server.maxUploadSize``) accepts, so the number the page states is the one enforced."""
    return max(1, min(config.max_upload_mb, math.floor(server_limit_mb)))


@dataclass
class Outcome:
    """One file's result: the pipeline's answer, or the reason there is none."""

    name: str
    answer: dict | None = None
    error: PageError | None = None
    settings: dict = field(default_factory=dict)
    # The form fields the answer was read with, so an export asked for later matches it even
    # after the sidebar has changed; and the exports fetched so far, format -> file.
    fields: dict[str, str] = field(default_factory=dict)
    exports: dict[str, bytes] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.answer is not None


def digest(data: bytes) -> str:
    """A short content id, so the same upload keeps its result across reruns."""
    return hashlib.sha1(data, usedforsecurity=False).hexdigest()[:16]


def mime_type(name: str) -> str:
    return MIME_TYPES.get(Path(name).suffix.lower().lstrip("."), "application/octet-stream")


def detection_fields(values: Mapping[str, float]) -> dict[str, str]:
    """Form fields for the detection settings; every value is sent, so the answer matches them."""
    fields = {}
    for name in DETECTION_DEFAULTS:
        value = values.get(name)
        if value is None:
            continue
        fields[name] = str(int(value)) if name == "canvas_size" else f"{float(value):g}"
    return fields


def endpoint_for(mode: str) -> str:
    try:
        return MODES[mode][0]
    except KeyError:
        raise ValueError(f"unknown mode {mode!r}; choose one of {sorted(MODES)}") from None


def read_document(
    config: WebConfig,
    name: str,
    data: bytes,
    mode: str,
    fields: Mapping[str, str] | None = None,
    session: requests.Session | None = None,
) -> dict:
    """POST one image or document to /ocr or /pipeline and return its answer (a single image's
    fields, or a document's ``pages``); failures raise PageError."""
    response = _post(config, name, data, mode, dict(fields or {}), session)
    return parse_answer(response.status_code, response.content)


def fetch_export(
    config: WebConfig,
    name: str,
    data: bytes,
    mode: str,
    fmt: str,
    fields: Mapping[str, str] | None = None,
    session: requests.Session | None = None,
) -> bytes:
    """The pipeline's ``fmt`` export (a key of EXPORT_FORMATS) of one upload: it reads the
    upload again, since it keeps nothing between requests. Failures raise PageError."""
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"unknown export {fmt!r}; choose one of {sorted(EXPORT_FORMATS)}")
    response = _post(config, name, data, mode, dict(fields or {}) | {"format": fmt}, session)
    return parse_export(
        response.status_code, response.content, response.headers.get("Content-Type", ""), fmt
    )


def _post(
    config: WebConfig,
    name: str,
    data: bytes,
    mode: str,
    fields: dict[str, str],
    session: requests.Session | None,
) -> requests.Response:
    """One upload to the mode's endpoint."""
    return send(
        config,
        "POST",
        endpoint_for(mode),
        session,
        files={"image": (name, data, mime_type(name))},
        data=fields,
    )


def send(
    config: WebConfig,
    method: str,
    path: str,
    session: requests.Session | None = None,
    timeout_hint: str = READ_TIMEOUT_HINT,
    headers: Mapping[str, str] | None = None,
    **kwargs: Any,
) -> requests.Response:
    """One request to the pipeline (``kwargs`` as requests takes them), with its API key and
    timeouts; every transport failure as a PageError, so no page words them itself."""
    http = session or requests
    try:
        return http.request(
            method,
            config.pipeline_url + path,
            headers=config.headers() | dict(headers or {}),
            timeout=(CONNECT_TIMEOUT_S, config.timeout_s),
            **kwargs,
        )
    except requests.exceptions.ConnectTimeout:
        raise unreachable(config.pipeline_url) from None
    except requests.exceptions.Timeout:
        raise PageError(
            "timeout", f"The backend did not answer within {config.timeout_s:g} s. {timeout_hint}"
        ) from None
    except requests.exceptions.ConnectionError:
        raise unreachable(config.pipeline_url) from None
    except requests.exceptions.RequestException as exc:
        raise PageError("network", f"The request to the backend failed: {exc}") from None


def parse_answer(status: int, body: bytes) -> dict:
    """The JSON answer of a 200, or a PageError worded from the contract's error body."""
    payload = json_body(body)
    if status != 200:
        raise error_answer(status, payload)
    if not (isinstance(payload, dict) and _is_result(payload)):
        raise PageError(
            "bad_answer",
            "The backend answered, but not with an OCR result. Is PIPELINE_URL the pipeline's "
            "address?",
        )
    return payload


def parse_export(
    status: int,
    body: bytes,
    content_type: str,
    fmt: str,
    hints: Mapping[str, str] = ERROR_HINTS,
) -> bytes:
    """The file of a 200 answer to ``format=fmt``, or a PageError like parse_answer's (worded
    with ``hints``).

    The media type must be the export's: a backend that ignores ``format`` answers JSON, and
    that must not be saved as a PDF.
    """
    if status != 200:
        raise error_answer(status, json_body(body), hints)
    export = EXPORT_FORMATS[fmt]
    if content_type.split(";")[0].strip().lower() != export.mime:
        raise PageError(
            "bad_answer",
            f"The backend answered, but not with a {export.label}. Is PIPELINE_URL a pipeline "
            f"that makes them (format={fmt})?",
        )
    return body


def json_body(body: bytes) -> object:
    """The body as JSON, or None when it is none (an HTML error page, nothing at all)."""
    try:
        return json.loads(body) if body else None
    except (ValueError, UnicodeDecodeError):
        return None


def error_answer(status: int, payload: object, hints: Mapping[str, str] = ERROR_HINTS) -> PageError:
    """The contract's ``{"error": {"code", "message"}}`` worded for the page with ``hints``."""
    error = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(error, dict):
        code = str(error.get("code") or "error")
        detail = str(error.get("message") or "")
        return PageError(code, error_message(code, detail, status, hints))
    return PageError("http_error", error_message("", "", status, hints))


def _is_result(payload: dict) -> bool:
    """A single image's answer (``words``) or a document's (``pages``, each with ``words``)."""
    pages = payload.get("pages")
    if isinstance(pages, list):
        return bool(pages) and all(
            isinstance(page, dict) and isinstance(page.get("words"), list) for page in pages
        )
    return isinstance(payload.get("words"), list)


def fetch_metrics(config: WebConfig, session: requests.Session | None = None) -> str:
    """The pipeline's /metrics text; failures raise PageError like the OCR calls do."""
    try:
        return scrape_text(
            config.pipeline_url + "/metrics",
            config.headers(),
            (CONNECT_TIMEOUT_S, METRICS_TIMEOUT_S),
            session,
        )
    except requests.exceptions.Timeout:
        raise PageError(
            "timeout", f"The backend's /metrics did not answer within {METRICS_TIMEOUT_S:g} s."
        ) from None
    except requests.exceptions.ConnectionError:
        raise unreachable(config.pipeline_url) from None
    except requests.exceptions.HTTPError as exc:
        status = exc.response.status_code if exc.response is not None else 0
        raise PageError("http_error", f"The backend's /metrics answered HTTP {status}.") from None
    except requests.exceptions.RequestException as exc:
        raise PageError("network", f"The request to the backend failed: {exc}") from None

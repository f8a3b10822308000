"""Flask plumbing every service shares: JSON errors, API-key check, request parsing, metrics.

Keeping it here means every endpoint of every service reads images and parameters the same way
and fails with the same JSON error shapes of the HTTP contract.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
import math
import time
from collections.abc import Callable

from flask import Flask, Request, Response, g, has_request_context, jsonify, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from common import metrics
from common.admission import MODEL_PATHS, Admission, install_admission
from common.config import Settings
from common.errors import (
    InvalidParameter,
    MethodNotAllowed,
    MissingImage,
    NotFound,
    OcrError,
    PayloadTooLarge,
    Unauthorized,
    UnsupportedMediaType,
)
from common.openapi import register_openapi

log = logging.getLogger(__name__)
access_log = logging.getLogger("ocr.access")

JSON_CACHE_KEY = "ocr.json_body"
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/openapi.json"})
DEADLINE_HEADER = "X-OCR-Deadline"  # epoch milliseconds; a caller's own, earlier deadline
ACCEPTED_TYPES = ("multipart/form-data", "application/json", "application/x-www-form-urlencoded")


def create_base_app(name: str, settings: Settings) -> Flask:
    """A Flask app with the contract's error handling, auth, size limit, admission control,
    request deadlines and latency metrics."""
    app = Flask(name)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_upload_bytes
    app.config["MAX_FORM_MEMORY_SIZE"] = settings.max_upload_bytes
    app.config["OCR_SETTINGS"] = settings
    app.json.sort_keys = False
    service = name
    register_openapi(app, name)

    @app.before_request
    def _start() -> None:
        g.started = time.perf_counter()
        g.mode = ""
        if settings.ocr_api_key and request.path not in OPEN_PATHS:
            given = request.headers.get("X-API-Key", "")
            if not hmac.compare_digest(given.encode(), settings.ocr_api_key.encode()):
                raise Unauthorized("missing or wrong X-API-Key header")
        if request.path in MODEL_PATHS:
            g.arrived = time.time()
            # Parsed on arrival, so a malformed header is a 400 before any work.
            parse_deadline(request.headers.get(DEADLINE_HEADER), g.arrived, settings.ocr_timeout_s)

    install_admission(app, Admission(settings.ocr_max_inflight, service))

    @app.after_request
    def _observe(response: Response) -> Response:
        elapsed = time.perf_counter() - g.get("started", time.perf_counter())
        if request.path not in OPEN_PATHS and request.url_rule is not None:
            metrics.REQUEST_SECONDS.labels(service, request.path, g.get("mode", "")).observe(
                elapsed
            )
        # The access log (waitress writes none): one line per request, health probes included.
        access_log.info(
            "%s %s %s %d %.1fms",
            request.remote_addr or "-",
            request.method,
            request.path,
            response.status_code,
            elapsed * 1000.0,
        )
        return response

    @app.errorhandler(OcrError)
    def _ocr_error(exc: OcrError) -> tuple[Response, int, dict]:
        return _error_response(service, exc)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> tuple[Response, int, dict]:
        return _error_response(service, _translate_http_error(exc))

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> tuple[Response, int, dict]:
        log.exception("unhandled error on %s %s", request.method, request.path)
        error = OcrError("internal error; see the service log")
        return _error_response(service, error)

    @app.get("/metrics")
    def _metrics() -> Response:
        body, content_type = metrics.render_metrics()
        return Response(body, content_type=content_type)

    return app


def parse_deadline(header: str | None, now: float, timeout_s: float) -> float:
    """A request's deadline in epoch seconds: ``now`` + OCR_TIMEOUT_S, or the caller's earlier
    X-OCR-Deadline (epoch milliseconds). A later header can't extend the service's own budget.
    """
    deadline = now + timeout_s
    if header is None or not header.strip():
        return deadline
    try:
        millis = float(header.strip())
    except ValueError:
        millis = math.nan
    if not math.isfinite(millis) or millis <= 0:
        raise InvalidParameter(
            f"{DEADLINE_HEADER} must be a positive epoch time in milliseconds, got {header!r}"
        )
    return min(deadline, millis / 1000.0)


def request_deadline(settings: Settings, images: int = 1) -> float:
    """This request's deadline (epoch seconds): arrival + OCR_TIMEOUT_S for each of its
    ``images`` (/batch_ocr's four pages need four pages' time), or the caller's earlier one.

    Outside a model endpoint's request (a CLI, a test) the clock starts now.
    """
    budget_s = settings.ocr_timeout_s * max(1, images)
    arrived = g.get("arrived") if has_request_context() else None
    if arrived is None:
        return time.time() + budget_s
    return parse_deadline(request.headers.get(DEADLINE_HEADER), arrived, budget_s)


def _error_response(service: str, exc: OcrError) -> tuple[Response, int, dict]:
    endpoint = request.path if request.url_rule is not None else "unmatched"
    metrics.ERRORS.labels(service, endpoint, exc.code).inc()
    return jsonify(exc.to_dict()), exc.status, exc.headers


def _translate_http_error(exc: HTTPException) -> OcrError:
    if isinstance(exc, RequestEntityTooLarge):
        return PayloadTooLarge("request body exceeds OCR_MAX_UPLOAD_MB")
    if exc.code == 404:
        return NotFound(f"no endpoint at {request.path}")
    if exc.code == 405:
        return MethodNotAllowed(f"{request.method} is not allowed on {request.path}")
    if exc.code == 415:
        return UnsupportedMediaType(exc.description or "unsupported media type")
    if exc.code == 400:
        return InvalidParameter(exc.description or "bad request")
    error = OcrError(exc.description or exc.name)
    error.status, error.code = exc.code or 500, exc.name.lower().replace(" ", "_")
    return error


def require_body_type(req: Request) -> str:
    """The body's media type, or 415 for anything the contract doesn't accept."""
    media = (req.mimetype or "").lower()
    if media not in ACCEPTED_TYPES:
        raise UnsupportedMediaType(
            f"send multipart/form-data or application/json, not {media or 'no content type'}"
        )
    return media


def json_body(req: Request) -> dict:
    """The parsed JSON object of a JSON request; malformed JSON is a 400, not a 500.

    Parsed once per request and kept in its environ: the image, the boxes and the parameters
    all come from the same body, and a 20 MB base64 upload shouldn't be parsed three times.
    """
    if JSON_CACHE_KEY not in req.environ:
        req.environ[JSON_CACHE_KEY] = _parse_json_body(req.get_data(cache=True))
    return req.environ[JSON_CACHE_KEY]


def _parse_json_body(data: bytes) -> dict:
    if not data.strip():
        return {}  # nothing sent: the caller's own check then names what is missing
    try:
        payload = json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: deep nesting
        raise InvalidParameter("request body is not valid JSON") from None
    if not isinstance(payload, dict):
        raise InvalidParameter("JSON body must be an object")
    return payload


def request_images(req: Request, field: str = "image", many: bool = False) -> list[bytes]:
    """Image bytes from multipart field ``field`` or JSON ``{field: base64}``.

    With ``many`` the field may repeat (multipart) or be a list (JSON), as /batch_ocr needs.
    """
    media = require_body_type(req)
    blobs: list[bytes] = []
    if media == "application/json":
        value = json_body(req).get(field)
        values = value if (many and isinstance(value, list)) else [value]
        for index, item in enumerate(values):
            if item is None:
                continue
            if not isinstance(item, str):
                raise InvalidParameter(f"{field}[{index}] must be a base64 string")
            blobs.append(_b64decode(item, f"{field}[{index}]" if many else field))
    else:
        files = req.files.getlist(field)
        files = files if many else files[:1]
        blobs = [file.read() for file in files]
    if not blobs:
        raise MissingImage(f"send the image as multipart field '{field}' or JSON base64 '{field}'")
    return blobs


def request_param(req: Request, name: str) -> object | None:
    """A parameter from the form, the query string or the JSON body, whichever carries it."""
    media = (req.mimetype or "").lower()
    if media == "application/json":
        value = json_body(req).get(name)
        if value is not None:
            return value
    elif name in req.form:
        return req.form[name]
    return req.args.get(name)


def request_format(req: Request) -> str:
    """The requested answer ``format`` (json by default); 400 invalid_parameter for any other
    than common.exports.FORMATS."""
    from common.exports import FORMATS

    value = request_param(req, "format")
    if value is None or value == "":
        return "json"
    if not isinstance(value, str) or value.strip().lower() not in FORMATS:
        raise InvalidParameter(f"format must be one of {', '.join(FORMATS)}, got {value!r}")
    return value.strip().lower()


def request_json_param(req: Request, name: str) -> object | None:
    """A structured parameter: JSON values pass through, form strings are parsed as JSON."""
    value = request_param(req, name)
    if isinstance(value, str):
        try:
            return json.loads(value)
        except (ValueError, RecursionError):
            raise InvalidParameter(f"{name} must be valid JSON") from None
    return value


def set_mode(mode: str) -> None:
    """Label this request's latency metric with its mode (sequential/batched)."""
    g.mode = mode


def _b64decode(text: str, name: str) -> bytes:
    if "," in text[:100] and text.startswith("data:"):
        text = text.split(",", 1)[1]
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidParameter(f"{name} is not valid base64") from None


HealthCheck = Callable[[], tuple[bool, dict]]


def add_health_routes(app: Flask, readiness: HealthCheck) -> None:
    """GET /healthz (process alive) and /readyz (``readiness`` says whether it can serve)."""

    @app.get("/healthz")
    def _healthz() -> Response:
        return jsonify({"status": "ok"})

    @app.get("/readyz")
    def _readyz() -> tuple[Response, int]:
        ready, detail = readiness()
        return jsonify({"ready": ready, **detail}), 200 if ready else 503

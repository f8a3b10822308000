"""The OpenAPI 3 description of each service, served at ``GET /openapi.json``.

One builder makes every service's document from shared pieces (quads, boxes, words, lines, the
error shape, the detection parameters), so a client generator or a contract test sees the same
contract the code implements; tests/service/test_openapi.py checks real answers against it.
The document is plain data built once per app: no framework, no decorators on the handlers.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, jsonify

from common.config import Settings
from common.exports import FORMATS
from common.profiles import PROFILES

OPENAPI_VERSION = "3.0.3"
API_VERSION = "1.0.0"
EXPORTING = ("/ocr", "/pipeline", "/batch_ocr")  # the operations that take ``format``
MAX_IMAGES_PER_BATCH = 32  # pipeline.app.MAX_IMAGES_PER_BATCH (the tests check they agree)

JSON = "application/json"
MULTIPART = "multipart/form-data"
Schema = dict[str, Any]

# A 32x32 white PNG: the explicit examples run the real models on it at almost no cost.
EXAMPLE_PNG_B64 = (
    "iVBORw0KGgoAAAANSUhEUgAAACAAAAAgCAIAAAD8GO2jAAAAKElEQVR42u3NQQEAAAQEMPTvfErw2wqsk9SnqWcCgUAg"
    "EAgEAoHgygLH8QM9BsqtpQAAAABJRU5ErkJggg=="
)
EXAMPLE_QUAD = [[2.0, 2.0], [30.0, 2.0], [30.0, 30.0], [2.0, 30.0]]

TITLES = {
    "std": "CRAFT text detection (std_service)",
    "str": "DTRB text recognition (str_service)",
    "pipeline": "OCR pipeline",
}
# The model operations each service serves; every service also has health, metrics and this.
SERVICE_PATHS: dict[str, tuple[str, ...]] = {
    "std": ("/detection",),
    "str": ("/recognition",),
    "pipeline": ("/detection", "/recognition", "/ocr", "/pipeline", "/batch_ocr"),
}

# Error codes by status. 404 and 405 answer requests that match no operation, so they live in
# components/responses rather than under an operation.
Codes = dict[int, tuple[str, ...]]
UNAUTHORIZED: Codes = {401: ("unauthorized",)}
# What the HTTP front (common/server.py) refuses before any app code runs, on any path.
FRONT: Codes = {
    400: ("invalid_request",),
    413: ("payload_too_large",),
    414: ("url_too_long",),
    431: ("headers_too_large",),
    501: ("not_implemented",),
}
BODY_ERRORS: Codes = {
    413: ("payload_too_large", "image_too_large"),
    415: ("unsupported_media_type",),
    503: ("overloaded", "not_ready"),
    504: ("timeout",),
}
IMAGE_400 = ("invalid_image", "missing_image", "invalid_parameter")
# What the OCR operations add, since they take PDFs and multi-page TIFFs (common/documents.py).
DOCUMENT_ERRORS: Codes = {
    400: ("invalid_pdf", "empty_document"),
    413: ("too_many_pages",),
    422: ("encrypted_pdf",),
}
RECOGNITION_400 = ("invalid_image", "missing_image", "invalid_boxes", "invalid_parameter")
OVER_BUDGET: Codes = {422: ("over_budget",)}
UPSTREAM: Codes = {502: ("upstream_error",)}
NAMED_RESPONSES = {
    401: "Unauthorized",
    414: "UrlTooLong",
    431: "HeadersTooLarge",
    501: "NotImplemented",
}

JOB_STATUSES = ("queued", "running", "done", "failed", "cancelled")  # jobs/schema.py's

STATUS_TEXT = {
    400: "The request is malformed: unparseable HTTP, a bad or missing image, a broken or empty "
    "PDF, bad boxes or a bad parameter",
    401: "Missing or wrong X-API-Key (only when the service runs with OCR_API_KEY set)",
    404: "No endpoint at this path",
    405: "The path exists but not for this method",
    409: "job_not_finished: the job's result before it is done; job_finished: cancelling a "
    "job that has ended",
    413: "Body over OCR_MAX_UPLOAD_MB, more crops than STR_MAX_CROPS, an image or page over "
    "OCR_MAX_PIXELS (read from its header before decoding), or more pages than OCR_MAX_PAGES",
    414: "The request line is too long",
    415: "The body is neither multipart/form-data nor application/json",
    422: "Detection would cost more than the detection budget (OCR_MAX_DETECT_PIXELS), or the "
    "PDF is encrypted",
    431: "The request headers are too large",
    501: "A Transfer-Encoding other than chunked",
    502: "An upstream service (std, str or a worker) failed or answered nonsense",
    503: "overloaded: too many requests in flight, retry after Retry-After seconds; "
    "not_ready: the service cannot serve yet",
    504: "The request ran past OCR_TIMEOUT_S or its X-OCR-Deadline",
}


def ref(kind: str, name: str) -> Schema:
    return {"$ref": f"#/components/{kind}/{name}"}


def _array(items: Schema, **extra: Any) -> Schema:
    return {"type": "array", "items": items, **extra}


def _object(properties: dict[str, Schema], required: tuple[str, ...] = (), **extra: Any) -> Schema:
    schema: Schema = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    return schema | extra


def _number(**limits: Any) -> Schema:
    return {"type": "number", **limits}


def _threshold(default: float, what: str) -> Schema:
    return _number(minimum=0, exclusiveMinimum=True, maximum=1, default=default, description=what)


def component_schemas() -> dict[str, Schema]:
    """The shapes every service shares; detection defaults are the default profile's."""
    defaults = PROFILES[Settings.ocr_profile].detection
    timings = {"type": "object", "additionalProperties": _number(minimum=0)}
    word_fields = {"quad": ref("schemas", "Quad"), "text": {"type": "string"}}
    ocr_fields = {
        "width": {"type": "integer", "minimum": 1},
        "height": {"type": "integer", "minimum": 1},
        "words": _array(ref("schemas", "Word")),
        "lines": _array(ref("schemas", "Line")),
        "text": {"type": "string", "description": "the lines joined by newlines"},
    }
    return {
        "Point": _array(_number(), minItems=2, maxItems=2, description="[x, y] in image pixels"),
        "Quad": _array(
            ref("schemas", "Point"),
            minItems=4,
            maxItems=4,
            description="four points clockwise from the top-left, in the pixels of the image",
        ),
        "Box": _object(
            {
                "quad": ref("schemas", "Quad"),
                "score": _number(description="mean CRAFT region score over the component"),
                "polygon": _array(
                    ref("schemas", "Point"), minItems=4, description="only with poly=true"
                ),
            },
            ("quad", "score"),
        ),
        "Word": _object(
            word_fields | {"confidence": _number(), "det_score": _number()},
            ("quad", "text", "confidence", "det_score"),
        ),
        "Line": _object(
            word_fields
            | {"words": _array({"type": "integer", "minimum": 0}, description="word indices")},
            ("quad", "text", "words"),
        ),
        "Error": _object(
            {
                "error": _object(
                    {"code": {"type": "string"}, "message": {"type": "string"}},
                    ("code", "message"),
                )
            },
            ("error",),
        ),
        "CanvasSize": {
            "type": "integer",
            "minimum": 32,
            "maximum": 4096,
            "default": defaults.canvas_size,
            "description": "longest side the image is scaled to before detection",
        },
        "MagRatio": _number(
            minimum=0.1, maximum=5, default=defaults.mag_ratio, description="image scale"
        ),
        "TextThreshold": _threshold(defaults.text_threshold, "region score a word must reach"),
        "LinkThreshold": _threshold(
            defaults.link_threshold, "affinity score that links characters"
        ),
        "LowText": _threshold(defaults.low_text, "region score that bounds a word"),
        "Poly": {
            "type": "boolean",
            "default": defaults.poly,
            "description": "also return polygons",
        },
        "TextHeight": _number(
            minimum=0,
            maximum=200,
            default=defaults.text_height,
            description="detect at the scale that makes the page's smaller words (the first "
            "quartile of word heights) this many pixels tall (found by a first pass at long "
            "side 640, never above the canvas_size/mag_ratio scale); 0: the canvas_size/mag_ratio "
            "scale. The default is the default profile's "
            "(OCR_PROFILE=fast); the official profile's is 0",
        ),
        "LoneGlyphs": {
            "type": "boolean",
            "default": defaults.lone_glyphs,
            "description": "also box the characters CRAFT misses when they stand alone (a "
            "receipt's quantity '1'): ink on a detected line that no box covers, as tall as the "
            "line's words, on print on paper only. The default is the default profile's "
            "(OCR_PROFILE=fast); the official profile's is false",
        },
        "DetectionParameters": _object(_detection_properties()),
        "Format": {
            "type": "string",
            "enum": list(FORMATS),
            "default": "json",
            "description": "the answer's format: json (the fields below), txt (the text, "
            "pages separated by a form feed), hocr (XHTML with page, line and word boxes and "
            "word confidences), pdf (a searchable PDF: the image with an invisible text layer)",
        },
        "Timings": timings,
        "Detection": _object(
            {
                "width": {"type": "integer", "minimum": 1},
                "height": {"type": "integer", "minimum": 1},
                "boxes": _array(ref("schemas", "Box"), description="in reading order"),
                "lines": _array(
                    _array({"type": "integer", "minimum": 0}),
                    description="box indices of each line, top to bottom, left to right",
                ),
                "timings_ms": ref("schemas", "Timings"),
                "model": {"type": "string"},
            },
            ("width", "height", "boxes", "lines", "timings_ms", "model"),
        ),
        "Reading": _object(
            {"text": {"type": "string"}, "confidence": _number(minimum=0, maximum=1)},
            ("text", "confidence"),
        ),
        "Recognition": _object(
            {
                "results": _array(ref("schemas", "Reading"), description="in input order"),
                "forward_passes": _array(
                    {"type": "integer", "minimum": 1},
                    description="crops per network call of this read (not bucket batches)",
                ),
                "timings_ms": ref("schemas", "Timings"),
                "model": {"type": "string"},
            },
            ("results", "forward_passes", "timings_ms", "model"),
        ),
        "Page": _object(
            {"page": {"type": "integer", "minimum": 1, "description": "1 for the first"}}
            | ocr_fields,
            ("page", "width", "height", "words", "lines", "text"),
        ),
        "SequentialOcr": _either_shape(
            {
                "mode": {"type": "string", "enum": ["sequential"]},
                "timings_ms": _object(
                    {k: _number(minimum=0) for k in ("std", "str", "total")},
                    ("std", "str", "total"),
                ),
            },
            ocr_fields,
        ),
        "BatchedOcr": _either_shape(
            {
                "mode": {"type": "string", "enum": ["batched"]},
                "timings_ms": _object(
                    {k: _number(minimum=0) for k in ("std", "str", "queue_wait", "total")},
                    ("std", "str", "queue_wait", "total"),
                ),
                "batches": _array(
                    _object(
                        {"id": {"type": "string"}, "size": {"type": "integer", "minimum": 1}},
                        ("id", "size"),
                    )
                ),
            },
            ocr_fields,
        ),
        "BatchOcr": _object(
            {
                "results": _array(
                    ref("schemas", "BatchedOcr"),
                    maxItems=MAX_IMAGES_PER_BATCH,
                    description="one /pipeline answer per file, in input order",
                )
            },
            ("results",),
        ),
        "Job": _object(
            {
                "id": {"type": "string"},
                "status": {"type": "string", "enum": list(JOB_STATUSES)},
                "pages_total": {"type": "integer", "minimum": 1},
                "pages_done": {"type": "integer", "minimum": 0},
                "pages_failed": {"type": "integer", "minimum": 0},
                "errors": _array(
                    _object(
                        {
                            "page": {"type": "integer", "minimum": 1},
                            "code": {"type": "string"},
                            "message": {"type": "string"},
                        },
                        ("page", "code", "message"),
                    ),
                    description="the pages that failed, each with its error",
                ),
                "created_at": {"type": "string", "format": "date-time"},
                "updated_at": {"type": "string", "format": "date-time"},
                "expires_at": {"type": "string", "format": "date-time"},
            },
            (
                "id",
                "status",
                "pages_total",
                "pages_done",
                "pages_failed",
                "errors",
                "created_at",
                "updated_at",
                "expires_at",
            ),
        ),
        "JobList": _object(
            {"jobs": _array(ref("schemas", "Job"), description="newest first")}, ("jobs",)
        ),
        "JobResult": _object(
            {
                "id": {"type": "string"},
                "status": {"type": "string", "enum": ["done"]},
                "pages": _array(
                    {
                        "oneOf": [
                            ref("schemas", "Page"),
                            _object(
                                {
                                    "page": {"type": "integer", "minimum": 1},
                                    "error": _object(
                                        {"code": {"type": "string"}, "message": {"type": "string"}},
                                        ("code", "message"),
                                    ),
                                },
                                ("page", "error"),
                            ),
                        ]
                    },
                    description="every page of the job in order: read, or its error",
                ),
                "text": {"type": "string", "description": "the pages' texts, form-feed separated"},
            },
            ("id", "status", "pages", "text"),
        ),
        "Health": _object({"status": {"type": "string", "enum": ["ok"]}}, ("status",)),
        "Readiness": _object(
            {
                "ready": {"type": "boolean"},
                "defaults": ref("schemas", "DetectionParameters"),
            },
            ("ready",),
            description="std adds its model facts, str its model, the pipeline its mode and "
            "the state of its models or upstreams",
        ),
    }


def _either_shape(answer: dict[str, Schema], page_fields: dict[str, Schema]) -> Schema:
    """An OCR answer: a single image's page fields at the top level, or a document's pages."""
    required = tuple(answer)
    image = _object(answer | page_fields, (*required, *page_fields))
    document = _object(
        answer
        | {
            "pages": _array(ref("schemas", "Page"), minItems=1),
            "text": {"type": "string", "description": "the pages' texts, form-feed separated"},
        },
        (*required, "pages", "text"),
    )
    return {
        "oneOf": [image, document],
        "description": "an image answers its page's fields; a PDF or a multi-page TIFF "
        "(whatever its page count) answers pages, each with its number, and the whole text",
    }


def _detection_properties() -> dict[str, Schema]:
    names = (
        "CanvasSize",
        "MagRatio",
        "TextThreshold",
        "LinkThreshold",
        "LowText",
        "Poly",
        "TextHeight",
        "LoneGlyphs",
    )
    fields = (
        "canvas_size",
        "mag_ratio",
        "text_threshold",
        "link_threshold",
        "low_text",
        "poly",
        "text_height",
        "lone_glyphs",
    )
    return {field: ref("schemas", name) for field, name in zip(fields, names, strict=True)}


def component_parameters() -> dict[str, Schema]:
    """Detection parameters in the query string, and the optional request deadline."""
    params: dict[str, Schema] = {
        field: {"name": field, "in": "query", "required": False, "schema": schema}
        for field, schema in _detection_properties().items()
    }
    params["Format"] = {
        "name": "format",
        "in": "query",
        "required": False,
        "schema": ref("schemas", "Format"),
    }
    params["Deadline"] = {
        "name": "X-OCR-Deadline",
        "in": "header",
        "required": False,
        "description": "the caller's deadline in epoch milliseconds (optional); it can only "
        "shorten OCR_TIMEOUT_S. Past it the service drops the request and answers 504 timeout; "
        "a value that is not a positive number is 400 invalid_parameter",
        "schema": {"type": "integer", "format": "int64", "minimum": 1},
    }
    return params


def error_response(status: int, codes: tuple[str, ...]) -> Schema:
    """An error answer whose code is one of ``codes``."""
    narrowed = {"properties": {"error": {"properties": {"code": {"enum": list(codes)}}}}}
    response: Schema = {
        "description": STATUS_TEXT[status],
        "content": {JSON: {"schema": {"allOf": [ref("schemas", "Error"), narrowed]}}},
    }
    if status == 503:
        response["headers"] = {
            "Retry-After": {
                "description": "seconds to wait before retrying (sent with overloaded)",
                "schema": {"type": "integer", "minimum": 0},
            }
        }
    return response


def component_responses() -> dict[str, Schema]:
    return {
        "NotFound": error_response(404, ("not_found",)),
        "MethodNotAllowed": error_response(405, ("method_not_allowed",)),
        "Unauthorized": error_response(401, ("unauthorized",)),
        "UrlTooLong": error_response(414, ("url_too_long",)),
        "HeadersTooLarge": error_response(431, ("headers_too_large",)),
        "NotImplemented": error_response(501, ("not_implemented",)),
    }


def merge(*tables: Codes) -> Codes:
    """Error tables joined status by status, each status keeping every code it may carry."""
    out: dict[int, list[str]] = {}
    for table in tables:
        for status, codes in table.items():
            known = out.setdefault(status, [])
            known.extend(code for code in codes if code not in known)
    return {status: tuple(codes) for status, codes in out.items()}


def _ok(schema_name: str, description: str) -> Schema:
    return {"description": description, "content": {JSON: {"schema": ref("schemas", schema_name)}}}


def _ok_or_export(schema_name: str, description: str) -> Schema:
    """The JSON answer, or with ``format`` the same result as text, hOCR or a PDF."""
    ok = _ok(schema_name, description + "; with format=txt|hocr|pdf the same result in that form")
    text = {"type": "string"}
    ok["content"] |= {
        "text/plain": {"schema": text},
        "application/xhtml+xml": {"schema": text},
        "application/pdf": {"schema": {"type": "string", "format": "binary"}},
    }
    return ok


def _responses(ok: Schema, errors: Codes) -> dict[str, Schema]:
    out = {"200": ok}
    for status in sorted(errors):
        if status in NAMED_RESPONSES:
            out[str(status)] = ref("responses", NAMED_RESPONSES[status])
        else:
            out[str(status)] = error_response(status, errors[status])
    return out


def _body(multipart: Schema, json_schema: Schema, example: Schema) -> Schema:
    return {
        "required": True,
        "content": {
            MULTIPART: {"schema": multipart},
            JSON: {"schema": json_schema, "example": example},
        },
    }


def _image_body(field: str = "image", many: bool = False, exports: bool = False) -> Schema:
    """An image (or up to 32 under ``images``) plus detection parameters, in either encoding;
    ``exports`` adds the answer's ``format``."""
    params = _detection_properties()
    if exports:
        params = params | {"format": ref("schemas", "Format")}
    if many:
        limits = {"minItems": 1, "maxItems": MAX_IMAGES_PER_BATCH}
        upload = _array({"type": "string", "format": "binary"}, **limits)
        encoded = _array({"type": "string", "format": "byte"}, **limits)
        example: Any = [EXAMPLE_PNG_B64]
    else:
        upload = {"type": "string", "format": "binary"}
        encoded = {"type": "string", "format": "byte", "description": "base64, data: URL allowed"}
        example = EXAMPLE_PNG_B64
    if exports:
        kinds = "PNG, JPEG, TIFF, WebP or BMP images, PDFs and multi-page TIFFs"
        upload, encoded = (schema | {"description": kinds} for schema in (upload, encoded))
    return _body(
        _object({field: upload} | params, (field,)),
        _object({field: encoded} | params, (field,)),
        {field: example, "canvas_size": 256},
    )


def _recognition_body() -> Schema:
    """Either an image plus quads to cut out, or ready word images."""
    crops_upload = _array({"type": "string", "format": "binary"}, minItems=1)
    crops_encoded = _array({"type": "string", "format": "byte"}, minItems=1)
    multipart = _object(
        {
            "image": {"type": "string", "format": "binary"},
            "boxes": {"type": "string", "description": "JSON text: a list of quads"},
            "crops": crops_upload,
        },
        description="send image with boxes, or crops (greyscale word images)",
    )
    json_schema = _object(
        {
            "image": {"type": "string", "format": "byte"},
            "boxes": _array(ref("schemas", "Quad")),
            "crops": crops_encoded,
        },
        description="send image with boxes, or crops (base64 word images)",
    )
    return _body(multipart, json_schema, {"image": EXAMPLE_PNG_B64, "boxes": [EXAMPLE_QUAD]})


def _query_and_deadline(detection: bool, exports: bool = False) -> list[Schema]:
    names = list(_detection_properties()) if detection else []
    names += ["Format"] if exports else []
    return [ref("parameters", name) for name in names] + [ref("parameters", "Deadline")]


def model_operations(service: str) -> dict[str, Schema]:
    """The POST operations ``service`` serves, with every status and error code they answer."""
    common = merge(FRONT, UNAUTHORIZED, BODY_ERRORS)
    upstream = UPSTREAM if service == "pipeline" else {}
    detection_errors = merge(common, {400: IMAGE_400}, OVER_BUDGET, upstream)
    ocr_errors = merge(common, {400: IMAGE_400}, OVER_BUDGET, UPSTREAM, DOCUMENT_ERRORS)
    specs = {
        "/detection": (
            "detect",
            "Find the words in an image (CRAFT)",
            _image_body(),
            _ok("Detection", "word boxes in reading order"),
            detection_errors,
            True,
        ),
        "/recognition": (
            "recognize",
            "Read word images, or the quads of one image (DTRB)",
            _recognition_body(),
            _ok("Recognition", "one reading per box or crop, in input order"),
            merge(common, {400: RECOGNITION_400}, upstream),
            False,
        ),
        "/ocr": (
            "ocrSequential",
            "Detect, then read each word on its own (the sequential baseline)",
            _image_body(exports=True),
            _ok_or_export("SequentialOcr", "words, lines and text"),
            ocr_errors,
            True,
        ),
        "/pipeline": (
            "ocrBatched",
            "Detect, then read the words in batches shared with other requests",
            _image_body(exports=True),
            _ok_or_export("BatchedOcr", "words, lines, text and the batches that read them"),
            ocr_errors,
            True,
        ),
        "/batch_ocr": (
            "ocrMany",
            f"Up to {MAX_IMAGES_PER_BATCH} images through the batched path",
            _image_body("images", many=True, exports=True),
            _ok_or_export("BatchOcr", "one /pipeline answer per file, same order"),
            ocr_errors,
            True,
        ),
    }
    out = {}
    for path in SERVICE_PATHS.get(service, ()):
        op_id, summary, body, ok, errors, detection = specs[path]
        out[path] = {
            "post": {
                "operationId": op_id,
                "summary": summary,
                "parameters": _query_and_deadline(detection, path in EXPORTING),
                "requestBody": body,
                "responses": _responses(ok, errors),
            }
        }
    return out


def job_operations() -> dict[str, Schema]:
    """The jobs API (jobs/routes.py): submit, list, follow, fetch, cancel."""
    common = merge(FRONT, UNAUTHORIZED)
    job_id = {
        "name": "job_id",
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
        "description": "the id POST /jobs answered",
    }
    key = {
        "name": "Idempotency-Key",
        "in": "header",
        "required": False,
        "description": "any 1 to 200 visible ASCII characters: the same key submits once, and "
        "answers the job it made (200) to every later request",
        "schema": {"type": "string", "minLength": 1, "maxLength": 200, "pattern": "^[!-~]+$"},
    }
    limit = {
        "name": "limit",
        "in": "query",
        "required": False,
        "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20},
    }
    body = _image_body("images", many=True)
    body["content"][MULTIPART]["schema"]["properties"]["images"].pop("maxItems")
    body["content"][JSON]["schema"]["properties"]["images"].pop("maxItems")
    accepted = _ok("Job", "the job, queued; its Location is GET /jobs/{id}")
    accepted["headers"] = {"Location": {"schema": {"type": "string"}}}
    replayed = _ok("Job", "the job this Idempotency-Key made before, as it is now")
    replayed["headers"] = accepted["headers"]
    submit_errors = merge(
        common,
        {400: (*IMAGE_400, *DOCUMENT_ERRORS[400])},
        {413: ("payload_too_large", "image_too_large", "too_many_pages")},
        {415: ("unsupported_media_type",), 422: ("encrypted_pdf",)},
    )
    submit = _responses(replayed, submit_errors) | {"202": accepted}
    found = merge(common, {404: ("not_found",)})
    return {
        "/jobs": {
            "post": {
                "operationId": "submitJob",
                "summary": "Submit images, PDFs and multi-page TIFFs as a job (up to "
                "OCR_JOBS_MAX_PAGES pages) with /pipeline's detection parameters",
                "parameters": [key],
                "requestBody": body,
                "responses": submit,
            },
            "get": {
                "operationId": "listJobs",
                "summary": "The most recent jobs",
                "parameters": [limit],
                "responses": _responses(
                    _ok("JobList", "newest first"), merge(common, {400: ("invalid_parameter",)})
                ),
            },
        },
        "/jobs/{job_id}": {
            "get": {
                "operationId": "getJob",
                "summary": "A job's status, pages read and per-page errors",
                "parameters": [job_id],
                "responses": _responses(_ok("Job", "the job now"), found),
            },
            "delete": {
                "operationId": "cancelJob",
                "summary": "Cancel a job that has not ended",
                "parameters": [job_id],
                "responses": _responses(
                    _ok("Job", "the job, cancelled"), merge(found, {409: ("job_finished",)})
                ),
            },
        },
        "/jobs/{job_id}/result": {
            "get": {
                "operationId": "getJobResult",
                "summary": "A done job's result as JSON, text, hOCR or a searchable PDF",
                "parameters": [job_id, ref("parameters", "Format")],
                "responses": _responses(
                    _ok_or_export("JobResult", "every page, read or failed"),
                    merge(
                        found,
                        {400: ("invalid_parameter",), 409: ("job_not_finished",)},
                    ),
                ),
            },
        },
    }


def open_operations() -> dict[str, Schema]:
    """Health, readiness, metrics and this document: no API key needed."""
    limits = FRONT
    ready = _ok("Readiness", "ready to serve")
    not_ready = _ok("Readiness", "not ready: a model, upstream or the broker is missing")
    readiness = _responses(ready, limits) | {"503": not_ready}
    metrics_ok = {
        "description": "Prometheus text exposition",
        "content": {"text/plain": {"schema": {"type": "string"}}},
    }
    document = {
        "description": "this OpenAPI document",
        "content": {JSON: {"schema": {"type": "object"}}},
    }

    def get(op_id: str, summary: str, responses: dict[str, Schema]) -> dict[str, Schema]:
        return {
            "get": {
                "operationId": op_id,
                "summary": summary,
                "security": [],
                "responses": responses,
            }
        }

    return {
        "/healthz": get("healthz", "Liveness", _responses(_ok("Health", "alive"), limits)),
        "/readyz": get("readyz", "Readiness", readiness),
        "/metrics": get("metrics", "Prometheus metrics", _responses(metrics_ok, limits)),
        "/openapi.json": get("openapi", "This description", _responses(document, limits)),
    }


def build_spec(service: str) -> Schema:
    """The whole OpenAPI document of ``service`` ("std", "str" or "pipeline")."""
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": TITLES.get(service, f"{service} service"),
            "version": API_VERSION,
            "description": 'Errors are {"error": {"code", "message"}}. Any path without '
            "an operation answers 404 not_found, any other method 405 method_not_allowed.",
        },
        "security": [{"ApiKey": []}, {}],
        "paths": model_operations(service)
        | (job_operations() if service == "pipeline" else {})
        | open_operations(),
        "components": {
            "schemas": component_schemas(),
            "parameters": component_parameters(),
            "responses": component_responses(),
            "securitySchemes": {
                "ApiKey": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-API-Key",
                    "description": "needed only when the service runs with OCR_API_KEY set",
                }
            },
        },
    }


def register_openapi(app: Flask, service: str) -> None:
    """Serve ``service``'s description at GET /openapi.json (built once, at start-up)."""
    spec = build_spec(service)

    def openapi() -> Response:
        return jsonify(spec)

    app.add_url_rule("/openapi.json", "openapi", openapi, methods=["GET"])

"""The OCR pipeline service: POST /ocr (sequential), /pipeline and /batch_ocr (batched).

Each answers JSON, or with ``format`` (form field, JSON field or query parameter) the same
result as text, hOCR or a searchable PDF (common/exports.py), one document for all its images.

Served by ``python -m common.server pipeline``.
OCR_MODE=embedded (the default) holds both models in this process; OCR_MODE=distributed talks
to std_service and str_service over HTTP and to the str workers through RabbitMQ.
"""

from __future__ import annotations

from collections.abc import Sequence

from flask import Flask, Request, Response, jsonify, request

from common.config import Settings
from common.errors import InvalidParameter
from common.exports import FORMATS, MEDIA_TYPES, export_document
from common.http import (
    add_health_routes,
    create_base_app,
    json_body,
    request_deadline,
    request_images,
    request_param,
    set_mode,
)
from common.params import DetectionParams, parse_fields
from common.results import OcrResult
from pipeline.topology import Topology, build_topology

IMAGE_FIELDS = frozenset({"image", "images"})
MAX_IMAGES_PER_BATCH = 32


def detection_params(req: Request, defaults: DetectionParams) -> DetectionParams:
    """The detection parameters among the request's fields (form or JSON) and query string,
    over the profile's ``defaults``."""
    if (req.mimetype or "") == "application/json":
        values = {k: v for k, v in json_body(req).items() if k not in IMAGE_FIELDS}
    else:
        values = {k: v for k, v in req.form.items() if k not in IMAGE_FIELDS}
    return parse_fields(
        DetectionParams, values | {k: v for k, v in req.args.items() if k not in values}, defaults
    )


def answer_format(req: Request) -> str:
    """The requested ``format`` (json by default); 400 invalid_parameter for any other."""
    value = request_param(req, "format")
    if value is None or value == "":
        return "json"
    if not isinstance(value, str) or value.strip().lower() not in FORMATS:
        raise InvalidParameter(f"format must be one of {', '.join(FORMATS)}, got {value!r}")
    return value.strip().lower()


def create_app(settings: Settings | None = None, topology: Topology | None = None) -> Flask:
    """Build the pipeline; pass ``topology`` to reuse loaded models or a client in tests."""
    settings = settings or Settings.from_env()
    topology = topology or build_topology(settings)
    app = create_base_app("pipeline", settings)
    add_health_routes(app, topology.readiness)
    topology.mount_model_routes(app)
    pipeline = topology.pipeline
    defaults = settings.profile.detection

    def one_image(mode: str) -> tuple[bytes, DetectionParams, float]:
        set_mode(mode)
        blob = request_images(request)[0]
        return blob, detection_params(request, defaults), request_deadline(settings)

    def exported(results: Sequence[OcrResult], blobs: Sequence[bytes], fmt: str) -> Response:
        """The results in a format other than JSON, as one document."""
        pages = [result.page for result in results]
        body = export_document(fmt, pages, lambda: [pipeline.decode(blob) for blob in blobs])
        response = Response(body, content_type=MEDIA_TYPES[fmt])
        if fmt == "pdf":
            response.headers["Content-Disposition"] = 'inline; filename="ocr.pdf"'
        return response

    @app.post("/ocr")
    def ocr():
        fmt = answer_format(request)
        blob, params, deadline = one_image("sequential")
        result = pipeline.ocr_sequential(blob, params, deadline)
        return jsonify(result.export()) if fmt == "json" else exported([result], [blob], fmt)

    @app.post("/pipeline")
    def batched():
        fmt = answer_format(request)
        blob, params, deadline = one_image("batched")
        result = pipeline.ocr_batched(blob, params, deadline)
        return jsonify(result.export()) if fmt == "json" else exported([result], [blob], fmt)

    @app.post("/batch_ocr")
    def batch_ocr():
        fmt = answer_format(request)
        set_mode("batched")
        blobs = request_images(request, field="images", many=True)
        if len(blobs) > MAX_IMAGES_PER_BATCH:
            raise InvalidParameter(
                f"{len(blobs)} images in one request; send at most {MAX_IMAGES_PER_BATCH}"
            )
        deadline = request_deadline(settings, images=len(blobs))
        results = pipeline.ocr_many(blobs, detection_params(request, defaults), deadline)
        if fmt != "json":
            return exported(results, blobs, fmt)
        return jsonify({"results": [result.export() for result in results]})

    return app

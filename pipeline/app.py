"""The OCR pipeline service: POST /ocr (sequential), /pipeline and /batch_ocr (batched).

Each takes images, PDFs and multi-page TIFFs (common/documents.py); a document answers page by
page (``pages``), a single image with today's top-level fields (common/results.OcrResult).
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
from common.documents import Document
from common.errors import InvalidParameter
from common.exports import MEDIA_TYPES, export_document
from common.http import (
    add_health_routes,
    create_base_app,
    json_body,
    request_deadline,
    request_format,
    request_images,
    set_mode,
)
from common.params import DetectionParams, parse_fields
from common.results import OcrResult
from jobs.routes import register_jobs
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


def create_app(settings: Settings | None = None, topology: Topology | None = None) -> Flask:
    """Build the pipeline; pass ``topology`` to reuse loaded models or a client in tests."""
    settings = settings or Settings.from_env()
    topology = topology or build_topology(settings)
    app = create_base_app("pipeline", settings)
    add_health_routes(app, topology.readiness)
    topology.mount_model_routes(app)
    register_jobs(app, topology.jobs, settings, lambda req: detection_params(req, defaults))
    pipeline = topology.pipeline
    defaults = settings.profile.detection

    def one_upload(mode: str) -> tuple[Document, DetectionParams, float]:
        """The request's image or document, opened into pages before any model work; its
        deadline gives OCR_TIMEOUT_S to each page."""
        set_mode(mode)
        document = pipeline.open(request_images(request)[0])
        params = detection_params(request, defaults)
        return document, params, request_deadline(settings, images=len(document.pages))

    def exported(results: Sequence[OcrResult], documents: Sequence[Document], fmt: str) -> Response:
        """The results in a format other than JSON, as one document of all their pages."""
        pages = [page for result in results for page in result.pages]
        images = [image for document in documents for image in document.pages]
        body = export_document(fmt, pages, lambda: images)
        response = Response(body, content_type=MEDIA_TYPES[fmt])
        if fmt == "pdf":
            response.headers["Content-Disposition"] = 'inline; filename="ocr.pdf"'
        return response

    @app.post("/ocr")
    def ocr():
        fmt = request_format(request)
        document, params, deadline = one_upload("sequential")
        result = pipeline.ocr_sequential(document, params, deadline)
        return jsonify(result.export()) if fmt == "json" else exported([result], [document], fmt)

    @app.post("/pipeline")
    def batched():
        fmt = request_format(request)
        document, params, deadline = one_upload("batched")
        result = pipeline.ocr_batched(document, params, deadline)
        return jsonify(result.export()) if fmt == "json" else exported([result], [document], fmt)

    @app.post("/batch_ocr")
    def batch_ocr():
        fmt = request_format(request)
        set_mode("batched")
        blobs = request_images(request, field="images", many=True)
        if len(blobs) > MAX_IMAGES_PER_BATCH:
            raise InvalidParameter(
                f"{len(blobs)} images in one request; send at most {MAX_IMAGES_PER_BATCH}"
            )
        documents = pipeline.open_all(blobs)
        deadline = request_deadline(settings, images=sum(len(d.pages) for d in documents))
        results = pipeline.ocr_many(documents, detection_params(request, defaults), deadline)
        if fmt != "json":
            return exported(results, documents, fmt)
        return jsonify({"results": [result.export() for result in results]})

    return app

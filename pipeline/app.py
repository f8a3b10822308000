"""The OCR pipeline service: POST /ocr (sequential), /pipeline and /batch_ocr (batched).

Served by ``python -m common.server pipeline``.
OCR_MODE=embedded (the default) holds both models in this process; OCR_MODE=distributed talks
to std_service and str_service over HTTP and to the str workers through RabbitMQ.
"""

from __future__ import annotations

from flask import Flask, Request, jsonify, request

from common.config import Settings
from common.errors import InvalidParameter
from common.http import (
    add_health_routes,
    create_base_app,
    json_body,
    request_deadline,
    request_images,
    set_mode,
)
from common.params import DetectionParams, parse_fields
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
    pipeline = topology.pipeline
    defaults = settings.profile.detection

    def one_image(mode: str) -> tuple[bytes, DetectionParams, float]:
        set_mode(mode)
        blob = request_images(request)[0]
        return blob, detection_params(request, defaults), request_deadline(settings)

    @app.post("/ocr")
    def ocr():
        blob, params, deadline = one_image("sequential")
        return jsonify(pipeline.ocr_sequential(blob, params, deadline).export())

    @app.post("/pipeline")
    def batched():
        blob, params, deadline = one_image("batched")
        return jsonify(pipeline.ocr_batched(blob, params, deadline).export())

    @app.post("/batch_ocr")
    def batch_ocr():
        set_mode("batched")
        blobs = request_images(request, field="images", many=True)
        if len(blobs) > MAX_IMAGES_PER_BATCH:
            raise InvalidParameter(
                f"{len(blobs)} images in one request; send at most {MAX_IMAGES_PER_BATCH}"
            )
        deadline = request_deadline(settings, images=len(blobs))
        results = pipeline.ocr_many(blobs, detection_params(request, defaults), deadline)
        return jsonify({"results": [result.export() for result in results]})

    return app

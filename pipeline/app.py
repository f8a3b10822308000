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
from pipeline.backends import Engine, build_engine

IMAGE_FIELDS = frozenset({"image", "images"})
MAX_IMAGES_PER_BATCH = 32


def detection_params(req: Request) -> dict[str, object]:
    """Every field besides the image(s) goes to detection, which validates what it knows."""
    if (req.mimetype or "") == "application/json":
        values = {k: v for k, v in json_body(req).items() if k not in IMAGE_FIELDS}
    else:
        values = {k: v for k, v in req.form.items() if k not in IMAGE_FIELDS}
    return values | {k: v for k, v in req.args.items() if k not in values}


def create_app(settings: Settings | None = None, engine: Engine | None = None) -> Flask:
    """Build the pipeline; pass ``engine`` to reuse loaded models or a client in tests."""
    settings = settings or Settings.from_env()
    engine = engine or build_engine(settings)
    app = create_base_app("pipeline", settings)
    app.extensions["ocr_engine"] = engine
    add_health_routes(app, engine.readiness)
    engine.mount_model_routes(app)
    pipeline = engine.pipeline

    @app.post("/ocr")
    def ocr():
        set_mode("sequential")
        blob = request_images(request)[0]
        deadline = request_deadline(settings)
        return jsonify(pipeline.ocr_sequential(blob, detection_params(request), deadline))

    @app.post("/pipeline")
    def batched():
        set_mode("batched")
        blob = request_images(request)[0]
        deadline = request_deadline(settings)
        return jsonify(pipeline.ocr_batched(blob, detection_params(request), deadline))

    @app.post("/batch_ocr")
    def batch_ocr():
        set_mode("batched")
        blobs = request_images(request, field="images", many=True)
        if len(blobs) > MAX_IMAGES_PER_BATCH:
            raise InvalidParameter(
                f"{len(blobs)} images in one request; send at most {MAX_IMAGES_PER_BATCH}"
            )
        deadline = request_deadline(settings, images=len(blobs))
        results = pipeline.ocr_many(blobs, detection_params(request), deadline)
        return jsonify({"results": results})

    return app

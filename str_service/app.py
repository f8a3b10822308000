"""The DTRB text-recognition service: POST /recognition.

Served by ``python -m common.server str``: one process, the model loaded once.
Clients send either an image plus ``boxes`` (quads to cut out) or ready ``crops`` (word images);
the answers come back in input order.
"""

from __future__ import annotations

import cv2
from flask import Flask, Request, jsonify, request

from common import metrics
from common.config import Settings
from common.errors import InvalidParameter, MissingImage, OcrError, PayloadTooLarge
from common.geometry import crop_quad, parse_quads
from common.http import (
    add_health_routes,
    create_base_app,
    json_body,
    request_deadline,
    request_images,
    request_json_param,
    require_body_type,
)
from common.images import decode_image
from common.models import FairLock, configure_threads
from str_service.recognizer import Recognizer


def load_recognizer(settings: Settings) -> Recognizer:
    """The configured recogniser on the configured device, torch threads set for this process."""
    configure_threads(settings.ocr_threads)
    return Recognizer.from_settings(settings)


def crops_from_request(req: Request, settings: Settings) -> list:
    """Greyscale word crops from ``image`` + ``boxes``, or from ``crops``; validated and limited."""
    media = require_body_type(req)
    has_crops = "crops" in json_body(req) if media == "application/json" else "crops" in req.files
    if has_crops:
        blobs = request_images(req, field="crops", many=True)
        _check_count(len(blobs), settings)
        crops = []
        for index, blob in enumerate(blobs):
            try:
                rgb = decode_image(blob, settings.ocr_max_pixels)
            except OcrError as exc:
                raise type(exc)(f"crop {index}: {exc.message}") from None
            crops.append(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
        return crops
    raw_boxes = request_json_param(req, "boxes")
    try:
        blob = request_images(req)[0]
    except MissingImage:
        raise MissingImage("send an image with 'boxes', or word images as 'crops'") from None
    if raw_boxes is None:
        raise InvalidParameter("send 'boxes' (a JSON list of quads) with the image")
    image = decode_image(blob, settings.ocr_max_pixels)
    height, width = image.shape[:2]
    quads = parse_quads(raw_boxes, width, height)
    _check_count(len(quads), settings)
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    return [crop_quad(gray, quad) for quad in quads]


def _check_count(count: int, settings: Settings) -> None:
    if count > settings.str_max_crops:
        raise PayloadTooLarge(
            f"{count} crops in one request; the limit is STR_MAX_CROPS={settings.str_max_crops}"
        )


def register_recognition(
    app: Flask, recognizer: Recognizer, settings: Settings, lock: FairLock | None = None
) -> None:
    """Add POST /recognition to ``app``; the embedded pipeline mounts the same handler.

    ``lock`` serialises forward passes; the embedded pipeline shares one lock between both models.
    The request's deadline bounds both the wait for the model and the read itself (checked
    between forward passes), so no request holds the model past it.
    """
    lock = lock or FairLock()

    @app.post("/recognition")
    def recognition():
        deadline = request_deadline(settings)
        crops = crops_from_request(request, settings)
        with lock.until(deadline, "the recognition model"):
            result = recognizer.recognize(crops, deadline=deadline)
        metrics.STR_SECONDS.observe(result.timings_ms.get("total", 0.0) / 1000.0)
        metrics.STR_CROPS.inc(len(crops))
        for size in result.batches:
            metrics.BATCH_SIZE.observe(size)
        return jsonify(
            {
                "results": [{"text": t, "confidence": c} for t, c in result.results],
                "batches": result.batches,
                "timings_ms": result.timings_ms,
                "model": recognizer.model_name,
            }
        )


def create_app(settings: Settings | None = None, recognizer: Recognizer | None = None) -> Flask:
    """Build the service; pass ``recognizer`` to share one loaded model between apps in tests."""
    settings = settings or Settings.from_env()
    recognizer = recognizer or load_recognizer(settings)
    app = create_base_app("str", settings)
    add_health_routes(app, lambda: (True, {"model": recognizer.model_name}))
    register_recognition(app, recognizer, settings)
    return app

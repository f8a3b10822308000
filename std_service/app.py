"""The CRAFT text-detection service: POST /detection.

Served by ``python -m common.server std``: one process, the model loaded once.
"""

from __future__ import annotations

from dataclasses import fields

from flask import Flask, jsonify, request

from common import metrics
from common.config import Settings
from common.http import (
    add_health_routes,
    create_base_app,
    request_deadline,
    request_images,
    request_param,
)
from common.images import decode_image
from common.models import FairLock, configure_threads
from std_service.detector import DetectionParams, Detector, check_detect_budget

PARAMETERS = tuple(f.name for f in fields(DetectionParams))


def load_detector(settings: Settings) -> Detector:
    """The CRAFT model on the configured device, with torch threads set for this process."""
    configure_threads(settings.ocr_threads)
    return Detector(settings.craft_weights, device=settings.ocr_device)


def register_detection(
    app: Flask, detector: Detector, settings: Settings, lock: FairLock | None = None
) -> None:
    """Add POST /detection to ``app``; the embedded pipeline mounts the same handler.

    ``lock`` serialises forward passes (threads would only fight over the cores); the embedded
    pipeline passes the one lock it shares between both models. A request that would cost more
    than OCR_MAX_DETECT_PIXELS is refused before any work, and one whose deadline passes while it
    waits for the model gives up (504) instead of running for a client that has left.
    """
    lock = lock or FairLock()

    @app.post("/detection")
    def detection():
        blob = request_images(request)[0]
        params = DetectionParams.from_mapping(
            {name: request_param(request, name) for name in PARAMETERS}
        )
        deadline = request_deadline(settings)
        image = decode_image(blob, settings.ocr_max_pixels)
        check_detect_budget(*image.shape[:2], params, settings.ocr_max_detect_pixels)
        with lock.until(deadline, "the detection model"):
            result = detector.detect(image, params)
        metrics.STD_SECONDS.observe(sum(result.timings_ms.values()) / 1000.0)
        metrics.BOXES_PER_DOCUMENT.observe(len(result.boxes))
        return jsonify(result.to_dict() | {"model": detector.model_name})


def create_app(settings: Settings | None = None, detector: Detector | None = None) -> Flask:
    """Build the service; pass ``detector`` to share one loaded model between apps in tests."""
    settings = settings or Settings.from_env()
    detector = detector or load_detector(settings)
    app = create_base_app("std", settings)
    add_health_routes(app, lambda: (True, detector.describe()))
    register_detection(app, detector, settings)
    return app

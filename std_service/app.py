"""The CRAFT text-detection service: POST /detection.

gunicorn entry point: ``gunicorn -c python:common.gunicorn_conf "std_service.app:create_app()"``.
The factory runs in each worker after fork, so every worker loads the model once, on its own
device.
"""

from __future__ import annotations

from dataclasses import fields

from flask import Flask, jsonify, request

from common import metrics
from common.config import Settings
from common.http import add_health_routes, create_base_app, request_images, request_param
from common.images import decode_image
from common.models import FairLock, configure_threads
from std_service.detector import DetectionParams, Detector

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
    pipeline passes the one lock it shares between both models.
    """
    lock = lock or FairLock()

    @app.post("/detection")
    def detection():
        blob = request_images(request)[0]
        params = DetectionParams.from_mapping(
            {name: request_param(request, name) for name in PARAMETERS}
        )
        image = decode_image(blob, settings.ocr_max_pixels)
        with lock:
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

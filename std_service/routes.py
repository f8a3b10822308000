"""POST /detection: the HTTP adapter of the CRAFT detector.

Mounted by std_service's app and by the embedded pipeline, which shares one model lock between
both models. Parsing, limits and the deadline live here; the detector sees arrays and typed
parameters only.
"""

from __future__ import annotations

from dataclasses import fields

from flask import Flask, jsonify, request

from common.config import Settings
from common.http import request_deadline, request_images, request_param
from common.images import decode_image
from common.models import FairLock
from common.params import DetectionParams, parse_fields
from std_service.detector import Detector
from std_service.preprocess import check_detect_budget

PARAMETERS = tuple(f.name for f in fields(DetectionParams))


def register_detection(
    app: Flask, detector: Detector, settings: Settings, lock: FairLock | None = None
) -> None:
    """Add POST /detection to ``app``.

    ``lock`` serialises forward passes (threads would only fight over the cores). A request that
    would cost more than OCR_MAX_DETECT_PIXELS is refused before any work, and one whose deadline
    passes while it waits for the model gives up (504) instead of running for a client that has
    left.
    """
    lock = lock or FairLock()

    @app.post("/detection")
    def detection():
        blob = request_images(request)[0]
        values = {name: request_param(request, name) for name in PARAMETERS}
        params = parse_fields(DetectionParams, values, settings.profile.detection)
        deadline = request_deadline(settings)
        image = decode_image(blob, settings.ocr_max_pixels)
        check_detect_budget(*image.shape[:2], params, settings.ocr_max_detect_pixels)
        with lock.until(deadline, "the detection model"):
            result = detector.detect(image, params)
        return jsonify(result.export() | {"model": detector.model_name})

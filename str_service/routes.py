"""POST /recognition: the HTTP adapter of the recogniser.

Mounted by str_service's app and by the embedded pipeline, which shares one model lock between
both models. Clients send either an image plus ``boxes`` (quads to cut out) or ready ``crops``
(word images); the readings come back in input order.
"""

from __future__ import annotations

import cv2
import numpy as np
from flask import Flask, Request, jsonify, request

from common.config import Settings
from common.errors import InvalidParameter, MissingImage, OcrError, PayloadTooLarge
from common.geometry import crop_quad, parse_quads
from common.http import (
    json_body,
    request_deadline,
    request_images,
    request_json_param,
    require_body_type,
)
from common.images import decode_image
from common.models import FairLock
from str_service.recognizer import Recognizer


def crops_from_request(req: Request, settings: Settings) -> list[np.ndarray]:
    """Greyscale word crops from ``image`` + ``boxes``, or from ``crops``; validated and limited."""
    media = require_body_type(req)
    has_crops = "crops" in json_body(req) if media == "application/json" else "crops" in req.files
    if has_crops:
        blobs = request_images(req, field="crops", many=True)
        _check_count(len(blobs), settings)
        crops = []
        for index, blob in enumerate(blobs):
            try:
                crops.append(decode_image(blob, settings.ocr_max_pixels, gray=True))
            except OcrError as exc:
                raise type(exc)(f"crop {index}: {exc.message}") from None
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
    """Add POST /recognition to ``app``.

    ``lock`` serialises forward passes. The request's deadline bounds both the wait for the model
    and the read itself (checked between forward passes), so no request holds the model past it.
    ``forward_passes`` in the answer lists the size of each network call the read took (crops
    of one padded width share one; low-confidence crops are read again after a contrast
    stretch); these are not bucket batches, which only the batched pipeline forms.
    """
    lock = lock or FairLock()

    @app.post("/recognition")
    def recognition():
        deadline = request_deadline(settings)
        crops = crops_from_request(request, settings)
        with lock.until(deadline, "the recognition model"):
            result = recognizer.recognize(crops, deadline=deadline)
        return jsonify(
            {
                "results": [{"text": t, "confidence": c} for t, c in result.results],
                "forward_passes": result.forward_passes,
                "timings_ms": result.timings_ms,
                "model": recognizer.model_name,
            }
        )

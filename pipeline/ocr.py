"""OCR orchestration: detection, crops, recognition (sequential or batched), layout.

The same ``OcrPipeline`` serves every topology; only its three backends change:
embedded (models in this process, the in-process bucket) or distributed (std and str over HTTP,
the bucket in the str workers behind RabbitMQ).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

from common.config import Settings
from common.errors import Timeout
from common.geometry import crop_quad
from common.images import decode_image
from common.layout import layout
from pipeline.broker import BatchedReading


class DetectionBackend(Protocol):
    def detect(self, blob: bytes, image: np.ndarray, params: Mapping[str, object]) -> dict:
        """The /detection answer (``boxes: [{quad, score}]`` in reading order, ...)."""


class SequentialReader(Protocol):
    def read_one(self, crop: np.ndarray, timeout_s: float) -> tuple[str, float]:
        """Recognise one greyscale crop on its own."""


class BatchReader(Protocol):
    def read(self, crops: Sequence[np.ndarray], timeout_s: float) -> BatchedReading:
        """Recognise crops through the bucket, batched with other requests' crops."""


@dataclass
class Document:
    """One decoded, detected and cropped image, ready for recognition."""

    detection: dict
    crops: list[np.ndarray]
    std_ms: float
    started: float


def _ms(since: float) -> float:
    return (time.perf_counter() - since) * 1000.0


class OcrPipeline:
    """Turns image bytes into words, lines and text, in the answer shape of the HTTP contract."""

    def __init__(
        self,
        settings: Settings,
        detector: DetectionBackend,
        sequential: SequentialReader,
        batched: BatchReader,
    ) -> None:
        self.settings = settings
        self.detector = detector
        self.sequential = sequential
        self.batched = batched

    def decode(self, blob: bytes) -> np.ndarray:
        return decode_image(blob, self.settings.ocr_max_pixels)

    def prepare(self, blob: bytes, image: np.ndarray, params: Mapping[str, object]) -> Document:
        """Detect the words and cut them out of the greyscale image."""
        started = time.perf_counter()
        detection = self.detector.detect(blob, image, params)
        std_ms = _ms(started)
        gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        crops = [crop_quad(gray, np.asarray(box["quad"])) for box in detection["boxes"]]
        return Document(detection, crops, std_ms, started)

    def ocr_sequential(self, blob: bytes, params: Mapping[str, object]) -> dict:
        """The baseline: one recognition call per box, in reading order."""
        document = self.prepare(blob, self.decode(blob), params)
        deadline = document.started + self.settings.ocr_timeout_s
        t0 = time.perf_counter()
        readings = []
        for crop in document.crops:
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                raise Timeout(
                    f"OCR did not finish within OCR_TIMEOUT_S={self.settings.ocr_timeout_s:g}s "
                    f"({len(readings)} of {len(document.crops)} boxes read)"
                )
            readings.append(self.sequential.read_one(crop, remaining))
        timings = {"std": document.std_ms, "str": _ms(t0), "total": _ms(document.started)}
        return _answer("sequential", document.detection, readings, timings)

    def ocr_batched(self, blob: bytes, params: Mapping[str, object]) -> dict:
        """Every crop goes to the bucket, where it shares batches with other requests' crops."""
        document = self.prepare(blob, self.decode(blob), params)
        return self._batched(document, document.started + self.settings.ocr_timeout_s)

    def ocr_many(self, blobs: Sequence[bytes], params: Mapping[str, object]) -> list[dict]:
        """Several images through the batched path; answers in input order.

        Every image is decoded first, so a bad one fails the request before any work is done;
        then the images run side by side, so one image's crops wait in the bucket while the next
        one is being detected. The request gets OCR_TIMEOUT_S for each of its images.
        """
        deadline = time.perf_counter() + self.settings.ocr_timeout_s * len(blobs)
        images = [self.decode(blob) for blob in blobs]

        def one(blob: bytes, image: np.ndarray) -> dict:
            return self._batched(self.prepare(blob, image, params), deadline)

        with ThreadPoolExecutor(max_workers=min(8, len(blobs)) or 1) as pool:
            futures = [pool.submit(one, b, i) for b, i in zip(blobs, images, strict=True)]
            return [future.result() for future in futures]

    def _batched(self, document: Document, deadline: float) -> dict:
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            raise Timeout(
                f"OCR did not finish within its budget (OCR_TIMEOUT_S="
                f"{self.settings.ocr_timeout_s:g}s per image): detection alone took it"
            )
        reading = self.batched.read(document.crops, remaining)
        timings = {
            "std": document.std_ms,
            "str": reading.str_ms,
            "queue_wait": reading.queue_wait_ms,
            "total": _ms(document.started),
        }
        answer = _answer("batched", document.detection, reading.results, timings)
        answer["batches"] = reading.batches
        return answer


def _answer(
    mode: str, detection: dict, readings: Sequence[tuple[str, float]], timings: dict
) -> dict:
    words = [
        {
            "quad": box["quad"],
            "text": text,
            "confidence": confidence,
            "det_score": box["score"],
        }
        for box, (text, confidence) in zip(detection["boxes"], readings, strict=True)
    ]
    lines, text = layout(words)
    return {
        "mode": mode,
        "width": detection["width"],
        "height": detection["height"],
        "words": words,
        "lines": lines,
        "text": text,
        "timings_ms": {key: round(value, 2) for key, value in timings.items()},
    }

"""OCR orchestration: detection, crops, recognition (sequential or batched), the page.

The same ``OcrPipeline`` serves every topology; only its three backends change: embedded
(``pipeline.embedded``: models in this process, the in-process bucket) or distributed
(``pipeline.distributed``: std and str over HTTP, the bucket in the str workers behind RabbitMQ).
It takes image bytes and typed parameters and returns typed ``OcrResult``s; the caller exports.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

from common.config import Settings
from common.errors import Overloaded, Timeout
from common.geometry import crop_quad
from common.images import decode_image
from common.layout import build_page
from common.params import DetectionParams
from common.profiles import Profile
from common.results import Detection, OcrResult, Reading
from common.segments import reading_segments, segment_quad
from pipeline.reading import BatchedReading


class DetectionBackend(Protocol):
    def detect(
        self, blob: bytes, image: np.ndarray, params: DetectionParams, deadline: float
    ) -> Detection:
        """The words' boxes in reading order, grouped into lines; Timeout if ``deadline``
        (epoch seconds) passes before the model is reached. ``blob`` is the image as sent, for
        a backend that sends it on rather than the decoded ``image``."""


class SequentialReader(Protocol):
    def read_one(self, crop: np.ndarray, deadline: float) -> Reading:
        """Recognise one greyscale crop on its own, by ``deadline`` (epoch seconds)."""


class BatchReader(Protocol):
    def read(self, crops: Sequence[np.ndarray], timeout_s: float) -> BatchedReading:
        """Recognise crops through the bucket, batched with other requests' crops."""

    def queued_crops(self) -> int:
        """Crops waiting for recognition (the bucket's, or the crops queue's last known)."""


@dataclass
class DetectedImage:
    """One decoded, detected and cropped image, ready for recognition."""

    detection: Detection
    segments: tuple[tuple[int, ...], ...]  # the reading units: runs of box indices (segments.py)
    crops: list[np.ndarray]  # one per segment
    std_ms: float
    started: float


def _ms(since: float) -> float:
    return (time.perf_counter() - since) * 1000.0


class OcrPipeline:
    """Turns image bytes into typed pages: words, lines and text, and how they were read."""

    def __init__(
        self,
        settings: Settings,
        detector: DetectionBackend,
        sequential: SequentialReader,
        batched: BatchReader,
        profile: Profile | None = None,
    ) -> None:
        """``profile`` (default: OCR_PROFILE's) sets the detection defaults and reading units."""
        self.settings = settings
        self.profile = profile or settings.profile
        self.detector = detector
        self.sequential = sequential
        self.batched = batched

    def decode(self, blob: bytes) -> np.ndarray:
        return decode_image(blob, self.settings.ocr_max_pixels)

    def deadline(self) -> float:
        """A deadline for work that brings none (the CLI): now + OCR_TIMEOUT_S, epoch seconds."""
        return time.time() + self.settings.ocr_timeout_s

    def prepare(
        self,
        blob: bytes,
        image: np.ndarray,
        params: DetectionParams | None = None,
        deadline: float | None = None,
    ) -> DetectedImage:
        """Detect the words, group them into the profile's reading units (neighbouring words of
        a line read as one crop) and cut those out of the greyscale image."""
        started = time.perf_counter()
        deadline = self.deadline() if deadline is None else deadline
        params = params or self.profile.detection
        detection = self.detector.detect(blob, image, params, deadline)
        std_ms = _ms(started)
        gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        profile = self.profile
        quads = [box.quad for box in detection.boxes]
        segments = reading_segments(quads, detection.lines, profile.segment_gap)
        size = (gray.shape[1], gray.shape[0])
        margin = profile.segment_margin
        crops = [
            crop_quad(gray, np.asarray(segment_quad([quads[i] for i in s], margin, size)))
            for s in segments
        ]
        return DetectedImage(detection, segments, crops, std_ms, started)

    def ocr_sequential(
        self, blob: bytes, params: DetectionParams | None = None, deadline: float | None = None
    ) -> OcrResult:
        """The baseline: one recognition call per box, in reading order.

        ``deadline`` (epoch seconds) is the request's: arrival + OCR_TIMEOUT_S by default.
        """
        deadline = self.deadline() if deadline is None else deadline
        document = self.prepare(blob, self.decode(blob), params, deadline)
        t0 = time.perf_counter()
        readings = []
        for crop in document.crops:
            if time.time() >= deadline:
                raise Timeout(
                    f"OCR did not finish by the request's deadline (OCR_TIMEOUT_S="
                    f"{self.settings.ocr_timeout_s:g}s or X-OCR-Deadline; "
                    f"{len(readings)} of {len(document.crops)} boxes read)"
                )
            readings.append(self.sequential.read_one(crop, deadline))
        timings = {"std": document.std_ms, "str": _ms(t0), "total": _ms(document.started)}
        page = build_page(document.detection, readings, document.segments)
        return OcrResult("sequential", page, timings)

    def ocr_batched(
        self, blob: bytes, params: DetectionParams | None = None, deadline: float | None = None
    ) -> OcrResult:
        """Every crop goes to the bucket, where it shares batches with other requests' crops."""
        deadline = self.deadline() if deadline is None else deadline
        self._check_queue()
        document = self.prepare(blob, self.decode(blob), params, deadline)
        return self._batched([document], deadline)[0]

    def ocr_many(
        self,
        blobs: Sequence[bytes],
        params: DetectionParams | None = None,
        deadline: float | None = None,
    ) -> list[OcrResult]:
        """Several images through the batched path, their crops in one read; answers in order.

        Every image is decoded first, so a bad one fails the request before any work is done;
        then every image is detected (side by side), and only then do all the request's crops
        go to the bucket together, so the images share batches instead of the first image's
        crops flushing on their own while the next image is still being detected. All images
        share ``deadline``, which gives OCR_TIMEOUT_S for each image (the HTTP layer sets it
        that way; without one, the clock starts now).

        Each image's answer has the /pipeline fields, with these meanings for a /batch_ocr:
        ``batches`` lists the batches that carried the request's crops (the same list for every
        image: one batch may hold crops of several images); ``timings_ms.std`` is that image's
        own detection, ``str`` and ``queue_wait`` are those of the shared read, and ``total``
        runs from the start of that image's detection to the end of the shared read.
        """
        if deadline is None:
            deadline = time.time() + self.settings.ocr_timeout_s * max(1, len(blobs))
        self._check_queue()
        images = [self.decode(blob) for blob in blobs]
        pool = ThreadPoolExecutor(max_workers=min(8, len(blobs)) or 1)
        try:
            futures = [
                pool.submit(self.prepare, blob, image, params, deadline)
                for blob, image in zip(blobs, images, strict=True)
            ]
            documents = [future.result() for future in futures]
        finally:
            pool.shutdown(wait=True, cancel_futures=True)  # a failed image stops the rest
        return self._batched(documents, deadline)

    def _check_queue(self) -> None:
        """Refuse batched work (503) while more crops wait than STR_MAX_QUEUED_CROPS: the
        bucket or the workers are behind, and more crops would only wait out their deadline."""
        queued = self.batched.queued_crops()
        if queued > self.settings.str_max_queued_crops:
            raise Overloaded(
                f"{queued} crops are waiting for recognition (STR_MAX_QUEUED_CROPS="
                f"{self.settings.str_max_queued_crops}); retry shortly",
                retry_after_s=2,
            )

    def _batched(self, documents: Sequence[DetectedImage], deadline: float) -> list[OcrResult]:
        """Read the crops of all ``documents`` in one bucket read; one answer per document."""
        remaining = deadline - time.time()
        if remaining <= 0:
            raise Timeout(
                f"OCR did not finish by the request's deadline (OCR_TIMEOUT_S="
                f"{self.settings.ocr_timeout_s:g}s or X-OCR-Deadline): detection alone took it"
            )
        crops = [crop for document in documents for crop in document.crops]
        reading = self.batched.read(crops, remaining)
        results = []
        start = 0
        for document in documents:
            end = start + len(document.crops)
            timings = {
                "std": document.std_ms,
                "str": reading.str_ms,
                "queue_wait": reading.queue_wait_ms,
                "total": _ms(document.started),
            }
            page = build_page(document.detection, reading.results[start:end], document.segments)
            results.append(OcrResult("batched", page, timings, tuple(reading.batches)))
            start = end
        return results

"""OCR orchestration: pages, detection, crops, recognition (sequential or batched), the pages.

The same ``OcrPipeline`` serves every topology; only its three backends change: embedded
(``pipeline.embedded``: models in this process, the in-process bucket) or distributed
(``pipeline.distributed``: std and str over HTTP, the bucket in the str workers behind RabbitMQ).
It takes uploads (image, PDF or TIFF bytes) and typed parameters and returns typed
``OcrResult``s; the caller exports.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Protocol

import cv2
import numpy as np

from common.config import Settings
from common.documents import Document, PageImage, open_document
from common.errors import Overloaded, Timeout, TooManyPages
from common.geometry import crop_quad
from common.layout import build_page
from common.params import DetectionParams
from common.profiles import Profile
from common.results import Detection, OcrResult, Reading
from common.segments import reading_segments, segment_quad
from pipeline.reading import BatchedReading


class DetectionBackend(Protocol):
    def detect(self, page: PageImage, params: DetectionParams, deadline: float) -> Detection:
        """The words' boxes in reading order, grouped into lines; Timeout if ``deadline``
        (epoch seconds) passes before the model is reached. A backend in process reads
        ``page.image``; one that sends the page on sends ``page.encoded()``."""


class SequentialReader(Protocol):
    def read_one(self, crop: np.ndarray, deadline: float) -> Reading:
        """Recognise one greyscale crop on its own, by ``deadline`` (epoch seconds)."""


class BatchReader(Protocol):
    def read(self, crops: Sequence[np.ndarray], timeout_s: float) -> BatchedReading:
        """Recognise crops through the bucket, batched with other requests' crops."""

    def queued_crops(self) -> int:
        """Crops waiting for recognition (the bucket's, or the crops queue's last known)."""


Upload = bytes | Document  # what a client sent, or it already opened (``OcrPipeline.open``)


@dataclass
class DetectedImage:
    """One detected and cropped page, ready for recognition."""

    detection: Detection
    segments: tuple[tuple[int, ...], ...]  # the reading units: runs of box indices (segments.py)
    crops: list[np.ndarray]  # one per segment
    std_ms: float
    started: float


def _ms(since: float) -> float:
    return (time.perf_counter() - since) * 1000.0


class OcrPipeline:
    """Turns uploads (images, PDFs, multi-page TIFFs) into typed pages: words, lines and text,
    and how they were read."""

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

    def open(self, upload: Upload) -> Document:
        """The upload's pages, within OCR_MAX_PIXELS, OCR_MAX_PAGES and OCR_PDF_DPI."""
        if isinstance(upload, Document):
            return upload
        return open_document(upload, self.settings.document_limits)

    def open_all(self, uploads: Sequence[Upload]) -> list[Document]:
        """Every upload's pages, at most OCR_MAX_PAGES of them together: each file may only
        have the pages the files before it left, so a file over the count is refused before
        a page of it is rendered."""
        limits = self.settings.document_limits
        too_many = TooManyPages(
            f"the request's {len(uploads)} files have more than {limits.max_pages} pages "
            "together (OCR_MAX_PAGES)"
        )
        documents: list[Document] = []
        left = limits.max_pages
        for upload in uploads:
            if left < 1:
                raise too_many
            try:
                document = (
                    upload
                    if isinstance(upload, Document)
                    else open_document(upload, replace(limits, max_pages=left))
                )
            except TooManyPages:
                if len(uploads) == 1:
                    raise
                raise too_many from None
            if len(document.pages) > left:
                raise too_many
            left -= len(document.pages)
            documents.append(document)
        return documents

    def deadline(self, pages: int = 1) -> float:
        """A deadline for work that brings none (the CLI): now + OCR_TIMEOUT_S for each page,
        epoch seconds."""
        return time.time() + self.settings.ocr_timeout_s * max(1, pages)

    def prepare(
        self, page: PageImage, params: DetectionParams | None = None, deadline: float | None = None
    ) -> DetectedImage:
        """Detect the words, group them into the profile's reading units (neighbouring words of
        a line read as one crop) and cut those out of the greyscale page."""
        started = time.perf_counter()
        deadline = self.deadline() if deadline is None else deadline
        params = params or self.profile.detection
        detection = self.detector.detect(page, params, deadline)
        std_ms = _ms(started)
        gray = cv2.cvtColor(page.image, cv2.COLOR_RGB2GRAY)
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
        self, upload: Upload, params: DetectionParams | None = None, deadline: float | None = None
    ) -> OcrResult:
        """The baseline: one recognition call per box, in reading order, page after page.

        ``deadline`` (epoch seconds) is the request's: arrival + OCR_TIMEOUT_S per page by
        default.
        """
        document = self.open(upload)
        deadline = self.deadline(len(document.pages)) if deadline is None else deadline
        started = time.perf_counter()
        pages, std_ms, str_ms = [], 0.0, 0.0
        for image in document.pages:
            detected = self.prepare(image, params, deadline)
            std_ms += detected.std_ms
            t0 = time.perf_counter()
            readings = []
            for crop in detected.crops:
                if time.time() >= deadline:
                    raise Timeout(
                        f"OCR did not finish by the request's deadline (OCR_TIMEOUT_S="
                        f"{self.settings.ocr_timeout_s:g}s or X-OCR-Deadline; "
                        f"{len(readings)} of {len(detected.crops)} boxes of page "
                        f"{len(pages) + 1} read)"
                    )
                readings.append(self.sequential.read_one(crop, deadline))
            str_ms += _ms(t0)
            pages.append(build_page(detected.detection, readings, detected.segments))
        timings = {"std": std_ms, "str": str_ms, "total": _ms(started)}
        return OcrResult("sequential", tuple(pages), timings, paged=document.paged)

    def ocr_batched(
        self, upload: Upload, params: DetectionParams | None = None, deadline: float | None = None
    ) -> OcrResult:
        """Every crop of every page goes to the bucket in one read, where the pages share
        batches with each other and with other requests' crops."""
        return self.ocr_many([upload], params, deadline)[0]

    def ocr_many(
        self,
        uploads: Sequence[Upload],
        params: DetectionParams | None = None,
        deadline: float | None = None,
    ) -> list[OcrResult]:
        """Several uploads through the batched path, their crops in one read; answers in order.

        Every upload is opened first, so a bad one fails the request before any work is done,
        and their pages together may number at most OCR_MAX_PAGES; then every page is detected
        (side by side), and only then do all the request's crops go to the bucket together, so
        the pages share batches instead of the first page's crops flushing on their own while
        the next page is still being detected. All pages share ``deadline``, which gives
        OCR_TIMEOUT_S for each page (the HTTP layer sets it that way; without one, the clock
        starts now).

        Each upload's answer has the /pipeline fields, with these meanings for a /batch_ocr:
        ``batches`` lists the batches that carried the request's crops (the same list for every
        upload: one batch may hold crops of several pages); ``timings_ms.std`` runs from the start
        of that upload's first page's detection to the end of its last's, ``str`` and
        ``queue_wait`` are those of the shared read, and ``total`` runs from the start of that
        upload's first detection to the end of the shared read.
        """
        self._check_queue()
        documents = self.open_all(uploads)
        pages = [page for document in documents for page in document.pages]
        deadline = self.deadline(len(pages)) if deadline is None else deadline
        # Pages in flight at once: no more than a service admits (OCR_MAX_INFLIGHT), or one
        # request's pages would be refused by std_service as overload of their own making.
        in_flight = max(1, min(len(pages), self.settings.ocr_max_inflight))
        pool = ThreadPoolExecutor(max_workers=in_flight)
        try:
            futures = [pool.submit(self.prepare, page, params, deadline) for page in pages]
            detected = [future.result() for future in futures]
        finally:
            pool.shutdown(wait=True, cancel_futures=True)  # a failed page stops the rest
        return self._batched(documents, detected, deadline)

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

    def _batched(
        self,
        documents: Sequence[Document],
        detected: Sequence[DetectedImage],
        deadline: float,
    ) -> list[OcrResult]:
        """Read the crops of all ``detected`` pages in one bucket read; one answer per
        document, its pages in order."""
        remaining = deadline - time.time()
        if remaining <= 0:
            raise Timeout(
                f"OCR did not finish by the request's deadline (OCR_TIMEOUT_S="
                f"{self.settings.ocr_timeout_s:g}s or X-OCR-Deadline): detection alone took it"
            )
        crops = [crop for page in detected for crop in page.crops]
        reading = self.batched.read(crops, remaining)
        pages = []
        start = 0
        for page in detected:
            end = start + len(page.crops)
            pages.append(build_page(page.detection, reading.results[start:end], page.segments))
            start = end
        results = []
        first = 0
        for document in documents:
            mine = range(first, first + len(document.pages))
            first = mine.stop
            first_start = min(detected[i].started for i in mine)
            last_end = max(detected[i].started + detected[i].std_ms / 1000.0 for i in mine)
            timings = {
                "std": (last_end - first_start) * 1000.0,
                "str": reading.str_ms,
                "queue_wait": reading.queue_wait_ms,
                "total": _ms(first_start),
            }
            results.append(
                OcrResult(
                    "batched",
                    tuple(pages[i] for i in mine),
                    timings,
                    tuple(reading.batches),
                    paged=document.paged,
                )
            )
        return results

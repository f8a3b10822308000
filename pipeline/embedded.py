"""The embedded topology's engine: both models in this process, batches in an in-process bucket.

No broker, no HTTP: ``embedded_pipeline`` composes the detector, the recogniser and the local
bucket into an ``OcrPipeline``. One lock serialises every forward pass of both models, requests
taking turns, since threads would only fight over the same cores.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from common.config import Settings
from common.documents import PageImage
from common.models import FairLock
from common.params import DetectionParams
from common.profiles import Profile
from common.results import Detection, Reading
from pipeline.local_bucket import LocalBucketReader
from pipeline.ocr import OcrPipeline
from std_service.detector import Detector
from std_service.preprocess import check_detect_budget
from str_service.recognizer import Recognizer


@dataclass
class LocalDetection:
    """Detection in process, within the pixel budget and the request's deadline."""

    detector: Detector
    settings: Settings
    lock: FairLock

    def detect(self, page: PageImage, params: DetectionParams, deadline: float) -> Detection:
        check_detect_budget(*page.image.shape[:2], params, self.settings.ocr_max_detect_pixels)
        with self.lock.until(deadline, "the detection model"):
            return self.detector.detect(page.image, params)


@dataclass
class LocalSequentialReader:
    """One crop at a time through the recogniser, within the request's deadline."""

    recognizer: Recognizer
    lock: FairLock

    def read_one(self, crop: np.ndarray, deadline: float) -> Reading:
        with self.lock.until(deadline, "the recognition model"):
            return self.recognizer.recognize([crop], deadline=deadline).results[0]

    def read_batch(self, crops: Sequence[np.ndarray]) -> list[Reading]:
        """A bucket batch: the bucket's thread waits its turn for the model like any request."""
        with self.lock:
            return self.recognizer.recognize(crops).results


@dataclass
class EmbeddedEngine:
    """The loaded models, the lock they share, and the pipeline built on them."""

    detector: Detector
    recognizer: Recognizer
    lock: FairLock
    pipeline: OcrPipeline
    bucket: LocalBucketReader

    def close(self) -> None:
        self.bucket.close()


def embedded_engine(
    settings: Settings,
    detector: Detector | None = None,
    recognizer: Recognizer | None = None,
    profile: Profile | None = None,
) -> EmbeddedEngine:
    """Load the models (or reuse loaded ones) and compose the embedded pipeline; ``profile``
    (default: OCR_PROFILE's) is how the pipeline detects and groups what it reads."""
    detector = detector or Detector.from_settings(settings)
    recognizer = recognizer or Recognizer.from_settings(settings)
    lock = FairLock()
    sequential = LocalSequentialReader(recognizer, lock)
    bucket = LocalBucketReader(settings, sequential.read_batch)
    detection = LocalDetection(detector, settings, lock)
    pipeline = OcrPipeline(settings, detection, sequential, bucket, profile)
    return EmbeddedEngine(detector, recognizer, lock, pipeline, bucket)

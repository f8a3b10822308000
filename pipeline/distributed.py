"""The distributed topology's engine: std_service and str_service over HTTP, the bucket in the
str workers behind RabbitMQ.

``distributed_engine`` composes the HTTP backends and the RabbitMQ bucket reader into the same
``OcrPipeline`` the embedded topology uses.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np

from common.config import Settings
from common.documents import PageImage
from common.errors import UpstreamError
from common.params import DetectionParams
from common.results import Detection, Reading
from pipeline.ocr import OcrPipeline
from pipeline.rabbit_reader import RabbitBucketReader
from pipeline.service_client import ServiceClient


@dataclass
class HttpDetection:
    """POST /detection with the page (the image as sent, or a document's page as PNG); the
    answer back as a typed Detection."""

    client: ServiceClient

    def detect(self, page: PageImage, params: DetectionParams, deadline: float) -> Detection:
        fields = {
            name: str(value).lower() if isinstance(value, bool) else str(value)
            for name, value in asdict(params).items()
        }
        files = {"image": ("image", page.encoded(), "application/octet-stream")}
        payload = self.client.post("/detection", deadline, files=files, data=fields)
        try:
            return Detection.from_export(payload)
        except (KeyError, TypeError, ValueError) as exc:
            raise UpstreamError(f"std_service's /detection answer is malformed: {exc}") from None


@dataclass
class HttpSequentialReader:
    """POST /recognition with one greyscale crop as PNG."""

    client: ServiceClient

    def read_one(self, crop: np.ndarray, deadline: float) -> Reading:
        ok, png = cv2.imencode(".png", crop)
        if not ok:
            raise UpstreamError("could not encode a crop")
        files = {"crops": ("crop.png", png.tobytes(), "image/png")}
        payload = self.client.post("/recognition", deadline, files=files)
        result = payload["results"][0]
        return str(result["text"]), float(result["confidence"])


@dataclass
class DistributedEngine:
    """The service clients, the broker reader, and the pipeline built on them."""

    std: ServiceClient
    str_: ServiceClient
    rabbit: RabbitBucketReader
    pipeline: OcrPipeline

    def close(self) -> None:
        self.rabbit.close()


def distributed_engine(settings: Settings) -> DistributedEngine:
    """Clients of std and str (STD_URL, STR_URL) and of the broker (RABBITMQ_URL)."""
    std = ServiceClient(settings.std_url, settings.ocr_api_key)
    str_ = ServiceClient(settings.str_url, settings.ocr_api_key)
    rabbit = RabbitBucketReader(settings)
    rabbit.wait_connected(5.0)
    pipeline = OcrPipeline(settings, HttpDetection(std), HttpSequentialReader(str_), rabbit)
    return DistributedEngine(std, str_, rabbit, pipeline)

"""The pipeline's backends for each topology, and the factory that picks them from OCR_MODE.

Embedded: both models in this process and the in-process bucket (no broker, no HTTP hops).
Distributed: std_service and str_service over HTTP, the str workers behind RabbitMQ.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import cv2
import numpy as np
import requests
from flask import Flask, Response, request

from common import metrics
from common.config import Settings
from common.errors import Timeout, UpstreamError, error_from_payload
from common.http import DEADLINE_HEADER, request_deadline
from common.models import FairLock
from pipeline.broker import InProcessRecognitionClient, RabbitRecognitionClient
from pipeline.ocr import OcrPipeline


@dataclass
class Engine:
    """A ready OcrPipeline plus what the app needs around it."""

    pipeline: OcrPipeline
    readiness: Callable[[], tuple[bool, dict]]
    mount_model_routes: Callable[[Flask], None]
    close: Callable[[], None]


class _HttpClient:
    """JSON calls to another service; its JSON errors pass through, anything else is a 502.

    Every call carries the API key when OCR_API_KEY is set (one key serves every topology) and
    the request's deadline as X-OCR-Deadline, so the service drops work nobody will wait for.
    """

    def __init__(self, base_url: str, api_key: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self._local = threading.local()

    def session(self) -> requests.Session:
        if not hasattr(self._local, "session"):
            self._local.session = requests.Session()
        return self._local.session

    def headers(self, deadline: float | None = None) -> dict[str, str]:
        headers = {"X-API-Key": self.api_key} if self.api_key else {}
        if deadline is not None:
            headers[DEADLINE_HEADER] = str(int(deadline * 1000))
        return headers

    def post(self, path: str, deadline: float, **kwargs: object) -> dict:
        url = self.base_url + path
        response = self._send(url, deadline, **kwargs)
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if response.status_code != 200:
            raise error_from_payload(response.status_code, payload)
        if not isinstance(payload, dict):
            raise UpstreamError(f"{url} answered without a JSON object")
        return payload

    def ready(self) -> bool:
        try:
            response = self.session().get(
                self.base_url + "/readyz", headers=self.headers(), timeout=2
            )
        except requests.RequestException:
            return False
        return response.status_code == 200

    def forward(self, path: str, deadline: float) -> Response:
        """Relay the current request's body to the service and its answer back, unchanged."""
        headers = {"Content-Type": request.headers.get("Content-Type", "")}
        upstream = self._send(
            self.base_url + path,
            deadline,
            data=request.get_data(),
            headers=headers,
            params=request.args,
        )
        return Response(
            upstream.content,
            status=upstream.status_code,
            content_type=upstream.headers.get("Content-Type", "application/json"),
            headers={k: v for k, v in upstream.headers.items() if k == "Retry-After"},
        )

    def _send(
        self,
        url: str,
        deadline: float,
        headers: Mapping[str, str] | None = None,
        **kwargs: object,
    ) -> requests.Response:
        remaining = deadline - time.time()
        if remaining <= 0:
            raise Timeout(f"the request's deadline passed before {url} was called")
        sent = dict(headers or {}) | self.headers(deadline)
        try:
            return self.session().post(url, timeout=remaining, headers=sent, **kwargs)
        except requests.Timeout:
            raise Timeout(f"{url} did not answer within the {remaining:.1f}s left") from None
        except requests.RequestException as exc:
            raise UpstreamError(f"{url} did not answer: {type(exc).__name__}") from None


class HttpDetection:
    def __init__(self, client: _HttpClient) -> None:
        self.client = client

    def detect(
        self, blob: bytes, image: np.ndarray, params: Mapping[str, object], deadline: float
    ) -> dict:
        fields = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in params.items()}
        files = {"image": ("image", blob, "application/octet-stream")}
        return self.client.post("/detection", deadline, files=files, data=fields)


class HttpSequentialReader:
    def __init__(self, client: _HttpClient) -> None:
        self.client = client

    def read_one(self, crop: np.ndarray, deadline: float) -> tuple[str, float]:
        ok, png = cv2.imencode(".png", crop)
        if not ok:
            raise UpstreamError("could not encode a crop")
        files = {"crops": ("crop.png", png.tobytes(), "image/png")}
        payload = self.client.post("/recognition", deadline, files=files)
        result = payload["results"][0]
        return str(result["text"]), float(result["confidence"])


def distributed_engine(settings: Settings) -> Engine:
    """std and str over HTTP, the batched path through RabbitMQ to the str workers."""
    std = _HttpClient(settings.std_url, settings.ocr_api_key)
    str_ = _HttpClient(settings.str_url, settings.ocr_api_key)
    rabbit = RabbitRecognitionClient(settings)
    rabbit.wait_connected(5.0)
    pipeline = OcrPipeline(
        settings,
        HttpDetection(std),
        HttpSequentialReader(str_),
        rabbit,
    )

    def readiness() -> tuple[bool, dict]:
        checks = {
            "std": std.ready(),
            "str": str_.ready(),
            "broker": rabbit.connected,
            "workers": rabbit.consumers != 0,  # None: not probed yet, so not known to be none
        }
        return all(checks.values()), {"mode": "distributed", "checks": checks}

    def mount(app: Flask) -> None:
        app.add_url_rule(
            "/detection",
            "detection",
            lambda: std.forward("/detection", request_deadline(settings)),
            methods=["POST"],
        )
        app.add_url_rule(
            "/recognition",
            "recognition",
            lambda: str_.forward("/recognition", request_deadline(settings)),
            methods=["POST"],
        )

    return Engine(pipeline, readiness, mount, rabbit.close)


def embedded_engine(settings: Settings, detector=None, recognizer=None) -> Engine:  # noqa: ANN001
    """Both models in this process; batches form in an in-process bucket. No broker needed."""
    from std_service.app import load_detector, register_detection
    from std_service.detector import DetectionParams, check_detect_budget
    from str_service.app import load_recognizer, register_recognition

    detector = detector or load_detector(settings)
    recognizer = recognizer or load_recognizer(settings)
    model_lock = FairLock()  # one forward pass at a time, requests taking turns

    # The model services observe STD/STR time in their handlers; embedded /ocr and /pipeline skip
    # those handlers, so these backends observe the same metrics themselves.
    class _Detection:
        def detect(
            self, blob: bytes, image: np.ndarray, params: Mapping[str, object], deadline: float
        ) -> dict:
            parsed = DetectionParams.from_mapping(params)
            check_detect_budget(*image.shape[:2], parsed, settings.ocr_max_detect_pixels)
            with model_lock.until(deadline, "the detection model"):
                result = detector.detect(image, parsed)
            metrics.STD_SECONDS.observe(sum(result.timings_ms.values()) / 1000.0)
            metrics.BOXES_PER_DOCUMENT.observe(len(result.boxes))
            return result.to_dict()

    class _Sequential:
        def read_one(self, crop: np.ndarray, deadline: float) -> tuple[str, float]:
            with model_lock.until(deadline, "the recognition model"):
                result = recognizer.recognize([crop], deadline=deadline)
            metrics.STR_SECONDS.observe(result.timings_ms.get("total", 0.0) / 1000.0)
            metrics.STR_CROPS.inc()
            metrics.BATCH_SIZE.observe(1)
            return result.results[0]

    def recognize_batch(crops):  # noqa: ANN001, ANN202
        with model_lock:
            return recognizer.recognize(crops).results

    bucket = InProcessRecognitionClient(settings, recognize_batch)
    pipeline = OcrPipeline(settings, _Detection(), _Sequential(), bucket)

    def mount(app: Flask) -> None:
        register_detection(app, detector, settings, model_lock)
        register_recognition(app, recognizer, settings, model_lock)

    def readiness() -> tuple[bool, dict]:
        return True, {
            "mode": "embedded",
            "models": {"std": detector.model_name, "str": recognizer.model_name},
        }

    return Engine(pipeline, readiness, mount, bucket.close)


def build_engine(settings: Settings) -> Engine:
    if settings.ocr_mode == "embedded":
        return embedded_engine(settings)
    return distributed_engine(settings)

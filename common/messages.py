"""The RabbitMQ message format between the pipeline and the str workers.

One crop per message: raw 8-bit greyscale pixels in the body, their shape and place in the request
in the headers. Small messages keep every crop independently redeliverable, keep far below the
broker's size cap, and let a worker's bucket take crops from many requests. Replies are JSON.
Nothing here is pickled: a worker must be able to reject a malformed message safely.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

import numpy as np

CROP_CONTENT_TYPE = "application/x-ocr-crop"
REPLY_CONTENT_TYPE = "application/json"
MAX_CROP_SIDE = 8192


class MessageError(ValueError):
    """A message that can't be decoded; the worker answers it with an error and acks it."""


@dataclass(frozen=True)
class CropMessage:
    request_id: str
    reply_to: str
    index: int
    count: int
    deadline: float  # wall-clock epoch seconds after which nobody waits for the answer
    image: np.ndarray

    def expired(self, now: float | None = None) -> bool:
        return (time.time() if now is None else now) >= self.deadline


def encode_crop(crop: np.ndarray, index: int, count: int, deadline: float) -> tuple[bytes, dict]:
    """Body and headers for one greyscale crop of a request."""
    if crop.ndim != 2 or crop.dtype != np.uint8:
        raise ValueError("crops travel as 2-D uint8 greyscale arrays")
    height, width = crop.shape
    headers = {
        "index": index,
        "count": count,
        "height": height,
        "width": width,
        "deadline_ms": int(deadline * 1000),  # AMQP headers carry no floats
    }
    return np.ascontiguousarray(crop).tobytes(), headers


def decode_crop(
    body: bytes, headers: dict | None, correlation_id: str | None, reply_to: str | None
) -> CropMessage:
    """Parse a crop message, or raise MessageError saying what is wrong with it."""
    headers = headers or {}
    if not correlation_id or not reply_to:
        raise MessageError("message lacks correlation_id or reply_to")
    try:
        index, count = int(headers["index"]), int(headers["count"])
        height, width = int(headers["height"]), int(headers["width"])
        deadline = int(headers["deadline_ms"]) / 1000.0
    except (KeyError, TypeError, ValueError):
        raise MessageError(
            "headers need integer index, count, height, width and deadline_ms"
        ) from None
    if not (0 <= index < count) or not (
        1 <= height <= MAX_CROP_SIDE and 1 <= width <= MAX_CROP_SIDE
    ):
        raise MessageError(f"bad crop geometry or index: {index}/{count}, {width}x{height}")
    if len(body) != height * width:
        raise MessageError(f"body holds {len(body)} bytes, expected {height}x{width}")
    image = np.frombuffer(body, dtype=np.uint8).reshape(height, width)
    return CropMessage(correlation_id, reply_to, index, count, deadline, image)


@dataclass
class Reply:
    """What a worker tells one request about the crops of it that one batch held."""

    request_id: str
    batch_id: str
    batch_size: int
    str_ms: float
    results: dict[int, tuple[str, float]] = field(default_factory=dict)
    errors: dict[int, str] = field(default_factory=dict)
    worker: str = ""

    def encode(self) -> bytes:
        return json.dumps(
            {
                "request_id": self.request_id,
                "batch": {"id": self.batch_id, "size": self.batch_size, "str_ms": self.str_ms},
                "results": [
                    {"index": i, "text": text, "confidence": conf}
                    for i, (text, conf) in self.results.items()
                ],
                "errors": [{"index": i, "message": msg} for i, msg in self.errors.items()],
                "worker": self.worker,
            }
        ).encode()

    @classmethod
    def decode(cls, body: bytes) -> Reply:
        try:
            data = json.loads(body)
            batch = data["batch"]
            return cls(
                request_id=str(data["request_id"]),
                batch_id=str(batch["id"]),
                batch_size=int(batch["size"]),
                str_ms=float(batch["str_ms"]),
                results={
                    int(r["index"]): (str(r["text"]), float(r["confidence"]))
                    for r in data.get("results", [])
                },
                errors={int(e["index"]): str(e["message"]) for e in data.get("errors", [])},
                worker=str(data.get("worker", "")),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise MessageError(f"malformed reply: {exc}") from None

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

from common.results import OwnerReadings

CROP_CONTENT_TYPE = "application/x-ocr-crop"
REPLY_CONTENT_TYPE = "application/json"
MAX_CROP_SIDE = 8192


class MessageError(ValueError):
    """A message that can't be decoded; the worker answers it with an error and acks it."""


class UnanswerableMessage(MessageError):
    """A message without a usable reply address: nobody can be told, so it is dead-lettered."""


CROP_HEADERS = ("index", "count", "height", "width", "deadline_ms")


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


def reply_address(correlation_id: object, reply_to: object) -> tuple[str, str] | None:
    """(request id, reply queue) when both are non-empty text, else None: nobody to answer.

    pika hands back a short string that isn't UTF-8 as bytes; such an id can't be echoed.
    """
    if isinstance(correlation_id, str) and isinstance(reply_to, str):
        if correlation_id and reply_to:
            return correlation_id, reply_to
    return None


def header_int(headers: object, name: str) -> int | None:
    """The header ``name`` when it is a real integer (not a bool, str, float or bytes)."""
    value = headers.get(name) if isinstance(headers, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def decode_crop(
    body: bytes, headers: dict | None, correlation_id: str | None, reply_to: str | None
) -> CropMessage:
    """Parse a crop message, or raise MessageError saying what is wrong with it.

    Every field comes from whoever could publish to the queue, so each is checked before use:
    UnanswerableMessage when there is no reply address, MessageError for the rest.
    """
    address = reply_address(correlation_id, reply_to)
    if address is None:
        raise UnanswerableMessage(
            "message needs a non-empty text correlation_id and reply_to, got "
            f"{_describe(correlation_id)} and {_describe(reply_to)}"
        )
    if headers is None:
        headers = {}
    if not isinstance(headers, dict):
        raise MessageError(f"headers must be a table, got {type(headers).__name__}")
    values = {}
    for name in CROP_HEADERS:
        if name not in headers:
            raise MessageError(f"header {name!r} is missing (need {', '.join(CROP_HEADERS)})")
        value = header_int(headers, name)
        if value is None:
            raise MessageError(
                f"header {name!r} must be an integer, got {_describe(headers[name])}"
            )
        values[name] = value
    index, count = values["index"], values["count"]
    height, width = values["height"], values["width"]
    if not 0 <= index < count:
        raise MessageError(f"index {index} is outside 0..count-1 (count {count})")
    if not (1 <= height <= MAX_CROP_SIDE and 1 <= width <= MAX_CROP_SIDE):
        raise MessageError(
            f"declared shape {height}x{width} is outside 1..{MAX_CROP_SIDE} per side"
        )
    if values["deadline_ms"] < 0:
        raise MessageError(f"deadline_ms {values['deadline_ms']} is negative")
    if not isinstance(body, bytes | bytearray):
        raise MessageError(f"body must be bytes, got {type(body).__name__}")
    if not body:
        raise MessageError(f"body is empty, expected {height}x{width} = {height * width} bytes")
    if len(body) != height * width:
        raise MessageError(
            f"body holds {len(body)} bytes, expected {height}x{width} = {height * width}"
        )
    image = np.frombuffer(bytes(body), dtype=np.uint8).reshape(height, width)
    request_id, queue = address
    return CropMessage(request_id, queue, index, count, values["deadline_ms"] / 1000.0, image)


def _describe(value: object) -> str:
    """A short, safe description of an untrusted value for an error message."""
    text = repr(value)
    if len(text) > 40:
        text = text[:37] + "..."
    return f"{type(value).__name__} {text}"


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

    @classmethod
    def of(cls, request_id: str, readings: OwnerReadings, worker: str) -> Reply:
        """The wire form of what one batch tells one request."""
        return cls(
            request_id,
            readings.batch_id,
            readings.batch_size,
            readings.str_ms,
            dict(readings.results),
            dict(readings.errors),
            worker,
        )

    @property
    def readings(self) -> OwnerReadings:
        """Back to the engine's type, for the request waiting on it."""
        return OwnerReadings(
            self.batch_id, self.batch_size, self.str_ms, dict(self.results), dict(self.errors)
        )

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

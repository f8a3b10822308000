"""What the web page does, apart from Streamlit: call the pipeline, read its answers, draw them.

The page itself (web/app.py, web/pages/) only lays widgets out. Everything that can go wrong or be
computed lives here as plain functions, so it is tested without a browser or a Streamlit runtime.
This module speaks HTTP to the pipeline and imports no service code, so the page deploys alone.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import requests
from PIL import Image, ImageDraw, ImageFont, ImageOps, UnidentifiedImageError

from web import labels

DEFAULT_PIPELINE_URL = "http://127.0.0.1:5000"
DEFAULT_TIMEOUT_S = 120.0
CONNECT_TIMEOUT_S = 5.0
# The pipeline's OCR_MAX_UPLOAD_MB default: the uploader refuses what the backend would refuse.
DEFAULT_MAX_UPLOAD_MB = 20

# The extensions the uploader accepts: the formats the services decode.
IMAGE_TYPES = ("png", "jpg", "jpeg", "tif", "tiff", "webp", "bmp")
MIME_TYPES = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "tif": "image/tiff",
    "tiff": "image/tiff",
    "webp": "image/webp",
    "bmp": "image/bmp",
}

# mode -> (endpoint, label shown to the user)
MODES = {
    "sequential": ("/ocr", "Sequential (/ocr)"),
    "batched": ("/pipeline", "Batched (/pipeline)"),
}

# Official CRAFT defaults: where the page's detection settings start.
DETECTION_DEFAULTS = {
    "canvas_size": 1280,
    "mag_ratio": 1.5,
    "text_threshold": 0.7,
    "link_threshold": 0.4,
    "low_text": 0.4,
}

# What each error code of the HTTP contract means to someone using the page.
ERROR_HINTS = {
    "invalid_image": "The service could not read this file as an image "
    "(PNG, JPEG, TIFF, WebP or BMP).",
    "missing_image": "The upload arrived empty.",
    "invalid_parameter": "A detection setting was rejected; check the values in the sidebar.",
    "invalid_boxes": "The request's boxes were rejected.",
    "unauthorized": "The backend wants an API key: set OCR_API_KEY for the web page.",
    "payload_too_large": "The file is larger than the backend accepts (OCR_MAX_UPLOAD_MB).",
    "image_too_large": "The image has more pixels than the backend accepts (OCR_MAX_PIXELS).",
    "unsupported_media_type": "The backend did not accept the upload's format.",
    "upstream_error": "A service behind the pipeline failed; try again in a moment.",
    "overloaded": "The backend is busy; try again in a few seconds.",
    "not_ready": "The backend is still starting (loading its models); try again shortly.",
    "timeout": "The backend gave up before the document was read; try a smaller canvas size.",
    "not_found": "The backend has no such endpoint; is PIPELINE_URL the pipeline's address?",
}


class PageError(Exception):
    """A failure worded for the person at the page; ``code`` is for tests and summaries."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class WebConfig:
    """Where the backend is and how long to wait for it, from the environment."""

    pipeline_url: str = DEFAULT_PIPELINE_URL
    api_key: str | None = None
    timeout_s: float = DEFAULT_TIMEOUT_S
    max_upload_mb: int = DEFAULT_MAX_UPLOAD_MB

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> WebConfig:
        env = os.environ if env is None else env
        url = env.get("PIPELINE_URL", "").strip() or DEFAULT_PIPELINE_URL
        raw_timeout = env.get("WEB_TIMEOUT_S", "").strip()
        try:
            timeout = float(raw_timeout) if raw_timeout else DEFAULT_TIMEOUT_S
        except ValueError:
            timeout = DEFAULT_TIMEOUT_S
        if not (math.isfinite(timeout) and timeout > 0):
            timeout = DEFAULT_TIMEOUT_S
        return cls(
            url.rstrip("/"),
            env.get("OCR_API_KEY", "").strip() or None,
            timeout,
            _upload_mb(env.get("OCR_MAX_UPLOAD_MB", "")),
        )

    def headers(self) -> dict[str, str]:
        return {"X-API-Key": self.api_key} if self.api_key else {}


def _upload_mb(raw: str) -> int:
    """OCR_MAX_UPLOAD_MB as the whole megabytes Streamlit's uploader takes (at least 1).

    Rounded down, so a file the page lets through is never one the pipeline refuses.
    """
    try:
        value = float(raw.strip()) if raw.strip() else DEFAULT_MAX_UPLOAD_MB
    except ValueError:
        return DEFAULT_MAX_UPLOAD_MB
    if not (math.isfinite(value) and value > 0):
        return DEFAULT_MAX_UPLOAD_MB
    return max(1, math.floor(value))


def upload_limit_mb(config: WebConfig, server_limit_mb: float) -> int:
    """The uploader's per-file limit: the backend's, but never above what Streamlit's server
    (``server.maxUploadSize``) accepts, so the number the page states is the one enforced."""
    return max(1, min(config.max_upload_mb, math.floor(server_limit_mb)))


@dataclass
class Outcome:
    """One file's result: the pipeline's answer, or the reason there is none."""

    name: str
    answer: dict | None = None
    error: PageError | None = None
    settings: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.answer is not None


# --- calling the pipeline -------------------------------------------------------------------


def digest(data: bytes) -> str:
    """A short content id, so the same upload keeps its result across reruns."""
    return hashlib.sha1(data, usedforsecurity=False).hexdigest()[:16]


def mime_type(name: str) -> str:
    return MIME_TYPES.get(Path(name).suffix.lower().lstrip("."), "application/octet-stream")


def detection_fields(values: Mapping[str, float]) -> dict[str, str]:
    """Form fields for the detection settings; every value is sent, so the answer matches them."""
    fields = {}
    for name in DETECTION_DEFAULTS:
        value = values.get(name)
        if value is None:
            continue
        fields[name] = str(int(value)) if name == "canvas_size" else f"{float(value):g}"
    return fields


def endpoint_for(mode: str) -> str:
    try:
        return MODES[mode][0]
    except KeyError:
        raise ValueError(f"unknown mode {mode!r}; choose one of {sorted(MODES)}") from None


def read_document(
    config: WebConfig,
    name: str,
    data: bytes,
    mode: str,
    fields: Mapping[str, str] | None = None,
    session: requests.Session | None = None,
) -> dict:
    """POST one image to /ocr or /pipeline and return its answer; failures raise PageError."""
    url = config.pipeline_url + endpoint_for(mode)
    http = session or requests
    try:
        response = http.post(
            url,
            files={"image": (name, data, mime_type(name))},
            data=dict(fields or {}),
            headers=config.headers(),
            timeout=(CONNECT_TIMEOUT_S, config.timeout_s),
        )
    except requests.exceptions.ConnectTimeout:
        raise _unreachable(config) from None
    except requests.exceptions.Timeout:
        raise PageError(
            "timeout",
            f"The backend did not answer within {config.timeout_s:g} s. Try a smaller canvas "
            "size, or set WEB_TIMEOUT_S higher.",
        ) from None
    except requests.exceptions.ConnectionError:
        raise _unreachable(config) from None
    except requests.exceptions.RequestException as exc:
        raise PageError("network", f"The request to the backend failed: {exc}") from None
    return parse_answer(response.status_code, response.content)


def _unreachable(config: WebConfig) -> PageError:
    return PageError(
        "backend_down",
        f"Can't reach the OCR backend at {config.pipeline_url}. Is the pipeline running "
        "(`make run`)? The page finds it through PIPELINE_URL.",
    )


def parse_answer(status: int, body: bytes) -> dict:
    """The JSON answer of a 200, or a PageError worded from the contract's error body."""
    try:
        payload = json.loads(body) if body else None
    except (ValueError, UnicodeDecodeError):
        payload = None
    if status != 200:
        error = payload.get("error") if isinstance(payload, dict) else None
        if isinstance(error, dict):
            code = str(error.get("code") or "error")
            raise PageError(code, error_message(code, str(error.get("message") or ""), status))
        raise PageError("http_error", error_message("", "", status))
    if not (isinstance(payload, dict) and isinstance(payload.get("words"), list)):
        raise PageError(
            "bad_answer",
            "The backend answered, but not with an OCR result. Is PIPELINE_URL the pipeline's "
            "address?",
        )
    return payload


def error_message(code: str, detail: str, status: int) -> str:
    """One readable sentence for an error answer: what it means, plus the backend's own words."""
    hint = ERROR_HINTS.get(code)
    if hint is None:
        hint = (
            f"The backend failed (HTTP {status})."
            if status >= 500
            else f"The backend refused the request (HTTP {status})."
        )
    detail = detail.strip()
    return f"{hint} ({detail})" if detail else hint


# --- reading an answer ------------------------------------------------------------------------


def words_table(answer: Mapping) -> list[dict]:
    """Rows for the words table, numbered like the quads on the image."""
    return [
        {
            "#": index,
            "text": str(word.get("text", "")),
            "confidence": round(float(word.get("confidence", 0.0)), 4),
            "det_score": round(float(word.get("det_score", 0.0)), 4),
        }
        for index, word in enumerate(answer.get("words", []), start=1)
    ]


# Pixel widths of the words table's columns. Sized to fit its content, the progress bar took the
# room and the text column cut words ("JAPANES"); the words get the most, the numbers enough
# for "0.95". Together they fit the page's right-hand column (about 400 px in a 1500 px window
# with the sidebar open); on a wider one Streamlit shares the rest out among them.
WORDS_COLUMN_WIDTHS = {"#": 40, "text": 150, "confidence": 100, "det_score": 80}

TIMING_STAGES = (("std", "STD"), ("str", "STR"), ("queue_wait", "queue wait"), ("total", "total"))


def timing_rows(answer: Mapping) -> list[dict]:
    """The stages the answer timed, in pipeline order (queue wait only exists when batched)."""
    timings = answer.get("timings_ms") or {}
    return [
        {"stage": label, "ms": round(float(timings[key]), 1)}
        for key, label in TIMING_STAGES
        if isinstance(timings.get(key), int | float)
    ]


def format_duration(seconds: float | None) -> str:
    """A duration short enough for a metric tile: ``"10.0 ms"``, ``"28.2 s"``, ``"2.5 min"``.

    st.metric cuts long values off with an ellipsis; "28,237.1 ms" did not fit a fifth of a row.
    """
    if seconds is None or not math.isfinite(seconds):
        return "–"
    for unit, scale in (("ms", 1000.0), ("s", 1.0), ("min", 1 / 60)):
        value = round(seconds * scale, 1)
        limit = 1000.0 if unit == "ms" else 60.0
        if abs(value) < limit:
            return f"{value:.1f} {unit}"
    return f"{seconds / 3600:,.1f} h"


def mean_confidence(answer: Mapping) -> float | None:
    values = [float(w.get("confidence", 0.0)) for w in answer.get("words", [])]
    return sum(values) / len(values) if values else None


def summary_row(outcome: Outcome) -> dict:
    """One line of the several-files summary."""
    if outcome.answer is None:
        message = outcome.error.message if outcome.error else "not read"
        return {
            "file": outcome.name,
            "status": "error",
            "words": None,
            "mean confidence": None,
            "total ms": None,
            "message": message,
        }
    answer = outcome.answer
    confidence = mean_confidence(answer)
    total = (answer.get("timings_ms") or {}).get("total")
    return {
        "file": outcome.name,
        "status": "ok",
        "words": len(answer.get("words", [])),
        "mean confidence": None if confidence is None else round(confidence, 3),
        "total ms": None if total is None else round(float(total), 1),
        "message": "",
    }


def text_file_name(name: str, suffix: str) -> str:
    """``scan.png`` -> ``scan.txt``: downloads named after the upload."""
    stem = re.sub(r"[^\w.-]+", "_", Path(name).stem).strip("._") or "document"
    return f"{stem}{suffix}"


def answer_json(answer: Mapping) -> str:
    return json.dumps(answer, indent=2, ensure_ascii=False)


# --- drawing ---------------------------------------------------------------------------------

# Red (unsure) through amber to green (sure): the colours of the quads and the legend.
_LOW, _MID, _HIGH = (220, 38, 38), (234, 160, 8), (22, 163, 74)
UNKNOWN_COLOUR = (128, 128, 128)
MAX_DISPLAY_SIDE = 2000
_PAD = 2  # pixels between a tag's edge and its number


def confidence_colour(confidence: float) -> tuple[int, int, int]:
    """Map a confidence in [0, 1] onto red -> amber -> green; anything unusable is grey."""
    try:
        value = float(confidence)
    except (TypeError, ValueError):
        return UNKNOWN_COLOUR
    if not math.isfinite(value):
        return UNKNOWN_COLOUR
    value = min(1.0, max(0.0, value))
    start, end, t = (_LOW, _MID, value * 2) if value < 0.5 else (_MID, _HIGH, value * 2 - 1)
    return tuple(round(a + (b - a) * t) for a, b in zip(start, end, strict=True))


def open_image(data: bytes) -> Image.Image:
    """The upload as RGB, turned upright the way the services turn it (EXIF orientation)."""
    try:
        image = Image.open(io.BytesIO(data))
        image = ImageOps.exif_transpose(image)
        return image.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise PageError("invalid_image", f"The page can't display this image ({exc}).") from None


def draw_quads(
    image: Image.Image,
    words: Sequence[Mapping],
    size: tuple[int, int] | None = None,
    max_side: int = MAX_DISPLAY_SIDE,
) -> Image.Image:
    """A copy of ``image`` with each word's quad outlined in its confidence colour and numbered.

    ``size`` is the (width, height) the answer's quads refer to; when the image shown differs
    (or is shrunk to ``max_side`` so the browser isn't sent a 50-megapixel PNG), the quads are
    scaled with it.
    """
    canvas = image.convert("RGB")
    ref_w, ref_h = size or canvas.size
    if max(canvas.size) > max_side:
        shrink = max_side / max(canvas.size)
        canvas = canvas.resize(
            (max(1, round(canvas.width * shrink)), max(1, round(canvas.height * shrink))),
            Image.Resampling.LANCZOS,
        )
    else:
        canvas = canvas.copy()
    sx, sy = canvas.width / max(1, ref_w), canvas.height / max(1, ref_h)
    long_side = max(canvas.size)
    line = max(2, round(long_side / 600))
    font = _font(max(11, round(long_side / 70)))
    draw = ImageDraw.Draw(canvas)
    drawn: list[tuple[str, list[tuple[float, float]], tuple[int, int, int]]] = []
    for number, word in enumerate(words, start=1):
        points = _points(word.get("quad"), sx, sy)
        if points is None:
            continue
        colour = confidence_colour(word.get("confidence", float("nan")))
        draw.line([*points, points[0]], fill=colour, width=line, joint="curve")
        drawn.append((str(number), points, colour))
    # Tags last, so no other quad's outline crosses a number.
    extents = [draw.textbbox((0, 0), text, font=font) for text, _, _ in drawn]
    rects = labels.place_labels(
        [labels.bounding_box(points) for _, points, _ in drawn],
        [(r - left + 2 * _PAD, b - top + 2 * _PAD) for left, top, r, b in extents],
        canvas.size,
        gap=line,
    )
    for (text, _, colour), extent, rect in zip(drawn, extents, rects, strict=True):
        draw.rectangle(rect, fill=colour)
        draw.text(
            (rect[0] + _PAD - extent[0], rect[1] + _PAD - extent[1]),
            text,
            fill=(255, 255, 255),
            font=font,
        )
    return canvas


def _points(quad: object, sx: float, sy: float) -> list[tuple[float, float]] | None:
    try:
        points = [(float(x) * sx, float(y) * sy) for x, y in quad]  # type: ignore[union-attr]
    except (TypeError, ValueError):
        return None
    if len(points) < 3 or not all(math.isfinite(v) for p in points for v in p):
        return None
    return points


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow built without FreeType: fixed-size bitmap font
        return ImageFont.load_default()


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


# --- metrics ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    name: str
    labels: dict[str, str]
    value: float


@dataclass
class Histogram:
    """One Prometheus histogram, summed over the label sets asked for."""

    buckets: list[tuple[float, float]]  # (upper bound, cumulative count), ascending, +Inf last
    count: float
    total: float

    @property
    def mean(self) -> float | None:
        return self.total / self.count if self.count else None

    def quantile(self, q: float) -> float | None:
        """Prometheus' histogram_quantile: linear inside the bucket that holds the rank."""
        if not self.count or not self.buckets:
            return None
        rank = q * self.count
        lower, below = 0.0, 0.0
        for upper, cumulative in self.buckets:
            if cumulative >= rank:
                if math.isinf(upper):
                    return lower
                inside = cumulative - below
                if inside <= 0:
                    return upper
                return lower + (upper - lower) * (rank - below) / inside
            lower, below = upper, cumulative
        return lower

    def bars(self) -> list[dict]:
        """Per-bucket (not cumulative) counts, labelled by range, for a bar chart."""
        rows, lower, below = [], None, 0.0
        for upper, cumulative in self.buckets:
            label = f"> {_num(lower)}" if math.isinf(upper) else f"≤ {_num(upper)}"
            rows.append({"bucket": label, "count": max(0.0, cumulative - below)})
            lower, below = upper, cumulative
        return rows


def _num(value: float | None) -> str:
    return "0" if value is None else f"{value:g}"


_SAMPLE = re.compile(
    r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>.*)\})?\s+(?P<value>\S+)(?:\s+\S+)?$"
)
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text: str) -> list[Sample]:
    """Samples of a Prometheus text exposition; lines that don't parse are skipped."""
    samples = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        if not match:
            continue
        try:
            value = float(match["value"])
        except ValueError:
            continue
        labels = {
            key: val.replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")
            for key, val in _LABEL.findall(match["labels"] or "")
        }
        samples.append(Sample(match["name"], labels, value))
    return samples


def _matches(labels: Mapping[str, str], where: Mapping[str, str] | None) -> bool:
    return all(labels.get(k) == v for k, v in (where or {}).items())


def histogram(
    samples: Iterable[Sample], name: str, where: Mapping[str, str] | None = None
) -> Histogram | None:
    """The histogram ``name``, summed over every label set that matches ``where``."""
    buckets: dict[float, float] = {}
    count = total = 0.0
    seen = False
    for sample in samples:
        if not _matches(sample.labels, where):
            continue
        if sample.name == f"{name}_bucket" and "le" in sample.labels:
            upper = float(sample.labels["le"])
            buckets[upper] = buckets.get(upper, 0.0) + sample.value
            seen = True
        elif sample.name == f"{name}_count":
            count += sample.value
            seen = True
        elif sample.name == f"{name}_sum":
            total += sample.value
    if not seen:
        return None
    return Histogram(sorted(buckets.items()), count, total)


def label_sets(samples: Iterable[Sample], name: str, keys: Sequence[str]) -> list[dict[str, str]]:
    """The distinct values of ``keys`` that series ``name`` carries, in first-seen order."""
    seen: list[dict[str, str]] = []
    for sample in samples:
        if sample.name == name:
            combo = {k: sample.labels.get(k, "") for k in keys}
            if combo not in seen:
                seen.append(combo)
    return seen


def latency_rows(samples: Sequence[Sample]) -> list[dict]:
    """Requests, mean and percentiles of ocr_request_seconds per endpoint and mode.

    Percentiles are estimated from the buckets the way Prometheus does, so they are only as fine
    as the bucket bounds; the mean is exact.
    """
    rows = []
    keys = ("service", "endpoint", "mode")
    for combo in label_sets(samples, "ocr_request_seconds_count", keys):
        hist = histogram(samples, "ocr_request_seconds", combo)
        if hist is None or not hist.count:
            continue
        rows.append(
            {
                "endpoint": combo["endpoint"],
                "mode": combo["mode"] or "-",
                "requests": int(hist.count),
                "mean s": _round(hist.mean),
                "p50 s (est.)": _round(hist.quantile(0.5)),
                "p95 s (est.)": _round(hist.quantile(0.95)),
            }
        )
    return rows


def counter_rows(samples: Iterable[Sample], name: str, keys: Sequence[str]) -> list[dict]:
    """Non-zero counter values by the given labels (``ocr_errors_total`` by endpoint and code)."""
    totals: dict[tuple[str, ...], float] = {}
    for sample in samples:
        if sample.name == name and sample.value:
            key = tuple(sample.labels.get(k, "") for k in keys)
            totals[key] = totals.get(key, 0.0) + sample.value
    return [dict(zip(keys, key, strict=True)) | {"count": int(v)} for key, v in totals.items()]


def gauge_rows(samples: Iterable[Sample], name: str, key: str) -> list[dict]:
    return [
        {key: sample.labels.get(key, ""), "value": sample.value}
        for sample in samples
        if sample.name == name
    ]


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def fetch_metrics(config: WebConfig, session: requests.Session | None = None) -> str:
    """The pipeline's /metrics text; failures raise PageError like the OCR calls do."""
    http = session or requests
    try:
        response = http.get(
            config.pipeline_url + "/metrics",
            headers=config.headers(),
            timeout=(CONNECT_TIMEOUT_S, 10),
        )
    except requests.exceptions.Timeout:
        raise PageError("timeout", "The backend's /metrics did not answer within 10 s.") from None
    except requests.exceptions.ConnectionError:
        raise _unreachable(config) from None
    except requests.exceptions.RequestException as exc:
        raise PageError("network", f"The request to the backend failed: {exc}") from None
    if response.status_code != 200:
        raise PageError(
            "http_error", f"The backend's /metrics answered HTTP {response.status_code}."
        )
    return response.text

"""CRAFT text detection: request parameters, the loaded model, and image-pixel boxes out.

``Detector`` is the one object a service needs: it loads the weights once and turns an RGB image
into word boxes in reading order, in the pixels of the image as sent.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from common.errors import InvalidImage, InvalidParameter, OverBudget
from common.layout import reading_order
from common.models import resolve_device
from std_service.craft import CRAFT, default_weights_path, load_craft
from std_service.postprocess import MapBox, detect_map_boxes
from std_service.preprocess import network_input_hw, prepare

NET_SCALE = 2  # score maps are at half the input resolution

_TRUE = frozenset({"1", "true", "yes", "on", "y", "t"})
_FALSE = frozenset({"0", "false", "no", "off", "n", "f"})


@dataclass(frozen=True)
class DetectionParams:
    """Detection settings; the defaults are the official CRAFT test defaults."""

    canvas_size: int = 1280
    mag_ratio: float = 1.5
    text_threshold: float = 0.7
    link_threshold: float = 0.4
    low_text: float = 0.4
    poly: bool = False

    def validate(self) -> DetectionParams:
        """Raise InvalidParameter (400 invalid_parameter) naming the first bad value."""
        if isinstance(self.canvas_size, bool) or not isinstance(self.canvas_size, int):
            raise InvalidParameter(f"canvas_size must be an integer, got {self.canvas_size!r}")
        if not 32 <= self.canvas_size <= 4096:
            raise InvalidParameter(f"canvas_size must be in 32..4096, got {self.canvas_size}")
        _check_float("mag_ratio", self.mag_ratio, 0.1, 5.0, low_open=False)
        for name in ("text_threshold", "link_threshold", "low_text"):
            _check_float(name, getattr(self, name), 0.0, 1.0, low_open=True)
        if not isinstance(self.poly, bool):
            raise InvalidParameter(f"poly must be true or false, got {self.poly!r}")
        return self

    @classmethod
    def from_mapping(
        cls, values: Mapping[str, Any], base: DetectionParams | None = None
    ) -> DetectionParams:
        """Parameters from request values (form strings or JSON numbers), over ``base``.

        Keys that are not parameters are ignored (the same mapping carries the image); a missing
        or empty value keeps the base value. Anything unparseable or out of range raises
        InvalidParameter.
        """
        base = base or cls()
        changes: dict[str, Any] = {}
        for f in fields(cls):
            if f.name not in values:
                continue
            raw = values[f.name]
            if raw is None or (isinstance(raw, str) and not raw.strip()):
                continue
            if f.name == "poly":
                changes[f.name] = _parse_bool(f.name, raw)
            elif f.name == "canvas_size":
                changes[f.name] = _parse_int(f.name, raw)
            else:
                changes[f.name] = _parse_float(f.name, raw)
        return replace(base, **changes).validate()


def check_detect_budget(height: int, width: int, params: DetectionParams, budget: int) -> None:
    """Raise OverBudget (422) when CRAFT would run on more than ``budget`` pixels for this image.

    Checked before any resize or forward pass: a large canvas_size or mag_ratio would otherwise
    hold the model for minutes and gigabytes within the parameters' valid ranges.
    """
    padded_h, padded_w = network_input_hw(height, width, params.canvas_size, params.mag_ratio)
    pixels = padded_h * padded_w
    if pixels > budget:
        raise OverBudget(
            f"detection of this {width}x{height} image at canvas_size={params.canvas_size}, "
            f"mag_ratio={params.mag_ratio:g} would run on {padded_w}x{padded_h} = {pixels} "
            f"pixels; the budget is OCR_MAX_DETECT_PIXELS={budget}. Lower canvas_size or "
            "mag_ratio"
        )


def _check_float(name: str, value: object, low: float, high: float, *, low_open: bool) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidParameter(f"{name} must be a number, got {value!r}")
    ok = math.isfinite(value) and value <= high and (value > low if low_open else value >= low)
    if not ok:
        interval = f"({low:g}, {high:g}]" if low_open else f"[{low:g}, {high:g}]"
        raise InvalidParameter(f"{name} must be in {interval}, got {value!r}")


def _parse_float(name: str, raw: object) -> float:
    if isinstance(raw, bool):
        raise InvalidParameter(f"{name} must be a number, got {raw!r}")
    try:
        return float(raw.strip() if isinstance(raw, str) else raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InvalidParameter(f"{name} must be a number, got {raw!r}") from None


def _parse_int(name: str, raw: object) -> int:
    value = _parse_float(name, raw)
    if not math.isfinite(value) or not value.is_integer():
        raise InvalidParameter(f"{name} must be an integer, got {raw!r}")
    return int(value)


def _parse_bool(name: str, raw: object) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, int) and raw in (0, 1):
        return bool(raw)
    if isinstance(raw, str):
        text = raw.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    raise InvalidParameter(f"{name} must be true or false, got {raw!r}")


@dataclass
class DetectedBox:
    """One word region in image pixels."""

    quad: list[list[float]]  # four [x, y], clockwise from the corner with the smallest x + y
    score: float  # mean region score over the word's component (see postprocess.MapBox)
    polygon: list[list[float]] | None = None  # only in polygon mode; the quad where none fits

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"quad": self.quad, "score": self.score}
        if self.polygon is not None:
            out["polygon"] = self.polygon
        return out


@dataclass
class Detection:
    """The result of one detect() call."""

    width: int
    height: int
    boxes: list[DetectedBox]
    timings_ms: dict[str, float]
    ratio: float  # resize ratio (resized / original)
    resized_hw: tuple[int, int]
    padded_hw: tuple[int, int]
    region: np.ndarray | None = field(default=None, repr=False)  # score maps when asked for
    affinity: np.ndarray | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready part of the /detection answer (the service adds ``model``)."""
        return {
            "width": self.width,
            "height": self.height,
            "boxes": [b.to_dict() for b in self.boxes],
            "timings_ms": dict(self.timings_ms),
        }


def to_image_coords(points: np.ndarray, ratio: float, width: int, height: int) -> list[list[float]]:
    """Map score-map points to image pixels (x 2 / ratio) and clip them to [0, w] x [0, h]."""
    scaled = np.asarray(points, dtype=np.float64) * (NET_SCALE / ratio)
    scaled[:, 0] = np.clip(scaled[:, 0], 0, width)
    scaled[:, 1] = np.clip(scaled[:, 1], 0, height)
    return scaled.tolist()


def map_boxes_to_image(
    map_boxes: list[MapBox], ratio: float, width: int, height: int, poly: bool
) -> list[DetectedBox]:
    """Scale boxes to image pixels and sort them into reading order."""
    boxes = []
    for mb in map_boxes:
        quad = to_image_coords(mb.quad, ratio, width, height)
        polygon = None
        if poly:
            source = mb.polygon if mb.polygon is not None else mb.quad
            polygon = to_image_coords(source, ratio, width, height)
        boxes.append(DetectedBox(quad=quad, score=mb.score, polygon=polygon))
    order = reading_order([b.quad for b in boxes])
    return [boxes[i] for i in order]


class Detector:
    """A loaded CRAFT model and the pre/post-processing around it."""

    def __init__(
        self,
        weights_path: str | Path | None = None,
        device: str = "auto",
        *,
        channels_last: bool = True,
    ) -> None:
        """Load the weights once (None: CRAFT_WEIGHTS or the installed package) onto ``device``.

        ``channels_last`` stores activations as NHWC, which oneDNN and cuDNN convolve faster
        than NCHW; the maps agree with NCHW to float rounding (about 1e-7).
        """
        self.device = resolve_device(device)
        self.weights_path = Path(weights_path) if weights_path else default_weights_path()
        self.model: CRAFT = load_craft(self.weights_path, self.device)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.model = self.model.to(memory_format=self.memory_format)
        self.model_name = self.weights_path.stem

    def detect(
        self,
        image_rgb: np.ndarray,
        params: DetectionParams | None = None,
        *,
        return_maps: bool = False,
    ) -> Detection:
        """Find word boxes in an HxWx3 uint8 RGB image; boxes come back in reading order."""
        params = (params or DetectionParams()).validate()
        if image_rgb.ndim != 3 or image_rgb.shape[2] != 3 or image_rgb.dtype != np.uint8:
            raise InvalidImage(
                f"expected an HxWx3 uint8 RGB image, got {image_rgb.dtype} {image_rgb.shape}"
            )
        height, width = image_rgb.shape[:2]

        t0 = time.perf_counter()
        canvas = prepare(image_rgb, params.canvas_size, params.mag_ratio)
        t1 = time.perf_counter()
        with torch.inference_mode():
            x = torch.from_numpy(canvas.array).permute(2, 0, 1).unsqueeze(0)
            x = x.to(self.device).contiguous(memory_format=self.memory_format)
            scores, _ = self.model(x)
            maps = scores[0].float().cpu().numpy()
        region = np.ascontiguousarray(maps[:, :, 0])
        affinity = np.ascontiguousarray(maps[:, :, 1])
        t2 = time.perf_counter()
        map_boxes = detect_map_boxes(
            region,
            affinity,
            params.text_threshold,
            params.link_threshold,
            params.low_text,
            poly=params.poly,
        )
        boxes = map_boxes_to_image(map_boxes, canvas.ratio, width, height, params.poly)
        t3 = time.perf_counter()

        return Detection(
            width=width,
            height=height,
            boxes=boxes,
            timings_ms={
                "preprocess": (t1 - t0) * 1000.0,
                "network": (t2 - t1) * 1000.0,
                "postprocess": (t3 - t2) * 1000.0,
            },
            ratio=canvas.ratio,
            resized_hw=canvas.resized_hw,
            padded_hw=canvas.padded_hw,
            region=region if return_maps else None,
            affinity=affinity if return_maps else None,
        )

    def describe(self) -> dict[str, Any]:
        """Model facts for /readyz and the ``model`` field of answers."""
        return {
            "name": self.model_name,
            "device": str(self.device),
            "defaults": asdict(DetectionParams()),
        }

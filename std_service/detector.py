"""The CRAFT predictor: the loaded model, with its pre- and post-processing, image to boxes.

``Detector`` is the one object a service needs: it loads the weights once and turns an RGB image
into word boxes in reading order, grouped into lines, in the pixels of the image as sent. It works
on arrays and typed results only; the HTTP layer parses requests into ``DetectionParams``.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import cv2
import numpy as np
import torch

from common import metrics
from common.calibration import calibration_pages
from common.config import Settings
from common.errors import InvalidImage
from common.layout import in_reading_order
from common.models import configure_threads, release_large_buffers, resolve_device
from common.onnx_runtime import OnnxModule, choose_runtime
from common.params import DetectionParams
from common.results import Box, Detection, Quad
from std_service.craft import CRAFT, default_weights_path, load_craft
from std_service.glyphs import missed_glyphs
from std_service.postprocess import detect_map_boxes, map_boxes_to_image
from std_service.preprocess import CanvasInput, prepare, resize_plan
from std_service.scale import detection_ratio, probe_ratio, small_text_height


@dataclass(frozen=True)
class CraftDetection(Detection):
    """A Detection plus what the network saw: the resize, and the score maps when asked for."""

    ratio: float = 1.0  # resize ratio (resized / original)
    resized_hw: tuple[int, int] = (0, 0)
    padded_hw: tuple[int, int] = (0, 0)
    region: np.ndarray | None = field(default=None, repr=False, compare=False)
    affinity: np.ndarray | None = field(default=None, repr=False, compare=False)


class _Pass(NamedTuple):
    """One detection at one scale: the canvas, boxes and lines in image pixels, the maps."""

    canvas: CanvasInput
    boxes: tuple[Box, ...]
    lines: tuple[tuple[int, ...], ...]
    maps: np.ndarray
    timings_ms: dict[str, float]


class Detector:
    """A loaded CRAFT model and the pre/post-processing around it."""

    def __init__(
        self,
        weights_path: str | Path | None = None,
        device: str = "auto",
        *,
        channels_last: bool = True,
        runtime: str = "torch",
        threads: int = 0,
        int8: bool = False,
    ) -> None:
        """Load the weights once (None: CRAFT_WEIGHTS or the installed package) onto ``device``.

        ``channels_last`` stores activations as NHWC, which oneDNN and cuDNN convolve faster
        than NCHW; the maps agree with NCHW to float rounding (about 1e-7). ``runtime`` 'onnx'
        (or 'auto') on the CPU runs the network through ONNX Runtime with ``threads`` threads
        (common/onnx_runtime.py); torch stays the reference and the CUDA path. ``int8`` quantises
        that graph, calibrated on drawn pages (common/calibration.py).
        """
        self.device = resolve_device(device)
        self.weights_path = Path(weights_path) if weights_path else default_weights_path()
        self.model: CRAFT = load_craft(self.weights_path, self.device)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.model = self.model.to(memory_format=self.memory_format)
        self.model_name = self.weights_path.stem
        self.runtime = choose_runtime(runtime, self.device)
        self.onnx: OnnxModule | None = None
        if self.runtime == "onnx":
            self.onnx = OnnxModule(
                self.model,
                [torch.zeros(1, 3, 256, 256)],
                inputs=["image"],
                outputs=["scores", "features"],
                dynamic_axes={"image": {2: "height", 3: "width"}},
                threads=threads,
                calibration=_calibration_canvases() if int8 else None,
            )

    @classmethod
    def from_settings(cls, settings: Settings) -> Detector:
        """The configured weights on the configured device, torch threads set for this process
        and freed activations returned to the system (``release_large_buffers``)."""
        release_large_buffers()
        threads = configure_threads(settings.ocr_threads)
        return cls(
            settings.craft_weights,
            device=settings.ocr_device,
            runtime=settings.profile.runtime,
            threads=threads,
            int8=settings.profile.int8,
        )

    def detect(
        self,
        image_rgb: np.ndarray,
        params: DetectionParams | None = None,
        *,
        return_maps: bool = False,
    ) -> CraftDetection:
        """Find word boxes in an HxWx3 uint8 RGB image; boxes come back in reading order.

        Every detection, whichever transport asked for it, is counted here once (the
        detection-time and boxes-per-document metrics).
        """
        params = (params or DetectionParams()).validate()
        if image_rgb.ndim != 3 or image_rgb.shape[2] != 3 or image_rgb.dtype != np.uint8:
            raise InvalidImage(
                f"expected an HxWx3 uint8 RGB image, got {image_rgb.dtype} {image_rgb.shape}"
            )
        height, width = image_rgb.shape[:2]
        started = time.perf_counter()
        official = resize_plan(height, width, params.canvas_size, params.mag_ratio)[2]
        ratio, timings = official, {}
        first = probe_ratio(height, width, official) if params.text_height > 0 else None
        result = None
        if first is not None:
            probe = self._pass(image_rgb, params, first)
            ratio = detection_ratio(
                small_text_height(probe.boxes), params.text_height, first, official
            )
            if ratio == first:
                result = probe
            else:
                timings["probe"] = sum(probe.timings_ms.values())
        if result is None:
            result = self._pass(image_rgb, params, ratio)
        canvas, boxes, lines, maps = result.canvas, result.boxes, result.lines, result.maps
        timings |= result.timings_ms
        if params.lone_glyphs:
            t0 = time.perf_counter()
            boxes, lines = with_lone_glyphs(
                image_rgb, boxes, lines, maps[:, :, 0], canvas.ratio, params.poly
            )
            timings["postprocess"] += (time.perf_counter() - t0) * 1000.0
        metrics.STD_SECONDS.observe(time.perf_counter() - started)
        metrics.BOXES_PER_DOCUMENT.observe(len(boxes))
        return CraftDetection(
            width=width,
            height=height,
            boxes=boxes,
            lines=lines,
            timings_ms=timings,
            ratio=canvas.ratio,
            resized_hw=canvas.resized_hw,
            padded_hw=canvas.padded_hw,
            region=np.ascontiguousarray(maps[:, :, 0]) if return_maps else None,
            affinity=np.ascontiguousarray(maps[:, :, 1]) if return_maps else None,
        )

    def _pass(self, image_rgb: np.ndarray, params: DetectionParams, ratio: float) -> _Pass:
        """One detection at ``ratio`` (never above the official one, so prepare's canvas cap
        leaves it unchanged): the canvas, boxes and lines in image pixels, the maps, timings."""
        height, width = image_rgb.shape[:2]
        t0 = time.perf_counter()
        canvas = prepare(image_rgb, params.canvas_size, ratio)
        t1 = time.perf_counter()
        maps = self._network(canvas.array)
        t2 = time.perf_counter()
        map_boxes = detect_map_boxes(
            np.ascontiguousarray(maps[:, :, 0]),
            np.ascontiguousarray(maps[:, :, 1]),
            params.text_threshold,
            params.link_threshold,
            params.low_text,
            poly=params.poly,
        )
        boxes, lines = in_reading_order(
            map_boxes_to_image(map_boxes, canvas.ratio, width, height, params.poly)
        )
        t3 = time.perf_counter()
        timings = {
            "preprocess": (t1 - t0) * 1000.0,
            "network": (t2 - t1) * 1000.0,
            "postprocess": (t3 - t2) * 1000.0,
        }
        return _Pass(canvas, boxes, lines, maps, timings)

    def _network(self, canvas: np.ndarray) -> np.ndarray:
        """(H, W, 3) normalised canvas -> (H/2, W/2, 2) region and affinity scores."""
        if self.onnx is not None:
            return self.onnx(canvas.transpose(2, 0, 1)[np.newaxis])[0]
        with torch.inference_mode():
            x = torch.from_numpy(canvas).permute(2, 0, 1).unsqueeze(0)
            x = x.to(self.device).contiguous(memory_format=self.memory_format)
            scores, _ = self.model(x)
            return scores[0].float().cpu().numpy()

    def describe(self, defaults: DetectionParams | None = None) -> dict[str, Any]:
        """Model facts for /readyz and the ``model`` field of answers; ``defaults`` are the
        parameters a request gets when it sends none (the profile's)."""
        return {
            "name": self.model_name,
            "device": str(self.device),
            "runtime": self.runtime,
            "defaults": asdict(defaults or DetectionParams()),
        }


def with_lone_glyphs(
    image_rgb: np.ndarray,
    boxes: tuple[Box, ...],
    lines: tuple[tuple[int, ...], ...],
    region: np.ndarray,
    ratio: float,
    poly: bool = False,
) -> tuple[tuple[Box, ...], tuple[tuple[int, ...], ...]]:
    """The boxes with those of the lone characters CRAFT missed (std_service.glyphs), back in
    reading order; each new box's score is the region score's mean over it, which says how
    little CRAFT saw there. (In polygon mode its polygon is its quad.)"""
    gray = cv2.cvtColor(image_rgb, cv2.COLOR_RGB2GRAY)
    quads = missed_glyphs(gray, [box.quad for box in boxes], lines)
    if not quads:
        return boxes, lines
    found = [Box(quad, _mean_score(region, quad, ratio), quad if poly else None) for quad in quads]
    return in_reading_order([*boxes, *found])


def _mean_score(region: np.ndarray, quad: Quad, ratio: float) -> float:
    """The region map's mean over the quad's bounding rectangle (the map has half the canvas's
    resolution)."""
    scale = ratio / 2.0
    xs, ys = [x * scale for x, _ in quad], [y * scale for _, y in quad]
    x0, x1 = max(0, int(min(xs))), int(np.ceil(max(xs)))
    y0, y1 = max(0, int(min(ys))), int(np.ceil(max(ys)))
    window = region[y0:y1, x0:x1]
    return float(window.mean()) if window.size else 0.0


def _calibration_canvases() -> list[tuple[np.ndarray]]:
    """CRAFT inputs for int8 calibration: the drawn pages, prepared as a request would be."""
    return [
        (prepare(page, 1280, 1.0).array.transpose(2, 0, 1)[np.newaxis],)
        for page in calibration_pages()
    ]

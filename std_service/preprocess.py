"""CRAFT input preparation: aspect-preserving resize, 32-pixel padding, ImageNet normalisation.

Every step follows the official CRAFT test code, because the published weights were tuned with
exactly this input: the long side becomes ``min(mag_ratio * long_side, canvas_size)`` with
truncating ``int()`` sizes and OpenCV bilinear resampling of the 8-bit image, the result sits at
the top-left of a zero canvas whose sides are multiples of 32, and the whole canvas (padding
included, so padding becomes ``-mean / std``) is normalised in float32.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from common.errors import OverBudget
from common.params import DetectionParams

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
STRIDE = 32  # the backbone downsamples 16x and the decoder needs even sizes at every level


@dataclass(frozen=True)
class CanvasInput:
    """The network input for one image and what is needed to map results back."""

    array: np.ndarray  # (padded_h, padded_w, 3) float32, normalised RGB
    ratio: float  # resized side / original side
    resized_hw: tuple[int, int]  # image size after the resize, before padding
    padded_hw: tuple[int, int]  # network input size (multiples of 32)


def resize_plan(
    height: int, width: int, canvas_size: int, mag_ratio: float
) -> tuple[int, int, float]:
    """(new_height, new_width, ratio) for an image of the given size.

    Sides are truncated like the official code; a side that would truncate to 0 (an extremely
    thin image, where the official code crashes) is kept at 1 pixel.
    """
    long_side = max(height, width)
    target = mag_ratio * long_side
    if target > canvas_size:
        target = canvas_size
    ratio = target / long_side
    return max(1, int(height * ratio)), max(1, int(width * ratio)), ratio


def round_up(n: int, multiple: int = STRIDE) -> int:
    """Smallest multiple of ``multiple`` that is >= n."""
    return -(-n // multiple) * multiple


def network_input_hw(
    height: int, width: int, canvas_size: int, mag_ratio: float
) -> tuple[int, int]:
    """The size of the canvas CRAFT runs on for an image of the given size: the resized image
    padded to multiples of 32, exactly as ``prepare`` builds it. What detection costs (time and
    memory) grows with this area, so the detection budget is checked against it.
    """
    new_h, new_w, _ = resize_plan(height, width, canvas_size, mag_ratio)
    return round_up(new_h), round_up(new_w)


def normalize(rgb: np.ndarray) -> np.ndarray:
    """(pixel - 255 * mean) / (255 * std) per RGB channel, in float32 like the reference."""
    out = rgb.astype(np.float32)
    out -= np.array([m * 255.0 for m in IMAGENET_MEAN], dtype=np.float32)
    out /= np.array([s * 255.0 for s in IMAGENET_STD], dtype=np.float32)
    return out


def prepare(image_rgb: np.ndarray, canvas_size: int, mag_ratio: float) -> CanvasInput:
    """Resize an HxWx3 uint8 RGB image onto a padded, normalised canvas."""
    height, width = image_rgb.shape[:2]
    new_h, new_w, ratio = resize_plan(height, width, canvas_size, mag_ratio)
    resized = cv2.resize(image_rgb, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    padded_h, padded_w = network_input_hw(height, width, canvas_size, mag_ratio)
    canvas = np.zeros((padded_h, padded_w, 3), dtype=np.uint8)
    canvas[:new_h, :new_w] = resized
    return CanvasInput(
        array=normalize(canvas),
        ratio=ratio,
        resized_hw=(new_h, new_w),
        padded_hw=(padded_h, padded_w),
    )


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

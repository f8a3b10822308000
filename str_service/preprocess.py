"""Word-crop preprocessing, as the checkpoint family expects it (``ModelSpec.preprocess``).

- ``easyocr`` (the default english_g2): reproduces EasyOCR 1.7 for one crop exactly, as the parity
  references were made (shared/data/parity/README.md): OpenCV bilinear resize to height 64
  (vertical crops: width 64), PIL bicubic resize to min(ceil(64 w'/h'), W), scale to [-1, 1], and
  right-pad to W = 64 * ceil(max(1, w/h)) with copies of the last column; crops read with
  confidence < 0.1 are re-read after EasyOCR's contrast stretch (``contrast_crop``).
- ``dtrb`` (official checkpoints, 32 x 100): the official demo with its default ``PAD=False``:
  PIL bicubic stretch to imgW x imgH, scale to [-1, 1]. No contrast round (the demo has none).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

from str_service.dtrb import ModelSpec

CONTRAST_TARGET = 0.5  # EasyOCR adjust_contrast


def to_gray(crop: np.ndarray) -> np.ndarray:
    """A crop as 2-D uint8 greyscale. Three channels are RGB (the project's decoded images are
    RGB), four RGBA."""
    array = np.asarray(crop)
    if array.dtype != np.uint8:
        if array.dtype.kind not in "iub":
            raise ValueError(f"crops must be uint8 images, got dtype {array.dtype}")
        array = np.clip(array, 0, 255).astype(np.uint8)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim == 3 and array.shape[2] == 3:
        array = cv2.cvtColor(np.ascontiguousarray(array), cv2.COLOR_RGB2GRAY)
    elif array.ndim == 3 and array.shape[2] == 4:
        array = cv2.cvtColor(np.ascontiguousarray(array), cv2.COLOR_RGBA2GRAY)
    if array.ndim != 2:
        raise ValueError(f"crops must be HxW or HxWxC (C in 1, 3, 4), got shape {array.shape}")
    if array.shape[0] < 1 or array.shape[1] < 1:
        raise ValueError(f"empty crop of shape {array.shape}")
    return np.ascontiguousarray(array)


def _aspect(width: int, height: int) -> float:
    """EasyOCR's ``calculate_ratio``: w/h, inverted for vertical crops (same float operations)."""
    ratio = width / height
    if ratio < 1.0:
        ratio = 1.0 / ratio
    return ratio


def easyocr_resize_to_height(gray: np.ndarray, height: int = 64) -> tuple[np.ndarray, int]:
    """Step 1 of EasyOCR's pipeline; returns the resized crop and its padded input width W.

    A crop wider than tall goes to ``height`` x int(height * w/h); a taller one is treated as
    vertical text and goes to int(height * h/w) x ``height`` (EasyOCR passes PIL's LANCZOS constant,
    1, to OpenCV, where 1 is INTER_LINEAR).
    """
    h, w = gray.shape[:2]
    ratio = _aspect(w, h)
    if w / h < 1.0:
        size = (height, int(height * ratio))
    else:
        size = (int(height * ratio), height)
    resized = cv2.resize(gray, size, interpolation=cv2.INTER_LINEAR)
    return resized, height * math.ceil(max(1.0, ratio))


def adjust_contrast_grey(gray: np.ndarray, target: float = CONTRAST_TARGET) -> np.ndarray:
    """EasyOCR's contrast stretch for its second reading. When (p90 - p10) / (p90 + p10) is below
    ``target``, shift so the 10th percentile lands at 25 and scale by 200 / (p90 - p10), clipped
    to 0..255; otherwise the crop is returned unchanged."""
    high = np.percentile(gray, 90)
    low = np.percentile(gray, 10)
    contrast = (high - low) / np.maximum(10, high + low)
    if contrast >= target:
        return gray
    scale = 200.0 / np.maximum(10, high - low)
    stretched = (gray.astype(np.int64) - low + 25) * scale
    return np.clip(stretched, 0, 255).astype(np.uint8)


def _normalize(pixels: np.ndarray) -> np.ndarray:
    """uint8 -> float32 in [-1, 1], the same float32 operations as ToTensor + (x - 0.5) / 0.5."""
    scaled = pixels.astype(np.float32) / np.float32(255.0)
    return (scaled - np.float32(0.5)) / np.float32(0.5)


def easyocr_fit_width(step1: np.ndarray, padded_width: int, height: int = 64) -> np.ndarray:
    """Step 2: PIL bicubic resize to height x min(ceil(height * w'/h'), W), normalised, unpadded.

    Returns float32 (height, content_width)."""
    h, w = step1.shape[:2]
    ratio = w / float(h)
    target = min(math.ceil(height * ratio), padded_width)
    resized = Image.fromarray(step1, "L").resize((target, height), Image.Resampling.BICUBIC)
    return _normalize(np.asarray(resized))


def dtrb_stretch(gray: np.ndarray, height: int, width: int) -> np.ndarray:
    """The official demo's ``ResizeNormalize``: bicubic stretch to width x height, normalised."""
    resized = Image.fromarray(gray, "L").resize((width, height), Image.Resampling.BICUBIC)
    return _normalize(np.asarray(resized))


def pad_right(image: np.ndarray, width: int) -> np.ndarray:
    """(H, w) -> (H, width) filling the extra columns with copies of the last column."""
    h, w = image.shape
    if w >= width:
        return image[:, :width]
    out = np.empty((h, width), dtype=image.dtype)
    out[:, :w] = image
    out[:, w:] = image[:, w - 1 : w]
    return out


@dataclass
class PreparedCrop:
    """A crop ready for the network: normalised pixels (H, content width) and its input width."""

    pixels: np.ndarray
    width: int
    step1: np.ndarray | None = None  # the height-normalised uint8 crop, for the contrast round

    @property
    def content_width(self) -> int:
        return int(self.pixels.shape[1])


def prepare_crop(gray: np.ndarray, spec: ModelSpec) -> PreparedCrop:
    """Preprocess one greyscale crop the way ``spec``'s checkpoint family expects."""
    if spec.preprocess == "easyocr":
        step1, width = easyocr_resize_to_height(gray, spec.imgH)
        return PreparedCrop(easyocr_fit_width(step1, width, spec.imgH), width, step1)
    return PreparedCrop(dtrb_stretch(gray, spec.imgH, spec.imgW), spec.imgW)


def contrast_crop(prepared: PreparedCrop, spec: ModelSpec) -> PreparedCrop:
    """The second-round input: contrast-stretched step-1 image, same padded width as the first."""
    if prepared.step1 is None:
        raise ValueError("the contrast round needs a crop prepared the easyocr way")
    step1 = adjust_contrast_grey(prepared.step1)
    return PreparedCrop(easyocr_fit_width(step1, prepared.width, spec.imgH), prepared.width, step1)

"""Word-crop recognition: preprocessing, width-grouped batching, decoding, and ``Recognizer``.

Preprocessing follows the checkpoint family (``ModelSpec.preprocess``):

- ``easyocr`` (the default english_g2): reproduces EasyOCR 1.7 for one crop exactly, as the parity
  references were made (shared/data/parity/README.md): OpenCV bilinear resize to height 64
  (vertical crops: width 64), PIL bicubic resize to min(ceil(64 w'/h'), W), scale to [-1, 1], and
  right-pad to W = 64 * ceil(max(1, w/h)) with copies of the last column; crops read with
  confidence < 0.1 are re-read after EasyOCR's contrast stretch and the better reading is kept.
- ``dtrb`` (official checkpoints, 32 x 100): the official demo with its default ``PAD=False``:
  PIL bicubic stretch to imgW x imgH, scale to [-1, 1]. No contrast round (the demo has none).

Batching: a BiLSTM reads the whole row, so padding a crop wider than its own W changes its
output. Crops are therefore grouped by exact padded width and only same-width crops share a
forward pass; a batched result then equals the batch-of-one result (up to float rounding).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image

from common.config import Settings
from common.errors import Timeout
from common.geometry import crop_quad
from str_service.charsets import Charset
from str_service.dtrb import LoadedRecognizer, ModelSpec, load_recognizer_model

DEFAULT_MAX_BATCH = 350
# A memory guard for very wide crops (long lines): a forward never holds more input pixels than
# 350 crops of width 512 at height 64. Word crops (W <= 512) always fill batches of max_batch.
DEFAULT_MAX_BATCH_PIXELS = DEFAULT_MAX_BATCH * 64 * 512
# On a CPU the BiLSTM runs fastest on forward passes of a few dozen crops (cache-sized); larger
# ones are slower per crop (monitoring/README.md: the CPU knee). A bucket of 350 is then read in
# several forward passes of at most this many input pixels: 32 crops 256 wide at height 64.
CPU_MAX_BATCH_PIXELS = 32 * 64 * 256
CONTRAST_THRESHOLD = 0.1  # EasyOCR contrast_ths
CONTRAST_TARGET = 0.5  # EasyOCR adjust_contrast


# ------------------------------------------------------------------------------------------
# Pure image functions
# ------------------------------------------------------------------------------------------


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
    assert prepared.step1 is not None
    step1 = adjust_contrast_grey(prepared.step1)
    return PreparedCrop(easyocr_fit_width(step1, prepared.width, spec.imgH), prepared.width, step1)


# ------------------------------------------------------------------------------------------
# Batch planning (pure)
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BatchPlan:
    """Which crops share each forward pass, and how much of the input is padding."""

    batches: tuple[tuple[int, ...], ...]  # indices into the input list, one tuple per forward
    widths: tuple[int, ...]  # tensor width of each batch
    padding_pixels: int  # pixels filled with repeated columns, summed over batches
    content_pixels: int  # pixels of real (resized) image content

    @property
    def sizes(self) -> list[int]:
        return [len(b) for b in self.batches]

    @property
    def padding_fraction(self) -> float:
        total = self.padding_pixels + self.content_pixels
        return self.padding_pixels / total if total else 0.0


def plan_batches(
    widths: Sequence[int],
    content_widths: Sequence[int],
    max_batch: int = DEFAULT_MAX_BATCH,
    height: int = 64,
    max_batch_pixels: int | None = DEFAULT_MAX_BATCH_PIXELS,
) -> BatchPlan:
    """Group crops by exact padded width, narrowest first, at most ``max_batch`` per batch.

    A group larger than the limit is split into near-equal parts (400 crops -> 200 + 200, not
    350 + 50) so no forward pass is a small leftover. ``max_batch_pixels`` lowers the limit for
    very wide crops so that one forward pass can't exhaust memory.
    """
    if len(widths) != len(content_widths):
        raise ValueError("widths and content_widths differ in length")
    if max_batch < 1:
        raise ValueError("max_batch must be >= 1")
    groups: dict[int, list[int]] = {}
    for index, width in enumerate(widths):
        groups.setdefault(int(width), []).append(index)
    batches: list[tuple[int, ...]] = []
    batch_widths: list[int] = []
    padding = content = 0
    for width in sorted(groups):
        members = groups[width]
        limit = max_batch
        if max_batch_pixels is not None:
            limit = max(1, min(limit, max_batch_pixels // (width * height)))
        parts = math.ceil(len(members) / limit)
        base, extra = divmod(len(members), parts)
        start = 0
        for part in range(parts):
            size = base + (1 if part < extra else 0)
            batches.append(tuple(members[start : start + size]))
            batch_widths.append(width)
            start += size
        for index in members:
            used = min(int(content_widths[index]), width)
            content += used * height
            padding += (width - used) * height
    return BatchPlan(tuple(batches), tuple(batch_widths), padding, content)


def padding_if_one_width(
    widths: Sequence[int], content_widths: Sequence[int], height: int = 64
) -> int:
    """Padding pixels if every crop were padded to the widest (one tensor, no grouping)."""
    if not widths:
        return 0
    widest = max(widths)
    return sum((widest - min(int(c), widest)) * height for c in content_widths)


# ------------------------------------------------------------------------------------------
# Decoding (pure, numpy)
# ------------------------------------------------------------------------------------------


def ctc_probabilities(probs: np.ndarray, ignore: Sequence[int] = ()) -> np.ndarray:
    """EasyOCR's post-softmax step: zero ignored classes and renormalise every step (it does the
    division even when nothing is ignored, which moves values by float rounding only)."""
    out = probs.copy()
    if len(ignore):
        out[..., list(ignore)] = 0.0
    return out / out.sum(axis=-1, keepdims=True)


def ctc_greedy_decode(probs: np.ndarray, charset: Charset) -> tuple[str, float]:
    """(T, C) probabilities -> (text, confidence) for one crop.

    Greedy path: arg-max per step, merge repeats, drop blanks (class 0). Confidence is EasyOCR's:
    (product of the arg-max probabilities at non-blank steps) ** (2 / sqrt(n)), 0 when all blank.
    """
    best = probs.argmax(axis=-1)
    best_prob = probs.max(axis=-1)
    keep = np.ones(best.shape, dtype=bool)
    keep[1:] = best[1:] != best[:-1]
    keep &= best != 0
    text = charset.lookup(best[keep].tolist())
    non_blank = best_prob[best != 0]
    if non_blank.size == 0:
        return text, 0.0
    confidence = float(non_blank.astype(np.float64).prod() ** (2.0 / math.sqrt(non_blank.size)))
    return text, confidence


def attn_greedy_decode(probs: np.ndarray, charset: Charset) -> tuple[str, float]:
    """(steps, C) probabilities from the greedy Attn decoder -> (text, confidence).

    Reads up to the first [s] (class 1); confidence is the product of the arg-max probabilities
    of the characters before it, as the official demo reports it (0 for an empty reading).
    """
    best = probs.argmax(axis=-1)
    best_prob = probs.max(axis=-1)
    eos = np.flatnonzero(best == 1)
    end = int(eos[0]) if eos.size else len(best)
    text = charset.lookup(best[:end].tolist())
    if end == 0:
        return text, 0.0
    return text, float(best_prob[:end].astype(np.float64).prod())


# ------------------------------------------------------------------------------------------
# Recognizer
# ------------------------------------------------------------------------------------------


@dataclass
class RecognitionResult:
    """Readings in input order, the size of every forward pass, and where the time went."""

    results: list[tuple[str, float]]
    batches: list[int] = field(default_factory=list)  # includes contrast-round forwards
    timings_ms: dict[str, float] = field(default_factory=dict)
    contrast_crops: int = 0  # crops read a second time after the contrast stretch


class Recognizer:
    """A loaded DTRB/EasyOCR recogniser that reads lists of word crops in width-grouped batches.

    One instance holds one model; callers run one ``recognize`` at a time (the bucket monitor
    does), since concurrent forwards would only compete for the same cores or GPU.
    """

    def __init__(
        self,
        weights_path: str | Path | None = None,
        arch: str | None = None,
        charset: str | None = None,
        device: str | torch.device = "auto",
        max_batch: int = DEFAULT_MAX_BATCH,
        max_batch_pixels: int | None = None,
        contrast_round: bool | None = None,
    ) -> None:
        """``max_batch_pixels`` caps one forward pass's input; None picks it for the device."""
        if max_batch < 1:
            raise ValueError("max_batch must be >= 1")
        self.loaded: LoadedRecognizer = load_recognizer_model(weights_path, arch, charset, device)
        self.max_batch = max_batch
        if max_batch_pixels is None:
            cpu = self.loaded.device.type == "cpu"
            max_batch_pixels = CPU_MAX_BATCH_PIXELS if cpu else DEFAULT_MAX_BATCH_PIXELS
        self.max_batch_pixels = max_batch_pixels
        spec = self.loaded.spec
        if contrast_round is None:
            contrast_round = spec.preprocess == "easyocr" and spec.prediction == "CTC"
        if contrast_round and spec.preprocess != "easyocr":
            raise ValueError("the contrast round needs the easyocr preprocessing")
        if spec.input_channel != 1:
            raise ValueError(f"only greyscale models are supported, got {spec.input_channel} ch")
        self.contrast_round = contrast_round

    @classmethod
    def from_settings(cls, settings: Settings) -> Recognizer:
        """Build from the service settings (STR_WEIGHTS, STR_ARCH, STR_CHARSET, OCR_DEVICE,
        STR_MAX_BATCH)."""
        return cls(
            weights_path=settings.str_weights,
            arch=settings.str_arch,
            charset=settings.str_charset,
            device=settings.ocr_device,
            max_batch=settings.str_max_batch,
        )

    @property
    def spec(self) -> ModelSpec:
        return self.loaded.spec

    @property
    def charset(self) -> Charset:
        return self.loaded.charset

    @property
    def device(self) -> torch.device:
        return self.loaded.device

    @property
    def model_name(self) -> str:
        """E.g. ``english_g2.pth (None-VGG-BiLSTM-CTC)``, for responses and metrics."""
        return f"{self.loaded.weights_path.name} ({self.spec.name})"

    def recognize(
        self,
        crops: Sequence[np.ndarray],
        max_batch: int | None = None,
        deadline: float | None = None,
    ) -> RecognitionResult:
        """Read word crops (greyscale uint8, or RGB/RGBA) and return readings in input order.

        With a ``deadline`` (epoch seconds) the read stops with Timeout (504) before the first
        forward pass that would start after it, so a long read ends when its client's budget
        does instead of holding the model for a request nobody waits for.
        """
        started = time.perf_counter()
        limit = self.max_batch if max_batch is None else max_batch
        if limit < 1:
            raise ValueError("max_batch must be >= 1")
        _check_deadline(deadline, 0, len(crops))
        prepared = [prepare_crop(to_gray(crop), self.spec) for crop in crops]
        timings = {"preprocess": _ms(started)}
        batches: list[int] = []
        results = self._run(prepared, limit, batches, timings, deadline)

        low: list[int] = []
        if self.contrast_round:
            low = [i for i, (_, conf) in enumerate(results) if conf < CONTRAST_THRESHOLD]
            if low:
                t0 = time.perf_counter()
                second_input = [contrast_crop(prepared[i], self.spec) for i in low]
                timings["preprocess"] += _ms(t0)
                second = self._run(second_input, limit, batches, timings, deadline)
                for index, reading in zip(low, second, strict=True):
                    if not results[index][1] > reading[1]:  # EasyOCR keeps round 2 on ties
                        results[index] = reading
        timings["total"] = _ms(started)
        return RecognitionResult(results, batches, timings, contrast_crops=len(low))

    def recognize_quads(
        self, image: np.ndarray, quads: Sequence[np.ndarray], max_batch: int | None = None
    ) -> RecognitionResult:
        """Crop every quad from ``image`` (greyscale first, as the references were cut) and read
        the crops."""
        gray = to_gray(image)
        return self.recognize([crop_quad(gray, q) for q in quads], max_batch=max_batch)

    # -- internals ---------------------------------------------------------------------------

    def _run(
        self,
        prepared: Sequence[PreparedCrop],
        limit: int,
        batches: list[int],
        timings: dict[str, float],
        deadline: float | None = None,
    ) -> list[tuple[str, float]]:
        plan = plan_batches(
            [p.width for p in prepared],
            [p.content_width for p in prepared],
            max_batch=limit,
            height=self.spec.imgH,
            max_batch_pixels=self.max_batch_pixels,
        )
        results: list[tuple[str, float] | None] = [None] * len(prepared)
        decode = ctc_greedy_decode if self.spec.prediction == "CTC" else attn_greedy_decode
        done = 0
        for members, width in zip(plan.batches, plan.widths, strict=True):
            _check_deadline(deadline, done, len(prepared))
            done += len(members)
            t0 = time.perf_counter()
            probs = self._forward([prepared[i].pixels for i in members], width)
            t1 = time.perf_counter()
            timings["forward"] = timings.get("forward", 0.0) + (t1 - t0) * 1000.0
            if self.spec.prediction == "CTC":
                probs = ctc_probabilities(probs)
            for row, index in enumerate(members):
                results[index] = decode(probs[row], self.charset)
            timings["decode"] = timings.get("decode", 0.0) + _ms(t1)
            batches.append(len(members))
        assert all(r is not None for r in results), "every crop belongs to exactly one batch"
        return results  # type: ignore[return-value]

    def _forward(self, pixels: Sequence[np.ndarray], width: int) -> np.ndarray:
        """One forward pass over same-width crops -> softmax probabilities (B, steps, C) on CPU."""
        batch = np.empty((len(pixels), 1, self.spec.imgH, width), dtype=np.float32)
        for row, image in enumerate(pixels):
            batch[row, 0] = pad_right(image, width)
        with torch.inference_mode():
            tensor = torch.from_numpy(batch).to(self.device)
            logits = self.loaded.model(tensor)
            probs = torch.softmax(logits.float(), dim=2)
            return probs.cpu().numpy()


def _check_deadline(deadline: float | None, done: int, total: int) -> None:
    if deadline is not None and time.time() >= deadline:
        raise Timeout(
            f"recognition stopped at the request's deadline ({done} of {total} crops read)"
        )


def _ms(since: float) -> float:
    return (time.perf_counter() - since) * 1000.0

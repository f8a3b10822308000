"""The recognition predictor: word crops in, readings out, in width-grouped forward passes.

``Recognizer`` composes the checkpoint family's preprocessing (``str_service.preprocess``), the
forward-pass plan (``str_service.forward_plan``), the network (``str_service.dtrb``) and the
decoder (``str_service.decoding``). It works on arrays only; the HTTP adapter is
``str_service.routes``, the bucket's consumers are the worker and ``pipeline.local_bucket``.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from common import metrics
from common.calibration import calibration_crops
from common.config import Settings
from common.errors import Timeout
from common.models import configure_threads, release_large_buffers
from common.onnx_runtime import OnnxModule, choose_runtime
from str_service.charsets import Charset
from str_service.correction import correct_reading
from str_service.decoding import attn_greedy_decode, ctc_greedy_decode, ctc_probabilities
from str_service.dtrb import LoadedRecognizer, ModelSpec, load_recognizer_model
from str_service.forward_plan import (
    CPU_MAX_BATCH_PIXELS,
    DEFAULT_MAX_BATCH_PIXELS,
    plan_forward_passes,
)
from str_service.lexicon import Lexicon
from str_service.preprocess import PreparedCrop, contrast_crop, pad_right, prepare_crop, to_gray

CONTRAST_THRESHOLD = 0.1  # EasyOCR contrast_ths: crops read below it get the contrast round


@dataclass
class RecognitionResult:
    """Readings in input order, the size of every forward pass, and where the time went."""

    results: list[tuple[str, float]]
    # crops per network call, contrast-round calls included (not bucket batches)
    forward_passes: list[int] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)
    contrast_crops: int = 0  # crops read a second time after the contrast stretch


class Recognizer:
    """A loaded DTRB/EasyOCR recogniser: lists of word crops read in width-grouped forward passes.

    One instance holds one model; callers run one ``recognize`` at a time (the bucket monitor
    does), since concurrent forwards would only compete for the same cores or GPU.
    """

    def __init__(
        self,
        weights_path: str | Path | None = None,
        arch: str | None = None,
        charset: str | None = None,
        device: str | torch.device = "auto",
        max_batch: int = Settings.str_max_batch,
        max_batch_pixels: int | None = None,
        contrast_round: bool | None = None,
        runtime: str = "torch",
        threads: int = 0,
        int8: bool = False,
        lexicon: Lexicon | None = None,
        decimal_mark: str = Settings.str_decimal_mark,
        min_word_confidence: float = 0.0,
    ) -> None:
        """``max_batch_pixels`` caps one forward pass's input; None picks it for the device.

        ``runtime`` 'onnx' (or 'auto') on the CPU runs a CTC network through ONNX Runtime with
        ``threads`` threads, batch and width dynamic (common/onnx_runtime.py); Attn models, whose
        decoder loops over its own outputs, and CUDA keep torch. ``int8`` quantises that graph,
        calibrated on drawn word crops (common/calibration.py). With a ``lexicon``, CTC
        readings are corrected where it explains the network's probabilities better
        (str_service/correction.py), an amount's separator to ``decimal_mark``; with a
        ``min_word_confidence``, the words of a CTC reading read with less confidence are left
        out of it. Attn readings are left greedy.
        """
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
        self.lexicon = lexicon if spec.prediction == "CTC" else None
        self.decimal_mark = decimal_mark
        self.min_word_confidence = min_word_confidence if spec.prediction == "CTC" else 0.0
        self.runtime = choose_runtime(runtime, self.device) if spec.prediction == "CTC" else "torch"
        self.onnx: OnnxModule | None = None
        if self.runtime == "onnx":
            self.onnx = OnnxModule(
                self.loaded.model,
                [torch.zeros(2, 1, spec.imgH, 4 * spec.imgH)],
                inputs=["crops"],
                outputs=["logits"],
                dynamic_axes={
                    "crops": {0: "batch", 3: "width"},
                    "logits": {0: "batch", 1: "steps"},
                },
                threads=threads,
                calibration=self._calibration_batches() if int8 else None,
            )

    @classmethod
    def from_settings(cls, settings: Settings) -> Recognizer:
        """Build from the service settings (STR_WEIGHTS, STR_ARCH, STR_CHARSET, OCR_DEVICE,
        STR_MAX_BATCH, the profile's runtime, word list and least word confidence, STR_LEXICON,
        STR_DECIMAL_MARK),
        with torch's threads set for this process (OCR_THREADS) and freed activations returned
        to the system (``release_large_buffers``)."""
        release_large_buffers()
        threads = configure_threads(settings.ocr_threads)
        names = (settings.str_weights, settings.str_arch, settings.str_charset)
        return cls(
            *names,
            device=settings.ocr_device,
            max_batch=settings.str_max_batch,
            runtime=settings.profile.runtime,
            threads=threads,
            int8=settings.profile.int8,
            lexicon=Lexicon.load(settings.str_lexicon) if settings.profile.lexicon else None,
            decimal_mark=settings.str_decimal_mark,
            min_word_confidence=settings.profile.min_word_confidence,
        )

    def _calibration_batches(self) -> list[tuple[np.ndarray]]:
        """Network inputs for int8 calibration: drawn crops, one forward pass each."""
        batches = []
        for crop in calibration_crops():
            prepared = prepare_crop(crop, self.spec)
            batch = np.empty((1, 1, self.spec.imgH, prepared.width), dtype=np.float32)
            batch[0, 0] = pad_right(prepared.pixels, prepared.width)
            batches.append((batch,))
        return batches

    def reading_with(self, lexicon: Lexicon | None, min_word_confidence: float = 0.0) -> Recognizer:
        """The same loaded network (and ONNX session) reading with another word list (or none)
        and least word confidence: monitoring.levers compares them without loading and
        calibrating the model again for each."""
        twin = copy.copy(self)
        ctc = self.spec.prediction == "CTC"
        twin.lexicon = lexicon if ctc else None
        twin.min_word_confidence = min_word_confidence if ctc else 0.0
        return twin

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
        passes: list[int] = []
        results = self._run(prepared, limit, passes, timings, deadline)

        low: list[int] = []
        if self.contrast_round:
            low = [i for i, (_, conf) in enumerate(results) if conf < CONTRAST_THRESHOLD]
            if low:
                t0 = time.perf_counter()
                second_input = [contrast_crop(prepared[i], self.spec) for i in low]
                timings["preprocess"] += _ms(t0)
                second = self._run(second_input, limit, passes, timings, deadline)
                for index, reading in zip(low, second, strict=True):
                    if not results[index][1] > reading[1]:  # EasyOCR keeps round 2 on ties
                        results[index] = reading
        timings["total"] = _ms(started)
        # Every read, whichever transport or bucket asked for it, is counted here once.
        metrics.STR_SECONDS.observe(timings["total"] / 1000.0)
        metrics.STR_CROPS.inc(len(crops))
        for size in passes:
            metrics.FORWARD_SIZE.observe(size)
        return RecognitionResult(results, passes, timings, contrast_crops=len(low))

    # -- internals ---------------------------------------------------------------------------

    def _run(
        self,
        prepared: Sequence[PreparedCrop],
        limit: int,
        passes: list[int],
        timings: dict[str, float],
        deadline: float | None = None,
    ) -> list[tuple[str, float]]:
        plan = plan_forward_passes(
            [p.width for p in prepared],
            [p.content_width for p in prepared],
            max_batch=limit,
            height=self.spec.imgH,
            max_batch_pixels=self.max_batch_pixels,
        )
        results: list[tuple[str, float] | None] = [None] * len(prepared)
        decode = ctc_greedy_decode if self.spec.prediction == "CTC" else attn_greedy_decode
        done = 0
        for members, width in zip(plan.passes, plan.widths, strict=True):
            _check_deadline(deadline, done, len(prepared))
            done += len(members)
            t0 = time.perf_counter()
            probs = self._forward([prepared[i].pixels for i in members], width)
            t1 = time.perf_counter()
            timings["forward"] = timings.get("forward", 0.0) + (t1 - t0) * 1000.0
            if self.spec.prediction == "CTC":
                probs = ctc_probabilities(probs)
            for row, index in enumerate(members):
                text, confidence = decode(probs[row], self.charset)
                if self.lexicon is not None or self.min_word_confidence > 0:
                    text = correct_reading(
                        probs[row],
                        self.charset,
                        self.lexicon,
                        decimal_mark=self.decimal_mark,
                        min_word_confidence=self.min_word_confidence,
                    )
                results[index] = (text, confidence)
            timings["decode"] = timings.get("decode", 0.0) + _ms(t1)
            passes.append(len(members))
        missing = [i for i, r in enumerate(results) if r is None]
        if missing:
            raise RuntimeError(f"the forward plan left crops {missing[:5]} unread")
        return results  # type: ignore[return-value]

    def _forward(self, pixels: Sequence[np.ndarray], width: int) -> np.ndarray:
        """One forward pass over same-width crops -> softmax probabilities (B, steps, C) on CPU."""
        batch = np.empty((len(pixels), 1, self.spec.imgH, width), dtype=np.float32)
        for row, image in enumerate(pixels):
            batch[row, 0] = pad_right(image, width)
        if self.onnx is not None:
            return _softmax(self.onnx(batch))
        with torch.inference_mode():
            tensor = torch.from_numpy(batch).to(self.device)
            logits = self.loaded.model(tensor)
            probs = torch.softmax(logits.float(), dim=2)
            return probs.cpu().numpy()


def _softmax(logits: np.ndarray) -> np.ndarray:
    """torch.softmax over the classes, in float32 as torch computes it."""
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def _check_deadline(deadline: float | None, done: int, total: int) -> None:
    if deadline is not None and time.time() >= deadline:
        raise Timeout(
            f"recognition stopped at the request's deadline ({done} of {total} crops read)"
        )


def _ms(since: float) -> float:
    return (time.perf_counter() - since) * 1000.0

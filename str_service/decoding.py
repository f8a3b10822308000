"""Decoding the recogniser's per-step probabilities into text and a confidence (numpy only)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from str_service.charsets import Charset


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
    return text, ctc_confidence(best_prob[best != 0])


def ctc_confidence(frame_probs: np.ndarray) -> float:
    """EasyOCR's confidence of characters read from frames whose arg-max probabilities are
    ``frame_probs``: their product ** (2 / sqrt(frames)), 0 for none (a crop's whole reading,
    or one word of it, ``correction.correct_reading``)."""
    if frame_probs.size == 0:
        return 0.0
    return float(frame_probs.astype(np.float64).prod() ** (2.0 / math.sqrt(frame_probs.size)))


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

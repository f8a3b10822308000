"""Profiles: the engine's behaviour as one named choice (``OCR_PROFILE``).

``official`` reproduces the official code exactly: torch, CRAFT at the official scale (canvas
1280, mag 1.5), every detected box read on its own (the parity tests run it). ``fast``, the
default, is what measured better on a CPU (monitoring/README.md, "Accuracy and speed"): ONNX
Runtime on the CPU (torch on CUDA), detection at a scale chosen from the text's own size with
boxes for the lone characters CRAFT misses (``std_service.glyphs``), neighbouring words of a
line read as one crop with a margin around it (``common.segments``), readings corrected where a
word list or a number's format explains the network's probabilities better, and the words the
network was unsure of left out (``str_service.correction``).
Each lever is a field, so a request or a test can take one without the others.
"""

from __future__ import annotations

from dataclasses import dataclass

from common.params import DetectionParams


@dataclass(frozen=True)
class Profile:
    runtime: str  # common.onnx_runtime.RUNTIMES
    int8: bool  # quantise the ONNX graphs (on the CPU only, where ONNX Runtime runs them)
    detection: DetectionParams  # the requests' defaults
    segment_gap: float  # words closer than this x their height are read as one crop; 0: never
    segment_margin: float  # white around each crop, x its height; 0: the box as detected
    lexicon: bool  # correct readings by a word list and number formats (str_service.correction)
    # Leave out of a reading the words the network read with less confidence than this (its
    # greedy characters' confidence, as EasyOCR computes a crop's); 0: keep every word.
    min_word_confidence: float


PROFILES = {
    "official": Profile(
        runtime="torch",
        int8=False,
        detection=DetectionParams(),
        segment_gap=0.0,
        segment_margin=0.0,
        lexicon=False,
        min_word_confidence=0.0,
    ),
    "fast": Profile(
        runtime="auto",
        int8=True,
        detection=DetectionParams(text_height=16.0, lone_glyphs=True),
        segment_gap=1.0,
        segment_margin=0.1,
        lexicon=True,
        min_word_confidence=0.2,
    ),
}

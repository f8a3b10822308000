"""Drawn text for int8 calibration: what the quantised models' activation ranges are fitted on.

Static int8 quantisation needs example inputs to fix each activation's range. These are drawn
on the spot with OpenCV's fonts (no data set travels with the code, nothing is downloaded):
lines of words, digits and punctuation at several sizes and stroke widths, dark on light and
light on dark, on a slightly uneven background. Seeded, so every start-up quantises alike.
"""

from __future__ import annotations

import cv2
import numpy as np

_FONTS = (
    cv2.FONT_HERSHEY_SIMPLEX,
    cv2.FONT_HERSHEY_DUPLEX,
    cv2.FONT_HERSHEY_COMPLEX,
    cv2.FONT_HERSHEY_TRIPLEX,
    cv2.FONT_HERSHEY_PLAIN,
)
_WORDS = (
    "Invoice",
    "TOTAL",
    "Amount",
    "12.50",
    "Date:",
    "03/12/2026",
    "Qty",
    "RM74.68",
    "the",
    "shipping",
    "Tel.",
    "(03)",
    "5542-3228",
    "Receipt",
    "No.",
    "Cash",
    "Change",
    "GST",
    "6%",
    "Street",
    "Name",
    "Signature",
    "EXIT",
    "Theatre",
    "harbour",
    "form",
    "x2",
    "#4417",
    "@",
)


def _line(rng: np.random.Generator) -> str:
    return " ".join(rng.choice(_WORDS, size=int(rng.integers(2, 7))))


def calibration_pages(
    count: int = 1, width: int = 320, height: int = 448, seed: int = 0
) -> list[np.ndarray]:
    """``count`` RGB pages of text lines at mixed sizes."""
    rng = np.random.default_rng(seed)
    pages = []
    for index in range(count):
        shade = np.linspace(235, 255, width, dtype=np.float32)[np.newaxis, :, np.newaxis]
        page = np.repeat(np.repeat(shade, height, axis=0), 3, axis=2).astype(np.uint8)
        y = 30
        while y < height - 30:
            scale = float(rng.uniform(0.5, 1.6))
            thickness = int(rng.integers(1, 3))
            font = _FONTS[int(rng.integers(len(_FONTS)))]
            ink = tuple(int(v) for v in rng.integers(0, 90, size=3))
            cv2.putText(
                page,
                _line(rng),
                (int(rng.integers(10, 60)), y),
                font,
                scale,
                ink,
                thickness,
                cv2.LINE_AA,
            )
            y += int(40 * scale) + int(rng.integers(8, 30))
        if index % 2:
            band = slice(height // 2, height // 2 + 120)
            page[band] = 255 - page[band]  # light text on a dark band
        pages.append(page)
    return pages


def calibration_crops(count: int = 48, seed: int = 1) -> list[np.ndarray]:
    """``count`` greyscale crops of one to four words, as the recogniser gets them."""
    rng = np.random.default_rng(seed)
    crops = []
    for index in range(count):
        text = " ".join(rng.choice(_WORDS, size=int(rng.integers(1, 5))))
        font = _FONTS[index % len(_FONTS)]
        scale = float(rng.uniform(0.5, 1.2))
        thickness = int(rng.integers(1, 3))
        (width, height), base = cv2.getTextSize(text, font, scale, thickness)
        pad = max(2, height // 5)
        crop = np.full((height + base + 2 * pad, width + 2 * pad), 245, np.uint8)
        cv2.putText(
            crop,
            text,
            (pad, pad + height),
            font,
            scale,
            int(rng.integers(0, 80)),
            thickness,
            cv2.LINE_AA,
        )
        crops.append(255 - crop if index % 5 == 4 else crop)
    return crops

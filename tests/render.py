"""Images the tests draw themselves, so the core behaviour is checked without shared data."""

from __future__ import annotations

import struct
import zlib

import cv2
import numpy as np


def render_words(
    lines: list[list[str]],
    scale: float = 1.2,
    thickness: int = 2,
    margin: int = 24,
    gap: int = 28,
) -> tuple[np.ndarray, list[tuple[str, list[list[float]]]]]:
    """Draw words in black on white, line by line; return the RGB image and each word's quad."""
    font = cv2.FONT_HERSHEY_SIMPLEX
    placed: list[tuple[str, tuple[int, int], tuple[int, int], int]] = []
    y = margin
    width = 0
    for words in lines:
        x = margin
        line_h = 0
        sizes = [cv2.getTextSize(w, font, scale, thickness) for w in words]
        for word, ((w, h), base) in zip(words, sizes, strict=True):
            placed.append((word, (x, y), (w, h), base))
            x += w + gap
            line_h = max(line_h, h + base)
        width = max(width, x - gap + margin)
        y += line_h + gap
    image = np.full((y - gap + margin, width, 3), 255, np.uint8)
    boxes = []
    for word, (x, top), (w, h), base in placed:
        cv2.putText(image, word, (x, top + h), font, scale, (0, 0, 0), thickness, cv2.LINE_AA)
        quad = [[x, top], [x + w, top], [x + w, top + h + base], [x, top + h + base]]
        boxes.append((word, [[float(a), float(b)] for a, b in quad]))
    return image, boxes


def png_bytes(image_rgb: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".png", cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR))
    assert ok
    return data.tobytes()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG signature, IHDR and IEND, no pixel data: it claims a size and costs nothing."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")

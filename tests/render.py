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


def pdf_bytes(images_rgb: list[np.ndarray], dpi: float = 200.0) -> bytes:
    """A scanned document: each image one PDF page, sized so that rendering the page at ``dpi``
    gives back the image's own pixel size (built with fpdf2, as the service's exports are)."""
    import io

    from fpdf import FPDF

    pdf = FPDF(unit="pt")
    pdf.set_auto_page_break(False)
    pdf.set_margin(0)
    for image in images_rgb:
        height, width = image.shape[:2]
        size = (width * 72.0 / dpi, height * 72.0 / dpi)
        pdf.add_page(format=size)
        pdf.image(io.BytesIO(png_bytes(image)), x=0, y=0, w=size[0], h=size[1])
    return bytes(pdf.output())


def tiff_bytes(images_rgb: list[np.ndarray]) -> bytes:
    """A multi-page TIFF, one page per image (Pillow, LZW-compressed)."""
    import io

    from PIL import Image

    frames = [Image.fromarray(image) for image in images_rgb]
    out = io.BytesIO()
    frames[0].save(
        out, format="TIFF", save_all=True, append_images=frames[1:], compression="tiff_lzw"
    )
    return out.getvalue()


def blank_pdf(pages: int, size: tuple[float, float] = (612, 792), password: str = "") -> bytes:
    """``pages`` empty pages of ``size`` points; with ``password`` it opens only with it."""
    from fpdf import FPDF

    pdf = FPDF(unit="pt")
    for _ in range(pages):
        pdf.add_page(format=size)
    if password:
        pdf.set_encryption(owner_password="owner", user_password=password)
    return bytes(pdf.output())


def pdf_without_pages() -> bytes:
    """A well-formed PDF whose page tree is empty (fpdf2 won't write one), offsets exact."""
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [] /Count 0 >>"]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    trailer = b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n"
    out += trailer % (len(objects) + 1, xref)
    return bytes(out)

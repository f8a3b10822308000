"""common.images: every service decodes client bytes the same way and rejects bad input alike."""

from __future__ import annotations

import io
import struct
import time
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image

from common.errors import ImageTooLarge, InvalidImage, MissingImage
from common.images import decode_image


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def sample_rgb(width: int = 24, height: int = 16) -> np.ndarray:
    """Distinct flat colour blocks, so a channel swap or a flip is visible even after JPEG."""
    array = np.full((height, width, 3), 255, np.uint8)
    array[: height // 2, : width // 2] = (255, 0, 0)  # red top-left
    array[: height // 2, width // 2 :] = (0, 0, 255)  # blue top-right
    array[height // 2 :, : width // 2] = (0, 160, 0)  # green bottom-left
    return array


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def png_header_only(width: int, height: int) -> bytes:
    """A valid PNG signature and IHDR that claims width x height, then IEND: no pixel data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IEND", b"")


@pytest.mark.parametrize(
    ("fmt", "options"),
    [
        ("PNG", {}),
        ("TIFF", {}),
        ("WEBP", {"lossless": True}),
        ("BMP", {}),
    ],
)
def test_lossless_formats_decode_to_exact_rgb(fmt: str, options: dict) -> None:
    expected = sample_rgb()
    decoded = decode_image(encode(Image.fromarray(expected), fmt, **options))
    assert decoded.dtype == np.uint8
    assert decoded.shape == (16, 24, 3)
    np.testing.assert_array_equal(decoded, expected)


def test_jpeg_decodes_as_rgb_not_bgr() -> None:
    expected = sample_rgb(32, 32)
    decoded = decode_image(encode(Image.fromarray(expected), "JPEG", quality=95))
    assert decoded.shape == (32, 32, 3) and decoded.dtype == np.uint8
    # Compare block centres; JPEG blurs the edges between blocks.
    assert np.abs(decoded[4, 4].astype(int) - (255, 0, 0)).max() < 30
    assert np.abs(decoded[4, 28].astype(int) - (0, 0, 255)).max() < 30
    assert np.abs(decoded[28, 4].astype(int) - (0, 160, 0)).max() < 30


def test_opencv_encoded_png_is_rgb() -> None:
    """Bytes written by OpenCV (BGR in memory) must still come back as RGB."""
    bgr = np.zeros((4, 4, 3), np.uint8)
    bgr[..., 2] = 200  # red in OpenCV's channel order
    ok, encoded = cv2.imencode(".png", bgr)
    assert ok
    decoded = decode_image(encoded.tobytes())
    assert tuple(decoded[0, 0]) == (200, 0, 0)


def test_grayscale_expands_to_three_equal_channels() -> None:
    grey = np.arange(48, dtype=np.uint8).reshape(6, 8) * 5
    decoded = decode_image(encode(Image.fromarray(grey, mode="L"), "PNG"))
    assert decoded.shape == (6, 8, 3)
    for channel in range(3):
        np.testing.assert_array_equal(decoded[..., channel], grey)


def test_one_bit_image_decodes() -> None:
    image = Image.new("1", (5, 3), 1)
    image.putpixel((0, 0), 0)
    decoded = decode_image(encode(image, "PNG"))
    assert decoded.shape == (3, 5, 3)
    assert tuple(decoded[0, 0]) == (0, 0, 0) and tuple(decoded[1, 1]) == (255, 255, 255)


def test_rgba_alpha_is_composited_on_white() -> None:
    rgba = np.zeros((2, 3, 4), np.uint8)
    rgba[0, 0] = (0, 0, 0, 0)  # fully transparent black -> paper white
    rgba[0, 1] = (255, 0, 0, 255)  # opaque red stays red
    rgba[0, 2] = (0, 0, 0, 128)  # half-transparent black -> mid grey
    decoded = decode_image(encode(Image.fromarray(rgba, mode="RGBA"), "PNG"))
    assert decoded.shape == (2, 3, 3)
    assert tuple(decoded[0, 0]) == (255, 255, 255)
    assert tuple(decoded[0, 1]) == (255, 0, 0)
    assert all(abs(int(v) - 127) <= 1 for v in decoded[0, 2])


def test_grey_with_alpha_is_composited_on_white() -> None:
    la = Image.new("LA", (2, 1), (0, 255))
    la.putpixel((1, 0), (0, 0))
    decoded = decode_image(encode(la, "PNG"))
    assert tuple(decoded[0, 0]) == (0, 0, 0)
    assert tuple(decoded[0, 1]) == (255, 255, 255)


def test_palette_transparency_is_composited_on_white() -> None:
    image = Image.new("P", (2, 1), 0)
    image.putpalette([0, 0, 0, 10, 20, 30] + [0] * 762)
    image.putpixel((1, 0), 1)
    data = encode(image, "PNG", transparency=0)
    decoded = decode_image(data)
    assert tuple(decoded[0, 0]) == (255, 255, 255)
    assert tuple(decoded[0, 1]) == (10, 20, 30)


def test_16bit_grey_png_is_scaled_to_8bit() -> None:
    values = np.array([[0, 257, 32768, 65535], [1000, 5000, 20000, 60000]], dtype=np.uint16)
    ok, encoded = cv2.imencode(".png", values)
    assert ok
    decoded = decode_image(encoded.tobytes())
    assert decoded.shape == (2, 4, 3) and decoded.dtype == np.uint8
    expected = np.rint(values / 65535.0 * 255.0).astype(np.uint8)
    np.testing.assert_array_equal(decoded[..., 0], expected)
    np.testing.assert_array_equal(decoded[..., 2], expected)


def test_dark_16bit_png_stays_dark() -> None:
    """A 16-bit image whose samples are all small must not be mistaken for an 8-bit one."""
    ok, encoded = cv2.imencode(".png", np.full((2, 2), 200, np.uint16))
    assert ok
    assert decode_image(encoded.tobytes()).max() <= 1


def test_16bit_colour_png_is_scaled_to_8bit() -> None:
    bgr16 = np.zeros((2, 2, 3), np.uint16)
    bgr16[..., 2] = 65535  # red
    bgr16[..., 1] = 32896  # green, half way (32896 / 257 = 128)
    ok, encoded = cv2.imencode(".png", bgr16)
    assert ok
    assert tuple(decode_image(encoded.tobytes())[0, 0]) == (255, 128, 0)


def test_16bit_tiff_is_scaled_to_8bit() -> None:
    values = np.array([[0, 65535], [32768, 1000]], dtype=np.uint16)
    decoded = decode_image(encode(Image.fromarray(values), "TIFF"))
    np.testing.assert_array_equal(decoded[..., 1], [[0, 255], [128, 4]])


def test_exif_orientation_6_is_applied() -> None:
    """Orientation 6 = stored sideways, display rotated 90 degrees clockwise (phone photos)."""
    stored = np.full((32, 64, 3), 255, np.uint8)
    stored[:16, :16] = (255, 0, 0)  # red square in the stored top-left corner
    exif = Image.Exif()
    exif[0x0112] = 6
    data = encode(Image.fromarray(stored), "JPEG", quality=95, exif=exif)

    decoded = decode_image(data)
    assert decoded.shape == (64, 32, 3)  # portrait after rotation
    # Rotating clockwise carries the stored top-left corner to the top-right.
    top_right = decoded[2:14, 18:30].reshape(-1, 3).mean(axis=0)
    top_left = decoded[2:14, 2:14].reshape(-1, 3).mean(axis=0)
    assert top_right[0] > 200 and top_right[1] < 60 and top_right[2] < 60
    assert top_left.min() > 200  # white


def test_not_an_image_is_invalid_image() -> None:
    with pytest.raises(InvalidImage):
        decode_image(b"this is plain text, not a picture")


def test_truncated_png_is_invalid_image() -> None:
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    data = encode(Image.fromarray(noise), "PNG")
    with pytest.raises(InvalidImage):
        decode_image(data[: len(data) // 2])


def test_truncated_jpeg_is_invalid_image() -> None:
    noise = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    data = encode(Image.fromarray(noise), "JPEG", quality=90)
    with pytest.raises(InvalidImage):
        decode_image(data[: len(data) // 2])


def test_empty_bytes_are_missing_image() -> None:
    with pytest.raises(MissingImage):
        decode_image(b"")


def test_gif_is_rejected_as_unsupported() -> None:
    data = encode(Image.new("P", (4, 4)), "GIF")
    with pytest.raises(InvalidImage, match="GIF"):
        decode_image(data)


def test_huge_header_is_rejected_before_decoding() -> None:
    data = png_header_only(30000, 30000)
    assert len(data) < 100
    started = time.perf_counter()
    with pytest.raises(ImageTooLarge) as caught:
        decode_image(data)
    assert time.perf_counter() - started < 0.5
    assert caught.value.status == 413 and caught.value.code == "image_too_large"


def test_pixel_limit_is_configurable() -> None:
    data = encode(Image.new("RGB", (100, 100)), "PNG")
    assert decode_image(data, max_pixels=10_000).shape == (100, 100, 3)
    with pytest.raises(ImageTooLarge):
        decode_image(data, max_pixels=9_999)
    # A header over the default limit passes the size check when the limit is raised (it then
    # fails only because there are no pixels).
    with pytest.raises(InvalidImage):
        decode_image(png_header_only(8000, 8000), max_pixels=100_000_000)

"""The one image decoder of every service.

Bytes from a client become an 8-bit RGB array here and nowhere else, so every service accepts the
same formats and rejects the same bad input the same way. The pixel limit is checked from the
header, before any pixel is decoded, so a small file that claims a huge size costs nothing.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from common.errors import ImageTooLarge, InvalidImage, MissingImage, TooManyPages

SUPPORTED_FORMATS = frozenset({"PNG", "JPEG", "MPO", "TIFF", "WEBP", "BMP"})
DEFAULT_MAX_PIXELS = 50_000_000

# We enforce our own, configurable limit from the header, so Pillow's global bomb guard (which
# would raise its own exception type at a fixed size) is switched off in favour of that check.
Image.MAX_IMAGE_PIXELS = None


def decode_image(
    data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS, *, gray: bool = False
) -> np.ndarray:
    """Decode PNG, JPEG, TIFF, WebP or BMP bytes into an HxWx3 uint8 RGB array.

    EXIF orientation is applied (phone photos arrive rotated otherwise); greyscale is expanded,
    alpha is composited on white (transparent text backgrounds are usually meant as paper), and
    16-bit samples are scaled to 8 bits. With ``gray`` the result is HxW uint8 greyscale, as
    the recogniser reads it: an 8-bit grey image as it is, anything else through RGB and
    OpenCV's conversion (the same values either way, without expanding grey crops to RGB).
    A multi-page TIFF gives its first page here; ``decode_pages`` gives them all.
    """
    return _decode_frame(_open(data), max_pixels, gray=gray)


def decode_pages(
    data: bytes,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_pages: int = 1,
    only: Sequence[int] | None = None,
) -> tuple[int, list[np.ndarray]]:
    """The page count of an image and its pages as RGB arrays: every page of a multi-page TIFF
    (or ``only`` those, 0-based), any other image as its one page.

    The pages are counted, at most ``max_pages`` + 1 of them, and each page's size is checked
    from its header before any pixel is decoded, so a file declaring thousands of pages or one
    huge page is refused at the cost of reading its headers.
    """
    image = _open(data)
    if image.format != "TIFF":
        _check_size(*image.size, max_pixels)
        return 1, [_decode_frame(image, max_pixels)] if only is None or 0 in only else []
    sizes = []
    try:
        while True:
            sizes.append(image.size)
            if len(sizes) > max_pages:
                raise TooManyPages(f"the TIFF has more than {max_pages} pages (OCR_MAX_PAGES)")
            image.seek(len(sizes))
    except EOFError:
        pass
    except (OSError, ValueError, SyntaxError) as exc:
        raise InvalidImage(f"TIFF page {len(sizes) + 1} is corrupt: {exc}") from None
    for number, (width, height) in enumerate(sizes, start=1):
        _check_size(width, height, max_pixels, f"page {number} is ")
    pages = []
    for index in range(len(sizes)) if only is None else only:
        if not 0 <= index < len(sizes):
            raise InvalidImage(f"the TIFF has no page {index + 1}")
        image.seek(index)
        pages.append(_decode_frame(image, max_pixels))
    return len(sizes), pages


def _check_size(width: int, height: int, max_pixels: int, what: str = "image is ") -> None:
    if width < 1 or height < 1:
        raise InvalidImage(f"{what}{width}x{height}: it has no pixels")
    if width * height > max_pixels:
        raise ImageTooLarge(
            f"{what}{width}x{height} = {width * height} pixels; the limit is {max_pixels}"
        )


def _decode_frame(image: Image.Image, max_pixels: int, *, gray: bool = False) -> np.ndarray:
    """The current frame of an opened image, size-checked, oriented and converted."""
    _check_size(*image.size, max_pixels)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            image.load()
            image = ImageOps.exif_transpose(image)
    except (OSError, ValueError, SyntaxError) as exc:
        raise InvalidImage(f"image data is truncated or corrupt: {exc}") from None
    if gray and image.mode == "L":
        return np.ascontiguousarray(np.asarray(image))
    rgb = _to_rgb8(image)
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) if gray else rgb


def _open(data: bytes) -> Image.Image:
    if not data:
        raise MissingImage("the image is empty")
    try:
        image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise InvalidImage("not a recognised image; send PNG, JPEG, TIFF, WebP or BMP") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise InvalidImage(f"image header is corrupt: {exc}") from None
    if image.format not in SUPPORTED_FORMATS:
        raise InvalidImage(
            f"{image.format} images are not supported; send PNG, JPEG, TIFF, WebP or BMP"
        )
    return image


def _to_rgb8(image: Image.Image) -> np.ndarray:
    mode = image.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        array = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if mode.startswith("I;16") or array.max(initial=0) > 255 else 255.0
        grey = np.clip(np.rint(array * (255.0 / peak)), 0, 255).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(white, rgba).convert("RGB"))
    if mode != "RGB":
        image = image.convert("RGB")
    return np.ascontiguousarray(np.asarray(image))

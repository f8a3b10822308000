"""The annotated image: the upload with each word's quad outlined in its confidence colour.

Pillow only, so the drawing is tested on pixels without a browser; where each quad's number tag
goes is web/labels.py's job.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence

from PIL import Image, ImageDraw, ImageFont, ImageOps, UnidentifiedImageError

from web import labels
from web.errors import PageError

# Red (unsure) through amber to green (sure): the colours of the quads and the legend.
_LOW, _MID, _HIGH = (220, 38, 38), (234, 160, 8), (22, 163, 74)
UNKNOWN_COLOUR = (128, 128, 128)
MAX_DISPLAY_SIDE = 2000
_PAD = 2  # pixels between a tag's edge and its number


def confidence_colour(confidence: float) -> tuple[int, int, int]:
    """Map a confidence in [0, 1] onto red -> amber -> green; anything unusable is grey."""
    try:
        value = float(confidence)
    except (TypeError, ValueError):
        return UNKNOWN_COLOUR
    if not math.isfinite(value):
        return UNKNOWN_COLOUR
    value = min(1.0, max(0.0, value))
    start, end, t = (_LOW, _MID, value * 2) if value < 0.5 else (_MID, _HIGH, value * 2 - 1)
    return tuple(round(a + (b - a) * t) for a, b in zip(start, end, strict=True))


def open_image(data: bytes, frame: int = 0) -> Image.Image:
    """The upload (its ``frame``-th page, for a multi-page TIFF) as RGB, turned upright the way
    the services turn it (EXIF orientation)."""
    try:
        image = Image.open(io.BytesIO(data))
        if frame:
            image.seek(frame)
        image = ImageOps.exif_transpose(image)
        return image.convert("RGB")
    except EOFError:
        raise PageError("invalid_image", f"The file has no page {frame + 1} to display.") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise PageError("invalid_image", f"The page can't display this image ({exc}).") from None


def draw_quads(
    image: Image.Image,
    words: Sequence[Mapping],
    size: tuple[int, int] | None = None,
    max_side: int = MAX_DISPLAY_SIDE,
) -> Image.Image:
    """A copy of ``image`` with each word's quad outlined in its confidence colour and numbered.

    ``size`` is the (width, height) the answer's quads refer to; when the image shown differs
    (or is shrunk to ``max_side`` so the browser isn't sent a 50-megapixel PNG), the quads are
    scaled with it.
    """
    canvas = image.convert("RGB")
    ref_w, ref_h = size or canvas.size
    if max(canvas.size) > max_side:
        shrink = max_side / max(canvas.size)
        canvas = canvas.resize(
            (max(1, round(canvas.width * shrink)), max(1, round(canvas.height * shrink))),
            Image.Resampling.LANCZOS,
        )
    else:
        canvas = canvas.copy()
    sx, sy = canvas.width / max(1, ref_w), canvas.height / max(1, ref_h)
    long_side = max(canvas.size)
    line = max(2, round(long_side / 600))
    font = _font(max(11, round(long_side / 70)))
    draw = ImageDraw.Draw(canvas)
    drawn: list[tuple[str, list[tuple[float, float]], tuple[int, int, int]]] = []
    for number, word in enumerate(words, start=1):
        points = _points(word.get("quad"), sx, sy)
        if points is None:
            continue
        colour = confidence_colour(word.get("confidence", float("nan")))
        draw.line([*points, points[0]], fill=colour, width=line, joint="curve")
        drawn.append((str(number), points, colour))
    # Tags last, so no other quad's outline crosses a number.
    extents = [draw.textbbox((0, 0), text, font=font) for text, _, _ in drawn]
    rects = labels.place_labels(
        [labels.bounding_box(points) for _, points, _ in drawn],
        [(r - left + 2 * _PAD, b - top + 2 * _PAD) for left, top, r, b in extents],
        canvas.size,
        gap=line,
    )
    for (text, _, colour), extent, rect in zip(drawn, extents, rects, strict=True):
        draw.rectangle(rect, fill=colour)
        draw.text(
            (rect[0] + _PAD - extent[0], rect[1] + _PAD - extent[1]),
            text,
            fill=(255, 255, 255),
            font=font,
        )
    return canvas


def _points(quad: object, sx: float, sy: float) -> list[tuple[float, float]] | None:
    try:
        points = [(float(x) * sx, float(y) * sy) for x, y in quad]  # type: ignore[union-attr]
    except (TypeError, ValueError):
        return None
    if len(points) < 3 or not all(math.isfinite(v) for p in points for v in p):
        return None
    return points


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow built without FreeType: fixed-size bitmap font
        return ImageFont.load_default()


def png_bytes(image: Image.Image) -> bytes:
    """``image`` encoded as PNG, the format the page shows and the tools send."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()

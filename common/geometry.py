"""Quad geometry and crops shared by every service.

A quad is four ``[x, y]`` points, clockwise from the top-left, in the pixels of the image as sent.
Everything here is a pure function of numpy arrays so it can be tested without a model or a server.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import cv2
import numpy as np

from common.errors import InvalidBoxes

Quad = np.ndarray  # float32 array of shape (4, 2)

# A quad whose corners sit within this many pixels of its own bounding box is cut as that box;
# this matches how the reference recogniser outputs were made (see parity/README.md).
AXIS_ALIGNED_TOLERANCE_PX = 1.0
MIN_BOX_AREA_PX = 1.0


def order_quad(points: np.ndarray) -> Quad:
    """Order four points clockwise starting at the corner with the smallest x + y.

    CRAFT and the official reference emit quads in this order; consumers rely on corner 0 being the
    top-left so that crops come out upright.
    """
    pts = np.asarray(points, dtype=np.float32).reshape(4, 2)
    centre = pts.mean(axis=0)
    angles = np.arctan2(pts[:, 1] - centre[1], pts[:, 0] - centre[0])
    clockwise = pts[np.argsort(angles, kind="stable")]  # image y points down: ascending = clockwise
    start = int(np.argmin(clockwise.sum(axis=1)))
    return np.roll(clockwise, -start, axis=0)


def quad_area(quad: np.ndarray) -> float:
    """Shoelace area, used to reject degenerate boxes before they reach a crop."""
    q = np.asarray(quad, dtype=np.float64).reshape(4, 2)
    x, y = q[:, 0], q[:, 1]
    return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2.0)


def bounding_box(quad: np.ndarray) -> tuple[float, float, float, float]:
    """(x_min, y_min, x_max, y_max) of a quad."""
    q = np.asarray(quad, dtype=np.float64).reshape(4, 2)
    return float(q[:, 0].min()), float(q[:, 1].min()), float(q[:, 0].max()), float(q[:, 1].max())


def text_direction(quads: Sequence[Sequence[Sequence[float]]]) -> tuple[float, float]:
    """The quads' text direction as a unit vector: the length-weighted median of their angles,
    so long words weigh more than short ones and one box that a colon or a descender tilts by
    several degrees moves it not at all. (1, 0) when the quads have no extent."""
    angles = []
    for (x0, y0), (x1, y1), (x2, y2), (x3, y3) in quads:
        dx, dy = (x1 - x0) + (x2 - x3), (y1 - y0) + (y2 - y3)
        length = math.hypot(dx, dy)
        if length > 1e-9:
            angles.append((math.atan2(dy, dx), length))
    if not angles:
        return (1.0, 0.0)
    angles.sort()
    weights = np.cumsum([length for _, length in angles])
    angle = angles[int(np.searchsorted(weights, weights[-1] / 2.0))][0]
    return (math.cos(angle), math.sin(angle))


def is_axis_aligned(quad: np.ndarray, tolerance: float = AXIS_ALIGNED_TOLERANCE_PX) -> bool:
    """True when every corner lies on the quad's own bounding box corners (within tolerance)."""
    q = np.asarray(quad, dtype=np.float64).reshape(4, 2)
    x0, y0, x1, y1 = bounding_box(q)
    on_x = (np.abs(q[:, 0] - x0) <= tolerance) | (np.abs(q[:, 0] - x1) <= tolerance)
    on_y = (np.abs(q[:, 1] - y0) <= tolerance) | (np.abs(q[:, 1] - y1) <= tolerance)
    return bool(np.all(on_x & on_y))


def parse_quads(raw: object, width: int, height: int) -> list[Quad]:
    """Validate client-supplied boxes and clip them to the image.

    A box must be four finite [x, y] points enclosing a positive area; a box that lies wholly
    outside the image is rejected, one that pokes out is clipped. Raises InvalidBoxes naming the
    first bad box so the client can fix its request.
    """
    if not isinstance(raw, (list, tuple)):
        raise InvalidBoxes("boxes must be a JSON list of quads (each four [x, y] points)")
    quads: list[Quad] = []
    for index, item in enumerate(raw):
        if not _numbers_only(item):
            raise InvalidBoxes(f"box {index} is not a list of numbers")
        try:
            quad = np.asarray(item, dtype=np.float64)
        except (TypeError, ValueError):
            raise InvalidBoxes(f"box {index} is not a list of numbers") from None
        if quad.shape != (4, 2):
            raise InvalidBoxes(f"box {index} must be four [x, y] points, got shape {quad.shape}")
        if not np.all(np.isfinite(quad)):
            raise InvalidBoxes(f"box {index} holds a non-finite coordinate")
        x0, y0, x1, y1 = bounding_box(quad)
        if x1 <= 0 or y1 <= 0 or x0 >= width or y0 >= height:
            raise InvalidBoxes(f"box {index} lies outside the {width}x{height} image")
        clipped = np.empty_like(quad)
        clipped[:, 0] = np.clip(quad[:, 0], 0, width)
        clipped[:, 1] = np.clip(quad[:, 1], 0, height)
        if quad_area(clipped) < MIN_BOX_AREA_PX:
            raise InvalidBoxes(f"box {index} has zero area")
        quads.append(clipped.astype(np.float32))
    return quads


def _numbers_only(item: object) -> bool:
    """False when a box holds strings, booleans or nulls, which numpy would quietly read as
    5.0, 1.0 or NaN; the shape is checked afterwards."""
    if isinstance(item, np.ndarray):
        return item.dtype.kind in "iuf"
    if not isinstance(item, (list, tuple)):
        return _is_number(item)
    for point in item:
        if isinstance(point, np.ndarray):
            if point.dtype.kind not in "iuf":
                return False
        elif isinstance(point, (list, tuple)):
            if not all(_is_number(value) for value in point):
                return False
        elif not _is_number(point):
            return False
    return True


def _is_number(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def crop_quad(image: np.ndarray, quad: np.ndarray) -> np.ndarray:
    """Cut the region of a quad out of an image, rectified to an upright rectangle.

    Axis-aligned quads are sliced (no resampling, so the crop is bit-exact); any other quad is
    perspective-warped with its corners 0..3 going to the rectangle's corners clockwise from the
    top-left. This is the one crop routine every service uses, and it reproduces the crops the
    recogniser parity references were made from.
    """
    q = np.asarray(quad, dtype=np.float32).reshape(4, 2)
    height, width = image.shape[:2]
    if is_axis_aligned(q):
        x0, y0, x1, y1 = bounding_box(q)
        left, right = max(0, math.floor(x0)), min(width, math.ceil(x1))
        top, bottom = max(0, math.floor(y0)), min(height, math.ceil(y1))
        if right <= left or bottom <= top:
            raise InvalidBoxes("box has zero area inside the image")
        return np.ascontiguousarray(image[top:bottom, left:right])
    top_len = float(np.linalg.norm(q[1] - q[0]))
    bottom_len = float(np.linalg.norm(q[2] - q[3]))
    left_len = float(np.linalg.norm(q[3] - q[0]))
    right_len = float(np.linalg.norm(q[2] - q[1]))
    out_w = max(int(top_len), int(bottom_len))
    out_h = max(int(left_len), int(right_len))
    if out_w < 1 or out_h < 1:
        raise InvalidBoxes("box has zero area")
    target = np.array(
        [[0, 0], [out_w - 1, 0], [out_w - 1, out_h - 1], [0, out_h - 1]], dtype=np.float32
    )
    matrix = cv2.getPerspectiveTransform(q, target)
    return cv2.warpPerspective(image, matrix, (out_w, out_h), flags=cv2.INTER_LINEAR)

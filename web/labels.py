"""Where each quad's number goes on the annotated image: outside its quad, never on its letters.

A tag placed on the quad hides the very word it names, and one placed blindly above it hides the
line above. So every tag tries a few spots around its quad's bounding box (above the top-left
corner, to the left, below, to the right), kept inside the image, and takes the first that covers
no part of its own quad and the least of the other quads and the tags placed before it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

Box = tuple[float, float, float, float]  # left, top, right, bottom


def bounding_box(points: Sequence[tuple[float, float]]) -> Box:
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    return min(xs), min(ys), max(xs), max(ys)


def _overlap(rect: Box, boxes: np.ndarray) -> np.ndarray:
    """The area ``rect`` shares with each row (left, top, right, bottom) of ``boxes``."""
    if not len(boxes):
        return np.zeros(0)
    width = np.minimum(rect[2], boxes[:, 2]) - np.maximum(rect[0], boxes[:, 0])
    height = np.minimum(rect[3], boxes[:, 3]) - np.maximum(rect[1], boxes[:, 1])
    return np.clip(width, 0, None) * np.clip(height, 0, None)


def _candidates(box: Box, size: tuple[float, float], gap: float) -> list[tuple[float, float]]:
    """Top-left corners to try, in order of preference."""
    left, top, right, bottom = box
    w, h = size
    return [
        (left, top - gap - h),  # above the top-left corner
        (left - gap - w, top),  # left of it
        (left, bottom + gap),  # below the bottom-left corner
        (right + gap, top),  # right of the top-right corner
    ]


def _inside(corner: tuple[float, float], size: tuple[float, float], canvas: tuple[int, int]):
    """``corner`` moved as little as needed for the whole tag to lie inside the image."""
    x = min(max(0.0, corner[0]), max(0.0, canvas[0] - size[0]))
    y = min(max(0.0, corner[1]), max(0.0, canvas[1] - size[1]))
    return x, y


def place_labels(
    boxes: Sequence[Box],
    sizes: Sequence[tuple[float, float]],
    canvas: tuple[int, int],
    gap: float = 1.0,
) -> list[Box]:
    """One tag rectangle per box, ``sizes[i]`` = (width, height) of tag i, inside ``canvas``.

    A tag overlaps its own box only when no candidate spot avoids it (a quad that fills the
    image); then it takes the spot that covers the least of it.
    """
    quads = np.asarray(boxes, dtype=float).reshape(-1, 4)
    # Grown by the gap, so a tag never touches the outline's stroke either.
    padded = quads + np.array([-gap, -gap, gap, gap])
    placed = np.zeros((len(quads), 4))
    rects: list[Box] = []
    for index, (box, size) in enumerate(zip(quads, sizes, strict=True)):
        best: tuple[float, float, Box] | None = None
        for corner in _candidates(tuple(box), size, gap):
            x, y = _inside(corner, size, canvas)
            rect = (x, y, x + size[0], y + size[1])
            own = float(_overlap(rect, padded[index : index + 1])[0])
            others = float(_overlap(rect, padded).sum()) - own
            others += float(_overlap(rect, placed[:index]).sum())
            score = (own, others)
            if best is None or score < best[:2]:
                best = (own, others, rect)
            if score == (0.0, 0.0):
                break
        assert best is not None
        placed[index] = best[2]
        rects.append(best[2])
    return rects

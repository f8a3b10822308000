"""Boxes for the characters CRAFT misses when they stand alone: ink on a line that no box covers.

CRAFT finds a word by its characters' region scores, and a character with no neighbour to link
to scores too low to reach ``text_threshold``: a receipt's quantity "1", the "x" of "1 x 2.10",
the "4" a wide decimal point sets apart from ".20". On the dev set's receipts the region score
peaks at 0.15 to 0.36 over them, so no threshold finds them without finding noise too. On print
on paper they are plain ink, though: a blob darker than the page's Otsu threshold, about as
tall as the words of the line it sits on, that no detected box touches. Each such blob (or run
of blobs closer than a character gap) becomes a box, and the line's reading takes it in.

Only print on paper: where Otsu's dark class is more than ``PAPER_INK_FRACTION`` of the page,
the page is a photo, whose dark half is no ink. Pure functions of the page and the boxes, so
the result is deterministic for an image.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from common.results import Quad

# A page whose dark class (below Otsu's threshold) is more of it than this is a photo: on the
# dev set, documents' ink covers 2 to 11 % of the page and scenes' dark class 29 to 66 %.
PAPER_INK_FRACTION = 0.2
# A blob within this x its line's height of a detected box is part of that word (a stroke the
# box cut off, a dot), not a character of its own.
COVER_MARGIN = 0.2
# A character's height, x the height of its line's words: an "x" stands at about half, a "1"
# or a bracket at the full height; dots, rules and logos fall outside.
GLYPH_HEIGHT = (0.5, 1.3)
GLYPH_MAX_WIDTH = 1.5  # x the line's height: one character, or two touching
# Blobs of one line closer than this x its height are one box ("1x", the two strokes of "%").
GLYPH_GAP = 0.25
BOX_MARGIN = 0.15  # x the line's height around the ink, as CRAFT's boxes leave around letters
SOLID_FILL = 0.9  # a blob filling more of its box than this, and wider than a stroke, is a block
# A blob with ink in each corner of its box and none in its middle is a frame (a form's
# checkbox), not a character: this share of the box's width and height makes a corner, and
# FRAME_MIDDLE of them its middle.
FRAME_CORNER = 0.2
FRAME_MIDDLE = 0.5


def page_ink(gray: np.ndarray) -> np.ndarray | None:
    """The page's ink (pixels darker than Otsu's threshold) as a bool mask, or None when the
    page is no print on paper."""
    threshold, _ = cv2.threshold(gray, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    ink = gray <= threshold
    return ink if ink.mean() <= PAPER_INK_FRACTION else None


def _rect(quad: Quad) -> tuple[float, float, float, float]:
    xs, ys = [x for x, _ in quad], [y for _, y in quad]
    return min(xs), min(ys), max(xs), max(ys)


def missed_glyphs(
    gray: np.ndarray, quads: Sequence[Quad], lines: Sequence[Sequence[int]]
) -> list[Quad]:
    """Quads around the ink of ``gray`` (H x W uint8) that no quad covers and that is as tall
    as the words of the line (indices into ``quads``) whose band it sits in."""
    if not quads:
        return []
    ink = page_ink(gray)
    if ink is None:
        return []
    height, width = gray.shape
    rects = [_rect(quad) for quad in quads]
    covered = np.zeros((height, width), dtype=bool)
    for x0, y0, x1, y1 in rects:
        grow = COVER_MARGIN * (y1 - y0)
        covered[
            max(0, int(y0 - grow)) : max(0, int(np.ceil(y1 + grow)) + 1),
            max(0, int(x0 - grow)) : max(0, int(np.ceil(x1 + grow)) + 1),
        ] = True
    count, labels, stats, _ = cv2.connectedComponentsWithStats(ink.astype(np.uint8), 8)
    touching = np.bincount(labels[covered & ink], minlength=count)
    bands = []
    for line in lines:
        line_rects = [rects[i] for i in line]
        bands.append(
            (
                float(np.median([r[1] for r in line_rects])),
                float(np.median([r[3] for r in line_rects])),
                float(np.median([r[3] - r[1] for r in line_rects])),
            )
        )
    found: list[tuple[int, int, int, int, float]] = []  # x0, y0, x1, y1, line height
    for label in np.flatnonzero(touching == 0)[1:]:
        x, y, w, h, area = (int(v) for v in stats[label, :5])
        if x == 0 or y == 0 or x + w == width or y + h == height:
            continue  # cut by the page's edge: a scan's border, not a character
        for top, bottom, text_h in bands:
            if not top <= y + h / 2 <= bottom:
                continue
            low, high = GLYPH_HEIGHT
            if not low * text_h <= h <= high * text_h or w > GLYPH_MAX_WIDTH * text_h:
                continue
            if area > SOLID_FILL * w * h and w > 0.3 * text_h:
                continue
            if _is_frame(labels[y : y + h, x : x + w] == label):
                continue
            found.append((x, y, x + w, y + h, text_h))
            break
    return [_quad(run, width, height) for run in _runs(sorted(found))]


def _is_frame(blob: np.ndarray) -> bool:
    """Whether a blob (its box's mask) inks all four corners and leaves its middle empty, as
    a drawn box does and no letter does ("O" and "0" are round, "H" and "N" cross the middle)."""
    h, w = blob.shape
    dy, dx = max(1, round(FRAME_CORNER * h)), max(1, round(FRAME_CORNER * w))
    corners = (blob[:dy, :dx], blob[:dy, -dx:], blob[-dy:, :dx], blob[-dy:, -dx:])
    my, mx = round(h * (1 - FRAME_MIDDLE) / 2), round(w * (1 - FRAME_MIDDLE) / 2)
    middle = blob[my : h - my, mx : w - mx]
    return all(corner.any() for corner in corners) and not middle.any()


def _runs(
    blobs: list[tuple[int, int, int, int, float]],
) -> list[tuple[int, int, int, int, float]]:
    """Blobs (sorted by left edge) merged where they sit side by side closer than GLYPH_GAP."""
    runs: list[tuple[int, int, int, int, float]] = []
    for blob in blobs:
        if runs:
            x0, y0, x1, y1, text_h = runs[-1]
            same_row = abs((blob[1] + blob[3]) - (y0 + y1)) / 2 < 0.5 * text_h
            if same_row and blob[0] - x1 < GLYPH_GAP * text_h:
                runs[-1] = (x0, min(y0, blob[1]), max(x1, blob[2]), max(y1, blob[3]), text_h)
                continue
        runs.append(blob)
    return runs


def _quad(run: tuple[int, int, int, int, float], width: int, height: int) -> Quad:
    x0, y0, x1, y1, text_h = run
    grow = BOX_MARGIN * text_h
    left, top = max(0.0, x0 - grow), max(0.0, y0 - grow)
    right, bottom = min(float(width), x1 + grow), min(float(height), y1 + grow)
    return ((left, top), (right, top), (right, bottom), (left, bottom))

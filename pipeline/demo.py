"""Sample pages drawn on the spot: ``python -m pipeline.demo [PATH]`` writes one PNG.

A fresh clone has no images of its own; ``make demo`` and the README's curl examples use the
page this draws, and the load test falls back to these pages when the shared dev images are not
there. Black words on white in OpenCV's Hershey font: CRAFT finds them and the recogniser reads
them, so the output is a quick check that both models work.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

DEFAULT_PATH = Path("out/demo/page.png")
PAGES: tuple[tuple[str, ...], ...] = (
    ("OCR pipeline demo", "CRAFT finds the words", "and DTRB reads them"),
    ("Invoice 2024", "Total due 150 EUR", "Thank you"),
    ("Meeting notes", "Room 12 at 10 AM", "bring the slides"),
    ("Load test page", "seven words on three", "short lines here"),
)
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def render_page(lines: Sequence[str], scale: float = 1.4, thickness: int = 2) -> np.ndarray:
    """A white BGR page with ``lines`` drawn one under the other, a margin all round."""
    margin, gap = 40, 36
    sizes = [cv2.getTextSize(line, _FONT, scale, thickness) for line in lines]
    width = max(w for (w, _), _ in sizes) + 2 * margin
    height = sum(h + base for (_, h), base in sizes) + gap * (len(lines) - 1) + 2 * margin
    page = np.full((height, width, 3), 255, np.uint8)
    y = margin
    for line, ((_, h), base) in zip(lines, sizes, strict=True):
        cv2.putText(page, line, (margin, y + h), _FONT, scale, (0, 0, 0), thickness, cv2.LINE_AA)
        y += h + base + gap
    return page


def write_page(path: Path | str, lines: Sequence[str] = PAGES[0]) -> Path:
    """Render ``lines`` and write them as a PNG at ``path`` (its folders are created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), render_page(lines)):
        raise OSError(f"could not write {path}")
    return path


def write_pages(folder: Path | str, count: int = len(PAGES)) -> list[Path]:
    """``count`` different sample pages (cycling through PAGES) as PNGs in ``folder``."""
    folder = Path(folder)
    return [write_page(folder / f"sample{i}.png", PAGES[i % len(PAGES)]) for i in range(count)]


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) > 1 or any(a.startswith("-") for a in args):
        print("usage: python -m pipeline.demo [PATH]  (default: out/demo/page.png)")
        return 0 if args in (["-h"], ["--help"]) else 2
    path = write_page(args[0] if args else DEFAULT_PATH)
    print(f"wrote {path}: {' / '.join(PAGES[0])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

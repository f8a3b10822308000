"""Draw a labelled set of document pages that no lever of the fast profile was tuned on.

    python -m monitoring.heldout --out out/heldout            # 24 pages, seed 0
    python -m monitoring.compare --data out/heldout --systems ocr,ocr-official,tesseract
    python -m monitoring.levers --data out/heldout

Every threshold of the fast profile (the detection scale, the lone characters, the word list's
odds, the doubtful words) was chosen on the 16 dev images, so its gains there may be partly the
dev set's. These pages are a second opinion: receipts and letters drawn with the machine's
fonts, from words nobody picked for this project (the docstrings of Python's standard library,
names made of random syllables, codes, amounts, dates), then degraded as scans and phone photos
of paper are (a slight rotation, blur, faded ink, grey paper, noise, JPEG). They are in the
labelled format ``../shared/tools/FORMAT.md`` describes, so ``score.py`` reads them too. Drawn
print is cleaner than a real receipt's dot matrix, so these scores say whether a lever
generalises, not what a user's documents will score.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import math
import platform
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

FONT_DIRS = (Path("/usr/share/fonts"), Path("/usr/local/share/fonts"), Path.home() / ".fonts")
# Monospace faces print receipts; the others print letters. Names as Debian's fonts-dejavu and
# fonts-liberation install them.
RECEIPT_FONTS = ("DejaVuSansMono", "LiberationMono-Regular", "LiberationMono-Bold")
LETTER_FONTS = (
    "DejaVuSans",
    "DejaVuSerif",
    "LiberationSans-Regular",
    "LiberationSerif-Regular",
    "LiberationSansNarrow-Regular",
    "DejaVuSansCondensed",
)
# Modules whose docstrings give the letters' English: prose of the standard library, present
# wherever Python is, written by nobody who tuned this project.
PROSE_MODULES = (
    "argparse",
    "calendar",
    "collections",
    "csv",
    "difflib",
    "email",
    "fractions",
    "gettext",
    "heapq",
    "logging",
    "shutil",
    "statistics",
    "string",
    "textwrap",
    "threading",
    "zipfile",
)
SYLLABLES = "ka ro mi sen tar lu po ven da ri xo bel nu gra".split()
SUPERSAMPLE = 2  # pages are drawn at twice their size and shrunk, as a scanner averages ink


@dataclass(frozen=True)
class DrawnWord:
    text: str
    quad: list[list[float]]


def find_fonts(names: tuple[str, ...]) -> list[Path | None]:
    """The installed TrueType files among ``names`` (file stems), in that order; [None] (Pillow's
    own font) where none is installed."""
    found = {path.stem: path for root in FONT_DIRS if root.is_dir() for path in root.rglob("*.ttf")}
    return [found[name] for name in names if name in found] or [None]


def prose_sentences() -> list[str]:
    """Sentences of the standard library's docstrings: letters only, 4 to 16 words each."""
    sentences = []
    for name in PROSE_MODULES:
        module = importlib.import_module(name)
        texts = [inspect.getdoc(module) or ""]
        texts += [
            inspect.getdoc(obj) or "" for _, obj in inspect.getmembers(module) if callable(obj)
        ]
        for text in texts:
            for sentence in re.split(r"(?<=[.!?])\s+", " ".join(text.split())):
                words = sentence.split()
                if 4 <= len(words) <= 16 and re.fullmatch(r"[A-Za-z ,.;:'()-]+", sentence):
                    sentences.append(sentence)
    return sorted(set(sentences))


def made_up_name(rng: np.random.Generator) -> str:
    return "".join(rng.choice(SYLLABLES, size=int(rng.integers(2, 4)))).upper()


def receipt_lines(rng: np.random.Generator, prose: list[str]) -> list[tuple[str, str]]:
    """A receipt's lines as (left text, right-aligned text)."""
    shop = f"{made_up_name(rng)} {rng.choice(['TRADING', 'MART', 'STORE', 'ENTERPRISE'])}"
    lines = [
        (shop, ""),
        (
            f"NO {int(rng.integers(1, 400))}, JALAN {made_up_name(rng)} {int(rng.integers(1, 30))}",
            "",
        ),
        (f"TEL: 0{int(rng.integers(3, 9))}-{int(rng.integers(1000000, 9999999))}", ""),
        (
            f"INVOICE: {made_up_name(rng)[:2]}{int(rng.integers(10000, 99999))}",
            f"{int(rng.integers(1, 29)):02d}/{int(rng.integers(1, 13)):02d}/"
            f"20{int(rng.integers(15, 26))}",
        ),
        (
            "CASHIER: " + made_up_name(rng),
            f"{int(rng.integers(8, 22)):02d}:{int(rng.integers(0, 60)):02d}",
        ),
    ]
    total = 0.0
    for _ in range(int(rng.integers(4, 11))):
        words = rng.choice(prose).upper().split()
        start = int(rng.integers(0, max(1, len(words) - 2)))
        item = " ".join(w.strip(",.;:()'") for w in words[start : start + int(rng.integers(1, 3))])
        quantity, price = int(rng.integers(1, 6)), float(rng.integers(50, 9999)) / 100
        total += quantity * price
        lines.append((f"{quantity} x {item or made_up_name(rng)}", f"{quantity * price:.2f}"))
    tax = round(total * 0.06, 2)
    lines += [
        ("SUBTOTAL", f"{total:.2f}"),
        ("GST 6%", f"{tax:.2f}"),
        ("TOTAL", f"{total + tax:.2f}"),
        ("CASH", f"{math.ceil(total + tax):.2f}"),
        ("THANK YOU, PLEASE COME AGAIN", ""),
    ]
    return lines


def letter_lines(rng: np.random.Generator, prose: list[str], columns: int) -> list[tuple[str, str]]:
    """A letter's lines: a heading, a date, a salutation and paragraphs wrapped at ``columns``."""
    lines = [
        (f"{made_up_name(rng).title()} {made_up_name(rng).title()} Ltd.", ""),
        (
            f"Ref. {made_up_name(rng)[:3]}/{int(rng.integers(100, 999))}",
            f"{int(rng.integers(1, 29))} March 2021",
        ),
        (f"Dear {made_up_name(rng).title()},", ""),
    ]
    for _ in range(int(rng.integers(2, 4))):
        paragraph = " ".join(rng.choice(prose, size=int(rng.integers(2, 5))))
        row = ""
        for word in paragraph.split():
            if row and len(row) + 1 + len(word) > columns:
                lines.append((row, ""))
                row = word
            else:
                row = f"{row} {word}".strip()
        lines += [(row, ""), ("", "")]
    lines.append((f"Yours sincerely, {made_up_name(rng).title()}", ""))
    return lines


def fitted(text: str, columns: int) -> str:
    """``text``'s first words that fit in ``columns`` characters (the first word at least)."""
    words = text.split()
    while len(words) > 1 and len(" ".join(words)) > columns:
        words.pop()
    return " ".join(words)


def draw_page(
    lines: list[tuple[str, str]], font_path: Path | None, size: int, width: int
) -> tuple[np.ndarray, list[DrawnWord], list[DrawnWord]]:
    """Black text on white (greyscale, drawn at SUPERSAMPLE x and shrunk): the page, its words
    and its lines with their quads in the page's pixels."""
    s = SUPERSAMPLE
    font = (
        ImageFont.truetype(str(font_path), size * s)
        if font_path
        else ImageFont.load_default(size * s)
    )
    space = font.getlength(" ")
    ascent, descent = font.getmetrics()
    pitch = int((ascent + descent) * 1.45)
    margin = 3 * size * s
    height = margin * 2 + pitch * len(lines)
    page = Image.new("L", (width * s, height), 255)
    draw = ImageDraw.Draw(page)
    words: list[DrawnWord] = []
    rows: list[DrawnWord] = []
    for number, (left, right) in enumerate(lines):
        y = margin + number * pitch
        placed = []
        for text, x in ((left, margin), (right, width * s - margin - font.getlength(right))):
            for token in text.split():
                draw.text((x, y), token, font=font, fill=0)
                x0, y0, x1, y1 = draw.textbbox((x, y), token, font=font)
                placed.append(
                    (
                        token,
                        [[x0 / s, y0 / s], [x1 / s, y0 / s], [x1 / s, y1 / s], [x0 / s, y1 / s]],
                    )
                )
                x += font.getlength(token) + space
        words += [DrawnWord(text, quad) for text, quad in placed]
        if placed:
            xs = [p[0] for _, quad in placed for p in quad]
            ys = [p[1] for _, quad in placed for p in quad]
            quad = [[min(xs), min(ys)], [max(xs), min(ys)], [max(xs), max(ys)], [min(xs), max(ys)]]
            rows.append(DrawnWord(" ".join(text for text, _ in placed), quad))
    small = page.resize((width, height // s), Image.Resampling.LANCZOS)
    return np.asarray(small), words, rows


def degrade(
    gray: np.ndarray, items: list[list[DrawnWord]], rng: np.random.Generator
) -> tuple[np.ndarray, list[list[DrawnWord]], dict]:
    """The page as paper under a scanner or a phone: rotated, faded, blurred, noisy; the quads
    moved with the rotation."""
    angle = float(rng.uniform(-1.5, 1.5))
    ink, paper = float(rng.uniform(0, 90)), float(rng.uniform(200, 250))
    blur, noise = float(rng.uniform(0.0, 1.0)), float(rng.uniform(0.0, 8.0))
    height, width = gray.shape
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), angle, 1.0)
    tinted = paper - (paper - ink) * (1.0 - gray.astype(np.float32) / 255.0)
    turned = cv2.warpAffine(tinted, matrix, (width, height), borderValue=paper)
    if blur > 0.3:
        turned = cv2.GaussianBlur(turned, (0, 0), blur)
    turned = turned + rng.normal(0.0, noise, turned.shape)
    image = np.clip(turned, 0, 255).astype(np.uint8)

    def moved(word: DrawnWord) -> DrawnWord:
        points = np.hstack([np.asarray(word.quad), np.ones((4, 1))]) @ matrix.T
        return DrawnWord(word.text, [[round(float(x), 1), round(float(y), 1)] for x, y in points])

    how = {
        "angle": round(angle, 2),
        "ink": round(ink),
        "paper": round(paper),
        "blur": round(blur, 2),
        "noise": round(noise, 1),
    }
    return image, [[moved(word) for word in group] for group in items], how


def draw_set(out: Path, pages: int, seed: int) -> list[dict]:
    """Write ``pages`` pages (half receipts, half letters) with labels and a manifest to ``out``."""
    receipt_fonts, letter_fonts = find_fonts(RECEIPT_FONTS), find_fonts(LETTER_FONTS)
    prose = prose_sentences()
    rng = np.random.default_rng(seed)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "labels").mkdir(parents=True, exist_ok=True)
    items = []
    for index in range(pages):
        receipt = index % 2 == 0
        if receipt:
            font = receipt_fonts[int(rng.integers(len(receipt_fonts)))]
            size, width = int(rng.integers(11, 22)), int(rng.integers(520, 760))
            columns = int(width / (0.6 * size)) - 6
            lines = receipt_lines(rng, prose)
            lines = [(fitted(left, columns - len(right) - 2), right) for left, right in lines]
        else:
            font = letter_fonts[int(rng.integers(len(letter_fonts)))]
            size, width = int(rng.integers(12, 24)), int(rng.integers(900, 1300))
            lines = letter_lines(rng, prose, int(width / (0.55 * size)) - 8)
        gray, words, rows = draw_page(lines, font, size, width)
        image, (words, rows), how = degrade(gray, [words, rows], rng)
        name = f"{'receipt' if receipt else 'letter'}_{index:03d}"
        quality = int(rng.integers(40, 90))
        cv2.imwrite(str(out / "images" / f"{name}.jpg"), image, [cv2.IMWRITE_JPEG_QUALITY, quality])
        labels = {
            "words": [{"text": w.text, "quad": w.quad} for w in words],
            "lines": [{"text": w.text, "quad": w.quad} for w in rows],
        }
        (out / "labels" / f"{name}.json").write_text(json.dumps(labels))
        items.append(
            {
                "name": name,
                "image": f"images/{name}.jpg",
                "width": int(image.shape[1]),
                "height": int(image.shape[0]),
                "n_words": len(words),
                "kind": "document",
                "dataset": "Drawn receipts" if receipt else "Drawn letters",
                "font": font.stem if font else "Pillow's default",
                "font_px": size,
                "jpeg_quality": quality,
                **how,
            }
        )
    manifest = {
        "name": "heldout",
        "source": f"drawn by monitoring.heldout, seed {seed}, Python {platform.python_version()}",
        "license": "made here; the prose is from Python's standard library docstrings",
        "kind": "document",
        "count": len(items),
        "items": items,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return items


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, required=True, help="the folder to write the set to")
    parser.add_argument("--pages", type=int, default=24)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    items = draw_set(args.out, args.pages, args.seed)
    words = sum(item["n_words"] for item in items)
    print(f"wrote {len(items)} pages, {words} words, to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

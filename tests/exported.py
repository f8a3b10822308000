"""Readers of the exported formats, for the tests: hOCR elements and a PDF's text-layer words."""

from __future__ import annotations

import re
import subprocess
from html.parser import HTMLParser
from pathlib import Path

from common.exports import PDF_DPI

_WORD = re.compile(
    r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]*)</word>'
)


class HocrReader(HTMLParser):
    """(class, title, text) of every element with an ocr class, in document order."""

    def __init__(self) -> None:
        super().__init__()
        self.items: list[list[str]] = []
        self.in_word = False

    def handle_starttag(self, tag, attrs):
        found = dict(attrs)
        if found.get("class", "").startswith(("ocr_", "ocrx_")):
            self.items.append([found["class"], found["title"], ""])
            self.in_word = found["class"] == "ocrx_word"

    def handle_endtag(self, tag):
        self.in_word = False

    def handle_data(self, data):
        if self.in_word:
            self.items[-1][2] += data


def hocr_items(document: str) -> list[list[str]]:
    reader = HocrReader()
    reader.feed(document)
    return reader.items


def pdf_pages_text(path: Path) -> list[str]:
    """``pdftotext``'s text of each page (poppler-utils)."""
    out = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True)
    return out.stdout.split("\f")[:-1]


def pdf_word_boxes(path: Path, dpi: float = PDF_DPI) -> list[tuple[str, list[float]]]:
    """Every text-layer word ``pdftotext -bbox`` finds, with its box in the pixels of a page
    image at ``dpi`` (an image's default, or the resolution a PDF page was rendered at)."""
    out = subprocess.run(
        ["pdftotext", "-bbox", str(path), "-"], capture_output=True, text=True, check=True
    )
    px = dpi / 72.0
    return [(text, [float(v) * px for v in box]) for *box, text in _WORD.findall(out.stdout)]

"""The engine's results: typed boxes, words, lines and pages, serialised once by ``export()``.

Detection returns a ``Detection`` (boxes in reading order, grouped into lines once); the layout's
``build_page`` joins it with the readings into a ``Page``; an ``OcrResult`` adds how it was read.
Every transport (the HTTP answers, the CLI's JSON) calls ``export()`` at its edge, and the
exporters of other formats read these types rather than dicts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

Point = tuple[float, float]
Quad = tuple[Point, ...]  # four corners, clockwise from the corner with the smallest x + y


def as_quad(points: Any) -> Quad:
    """A quad (or polygon) of float corners from any sequence of ``[x, y]`` pairs."""
    return tuple((float(p[0]), float(p[1])) for p in points)


def _export_points(points: Quad) -> list[list[float]]:
    return [[x, y] for x, y in points]


@dataclass(frozen=True)
class Box:
    """One word region in image pixels."""

    quad: Quad
    score: float  # mean region score over the word's component
    polygon: Quad | None = None  # only in polygon mode; the quad where none fits

    def export(self) -> dict[str, Any]:
        out: dict[str, Any] = {"quad": _export_points(self.quad), "score": self.score}
        if self.polygon is not None:
            out["polygon"] = _export_points(self.polygon)
        return out

    @classmethod
    def from_export(cls, data: Mapping[str, Any]) -> Box:
        polygon = data.get("polygon")
        return cls(
            as_quad(data["quad"]),
            float(data["score"]),
            None if polygon is None else as_quad(polygon),
        )


@dataclass(frozen=True)
class Detection:
    """The word boxes of one image, in reading order, and the lines they form.

    ``lines`` holds indices into ``boxes``, one tuple per line, top to bottom, each left to
    right; since the boxes are in reading order, every line is a run of consecutive indices.
    """

    width: int
    height: int
    boxes: tuple[Box, ...]
    lines: tuple[tuple[int, ...], ...]
    timings_ms: Mapping[str, float] = field(default_factory=dict)

    def export(self) -> dict[str, Any]:
        """The /detection answer's fields (the service adds ``model``)."""
        return {
            "width": self.width,
            "height": self.height,
            "boxes": [box.export() for box in self.boxes],
            "lines": [list(line) for line in self.lines],
            "timings_ms": dict(self.timings_ms),
        }

    @classmethod
    def from_export(cls, data: Mapping[str, Any]) -> Detection:
        """Back from a /detection answer (the distributed pipeline's view of std_service)."""
        return cls(
            width=int(data["width"]),
            height=int(data["height"]),
            boxes=tuple(Box.from_export(box) for box in data["boxes"]),
            lines=tuple(tuple(int(i) for i in line) for line in data["lines"]),
            timings_ms={k: float(v) for k, v in data.get("timings_ms", {}).items()},
        )


Reading = tuple[str, float]  # (text, confidence) of one crop


@dataclass(frozen=True)
class Word:
    """A detected box and what the recogniser read in it."""

    box: Box
    text: str
    confidence: float

    def export(self) -> dict[str, Any]:
        return {
            "quad": _export_points(self.box.quad),
            "text": self.text,
            "confidence": self.confidence,
            "det_score": self.box.score,
        }


@dataclass(frozen=True)
class Line:
    """Words that share a line, left to right, by their indices in the page's words."""

    quad: Quad  # the smallest quad along the line's direction that holds its words
    words: tuple[int, ...]
    text: str

    def export(self) -> dict[str, Any]:
        return {"quad": _export_points(self.quad), "text": self.text, "words": list(self.words)}


@dataclass(frozen=True)
class Page:
    """One image read: its words in reading order and its lines top to bottom."""

    width: int
    height: int
    words: tuple[Word, ...]
    lines: tuple[Line, ...]

    @property
    def text(self) -> str:
        """The lines' text joined by newlines; lines without text are left out."""
        return "\n".join(line.text for line in self.lines if line.text)

    def export(self) -> dict[str, Any]:
        return {
            "width": self.width,
            "height": self.height,
            "words": [word.export() for word in self.words],
            "lines": [line.export() for line in self.lines],
            "text": self.text,
        }

    @classmethod
    def from_export(cls, data: Mapping[str, Any]) -> Page:
        """Back from an /ocr or /pipeline answer (the CLI exports what a server answered)."""
        words = tuple(
            Word(
                Box(as_quad(w["quad"]), float(w.get("det_score", 0.0))),
                str(w["text"]),
                float(w["confidence"]),
            )
            for w in data["words"]
        )
        lines = tuple(
            Line(as_quad(line["quad"]), tuple(int(i) for i in line["words"]), str(line["text"]))
            for line in data["lines"]
        )
        return cls(int(data["width"]), int(data["height"]), words, lines)


@dataclass
class OwnerReadings:
    """What one bucket batch tells one request: readings (or errors) of its crops, by index."""

    batch_id: str
    batch_size: int
    str_ms: float  # the whole batch's recognition time
    results: dict[int, Reading] = field(default_factory=dict)
    errors: dict[int, str] = field(default_factory=dict)


@dataclass(frozen=True)
class BatchRef:
    """A bucket batch that carried crops of a request: its id and how many crops it held."""

    id: str
    size: int

    def export(self) -> dict[str, Any]:
        return {"id": self.id, "size": self.size}


@dataclass(frozen=True)
class OcrResult:
    """An upload read: its pages, the path, where the time went, the batches that carried it.

    A single image answers its one page's fields at the top level (``width``, ``words``,
    ``lines``, ``text``...); a document (``paged``: a PDF or a multi-page TIFF, whatever its page
    count) answers ``pages: [{page, width, height, words, lines, text}]`` and the whole
    document's ``text``, its pages' texts separated by form feeds. ``batches`` is None on the
    sequential path (no bucket), and lists the bucket batches that read the upload's crops on
    the batched one; ``timings_ms.std`` spans the pages' detections.
    """

    mode: str  # "sequential" | "batched"
    pages: tuple[Page, ...]
    timings_ms: Mapping[str, float]
    batches: Sequence[BatchRef] | None = None
    paged: bool = False

    @property
    def page(self) -> Page:
        """The first page: the whole result of a single image."""
        return self.pages[0]

    @property
    def text(self) -> str:
        return "\f".join(page.text for page in self.pages)

    def export(self) -> dict[str, Any]:
        """The /ocr and /pipeline answer."""
        out: dict[str, Any] = {"mode": self.mode}
        if self.paged:
            out["pages"] = [
                {"page": number, **page.export()} for number, page in enumerate(self.pages, 1)
            ]
            out["text"] = self.text
        else:
            out.update(self.page.export())
        out["timings_ms"] = {key: round(value, 2) for key, value in self.timings_ms.items()}
        if self.batches is not None:
            out["batches"] = [batch.export() for batch in self.batches]
        return out


def pages_from_export(data: Mapping[str, Any]) -> list[Page]:
    """The pages of an /ocr or /pipeline answer, a single image's or a document's."""
    if "pages" in data:
        return [Page.from_export(page) for page in data["pages"]]
    return [Page.from_export(data)]

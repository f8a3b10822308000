"""Accuracy on a labelled data set, by the definitions of ``../shared/tools/score.py``.

The compare tool scores in process, per image and per subset, without writing a folder per
system first; ``tests/unit/test_scoring.py`` checks that it gives score.py's numbers on the
dev set. The definitions (FORMAT.md beside score.py):

- tokens: text split on whitespace, case-folded, punctuation (ASCII or Unicode P*) stripped at
  both ends, empty tokens dropped; bag-of-words F1 is the multiset overlap of all tokens.
- detection: axis-aligned boxes, IoU >= 0.5, one-to-one greedy by descending IoU, words against
  GT words (lines against GT lines when a system answers lines only).
- don't care: GT items "###" are never counted, and a predicted item at least half inside them
  is dropped before every score.
Counts are summed over images (micro-averaged), so a subset's score is its images' counts summed.
"""

from __future__ import annotations

import json
import string
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DONT_CARE = "###"
IOU_MATCH = 0.5
LABEL_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")

Rect = tuple[float, float, float, float]


def normalize_token(text: str) -> str:
    """Case-folded, trimmed, without punctuation at either end."""
    folded = text.casefold().strip()
    start, end = 0, len(folded)
    while start < end and _punctuation(folded[start]):
        start += 1
    while end > start and _punctuation(folded[end - 1]):
        end -= 1
    return folded[start:end].strip()


def _punctuation(char: str) -> bool:
    return char in string.punctuation or unicodedata.category(char).startswith("P")


def word_tokens(text: str) -> list[str]:
    return [token for token in map(normalize_token, text.split()) if token]


def rect(quad: Sequence[Sequence[float]]) -> Rect:
    xs = [float(point[0]) for point in quad]
    ys = [float(point[1]) for point in quad]
    return min(xs), min(ys), max(xs), max(ys)


def _area(r: Rect) -> float:
    return max(0.0, r[2] - r[0]) * max(0.0, r[3] - r[1])


def _overlap(a: Rect, b: Rect) -> float:
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    return max(0.0, width) * max(0.0, height)


def iou(a: Rect, b: Rect) -> float:
    """Intersection over union of two axis-aligned rectangles (0 when both are empty)."""
    shared = _overlap(a, b)
    union = _area(a) + _area(b) - shared
    return shared / union if union > 0 else 0.0


def match_count(truth: Sequence[Rect], predicted: Sequence[Rect]) -> int:
    """Pairs in the one-to-one greedy matching by descending IoU, IoU >= 0.5."""
    candidates = sorted(
        (-value, t, p)
        for t, a in enumerate(truth)
        for p, b in enumerate(predicted)
        if (value := iou(a, b)) >= IOU_MATCH
    )
    taken_truth: set[int] = set()
    taken_pred: set[int] = set()
    for _, t, p in candidates:
        if t not in taken_truth and p not in taken_pred:
            taken_truth.add(t)
            taken_pred.add(p)
    return len(taken_truth)


def _split_dont_care(items: Iterable[Mapping[str, Any]] | None) -> tuple[list, list[Rect]]:
    kept, ignored = [], []
    for item in items or []:
        if item.get("text", "") == DONT_CARE:
            ignored.append(rect(item["quad"]))
        else:
            kept.append(item)
    return kept, ignored


def _outside(items: Iterable[Mapping[str, Any]] | None, ignored: Sequence[Rect]) -> list:
    """The items not at least half (by their own area) inside don't-care boxes."""
    kept = []
    for item in items or []:
        box = rect(item["quad"])
        area = _area(box)
        if ignored and area > 0 and sum(_overlap(box, d) for d in ignored) >= 0.5 * area:
            continue
        kept.append(item)
    return kept


@dataclass(frozen=True)
class Counts:
    """What one image (or the sum of several) contributes to the scores."""

    bag_match: int = 0
    bag_pred: int = 0
    bag_truth: int = 0
    det_match: int = 0
    det_pred: int = 0
    det_truth: int = 0
    det_images: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(*(a + b for a, b in zip(self.values(), other.values(), strict=True)))

    def values(self) -> tuple[int, ...]:
        return (
            self.bag_match,
            self.bag_pred,
            self.bag_truth,
            self.det_match,
            self.det_pred,
            self.det_truth,
            self.det_images,
        )

    @property
    def bag_f1(self) -> float | None:
        total = self.bag_pred + self.bag_truth
        return 2 * self.bag_match / total if total else None

    @property
    def det_precision(self) -> float | None:
        return self.det_match / self.det_pred if self.det_pred else None

    @property
    def det_recall(self) -> float | None:
        return self.det_match / self.det_truth if self.det_truth else None

    @property
    def det_hmean(self) -> float | None:
        total = self.det_pred + self.det_truth
        return 2 * self.det_match / total if self.det_images and total else None


def image_counts(truth: Mapping[str, Any], predicted: Mapping[str, Any]) -> Counts:
    """One image's counts: ``truth`` a label file, ``predicted`` the same shape (words or lines)."""
    truth_words, ignored_words = _split_dont_care(truth.get("words"))
    truth_lines, ignored_lines = _split_dont_care(truth.get("lines"))
    ignored = ignored_words + ignored_lines
    key = "words" if "words" in predicted else "lines"
    items = _outside(predicted.get(key), ignored)
    truth_bag = Counter(t for item in truth_words for t in word_tokens(item["text"]))
    pred_bag = Counter(t for item in items for t in word_tokens(item.get("text", "")))
    bag = dict(
        bag_match=sum((truth_bag & pred_bag).values()),
        bag_pred=sum(pred_bag.values()),
        bag_truth=sum(truth_bag.values()),
    )
    if "words" in predicted or not predicted:
        gt_items, pred_items = truth_words, _outside(predicted.get("words"), ignored)
    elif truth.get("lines"):
        gt_items, pred_items = truth_lines, items
    else:
        return Counts(**bag)
    gt_rects = [rect(item["quad"]) for item in gt_items]
    pred_rects = [rect(item["quad"]) for item in pred_items]
    return Counts(
        **bag,
        det_match=match_count(gt_rects, pred_rects),
        det_pred=len(pred_rects),
        det_truth=len(gt_rects),
        det_images=1,
    )


@dataclass(frozen=True)
class LabelledImage:
    name: str
    path: Path
    labels: dict[str, Any]
    subset: str


def labelled_images(data_dir: Path | str) -> list[LabelledImage]:
    """Every image of a data set (FORMAT.md) with a label file, sorted by name; the subset is
    the manifest item's ``dataset`` up to its first " (" (score.py's ``--by dataset``)."""
    root = Path(data_dir)
    subsets: dict[str, str] = {}
    manifest = root / "manifest.json"
    if manifest.exists():
        for item in json.loads(manifest.read_text()).get("items", []):
            subsets[item["name"]] = str(item.get("dataset", "?")).split(" (")[0]
    images = []
    for path in sorted((root / "images").iterdir()):
        label = root / "labels" / f"{path.stem}.json"
        if path.suffix.lower() in LABEL_SUFFIXES and label.exists():
            labels = json.loads(label.read_text(encoding="utf-8"))
            images.append(LabelledImage(path.stem, path, labels, subsets.get(path.stem, "?")))
    return images

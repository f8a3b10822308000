"""Where the monitoring tools find their images and word crops.

Every tool takes ``--images DIR`` and defaults to the shared dev images beside the checkout
(``../shared/data/dev/images``, or ``$OCR_SHARED_DATA/dev/images``). The data is read in place,
never copied into the repository, and a missing folder stops a tool with a message that says
how to point it elsewhere instead of a traceback. The load test alone can do without them: it
falls back to sample pages it draws itself (``sample_pages``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np

from common.errors import InvalidBoxes
from common.geometry import crop_quad

REPO_ROOT = Path(__file__).resolve().parents[1]
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


class DataError(Exception):
    """A missing or empty data folder; the tools print it and exit with status 2."""


def shared_data_dir() -> Path:
    """The shared data folder: $OCR_SHARED_DATA, else ../shared/data beside the checkout.

    The one place monitoring reads that variable, so every tool looks in the same folder.
    """
    shared = os.environ.get("OCR_SHARED_DATA")
    return Path(shared) if shared else REPO_ROOT.parent / "shared" / "data"


def default_images_dir() -> Path:
    """The dev images: $OCR_SHARED_DATA/dev/images, else ../shared/data/dev/images."""
    return shared_data_dir() / "dev" / "images"


def image_paths(images_dir: Path | str | None) -> list[Path]:
    """Every image file in ``images_dir`` (sorted by name); DataError if there are none."""
    folder = Path(images_dir) if images_dir else default_images_dir()
    if not folder.is_dir():
        raise DataError(
            f"image folder not found: {folder}\n"
            "pass --images DIR (a folder of .jpg/.png pages), or set OCR_SHARED_DATA to the "
            "shared data folder that holds dev/images"
        )
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise DataError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
    return paths


def sample_pages(folder: Path | str) -> list[Path]:
    """Sample pages drawn by pipeline.demo, written to ``folder``: images for a load test when
    the dev images are absent (a clone anywhere but beside shared/)."""
    from pipeline.demo import write_pages

    return write_pages(folder)


def take(paths: list[Path], count: int) -> list[Path]:
    """``count`` documents from ``paths``, cycling through them when more are asked for."""
    if count < 1:
        raise ValueError("count must be >= 1")
    return [paths[i % len(paths)] for i in range(count)]


def word_crops(images_dir: Path | str | None, limit: int | None = None) -> list[np.ndarray]:
    """Greyscale crops of the labelled words (``../labels/NAME.json``, '###' skipped).

    Ground-truth boxes give the recognizer real word crops without running CRAFT, which is what
    a batch-size study wants: the same crops at every batch size, cut by the services' routine.
    """
    paths = image_paths(images_dir)
    labels_dir = paths[0].parent.parent / "labels"
    if not labels_dir.is_dir():
        raise DataError(
            f"labels not found: {labels_dir} (the batch-size study cuts word crops from the "
            "ground-truth quads in labels/NAME.json beside images/)"
        )
    crops: list[np.ndarray] = []
    for path in paths:
        label = labels_dir / f"{path.stem}.json"
        if not label.is_file():
            continue
        gray = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        if gray is None:
            continue
        for word in json.loads(label.read_text()).get("words", []):
            if word.get("text") == "###":
                continue
            try:
                crops.append(crop_quad(gray, np.asarray(word["quad"], np.float32)))
            except InvalidBoxes:  # a degenerate ground-truth box
                continue
            if limit is not None and len(crops) >= limit:
                return crops
    if not crops:
        raise DataError(f"no labelled words found for the images in {paths[0].parent}")
    return crops


def per_document_crop_counts(images_dir: Path | str | None) -> list[int]:
    """Labelled (readable) words per image, for synthetic documents of realistic size."""
    paths = image_paths(images_dir)
    labels_dir = paths[0].parent.parent / "labels"
    counts = []
    for path in paths:
        label = labels_dir / f"{path.stem}.json"
        if label.is_file():
            words = json.loads(label.read_text()).get("words", [])
            counts.append(sum(1 for w in words if w.get("text") != "###"))
    return counts

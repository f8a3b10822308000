"""The held-out set's labels say where each drawn word is and what it says (monitoring.heldout):
a score on it is only as good as they are."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from monitoring.heldout import draw_set, prose_sentences
from monitoring.scoring import labelled_images, rect, word_tokens


@pytest.fixture(scope="module")
def drawn(tmp_path_factory):
    out = tmp_path_factory.mktemp("heldout")
    draw_set(out, pages=4, seed=3)
    return out


def test_every_page_is_a_labelled_image_of_its_subset(drawn):
    images = labelled_images(drawn)
    assert [image.name for image in images] == [
        "letter_001",
        "letter_003",
        "receipt_000",
        "receipt_002",
    ]
    assert {image.subset for image in images} == {"Drawn receipts", "Drawn letters"}
    for image in images:
        assert len(image.labels["words"]) > 20
        assert image.labels["lines"]


def test_each_word_quad_holds_ink_and_the_ink_is_inside_the_quads(drawn):
    for image in labelled_images(drawn):
        gray = cv2.imread(str(image.path), cv2.IMREAD_GRAYSCALE)
        height, width = gray.shape
        threshold, _ = cv2.threshold(gray, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
        ink = gray < threshold - 20  # clearly dark: the text, not the paper's noise
        inside = np.zeros_like(ink)
        for word in image.labels["words"]:
            x0, y0, x1, y1 = rect(word["quad"])
            assert 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height
            box = ink[int(y0) : int(np.ceil(y1)), int(x0) : int(np.ceil(x1))]
            assert box.mean() > 0.03, (image.name, word["text"])
            inside[int(y0) - 2 : int(np.ceil(y1)) + 2, int(x0) - 2 : int(np.ceil(x1)) + 2] = True
        assert ink[~inside].sum() < 0.01 * ink.sum(), image.name


def test_a_line_label_is_its_words(drawn):
    for image in labelled_images(drawn):
        words = [t for line in image.labels["lines"] for t in word_tokens(line["text"])]
        assert words == [t for word in image.labels["words"] for t in word_tokens(word["text"])]


def test_the_same_seed_draws_the_same_set(drawn, tmp_path):
    draw_set(tmp_path, pages=4, seed=3)
    for name in ("receipt_000", "letter_001"):
        first = (drawn / "labels" / f"{name}.json").read_text()
        assert (tmp_path / "labels" / f"{name}.json").read_text() == first
        again = cv2.imread(str(tmp_path / "images" / f"{name}.jpg"))
        assert np.array_equal(again, cv2.imread(str(drawn / "images" / f"{name}.jpg")))


def test_the_prose_is_sentences_of_words():
    sentences = prose_sentences()
    assert len(sentences) > 200
    assert all(4 <= len(s.split()) <= 16 for s in sentences)

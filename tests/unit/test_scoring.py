"""The compare tool's scorer gives the numbers ../shared/tools/score.py gives."""

from __future__ import annotations

import importlib.util
import json
import random
from pathlib import Path

import pytest

from monitoring.compare import score_folder
from monitoring.scoring import Counts, image_counts, labelled_images, match_count, word_tokens

SHARED = Path(__file__).resolve().parents[3] / "shared"
DEV = SHARED / "data" / "dev"
SCORE_PY = SHARED / "tools" / "score.py"


def _square(x: float, y: float, w: float = 10, h: float = 10) -> list[list[float]]:
    return [[x, y], [x + w, y], [x + w, y + h], [x, y + h]]


def test_tokens_fold_case_and_strip_punctuation_at_the_edges_only():
    assert word_tokens("Total: RM74.68, «Café»  -- ") == ["total", "rm74.68", "café"]


def test_matching_is_one_to_one():
    truth = [(0, 0, 10, 10)]
    assert match_count(truth, [(0, 0, 10, 10), (0, 0, 10, 9)]) == 1
    assert match_count(truth, [(5, 5, 15, 15)]) == 0  # IoU 1/7


def test_dont_care_items_are_neither_truth_nor_prediction():
    truth = {
        "words": [{"text": "hello", "quad": _square(0, 0)}, {"text": "###", "quad": _square(50, 0)}]
    }
    predicted = {
        "words": [{"text": "hello", "quad": _square(0, 0)}, {"text": "x", "quad": _square(51, 0)}]
    }
    counts = image_counts(truth, predicted)
    assert (counts.bag_match, counts.bag_pred, counts.bag_truth) == (1, 1, 1)
    assert (counts.det_match, counts.det_pred, counts.det_truth) == (1, 1, 1)
    assert counts.bag_f1 == 1.0


def test_a_system_that_answers_lines_is_matched_against_lines():
    truth = {
        "words": [{"text": "a", "quad": _square(0, 0)}, {"text": "b", "quad": _square(12, 0)}],
        "lines": [{"text": "a b", "quad": _square(0, 0, 22)}],
    }
    counts = image_counts(truth, {"lines": [{"text": "a b", "quad": _square(0, 0, 22)}]})
    assert (counts.det_match, counts.det_truth, counts.bag_match) == (1, 1, 2)


def test_an_empty_answer_scores_zero_not_nothing():
    truth = {"words": [{"text": "a", "quad": _square(0, 0)}]}
    counts = image_counts(truth, {})
    assert counts.bag_f1 == 0.0 and counts.det_hmean == 0.0
    assert Counts().bag_f1 is None


def _variants(labels: dict, rng: random.Random) -> dict[str, dict]:
    """Predictions that exercise every rule: misses, shifted boxes, wrong text, lines only."""
    words = labels.get("words", [])
    kept = []
    for word in words:
        if rng.random() < 0.2:
            continue
        dx, dy = rng.uniform(-6, 6), rng.uniform(-4, 4)
        text = word["text"] if rng.random() < 0.7 else word["text"][::-1] + ","
        kept.append({"text": text, "quad": [[x + dx, y + dy] for x, y in word["quad"]]})
    kept.append({"text": "spurious", "quad": _square(3, 3, 40, 12)})
    return {
        "words": {"words": kept},
        "lines": {"lines": [dict(line) for line in labels.get("lines", [])[::2]]},
        "empty": {},
    }


@pytest.mark.skipif(not SCORE_PY.exists(), reason="needs ../shared (the dev set and score.py)")
def test_compare_scores_agree_with_score_py_on_the_dev_set(tmp_path):
    spec = importlib.util.spec_from_file_location("shared_score", SCORE_PY)
    score = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(score)
    images = labelled_images(DEV)
    rng = random.Random(7)
    for image in images:
        for system, answer in _variants(image.labels, rng).items():
            folder = tmp_path / system
            folder.mkdir(exist_ok=True)
            (folder / f"{image.name}.json").write_text(json.dumps(answer))
    times = {image.name: 1.0 for image in images}
    for system in ("words", "lines", "empty"):
        (tmp_path / system / "_run.json").write_text(json.dumps({"times_s": times}))
        ours = score_folder(tmp_path / system, images)
        names = [image.name for image in images]
        theirs = score.score_system(str(DEV), names, str(tmp_path / system))
        for key in ("bag_f1", "det_precision", "det_recall", "det_hmean"):
            assert ours[key] == pytest.approx(theirs[key]), (system, key)
        for subset in {image.subset for image in images}:
            members = [image.name for image in images if image.subset == subset]
            theirs = score.score_system(str(DEV), members, str(tmp_path / system))
            assert ours["subsets"][subset] == pytest.approx(theirs["bag_f1"]), (system, subset)

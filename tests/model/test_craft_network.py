"""The CRAFT network and Detector on the real weights, without shared data.

Runs the model only on small inputs (a 480x160 rendered image at canvas 512), so it stays quick on
a 2-core machine.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from common.config import Settings
from common.errors import InvalidImage
from common.models import strip_module_prefix
from common.params import DetectionParams
from std_service.craft import CRAFT, default_weights_path, load_craft
from std_service.detector import CraftDetection, Detector

torch.set_num_threads(2)

WORDS = [("HELLO", (20, 60)), ("WORLD", (250, 60)), ("OCR", (20, 130)), ("TEST", (250, 130))]


def _rendered_words() -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
    """A white 480x160 image with four black words, and each word's ink bounds (x0, y0, x1, y1)."""
    image = np.full((160, 480, 3), 255, dtype=np.uint8)
    rects = []
    for text, origin in WORDS:
        layer = np.full_like(image, 255)
        cv2.putText(layer, text, origin, cv2.FONT_HERSHEY_SIMPLEX, 1.5, (0, 0, 0), 3)
        ys, xs = np.nonzero(layer[:, :, 0] < 128)
        rects.append((int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1))
        image = np.minimum(image, layer)
    return image, rects


def _iou(quad: list[list[float]], rect: tuple[int, int, int, int]) -> float:
    q = np.asarray(quad)
    x0, y0, x1, y1 = q[:, 0].min(), q[:, 1].min(), q[:, 0].max(), q[:, 1].max()
    ix = max(0.0, min(x1, rect[2]) - max(x0, rect[0]))
    iy = max(0.0, min(y1, rect[3]) - max(y0, rect[1]))
    inter = ix * iy
    union = (x1 - x0) * (y1 - y0) + (rect[2] - rect[0]) * (rect[3] - rect[1]) - inter
    return inter / union


def test_module_tree_matches_the_checkpoint_keys() -> None:
    state = torch.load(default_weights_path(), map_location="cpu", weights_only=True)
    ours = CRAFT().state_dict()
    theirs = strip_module_prefix(state)
    assert list(ours) == list(theirs)
    assert all(ours[k].shape == theirs[k].shape for k in ours)
    assert next(iter(state)).startswith("module.basenet.slice1.0.")


def test_forward_shapes_are_half_resolution_nhwc(detector: Detector) -> None:
    with torch.inference_mode():
        scores, feature = detector.model(torch.zeros(1, 3, 64, 96))
    assert scores.shape == (1, 32, 48, 2)
    assert feature.shape == (1, 32, 32, 48)


def test_missing_weights_name_the_environment_variable(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="CRAFT_WEIGHTS"):
        load_craft(tmp_path / "nope.pth")
    settings = Settings.from_env({"CRAFT_WEIGHTS": str(tmp_path / "mine.pth")})
    assert settings.craft_weights == str(tmp_path / "mine.pth")
    with pytest.raises(FileNotFoundError, match="CRAFT_WEIGHTS"):
        Detector.from_settings(settings)


@pytest.fixture(scope="module")
def words_result(detector: Detector) -> tuple[CraftDetection, list[tuple[int, int, int, int]]]:
    image, rects = _rendered_words()
    return detector.detect(image, DetectionParams(canvas_size=512, poly=True)), rects


def test_detects_each_rendered_word(words_result) -> None:
    result, rects = words_result
    assert (result.width, result.height) == (480, 160)
    assert result.padded_hw == (192, 512)
    assert len(result.boxes) == len(rects)
    # Reading order: HELLO WORLD on the first line, then OCR TEST.
    for box, rect in zip(result.boxes, rects, strict=True):
        assert _iou(box.quad, rect) > 0.6, (box.quad, rect)
        assert 0.3 < box.score <= 1.05
        q = np.asarray(box.quad)
        assert q[0].sum() == pytest.approx(q.sum(axis=1).min())  # starts at the top-left corner
    assert set(result.timings_ms) == {"preprocess", "network", "postprocess"}
    answer = result.export()
    assert answer.keys() == {"width", "height", "boxes", "lines", "timings_ms"}
    assert answer["lines"] == [[0, 1], [2, 3]]  # HELLO WORLD / OCR TEST
    assert answer["boxes"][0].keys() == {"quad", "score", "polygon"}


def test_blank_image_has_no_boxes(detector: Detector) -> None:
    result = detector.detect(np.full((64, 96, 3), 255, np.uint8), DetectionParams(canvas_size=128))
    assert result.boxes == () and result.lines == ()


def test_polygon_mode_returns_a_polygon_per_box(words_result) -> None:
    result, _ = words_result
    assert result.boxes and all(b.polygon is not None for b in result.boxes)
    assert all(len(b.polygon) in (4, 14) for b in result.boxes)


def test_quads_only_without_polygon_mode(detector: Detector) -> None:
    image, rects = _rendered_words()
    result = detector.detect(image[:80], DetectionParams(canvas_size=256))
    assert len(result.boxes) == 2  # HELLO and WORLD
    assert all(b.polygon is None for b in result.boxes)
    assert result.export()["boxes"][0].keys() == {"quad", "score"}


def test_rejects_non_rgb_input(detector: Detector) -> None:
    with pytest.raises(InvalidImage):
        detector.detect(np.zeros((32, 32), np.uint8))
    with pytest.raises(InvalidImage):
        detector.detect(np.zeros((32, 32, 3), np.float32))


def test_returns_score_maps_on_request(detector: Detector) -> None:
    image, _ = _rendered_words()
    result = detector.detect(image[:80, :240], DetectionParams(canvas_size=128), return_maps=True)
    assert result.region is not None and result.affinity is not None
    assert result.region.shape == (result.padded_hw[0] // 2, result.padded_hw[1] // 2)
    assert result.region.max() > 0.7
    assert detector.detect(image[:80, :240], DetectionParams(canvas_size=128)).region is None

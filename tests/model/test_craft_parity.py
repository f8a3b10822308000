"""Parity with the official CRAFT test code on three real images (../shared/data/parity).

The references were made with the official code at its defaults (see parity/README.md). We check
the resize, both score maps (stored as float16, so within 2e-3), and the final boxes. The
reference lists boxes in connected-component order while we return reading order, so boxes are
matched by nearest centre before their corners are compared.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from common.images import decode_image
from common.params import DetectionParams
from std_service.detector import CraftDetection, Detector
from std_service.postprocess import detect_map_boxes

IMAGES = {
    "sroie_409": "sroie_409.jpg",
    "funsd_81186212": "funsd_81186212.png",
    "ic15train_img_1": "ic15train_img_1.jpg",
}
MAP_TOLERANCE = 2e-3
CORNER_TOLERANCE_PX = 1.0


def _reference(parity_dir: Path, name: str) -> dict[str, np.ndarray]:
    with np.load(parity_dir / f"craft_{name}.npz") as data:
        return {key: data[key] for key in data.files}


@pytest.fixture(scope="module")
def detections(shared_data: Path, detector: Detector) -> dict[str, CraftDetection]:
    """One full-size detection per image, shared by the tests below (the network is the cost)."""
    results = {}
    for name, filename in IMAGES.items():
        image = decode_image((shared_data / "dev" / "images" / filename).read_bytes())
        results[name] = detector.detect(image, DetectionParams(), return_maps=True)
    return results


def _match_by_centre(ours: np.ndarray, ref: np.ndarray) -> list[int]:
    """For each reference box, the index of our box with the nearest centre (must be 1:1)."""
    distances = np.linalg.norm(ref.mean(axis=1)[:, None, :] - ours.mean(axis=1)[None], axis=2)
    match = distances.argmin(axis=1).tolist()
    assert sorted(match) == list(range(len(ours))), "boxes do not pair up one to one"
    return match


@pytest.mark.parametrize("name", IMAGES)
def test_resize_matches_reference(name: str, detections, parity_dir: Path) -> None:
    ref = _reference(parity_dir, name)
    result = detections[name]
    assert (result.height, result.width) == tuple(ref["image_hw"])
    assert result.resized_hw == tuple(ref["resized_hw"])
    assert result.padded_hw == tuple(ref["padded_hw"])
    assert result.ratio == pytest.approx(float(ref["target_ratio"]), rel=1e-12)


@pytest.mark.parametrize("name", IMAGES)
def test_score_maps_match_reference(name: str, detections, parity_dir: Path) -> None:
    ref = _reference(parity_dir, name)
    result = detections[name]
    assert result.region.shape == ref["region"].shape
    region_diff = np.abs(result.region - ref["region"].astype(np.float32)).max()
    affinity_diff = np.abs(result.affinity - ref["affinity"].astype(np.float32)).max()
    assert region_diff < MAP_TOLERANCE
    assert affinity_diff < MAP_TOLERANCE
    # The float32 sums pin the maps down beyond float16 rounding.
    assert result.region.astype(np.float64).sum() == pytest.approx(ref["region_stats"][0], rel=1e-4)
    assert result.affinity.astype(np.float64).sum() == pytest.approx(
        ref["affinity_stats"][0], rel=1e-4
    )


@pytest.mark.parametrize("name", IMAGES)
def test_boxes_match_reference(name: str, detections, parity_dir: Path) -> None:
    ref = _reference(parity_dir, name)
    result = detections[name]
    ours = np.array([box.quad for box in result.boxes], dtype=np.float64)
    expected = ref["boxes"].astype(np.float64)
    assert len(ours) == len(expected)
    # The reference does not clip to the image; we do.
    expected[:, :, 0] = np.clip(expected[:, :, 0], 0, result.width)
    expected[:, :, 1] = np.clip(expected[:, :, 1], 0, result.height)
    match = _match_by_centre(ours, expected)
    corner_diff = np.abs(ours[match] - expected).max()
    assert corner_diff <= CORNER_TOLERANCE_PX


@pytest.mark.parametrize("name", IMAGES)
def test_postprocessing_reproduces_reference_boxes_from_its_maps(
    name: str, parity_dir: Path
) -> None:
    """Network-free: the reference's own maps through our post-processing give its map boxes."""
    ref = _reference(parity_dir, name)
    boxes = detect_map_boxes(
        ref["region"].astype(np.float32),
        ref["affinity"].astype(np.float32),
        text_threshold=0.7,
        link_threshold=0.4,
        low_text=0.4,
    )
    ours = np.array([box.quad for box in boxes])
    assert ours.shape == ref["boxes_map"].shape
    # Same component order as the official code, and (on float16 maps) the same boxes.
    np.testing.assert_allclose(ours, ref["boxes_map"], atol=1e-3)

"""The detection scale chosen from the text's size: deterministic, bounded, probe reused."""

from __future__ import annotations

import pytest

from common.results import Box
from std_service.scale import (
    PROBE_LONG_SIDE,
    REUSE_TOLERANCE,
    detection_ratio,
    probe_ratio,
    small_text_height,
)


def box(x: float, y: float, w: float, h: float) -> Box:
    return Box(((x, y), (x + w, y), (x + w, y + h), (x, y + h)), 0.9)


def test_the_height_is_measured_across_the_text_even_when_rotated():
    tilted = Box(((0, 0), (40, 30), (34, 38), (-6, 8)), 0.9)  # 50 long, 10 tall, at 37 degrees
    assert small_text_height([tilted]) == pytest.approx(10)
    assert small_text_height([box(0, 60, 9, 20)]) == 20  # a narrow word: its height, not width
    assert small_text_height([]) is None


def test_the_small_print_sets_the_height_not_the_headings():
    # A receipt: 3 item lines of 10 px words under 5 heading words of 24 px. The median word
    # is a heading; the first quartile is an item line's height, so the items get the pixels.
    items = [box(0, 100 + 12 * i, 40, 10) for i in range(3)]
    headings = [box(0, 30 * i, 80, 24) for i in range(5)]
    assert small_text_height(headings + items) == pytest.approx(10)  # the median: 24
    assert small_text_height(items + headings) == small_text_height(headings + items)


def test_small_images_skip_the_probe():
    # A 600 px page at an official 1.2x: the probe (640 px, 1.07x) would cost about as much.
    assert probe_ratio(400, 600, official_ratio=1.2) is None
    assert probe_ratio(1000, 2000, official_ratio=0.64) == pytest.approx(PROBE_LONG_SIDE / 2000)


def test_large_print_keeps_the_probe_and_small_print_gets_more_pixels():
    probe, official = 0.32, 0.64
    # 40 px words are 12.8 canvas px at the probe's 0.32; 16 px needs 0.4, a second pass.
    assert detection_ratio(40.0, 16.0, probe, official) == pytest.approx(0.4)
    # 60 px words: 16 / 60 = 0.27 < the probe's ratio, so the probe's boxes are the answer.
    assert detection_ratio(60.0, 16.0, probe, official) == probe
    # Just above the probe, within the tolerance: no second pass either.
    near = 16.0 / (probe * (1 + REUSE_TOLERANCE / 2))
    assert detection_ratio(near, 16.0, probe, official) == probe
    # Tiny print asks for more than the official scale: capped there.
    assert detection_ratio(5.0, 16.0, probe, official) == official


def test_a_probe_that_finds_nothing_falls_back_to_the_official_scale():
    assert detection_ratio(None, 16.0, 0.3, 1.2) == 1.2

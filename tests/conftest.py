"""Shared fixtures: the loaded models, and where the read-only shared data lives.

The models come from the installed weight packages (make install): missing weights fail the
tests that need them, since a checkout without them is broken. The shared data is optional: the
tests that read it skip, with the reason, when it is absent.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("OCR_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))
DEV_DIR = SHARED_DATA / "dev"
PARITY_DIR = SHARED_DATA / "parity"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared data folder; tests that need it skip with the reason when it's absent."""
    if not (DEV_DIR.is_dir() and PARITY_DIR.is_dir()):
        pytest.skip(f"shared data not found at {SHARED_DATA} (set OCR_SHARED_DATA to its path)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def dev_dir(shared_data: Path) -> Path:
    return shared_data / "dev"


@pytest.fixture(scope="session")
def parity_dir(shared_data: Path) -> Path:
    return shared_data / "parity"


@pytest.fixture(scope="session")
def detector():
    """The CRAFT detector on the packaged weights, CPU, 2 threads, as the official profile runs
    it (torch, float32): the reference the parity tests hold, shared by the service tests."""
    from common.config import Settings
    from std_service.detector import Detector

    settings = Settings(ocr_threads=2, ocr_device="cpu", ocr_profile="official")
    return Detector.from_settings(settings)


@pytest.fixture(scope="session")
def recognizer():
    """The default recogniser (english_g2) on the packaged weights, CPU, 2 threads, as the
    official profile runs it (torch, float32)."""
    from common.config import Settings
    from str_service.recognizer import Recognizer

    settings = Settings(ocr_threads=2, ocr_device="cpu", ocr_profile="official")
    return Recognizer.from_settings(settings)

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


# Where the embedded pipeline keeps its jobs by default (OCR_JOBS_DB): a user's `make run` data.
CHECKOUT_JOBS_DB = REPO_ROOT / "out" / "jobs.sqlite3"


def _stat(path: Path) -> tuple[int, int] | None:
    try:
        info = path.stat()
    except FileNotFoundError:
        return None
    return info.st_mtime_ns, info.st_size


@pytest.fixture(autouse=True)
def _checkout_jobs_db_untouched(request: pytest.FixtureRequest):
    """No test writes the checkout's own jobs database: each gives its servers a database of
    their own, so a test run neither leaves files in the checkout nor touches a user's jobs."""
    before = _stat(CHECKOUT_JOBS_DB)
    yield
    if _stat(CHECKOUT_JOBS_DB) != before:
        pytest.fail(f"{request.node.nodeid} wrote {CHECKOUT_JOBS_DB} (set ocr_jobs_db)")


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

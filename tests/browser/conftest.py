"""What the page tests share: a live embedded pipeline for the page to talk to."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.servers import serve


@pytest.fixture(scope="module")
def pipeline_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The embedded pipeline on a free port, its jobs database in a folder of its own (none
    left in the checkout)."""
    from common.config import Settings
    from pipeline.app import create_app

    jobs_db = tmp_path_factory.mktemp("jobs") / "jobs.sqlite3"
    with serve(create_app(Settings(ocr_threads=1, ocr_jobs_db=f"sqlite:///{jobs_db}"))) as url:
        yield url

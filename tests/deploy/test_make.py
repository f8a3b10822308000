"""The Makefile as a newcomer meets it: `make help` and what the first `make install` prints."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def make(*args: str) -> str:
    done = subprocess.run(
        ["make", "-s", "--no-print-directory", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout


def test_help_expands_the_variables_in_each_line() -> None:
    text = make("help")
    assert "$(" not in text
    lines = {line.split()[0]: line for line in text.splitlines()}
    assert ":5000" in lines["run"] and ":8501" in lines["run"]
    assert ":5001" in lines["run-std"] and ":5002" in lines["run-str"]
    assert "out/demo/page.png" in lines["demo"]
    assert {"bench", "test", "up", "help"} <= set(lines)  # bench.mk and docker.mk too


def test_help_shows_what_you_set() -> None:
    run = [
        line for line in make("help", "PIPELINE_PORT=6000").splitlines() if line.startswith("run ")
    ]
    assert len(run) == 1 and ":6000" in run[0]


def test_first_install_says_what_it_does_and_shows_pip_progress(tmp_path: Path) -> None:
    """Dry run against an empty virtualenv folder: the recipe a fresh clone would run."""
    recipe = make("-n", "install", f"VENV={tmp_path / 'venv'}")
    assert "installing the pinned dependencies" in recipe and "3 minutes" in recipe
    install = [line for line in recipe.splitlines() if "-r requirements-dev.txt" in line]
    assert len(install) == 1 and " -q " not in install[0]


def test_demo_draws_a_page_and_reads_it_with_the_cli() -> None:
    recipe = make("-n", "demo").splitlines()
    assert recipe[-2:] == [
        ".venv/bin/python -m pipeline.demo out/demo/page.png",
        ".venv/bin/python -m pipeline.cli out/demo/page.png",
    ]

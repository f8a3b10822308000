"""The command-line client, in process and against a running pipeline."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import pytest

from pipeline.cli import find_images, main
from tests.render import render_words
from tests.service.conftest import ocr_stack


@pytest.fixture
def pages(tmp_path: Path) -> Path:
    for name, words in (("a.png", [["HELLO", "world"]]), ("b.jpg", [["second", "FILE"]])):
        cv2.imwrite(str(tmp_path / name), render_words(words)[0])
    (tmp_path / "notes.txt").write_text("not an image")
    return tmp_path


def test_folders_expand_to_their_images(pages: Path) -> None:
    assert [p.name for p in find_images([str(pages)])] == ["a.png", "b.jpg"]


def test_in_process_json_output(pages: Path, capsys: pytest.CaptureFixture) -> None:
    assert main([str(pages), "--json", "--canvas-size", "640"]) == 0
    answers = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(Path(a["file"]).name, a["text"]) for a in answers] == [
        ("a.png", "HELLO world"),
        ("b.jpg", "second FILE"),
    ]


def test_against_a_running_pipeline_reports_bad_files(
    pages: Path, base_settings, detector, recognizer, capsys: pytest.CaptureFixture
) -> None:
    (pages / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    with ocr_stack("embedded", base_settings, detector, recognizer) as (url, _):
        code = main([str(pages), "--url", url, "--mode", "sequential", "--canvas-size", "640"])
    captured = capsys.readouterr()
    assert code == 1  # one file failed
    assert "HELLO world" in captured.out and "second FILE" in captured.out
    assert "broken.png: error:" in captured.err

"""The command-line client, in process and against a running pipeline."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import cv2
import pytest

from pipeline.cli import find_inputs, main, read_files
from tests.exported import hocr_items, pdf_pages_text
from tests.render import pdf_bytes, render_words
from tests.service.conftest import ocr_stack


@pytest.fixture
def pages(tmp_path: Path) -> Path:
    for name, words in (("a.png", [["HELLO", "world"]]), ("b.jpg", [["second", "FILE"]])):
        cv2.imwrite(str(tmp_path / name), render_words(words)[0])
    (tmp_path / "notes.txt").write_text("not an image")
    return tmp_path


def test_folders_expand_to_their_images(pages: Path) -> None:
    assert [p.name for p in find_inputs([str(pages)])] == ["a.png", "b.jpg"]


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


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="needs poppler-utils (pdftotext)")
def test_out_writes_a_searchable_pdf_and_hocr_per_image_from_a_running_pipeline(
    pages: Path, tmp_path: Path, base_settings, detector, recognizer
) -> None:
    out = tmp_path / "out"
    with ocr_stack("embedded", base_settings, detector, recognizer) as (url, _):
        for fmt in ("pdf", "hocr"):
            args = [str(pages), "--url", url, "--canvas-size", "640", "--out", str(out)]
            assert main([*args, "--format", fmt]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["a.hocr", "a.pdf", "b.hocr", "b.pdf"]
    assert pdf_pages_text(out / "a.pdf")[0].split() == ["HELLO", "world"]
    words = [t for cls, _, t in hocr_items((out / "b.hocr").read_text()) if cls == "ocrx_word"]
    assert words == ["second", "FILE"]


def test_a_pdf_is_read_page_by_page_exported_whole_and_counted_in_pages(
    tmp_path: Path, base_settings, detector, recognizer, capsys: pytest.CaptureFixture
) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    drawn = [render_words(words)[0] for words in ([["Invoice", "2024"]], [["Thank", "you"]])]
    (inputs / "doc.pdf").write_bytes(pdf_bytes(drawn))
    cv2.imwrite(str(inputs / "page.png"), render_words([["HELLO", "world"]])[0])
    out = tmp_path / "out"
    with ocr_stack("embedded", base_settings, detector, recognizer) as (url, _):
        args = [str(inputs), "--url", url, "--canvas-size", "640"]
        assert main(args) == 0
        printed = capsys.readouterr()
        assert main([*args, "--out", str(out), "--format", "txt"]) == 0
        if shutil.which("pdftotext") is not None:
            assert main([*args, "--out", str(out), "--format", "pdf"]) == 0
    assert "==> " + str(inputs / "doc.pdf") + " (page 2) <==\nThank you" in printed.out
    assert "3/3" in printed.err  # the bar counts the PDF's two pages and the image
    assert (out / "doc.txt").read_text() == "Invoice 2024\fThank you\n"
    assert (out / "page.txt").read_text() == "HELLO world\n"
    if shutil.which("pdftotext") is not None:
        assert [t.split() for t in pdf_pages_text(out / "doc.pdf")] == [
            ["Invoice", "2024"],
            ["Thank", "you"],
        ]


def test_job_submits_follows_and_fetches_the_result(
    tmp_path: Path, base_settings, detector, recognizer, capsys: pytest.CaptureFixture
) -> None:
    settings = base_settings.with_overrides(ocr_jobs_db=f"sqlite:///{tmp_path / 'jobs.db'}")
    drawn = [render_words(words)[0] for words in ([["Invoice", "2024"]], [["Thank", "you"]])]
    document = tmp_path / "doc.pdf"
    document.write_bytes(pdf_bytes(drawn))
    out = tmp_path / "out"
    with ocr_stack("embedded", settings, detector, recognizer) as (url, _):
        args = [str(document), "--url", url, "--canvas-size", "640", "--job"]
        assert main([*args, "--out", str(out), "--format", "txt"]) == 0
    captured = capsys.readouterr()
    written = Path(captured.out.strip())
    assert written.parent == out and written.name.startswith("job-")
    assert written.read_text() == "Invoice 2024\fThank you\n"
    assert "2 pages" in captured.err and "2/2" in captured.err  # the bar counts pages


def test_job_needs_a_running_pipeline(pages: Path) -> None:
    with pytest.raises(SystemExit):
        main([str(pages), "--job"])


def test_a_format_without_an_output_folder_is_refused(pages: Path) -> None:
    with pytest.raises(SystemExit):
        main([str(pages), "--format", "pdf"])


def test_progress_moves_per_file_in_completion_order_and_output_keeps_input_order(
    tmp_path: Path,
) -> None:
    """Files finish out of order (c, a, b): the bar moves once per file as each is done, and
    the answers still come out a, b, c, each as soon as the files before it are done."""
    files = [tmp_path / name for name in ("a.png", "b.png", "c.png")]
    release = {f.name: threading.Event() for f in files}
    events: list[str] = []

    def read(file: Path) -> dict:
        assert release[file.name].wait(timeout=10)
        return {"text": file.stem}

    def progress(file: Path) -> None:
        events.append(f"done {file.name}")
        following = {"c.png": "a.png", "a.png": "b.png"}.get(file.name)
        if following:  # let the next file finish only after this one was counted
            release[following].set()

    def emit(file: Path, answer: dict) -> None:
        events.append(f"out {file.name}={answer['text']}")

    release["c.png"].set()
    failures = read_files(files, read, emit, progress, in_flight=3)
    assert failures == 0
    assert events == [
        "done c.png",
        "done a.png",
        "out a.png=a",
        "done b.png",
        "out b.png=b",
        "out c.png=c",
    ]


def test_errors_are_counted_and_reported_per_file(tmp_path: Path) -> None:
    files = [tmp_path / "good.png", tmp_path / "bad.png"]
    seen: list[str] = []

    def read(file: Path) -> dict:
        if file.name == "bad.png":
            return {"error": {"code": "invalid_image", "message": "not an image"}}
        return {"text": "fine"}

    failures = read_files(files, read, lambda f, a: seen.append(f.name), lambda f: None)
    assert failures == 1 and seen == ["good.png", "bad.png"]


def test_help_has_no_rst_markup(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["--help"])
    assert stop.value.code == 0
    text = capsys.readouterr().out
    assert "``" not in text and "usage: python -m pipeline.cli" in text


def test_the_demo_page_reads_back_as_drawn(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """`make demo`: the page pipeline.demo draws is read word for word by the CLI in process."""
    from pipeline import demo

    page = demo.write_page(tmp_path / "demo" / "page.png")
    assert demo.main([str(tmp_path / "again.png")]) == 0 and (tmp_path / "again.png").is_file()
    capsys.readouterr()
    assert main([str(page)]) == 0
    assert capsys.readouterr().out == f"==> {page} <==\n" + "\n".join(demo.PAGES[0]) + "\n\n"

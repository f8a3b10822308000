"""The Jobs page, run by streamlit.testing's AppTest: against a live embedded pipeline (a drawn
two-page PDF submitted, followed to the end, its result downloaded in each format), and against
a stand-in jobs API whose jobs the tests move on themselves (cancel, failed pages, refusals).
"""

from __future__ import annotations

import json
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from streamlit.testing.v1 import AppTest

from tests.render import pdf_bytes, render_words
from tests.web_fixtures import StandInJobs, png, stand_in_jobs

APP = Path(__file__).resolve().parents[2] / "web" / "app.py"
RUN_TIMEOUT_S = 60
JOB_TIMEOUT_S = 300  # two pages read on a CPU that may be busy
PAGES = [["Invoice", "Total", "Paid"], ["Hello", "World", "Report"]]


@pytest.fixture
def api() -> Iterator[StandInJobs]:
    with stand_in_jobs() as state:
        yield state


@pytest.fixture
def served(monkeypatch) -> dict[str, tuple[str, bytes]]:
    """What the page's download buttons hold: each file Streamlit stores for one, by the id its
    URL names -> (file name, data)."""
    stored: dict[str, tuple[str, bytes]] = {}
    store = MemoryMediaFileStorage.load_and_get_id

    def record(self, path_or_data, mimetype, kind, filename=None):
        file_id = store(self, path_or_data, mimetype, kind, filename)
        stored[file_id] = (filename, path_or_data)
        return file_id

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", record)
    return stored


def jobs_page(url: str, monkeypatch) -> AppTest:
    monkeypatch.setenv("PIPELINE_URL", url)
    monkeypatch.delenv("OCR_API_KEY", raising=False)
    monkeypatch.delenv("WEB_TIMEOUT_S", raising=False)
    monkeypatch.delenv("OCR_MAX_UPLOAD_MB", raising=False)
    page = AppTest.from_file(APP, default_timeout=RUN_TIMEOUT_S).run()
    page.switch_page("views/jobs.py").run()
    no_traceback(page)
    return page


def no_traceback(page: AppTest) -> None:
    assert not page.exception, [e.message for e in page.exception]


def submit(page: AppTest, files: list[tuple[str, bytes, str]]) -> AppTest:
    page.file_uploader(key="job_uploads").set_value(files).run()
    return page.button(key="submit").click().run()


def progress_text(page: AppTest) -> str:
    [bar] = page.get("progress")
    return bar.proto.text


def download(page: AppTest, served: dict, label: str) -> tuple[str, bytes]:
    """The file name and data the download button labelled ``label`` gives the browser."""
    [button] = [b for b in page.get("download_button") if b.label == label]
    return served[Path(urlparse(button.proto.url).path).stem]


def labels(page: AppTest) -> list[str]:
    return [button.label for button in page.get("download_button")]


def words_of(text: str) -> list[str]:
    return re.findall(r"\w+", text.casefold())


# --- the live pipeline -------------------------------------------------------------------------


def test_a_document_is_read_as_a_job_and_its_result_downloaded(pipeline_url, monkeypatch, served):
    page = jobs_page(pipeline_url, monkeypatch)
    assert page.title[0].value == "Jobs"
    page.number_input(key="canvas_size").set_value(640).run()  # small: quick on a CPU
    document = pdf_bytes([render_words([words])[0] for words in PAGES])
    submit(page, [("two pages.pdf", document, "application/pdf")])
    no_traceback(page)
    assert not page.error
    job_id = page.selectbox(key="job").value
    assert list(page.dataframe[0].value["id"]) == [job_id]  # the new job, listed and shown
    assert page.dataframe[0].value["total"][0] == 2

    deadline = time.monotonic() + JOB_TIMEOUT_S
    while not progress_text(page).endswith("done"):  # what the page's polling does, by hand
        assert time.monotonic() < deadline, f"job not done after {JOB_TIMEOUT_S} s"
        assert "Cancel job" in [b.label for b in page.button]  # a running job can be cancelled
        time.sleep(1.0)
        page.run()
        no_traceback(page)
    assert progress_text(page) == "2 of 2 pages · done"
    assert page.get("progress")[0].proto.value == 100
    assert page.dataframe[0].value["status"][0] == "done" and not page.error

    name, text = download(page, served, "Download .txt")
    assert name == f"job-{job_id}.txt"
    pages = text.decode().split("\f")
    assert [words_of(page_text) for page_text in pages] == [
        [word.casefold() for word in words] for words in PAGES
    ]
    name, answer = download(page, served, "Download JSON")
    assert name == f"job-{job_id}.json"
    assert [p["page"] for p in json.loads(answer)["pages"]] == [1, 2]

    page.button(key=f"make-pdf-{job_id}").click().run()
    page.button(key=f"make-hocr-{job_id}").click().run()
    no_traceback(page)
    assert labels(page) == [
        "Download .txt",
        "Download JSON",
        "Download searchable PDF",
        "Download hOCR",
    ]
    name, pdf = download(page, served, "Download searchable PDF")
    assert name == f"job-{job_id}-searchable.pdf" and pdf.startswith(b"%PDF-")
    _, hocr = download(page, served, "Download hOCR")
    assert b"ocrx_word" in hocr and all(word.encode() in hocr for word in PAGES[1])


# --- a stand-in jobs API -----------------------------------------------------------------------


def test_an_empty_list_asks_for_files_the_read_page_takes(api, monkeypatch):
    page = jobs_page(api.url, monkeypatch)
    assert "No jobs yet" in page.info[0].value
    uploader = page.file_uploader(key="job_uploads")
    assert uploader.allowed_type == [
        ".pdf", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp"
    ]  # fmt: skip
    assert uploader.proto.max_upload_size_mb == 20
    assert page.button(key="submit").disabled  # nothing to submit yet
    monkeypatch.setenv("OCR_MAX_UPLOAD_MB", "5")
    smaller = AppTest.from_file(APP, default_timeout=RUN_TIMEOUT_S).run()
    smaller.switch_page("views/jobs.py").run()
    assert smaller.file_uploader(key="job_uploads").proto.max_upload_size_mb == 5


def test_a_submission_sends_the_settings_once_and_a_running_job_can_be_cancelled(api, monkeypatch):
    page = jobs_page(api.url, monkeypatch)
    page.number_input(key="canvas_size").set_value(640)
    submit(page, [("a.png", png(), "image/png"), ("b.pdf", b"%PDF-1.7", "application/pdf")])
    no_traceback(page)
    [sent] = api.submitted
    assert [name for name, _, _ in sent["files"]] == ["a.png", "b.pdf"]
    assert sent["form"] == {
        "canvas_size": "640",
        "mag_ratio": "1.5",
        "text_threshold": "0.7",
        "link_threshold": "0.4",
        "low_text": "0.4",
    }
    page.button(key="submit").click().run()  # a second click: the same job, not another
    assert len(api.submitted) == 2 and api.submitted[1]["key"] == sent["key"]
    assert list(api.jobs) == ["job1"]

    assert page.selectbox(key="job").value == "job1"
    assert progress_text(page) == "0 of 2 pages · queued"
    api.jobs["job1"] |= {"status": "running", "pages_done": 1}
    page.button(key="refresh").click().run()
    assert progress_text(page) == "1 of 2 pages · running"
    assert not labels(page)  # no result before the job is done

    page.button(key="cancel-job1").click().run()
    no_traceback(page)
    assert api.jobs["job1"]["status"] == "cancelled"
    assert "was cancelled" in page.warning[0].value
    assert page.dataframe[0].value["status"][0] == "cancelled"
    assert not [b for b in page.button if b.label == "Cancel job"] and not labels(page)


def test_a_done_job_shows_its_failed_pages_and_its_downloads(api, monkeypatch, served):
    page = jobs_page(api.url, monkeypatch)
    submit(page, [("a.png", png(), "image/png"), ("b.png", png(), "image/png")])
    error = {"page": 2, "code": "invalid_image", "message": "not a recognised image"}
    api.jobs["job1"] |= {"status": "done", "pages_done": 1, "pages_failed": 1, "errors": [error]}
    page.run()
    no_traceback(page)
    assert progress_text(page) == "2 of 2 pages · 1 failed · done"
    failed = page.dataframe[1].value
    assert failed.to_dict("records") == [error]
    assert labels(page) == ["Download .txt", "Download JSON"]
    assert download(page, served, "Download .txt") == ("job-job1.txt", b"txt result of job1")
    page.button(key="make-pdf-job1").click().run()
    assert download(page, served, "Download searchable PDF") == (
        "job-job1-searchable.pdf",
        b"pdf result of job1",
    )


def test_a_failed_job_says_so_and_offers_nothing(api, monkeypatch):
    page = jobs_page(api.url, monkeypatch)
    submit(page, [("a.png", png(), "image/png")])
    api.jobs["job1"] |= {"status": "failed", "pages_failed": 1}
    page.run()
    assert "Not one page of this job could be read" in page.error[0].value
    assert not labels(page)


def test_a_refused_submission_is_a_readable_message(api, monkeypatch):
    page = jobs_page(api.url, monkeypatch)
    submit(page, [("broken.pdf", b"%PDF-", "application/pdf")])
    no_traceback(page)
    assert "could not open this PDF" in page.error[0].value
    assert "No jobs yet" in page.info[0].value


def test_the_backend_down_is_a_readable_message(monkeypatch):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    page = jobs_page(f"http://127.0.0.1:{port}", monkeypatch)
    [error] = page.error
    assert "Can't reach the OCR backend" in error.value and str(port) in error.value

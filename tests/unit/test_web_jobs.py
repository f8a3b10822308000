"""The web page's jobs client without Streamlit: calls against a stand-in jobs API over real HTTP,
error wording, a job's table row and progress text."""

from __future__ import annotations

import json
import socket

import pytest

from tests.web_fixtures import png, stand_in_jobs
from web import client, jobs_client, tables
from web.errors import PageError

DETECTION = {"canvas_size": "640", "low_text": "0.3"}


@pytest.fixture
def api():
    with stand_in_jobs() as state:
        yield state


def config_for(url: str, **overrides) -> client.WebConfig:
    return client.WebConfig(url, **{"api_key": "k", "timeout_s": 10} | overrides)


def refused(call) -> PageError:
    with pytest.raises(PageError) as caught:
        call()
    assert "Traceback" not in caught.value.message
    return caught.value


def test_a_job_is_submitted_as_its_files_settings_and_key(api):
    files = [("scan.png", png()), ("Report.PDF", b"%PDF-1.7 pages")]
    job = jobs_client.submit_job(config_for(api.url), files, DETECTION, key="web-1")
    assert (job.status, job.pages_total, job.pages_ended, job.ended) == ("queued", 2, 0, False)
    assert api.submitted == [
        {
            "files": [("scan.png", "image/png", len(png())), ("Report.PDF", "application/pdf", 14)],
            "form": DETECTION,
            "key": "web-1",
            "api_key": "k",
        }
    ]


def test_the_same_key_answers_the_job_it_made(api):
    config = config_for(api.url)
    first = jobs_client.submit_job(config, [("a.png", png())], DETECTION, key="web-1")
    again = jobs_client.submit_job(config, [("a.png", png())], DETECTION, key="web-1")
    other = jobs_client.submit_job(config, [("a.png", png())], DETECTION)
    assert again == first and other.id != first.id
    assert [job.id for job in jobs_client.list_jobs(config)] == [other.id, first.id]


def test_files_over_the_upload_limit_together_are_refused_before_sending(api):
    config = config_for(api.url, max_upload_mb=1)
    half = b"x" * (600 * 1024)  # each file fits the uploader's limit; the two don't fit a request
    error = refused(
        lambda: jobs_client.submit_job(config, [("a.pdf", half), ("b.pdf", half)], DETECTION)
    )
    assert error.code == "payload_too_large"
    assert "several jobs" in error.message and "1.2 MB together, over 1 MB" in error.message
    assert api.submitted == []


@pytest.mark.parametrize(
    ("name", "code", "expected"),
    [
        ("broken.pdf", "invalid_pdf", "could not open this PDF"),
        # A job's page limit is OCR_JOBS_MAX_PAGES, not a single read's OCR_MAX_PAGES.
        ("huge.pdf", "too_many_pages", "in one job (OCR_JOBS_MAX_PAGES)"),
    ],
)
def test_a_refused_submission_is_a_readable_error(api, name, code, expected):
    config = config_for(api.url)
    error = refused(lambda: jobs_client.submit_job(config, [(name, b"%PDF-")], DETECTION))
    assert error.code == code and expected in error.message
    assert "refused by the stand-in" in error.message  # the backend's own words stay visible
    assert api.jobs == {}


def test_status_list_and_limit_follow_the_jobs(api):
    config = config_for(api.url)
    made = [jobs_client.submit_job(config, [(f"{n}.png", png())], DETECTION) for n in range(3)]
    api.jobs[made[0].id] |= {"status": "running", "pages_done": 1}
    job = jobs_client.job_status(config, made[0].id)
    assert (job.status, job.pages_done, job.fraction) == ("running", 1, 1.0)
    assert [job.id for job in jobs_client.list_jobs(config, limit=2)] == [made[2].id, made[1].id]


def test_a_missing_job_is_said_to_be_gone_not_the_endpoint(api):
    error = refused(lambda: jobs_client.job_status(config_for(api.url), "nope"))
    assert error.code == "not_found"
    assert "no such job" in error.message and "OCR_JOBS_RETENTION_H" in error.message
    assert "endpoint" not in error.message


def test_a_running_job_is_cancelled_once(api):
    config = config_for(api.url)
    job = jobs_client.submit_job(config, [("a.png", png())], DETECTION)
    assert jobs_client.cancel_job(config, job.id).status == "cancelled"
    assert api.jobs[job.id]["status"] == "cancelled"
    error = refused(lambda: jobs_client.cancel_job(config, job.id))
    assert error.code == "job_finished" and "nothing left to cancel" in error.message


def test_the_result_is_there_once_the_job_is_done(api):
    config = config_for(api.url)
    job = jobs_client.submit_job(config, [("a.png", png())], DETECTION)
    error = refused(lambda: jobs_client.fetch_result(config, job.id, "txt"))
    assert error.code == "job_not_finished" and "once it is done" in error.message

    api.jobs[job.id] |= {"status": "done", "pages_done": 1}
    for fmt in ("pdf", "hocr", "txt"):
        assert jobs_client.fetch_result(config, job.id, fmt) == f"{fmt} result of {job.id}".encode()
    assert json.loads(jobs_client.fetch_result(config, job.id, "json"))["text"] == "Alpha"
    with pytest.raises(ValueError, match="unknown format"):
        jobs_client.fetch_result(config, job.id, "docx")


@pytest.mark.parametrize(
    "payload",
    [None, [], {"id": "j"}, {"status": "done"}],
    ids=["nothing", "a list", "an id only", "no id"],
)
def test_an_answer_that_is_not_a_job_is_explained(payload):
    error = refused(lambda: jobs_client.parse_job(payload))
    assert error.code == "bad_answer" and "PIPELINE_URL" in error.message


def test_page_counts_must_be_numbers(api):
    config = config_for(api.url)
    job = jobs_client.submit_job(config, [("a.png", png())], DETECTION)
    api.jobs[job.id]["pages_done"] = "1"
    assert refused(lambda: jobs_client.job_status(config, job.id)).code == "bad_answer"
    assert refused(lambda: jobs_client.list_jobs(config)).code == "bad_answer"


def test_the_backend_down_is_a_readable_error():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    error = refused(lambda: jobs_client.list_jobs(config_for(url)))
    assert error.code == "backend_down" and url in error.message


# --- how a job reads on the page ---------------------------------------------------------------


def a_job(**changes) -> jobs_client.Job:
    fields = {
        "id": "0f3a",
        "status": "running",
        "pages_total": 5,
        "pages_done": 2,
        "pages_failed": 1,
        "errors": [{"page": 3, "code": "invalid_image", "message": "bad page"}],
        "created_at": "2026-05-01T12:03:04.567+00:00",
        "updated_at": "2026-05-01T12:03:09+00:00",
        "expires_at": "2026-05-08T14:03:04+02:00",
    }
    return jobs_client.parse_job(fields | changes)


def test_a_jobs_row_and_progress():
    job = a_job()
    assert tables.job_row(job) == {
        "id": "0f3a",
        "status": "running",
        "done": 2,
        "failed": 1,
        "total": 5,
        "created": "2026-05-01 12:03:04 UTC",
        "expires": "2026-05-08 12:03:04 UTC",  # in UTC, whatever zone the pipeline wrote
    }
    assert tables.job_progress(job) == "3 of 5 pages · 1 failed · running"
    assert job.fraction == pytest.approx(0.6)
    done = a_job(status="done", pages_total=1, pages_done=1, pages_failed=0, errors=[])
    assert (tables.job_progress(done), done.fraction, done.ended) == (
        "1 of 1 page · done",
        1.0,
        True,
    )


def test_an_empty_job_is_complete_and_an_odd_time_is_kept():
    assert a_job(pages_total=0, pages_done=0, pages_failed=0).fraction == 1.0
    assert tables.job_time("yesterday") == "yesterday"
    assert tables.job_time("2026-05-01T12:03:04") == "2026-05-01 12:03:04 UTC"

"""The jobs API end to end, on the real RabbitMQ and PostgreSQL (and SQLite, embedded).

- Embedded (SQLite, no broker): a 20-page job completes with every page; cancel; the
  idempotency key returns the same job; the pipeline process SIGKILLed mid-job and started
  again, and the job goes on to the end.
- Distributed: two page workers (``python -m jobs.worker``, real processes) on the pages queue
  and PostgreSQL, one SIGKILLed mid-job: the job completes, no page lost, none read twice.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from common.amqp import CONNECTION_ERRORS, probe_queue
from common.config import Settings
from tests.render import pdf_bytes, render_words
from tests.servers import assert_error
from tests.service.conftest import REPO_ROOT, amqp_channel, ocr_stack, postgres_schema

PAGES = 20
FIELDS = {"canvas_size": "640"}


def page_words(number: int) -> list[list[str]]:
    return [["Page", str(number)], ["of", "twenty"]]


def job_document(pages: int = PAGES) -> bytes:
    return pdf_bytes([render_words(page_words(n))[0] for n in range(1, pages + 1)])


def submit(url: str, blob: bytes, key: str | None = None) -> requests.Response:
    headers = {"Idempotency-Key": key} if key else {}
    return requests.post(
        url + "/jobs", files={"images": ("doc.pdf", blob)}, data=FIELDS, headers=headers, timeout=60
    )


def wait_for(url: str, job_id: str, until, timeout_s: float = 300.0) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        job = requests.get(f"{url}/jobs/{job_id}", timeout=10).json()
        if until(job) or time.monotonic() > deadline:
            return job
        time.sleep(0.2)


def ended(job: dict) -> bool:
    return job["status"] in ("done", "failed", "cancelled")


def assert_every_page_read(url: str, job_id: str, pages: int = PAGES) -> None:
    result = requests.get(f"{url}/jobs/{job_id}/result", timeout=30)
    assert result.status_code == 200, result.text
    texts = [page.get("text") for page in result.json()["pages"]]
    assert texts == [f"Page {n}\nof twenty" for n in range(1, pages + 1)]


@pytest.fixture
def settings(base_settings: Settings, queue_name: str, tmp_path) -> Settings:
    return base_settings.with_overrides(
        str_queue=queue_name, ocr_jobs_db=f"sqlite:///{tmp_path / 'jobs.sqlite3'}"
    )


def test_a_20_page_job_completes_with_every_page_and_its_exports(
    settings, detector, recognizer, tmp_path
):
    with ocr_stack("embedded", settings, detector, recognizer) as (url, _):
        submitted = submit(url, job_document(), key="twenty")
        assert submitted.status_code == 202, submitted.text
        job = submitted.json()
        assert submitted.headers["Location"] == f"/jobs/{job['id']}"
        assert (job["status"], job["pages_total"]) == ("queued", PAGES)
        again = submit(url, job_document(), key="twenty")
        assert again.status_code == 200 and again.json()["id"] == job["id"]
        done = wait_for(url, job["id"], ended)
        assert (done["status"], done["pages_done"], done["pages_failed"]) == ("done", PAGES, 0)
        assert_every_page_read(url, job["id"])
        text = requests.get(f"{url}/jobs/{job['id']}/result?format=txt", timeout=30).text
        assert text.count("\f") == PAGES - 1
        listed = requests.get(f"{url}/jobs?limit=5", timeout=10).json()["jobs"]
        assert [item["id"] for item in listed] == [job["id"]]
        assert_error(requests.delete(f"{url}/jobs/{job['id']}", timeout=10), 409, "job_finished")
        metrics = requests.get(f"{url}/metrics", timeout=10).text
        assert 'ocr_jobs{status="done"} 1.0' in metrics


def test_a_cancelled_job_stops_and_its_result_is_refused(settings, detector, recognizer):
    with ocr_stack("embedded", settings, detector, recognizer) as (url, _):
        job = submit(url, job_document()).json()
        cancelled = requests.delete(f"{url}/jobs/{job['id']}", timeout=10)
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
        time.sleep(2)  # pages being read when it was cancelled end; no more start
        after = requests.get(f"{url}/jobs/{job['id']}", timeout=10).json()
        assert after["status"] == "cancelled" and after["pages_done"] < PAGES
        result = requests.get(f"{url}/jobs/{job['id']}/result", timeout=10)
        assert_error(result, 409, "job_not_finished")


def test_a_bad_document_is_refused_at_submission(settings, detector, recognizer):
    with ocr_stack("embedded", settings, detector, recognizer) as (url, _):
        assert_error(submit(url, b"%PDF-1.7\n garbage"), 400, "invalid_pdf")
        many = settings.with_overrides(ocr_jobs_max_pages=3)
    with ocr_stack("embedded", many, detector, recognizer) as (url, _):
        assert_error(submit(url, job_document(4)), 413, "too_many_pages")
        assert requests.get(f"{url}/jobs", timeout=10).json()["jobs"] == []


# --- real processes: SIGKILL ----------------------------------------------------------------


@contextmanager
def process(argv: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen]:
    with log.open("ab") as out:
        child = subprocess.Popen(
            argv,
            cwd=REPO_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield child
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGTERM)
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait(timeout=10)


def child_env(settings: Settings, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OCR_", "STR_", "RABBITMQ"))}
    return env | {
        "PYTHONPATH": str(REPO_ROOT),
        "PYTHONUNBUFFERED": "1",
        "RABBITMQ_URL": settings.rabbitmq_url,
        "STR_QUEUE": settings.str_queue,
        "OCR_JOBS_DB": settings.ocr_jobs_db,
        "OCR_JOBS_QUEUE": settings.ocr_jobs_queue,
        "OCR_PROFILE": settings.ocr_profile,
        "OCR_THREADS": "1",
        "OCR_DEVICE": "cpu",
        "METRICS_PORT": "0",
        **extra,
    }


def wait_until(check, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.3)


def test_the_pipeline_killed_mid_job_and_started_again_finishes_the_job(settings, tmp_path):
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = child_env(settings, OCR_MODE="embedded", PORT=str(port), BIND="127.0.0.1")
    argv = [sys.executable, "-m", "common.server", "pipeline"]

    def ready() -> bool:
        try:
            return requests.get(url + "/readyz", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    with process(argv, env, tmp_path / "first.log") as first:
        wait_until(ready, 240, "the first pipeline")
        job = submit(url, job_document()).json()
        wait_for(url, job["id"], lambda j: j["pages_done"] >= 3, 240)
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=30)
    with process(argv, env, tmp_path / "second.log"):
        wait_until(ready, 240, "the second pipeline")
        done = wait_for(url, job["id"], ended)
        assert (done["status"], done["pages_done"], done["pages_failed"]) == ("done", PAGES, 0)
        assert_every_page_read(url, job["id"])


def test_a_page_worker_killed_mid_job_loses_no_page_and_reads_none_twice(
    base_settings, queue_name, detector, recognizer, tmp_path
):
    pages_queue = f"test.ocr.pages.{uuid.uuid4().hex[:12]}"
    with postgres_schema() as database:
        settings = base_settings.with_overrides(
            str_queue=queue_name, ocr_jobs_db=database, ocr_jobs_queue=pages_queue
        )
        try:
            with ocr_stack("distributed", settings, detector, recognizer) as (url, _):
                argv = [sys.executable, "-m", "jobs.worker"]
                logs = [tmp_path / f"worker{i}.log" for i in range(2)]
                env = child_env(settings)
                with process(argv, env, logs[0]) as doomed, process(argv, env, logs[1]):
                    wait_until(lambda: _consumers(settings) == 2, 240, "two page workers")
                    job = submit(url, job_document()).json()
                    wait_until(lambda: "job " in logs[0].read_text(), 240, "worker 0's pages")
                    os.killpg(doomed.pid, signal.SIGKILL)
                    doomed.wait(timeout=30)
                    done = wait_for(url, job["id"], ended)
                    assert (done["status"], done["pages_done"]) == ("done", PAGES), done
                    assert done["pages_failed"] == 0
                    assert_every_page_read(url, job["id"])
            reads = Counter(
                int(number)
                for log in logs
                for number in re.findall(r"page (\d+): done", log.read_text())
            )
            # every page was read (the result above); none was recorded twice
            assert reads and max(reads.values()) == 1, reads
        finally:
            with amqp_channel(settings.rabbitmq_url) as channel:
                channel.queue_delete(settings.ocr_jobs_queue)
                channel.queue_delete(settings.jobs_dead_letter_queue)
                channel.exchange_delete(settings.jobs_dead_letter_exchange)


def _consumers(settings: Settings) -> int:
    try:
        with amqp_channel(settings.rabbitmq_url) as channel:
            return probe_queue(channel, settings.ocr_jobs_queue)[0]
    except CONNECTION_ERRORS:  # not declared yet: no worker has started
        return 0


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]

"""The page's client of the pipeline's jobs API: submit files as one job, follow it, cancel it,
fetch its result.

A module of its own beside web/client.py (the reads), over that module's transport (``send``),
so a job's calls carry the same API key and timeouts and fail the same way: as a PageError,
worded with errors.JOB_HINTS.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from urllib.parse import quote

import requests

from web import client
from web.errors import JOB_HINTS, PageError

ENDED = ("done", "failed", "cancelled")
RECENT = 20  # how many jobs GET /jobs lists by default
IDEMPOTENCY_HEADER = "Idempotency-Key"
TIMEOUT_HINT = "Set WEB_TIMEOUT_S higher, or try again in a moment."


@dataclass(frozen=True)
class Job:
    """A job as the pipeline answers it (GET /jobs/{id}, and each of GET /jobs)."""

    id: str
    status: str  # queued, running, done, failed (not one page read) or cancelled
    pages_total: int
    pages_done: int
    pages_failed: int
    errors: tuple[Mapping, ...]  # {page, code, message} of each page that failed
    created_at: str  # ISO 8601, as the pipeline wrote them
    updated_at: str
    expires_at: str

    @property
    def ended(self) -> bool:
        return self.status in ENDED

    @property
    def pages_ended(self) -> int:
        """The pages that need no more work: read, or failed."""
        return self.pages_done + self.pages_failed

    @property
    def fraction(self) -> float:
        """How far it is, from 0 to 1: what a progress bar shows."""
        return min(1.0, self.pages_ended / self.pages_total) if self.pages_total else 1.0


_FIELDS = {field.name for field in fields(Job)}  # what a job's JSON must hold


def parse_job(payload: object) -> Job:
    """A job's JSON as a Job; anything else is a PageError (PIPELINE_URL is not a pipeline)."""
    if not (isinstance(payload, dict) and _FIELDS <= payload.keys()):
        raise _not_jobs()
    counts = [payload[name] for name in ("pages_total", "pages_done", "pages_failed")]
    errors = payload["errors"]
    if not (
        all(isinstance(count, int) for count in counts)
        and isinstance(errors, list)
        and all(isinstance(error, dict) for error in errors)
    ):
        raise _not_jobs()
    times = [str(payload[name]) for name in ("created_at", "updated_at", "expires_at")]
    return Job(str(payload["id"]), str(payload["status"]), *counts, tuple(errors), *times)


def submit_job(
    config: client.WebConfig,
    files: Sequence[tuple[str, bytes]],
    detection: Mapping[str, str],
    key: str | None = None,
    session: requests.Session | None = None,
) -> Job:
    """POST the files (name, data) as one job with the ``detection`` form fields; the
    queued job.

    ``key`` goes as the Idempotency-Key, so sending the same submission again (a second click,
    a retry after a timeout) answers the job it made instead of making another. The files go in
    one request, so together they must fit the pipeline's OCR_MAX_UPLOAD_MB: checked here first,
    since a body over it is cut off before the pipeline can say why.
    """
    size = sum(len(data) for _, data in files)
    if size > config.max_upload_mb * 1024 * 1024:
        detail = f"{size / 1024 / 1024:.1f} MB together, over {config.max_upload_mb} MB"
        raise PageError("payload_too_large", f"{JOB_HINTS['payload_too_large']} ({detail})")
    response = client.send(
        config,
        "POST",
        "/jobs",
        session,
        TIMEOUT_HINT,
        headers={IDEMPOTENCY_HEADER: key} if key else None,
        files=[("images", (name, data, client.mime_type(name))) for name, data in files],
        data=dict(detection),
    )
    return _job(response, (200, 202))  # 200: the key's job, made before


def list_jobs(
    config: client.WebConfig, limit: int = RECENT, session: requests.Session | None = None
) -> list[Job]:
    """The newest jobs, newest first. Worded with the reads' hints: a not_found here means a
    pipeline without the jobs API, not a missing job."""
    response = client.send(config, "GET", "/jobs", session, TIMEOUT_HINT, params={"limit": limit})
    payload = client.json_body(response.content)
    if response.status_code != 200:
        raise client.error_answer(response.status_code, payload)
    jobs = payload.get("jobs") if isinstance(payload, dict) else None
    if not isinstance(jobs, list):
        raise _not_jobs()
    return [parse_job(job) for job in jobs]


def job_status(
    config: client.WebConfig, job_id: str, session: requests.Session | None = None
) -> Job:
    """The job now: its status, page counts and page errors."""
    return _job(client.send(config, "GET", _path(job_id), session, TIMEOUT_HINT))


def cancel_job(
    config: client.WebConfig, job_id: str, session: requests.Session | None = None
) -> Job:
    """Cancel a queued or running job (its waiting pages are not read); the job cancelled. A job
    that has ended already is a PageError (job_finished)."""
    return _job(client.send(config, "DELETE", _path(job_id), session, TIMEOUT_HINT))


def fetch_result(
    config: client.WebConfig, job_id: str, fmt: str, session: requests.Session | None = None
) -> bytes:
    """A done job's result as ``fmt`` (a key of client.EXPORT_FORMATS: pdf, hocr, txt, json),
    made by the pipeline from the pages it stored. Before the job is done, a PageError
    (job_not_finished)."""
    if fmt not in client.EXPORT_FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {sorted(client.EXPORT_FORMATS)}")
    response = client.send(
        config, "GET", _path(job_id) + "/result", session, TIMEOUT_HINT, params={"format": fmt}
    )
    content_type = response.headers.get("Content-Type", "")
    return client.parse_export(response.status_code, response.content, content_type, fmt, JOB_HINTS)


def _path(job_id: str) -> str:
    return "/jobs/" + quote(job_id, safe="")


def _job(response: requests.Response, ok: tuple[int, ...] = (200,)) -> Job:
    payload = client.json_body(response.content)
    if response.status_code not in ok:
        raise client.error_answer(response.status_code, payload, JOB_HINTS)
    return parse_job(payload)


def _not_jobs() -> PageError:
    return PageError(
        "bad_answer",
        "The backend answered, but not with a job. Is PIPELINE_URL the pipeline's address?",
    )

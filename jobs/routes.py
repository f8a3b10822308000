"""The jobs API on the pipeline: POST /jobs, GET /jobs, GET /jobs/{id}, GET /jobs/{id}/result,
DELETE /jobs/{id}. The HTTP edge only: the state is the store's, the reading the runner's.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import asdict, replace
from datetime import timedelta

from flask import Flask, Request, Response, jsonify, request

from common import metrics
from common.config import Settings
from common.documents import PageImage, check_document, open_document
from common.errors import (
    InvalidParameter,
    JobFinished,
    JobNotFinished,
    MissingImage,
    NotFound,
    TooManyPages,
)
from common.exports import MEDIA_TYPES, export_document
from common.http import request_format, request_images, set_mode
from common.params import DetectionParams
from common.results import Page
from jobs.runner import Jobs
from jobs.store import JobView, Upload

IDEMPOTENCY_HEADER = "Idempotency-Key"
IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,200}")  # visible ASCII, as HTTP headers carry
MAX_LISTED = 100


def register_jobs(
    app: Flask,
    jobs: Jobs,
    settings: Settings,
    read_params: Callable[[Request], DetectionParams],
) -> None:
    """Mount the jobs API; ``read_params(request)`` gives the request's detection parameters
    (the pipeline's own parser, so a job takes exactly /pipeline's options)."""
    store = jobs.store
    retention = timedelta(hours=settings.ocr_jobs_retention_h)

    def found(job: JobView | None, job_id: str) -> JobView:
        if job is None:
            raise NotFound(f"no job {job_id!r} (it never existed, or expired)")
        return job

    @app.post("/jobs")
    def submit_job():
        set_mode("job")
        key = request.headers.get(IDEMPOTENCY_HEADER)
        if key is not None and not IDEMPOTENCY_KEY.fullmatch(key):
            raise InvalidParameter(
                f"{IDEMPOTENCY_HEADER} must be 1 to 200 visible ASCII characters"
            )
        blobs = _uploads(request)
        params: DetectionParams = read_params(request)
        uploads = []
        left = settings.ocr_jobs_max_pages
        for blob in blobs:
            if left < 1:
                raise _too_many(settings)
            try:
                pages = check_document(blob, replace(settings.job_limits, max_pages=left))
            except TooManyPages:
                raise _too_many(settings) from None
            uploads.append(Upload(blob, pages))
            left -= pages
        job, created = store.submit(
            uploads, {"detection": asdict(params)}, retention, idempotency_key=key
        )
        if created:
            jobs.dispatch([(job.id, number) for number in range(1, job.pages_total + 1)])
        response = jsonify(job.export())
        response.status_code = 202 if created else 200
        response.headers["Location"] = f"/jobs/{job.id}"
        return response

    @app.get("/jobs")
    def list_jobs():
        raw = request.args.get("limit", "20")
        if not raw.isdigit() or not 1 <= int(raw) <= MAX_LISTED:
            raise InvalidParameter(f"limit must be an integer from 1 to {MAX_LISTED}")
        return jsonify({"jobs": [job.export() for job in store.recent(int(raw))]})

    @app.get("/jobs/<job_id>")
    def job_status(job_id: str):
        return jsonify(found(store.job(job_id), job_id).export())

    @app.delete("/jobs/<job_id>")
    def cancel_job(job_id: str):
        job = found(store.job(job_id), job_id)
        if job.status in ("done", "failed", "cancelled"):
            raise JobFinished(f"job {job_id} has already ended ({job.status})")
        return jsonify(found(store.cancel(job_id), job_id).export())

    @app.get("/jobs/<job_id>/result")
    def job_result(job_id: str):
        fmt = request_format(request)
        job = found(store.job(job_id), job_id)
        if job.status != "done":
            raise JobNotFinished(
                f"job {job_id} is {job.status} ({job.pages_done} of {job.pages_total} pages "
                "read); its result is ready once it is done"
            )
        outcomes = store.outcomes(job_id)
        if fmt == "json":
            return jsonify(_json_result(job, outcomes))
        read = [(o.number, Page.from_export(o.result)) for o in outcomes if o.result]
        body = export_document(
            fmt, [page for _, page in read], lambda: _page_images(store, job_id, settings, read)
        )
        return Response(body, content_type=MEDIA_TYPES[fmt])

    @app.before_request
    def _jobs_gauge() -> None:
        """ocr_jobs counts the database's jobs as of the scrape (page workers change them)."""
        if request.path == "/metrics":
            counts = store.counts_by_status()
            for status in ("queued", "running", "done", "failed", "cancelled"):
                metrics.JOBS.labels(status).set(counts.get(status, 0))


def _uploads(req) -> list[bytes]:
    """The job's files: repeated ``images`` fields (or one ``image``), as /batch_ocr takes."""
    try:
        return request_images(req, field="images", many=True)
    except MissingImage:
        return request_images(req, field="image")


def _too_many(settings: Settings) -> TooManyPages:
    return TooManyPages(
        f"the job's files have more than {settings.ocr_jobs_max_pages} pages together "
        "(OCR_JOBS_MAX_PAGES)"
    )


def _json_result(job: JobView, outcomes) -> dict:
    pages = []
    for outcome in outcomes:
        if outcome.result is not None:
            pages.append({"page": outcome.number, **outcome.result})
        else:
            pages.append({"page": outcome.number, "error": outcome.error})
    text = "\f".join(page.get("text", "") for page in pages)
    return {"id": job.id, "status": job.status, "pages": pages, "text": text}


def _page_images(
    store, job_id: str, settings: Settings, read: list[tuple[int, Page]]
) -> Iterator[PageImage]:
    """The images of the pages that were read, rendered again from the stored inputs one at a
    time, as the PDF export takes them (a large job never holds all its page images)."""
    wanted = {number for number, _ in read}
    number = 0
    for data in store.inputs_of(job_id):
        for index in range(check_document(data, settings.job_limits)):
            number += 1
            if number in wanted:
                yield open_document(data, settings.job_limits, only=[index]).pages[0]

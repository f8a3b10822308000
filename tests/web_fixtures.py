"""What the web page's tests share: a pipeline answer, a small PNG, and stand-in pipelines.

The stand-ins are real HTTP servers (the services' own front, tests/servers.py): one whose OCR
routes run the view a test module gives it, so each module decides what it records and answers,
and one that serves the jobs API over jobs a test moves on itself.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from flask import Flask, Response, jsonify, request
from flask.typing import ResponseReturnValue
from PIL import Image

from tests.servers import serve

ANSWER = {
    "mode": "sequential",
    "width": 200,
    "height": 100,
    "words": [
        {
            "quad": [[10, 10], [90, 10], [90, 40], [10, 40]],
            "text": "Hello",
            "confidence": 0.95,
            "det_score": 0.8,
        },
        {
            "quad": [[110, 10], [190, 10], [190, 40], [110, 40]],
            "text": "World",
            "confidence": 0.12,
            "det_score": 0.7,
        },
    ],
    "lines": [],
    "text": "Hello World",
    "timings_ms": {"std": 120.5, "str": 30.25, "total": 151.0},
}


def png(width: int = 64, height: int = 32, colour: tuple[int, int, int] = (255, 255, 255)) -> bytes:
    """A plain ``width`` x ``height`` PNG: an upload the page and the stand-ins can open."""
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, format="PNG")
    return buffer.getvalue()


@contextmanager
def stand_in_pipeline(ocr: Callable[[], ResponseReturnValue], metrics: str) -> Iterator[str]:
    """Serve POST /ocr and /pipeline with the view ``ocr`` (it reads ``flask.request``) and
    GET /metrics with the text ``metrics``; yields the base URL."""
    app = Flask("fake-pipeline")
    app.add_url_rule("/ocr", "ocr", ocr, methods=["POST"])
    app.add_url_rule("/pipeline", "pipeline", ocr, methods=["POST"])
    app.add_url_rule(
        "/metrics", "metrics", lambda: (metrics, 200, {"Content-Type": "text/plain; version=0.0.4"})
    )
    with serve(app) as url:
        yield url


@dataclass
class StandInJobs:
    """A stand-in pipeline's jobs API: its address, its jobs by id (a test moves them on by
    changing them) and what each POST /jobs sent."""

    url: str = ""
    jobs: dict[str, dict] = field(default_factory=dict)
    submitted: list[dict] = field(default_factory=list)


# What the stand-in answers for a result's format: the pipeline's media types.
RESULT_TYPES = {
    "pdf": "application/pdf",
    "hocr": "application/xhtml+xml; charset=utf-8",
    "txt": "text/plain; charset=utf-8",
}
# Submissions the stand-in refuses as the pipeline would: a file name -> (status, code).
JOB_REFUSALS = {"broken.pdf": (400, "invalid_pdf"), "huge.pdf": (413, "too_many_pages")}


@contextmanager
def stand_in_jobs() -> Iterator[StandInJobs]:
    """The pipeline's jobs API in the contract's shapes, over jobs held in memory: a submission
    is one queued job of one page per file (an Idempotency-Key seen before answers its job,
    200), and a job's result is there once a test marks it done."""
    app = Flask("fake-jobs")
    state = StandInJobs()
    by_key: dict[str, str] = {}  # Idempotency-Key -> the job it made

    def refuse(status: int, code: str, message: str) -> ResponseReturnValue:
        return jsonify({"error": {"code": code, "message": message}}), status

    @app.post("/jobs")
    def submit() -> ResponseReturnValue:
        uploads = request.files.getlist("images")
        key = request.headers.get("Idempotency-Key")
        state.submitted.append(
            {
                "files": [(f.filename, f.mimetype, len(f.read())) for f in uploads],
                "form": dict(request.form),
                "key": key,
                "api_key": request.headers.get("X-API-Key"),
            }
        )
        if key in by_key:
            return jsonify(state.jobs[by_key[key]]), 200
        for upload in uploads:
            if upload.filename in JOB_REFUSALS:
                return refuse(*JOB_REFUSALS[upload.filename], "refused by the stand-in")
        number = len(state.jobs) + 1
        job_id = f"job{number}"
        state.jobs[job_id] = {
            "id": job_id,
            "status": "queued",
            "pages_total": len(uploads),
            "pages_done": 0,
            "pages_failed": 0,
            "errors": [],
            "created_at": f"2026-01-01T10:00:{number:02d}.250000+00:00",
            "updated_at": f"2026-01-01T10:00:{number:02d}.250000+00:00",
            "expires_at": f"2026-01-08T10:00:{number:02d}.250000+00:00",
        }
        if key:
            by_key[key] = job_id
        return jsonify(state.jobs[job_id]), 202

    @app.get("/jobs")
    def recent() -> ResponseReturnValue:
        limit = int(request.args.get("limit", "20"))
        return jsonify({"jobs": list(reversed(state.jobs.values()))[:limit]})

    @app.get("/jobs/<job_id>")
    def status(job_id: str) -> ResponseReturnValue:
        job = state.jobs.get(job_id)
        return jsonify(job) if job else refuse(404, "not_found", f"no job {job_id!r}")

    @app.delete("/jobs/<job_id>")
    def cancel(job_id: str) -> ResponseReturnValue:
        job = state.jobs.get(job_id)
        if job is None:
            return refuse(404, "not_found", f"no job {job_id!r}")
        if job["status"] in ("done", "failed", "cancelled"):
            return refuse(409, "job_finished", f"job {job_id} has already ended")
        job["status"] = "cancelled"
        return jsonify(job)

    @app.get("/jobs/<job_id>/result")
    def result(job_id: str) -> ResponseReturnValue:
        job = state.jobs.get(job_id)
        if job is None:
            return refuse(404, "not_found", f"no job {job_id!r}")
        if job["status"] != "done":
            return refuse(409, "job_not_finished", f"job {job_id} is {job['status']}")
        fmt = request.args.get("format", "json")
        if fmt == "json":
            return jsonify({"id": job_id, "status": "done", "pages": [], "text": "Alpha"})
        return Response(f"{fmt} result of {job_id}", content_type=RESULT_TYPES[fmt])

    with serve(app) as url:
        state.url = url
        yield state

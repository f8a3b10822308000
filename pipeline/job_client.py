"""The CLI's jobs mode: submit files as one job to a running pipeline, follow it, fetch it.

``python -m pipeline.cli FILES --url URL --job`` holds no request open while the job runs: it
submits (POST /jobs), polls GET /jobs/{id} with a progress bar of pages, and fetches the result
(GET /jobs/{id}/result) once the job is done. Interrupted, it prints the job's id, which
GET /jobs/{id} follows from anywhere.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import requests
from tqdm import tqdm

POLL_S = 0.5


class JobClientError(RuntimeError):
    """The pipeline refused the job or it did not end well; the message says why."""


def _error(response: requests.Response) -> str:
    try:
        return response.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        return f"HTTP {response.status_code}"


def submit(url: str, files: list[Path], params: dict, timeout_s: float, key: str | None) -> dict:
    handles = [file.open("rb") for file in files]
    try:
        response = requests.post(
            f"{url}/jobs",
            files=[
                ("images", (file.name, handle)) for file, handle in zip(files, handles, strict=True)
            ],
            data=params,
            headers={"Idempotency-Key": key} if key else {},
            timeout=timeout_s,
        )
    finally:
        for handle in handles:
            handle.close()
    if response.status_code not in (200, 202):
        raise JobClientError(f"the job was refused: {_error(response)}")
    return response.json()


def follow(url: str, job: dict, timeout_s: float) -> dict:
    """Poll the job until it ends, moving a bar of pages; its last state."""
    with tqdm(total=job["pages_total"], unit="page", file=sys.stderr) as bar:
        while True:
            response = requests.get(f"{url}/jobs/{job['id']}", timeout=timeout_s)
            if response.status_code != 200:
                raise JobClientError(f"job {job['id']}: {_error(response)}")
            job = response.json()
            bar.update(job["pages_done"] + job["pages_failed"] - bar.n)
            if job["status"] in ("done", "failed", "cancelled"):
                return job
            time.sleep(POLL_S)


def run_job(
    url: str,
    files: list[Path],
    params: dict,
    out: Path | None,
    fmt: str,
    timeout_s: float,
    key: str | None = None,
) -> int:
    """Submit, follow, then print the text (or write ``out``/job-<id>.<fmt>); the exit code."""
    url = url.rstrip("/")
    try:
        job = submit(url, files, params, timeout_s, key)
        print(f"job {job['id']}: {job['pages_total']} pages", file=sys.stderr)
        job = follow(url, job, timeout_s)
        for error in job["errors"]:
            print(f"page {error['page']}: error: {error['message']}", file=sys.stderr)
        if job["status"] != "done":
            raise JobClientError(f"job {job['id']} ended {job['status']}")
        response = requests.get(
            f"{url}/jobs/{job['id']}/result", params={"format": fmt}, timeout=timeout_s
        )
        if response.status_code != 200:
            raise JobClientError(f"job {job['id']}: {_error(response)}")
    except requests.RequestException as exc:
        print(f"error: {url}: {exc}", file=sys.stderr)
        return 1
    except JobClientError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if out is None:
        text = response.json()["text"] if fmt == "json" else response.text
        print(text.replace("\f", "\n\n"))
    else:
        out.mkdir(parents=True, exist_ok=True)
        target = out / f"job-{job['id']}.{fmt}"
        if fmt == "json":
            target.write_text(json.dumps(response.json()), encoding="utf-8")
        else:
            target.write_bytes(response.content)
        print(target)
    return 1 if job["pages_failed"] else 0

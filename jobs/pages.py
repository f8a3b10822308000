"""Reading one page of a job: the one routine every runner and page worker calls.

It claims nothing and acknowledges nothing; the caller claimed the page (JobStore.claim) and
hands it here, and this records the page's result or error in the store, so the claim's own
guard decides whether the result still counts.
"""

from __future__ import annotations

import logging
import time

from common import metrics
from common.config import Settings
from common.documents import open_document
from common.errors import NotReady, OcrError, Overloaded, Timeout, UpstreamError
from common.params import DetectionParams
from jobs.store import JobStore, PageTask
from pipeline.ocr import OcrPipeline

log = logging.getLogger(__name__)

# Failures of the moment (a busy or unreachable upstream, a deadline): worth another try. Any
# other OcrError is the page's own (a corrupt page) and fails it at once.
TRANSIENT = (UpstreamError, Timeout, Overloaded, NotReady)


def read_page(store: JobStore, pipeline: OcrPipeline, settings: Settings, task: PageTask) -> str:
    """Read ``task``'s page through the batched path and record it; returns the outcome
    (``done``, ``failed``, ``retry``, or ``stale`` when the claim no longer held the page)."""
    started = time.perf_counter()
    retry_left = task.attempts < settings.ocr_jobs_attempts
    try:
        data = store.input_data(task.job_id, task.input_position)
        document = open_document(data, settings.job_limits, only=[task.input_page])
        params = DetectionParams(**task.options.get("detection", {}))
        deadline = time.time() + settings.ocr_timeout_s
        result = pipeline.ocr_batched(document, params, deadline)
        outcome = "done" if store.finish(task, result.page.export()) else "stale"
    except OcrError as exc:
        retry = isinstance(exc, TRANSIENT) and retry_left
        counted = store.fail(task, exc.to_dict()["error"], retry=retry)
        outcome = ("retry" if retry else "failed") if counted else "stale"
    except Exception as exc:  # a page must not take its worker down; the store says why
        log.exception("job %s page %d failed", task.job_id, task.number)
        error = {"code": "internal_error", "message": f"{type(exc).__name__}: {exc}"}
        counted = store.fail(task, error, retry=retry_left)
        outcome = ("retry" if retry_left else "failed") if counted else "stale"
    metrics.JOB_PAGES.labels(outcome).inc()
    metrics.JOB_PAGE_SECONDS.observe(time.perf_counter() - started)
    return outcome

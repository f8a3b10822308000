"""How the page words a failure: one readable sentence for the person at the page, never a trace.

Every failure the page can meet (the backend down or slow, an error answer of the HTTP contract,
an image or a document's page it can't display) becomes a PageError whose message says what
happened and what to do.
"""

from __future__ import annotations

from collections.abc import Mapping

# What each error code of the HTTP contract means to someone using the page.
ERROR_HINTS = {
    "invalid_image": "The service could not read this file as an image "
    "(PNG, JPEG, TIFF, WebP or BMP) or a PDF.",
    "invalid_pdf": "The service could not open this PDF: it is damaged or cut short. "
    "Save or export it again and upload the new copy.",
    "empty_document": "The document has no pages to read.",
    "encrypted_pdf": "The PDF is password-protected, and the service takes no password. "
    "Save a copy without the password and upload that.",
    "missing_image": "The upload arrived empty.",
    "invalid_parameter": "A detection setting was rejected; check the values in the sidebar.",
    "invalid_boxes": "The request's boxes were rejected.",
    "over_budget": "The detection settings ask for more work than the backend does for one "
    "request (OCR_MAX_DETECT_PIXELS); lower the canvas size or the magnification.",
    "unauthorized": "The backend wants an API key: set OCR_API_KEY for the web page.",
    "payload_too_large": "The file is larger than the backend accepts (OCR_MAX_UPLOAD_MB).",
    "image_too_large": "The image, or a page of the document, has more pixels than the backend "
    "accepts (OCR_MAX_PIXELS).",
    "too_many_pages": "The document has more pages than the backend reads in one request "
    "(OCR_MAX_PAGES); split it into smaller files.",
    "unsupported_media_type": "The backend did not accept the upload's format.",
    "upstream_error": "A service behind the pipeline failed; try again in a moment.",
    "overloaded": "The backend is busy; try again in a few seconds.",
    "not_ready": "The backend is still starting (loading its models); try again shortly.",
    "timeout": "The backend gave up before the document was read; try a smaller canvas size.",
    "not_found": "The backend has no such endpoint; is PIPELINE_URL the pipeline's address?",
    "method_not_allowed": "The backend does not take this request at that address; is "
    "PIPELINE_URL the pipeline's address?",
    "invalid_request": "The backend could not read the request the page sent.",
    "url_too_long": "The request's address was too long for the backend.",
    "headers_too_large": "The request's headers were too large for the backend (a proxy in "
    "between may add them).",
}

# The jobs API's codes, and what the shared ones mean for a job: a job's limits are its own, and
# a job's address answering not_found means the job is gone (GET /jobs, the first call the Jobs
# page makes, keeps ERROR_HINTS: there not_found means a pipeline without the jobs API).
JOB_HINTS = ERROR_HINTS | {
    "job_not_finished": "The job has not finished yet; its result is ready once it is done.",
    "job_finished": "The job has already ended, so there is nothing left to cancel.",
    "not_found": "The backend has no such job: it never existed, or it expired "
    "(OCR_JOBS_RETENTION_H).",
    "too_many_pages": "The files have more pages together than the backend takes in one job "
    "(OCR_JOBS_MAX_PAGES); submit them as several jobs.",
    "payload_too_large": "The files are larger together than the backend takes in one request "
    "(OCR_MAX_UPLOAD_MB); submit them as several jobs.",
}


class PageError(Exception):
    """A failure worded for the person at the page; ``code`` is for tests and summaries."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def error_message(
    code: str, detail: str, status: int, hints: Mapping[str, str] = ERROR_HINTS
) -> str:
    """One readable sentence for an error answer: what it means (``hints``: ERROR_HINTS, or
    JOB_HINTS for a job), plus the backend's own words."""
    hint = hints.get(code)
    if hint is None:
        hint = (
            f"The backend failed (HTTP {status})."
            if status >= 500
            else f"The backend refused the request (HTTP {status})."
        )
    detail = detail.strip()
    return f"{hint} ({detail})" if detail else hint


def unreachable(pipeline_url: str) -> PageError:
    """The backend did not take the connection: say where the page looked and how to fix it."""
    return PageError(
        "backend_down",
        f"Can't reach the OCR backend at {pipeline_url}. Is the pipeline running "
        "(`make run`)? The page finds it through PIPELINE_URL.",
    )

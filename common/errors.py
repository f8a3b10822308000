"""The error types of the HTTP contract: one class per failure, each with its status and code.

Services raise these anywhere; the JSON error handlers in common.http turn them into
``{"error": {"code", "message"}}`` with the right status, so no traceback reaches a client.
"""

from __future__ import annotations


class OcrError(Exception):
    """Base of every error a client may see."""

    status: int = 500
    code: str = "internal_error"

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}

    def to_dict(self) -> dict:
        return {"error": {"code": self.code, "message": self.message}}


class InvalidImage(OcrError):
    status, code = 400, "invalid_image"


class MissingImage(OcrError):
    status, code = 400, "missing_image"


class InvalidPdf(OcrError):
    """A PDF that PDFium can't open or render: truncated, corrupt, or not a PDF after all."""

    status, code = 400, "invalid_pdf"


class EmptyDocument(OcrError):
    """A document without a page to read."""

    status, code = 400, "empty_document"


class InvalidBoxes(OcrError):
    status, code = 400, "invalid_boxes"


class InvalidParameter(OcrError):
    status, code = 400, "invalid_parameter"


class Unauthorized(OcrError):
    status, code = 401, "unauthorized"


class NotFound(OcrError):
    status, code = 404, "not_found"


class MethodNotAllowed(OcrError):
    status, code = 405, "method_not_allowed"


class JobNotFinished(OcrError):
    """A job's result asked for before the job is done (or of a job that failed or was
    cancelled)."""

    status, code = 409, "job_not_finished"


class JobFinished(OcrError):
    """A job cancelled after it ended."""

    status, code = 409, "job_finished"


class PayloadTooLarge(OcrError):
    status, code = 413, "payload_too_large"


class ImageTooLarge(OcrError):
    status, code = 413, "image_too_large"


class TooManyPages(OcrError):
    """More pages in one request than OCR_MAX_PAGES."""

    status, code = 413, "too_many_pages"


class UnsupportedMediaType(OcrError):
    status, code = 415, "unsupported_media_type"


class UpstreamError(OcrError):
    status, code = 502, "upstream_error"


class Overloaded(OcrError):
    status, code = 503, "overloaded"

    def __init__(self, message: str, retry_after_s: int = 1) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after_s)})


class NotReady(OcrError):
    status, code = 503, "not_ready"


class Timeout(OcrError):
    status, code = 504, "timeout"


class InvalidRequest(OcrError):
    """An HTTP request the front can't parse (bad request line, headers or chunking)."""

    status, code = 400, "invalid_request"


class UrlTooLong(OcrError):
    status, code = 414, "url_too_long"


class HeadersTooLarge(OcrError):
    status, code = 431, "headers_too_large"


class EncryptedPdf(OcrError):
    """A PDF that needs a password to open: the service takes none, so it can't be read."""

    status, code = 422, "encrypted_pdf"


class OverBudget(OcrError):
    """Work the request asks for costs more than the service allows one request (422)."""

    status, code = 422, "over_budget"


ERRORS_BY_CODE: dict[str, type[OcrError]] = {
    cls.code: cls
    for cls in (
        InvalidImage,
        MissingImage,
        InvalidPdf,
        EmptyDocument,
        EncryptedPdf,
        TooManyPages,
        InvalidBoxes,
        InvalidParameter,
        Unauthorized,
        NotFound,
        MethodNotAllowed,
        JobNotFinished,
        JobFinished,
        PayloadTooLarge,
        ImageTooLarge,
        UnsupportedMediaType,
        UpstreamError,
        Overloaded,
        NotReady,
        Timeout,
        InvalidRequest,
        UrlTooLong,
        HeadersTooLarge,
        OverBudget,
    )
}


def error_from_payload(status: int, payload: object) -> OcrError:
    """Rebuild an OcrError from another service's JSON error, so a 4xx passes through unchanged."""
    if isinstance(payload, dict) and isinstance(payload.get("error"), dict):
        code = str(payload["error"].get("code", ""))
        message = str(payload["error"].get("message", ""))
        cls = ERRORS_BY_CODE.get(code)
        if cls is not None and cls.status == status:
            if cls is Overloaded:
                return Overloaded(message)
            return cls(message)
        return UpstreamError(f"upstream answered {status}: {message or code}")
    return UpstreamError(f"upstream answered {status} without a JSON error")

"""Admission control: at most OCR_MAX_INFLIGHT model requests per process, the rest refused.

A request past the limit gets 503 ``overloaded`` with ``Retry-After`` at once instead of queueing
behind the model: a queue the client can't see only turns into timeouts, and waiting requests
hold server threads that health checks need. Health, readiness, metrics and the OpenAPI document
are never counted, so they answer however busy the models are.
"""

from __future__ import annotations

import threading

from flask import Flask, g, request

from common import metrics
from common.errors import Overloaded

# The endpoints that reach a model; everything else is admitted without counting.
MODEL_PATHS = frozenset({"/detection", "/recognition", "/ocr", "/pipeline", "/batch_ocr"})
RETRY_AFTER_S = 1
_ADMITTED = "ocr_admitted"


class Admission:
    """A counter of admitted requests with a hard limit; admitting never waits."""

    def __init__(self, limit: int, service: str = "") -> None:
        if limit < 1:
            raise ValueError("limit must be >= 1")
        self.limit = limit
        self._count = 0
        self._mutex = threading.Lock()
        self._gauge = metrics.IN_FLIGHT.labels(service) if service else None

    @property
    def in_flight(self) -> int:
        return self._count

    def try_admit(self) -> bool:
        """Count one more request if there is room; False (and nothing counted) if there isn't."""
        with self._mutex:
            if self._count >= self.limit:
                return False
            self._count += 1
        if self._gauge is not None:
            self._gauge.inc()
        return True

    def admit(self) -> None:
        """``try_admit`` or raise Overloaded (503 with Retry-After)."""
        if not self.try_admit():
            raise Overloaded(
                f"{self.limit} requests are already being served (OCR_MAX_INFLIGHT); retry shortly",
                retry_after_s=RETRY_AFTER_S,
            )

    def release(self) -> None:
        """Give back one admitted request's place."""
        with self._mutex:
            if self._count <= 0:
                raise RuntimeError("release() without a matching admit()")
            self._count -= 1
        if self._gauge is not None:
            self._gauge.dec()


def install_admission(app: Flask, admission: Admission) -> None:
    """Admit model requests before their handler runs; release when the request is torn down.

    Flask runs teardown handlers however the request ended (answer, error, exception), so an
    admitted request always gives its place back. The counter is kept in
    ``app.extensions["ocr_admission"]``.
    """
    app.extensions["ocr_admission"] = admission

    @app.before_request
    def _admit() -> None:
        if request.url_rule is None or request.path not in MODEL_PATHS:
            return
        admission.admit()
        setattr(g, _ADMITTED, True)

    @app.teardown_request
    def _release(_exc: BaseException | None) -> None:
        if g.pop(_ADMITTED, False):
            admission.release()

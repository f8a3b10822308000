"""Routes that fail, for tests of what common.http makes of a failing handler.

A handler fails in one of two ways: an unexpected exception (500, no detail for the client) or
an OcrError of its own (its status and headers, e.g. 503 with Retry-After). The admission tests
and the HTTP contract tests add the same pair to their apps, under their own paths.
"""

from __future__ import annotations

from flask import Flask

from common.errors import Overloaded

# What the crashing route's exception says; a client must never see it.
CRASH_DETAIL = "secret detail /etc/passwd"


def add_failing_routes(app: Flask, *, crash: str, overloaded: str, retry_after_s: int) -> None:
    """POST ``crash`` raises a RuntimeError; POST ``overloaded`` raises Overloaded with the given
    Retry-After."""

    def crash_view() -> None:
        raise RuntimeError(CRASH_DETAIL)

    def overloaded_view() -> None:
        raise Overloaded("queue full", retry_after_s=retry_after_s)

    app.add_url_rule(crash, "failing_crash", crash_view, methods=["POST"])
    app.add_url_rule(overloaded, "failing_overloaded", overloaded_view, methods=["POST"])

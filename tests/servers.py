"""Run a Flask app under the services' own HTTP front on a free loopback port, for tests."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import requests
from flask import Flask

from common.config import Settings
from common.server import make_server


@contextmanager
def serve(app: Flask) -> Iterator[str]:
    """Serve ``app`` on 127.0.0.1 as ``python -m common.server`` would; stops on exit.

    The limits come from the app's own settings (``create_base_app`` keeps them in its config),
    so a test sees the same front, limits and JSON errors as a running service.
    """
    settings = app.config.get("OCR_SETTINGS") or Settings()
    server = make_server(app, settings, "127.0.0.1", 0, service=app.name)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.url
    finally:
        server.stop()
        thread.join(timeout=10)


def assert_error(response: requests.Response, status: int, code: str) -> dict:
    """The contract's error shape: status, JSON body with code and message, no traceback."""
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == code, error
    assert error["message"]
    assert "Traceback" not in response.text
    return error

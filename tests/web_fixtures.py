"""What the web page's tests share: a pipeline answer, a small PNG, and a stand-in pipeline.

The stand-in is a real HTTP server (the services' own front, tests/servers.py) whose OCR routes
run the view a test module gives it, so each module decides what it records and answers.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from flask import Flask
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

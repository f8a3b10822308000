"""The DTRB text-recognition service: POST /recognition.

Served by ``python -m common.server str``: one process, the model loaded once.
"""

from __future__ import annotations

from flask import Flask

from common.config import Settings
from common.http import add_health_routes, create_base_app
from str_service.recognizer import Recognizer
from str_service.routes import register_recognition


def create_app(settings: Settings | None = None, recognizer: Recognizer | None = None) -> Flask:
    """Build the service; pass ``recognizer`` to share one loaded model between apps in tests."""
    settings = settings or Settings.from_env()
    recognizer = recognizer or Recognizer.from_settings(settings)
    app = create_base_app("str", settings)
    add_health_routes(app, lambda: (True, {"model": recognizer.model_name}))
    register_recognition(app, recognizer, settings)
    return app

"""The CRAFT text-detection service: POST /detection.

Served by ``python -m common.server std``: one process, the model loaded once.
"""

from __future__ import annotations

from flask import Flask

from common.config import Settings
from common.http import add_health_routes, create_base_app
from std_service.detector import Detector
from std_service.routes import register_detection


def create_app(settings: Settings | None = None, detector: Detector | None = None) -> Flask:
    """Build the service; pass ``detector`` to share one loaded model between apps in tests."""
    settings = settings or Settings.from_env()
    detector = detector or Detector.from_settings(settings)
    app = create_base_app("std", settings)
    defaults = settings.profile.detection
    add_health_routes(
        app, lambda: (True, detector.describe(defaults) | {"profile": settings.ocr_profile})
    )
    register_detection(app, detector, settings)
    return app

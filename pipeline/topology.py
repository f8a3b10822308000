"""Which engine the pipeline app serves (OCR_MODE), and the HTTP around it that differs.

Embedded: the models' own /detection and /recognition handlers are mounted on the pipeline, and
readiness names the models; job pages are read by threads of this process. Distributed: those
two paths are relayed to std_service and str_service unchanged, readiness checks both services,
the broker and the workers, and job pages go to the page workers over the pages queue.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from flask import Flask, Response, request

from common.config import Settings
from common.http import request_deadline
from jobs.runner import Jobs, distributed_jobs, embedded_jobs
from pipeline.distributed import DistributedEngine, distributed_engine
from pipeline.ocr import OcrPipeline
from pipeline.service_client import ServiceClient

if TYPE_CHECKING:  # the embedded engine loads torch: the distributed pipeline never imports it
    from pipeline.embedded import EmbeddedEngine
    from std_service.detector import Detector
    from str_service.recognizer import Recognizer


@dataclass
class Topology:
    """A ready OcrPipeline plus what the app needs around it."""

    pipeline: OcrPipeline
    readiness: Callable[[], tuple[bool, dict]]
    mount_model_routes: Callable[[Flask], None]
    jobs: Jobs  # the jobs API's store and how it gets pages read (jobs/runner.py)
    close_engine: Callable[[], None]

    def close(self) -> None:
        self.jobs.close()
        self.close_engine()


def embedded_topology(engine: EmbeddedEngine, settings: Settings) -> Topology:
    from std_service.routes import register_detection
    from str_service.routes import register_recognition

    def mount(app: Flask) -> None:
        register_detection(app, engine.detector, settings, engine.lock)
        register_recognition(app, engine.recognizer, settings, engine.lock)

    def readiness() -> tuple[bool, dict]:
        models = {"std": engine.detector.model_name, "str": engine.recognizer.model_name}
        return True, {"mode": "embedded", "models": models}

    jobs = embedded_jobs(settings, engine.pipeline)
    return Topology(engine.pipeline, readiness, mount, jobs, engine.close)


def distributed_topology(engine: DistributedEngine, settings: Settings) -> Topology:
    def relay(client: ServiceClient, path: str) -> Response:
        answer = client.relay(
            path,
            request_deadline(settings),
            request.get_data(),
            request.headers.get("Content-Type", ""),
            request.args,
        )
        return Response(
            answer.content,
            status=answer.status,
            content_type=answer.content_type,
            headers=answer.headers,
        )

    def mount(app: Flask) -> None:
        app.add_url_rule(
            "/detection", "detection", lambda: relay(engine.std, "/detection"), methods=["POST"]
        )
        app.add_url_rule(
            "/recognition",
            "recognition",
            lambda: relay(engine.str_, "/recognition"),
            methods=["POST"],
        )

    def readiness() -> tuple[bool, dict]:
        checks = {
            "std": engine.std.ready(),
            "str": engine.str_.ready(),
            "broker": engine.rabbit.connected,
            "workers": engine.rabbit.consumers != 0,  # None: not probed yet, so not known none
        }
        return all(checks.values()), {"mode": "distributed", "checks": checks}

    return Topology(engine.pipeline, readiness, mount, distributed_jobs(settings), engine.close)


def build_topology(
    settings: Settings, detector: Detector | None = None, recognizer: Recognizer | None = None
) -> Topology:
    """The engine OCR_MODE names, loaded or connected, with its HTTP glue.

    ``detector`` and ``recognizer`` reuse loaded models in the embedded topology (tests, tools).
    """
    if settings.ocr_mode == "embedded":
        from pipeline.embedded import embedded_engine

        return embedded_topology(embedded_engine(settings, detector, recognizer), settings)
    return distributed_topology(distributed_engine(settings), settings)

"""What every queue worker process does around its own work: the command line (``--check``),
logging, metrics on METRICS_PORT, and stopping cleanly on SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import logging
import signal
from collections.abc import Sequence
from typing import Protocol

from common.amqp import broker_reachable
from common.config import Settings


class StoppableWorker(Protocol):
    def run(self) -> None: ...

    def stop(self) -> None: ...


def worker_settings(argv: Sequence[str] | None, description: str) -> Settings | int:
    """The process's Settings, logging set up; with ``--check``, the exit code instead (0 when
    the broker answers: the containers' healthcheck)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--check", action="store_true", help="exit 0 if the broker answers")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("pika").setLevel(logging.WARNING)
    settings = Settings.from_env()
    if args.check:
        return 0 if broker_reachable(settings.rabbitmq_url) else 1
    return settings


def serve_worker(worker: StoppableWorker, settings: Settings) -> None:
    """Serve Prometheus metrics on METRICS_PORT (0: none), stop on SIGTERM or SIGINT, and run
    ``worker`` until it stops."""
    if settings.metrics_port:
        from prometheus_client import start_http_server

        start_http_server(settings.metrics_port, addr=settings.bind)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: worker.stop())
    worker.run()

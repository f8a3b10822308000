"""gunicorn settings shared by every HTTP service (``gunicorn -c python:common.gunicorn_conf``).

Models load in each worker after fork (the app factory runs there), never in the master, so no
CUDA call happens before fork. Metrics from several workers are merged through
PROMETHEUS_MULTIPROC_DIR, which this file prepares.
"""

from __future__ import annotations

import os
import shutil
import tempfile

workers = int(os.environ.get("OCR_WORKERS", "1"))
threads = int(os.environ.get("OCR_HTTP_THREADS", "4"))
worker_class = "gthread"
timeout = int(float(os.environ.get("OCR_TIMEOUT_S", "60")) + 60)
graceful_timeout = 30
bind = os.environ.get("BIND", "0.0.0.0:" + os.environ.get("PORT", "8000"))
accesslog = "-"
# Several services run side by side on one machine; a shared default control socket would clash.
control_socket_disable = True
errorlog = "-"

_own_metrics_dir = None
if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    _own_metrics_dir = tempfile.mkdtemp(prefix="ocr-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = _own_metrics_dir


def child_exit(server, worker) -> None:  # noqa: ANN001 - gunicorn's hook signature
    """Drop a dead worker's live gauges from the merged metrics."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def on_exit(server) -> None:  # noqa: ANN001 - gunicorn's hook signature
    """Remove the metrics folder this config made (one given by the user is left alone)."""
    if _own_metrics_dir:
        shutil.rmtree(_own_metrics_dir, ignore_errors=True)

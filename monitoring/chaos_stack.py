"""The distributed topology as local processes for the chaos run: std, str, str workers and the
pipeline in distributed mode, all pointed at the chaos node.

Each process runs in a process group of its own, so that a SIGKILL takes whatever it forked
with it and cleaning up leaves nothing behind. Output goes to one log file per process in the
run's folder.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from monitoring.chaos_broker import free_port

REPO_ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = REPO_ROOT / ".venv" / "bin"


def service_command(kind: str, port: int) -> tuple[list[str], dict[str, str]]:
    """The command line and extra environment that serve ``kind`` (std, str, pipeline) on
    ``port``: the waitress front, ``python -m common.server KIND``."""
    argv = [str(VENV_BIN / "python"), "-m", "common.server", kind]
    return argv, {"PORT": str(port), "BIND": "127.0.0.1"}


def worker_command() -> list[str]:
    return [str(VENV_BIN / "python"), "-m", "str_service.worker"]


@dataclass
class Service:
    """A started process: what it is, where it logs, its HTTP port (0 for workers)."""

    name: str
    process: subprocess.Popen
    log: Path
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL the whole process group, then reap it."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass

    def terminate(self, timeout_s: float = 10.0) -> None:
        """SIGTERM the group, SIGKILL what is left after ``timeout_s``."""
        if self.alive():
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=timeout_s)
            except (ProcessLookupError, PermissionError, subprocess.TimeoutExpired):
                pass
        self.kill()


@dataclass
class Stack:
    """Every process of the run; ``close()`` stops all of them, even after errors."""

    rabbitmq_url: str
    queue: str
    run_dir: Path
    ocr_timeout_s: float = 30.0
    # The chaos run reads with the official profile: one torch read per word keeps a worker's
    # batch long enough (a few hundred ms) to be caught mid-batch from /proc; the fast
    # profile's int8 line reads take a few ms. Delivery, acks and redelivery are the same in
    # every profile. Benchmarks pass the profile they measure.
    profile: str = "official"
    threads: int = 1  # torch/ONNX threads per process (OCR_THREADS)
    extra_env: dict[str, str] = field(default_factory=dict)  # more settings for every process
    services: dict[str, Service] = field(default_factory=dict)
    workers: list[Service] = field(default_factory=list)
    page_workers: list[Service] = field(default_factory=list)
    ports: dict[str, int] = field(default_factory=dict)
    _spawned: int = 0

    def base_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RABBITMQ_", "OCR_"))}
        return (
            env
            | {
                "RABBITMQ_URL": self.rabbitmq_url,
                "STR_QUEUE": self.queue,
                "OCR_THREADS": str(self.threads),
                "OCR_DEVICE": "cpu",
                "OCR_PROFILE": self.profile,
                "OCR_TIMEOUT_S": str(self.ocr_timeout_s),
                "PYTHONPATH": str(REPO_ROOT),
                "PYTHONUNBUFFERED": "1",
                # the pipeline's jobs database lives with the run, not in the checkout
                "OCR_JOBS_DB": f"sqlite:///{self.run_dir / 'jobs.sqlite3'}",
            }
            | self.extra_env
        )

    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> tuple[Path, object]:
        self._spawned += 1
        log = self.run_dir / f"{name}.{self._spawned}.log"
        handle = open(log, "ab")  # not `with`: the child keeps it
        process = subprocess.Popen(
            argv,
            cwd=REPO_ROOT,
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        handle.close()
        return log, process

    def start_service(self, kind: str, mode: str = "distributed") -> Service:
        """Start std, str or pipeline (in ``mode``: distributed, or embedded with both models
        in it); a restarted one keeps its port."""
        port = self.ports.setdefault(kind, free_port())
        argv, extra = service_command(kind, port)
        env = self.base_env() | extra
        if kind == "pipeline" and mode == "embedded":
            env |= {"OCR_MODE": "embedded"}
        elif kind == "pipeline":
            env |= {
                "OCR_MODE": "distributed",
                "STD_URL": f"http://127.0.0.1:{self.ports['std']}",
                "STR_URL": f"http://127.0.0.1:{self.ports['str']}",
            }
        log, process = self._spawn(kind, argv, env)
        service = Service(kind, process, log, port)
        self.services[kind] = service
        return service

    def start_worker(self) -> Service:
        env = self.base_env() | {"METRICS_PORT": "0"}
        log, process = self._spawn("worker", worker_command(), env)
        worker = Service("worker", process, log)
        self.workers.append(worker)
        return worker

    def start_page_worker(self) -> Service:
        """A job page worker (``python -m jobs.worker``), kept apart from the str workers."""
        env = self.base_env() | {
            "METRICS_PORT": "0",
            "STR_URL": f"http://127.0.0.1:{self.ports['str']}",
        }
        argv = [str(VENV_BIN / "python"), "-m", "jobs.worker"]
        log, process = self._spawn("page-worker", argv, env)
        worker = Service("page-worker", process, log)
        self.page_workers.append(worker)
        return worker

    def live_workers(self) -> list[Service]:
        return [w for w in self.workers if w.alive()]

    def wait_ready(self, kinds: list[str], timeout_s: float) -> float:
        """Wait until every service in ``kinds`` answers /readyz with 200; return seconds."""
        started = time.monotonic()
        deadline = started + timeout_s
        pending = list(kinds)
        while pending and time.monotonic() < deadline:
            for kind in list(pending):
                service = self.services[kind]
                if not service.alive():
                    raise RuntimeError(f"{kind} exited while starting; see {service.log}")
                if ready(service.url):
                    pending.remove(kind)
            if pending:
                time.sleep(0.5)
        if pending:
            raise RuntimeError(f"not ready within {timeout_s:.0f}s: {', '.join(pending)}")
        return time.monotonic() - started

    def close(self) -> None:
        for service in [*self.services.values(), *self.workers, *self.page_workers]:
            service.terminate(timeout_s=5.0)


def ready(url: str) -> bool:
    try:
        return requests.get(url + "/readyz", timeout=3).status_code == 200
    except requests.RequestException:
        return False

"""Fixtures for real-server tests: models loaded once, the real broker, unique queue names."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pika
import pytest
import requests

from common.config import Settings
from tests.servers import serve

REPO_ROOT = Path(__file__).resolve().parents[2]
RABBITMQ_URL = os.environ.get("RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
# The real PostgreSQL (trust auth here and in CI); each test gets a schema of its own.
POSTGRES_URL = os.environ.get("OCR_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1/test")
# The page most service tests read, what it says, and detection settings that keep it cheap.
PAGE = [["HELLO", "world"], ["OCR", "2024", "pipeline"]]
EXPECTED = "HELLO world\nOCR 2024 pipeline"
FAST = {"canvas_size": "640", "mag_ratio": "1.0"}


@contextmanager
def postgres_schema() -> Iterator[str]:
    """A fresh schema on the real PostgreSQL, dropped afterwards; yields the URL whose
    connections use it (search_path), so tables of the same name never meet."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import OperationalError

    name = f"ocr_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL)
    try:
        with admin.begin() as db:
            db.execute(text(f'CREATE SCHEMA "{name}"'))
    except OperationalError as exc:
        admin.dispose()
        pytest.fail(f"PostgreSQL is not answering at {POSTGRES_URL}: {exc}")
    try:
        yield f"{POSTGRES_URL}?options=-csearch_path%3D{name}"
    finally:
        with admin.begin() as db:
            db.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
        admin.dispose()


def past_deadline() -> str:
    """An X-OCR-Deadline one second ago (epoch milliseconds)."""
    return str(int(time.time() * 1000) - 1000)


def post_with_deadline(url: str, files: list, deadline: str) -> requests.Response:
    """POST ``files`` with ``deadline`` as the X-OCR-Deadline header."""
    return requests.post(url, files=files, headers={"X-OCR-Deadline": deadline}, timeout=120)


def post_in_background(url: str, image: bytes) -> tuple[threading.Thread, dict]:
    """POST ``image`` to /pipeline from a thread; its response lands in the dict as ``r``."""
    answer: dict = {}

    def send() -> None:
        answer["r"] = requests.post(
            url + "/pipeline", files={"image": ("p.png", image)}, data=FAST, timeout=120
        )

    thread = threading.Thread(target=send)
    thread.start()
    return thread, answer


def broker_available() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 5672), timeout=2).close()
    except OSError:
        return False
    return True


@pytest.fixture(scope="session")
def base_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The service tests' settings: the real broker, and a jobs database of the session's own
    (SQLite, in a temporary folder) wherever a test builds a pipeline."""
    jobs_db = tmp_path_factory.mktemp("jobs") / "jobs.sqlite3"
    return Settings(ocr_threads=2, rabbitmq_url=RABBITMQ_URL, ocr_jobs_db=f"sqlite:///{jobs_db}")


@pytest.fixture(params=["embedded", "distributed"])
def mode(request: pytest.FixtureRequest, broker: str) -> str:
    """Each topology in turn (a test file may narrow it with a ``mode`` of its own)."""
    return request.param


@pytest.fixture
def settings(base_settings: Settings, queue_name: str) -> Settings:
    """The service tests' settings with a crops queue of the test's own."""
    return base_settings.with_overrides(str_queue=queue_name)


@pytest.fixture(scope="session")
def broker() -> str:
    """The real RabbitMQ; tests that need it fail loudly rather than mock it."""
    if not broker_available():
        pytest.fail(
            "RabbitMQ is not answering on 127.0.0.1:5672 (start it: rabbitmq-server -detached)"
        )
    return RABBITMQ_URL


@pytest.fixture
def queue_name(broker: str) -> Iterator[str]:
    """A crops queue of this test's own, deleted afterwards."""
    name = f"test.ocr.crops.{uuid.uuid4().hex[:12]}"
    yield name
    with amqp_channel(broker) as channel:
        channel.queue_delete(name)


@contextmanager
def amqp_channel(url: str) -> Iterator:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        yield connection.channel()
    finally:
        if connection.is_open:
            connection.close()


def queue_depth(url: str, name: str) -> int:
    with amqp_channel(url) as channel:
        return channel.queue_declare(name, durable=True, passive=True).method.message_count


def rabbitmqctl_queue(name: str) -> tuple[int, int, int]:
    """(ready, unacked, consumers) of a queue, as the broker itself counts them."""
    out = subprocess.run(
        [
            "rabbitmqctl",
            "-q",
            "list_queues",
            "name",
            "messages_ready",
            "messages_unacknowledged",
            "consumers",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    for line in out.splitlines():
        parts = line.split()
        if parts and parts[0] == name:
            return int(parts[1]), int(parts[2]), int(parts[3])
    return 0, 0, 0


def wait_until(predicate, timeout_s: float, interval_s: float = 0.1) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(interval_s)
    return bool(predicate())


class ThreadWorker:
    """A str worker running in this process on the shared recogniser (fast to start)."""

    def __init__(self, settings: Settings, recognizer) -> None:
        from str_service.worker import Worker

        lock = threading.Lock()

        def recognize(crops):
            with lock:
                return recognizer.recognize(crops).results

        self.worker = Worker(settings, recognize)
        self.thread = threading.Thread(target=self.worker.run, daemon=True)

    def __enter__(self) -> ThreadWorker:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.worker.stop()
        self.thread.join(timeout=30)


def start_worker_process(settings: Settings, **env: str) -> subprocess.Popen:
    """A real ``python -m str_service.worker`` process, for tests that kill one."""
    environment = (
        os.environ
        | {
            "RABBITMQ_URL": settings.rabbitmq_url,
            "STR_QUEUE": settings.str_queue,
            "STR_MAX_BATCH": str(settings.str_max_batch),
            "STR_MAX_WAIT_MS": str(settings.str_max_wait_ms),
            "STR_BUCKET_POLICY": settings.str_bucket_policy,
            "OCR_THREADS": "1",
            "METRICS_PORT": "0",
            "PYTHONPATH": str(REPO_ROOT),
        }
        | env
    )
    return subprocess.Popen(
        [sys.executable, "-m", "str_service.worker"],
        cwd=REPO_ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@contextmanager
def ocr_stack(
    mode: str,
    settings: Settings,
    detector,
    recognizer,
    workers: int = 1,
) -> Iterator[tuple[str, object]]:
    """Serve the pipeline in ``mode``; yield its URL and engine.

    Distributed: std and str services on their own ports, ``workers`` str workers on the real
    broker, the pipeline talking to all of them. Embedded: the pipeline alone.
    """
    from pipeline.app import create_app
    from pipeline.topology import build_topology
    from std_service.app import create_app as std_app
    from str_service.app import create_app as str_app

    with ExitStack() as stack:
        if mode == "embedded":
            engine = build_topology(settings, detector, recognizer)
        else:
            std_url = stack.enter_context(serve(std_app(settings, detector)))
            str_url = stack.enter_context(serve(str_app(settings, recognizer)))
            settings = settings.with_overrides(
                std_url=std_url, str_url=str_url, ocr_mode="distributed"
            )
            for _ in range(workers):
                stack.enter_context(ThreadWorker(settings, recognizer))
            engine = build_topology(settings)
            if workers:  # up means ready: the client has seen a worker consuming
                assert wait_until(lambda: engine.readiness()[0], 30.0, 0.2), engine.readiness()
        stack.callback(engine.close)
        url = stack.enter_context(serve(create_app(settings, engine)))
        yield url, engine


@pytest.fixture(autouse=True)
def _dead_letter_cleanup(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test's crops queue comes with a dead-letter exchange and queue; delete them too.

    Acts only for tests that use ``queue_name`` (whose own teardown deletes the crops queue).
    """
    if "queue_name" not in request.fixturenames:
        yield
        return
    names = Settings(str_queue=request.getfixturevalue("queue_name"))
    yield
    with amqp_channel(RABBITMQ_URL) as channel:
        channel.queue_delete(names.dead_letter_queue)
        channel.exchange_delete(names.dead_letter_exchange)

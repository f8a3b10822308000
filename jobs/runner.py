"""How the pipeline process gets a job's pages read, in each topology.

Embedded (``LocalRunner``): OCR_JOBS_CONCURRENCY threads in this process read the queued pages
of the database in order, through the embedded engine: no broker. This process owns its SQLite
database, so at start-up it puts back in the queue the pages its previous life died reading.

Distributed (``PagePublisher``, jobs/page_queue.py): every page becomes a message on the pages
queue for the page workers (jobs/worker.py). The store marks the pages it published (an outbox):
pages stored while the broker was away, or by a process that died before publishing them, are
published by the janitor, at start-up and every minute (a page published twice is read once:
the claim decides).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from common.config import Settings
from jobs.pages import read_page
from jobs.store import JobStore, PageTask
from pipeline.ocr import OcrPipeline

log = logging.getLogger(__name__)
EXPIRY_EVERY_S = 60.0
IDLE_POLL_S = 1.0


class LocalRunner:
    """Threads that claim and read queued pages until closed."""

    def __init__(self, settings: Settings, store: JobStore, pipeline: OcrPipeline) -> None:
        self.settings = settings
        self.store = store
        self.pipeline = pipeline
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._threads = [
            threading.Thread(target=self._loop, name=f"job-runner-{i}", daemon=True)
            for i in range(settings.ocr_jobs_concurrency)
        ]

    def start(self) -> None:
        released = self.store.release_running()
        if released:
            log.info("%d pages left running by a previous process are queued again", released)
        for thread in self._threads:
            thread.start()

    def dispatch(self, _pages: Sequence[tuple[str, int]]) -> None:
        """New pages are in the database: wake the threads."""
        self._wake.set()

    def close(self) -> None:
        self._stopping.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout=self.settings.ocr_timeout_s)

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                task = self._next()
                if task is not None:
                    read_page(self.store, self.pipeline, self.settings, task)
                    continue
            except Exception:  # the database failed; try again after the idle wait
                log.exception("the job runner could not reach the jobs database")
            self._wake.wait(IDLE_POLL_S)
            self._wake.clear()

    def _next(self) -> PageTask | None:
        attempts = self.settings.ocr_jobs_attempts
        for job_id, number in self.store.waiting_pages(limit=2 * len(self._threads)):
            task = self.store.claim(job_id, number, attempts)
            if task is not None:
                return task
        return None


@dataclass
class Jobs:
    """What the pipeline serves jobs with: the store, how new pages get to be read, and a
    janitor that deletes jobs past OCR_JOBS_RETENTION_H."""

    settings: Settings
    store: JobStore
    dispatch: Callable[[Sequence[tuple[str, int]]], None]
    stop: Callable[[], None]
    catch_up: Callable[[], None] = lambda: None  # what the janitor does besides expiring

    def __post_init__(self) -> None:
        self._stopping = threading.Event()
        self._janitor = threading.Thread(target=self._expire_loop, name="job-expiry", daemon=True)
        self._janitor.start()

    def close(self) -> None:
        self._stopping.set()
        self.stop()
        self._janitor.join(timeout=5)
        self.store.close()

    def _expire_loop(self) -> None:
        while True:
            try:
                self.catch_up()
                expired = self.store.expire()
                if expired:
                    log.info("%d expired jobs deleted", expired)
            except Exception:  # the database or the broker is away; next round
                log.exception("the jobs janitor failed")
            if self._stopping.wait(EXPIRY_EVERY_S):
                return


def embedded_jobs(settings: Settings, pipeline: OcrPipeline) -> Jobs:
    store = JobStore.from_settings(settings)
    runner = LocalRunner(settings, store, pipeline)
    runner.start()
    return Jobs(settings, store, runner.dispatch, runner.close)


def distributed_jobs(settings: Settings) -> Jobs:
    from common.amqp import CONNECTION_ERRORS
    from jobs.page_queue import PagePublisher

    store = JobStore.from_settings(settings)
    publisher = PagePublisher(settings)

    def dispatch(pages: Sequence[tuple[str, int]]) -> None:
        try:
            publisher.publish(pages)
        except CONNECTION_ERRORS as exc:  # stored all the same: the janitor publishes them
            log.warning("the broker is away (%s); %d pages wait to be published", exc, len(pages))
            return
        store.mark_published(pages)

    def catch_up() -> None:
        waiting = store.unpublished_pages()
        if waiting:
            dispatch(waiting)
            log.info("%d pages stored earlier are on the pages queue now", len(waiting))

    return Jobs(settings, store, dispatch, lambda: None, catch_up)

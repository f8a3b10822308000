"""The page worker: consumes the pages queue, detects each page and reads its crops through the
str workers, and records the page in the jobs database.

Run ``python -m jobs.worker`` as many times, on as many machines, as detection needs: like the
str workers, they share one durable queue. Each holds CRAFT in process and sends its crops to
the STR bucket over RabbitMQ, so the recognition batches fill with the crops of every page
worker. OCR_JOBS_CONCURRENCY pages are read at once, so one page is detected while another's
crops wait for their batch.

Threads: pika's connection belongs to the main thread, which consumes and acknowledges; pages
are read in a pool, and come back to it through ``add_callback_threadsafe``. A page is acked
only once its outcome is in the database: a worker killed mid-page loses its connection, the
broker redelivers the page, and the next worker takes it over (JobStore.claim's ``takeover``).
A message that is not a page is dead-lettered; nothing a page does takes the worker down.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import pika

from common.amqp import open_connection, serve_forever
from common.config import Settings
from common.worker_process import serve_worker, worker_settings
from jobs.page_queue import declare_pages_queue, decode_page
from jobs.pages import read_page
from jobs.store import JobStore
from pipeline.ocr import OcrPipeline

log = logging.getLogger("jobs.worker")
STORE_RETRY_S = 2.0  # a page whose database call failed goes back to the queue after this


class PageWorker:
    """Consumes page messages until stopped, reading each through ``pipeline``."""

    def __init__(self, settings: Settings, store: JobStore, pipeline: OcrPipeline) -> None:
        self.settings = settings
        self.store = store
        self.pipeline = pipeline
        self._stopping = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=settings.ocr_jobs_concurrency)

    def stop(self) -> None:
        self._stopping.set()

    def run(self) -> None:
        """Consume until stopped, reconnecting with back-off whenever the broker goes away."""
        serve_forever(self._consume, self._stopping, log)
        self._pool.shutdown(wait=True)

    def _consume(self, connected: Callable[[], None]) -> None:
        with open_connection(self.settings.rabbitmq_url) as connection:
            channel = connection.channel()
            declare_pages_queue(channel, self.settings)
            channel.basic_qos(prefetch_count=self.settings.ocr_jobs_concurrency)
            busy = [0]

            def on_message(ch, method, _props, body: bytes) -> None:
                try:
                    job_id, number = decode_page(body)
                except ValueError as exc:
                    log.warning("dead-lettering a message that is not a page: %s", exc)
                    ch.basic_reject(method.delivery_tag, requeue=False)
                    return
                busy[0] += 1
                done = partial(self._settled, connection, ch, method.delivery_tag, busy)
                self._pool.submit(self._read, job_id, number, method.redelivered, done)

            channel.basic_consume(self.settings.ocr_jobs_queue, on_message, auto_ack=False)
            connected()
            log.info("page worker consuming %s", self.settings.ocr_jobs_queue)
            while not self._stopping.is_set():
                connection.process_data_events(time_limit=0.5)
            channel.stop_consuming()
            while busy[0]:  # let the pages being read record and ack before closing
                connection.process_data_events(time_limit=0.1)

    def _read(
        self, job_id: str, number: int, redelivered: bool, done: Callable[[bool], None]
    ) -> None:
        """In the pool: claim and read the page; ``done(requeue)`` hands the ack back."""
        try:
            task = self.store.claim(
                job_id, number, self.settings.ocr_jobs_attempts, takeover=redelivered
            )
            outcome = (
                "skipped"
                if task is None
                else read_page(self.store, self.pipeline, self.settings, task)
            )
        except Exception:  # the database is unreachable: the page waits in the queue
            log.exception("job %s page %d: the jobs database failed", job_id, number)
            time.sleep(STORE_RETRY_S)
            done(True)
            return
        log.info("job %s page %d: %s", job_id, number, outcome)
        done(outcome == "retry")

    @staticmethod
    def _settled(connection, channel, tag: int, busy: list[int], requeue: bool) -> None:
        def settle() -> None:
            busy[0] -= 1
            if requeue:
                channel.basic_nack(tag, requeue=True)
            else:
                channel.basic_ack(tag)

        try:
            connection.add_callback_threadsafe(settle)
        except pika.exceptions.ConnectionWrongStateError:
            pass  # the connection is gone: the broker redelivers the page


def page_worker_pipeline(settings: Settings) -> OcrPipeline:
    """CRAFT in this process; the crops through the str workers (RabbitMQ), the sequential
    baseline through str_service (a page worker reads batched only, but the pipeline has both)."""
    from common.models import FairLock
    from pipeline.distributed import HttpSequentialReader
    from pipeline.embedded import LocalDetection
    from pipeline.rabbit_reader import RabbitBucketReader
    from pipeline.service_client import ServiceClient
    from std_service.detector import Detector

    detector = Detector.from_settings(settings)
    rabbit = RabbitBucketReader(settings)
    rabbit.wait_connected(5.0)
    sequential = HttpSequentialReader(ServiceClient(settings.str_url, settings.ocr_api_key))
    return OcrPipeline(settings, LocalDetection(detector, settings, FairLock()), sequential, rabbit)


def main(argv: Sequence[str] | None = None) -> int:
    settings = worker_settings(argv, __doc__.splitlines()[0])
    if isinstance(settings, int):
        return settings
    store = JobStore.from_settings(settings)
    serve_worker(PageWorker(settings, store, page_worker_pipeline(settings)), settings)
    store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

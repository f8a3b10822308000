"""The pages queue on RabbitMQ: one durable message per page to read, (job id, page number).

The message says only which page; the database holds the page and its state, so a message
delivered twice (a page republished at start-up, or redelivered after its worker died) is
harmless: the claim (JobStore.claim) lets exactly one reading count.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable

import pika

from common.amqp import declare_work_queue, open_connection
from common.config import Settings

CONTENT_TYPE = "application/json"


def declare_pages_queue(channel, settings: Settings):
    """The pages queue: its delivery limit lies beyond OCR_JOBS_ATTEMPTS, so the claim's own
    count fails a page that keeps killing its workers before the broker would drop it."""
    return declare_work_queue(
        channel,
        settings.ocr_jobs_queue,
        settings.ocr_jobs_attempts + 2,
        settings.jobs_dead_letter_exchange,
        settings.jobs_dead_letter_queue,
    )


def encode_page(job_id: str, number: int) -> bytes:
    return json.dumps({"job": job_id, "page": number}).encode()


def decode_page(body: bytes) -> tuple[str, int]:
    """(job id, page number); ValueError for anything else."""
    try:
        payload = json.loads(body)
        job_id, number = payload["job"], payload["page"]
    except (ValueError, TypeError, KeyError) as exc:
        raise ValueError(f"not a page message: {exc}") from None
    if not isinstance(job_id, str) or not isinstance(number, int) or number < 1:
        raise ValueError("not a page message: job must be a string, page a positive integer")
    return job_id, number


class PagePublisher:
    """Publishes pages from any thread, one connection at a time, reopened when it breaks."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()

    def publish(self, pages: Iterable[tuple[str, int]]) -> None:
        """Every page as a persistent message, confirmed by the broker before this returns."""
        with self._lock, open_connection(self.settings.rabbitmq_url) as connection:
            channel = connection.channel()
            channel.confirm_delivery()
            declare_pages_queue(channel, self.settings)
            properties = pika.BasicProperties(content_type=CONTENT_TYPE, delivery_mode=2)
            for job_id, number in pages:
                channel.basic_publish(
                    "", self.settings.ocr_jobs_queue, encode_page(job_id, number), properties
                )

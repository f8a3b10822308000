"""Pages per second of a job with one and with two page workers, and the pages lost.

    python -m monitoring.jobs_bench                 # a 20-page job, 1 then 2 page workers

Each run starts the distributed topology as local processes (monitoring/chaos_stack.py): std,
str, one str worker, the pipeline and N page workers, on the real RabbitMQ (queues of the run's
own) and the real PostgreSQL (a schema of the run's own, dropped after). The job is a PDF of
dev-set pages (FUNSD forms first; without the dev set, the pages pipeline.demo draws), submitted
to POST /jobs and followed until it ends; the clock runs from the submission to the end. Every
process gets one thread (OCR_THREADS=1): on a 2-core machine a second page worker competes for
the same cores, so what it shows there is the overlap, not the scale-out of separate machines.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path

import requests
from sqlalchemy import create_engine, text

from common.config import Settings
from monitoring.chaos_stack import Stack
from monitoring.pdf_pages import build_pdf, document_pages

RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1/test"


PAGE_DEADLINE_S = 30.0  # a page takes under 2 s here; a job slower than this has stalled


def run(workers: int, document: bytes, pages: int, work: Path) -> dict:
    schema = f"ocr_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as db:
        db.execute(text(f'CREATE SCHEMA "{schema}"'))
    tag = uuid.uuid4().hex[:8]
    settings = Settings(str_queue=f"ocr.bench.crops.{tag}", ocr_jobs_queue=f"ocr.bench.pages.{tag}")
    extra = {
        "OCR_JOBS_DB": f"{POSTGRES_URL}?options=-csearch_path%3D{schema}",
        "OCR_JOBS_QUEUE": settings.ocr_jobs_queue,
    }
    stack = Stack(RABBITMQ_URL, settings.str_queue, work, 600.0, "fast", threads=1, extra_env=extra)
    try:
        for kind in ("std", "str"):
            stack.start_service(kind)
        stack.start_worker()
        for _ in range(workers):
            stack.start_page_worker()
        stack.start_service("pipeline")
        stack.wait_ready(["std", "str", "pipeline"], 600.0)
        _wait_for_consumers(settings, workers, 600.0)  # each page worker quantises CRAFT first
        url = stack.services["pipeline"].url
        started = time.perf_counter()
        job = requests.post(
            url + "/jobs", files={"images": ("job.pdf", document)}, timeout=120
        ).json()
        # A job that has not ended by then is reported with its pages lost, not waited for.
        deadline = started + PAGE_DEADLINE_S * pages
        while job["status"] not in ("done", "failed", "cancelled"):
            if time.perf_counter() > deadline:
                break
            time.sleep(0.25)
            job = requests.get(f"{url}/jobs/{job['id']}", timeout=30).json()
        elapsed = time.perf_counter() - started
        return {
            "page_workers": workers,
            "pages": pages,
            "status": job["status"],
            "seconds": round(elapsed, 1),
            "pages_per_s": round(pages / elapsed, 3),
            "done": job["pages_done"],
            "failed": job["pages_failed"],
            "lost": pages - job["pages_done"] - job["pages_failed"],
        }
    finally:
        stack.close()
        with admin.begin() as db:
            db.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
        _delete_queues(settings)


def _wait_for_consumers(settings: Settings, count: int, timeout_s: float) -> None:
    import pika

    from common.amqp import CONNECTION_ERRORS, probe_queue

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            connection = pika.BlockingConnection(pika.URLParameters(RABBITMQ_URL))
            try:
                if probe_queue(connection.channel(), settings.ocr_jobs_queue)[0] >= count:
                    return
            finally:
                if connection.is_open:
                    connection.close()
        except CONNECTION_ERRORS:  # not declared yet: no page worker is up
            pass
        time.sleep(0.5)
    raise RuntimeError(f"fewer than {count} page workers consuming after {timeout_s:.0f}s")


def _delete_queues(settings: Settings) -> None:
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(RABBITMQ_URL))
    try:
        channel = connection.channel()
        for queue in (
            settings.str_queue,
            settings.dead_letter_queue,
            settings.ocr_jobs_queue,
            settings.jobs_dead_letter_queue,
        ):
            channel.queue_delete(queue)
        for exchange in (settings.dead_letter_exchange, settings.jobs_dead_letter_exchange):
            channel.exchange_delete(exchange)
    finally:
        connection.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m monitoring.jobs_bench", description=__doc__)
    parser.add_argument("--pages", type=int, default=20)
    parser.add_argument("--workers", default="1,2", help="page worker counts to run")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="jobs-bench-") as tmp:
        work = Path(tmp)
        document = build_pdf(document_pages(args.pages, work), Settings().ocr_pdf_dpi)
        results = [run(int(n), document, args.pages, work) for n in args.workers.split(",")]
    print("| page workers | pages | seconds | pages/s | status | done | failed | lost |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['page_workers']} | {r['pages']} | {r['seconds']} | {r['pages_per_s']} | "
            f"{r['status']} | {r['done']} | {r['failed']} | {r['lost']} |"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Seconds per page of a multi-page PDF, end to end, in both topologies.

    python -m monitoring.pdf_pages                 # 10 pages, 3 timed requests per topology

The document is made of dev-set pages (../shared/data/dev, FUNSD forms first), each placed on a
PDF page sized so that the service's rendering at OCR_PDF_DPI gives back the scan's own pixels;
without the dev set, the pages pipeline.demo draws. Each topology runs as local processes
(monitoring/chaos_stack.py): embedded, one pipeline process holding both models; distributed,
std, str, one str worker and the pipeline on the real broker. Every request is the whole PDF
to ``/pipeline`` (its pages' crops share bucket batches) and to ``/ocr`` (page after page, word
after word); a warm-up request of one page comes first.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import requests

from common.config import Settings
from common.images import decode_image
from monitoring.chaos_stack import Stack
from monitoring.data import DataError, default_images_dir, image_paths, sample_pages, take

RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"


def build_pdf(images: list[Path], dpi: float) -> bytes:
    """One PDF page per image, at the size that renders back to the image's pixels."""
    from fpdf import FPDF

    pdf = FPDF(unit="pt")
    pdf.set_auto_page_break(False)
    pdf.set_margin(0)
    for path in images:
        height, width = decode_image(path.read_bytes()).shape[:2]
        size = (width * 72.0 / dpi, height * 72.0 / dpi)
        pdf.add_page(format=size)
        pdf.image(io.BytesIO(path.read_bytes()), x=0, y=0, w=size[0], h=size[1])
    return bytes(pdf.output())


def document_pages(count: int, work: Path) -> list[Path]:
    try:
        paths = image_paths(default_images_dir())
        paths = sorted(paths, key=lambda p: (not p.name.startswith("funsd"), p.name))
    except DataError as exc:
        print(f"{exc}; using the pages pipeline.demo draws", file=sys.stderr)
        paths = sample_pages(work / "demo")
    return take(paths, count)


def _post(url: str, path: str, blob: bytes, timeout_s: float) -> float:
    started = time.perf_counter()
    response = requests.post(
        url + path, files={"image": ("doc.pdf", blob, "application/pdf")}, timeout=timeout_s
    )
    elapsed = time.perf_counter() - started
    if response.status_code != 200:
        raise RuntimeError(f"{path} answered {response.status_code}: {response.text[:300]}")
    return elapsed


def measure(
    mode: str, document: bytes, warmup: bytes, pages: int, repeats: int, work: Path
) -> dict:
    """Start ``mode``'s processes (default profile, every core per process), time the PDF."""
    queue = f"ocr.bench.pdf.{uuid.uuid4().hex[:8]}"
    stack = Stack(RABBITMQ_URL, queue, work, ocr_timeout_s=600.0, profile="fast", threads=0)
    try:
        if mode == "embedded":
            stack.start_service("pipeline", mode="embedded")
        else:
            stack.start_service("std")
            stack.start_service("str")
            stack.start_worker()
            stack.start_service("pipeline")
        ready_s = stack.wait_ready(list(stack.services), 600.0)
        url = stack.services["pipeline"].url
        out = {"topology": mode, "pages": pages, "ready_s": round(ready_s, 1)}
        for path in ("/pipeline", "/ocr"):
            _post(url, path, warmup, 600.0)
            seconds = [_post(url, path, document, 600.0) for _ in range(repeats)]
            out[path] = {
                "requests_s": [round(s, 2) for s in seconds],
                "s_per_page": round(statistics.median(seconds) / pages, 3),
            }
        return out
    finally:
        stack.close()
        _delete_queues(Settings(str_queue=queue))


def _delete_queues(settings: Settings) -> None:
    """The run's crops queue and its dead-letter queue and exchange (declared by the worker)."""
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(RABBITMQ_URL))
    try:
        channel = connection.channel()
        channel.queue_delete(settings.str_queue)
        channel.queue_delete(settings.dead_letter_queue)
        channel.exchange_delete(settings.dead_letter_exchange)
    finally:
        connection.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m monitoring.pdf_pages", description=__doc__)
    parser.add_argument("--pages", type=int, default=10, help="pages in the PDF")
    parser.add_argument("--repeats", type=int, default=3, help="timed requests per path")
    parser.add_argument("--topologies", default="embedded,distributed")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    dpi = Settings().ocr_pdf_dpi
    with tempfile.TemporaryDirectory(prefix="pdf-pages-") as tmp:
        work = Path(tmp)
        paths = document_pages(args.pages, work)
        document = build_pdf(paths, dpi)
        warmup = build_pdf(paths[:1], dpi)
        results = [
            measure(mode, document, warmup, args.pages, args.repeats, work)
            for mode in args.topologies.split(",")
        ]
    print("| topology | path | s per page (median of requests) | requests (s) |")
    print("|---|---|---|---|")
    for result in results:
        for path in ("/pipeline", "/ocr"):
            row = result[path]
            times = ", ".join(f"{s:.1f}" for s in row["requests_s"])
            print(f"| {result['topology']} | `{path}` | {row['s_per_page']:.2f} | {times} |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

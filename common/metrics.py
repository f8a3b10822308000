"""Prometheus metrics shared by every service.

Metric objects are module-level because Prometheus' client keeps one registry per process, and
every service runs as one process (scale out with more processes, each scraped on its own).
"""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 350, 512, 1024)

REQUEST_SECONDS = Histogram(
    "ocr_request_seconds",
    "Request latency by endpoint and mode",
    ["service", "endpoint", "mode"],
    buckets=LATENCY_BUCKETS,
)
ERRORS = Counter("ocr_errors_total", "Error responses by code", ["service", "endpoint", "code"])
STD_SECONDS = Histogram(
    "ocr_std_seconds", "CRAFT detection time per image", buckets=LATENCY_BUCKETS
)
STR_SECONDS = Histogram(
    "ocr_str_seconds",
    "Recognition time per read (a /recognition request, one sequential crop, a bucket batch)",
    buckets=LATENCY_BUCKETS,
)
STR_CROPS = Counter("ocr_str_crops_total", "Crops recognised")
BOXES_PER_DOCUMENT = Histogram(
    "ocr_boxes_per_document",
    "Text boxes found per image",
    buckets=(0, 1, 5, 10, 25, 50, 100, 200, 400, 800),
)
BATCH_SIZE = Histogram("ocr_str_batch_size", "Crops per bucket batch", buckets=BATCH_BUCKETS)
FORWARD_SIZE = Histogram(
    "ocr_str_forward_size", "Crops per recogniser forward pass", buckets=BATCH_BUCKETS
)
BUCKET_WAIT_SECONDS = Histogram(
    "ocr_bucket_wait_seconds",
    "How long the oldest crop of a batch waited in the bucket",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
QUEUE_DEPTH = Gauge(
    "ocr_queue_depth",
    "Messages waiting in the crops queue, as the broker last reported",
    ["queue"],
)
DEAD_LETTERS = Counter(
    "ocr_dead_letters_total",
    "Crop messages a worker could not answer and sent to the dead-letter queue, by reason",
    ["reason"],
)
IN_FLIGHT = Gauge(
    "ocr_in_flight_requests",
    "Model requests admitted and not yet answered, by service",
    ["service"],
)

JOBS = Gauge("ocr_jobs", "Jobs in the database by status, as of the last scrape", ["status"])
JOB_PAGES = Counter(
    "ocr_job_pages_total",
    "Job pages read by this process, by outcome (done, failed, retry)",
    ["outcome"],
)
JOB_PAGE_SECONDS = Histogram(
    "ocr_job_page_seconds",
    "A job page's read: from its claim to its result (opening, detection, recognition)",
    buckets=LATENCY_BUCKETS,
)


def render_metrics() -> tuple[bytes, str]:
    """The Prometheus text exposition of this process."""
    return generate_latest(), CONTENT_TYPE_LATEST

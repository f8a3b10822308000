"""Reading the pipeline's Prometheus text: samples, histograms and the monitoring page's rows."""

from __future__ import annotations

import math

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from web import metrics_view

EXPOSITION = """\
# HELP ocr_request_seconds Request latency by endpoint and mode
# TYPE ocr_request_seconds histogram
ocr_request_seconds_bucket{endpoint="/ocr",le="1.0",mode="sequential",service="pipeline"} 2.0
ocr_request_seconds_bucket{endpoint="/ocr",le="2.0",mode="sequential",service="pipeline"} 6.0
ocr_request_seconds_bucket{endpoint="/ocr",le="+Inf",mode="sequential",service="pipeline"} 8.0
ocr_request_seconds_count{endpoint="/ocr",mode="sequential",service="pipeline"} 8.0
ocr_request_seconds_sum{endpoint="/ocr",mode="sequential",service="pipeline"} 12.0
ocr_request_seconds_bucket{endpoint="/pipeline",le="1.0",mode="batched",service="pipeline"} 4.0
ocr_request_seconds_bucket{endpoint="/pipeline",le="2.0",mode="batched",service="pipeline"} 4.0
ocr_request_seconds_bucket{endpoint="/pipeline",le="+Inf",mode="batched",service="pipeline"} 4.0
ocr_request_seconds_count{endpoint="/pipeline",mode="batched",service="pipeline"} 4.0
ocr_request_seconds_sum{endpoint="/pipeline",mode="batched",service="pipeline"} 2.0
ocr_errors_total{code="invalid_image",endpoint="/ocr",service="pipeline"} 2.0
ocr_errors_total{code="timeout",endpoint="/pipeline",service="pipeline"} 0.0
ocr_errors_total{code="invalid_image",endpoint="/ocr",service="other"} 1.0
ocr_queue_depth{queue="ocr.str.crops"} 7.0
weird_metric{text="a \\"quoted\\" {brace}"} 1e+03
this line is not a sample
"""


def test_parse_metrics_reads_names_labels_and_values():
    samples = metrics_view.parse_metrics(EXPOSITION)
    assert len(samples) == 15
    weird = [s for s in samples if s.name == "weird_metric"][0]
    assert weird.labels == {"text": 'a "quoted" {brace}'} and weird.value == 1000.0
    inf = [s for s in samples if s.labels.get("le") == "+Inf"][0]
    assert math.isinf(float(inf.labels["le"]))


def test_histogram_sums_label_sets_and_estimates_quantiles_like_prometheus():
    samples = metrics_view.parse_metrics(EXPOSITION)
    seq = metrics_view.histogram(samples, "ocr_request_seconds", {"mode": "sequential"})
    assert (seq.count, seq.total, seq.mean) == (8.0, 12.0, 1.5)
    assert seq.quantile(0.5) == pytest.approx(1.5)  # rank 4: halfway through the (1, 2] bucket
    assert seq.quantile(0.95) == 2.0  # rank 7.6 lands in +Inf: the last finite bound
    assert seq.quantile(0.1) == pytest.approx(0.4)  # rank 0.8 in (0, 1]
    both = metrics_view.histogram(samples, "ocr_request_seconds")
    assert both.count == 12 and both.buckets[0] == (1.0, 6.0)
    assert [row["count"] for row in both.bars()] == [6.0, 4.0, 2.0]
    assert [row["bucket"] for row in both.bars()] == ["≤ 1", "≤ 2", "> 2"]
    assert metrics_view.histogram(samples, "ocr_str_batch_size") is None


def test_latency_errors_and_queue_rows():
    samples = metrics_view.parse_metrics(EXPOSITION)
    rows = metrics_view.latency_rows(samples)
    assert [(r["endpoint"], r["mode"], r["requests"]) for r in rows] == [
        ("/ocr", "sequential", 8),
        ("/pipeline", "batched", 4),
    ]
    assert rows[1]["mean s"] == 0.5
    errors = metrics_view.counter_rows(samples, "ocr_errors_total", ("endpoint", "code"))
    assert errors == [{"endpoint": "/ocr", "code": "invalid_image", "count": 3}]
    assert metrics_view.gauge_rows(samples, "ocr_queue_depth", "queue") == [
        {"queue": "ocr.str.crops", "value": 7.0}
    ]


def test_parser_reads_what_prometheus_client_writes():
    registry = CollectorRegistry()
    sizes = Histogram("ocr_str_batch_size", "x", buckets=(1, 8, 64), registry=registry)
    errors = Counter("ocr_errors_total", "x", ["endpoint", "code"], registry=registry)
    for size in (1, 5, 7, 40, 100):
        sizes.observe(size)
    errors.labels("/ocr", "timeout").inc(2)
    samples = metrics_view.parse_metrics(generate_latest(registry).decode())
    hist = metrics_view.histogram(samples, "ocr_str_batch_size")
    assert (hist.count, hist.total) == (5, 153)
    assert [row["count"] for row in hist.bars()] == [1, 2, 1, 1]
    assert metrics_view.counter_rows(samples, "ocr_errors_total", ("endpoint", "code")) == [
        {"endpoint": "/ocr", "code": "timeout", "count": 2}
    ]

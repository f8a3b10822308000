"""Reading a service's Prometheus /metrics: fetch the text, parse it, sum it into tables.

The parsing is prometheus_client's own, so the page (and the load test in monitoring/, which
reads its scrapes through this module too) understands exactly what the services' client
library writes. This module imports no service code: the web image has no torch.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import requests
from prometheus_client.parser import text_string_to_metric_families


@dataclass(frozen=True)
class Sample:
    name: str
    labels: dict[str, str]
    value: float


def scrape_text(
    url: str,
    headers: Mapping[str, str] | None = None,
    timeout: float | tuple[float, float] = 10.0,
    session: requests.Session | None = None,
) -> str:
    """GET the exposition at ``url``; raises requests' exceptions, HTTPError for a non-200."""
    http = session or requests
    response = http.get(url, headers=dict(headers or {}), timeout=timeout)
    if response.status_code != 200:
        raise requests.HTTPError(f"{url} answered HTTP {response.status_code}", response=response)
    return response.text


def parse_metrics(text: str) -> list[Sample]:
    """Samples of a Prometheus text exposition, in order.

    The format is one sample per line, so each line goes through prometheus_client on its own:
    a line it rejects is skipped rather than losing every sample after it.
    """
    samples = []
    for line in text.splitlines():
        try:
            families = list(text_string_to_metric_families(line))
        except ValueError:
            continue
        samples += [
            Sample(sample.name, dict(sample.labels), float(sample.value))
            for family in families
            for sample in family.samples
        ]
    return samples


def matches(labels: Mapping[str, str], where: Mapping[str, str] | None) -> bool:
    """Whether ``labels`` carry every label of ``where`` with the same value."""
    return all(labels.get(k) == v for k, v in (where or {}).items())


@dataclass
class Histogram:
    """One Prometheus histogram, summed over the label sets asked for."""

    buckets: list[tuple[float, float]]  # (upper bound, cumulative count), ascending, +Inf last
    count: float
    total: float

    @property
    def mean(self) -> float | None:
        return self.total / self.count if self.count else None

    def quantile(self, q: float) -> float | None:
        """Prometheus' histogram_quantile: linear inside the bucket that holds the rank."""
        if not self.count or not self.buckets:
            return None
        rank = q * self.count
        lower, below = 0.0, 0.0
        for upper, cumulative in self.buckets:
            if cumulative >= rank:
                if math.isinf(upper):
                    return lower
                inside = cumulative - below
                if inside <= 0:
                    return upper
                return lower + (upper - lower) * (rank - below) / inside
            lower, below = upper, cumulative
        return lower

    def bars(self) -> list[dict]:
        """Per-bucket (not cumulative) counts, labelled by range, for a bar chart."""
        rows, lower, below = [], None, 0.0
        for upper, cumulative in self.buckets:
            label = f"> {_num(lower)}" if math.isinf(upper) else f"≤ {_num(upper)}"
            rows.append({"bucket": label, "count": max(0.0, cumulative - below)})
            lower, below = upper, cumulative
        return rows


def _num(value: float | None) -> str:
    return "0" if value is None else f"{value:g}"


def histogram(
    samples: Iterable[Sample], name: str, where: Mapping[str, str] | None = None
) -> Histogram | None:
    """The histogram ``name``, summed over every label set that matches ``where``."""
    buckets: dict[float, float] = {}
    count = sum_ = 0.0
    seen = False
    for sample in samples:
        if not matches(sample.labels, where):
            continue
        if sample.name == f"{name}_bucket" and "le" in sample.labels:
            upper = float(sample.labels["le"])
            buckets[upper] = buckets.get(upper, 0.0) + sample.value
            seen = True
        elif sample.name == f"{name}_count":
            count += sample.value
            seen = True
        elif sample.name == f"{name}_sum":
            sum_ += sample.value
    if not seen:
        return None
    return Histogram(sorted(buckets.items()), count, sum_)


def label_sets(samples: Iterable[Sample], name: str, keys: Sequence[str]) -> list[dict[str, str]]:
    """The distinct values of ``keys`` that series ``name`` carries, in first-seen order."""
    seen: list[dict[str, str]] = []
    for sample in samples:
        if sample.name == name:
            combo = {k: sample.labels.get(k, "") for k in keys}
            if combo not in seen:
                seen.append(combo)
    return seen


def latency_rows(samples: Sequence[Sample]) -> list[dict]:
    """Requests, mean and percentiles of ocr_request_seconds per endpoint and mode.

    Percentiles are estimated from the buckets the way Prometheus does, so they are only as fine
    as the bucket bounds; the mean is exact.
    """
    rows = []
    keys = ("service", "endpoint", "mode")
    for combo in label_sets(samples, "ocr_request_seconds_count", keys):
        hist = histogram(samples, "ocr_request_seconds", combo)
        if hist is None or not hist.count:
            continue
        rows.append(
            {
                "endpoint": combo["endpoint"],
                "mode": combo["mode"] or "-",
                "requests": int(hist.count),
                "mean s": _round(hist.mean),
                "p50 s (est.)": _round(hist.quantile(0.5)),
                "p95 s (est.)": _round(hist.quantile(0.95)),
            }
        )
    return rows


def counter_rows(samples: Iterable[Sample], name: str, keys: Sequence[str]) -> list[dict]:
    """Non-zero counter values by the given labels (``ocr_errors_total`` by endpoint and code)."""
    totals: dict[tuple[str, ...], float] = {}
    for sample in samples:
        if sample.name == name and sample.value:
            key = tuple(sample.labels.get(k, "") for k in keys)
            totals[key] = totals.get(key, 0.0) + sample.value
    return [dict(zip(keys, key, strict=True)) | {"count": int(v)} for key, v in totals.items()]


def gauge_rows(samples: Iterable[Sample], name: str, key: str) -> list[dict]:
    return [
        {key: sample.labels.get(key, ""), "value": sample.value}
        for sample in samples
        if sample.name == name
    ]


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)

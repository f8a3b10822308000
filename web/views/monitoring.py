"""The pipeline's own numbers, read from its /metrics: latency, batch sizes, bucket wait, errors.

Prometheus and Grafana (monitoring/) keep history; this page is the quick look without them.
"""

from collections.abc import Callable

import pandas as pd
import streamlit as st

from web import client, metrics_view, tables
from web.errors import PageError

config = client.WebConfig.from_env()

st.title("Pipeline metrics")
st.caption(
    f"Read from `{config.pipeline_url}/metrics` when the page loads. Counts are since the "
    "pipeline started."
)
st.button("Refresh", key="refresh")

try:
    samples = metrics_view.parse_metrics(client.fetch_metrics(config))
except PageError as exc:
    st.error(exc.message)
    st.stop()

requests_rows = metrics_view.latency_rows(samples)
batch = metrics_view.histogram(samples, "ocr_str_batch_size")
wait = metrics_view.histogram(samples, "ocr_bucket_wait_seconds")
std = metrics_view.histogram(samples, "ocr_std_seconds")
str_ = metrics_view.histogram(samples, "ocr_str_seconds")
errors = metrics_view.counter_rows(samples, "ocr_errors_total", ("endpoint", "code"))


def _fmt(value: float | None, scale: float = 1.0, unit: str = "") -> str:
    return "–" if value is None else f"{value * scale:,.1f}{unit}"


tiles = st.columns(5)
tiles[0].metric("Requests", f"{sum(row['requests'] for row in requests_rows):,}")
tiles[1].metric("Mean batch size", _fmt(batch.mean if batch else None))
# Durations in the unit that keeps them short: a tile cuts "28,237.1 ms" off, not "28.2 s".
tiles[2].metric("Mean bucket wait", tables.format_duration(wait.mean if wait else None))
tiles[3].metric("Mean STD time", tables.format_duration(std.mean if std else None))
tiles[4].metric("Errors", f"{sum(row['count'] for row in errors):,}")

st.subheader("Latency by endpoint")
if requests_rows:
    st.dataframe(pd.DataFrame(requests_rows), hide_index=True, width="stretch")
    st.caption(
        "Means are exact; percentiles are interpolated inside histogram buckets, as Prometheus "
        "does, so with few requests they are coarse."
    )
else:
    st.info("No requests recorded yet.")


def histogram_panel(
    title: str,
    hist: metrics_view.Histogram | None,
    caption: Callable[[metrics_view.Histogram], str],
    empty: str,
) -> None:
    """A histogram as bars per bucket under a one-line caption, or ``empty`` when it has none."""
    st.subheader(title)
    if hist and hist.count:
        st.caption(caption(hist))
        st.bar_chart(pd.DataFrame(hist.bars()), x="bucket", y="count", sort=False, height=240)
    else:
        st.info(empty)


left, right = st.columns(2)
with left:
    histogram_panel(
        "Recognition batch sizes",
        batch,
        lambda h: (
            f"{int(h.count)} batches, mean {_fmt(h.mean)} crops, p95 ≈ {_fmt(h.quantile(0.95))}"
        ),
        "No batches recorded here. In distributed mode the str workers count them; "
        "Prometheus scrapes those (monitoring/).",
    )
with right:
    histogram_panel(
        "Bucket wait",
        wait,
        lambda h: (
            f"mean {tables.format_duration(h.mean)}, "
            f"p95 ≈ {tables.format_duration(h.quantile(0.95))}"
        ),
        "No bucket flushes recorded here yet.",
    )

st.subheader("Model time")
stages = [
    {"stage": name, "calls": int(h.count), "mean ms": round(h.mean * 1000, 1)}
    for name, h in (("STD per image", std), ("STR per batch", str_))
    if h and h.count and h.mean is not None
]
if stages:
    st.dataframe(pd.DataFrame(stages), hide_index=True)
else:
    st.info("No model calls recorded here yet.")

depth = metrics_view.gauge_rows(samples, "ocr_queue_depth", "queue")
if depth:
    st.subheader("Queue depth")
    st.dataframe(pd.DataFrame(depth), hide_index=True)

st.subheader("Errors by code")
if errors:
    st.dataframe(pd.DataFrame(errors), hide_index=True)
else:
    st.caption("No errors.")

"""The arithmetic behind the monitoring reports: savings table, knee, bisection, summaries."""

from __future__ import annotations

import math

import pytest

from monitoring.batchsize import Probe, bytes_per_crop, find_max_batch, knee, parse_policies
from monitoring.loadtest import describe, metric_delta, metric_total, parse_metrics
from monitoring.savings import (
    CostModel,
    check,
    markdown,
    model_from_results,
    rows,
    t_batch,
    t_seq,
)

MODEL = CostModel(t_std=2.0, t_str1=0.05, t_strB=3.5, boxes=100, batch=350, overhead_per_batch=0.1)


def test_savings_follow_design_formula() -> None:
    # T_seq = N (t_std + b t_str1); T_batch = N t_std + ceil(N b / B) (t_strB + o)
    assert t_seq(MODEL, 100) == pytest.approx(100 * (2.0 + 100 * 0.05))
    assert t_batch(MODEL, 100) == pytest.approx(100 * 2.0 + math.ceil(10_000 / 350) * 3.6)
    for row in rows(MODEL, (100, 1_000, 10_000)):
        assert row["saved_s"] == pytest.approx(row["t_seq_s"] - row["t_batch_s"])
        assert row["saved_s"] != pytest.approx(row["t_batch_s"])  # the original study's slip
        assert row["t_batch_s"] < row["t_seq_s"]
        assert row["speedup"] == pytest.approx(row["t_seq_s"] / row["t_batch_s"])
    assert check(MODEL) == []


def test_savings_partial_last_batch_and_no_batching_gain() -> None:
    one_doc = CostModel(t_std=1.0, t_str1=0.1, t_strB=2.0, boxes=3, batch=350)
    assert rows(one_doc, (1,))[0]["batches"] == 1  # 3 crops still need one batch
    # A batch that costs more than B single reads: T_batch > T_seq, and the report says why.
    slow = CostModel(t_std=1.0, t_str1=0.001, t_strB=2.0, boxes=10, batch=10)
    assert t_batch(slow, 10) > t_seq(slow, 10)
    assert check(slow) and "does not pay" in markdown(slow)


def test_cost_model_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        CostModel(t_std=1.0, t_str1=0.1, t_strB=1.0, boxes=5, batch=0)
    with pytest.raises(ValueError):
        CostModel(t_std=float("nan"), t_str1=0.1, t_strB=1.0, boxes=5, batch=4)


def test_knee_is_smallest_batch_within_ten_percent_of_best() -> None:
    curve = [
        {"batch_size": 1, "crops_per_s": 10.0},
        {"batch_size": 8, "crops_per_s": 50.0},
        {"batch_size": 32, "crops_per_s": 92.0},
        {"batch_size": 128, "crops_per_s": 100.0},
        {"batch_size": 350, "crops_per_s": 97.0},
    ]
    assert knee(curve) == 32
    assert knee(curve, fraction=0.99) == 128
    assert knee([]) is None


def memory_model(limit: int, per_crop: int = 4096, fixed: int = 10_000):
    """A fake forward pass: fits while fixed + per_crop * B stays within the free memory."""
    tried: list[int] = []

    def fits(batch: int) -> Probe:
        tried.append(batch)
        if batch > limit:
            return Probe(batch, False, error="out of memory")
        return Probe(batch, True, peak_extra_bytes=fixed + per_crop * batch)

    return fits, tried, fixed + per_crop * limit


@pytest.mark.parametrize("limit", [3, 100, 12_345, 987_654])
def test_max_batch_search_finds_the_limit_in_few_probes(limit: int) -> None:
    fits, tried, free = memory_model(limit)
    search = find_max_batch(fits, free_bytes=free, tolerance=0.0)
    assert search.largest == limit and search.first_failure == limit + 1
    assert search.stopped == "converged"
    assert len(tried) <= 30  # calibration, a few 10 % steps, bisection: no linear scan
    assert bytes_per_crop(search.probes) == pytest.approx(4096)
    rough = find_max_batch(fits, free_bytes=free, tolerance=0.01)
    assert limit * 0.99 <= rough.largest <= limit


def test_max_batch_search_when_the_prediction_is_off() -> None:
    fits, _, free = memory_model(20_000)
    low = find_max_batch(fits, free_bytes=free / 3, tolerance=0.0)  # predicted far too low
    high = find_max_batch(fits, free_bytes=free * 3, tolerance=0.0)  # predicted far too high
    assert low.largest == high.largest == 20_000
    capped = find_max_batch(fits, free_bytes=free, cap=5_000)
    assert capped.largest == 5_000 and capped.stopped == "cap"
    nothing = find_max_batch(memory_model(0)[0], free_bytes=1.0)
    assert nothing.largest == 0


def test_max_batch_search_stops_at_its_deadline() -> None:
    fits, tried, free = memory_model(50_000)
    search = find_max_batch(fits, free_bytes=free, deadline=0.0)  # already past
    assert search.stopped == "time budget" and search.largest == 256  # calibration only
    assert tried == [64, 256]


def test_policies_parse() -> None:
    assert parse_policies("0, fixed:50,adaptive:100") == [
        ("fixed", 0.0),
        ("fixed", 50.0),
        ("adaptive", 100.0),
    ]
    with pytest.raises(ValueError):
        parse_policies("greedy:5")


def test_describe_percentiles() -> None:
    stats = describe(list(range(1, 101)))
    assert stats["n"] == 100 and stats["mean"] == pytest.approx(50.5)
    assert stats["p50"] == pytest.approx(50.5) and stats["p99"] == pytest.approx(99.01)
    assert describe([])["p95"] == 0.0


def test_metric_delta_from_prometheus_text() -> None:
    before = parse_metrics(
        'ocr_std_seconds_count 2.0\nocr_std_seconds_sum 3.0\nocr_errors_total{code="x"} 1.0\n'
    )
    after = parse_metrics(
        "ocr_std_seconds_count 5.0\nocr_std_seconds_sum 9.5\n"
        'ocr_errors_total{code="x"} 1.0\nocr_errors_total{code="y"} 2.0\n'
    )
    delta = metric_delta(before, after)
    assert delta["ocr_std_seconds_count"] == 3.0 and delta["ocr_std_seconds_sum"] == 6.5
    assert delta["ocr_errors_total"] == 2.0
    assert metric_total(after, "ocr_errors_total", code="y") == 2.0
    assert metric_delta(None, after) == {}


def test_cost_model_from_measured_results() -> None:
    def scenario(endpoint: str, concurrency: int, std: float, wait: float) -> dict:
        return {
            "endpoint": endpoint,
            "mode": "sequential" if endpoint == "/ocr" else "batched",
            "concurrency": concurrency,
            "documents_ok": 4,
            "std_s_per_doc": {"mean": std},
            "str_s_per_box": 0.04,
            "boxes_per_doc": {"mean": 80.0},
            "bucket_wait_s": {"mean": wait, "count": 4},
        }

    loadtest = {
        "scenarios": [
            scenario("/ocr", 4, 9.0, 0.0),  # queueing inflates per-document times at C=4
            scenario("/ocr", 1, 3.0, 0.0),
            scenario("/pipeline", 1, 3.1, 0.004),
            scenario("/pipeline", 4, 9.0, 1.5),
        ]
    }
    batchsize = {
        "throughput": {
            "largest": 350,
            "rows": [
                {"batch_size": 1, "seconds_per_batch": 0.05},
                {"batch_size": 350, "seconds_per_batch": 7.0},
            ],
        }
    }
    model, sources = model_from_results(loadtest, batchsize)
    assert model == CostModel(3.0, 0.04, 7.0, 80.0, 350, 0.004)
    assert set(sources) == {"t_std", "t_str1", "b", "t_strB", "o"}
    assert model_from_results(loadtest, batchsize, batch=1)[0].t_strB == 0.05
    with pytest.raises(ValueError):
        model_from_results(loadtest, batchsize, batch=64)

"""Bucket monitor: the batching rules the str worker and the embedded engine share."""

from __future__ import annotations

import itertools
import threading
import time

import numpy as np
import pytest

from common.config import Settings
from str_service.bucket import (
    Batch,
    BlockingBucket,
    BucketClosed,
    BucketConfig,
    BucketItem,
    BucketMonitor,
    Crop,
    run_batch,
)


class FakeClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def crops(owner: str, n: int) -> list[BucketItem]:
    return [BucketItem(owner, (owner, i)) for i in range(n)]


def monitor(max_batch=350, max_wait_ms=50.0, policy="adaptive", clock=None) -> BucketMonitor:
    counter = itertools.count()
    return BucketMonitor(
        BucketConfig(max_batch=max_batch, max_wait_ms=max_wait_ms, policy=policy),
        clock=clock or FakeClock(),
        id_factory=lambda: f"b{next(counter)}",
    )


# -- configuration --------------------------------------------------------------------------


def test_defaults_match_design():
    cfg = BucketConfig()
    assert (cfg.max_batch, cfg.max_wait_ms, cfg.policy) == (350, 50.0, "adaptive")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_batch": 0},
        {"max_batch": -3},
        {"max_batch": 2.5},
        {"max_wait_ms": -1},
        {"max_wait_ms": float("nan")},
        {"policy": "greedy"},
    ],
)
def test_invalid_config_is_rejected(kwargs):
    with pytest.raises(ValueError):
        BucketConfig(**kwargs)


def test_config_comes_from_the_service_settings():
    settings = Settings.from_env(
        {"STR_MAX_BATCH": "16", "STR_MAX_WAIT_MS": "7.5", "STR_BUCKET_POLICY": "fixed"}
    )
    assert BucketConfig.from_settings(settings) == BucketConfig(16, 7.5, "fixed")
    assert BucketConfig.from_settings(Settings()) == BucketConfig()


def test_flushes_when_full():
    m = monitor(max_batch=4, policy="fixed")
    m.add_many(crops("a", 3))
    assert m.poll() is None
    m.add(BucketItem("b", "x"))
    batch = m.poll()
    assert batch is not None and batch.size == 4 and batch.reason == "full"
    assert len(m) == 0


def test_flushes_at_timeout_and_reports_wait():
    clock = FakeClock()
    m = monitor(max_batch=10, max_wait_ms=50, policy="fixed", clock=clock)
    m.add_many(crops("a", 2))
    clock.advance(0.030)
    m.add(BucketItem("b", 0))
    assert m.poll() is None
    assert m.time_until_flush() == pytest.approx(0.020)
    clock.advance(0.020)
    assert m.time_until_flush() == 0.0
    batch = m.poll()
    assert batch is not None and batch.size == 3 and batch.reason == "timeout"
    assert batch.oldest_wait_s == pytest.approx(0.050)
    assert batch.flushed_at == clock.now


def test_adaptive_flushes_lone_request_at_once_when_idle():
    clock = FakeClock()
    m = monitor(max_wait_ms=50, clock=clock)
    m.add_many(crops("a", 5))
    assert m.time_until_flush(upstream_empty=True) == 0.0
    batch = m.poll(upstream_empty=True)
    assert batch is not None and batch.size == 5 and batch.reason == "idle"
    assert batch.oldest_wait_s == 0.0


def test_adaptive_waits_while_more_is_coming_or_worker_busy():
    clock = FakeClock()
    m = monitor(max_wait_ms=50, clock=clock)
    m.add_many(crops("a", 5))
    assert m.poll(upstream_empty=False) is None
    assert m.poll(upstream_empty=True, worker_idle=False) is None
    assert m.time_until_flush(upstream_empty=True, worker_idle=False) == pytest.approx(0.050)
    clock.advance(0.050)
    assert m.poll(upstream_empty=False).reason == "timeout"


def test_fixed_policy_ignores_idleness():
    clock = FakeClock()
    m = monitor(max_wait_ms=50, policy="fixed", clock=clock)
    m.add_many(crops("a", 5))
    assert m.poll(upstream_empty=True, worker_idle=True) is None
    assert m.time_until_flush(upstream_empty=True) == pytest.approx(0.050)
    clock.advance(0.049)
    assert m.poll(upstream_empty=True) is None
    clock.advance(0.001)
    assert m.poll(upstream_empty=True).size == 5


def test_zero_wait_flushes_immediately():
    m = monitor(max_wait_ms=0, policy="fixed")
    m.add(BucketItem("a", 0))
    assert m.poll().reason == "timeout"


def test_empty_bucket_never_flushes_and_has_no_deadline():
    m = monitor()
    assert m.poll(upstream_empty=True) is None
    assert m.time_until_flush(upstream_empty=True) is None
    assert m.flush() is None


def test_large_request_spans_batches_none_exceeding_max_in_fifo_order():
    m = monitor(max_batch=350, policy="fixed")
    m.add_many(crops("big", 800))
    sizes, payloads = [], []
    while (batch := m.poll()) is not None:
        sizes.append(batch.size)
        payloads.extend(item.payload for item in batch.items)
    assert sizes == [350, 350]
    assert len(m) == 100  # the rest waits for more crops or the timeout
    rest = m.flush()
    payloads.extend(item.payload for item in rest.items)
    assert payloads == [("big", i) for i in range(800)]


def test_requests_mix_in_one_batch_in_arrival_order():
    clock = FakeClock()
    m = monitor(max_batch=5, policy="fixed", clock=clock)
    m.add_many(crops("r1", 3))
    clock.advance(0.001)
    m.add_many(crops("r2", 4))
    first = m.poll()
    assert [i.owner for i in first.items] == ["r1", "r1", "r1", "r2", "r2"]
    clock.advance(0.050)
    second = m.poll()
    assert [i.payload for i in second.items] == [("r2", 2), ("r2", 3)]
    # the oldest crop left is r2's, which arrived 1 ms after r1's
    assert second.oldest_wait_s == pytest.approx(0.050)


def test_batches_get_distinct_ids():
    m = BucketMonitor(BucketConfig(max_batch=1))
    m.add_many(crops("a", 3))
    ids = [m.poll().id for _ in range(3)]
    assert len(set(ids)) == 3 and all(isinstance(i, str) and i for i in ids)


def test_discard_drops_only_that_owner():
    m = monitor(max_batch=10)
    m.add_many(crops("gone", 3))
    m.add_many(crops("kept", 2))
    assert m.discard("gone") == 3
    assert m.discard("nobody") == 0
    assert [i.owner for i in m.flush().items] == ["kept", "kept"]


# -- BlockingBucket -------------------------------------------------------------------------


def blocking(max_batch=350, max_wait_ms=50.0, policy="adaptive") -> BlockingBucket:
    cfg = BucketConfig(max_batch=max_batch, max_wait_ms=max_wait_ms, policy=policy)
    return BlockingBucket(BucketMonitor(cfg))


def test_blocking_returns_lone_request_without_delay():
    bucket = blocking(max_wait_ms=2000)
    bucket.put_many(crops("a", 3))
    start = time.monotonic()
    batch = bucket.get_batch(timeout=5)
    assert batch.size == 3 and batch.reason == "idle"
    assert time.monotonic() - start < 0.5


def test_blocking_fixed_waits_for_timeout():
    bucket = blocking(max_wait_ms=40, policy="fixed")
    bucket.put_many([BucketItem("a", 0)])
    start = time.monotonic()
    batch = bucket.get_batch(timeout=5)
    elapsed = time.monotonic() - start
    assert batch.size == 1 and batch.reason == "timeout"
    assert 0.03 <= elapsed < 1.0


def test_blocking_times_out_when_nothing_arrives():
    bucket = blocking()
    start = time.monotonic()
    assert bucket.get_batch(timeout=0.05) is None
    assert time.monotonic() - start >= 0.04


def test_blocking_wakes_on_put_from_another_thread():
    bucket = blocking(max_wait_ms=5000)
    result: list[Batch | None] = []
    consumer = threading.Thread(target=lambda: result.append(bucket.get_batch(timeout=5)))
    consumer.start()
    time.sleep(0.05)
    bucket.put_many(crops("a", 2))
    consumer.join(timeout=2)
    assert not consumer.is_alive()
    assert result[0].size == 2


def test_blocking_many_producers_all_crops_delivered_once_within_max():
    bucket = blocking(max_batch=7, max_wait_ms=5)
    n_threads, per_request = 8, 11

    def produce(k: int) -> None:
        bucket.put_many(crops(f"r{k}", per_request))

    producers = [threading.Thread(target=produce, args=(k,)) for k in range(n_threads)]
    for t in producers:
        t.start()
    seen: list[tuple[str, int]] = []
    deadline = time.monotonic() + 5
    while len(seen) < n_threads * per_request and time.monotonic() < deadline:
        batch = bucket.get_batch(timeout=0.2)
        if batch is not None:
            assert 1 <= batch.size <= 7
            seen.extend(item.payload for item in batch.items)
    for t in producers:
        t.join()
    assert sorted(seen) == sorted(
        (f"r{k}", i) for k in range(n_threads) for i in range(per_request)
    )
    # each request's crops stay in order
    for k in range(n_threads):
        mine = [i for owner, i in seen if owner == f"r{k}"]
        assert mine == list(range(per_request))


def test_blocking_close_drains_then_refuses():
    bucket = blocking(max_batch=2, max_wait_ms=5000, policy="fixed")
    bucket.put_many(crops("a", 3))
    first = bucket.get_batch(timeout=1)  # full batch of 2
    assert first.size == 2
    bucket.close()
    start = time.monotonic()
    last = bucket.get_batch(timeout=5)
    assert last.size == 1 and last.reason == "forced"
    assert bucket.get_batch(timeout=5) is None
    assert time.monotonic() - start < 0.5
    with pytest.raises(BucketClosed):
        bucket.put_many([BucketItem("a", 9)])


def test_blocking_close_wakes_a_waiting_consumer():
    bucket = blocking()
    result: list[Batch | None] = ["unset"]
    consumer = threading.Thread(target=lambda: result.__setitem__(0, bucket.get_batch()))
    consumer.start()
    time.sleep(0.05)
    bucket.close()
    consumer.join(timeout=2)
    assert not consumer.is_alive() and result[0] is None


# -- run_batch ------------------------------------------------------------------------------


def _crop_batch(owners: list[str]) -> Batch:
    items = tuple(
        BucketItem(owner, Crop(index, np.full((4, 4), index, np.uint8)))
        for index, owner in enumerate(owners)
    )
    return Batch("b1", items, oldest_wait_s=0.01, flushed_at=0.0, reason="full")


def test_run_batch_splits_readings_per_owner_by_index():
    answers = run_batch(
        _crop_batch(["r1", "r2", "r1"]), lambda crops: [(f"t{c[0, 0]}", 0.5) for c in crops]
    )
    assert set(answers) == {"r1", "r2"}
    assert answers["r1"].results == {0: ("t0", 0.5), 2: ("t2", 0.5)}
    assert answers["r2"].results == {1: ("t1", 0.5)}
    assert (answers["r1"].batch_id, answers["r1"].batch_size) == ("b1", 3)
    assert not answers["r1"].errors


def test_run_batch_turns_a_failing_recogniser_into_errors_for_every_owner():
    def broken(crops):
        raise RuntimeError("model exploded")

    answers = run_batch(_crop_batch(["r1", "r2"]), broken)
    assert answers["r1"].errors == {0: "recognition failed: RuntimeError"}
    assert answers["r2"].errors == {1: "recognition failed: RuntimeError"}
    assert not answers["r1"].results

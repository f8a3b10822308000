"""The crop message format rejects every malformed message, and the reconnect loop's back-off.

Everything in a crop message comes from whoever can publish to the queue, so decode_crop must turn
each malformed field into a MessageError that names the problem (the worker sends it back as the
error reply) and never let anything else escape.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import numpy as np
import pytest

from common.amqp import QueueConfigError, serve_forever
from common.messages import (
    MAX_CROP_SIDE,
    MessageError,
    UnanswerableMessage,
    decode_crop,
    encode_crop,
    header_int,
)

CROP = np.arange(6, dtype=np.uint8).reshape(2, 3)
DEADLINE = time.time() + 60


def good() -> tuple[bytes, dict]:
    return encode_crop(CROP, 1, 4, DEADLINE)


def with_headers(**changes: object) -> dict:
    headers = good()[1]
    for name, value in changes.items():
        if value is ...:
            headers.pop(name)
        else:
            headers[name] = value
    return headers


def test_a_good_message_round_trips() -> None:
    body, headers = good()
    crop = decode_crop(body, headers, "req-1", "amq.gen-reply")
    assert (crop.request_id, crop.reply_to, crop.index, crop.count) == (
        "req-1",
        "amq.gen-reply",
        1,
        4,
    )
    assert np.array_equal(crop.image, CROP)
    assert crop.deadline == pytest.approx(DEADLINE, abs=0.001)


@pytest.mark.parametrize(
    ("headers", "says"),
    [
        (None, "'index' is missing"),
        ({}, "'index' is missing"),
        (with_headers(count=...), "'count' is missing"),
        (with_headers(deadline_ms=...), "'deadline_ms' is missing"),
        (with_headers(index="abc"), "'index' must be an integer, got str 'abc'"),
        (with_headers(index="1"), "'index' must be an integer, got str '1'"),
        (with_headers(index=True), "'index' must be an integer, got bool True"),
        (with_headers(index=1.0), "'index' must be an integer, got float 1.0"),
        (with_headers(index=b"1"), "'index' must be an integer, got bytes"),
        (with_headers(height=None), "'height' must be an integer, got NoneType"),
        (with_headers(width=[3]), "'width' must be an integer, got list"),
        (with_headers(count={"n": 4}), "'count' must be an integer, got dict"),
        (with_headers(index=-1), "index -1 is outside 0..count-1 (count 4)"),
        (with_headers(index=4), "index 4 is outside 0..count-1 (count 4)"),
        (with_headers(count=0, index=0), "index 0 is outside 0..count-1 (count 0)"),
        (with_headers(height=0), "declared shape 0x3 is outside"),
        (with_headers(width=-3), "declared shape 2x-3 is outside"),
        (with_headers(height=10**9, width=10**9), f"outside 1..{MAX_CROP_SIDE} per side"),
        (with_headers(width=MAX_CROP_SIDE + 1), f"outside 1..{MAX_CROP_SIDE} per side"),
        (with_headers(deadline_ms=-5), "deadline_ms -5 is negative"),
        (with_headers(height=3), "body holds 6 bytes, expected 3x3 = 9"),
        (with_headers(height=1, width=1), "body holds 6 bytes, expected 1x1 = 1"),
    ],
)
def test_malformed_headers_are_rejected_saying_why(headers: dict | None, says: str) -> None:
    with pytest.raises(MessageError) as caught:
        decode_crop(good()[0], headers, "req-1", "amq.gen-reply")
    assert not isinstance(caught.value, UnanswerableMessage)
    assert says in str(caught.value)


def test_headers_that_are_not_a_table_are_rejected() -> None:
    with pytest.raises(MessageError, match="headers must be a table, got list"):
        decode_crop(good()[0], [1, 2], "req-1", "q")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"", "body is empty, expected 2x3 = 6 bytes"),
        (b"\x00" * 5, "body holds 5 bytes, expected 2x3 = 6"),
        (b"\x00" * 7, "body holds 7 bytes, expected 2x3 = 6"),
        ("abcdef", "body must be bytes, got str"),
        (None, "body must be bytes, got NoneType"),
    ],
)
def test_a_body_that_does_not_match_the_shape_is_rejected(body: object, says: str) -> None:
    with pytest.raises(MessageError) as caught:
        decode_crop(body, good()[1], "req-1", "q")  # type: ignore[arg-type]
    assert says in str(caught.value)


@pytest.mark.parametrize(
    ("correlation_id", "reply_to", "says"),
    [
        (None, "q", "got NoneType None and str 'q'"),
        ("", "q", "got str '' and str 'q'"),
        ("req-1", None, "got str 'req-1' and NoneType None"),
        ("req-1", "", "and str ''"),
        (b"\xff\xfe", "q", "got bytes b'\\xff\\xfe'"),  # pika's non-UTF-8 short string
        ("req-1", b"\xff", "and bytes b'\\xff'"),
        (7, "q", "got int 7"),
    ],
)
def test_no_usable_reply_address_is_unanswerable(
    correlation_id: object, reply_to: object, says: str
) -> None:
    body, headers = good()
    with pytest.raises(UnanswerableMessage) as caught:
        decode_crop(body, headers, correlation_id, reply_to)  # type: ignore[arg-type]
    assert "non-empty text correlation_id and reply_to" in str(caught.value)
    assert says in str(caught.value)


def test_a_long_bad_value_is_shortened_in_the_message() -> None:
    with pytest.raises(MessageError) as caught:
        decode_crop(good()[0], with_headers(index="x" * 10_000), "req-1", "q")
    assert len(str(caught.value)) < 200


@pytest.mark.parametrize("value", ["abc", True, 1.5, b"1", None, [1], -(2**70)])
def test_header_int_never_raises(value: object) -> None:
    expected = value if isinstance(value, int) and not isinstance(value, bool) else None
    assert header_int({"index": value}, "index") == expected
    assert header_int(None, "index") is None
    assert header_int("not a table", "index") is None


# ---------------------------------------------------------------- reconnect back-off


class RecordingStop(threading.Event):
    """A stop event whose waits return at once and are recorded: the back-off's delays."""

    def __init__(self, stop_after: int) -> None:
        super().__init__()
        self.delays: list[float] = []
        self.stop_after = stop_after

    def wait(self, timeout: float | None = None) -> bool:
        self.delays.append(float(timeout or 0.0))
        if len(self.delays) >= self.stop_after:
            self.set()
        return self.is_set()


def scripted(outcomes: list[str]) -> Callable[[Callable[[], None]], None]:
    """A scripted serve_once: 'fail' raises before connecting, 'drop' connects then loses it,
    'config' raises the queue-configuration error."""
    script = iter(outcomes)

    def serve_once(connected: Callable[[], None]) -> None:
        outcome = next(script)
        if outcome == "drop":
            connected()
        if outcome == "config":
            raise QueueConfigError("queue q exists as a classic queue")
        raise ConnectionError(outcome)

    return serve_once


def test_back_off_doubles_while_the_broker_stays_away() -> None:
    stop = RecordingStop(stop_after=6)
    serve_forever(scripted(["fail"] * 6), stop, logging.getLogger("test"), max_delay_s=4.0)
    assert stop.delays == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]


def test_back_off_starts_over_after_a_good_connection() -> None:
    outcomes = ["fail"] * 5 + ["drop", "fail", "fail", "drop", "drop"]
    stop = RecordingStop(stop_after=len(outcomes))
    serve_forever(scripted(outcomes), stop, logging.getLogger("test"), max_delay_s=10.0)
    assert stop.delays == [0.5, 1.0, 2.0, 4.0, 8.0, 0.5, 1.0, 2.0, 0.5, 0.5]


def test_a_queue_config_error_is_one_clear_log_line_and_a_slow_retry(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stop = RecordingStop(stop_after=3)
    with caplog.at_level(logging.WARNING, logger="test"):
        serve_forever(
            scripted(["config", "drop", "fail"]), stop, logging.getLogger("test"), max_delay_s=8
        )
    assert stop.delays == [8.0, 0.5, 1.0]
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "classic queue" in errors[0].getMessage()
    assert all(r.exc_info is None for r in caplog.records), "no tracebacks in the log"


def test_serve_forever_returns_when_stopped_while_serving() -> None:
    stop = threading.Event()
    calls = []

    def serve_once(connected: Callable[[], None]) -> None:
        calls.append(1)
        connected()
        stop.set()

    serve_forever(serve_once, stop, logging.getLogger("test"))
    assert calls == [1]

"""The HTTP front (common.server) on a light app: slow clients, limits, JSON errors, idle close.

No model: the app is the shared base app with the health routes and one JSON route, served by
the same server class the services run under, on a free loopback port.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import pytest
import requests
from flask import Flask, jsonify, request

from common.config import Settings
from common.errors import error_from_payload
from common.http import add_health_routes, create_base_app, json_body
from common.server import MAX_URL_BYTES, SERVICES, front_error, make_server, resolve_port
from tests.servers import assert_error

SLOW_CLIENTS = 16
SLOW_FOR_S = 5.0
ANSWER_WITHIN_S = 2.0


def light_app(settings: Settings) -> Flask:
    app = create_base_app("front-test", settings)
    add_health_routes(app, lambda: (True, {}))

    @app.post("/echo")
    def echo():
        return jsonify({"echo": json_body(request)})

    return app


@contextmanager
def front(**overrides: object) -> Iterator[tuple[str, int]]:
    """The light app behind our front; yields (base URL, port)."""
    settings = Settings(ocr_http_threads=4, **overrides)
    server = make_server(light_app(settings), settings, "127.0.0.1", 0, service="front-test")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.url, server.effective_port
    finally:
        server.stop()
        thread.join(timeout=10)
        assert not thread.is_alive(), "the server did not stop"


def raw_exchange(port: int, payload: bytes, timeout: float = 5.0) -> tuple[int, dict, bytes]:
    """Send raw bytes, read the whole answer until the server closes; (status, headers, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer and close before it has read everything we send
        data = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:])}
    return status, headers, body


def assert_json_error(answer: tuple[int, dict, bytes], status: int, code: str) -> None:
    got_status, headers, body = answer
    assert got_status == status, body
    assert headers["content-type"].startswith("application/json")
    error = json.loads(body)["error"]
    assert error["code"] == code and error["message"], error


def trickle(port: int, index: int, until: float, errors: list[str]) -> None:
    """A slow client: a partial request, then one byte (or header line) about every second."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            if index % 2:
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
                drip = b"X-Slow: 1\r\n"
            else:
                sock.sendall(
                    b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    b"Content-Length: 1000\r\n\r\n{"
                )
                drip = b" "
            while time.monotonic() < until:
                sock.sendall(drip)
                time.sleep(1.0)
    except OSError as exc:
        errors.append(f"slow client {index}: {exc!r}")


def test_slow_clients_tie_no_thread() -> None:
    """16 slow connections on 4 threads: /healthz and a real POST still answer at once."""
    with front() as (url, port):
        until = time.monotonic() + SLOW_FOR_S
        errors: list[str] = []
        clients = [
            threading.Thread(target=trickle, args=(port, i, until, errors), daemon=True)
            for i in range(SLOW_CLIENTS)
        ]
        for client in clients:
            client.start()
        time.sleep(1.0)  # every slow client is connected and mid-request
        answered = 0
        while time.monotonic() < until - ANSWER_WITHIN_S:
            health = requests.get(f"{url}/healthz", timeout=ANSWER_WITHIN_S)
            assert health.status_code == 200 and health.json() == {"status": "ok"}
            echo = requests.post(f"{url}/echo", json={"n": answered}, timeout=ANSWER_WITHIN_S)
            assert echo.status_code == 200 and echo.json() == {"echo": {"n": answered}}
            answered += 1
            time.sleep(0.5)
        assert answered >= 2
        assert all(client.is_alive() for client in clients), "slow clients ended early"
        for client in clients:
            client.join(timeout=SLOW_FOR_S + 5)
        assert not errors, errors  # the server kept every slow connection open meanwhile


def test_chunked_body_over_the_limit_is_413_json() -> None:
    with front(ocr_max_upload_mb=0.01) as (url, port):  # about 10 KB
        chunk = b"x" * 4096
        body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(8)) + b"0\r\n\r\n"
        answer = raw_exchange(
            port,
            b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n" + body,
        )
        assert_json_error(answer, 413, "payload_too_large")
        # under the limit, a chunked JSON body reaches the app whole
        small = json.dumps({"a": "b" * 100}).encode()
        ok = raw_exchange(
            port,
            b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            + b"%x\r\n%s\r\n0\r\n\r\n"
            % (len(small), small),
        )
        assert ok[0] == 200 and json.loads(ok[2]) == {"echo": {"a": "b" * 100}}
        # a Content-Length over the limit is refused before the body is read
        big = requests.post(
            f"{url}/echo",
            data=b"{" + b" " * 20_000 + b"}",
            headers={"Content-Type": "application/json"},
            timeout=5,
        )
        assert_error(big, 413, "payload_too_large")


def test_huge_header_is_431_json() -> None:
    with front() as (url, _):
        response = requests.get(f"{url}/healthz", headers={"X-Big": "a" * 100_000}, timeout=5)
        assert_error(response, 431, "headers_too_large")


def test_long_url_is_414_json() -> None:
    with front() as (url, _):
        response = requests.get(f"{url}/healthz?q={'a' * 20_000}", timeout=5)
        assert_error(response, 414, "url_too_long")
        near = requests.get(f"{url}/healthz?q={'a' * (MAX_URL_BYTES - 100)}", timeout=5)
        assert near.status_code == 200


@pytest.mark.parametrize(
    "payload",
    [
        b"THIS IS NOT HTTP\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
        b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ],
    ids=["request-line", "content-length", "chunk-size"],
)
def test_malformed_request_is_400_json(payload: bytes) -> None:
    with front() as (_, port):
        assert_json_error(raw_exchange(port, payload), 400, "invalid_request")


def test_idle_connection_is_closed_after_the_client_timeout() -> None:
    with front(ocr_client_timeout_s=1) as (url, port):
        started = time.monotonic()
        with socket.create_connection(("127.0.0.1", port), timeout=10) as idle:
            idle.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # never finishes its headers
            assert idle.recv(1024) == b"", "the server should close, not answer"
        assert time.monotonic() - started < 9
        # a kept-alive connection that goes quiet after its answer is closed too
        with socket.create_connection(("127.0.0.1", port), timeout=10) as quiet:
            quiet.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            data = b""
            while b'"ok"' not in data:
                chunk = quiet.recv(4096)
                assert chunk, data
                data += chunk
            assert quiet.recv(1024) == b""
        assert requests.get(f"{url}/healthz", timeout=5).status_code == 200


def test_a_trickling_client_is_closed_when_its_headers_take_too_long() -> None:
    """Bytes keep coming, but the headers never end: the connection slot is given back."""
    with front(ocr_client_timeout_s=1) as (_, port):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\n")
            closed = False
            for _ in range(40):  # 0.25 s apart: never idle for a whole second
                try:
                    sock.sendall(b"X-a: b\r\n")
                except (BrokenPipeError, ConnectionResetError):
                    closed = True
                    break
                time.sleep(0.25)
            if not closed:
                sock.settimeout(3)
                try:
                    closed = sock.recv(1024) == b""
                except ConnectionResetError:
                    closed = True
            assert closed


def test_stop_finishes_the_request_in_hand() -> None:
    """A graceful stop answers a request already being served before the server returns."""
    settings = Settings(ocr_http_threads=2)
    app = light_app(settings)
    release = threading.Event()

    @app.get("/slow")
    def slow():
        release.wait(5)
        return jsonify({"done": True})

    server = make_server(app, settings, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(requests.get, f"{server.url}/slow", timeout=10)
        time.sleep(0.5)
        server.stop()
        time.sleep(0.5)
        assert thread.is_alive(), "stop must wait for the request in hand"
        release.set()
        assert pending.result().json() == {"done": True}
    thread.join(timeout=10)
    assert not thread.is_alive()


def test_front_errors_pass_through_another_service_unchanged() -> None:
    """The pipeline relays std/str errors by code: the front's codes must be known ones."""
    for status in (400, 413, 414, 431):
        error = front_error(status, Settings().max_upload_bytes + 1)
        assert error.status == status
        rebuilt = error_from_payload(status, error.to_dict())
        assert (rebuilt.status, rebuilt.code) == (status, error.code)


def test_port_zero_means_the_service_default_and_bind_defaults_to_loopback() -> None:
    assert Settings().bind == "127.0.0.1"
    assert {name: resolve_port(name, Settings()) for name in SERVICES} == {
        "pipeline": 5000,
        "std": 5001,
        "str": 5002,
    }
    assert resolve_port("std", Settings(port=6001)) == 6001

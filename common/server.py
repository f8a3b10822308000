"""The HTTP front of every service: waitress, with our limits and our JSON errors.

``python -m common.server std|str|pipeline`` builds the service's app from ``Settings.from_env()``
and serves it on BIND:PORT. waitress reads each request (headers and body) on one asynchronous
loop and hands only complete requests to the OCR_HTTP_THREADS worker threads, so a slow or stalled
client holds a connection, never a thread. What the front itself refuses (too large, malformed,
too long a URL) is answered in the contract's JSON error shape, like the app's own errors.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import math
import resource
import signal
import threading
import time
from collections.abc import Callable

from waitress import wasyncore
from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser
from waitress.server import TcpWSGIServer
from waitress.task import ErrorTask
from waitress.utilities import BadRequest

from common import metrics
from common.config import Settings
from common.errors import (
    HeadersTooLarge,
    InvalidRequest,
    OcrError,
    PayloadTooLarge,
    UrlTooLong,
)

log = logging.getLogger(__name__)

# The app factory and default port of each service, written only here.
SERVICES: dict[str, tuple[str, int]] = {
    "pipeline": ("pipeline.app", 5000),
    "std": ("std_service.app", 5001),
    "str": ("str_service.app", 5002),
}
IDENT = "ocr"
MAX_HEADER_BYTES = 64 * 1024
MAX_URL_BYTES = 8 * 1024
MAX_CONNECTIONS = 1000
LOOP_TIMEOUT_S = 1.0


class UriTooLongError(BadRequest):
    """waitress' error type for a request line whose URL exceeds MAX_URL_BYTES."""

    code = 414
    reason = "URI Too Long"


class FrontRequestParser(HTTPRequestParser):
    """waitress' parser, plus a URL length limit and a start time for the header deadline."""

    def __init__(self, adj: Adjustments) -> None:
        super().__init__(adj)
        self.started = time.monotonic()

    def received(self, data: bytes) -> int:
        consumed = super().received(data)
        uri = getattr(self, "request_uri", "")
        if self.headers_finished and self.error is None and len(uri) > MAX_URL_BYTES:
            self.error = UriTooLongError(f"exceeds {MAX_URL_BYTES} bytes")
            self.completed = True
        return consumed


class JsonErrorTask(ErrorTask):
    """Answers what the front refuses with ``{"error": {"code", "message"}}``, then closes."""

    def execute(self) -> None:
        error = front_error(self.request.error.code, self.channel.adj.max_request_body_size)
        server = self.channel.server
        metrics.ERRORS.labels(getattr(server, "service", "http"), "front", error.code).inc()
        body = json.dumps(error.to_dict()).encode()
        self.status = f"{error.status} {self.request.error.reason}"
        self.response_headers.append(("Content-Type", "application/json"))
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)


class FrontChannel(HTTPChannel):
    parser_class = FrontRequestParser
    error_task_class = JsonErrorTask


class FrontServer(TcpWSGIServer):
    """waitress' TCP server with our channel, a header deadline and a graceful stop."""

    channel_class = FrontChannel

    def __init__(self, app: Callable, adj: Adjustments, service: str, grace_s: float) -> None:
        self.service = service
        self.grace_s = grace_s
        self._stop = threading.Event()
        super().__init__(app, map={}, adj=adj)

    @property
    def url(self) -> str:
        return f"http://{self.effective_host}:{self.effective_port}"

    def maintenance(self, now: float) -> None:
        """Close idle connections, and those whose headers aren't in after channel_timeout."""
        super().maintenance(now)
        cutoff = time.monotonic() - self.adj.channel_timeout
        for channel in self.active_channels.values():
            request = channel.request
            if request is not None and not request.headers_finished and request.started < cutoff:
                channel.will_close = True

    def serve_forever(self) -> None:
        """Serve until ``stop()``, then finish the requests in hand for up to ``grace_s``."""
        while not self._stop.is_set():
            self._loop_once(LOOP_TIMEOUT_S)
        self._drain()

    def stop(self) -> None:
        """Ask ``serve_forever`` to return; safe from a signal handler or another thread."""
        self._stop.set()
        try:
            self.pull_trigger()  # wake the loop now rather than after its poll timeout
        except OSError:
            pass  # already stopped: the trigger is closed

    def _loop_once(self, timeout: float) -> None:
        wasyncore.loop(timeout=timeout, map=self._map, use_poll=True, count=1)

    def _drain(self) -> None:
        self.accepting = False
        self.del_channel()
        self.socket.close()
        deadline = time.monotonic() + self.grace_s
        while time.monotonic() < deadline:
            busy = False
            for channel in list(self.active_channels.values()):
                if channel.requests or channel.total_outbufs_len:
                    busy = True
                else:
                    channel.will_close = True
            if not busy:
                break
            self._loop_once(0.1)
        self._loop_once(0)  # let the idle channels close
        self.task_dispatcher.shutdown(timeout=1)
        self.trigger.close()


def front_error(status: int, max_body: int) -> OcrError:
    """Our error for a status waitress' parser or channel produced."""
    if status == 413:
        limit_mb = (max_body - 1) / (1024 * 1024)
        return PayloadTooLarge(f"request body exceeds OCR_MAX_UPLOAD_MB ({limit_mb:g} MB)")
    if status == 431:
        return HeadersTooLarge(f"request headers exceed {MAX_HEADER_BYTES // 1024} KB")
    if status == 414:
        return UrlTooLong(f"request URL exceeds {MAX_URL_BYTES // 1024} KB")
    if status == 400:
        return InvalidRequest("malformed HTTP request")
    if status == 501:
        error = OcrError("only the chunked Transfer-Encoding is supported")
        error.status, error.code = 501, "not_implemented"
        return error
    return OcrError("internal error; see the service log")


def connection_limit() -> int:
    """Open connections to allow: half the file descriptors this process may hold, capped."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return MAX_CONNECTIONS
    return max(16, min(MAX_CONNECTIONS, soft // 2))


def adjustments(settings: Settings, host: str, port: int) -> Adjustments:
    """waitress' settings from ours; the +1 because waitress refuses a body of exactly the max."""
    timeout_s = max(1, math.ceil(settings.ocr_client_timeout_s))
    return Adjustments(
        host=host,
        port=port,
        threads=settings.ocr_http_threads,
        channel_timeout=timeout_s,
        cleanup_interval=min(30, timeout_s),
        max_request_body_size=settings.max_upload_bytes + 1,
        max_request_header_size=MAX_HEADER_BYTES,
        connection_limit=connection_limit(),
        clear_untrusted_proxy_headers=True,
        asyncore_use_poll=True,
        ident=IDENT,
    )


def make_server(
    app: Callable, settings: Settings, host: str, port: int, service: str = "http"
) -> FrontServer:
    """A bound, listening front for ``app``; run it with ``serve_forever()``."""
    return FrontServer(app, adjustments(settings, host, port), service, settings.ocr_timeout_s)


def resolve_port(service: str, settings: Settings) -> int:
    """PORT, or the service's own default when PORT is 0 (unset)."""
    return settings.port or SERVICES[service][1]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("service", choices=sorted(SERVICES))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    settings = Settings.from_env()
    module = importlib.import_module(SERVICES[args.service][0])
    app = module.create_app(settings)
    server = make_server(
        app, settings, settings.bind, resolve_port(args.service, settings), args.service
    )
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: server.stop())
    log.info(
        "%s serving on %s with %d threads", args.service, server.url, settings.ocr_http_threads
    )
    server.serve_forever()
    log.info("%s stopped", args.service)


if __name__ == "__main__":
    main()

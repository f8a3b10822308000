"""Load test: N documents at concurrency C through /ocr, /pipeline and /batch_ocr.

It answers the study's open questions from real requests: how long CRAFT (STD) and recognition
(STR) take per document, how many boxes a document has, how big the recognition batches get and
how long crops wait for them, and what throughput and tail latency each path gives under load.

    python -m monitoring.loadtest                      # embedded server in this process
    python -m monitoring.loadtest --url http://127.0.0.1:5000 -n 100 -c 1,4,8

Each (endpoint, concurrency) pair is one scenario: C client threads send requests back to back
until N documents have been answered (closed loop). /batch_ocr sends ``--batch-images`` documents
per request. Every endpoint is a target chosen once at the start (``TARGETS``): an HTTP endpoint
of the server, or ``engine``, the embedded server's engine called in process. Writes
``results.json``, ``summary.md`` and PNG plots to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np
import requests
from tqdm import tqdm

from common.params import parse_fields
from monitoring.data import (
    REPO_ROOT,
    DataError,
    default_images_dir,
    image_paths,
    sample_pages,
    take,
)
from web import metrics_view

if TYPE_CHECKING:
    from common.config import Settings
    from pipeline.topology import Topology

DEFAULT_ENDPOINTS = ("ocr", "pipeline", "batch_ocr")
MODES = {"ocr": "sequential", "pipeline": "batched", "batch_ocr": "batched", "engine": "batched"}
WARMUP_TIMEOUT_S = 600.0  # first forward passes are slow
# Metric families whose change over a scenario goes into the report.
WATCHED = (
    "ocr_std_seconds",
    "ocr_str_seconds",
    "ocr_boxes_per_document",
    "ocr_str_batch_size",
    "ocr_bucket_wait_seconds",
    "ocr_str_crops_total",
    "ocr_errors_total",
)


@dataclass
class Document:
    name: str
    blob: bytes


@dataclass
class Record:
    """One request: what was sent, how long it took from the client's side, what came back."""

    endpoint: str
    concurrency: int
    documents: list[str]
    started_s: float  # since the scenario began
    latency_s: float
    status: int  # 0 when no HTTP answer came
    error: str | None = None
    answers: list[dict] = field(default_factory=list)  # per document: boxes, timings, batches


# ------------------------------------------------------------------------------------------
# Prometheus scraping
# ------------------------------------------------------------------------------------------


def parse_metrics(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Prometheus text -> {(sample name, sorted labels): value}, as web/metrics_view.py reads it
    (the one parser of the project, prometheus_client's)."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for sample in metrics_view.parse_metrics(text)
    }


def scrape(url: str | None, timeout_s: float = 5.0) -> dict | None:
    """The samples at ``url``, or None when there is no URL or it did not answer with them."""
    if not url:
        return None
    try:
        return parse_metrics(metrics_view.scrape_text(url, timeout=timeout_s))
    except requests.RequestException:
        return None


def metric_total(values: dict | None, name: str, **labels: str) -> float:
    """Sum of every sample called ``name`` whose labels include ``labels``."""
    return sum(
        (
            value
            for (sample, sample_labels), value in (values or {}).items()
            if sample == name and metrics_view.matches(dict(sample_labels), labels)
        ),
        0.0,
    )


def metric_delta(before: dict | None, after: dict | None) -> dict[str, float]:
    """Change of the watched counters and histogram sums/counts over a scenario."""
    if before is None or after is None:
        return {}
    delta = {}
    for family in WATCHED:
        for suffix in ("_sum", "_count", ""):
            name = family + suffix
            if family.endswith("_total") and suffix:
                continue
            change = metric_total(after, name) - metric_total(before, name)
            if any(key[0] == name for key in after):
                delta[name] = change
    return delta


class DepthSampler:
    """Polls /metrics once a second for ``ocr_queue_depth`` while a scenario runs."""

    def __init__(self, url: str | None, interval_s: float = 1.0) -> None:
        self.url, self.interval_s = url, interval_s
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> DepthSampler:
        if self.url:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            values = scrape(self.url, timeout_s=2.0)
            if values:
                depths = [v for (name, _), v in values.items() if name == "ocr_queue_depth"]
                if depths:
                    self.samples.append(max(depths))


# ------------------------------------------------------------------------------------------
# Sending requests
# ------------------------------------------------------------------------------------------


def _per_document(answer: dict) -> dict:
    timings = answer.get("timings_ms", {})
    return {
        "boxes": len(answer.get("words", [])),
        "std_ms": float(timings.get("std", 0.0)),
        "str_ms": float(timings.get("str", 0.0)),
        "queue_wait_ms": float(timings.get("queue_wait", 0.0)),
        "total_ms": float(timings.get("total", 0.0)),
        "batches": answer.get("batches", []),
    }


def send(
    session: requests.Session,
    base_url: str,
    endpoint: str,
    documents: Sequence[Document],
    params: dict[str, str],
    timeout_s: float,
    headers: dict[str, str],
) -> tuple[int, str | None, list[dict]]:
    """POST one request; returns (status, error message, per-document answers)."""
    field_name = "images" if endpoint == "batch_ocr" else "image"
    files = [(field_name, (doc.name, doc.blob, "application/octet-stream")) for doc in documents]
    try:
        response = session.post(
            f"{base_url}/{endpoint}", files=files, data=params, timeout=timeout_s, headers=headers
        )
    except requests.RequestException as exc:
        return 0, f"{type(exc).__name__}: {exc}", []
    try:
        payload = response.json()
    except ValueError:
        payload = {}
    if response.status_code != 200:
        error = payload.get("error", {}) if isinstance(payload, dict) else {}
        return response.status_code, error.get("code", "http_error"), []
    answers = payload["results"] if endpoint == "batch_ocr" else [payload]
    return 200, None, [_per_document(a) for a in answers]


Answer = tuple[int, str | None, list[dict]]  # (status, error, per-document answers), as send's


class Target(Protocol):
    """What a scenario sends its documents to, ``per_request`` at a time."""

    endpoint: str
    per_request: int

    def send(self, documents: Sequence[Document], timeout_s: float) -> Answer: ...


@dataclass
class HttpTarget:
    """One of the server's HTTP endpoints; every client thread keeps its own session."""

    base_url: str
    endpoint: str
    params: dict[str, str]
    headers: dict[str, str]
    per_request: int = 1
    _local: threading.local = field(default_factory=threading.local, repr=False)

    def send(self, documents: Sequence[Document], timeout_s: float) -> Answer:
        if not hasattr(self._local, "session"):
            self._local.session = requests.Session()
        return send(
            self._local.session,
            self.base_url,
            self.endpoint,
            documents,
            self.params,
            timeout_s,
            self.headers,
        )


@dataclass
class EngineTarget:
    """The embedded server's engine called in process: /pipeline's work without the HTTP around
    it, so the two measure the serving overhead. It runs under the engine's own deadline
    (OCR_TIMEOUT_S), as /pipeline does, so the client's timeout does not apply."""

    read: Callable[[bytes], dict]
    endpoint: str = "engine"
    per_request: int = 1

    def send(self, documents: Sequence[Document], timeout_s: float) -> Answer:
        from common.errors import OcrError

        try:
            return 200, None, [_per_document(self.read(doc.blob)) for doc in documents]
        except OcrError as exc:
            return exc.status, exc.code, []


def run_scenario(
    target: Target,
    concurrency: int,
    documents: Sequence[Document],
    timeout_s: float = 300.0,
    progress: bool = True,
) -> tuple[list[Record], float]:
    """Send every document once to ``target`` with ``concurrency`` clients.

    Returns the records and the wall time from the first request to the last answer.
    """
    groups = [
        documents[i : i + target.per_request] for i in range(0, len(documents), target.per_request)
    ]
    started = time.perf_counter()

    def one(group: Sequence[Document]) -> Record:
        t0 = time.perf_counter()
        status, error, answers = target.send(group, timeout_s)
        return Record(
            endpoint=target.endpoint,
            concurrency=concurrency,
            documents=[d.name for d in group],
            started_s=t0 - started,
            latency_s=time.perf_counter() - t0,
            status=status,
            error=error,
            answers=answers,
        )

    records: list[Record] = []
    bar = tqdm(
        total=len(documents),
        desc=f"/{target.endpoint} C={concurrency}",
        unit="doc",
        disable=not progress,
        file=sys.stderr,
    )
    with bar, ThreadPoolExecutor(max_workers=concurrency) as pool:
        futures = [pool.submit(one, group) for group in groups]
        for future in as_completed(futures):
            record = future.result()
            records.append(record)
            bar.update(len(record.documents))
    wall_s = time.perf_counter() - started
    records.sort(key=lambda r: r.started_s)
    return records, wall_s


# ------------------------------------------------------------------------------------------
# Summaries
# ------------------------------------------------------------------------------------------


def describe(values: Sequence[float]) -> dict[str, float]:
    """mean, p50, p95, p99, min and max of ``values`` (empty: zeros)."""
    if not values:
        return {"n": 0, "mean": 0.0, "p50": 0.0, "p95": 0.0, "p99": 0.0, "min": 0.0, "max": 0.0}
    array = np.asarray(values, dtype=np.float64)
    p50, p95, p99 = np.percentile(array, [50, 95, 99])
    return {
        "n": int(array.size),
        "mean": float(array.mean()),
        "p50": float(p50),
        "p95": float(p95),
        "p99": float(p99),
        "min": float(array.min()),
        "max": float(array.max()),
    }


def summarize(
    records: Sequence[Record],
    wall_s: float,
    endpoint: str,
    concurrency: int,
    metrics: dict[str, float] | None = None,
    depth_samples: Sequence[float] = (),
) -> dict:
    """One scenario's figures; every per-document figure comes from the server's own timings."""
    answers = [a for r in records for a in r.answers]
    ok_requests = [r for r in records if r.status == 200]
    errors: dict[str, int] = {}
    for record in records:
        if record.status != 200:
            key = f"{record.status} {record.error}"
            errors[key] = errors.get(key, 0) + 1
    batches: dict[str, int] = {}
    for answer in answers:
        for batch in answer["batches"]:
            batches[str(batch["id"])] = int(batch["size"])
    sizes = list(batches.values())
    boxes = [a["boxes"] for a in answers]
    total_boxes = sum(boxes)
    str_ms = [a["str_ms"] for a in answers]
    documents = sum(len(r.documents) for r in records)
    metrics = metrics or {}
    wait_count = metrics.get("ocr_bucket_wait_seconds_count", 0.0)
    summary = {
        "endpoint": f"/{endpoint}",
        "mode": MODES[endpoint],
        "concurrency": concurrency,
        "requests": len(records),
        "documents": documents,
        "documents_ok": len(answers),
        "errors": errors,
        "wall_s": wall_s,
        "throughput_docs_per_s": len(answers) / wall_s if wall_s > 0 else 0.0,
        "throughput_requests_per_s": len(ok_requests) / wall_s if wall_s > 0 else 0.0,
        "latency_s": describe([r.latency_s for r in ok_requests]),
        "std_s_per_doc": describe([a["std_ms"] / 1000.0 for a in answers]),
        "str_s_per_doc": describe([ms / 1000.0 for ms in str_ms]),
        "queue_wait_s_per_doc": describe([a["queue_wait_ms"] / 1000.0 for a in answers]),
        "server_total_s_per_doc": describe([a["total_ms"] / 1000.0 for a in answers]),
        "boxes_per_doc": describe(boxes),
        # Sequential: every box is its own recognition call, so this is t_str1.
        "str_s_per_box": (sum(str_ms) / 1000.0 / total_boxes) if total_boxes else 0.0,
        "batches": {
            "count": len(sizes),
            "sizes": describe(sizes),
            "histogram": {str(k): sizes.count(k) for k in sorted(set(sizes))},
        },
        "bucket_wait_s": {
            "count": wait_count,
            "mean": metrics.get("ocr_bucket_wait_seconds_sum", 0.0) / wait_count
            if wait_count
            else 0.0,
        },
        "queue_depth": describe(list(depth_samples)),
        "metrics_delta": metrics,
    }
    return summary


# ------------------------------------------------------------------------------------------
# The run
# ------------------------------------------------------------------------------------------


def environment(threads: int | None) -> dict:
    """What the figures were measured on; load average shows how busy the cores were."""
    info = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu_model": _cpu_model(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "git_commit": _git_commit(),
    }
    if threads is not None:
        info["torch_threads"] = threads
    return info


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except OSError:
        return None
    return out.stdout.strip() or None


@dataclass
class Options:
    url: str | None = None
    images: str | None = None
    documents: int = 16
    concurrency: tuple[int, ...] = (1, 4)
    endpoints: tuple[str, ...] = DEFAULT_ENDPOINTS
    batch_images: int = 4
    params: dict[str, str] = field(default_factory=dict)
    warmup: int = 1
    timeout_s: float = 300.0
    threads: int = 2
    api_key: str | None = None
    metrics_url: str | None = None
    out: str | None = None
    plots: bool = True
    progress: bool = True
    command: str = ""


def engine_answer(
    topology: Topology, settings: Settings, params: dict[str, str], blob: bytes
) -> dict:
    """What /pipeline answers for ``blob``, asked of the engine itself: the same parameters and
    deadline the HTTP handler would give it, without HTTP."""
    from common.params import DetectionParams

    detection = parse_fields(DetectionParams, params, settings.profile.detection)
    deadline = time.time() + settings.ocr_timeout_s
    return topology.pipeline.ocr_batched(blob, detection, deadline).export()


class Server(Protocol):
    """Where the targets send to: entered, it serves ``url`` until left."""

    url: str

    def engine(self, params: dict[str, str]) -> Callable[[bytes], dict]:
        """The in-process engine's answer for one image, for the engine target."""
        ...

    def __enter__(self) -> str: ...

    def __exit__(self, *exc: object) -> None: ...


class RemoteServer:
    """A pipeline already running at ``url`` (``--url``); its engine is out of reach."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def engine(self, params: dict[str, str]) -> Callable[[bytes], dict]:
        raise DataError("the engine scenario measures the embedded server: drop --url")

    def __enter__(self) -> str:
        return self.url

    def __exit__(self, *exc: object) -> None:
        pass


class EmbeddedServer:
    """The embedded pipeline (both models, in-process bucket) on a free loopback port.

    The tool builds the topology itself and hands it to the app, so the engine target calls the
    very engine the server serves. Its jobs database is a throwaway, like the server: nothing
    is left in the folder the tool runs from.
    """

    def __init__(self, threads: int) -> None:
        from werkzeug.serving import make_server

        from common.config import Settings
        from pipeline.app import create_app
        from pipeline.topology import build_topology

        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one access line per request
        self._jobs_dir = tempfile.TemporaryDirectory(prefix="loadtest-jobs-")
        self.settings = Settings.from_env().with_overrides(
            ocr_mode="embedded",
            ocr_threads=threads,
            ocr_jobs_db=f"sqlite:///{Path(self._jobs_dir.name) / 'jobs.sqlite3'}",
        )
        self.topology = build_topology(self.settings)
        app = create_app(self.settings, self.topology)
        self._server = make_server("127.0.0.1", 0, app, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"

    def engine(self, params: dict[str, str]) -> Callable[[bytes], dict]:
        return partial(engine_answer, self.topology, self.settings, params)

    def __enter__(self) -> str:
        self._thread.start()
        return self.url

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._thread.join(timeout=10)
        self.topology.close()
        self._jobs_dir.cleanup()


TargetFactory = Callable[[Server, Options, dict[str, str]], Target]


def _http_target(endpoint: str) -> TargetFactory:
    """An HTTP endpoint's target; /batch_ocr carries ``--batch-images`` documents a request."""

    def make(server: Server, options: Options, headers: dict[str, str]) -> Target:
        per_request = options.batch_images if endpoint == "batch_ocr" else 1
        return HttpTarget(server.url, endpoint, options.params, headers, per_request)

    return make


def _engine_target(server: Server, options: Options, headers: dict[str, str]) -> Target:
    return EngineTarget(server.engine(options.params))


# Every scenario name and what it sends to; "engine" is no endpoint (see EngineTarget).
TARGETS: dict[str, TargetFactory] = {
    **{endpoint: _http_target(endpoint) for endpoint in ("ocr", "pipeline", "batch_ocr")},
    "engine": _engine_target,
}
ENDPOINTS = tuple(TARGETS)


def choose_images(images: str | None, out_dir: Path) -> list[Path]:
    """The pages to send: ``--images``, else the shared dev images, else sample pages drawn
    into ``out_dir/sample-pages`` (said on stderr), so a clone without shared/ can still run
    ``make bench``. A missing ``--images`` folder stays an error: it was asked for."""
    if images:
        return image_paths(images)
    try:
        return image_paths(None)
    except DataError:
        paths = sample_pages(out_dir / "sample-pages")
        print(
            f"dev images not found at {default_images_dir()} (set OCR_SHARED_DATA to the shared "
            f"data folder, or pass --images DIR); using {len(paths)} sample pages drawn by "
            f"pipeline.demo instead, in {paths[0].parent}",
            file=sys.stderr,
        )
        return paths


def run(options: Options) -> dict:
    """Run every scenario and write the report; returns the results dict."""
    from monitoring import report

    out_dir = Path(options.out) if options.out else default_out_dir("loadtest")
    paths = choose_images(options.images, out_dir)  # before mkdir: no empty report on an error
    out_dir.mkdir(parents=True, exist_ok=True)
    documents = [Document(p.name, p.read_bytes()) for p in take(paths, options.documents)]
    headers = {"X-API-Key": options.api_key} if options.api_key else {}
    server: Server = RemoteServer(options.url) if options.url else EmbeddedServer(options.threads)
    targets = [TARGETS[name](server, options, headers) for name in options.endpoints]
    with server as base_url:
        metrics_url = options.metrics_url or f"{base_url}/metrics"
        for target in targets:  # first forward passes are slow; keep them out
            for doc in documents[: options.warmup]:
                target.send([doc], WARMUP_TIMEOUT_S)
        env_before = environment(options.threads if not options.url else None)
        scenarios = []
        all_records: list[Record] = []
        for concurrency in options.concurrency:
            for target in targets:
                before = scrape(metrics_url)
                with DepthSampler(metrics_url) as sampler:
                    records, wall_s = run_scenario(
                        target, concurrency, documents, options.timeout_s, options.progress
                    )
                delta = metric_delta(before, scrape(metrics_url))
                scenarios.append(
                    summarize(records, wall_s, target.endpoint, concurrency, delta, sampler.samples)
                )
                all_records.extend(records)
    results = {
        "tool": "monitoring.loadtest",
        "command": options.command,
        "created": datetime.now().isoformat(timespec="seconds"),
        "target": options.url or "embedded (in-process pipeline, OCR_MODE=embedded)",
        "environment": env_before | {"load_average_end": list(os.getloadavg())},
        "config": {
            "documents": options.documents,
            "distinct_images": len({d.name for d in documents}),
            "images_dir": str(paths[0].parent),
            "concurrency": list(options.concurrency),
            "endpoints": [f"/{e}" for e in options.endpoints],
            "batch_images": options.batch_images,
            "params": options.params,
            "warmup": options.warmup,
        },
        "scenarios": scenarios,
        "records": [asdict(r) for r in all_records],
    }
    (out_dir / "results.json").write_text(json.dumps(results, indent=1))
    markdown = report.loadtest_markdown(results)
    (out_dir / "summary.md").write_text(markdown)
    if options.plots:
        results["plots"] = [str(p) for p in report.loadtest_plots(results, out_dir)]
    results["out_dir"] = str(out_dir)
    return results


def default_out_dir(kind: str) -> Path:
    return REPO_ROOT / "reports" / f"{kind}-{datetime.now():%Y%m%d-%H%M%S}"


def _int_list(text: str) -> tuple[int, ...]:
    values = tuple(int(v) for v in text.split(",") if v.strip())
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("give positive integers, comma-separated")
    return values


def _endpoints(text: str) -> tuple[str, ...]:
    names = tuple(v.strip().lstrip("/") for v in text.split(",") if v.strip())
    unknown = [n for n in names if n not in ENDPOINTS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"endpoints are {', '.join(ENDPOINTS)}")
    return names


class _DefaultsHelp(argparse.ArgumentDefaultsHelpFormatter):
    """Appends "(default: X)" only where the help says nothing of its default and there is one
    worth showing (not None, not a flag's False)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text or action.default in (None, False, argparse.SUPPRESS):
            return text
        return super()._get_help_string(action)


def parse_args(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m monitoring.loadtest",
        description=__doc__.split("\n\n")[0],
        formatter_class=_DefaultsHelp,
    )
    parser.add_argument("--url", help="pipeline base URL (default: start an embedded server)")
    parser.add_argument(
        "--images",
        help="folder of page images (default: $OCR_SHARED_DATA/dev/images or "
        "../shared/data/dev/images; without them, sample pages drawn by pipeline.demo)",
    )
    parser.add_argument("-n", "--documents", type=int, default=16, help="documents per scenario")
    parser.add_argument(
        "-c", "--concurrency", type=_int_list, default=(1, 4), help="e.g. 1,4,8 (default: 1,4)"
    )
    parser.add_argument(
        "--endpoints",
        type=_endpoints,
        default=DEFAULT_ENDPOINTS,
        help="comma-separated; 'engine' calls the embedded server's engine in process "
        f"(default: {','.join(DEFAULT_ENDPOINTS)})",
    )
    parser.add_argument("--batch-images", type=int, default=4, help="documents per /batch_ocr")
    parser.add_argument("--canvas-size", type=int, help="CRAFT canvas_size (server default 1280)")
    parser.add_argument("--mag-ratio", type=float, help="CRAFT mag_ratio (server default 1.5)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed documents per endpoint")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per request")
    parser.add_argument(
        "--threads", type=int, default=2, help="torch threads of the embedded server"
    )
    parser.add_argument(
        "--api-key", default=os.environ.get("OCR_API_KEY"), help="X-API-Key (default: $OCR_API_KEY)"
    )
    parser.add_argument("--metrics-url", help="Prometheus endpoint (default: URL/metrics)")
    parser.add_argument("--out", help="output folder (default: reports/loadtest-TIMESTAMP)")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if args.documents < 1 or args.batch_images < 1:
        parser.error("--documents and --batch-images must be >= 1")
    params = {}
    if args.canvas_size is not None:
        params["canvas_size"] = str(args.canvas_size)
    if args.mag_ratio is not None:
        params["mag_ratio"] = str(args.mag_ratio)
    shown = " ".join(argv) if argv is not None else " ".join(sys.argv[1:])
    return Options(
        url=args.url,
        images=args.images,
        documents=args.documents,
        concurrency=args.concurrency,
        endpoints=args.endpoints,
        batch_images=args.batch_images,
        params=params,
        warmup=max(0, args.warmup),
        timeout_s=args.timeout,
        threads=args.threads,
        api_key=args.api_key,
        metrics_url=args.metrics_url,
        out=args.out,
        plots=not args.no_plots,
        progress=not args.quiet,
        command=f"python -m monitoring.loadtest {shown}".strip(),
    )


def run_and_print(run: Callable[[], dict], plots: bool) -> dict | None:
    """A tool's run, then its summary.md and what it wrote, on stdout; None (and the reason on
    stderr) when its data is missing, which the tools exit on with status 2."""
    try:
        results = run()
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None
    out_dir = Path(results["out_dir"])
    print((out_dir / "summary.md").read_text())
    print(f"written: {out_dir}/results.json, summary.md" + (", *.png" if plots else ""))
    return results


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
    results = run_and_print(partial(run, options), options.plots)
    if results is None:
        return 2
    failed = sum(s["documents"] - s["documents_ok"] for s in results["scenarios"])
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())

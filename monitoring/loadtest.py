"""Load test: N documents at concurrency C through /ocr, /pipeline and /batch_ocr.

It answers the study's open questions from real requests: how long CRAFT (STD) and recognition
(STR) take per document, how many boxes a document has, how big the recognition batches get and
how long crops wait for them, and what throughput and tail latency each path gives under load.

    python -m monitoring.loadtest                      # embedded server in this process
    python -m monitoring.loadtest --url http://127.0.0.1:5000 -n 100 -c 1,4,8

Each (endpoint, concurrency) pair is one scenario: C client threads send requests back to back
until N documents have been answered (closed loop). /batch_ocr sends ``--batch-images`` documents
per request. Writes ``results.json``, ``summary.md`` and PNG plots to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
import requests
from prometheus_client.parser import text_string_to_metric_families
from tqdm import tqdm

from monitoring.data import (
    REPO_ROOT,
    DataError,
    default_images_dir,
    image_paths,
    sample_pages,
    take,
)

ENDPOINTS = ("ocr", "pipeline", "batch_ocr", "engine")
DEFAULT_ENDPOINTS = ("ocr", "pipeline", "batch_ocr")
MODES = {"ocr": "sequential", "pipeline": "batched", "batch_ocr": "batched", "engine": "batched"}
# "engine" is no endpoint: it calls the embedded server's OcrPipeline.ocr_batched in process, the
# throughput /pipeline would have without HTTP, so the two measure the serving overhead.
Direct = Callable[[bytes], dict]
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
    """Prometheus text -> {(sample name, sorted labels): value}."""
    values = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            values[(sample.name, tuple(sorted(sample.labels.items())))] = float(sample.value)
    return values


def scrape(url: str | None, timeout_s: float = 5.0) -> dict | None:
    if not url:
        return None
    try:
        response = requests.get(url, timeout=timeout_s)
        response.raise_for_status()
    except requests.RequestException:
        return None
    return parse_metrics(response.text)


def metric_total(values: dict | None, name: str, **labels: str) -> float:
    """Sum of every sample called ``name`` whose labels include ``labels``."""
    if not values:
        return 0.0
    total = 0.0
    for (sample, sample_labels), value in values.items():
        if sample == name and all(dict(sample_labels).get(k) == v for k, v in labels.items()):
            total += value
    return total


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


def call_engine(
    direct: Direct | None, documents: Sequence[Document]
) -> tuple[int, str | None, list[dict]]:
    """The in-process engine's answer for one document, shaped like ``send``'s."""
    from common.errors import OcrError

    if direct is None:
        raise ValueError("the engine scenario needs the embedded server (no --url)")
    try:
        return 200, None, [_per_document(direct(doc.blob)) for doc in documents]
    except OcrError as exc:
        return exc.status, exc.code, []


def run_scenario(
    base_url: str,
    endpoint: str,
    concurrency: int,
    documents: Sequence[Document],
    params: dict[str, str],
    batch_images: int = 4,
    timeout_s: float = 300.0,
    headers: dict[str, str] | None = None,
    progress: bool = True,
    direct: Direct | None = None,
) -> tuple[list[Record], float]:
    """Send every document once through ``endpoint`` with ``concurrency`` clients.

    Returns the records and the wall time from the first request to the last answer.
    """
    per_request = batch_images if endpoint == "batch_ocr" else 1
    groups = [documents[i : i + per_request] for i in range(0, len(documents), per_request)]
    local = threading.local()
    started = time.perf_counter()

    def one(group: Sequence[Document]) -> Record:
        if not hasattr(local, "session"):
            local.session = requests.Session()
        t0 = time.perf_counter()
        if endpoint == "engine":
            status, error, answers = call_engine(direct, group)
        else:
            status, error, answers = send(
                local.session, base_url, endpoint, group, params, timeout_s, headers or {}
            )
        return Record(
            endpoint=endpoint,
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
        desc=f"/{endpoint} C={concurrency}",
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


def embedded_server(threads: int) -> AbstractContextManager[str]:
    """The embedded pipeline (both models, in-process bucket) on a free loopback port."""
    from werkzeug.serving import make_server

    from common.config import Settings
    from pipeline.app import create_app

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one access line per request
    settings = Settings.from_env().with_overrides(ocr_mode="embedded", ocr_threads=threads)
    app = create_app(settings)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)

    class _Serving:
        engine = app.extensions["ocr_engine"]

        def __enter__(self) -> str:
            thread.start()
            return f"http://127.0.0.1:{server.server_port}"

        def __exit__(self, *exc: object) -> None:
            server.shutdown()
            thread.join(timeout=10)
            app.extensions["ocr_engine"].close()

    return _Serving()


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
    server: AbstractContextManager[str] = (
        nullcontext(options.url.rstrip("/")) if options.url else embedded_server(options.threads)
    )
    engine = getattr(server, "engine", None)
    direct = (lambda blob: engine.pipeline.ocr_batched(blob, options.params)) if engine else None
    if "engine" in options.endpoints and direct is None:
        raise DataError("the engine scenario measures the embedded server: drop --url")
    with server as base_url:
        metrics_url = options.metrics_url or f"{base_url}/metrics"
        for endpoint in options.endpoints:  # first forward passes are slow; keep them out
            for doc in documents[: options.warmup]:
                if endpoint == "engine":
                    call_engine(direct, [doc])
                else:
                    send(
                        requests.Session(), base_url, endpoint, [doc], options.params, 600, headers
                    )
        env_before = environment(options.threads if not options.url else None)
        scenarios = []
        all_records: list[Record] = []
        for concurrency in options.concurrency:
            for endpoint in options.endpoints:
                before = scrape(metrics_url)
                with DepthSampler(metrics_url) as sampler:
                    records, wall_s = run_scenario(
                        base_url,
                        endpoint,
                        concurrency,
                        documents,
                        options.params,
                        options.batch_images,
                        options.timeout_s,
                        headers,
                        options.progress,
                        direct,
                    )
                delta = metric_delta(before, scrape(metrics_url))
                scenarios.append(
                    summarize(records, wall_s, endpoint, concurrency, delta, sampler.samples)
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


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
    try:
        results = run(options)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out_dir = Path(results["out_dir"])
    print((out_dir / "summary.md").read_text())
    print(f"written: {out_dir}/results.json, summary.md" + (", *.png" if options.plots else ""))
    failed = sum(s["documents"] - s["documents_ok"] for s in results["scenarios"])
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Median /detection latency on the dev images, over real HTTP, at several canvas sizes.

Starts the CRAFT service in this process on a free loopback port (OCR_THREADS torch threads),
posts every dev image once per canvas size (after one warm-up request) and prints the median,
p95 and mean latency as the client saw them, plus the service's own network/post-processing
split.

    python -m monitoring.bench_std [--canvas-sizes 1280,960] [--threads 2] [--images DIR]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import requests
from werkzeug.serving import make_server

from common.config import Settings
from monitoring.data import DataError, image_paths


def measure(url: str, paths: Sequence[Path], canvas: int) -> dict:
    session = requests.Session()
    latencies, network, post = [], [], []
    for path in paths:
        started = time.perf_counter()
        response = session.post(
            f"{url}/detection",
            files={"image": (path.name, path.read_bytes())},
            data={"canvas_size": str(canvas)},
            timeout=600,
        )
        latencies.append(time.perf_counter() - started)
        response.raise_for_status()
        timings = response.json()["timings_ms"]
        network.append(timings["network"] / 1000)
        post.append(timings["postprocess"] / 1000)
    ordered = sorted(latencies)
    return {
        "canvas_size": canvas,
        "images": len(paths),
        "median_s": statistics.median(latencies),
        "p95_s": ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))],
        "mean_s": statistics.fmean(latencies),
        "network_median_s": statistics.median(network),
        "postprocess_median_s": statistics.median(post),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m monitoring.bench_std", description=__doc__)
    parser.add_argument("--images", help="folder of page images (default: shared dev images)")
    parser.add_argument("--canvas-sizes", default="1280,960")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (OCR_THREADS)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    try:
        paths = image_paths(args.images)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    from std_service.app import create_app

    settings = Settings.from_env().with_overrides(ocr_threads=args.threads)
    server = make_server("127.0.0.1", 0, create_app(settings), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}"
    try:
        requests.post(
            f"{url}/detection", files={"image": ("w", paths[0].read_bytes())}, timeout=600
        ).raise_for_status()
        rows = [measure(url, paths, int(c)) for c in args.canvas_sizes.split(",")]
    finally:
        server.shutdown()
    print(f"/detection over HTTP, {len(paths)} dev images, OCR_THREADS={args.threads}")
    print("| canvas | median s | p95 s | mean s | network median s | post-processing median s |")
    print("|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['canvas_size']} | {r['median_s']:.2f} | {r['p95_s']:.2f} | {r['mean_s']:.2f} "
            f"| {r['network_median_s']:.2f} | {r['postprocess_median_s']:.3f} |"
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The embedded server's memory over many requests: its peak, and whether it grows.

    python -m monitoring.soak                     # 200 /pipeline requests, the dev images
    python -m monitoring.soak -n 500 --images DIR --profile official

Starts ``python -m common.server pipeline`` (embedded, the given profile, 2 threads) on a free
port, waits for /readyz, then sends the images in turn, one request at a time, and reads the
server's resident memory from /proc after each answer (VmRSS now, VmHWM its peak since start,
model loading included). Growth is the mean RSS of the last tenth of the requests minus that of
the first tenth after a warm-up of one pass over the images. Prints and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import requests

from monitoring.chaos_broker import free_port
from monitoring.data import REPO_ROOT, DataError, image_paths


def _status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def soak(images: list[Path], count: int, profile: str, threads: int) -> dict:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OCR_")} | {
        "OCR_MODE": "embedded",
        "OCR_PROFILE": profile,
        "OCR_THREADS": str(threads),
        "OCR_DEVICE": "cpu",
        "PORT": str(port),
        "BIND": "127.0.0.1",
        "PYTHONPATH": str(REPO_ROOT),
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "common.server", "pipeline"],
        env=env,
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        started = time.monotonic()
        while True:
            try:
                if requests.get(url + "/readyz", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if server.poll() is not None or time.monotonic() - started > 300:
                raise RuntimeError("the pipeline server did not become ready")
            time.sleep(0.5)
        ready_s = time.monotonic() - started
        at_ready = (
            _status_kb(server.pid, "VmRSS") / 1024.0,
            _status_kb(server.pid, "VmHWM") / 1024.0,
        )
        blobs = [path.read_bytes() for path in images]
        for blob in blobs:  # warm-up: one pass, not counted
            _post(url, blob)
        rss, failures = [], 0
        for index in range(count):
            if _post(url, blobs[index % len(blobs)]) != 200:
                failures += 1
            rss.append(_status_kb(server.pid, "VmRSS") / 1024.0)
        tenth = max(1, count // 10)
        return {
            "requests": count,
            "failures": failures,
            "profile": profile,
            "threads": threads,
            "ready_s": round(ready_s, 1),
            "rss_at_ready_mb": round(at_ready[0], 1),
            "peak_rss_at_ready_mb": round(at_ready[1], 1),
            "rss_by_tenth_mb": [
                round(statistics.mean(rss[i : i + tenth]), 1) for i in range(0, count, tenth)
            ],
            "peak_rss_mb": round(_status_kb(server.pid, "VmHWM") / 1024.0, 1),
            "rss_first_mb": round(statistics.mean(rss[:tenth]), 1),
            "rss_last_mb": round(statistics.mean(rss[-tenth:]), 1),
            "growth_mb": round(statistics.mean(rss[-tenth:]) - statistics.mean(rss[:tenth]), 1),
        }
    finally:
        server.terminate()
        server.wait(timeout=60)


def _post(url: str, blob: bytes) -> int:
    files = {"image": ("page", blob)}
    return requests.post(url + "/pipeline", files=files, timeout=120).status_code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-n", "--requests", type=int, default=200)
    parser.add_argument("--images", help="a folder of pages (default: the dev images)")
    parser.add_argument("--profile", default="fast", choices=("fast", "official"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "reports" / "soak.json")
    args = parser.parse_args(argv)
    try:
        images = image_paths(args.images)
    except DataError as error:
        print(error, file=sys.stderr)
        return 2
    result = soak(images, args.requests, args.profile, args.threads)
    print(json.dumps(result, indent=1))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

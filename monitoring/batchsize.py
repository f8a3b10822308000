"""How large a recognition batch should be, and how long the bucket should wait to fill one.

Three studies on real word crops (cut from the dev labels' ground-truth quads, so CRAFT's time
stays out of them):

1. Throughput curve (every device): crops/s of ``Recognizer.recognize`` called on chunks of B
   crops, the way the bucket calls it, for B = 1 ... 350. On CPU the answer is the knee: the
   smallest B within 10 % of the best throughput (memory is not the limit there).
2. Memory (CUDA only): the largest B that fits, found by doubling then bisection on one forward
   pass at a fixed padded width, catching ``torch.cuda.OutOfMemoryError``. Peak memory per B
   (``max_memory_allocated``) gives the memory per crop, set against the original study's
   estimate of 3 x 64 x 100 x 4 bytes; ``mem_get_info`` gives what the card had free.
3. Bucket wait (``--sweep``): documents of real sizes arrive at random (Poisson) at several
   loads; the in-process bucket batches them with STR_MAX_WAIT_MS in a list, fixed and adaptive.
   It reports throughput, latency percentiles, batch sizes and bucket wait per setting.

    python -m monitoring.batchsize                    # CPU curve
    python -m monitoring.batchsize --sweep            # ... and the bucket-wait sweep
    python -m monitoring.batchsize --device cuda      # curve + memory bisection on the GPU

Writes ``results.json``, ``summary.md`` and PNG plots to ``--out`` (default reports/batchsize-*).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import re
import statistics
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from monitoring.data import per_document_crop_counts, word_crops
from monitoring.loadtest import default_out_dir, describe, environment, run_and_print

if TYPE_CHECKING:
    from str_service.recognizer import Recognizer

ORIGINAL_BYTES_PER_CROP = 3 * 64 * 100 * 4  # the study's estimate: a 3x64x100 float32 input
DEFAULT_SIZES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 350)
KNEE_FRACTION = 0.9


# ------------------------------------------------------------------------------------------
# 1. Throughput against batch size
# ------------------------------------------------------------------------------------------


def knee(rows: Sequence[dict], fraction: float = KNEE_FRACTION) -> int | None:
    """The smallest batch size whose throughput reaches ``fraction`` of the best one.

    Past it, a bigger batch buys little throughput but still makes crops wait longer to fill it.
    """
    if not rows:
        return None
    best = max(r["crops_per_s"] for r in rows)
    for row in sorted(rows, key=lambda r: r["batch_size"]):
        if row["crops_per_s"] >= fraction * best:
            return int(row["batch_size"])
    return None


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class PeakRss:
    """Peak resident memory of this process (Linux VmHWM), resettable via /proc/self/clear_refs.

    On CPU that is where a batch's activations live; None where the kernel doesn't offer it.
    """

    def __init__(self) -> None:
        self.available = self._read() is not None and self.reset()

    @staticmethod
    def _read() -> int | None:
        try:
            match = re.search(r"VmHWM:\s+(\d+) kB", Path("/proc/self/status").read_text())
        except OSError:
            return None
        return int(match.group(1)) * 1024 if match else None

    def reset(self) -> bool:
        try:
            Path("/proc/self/clear_refs").write_text("5")
        except OSError:
            return False
        return True

    def current(self) -> int | None:
        try:
            match = re.search(r"VmRSS:\s+(\d+) kB", Path("/proc/self/status").read_text())
        except OSError:
            return None
        return int(match.group(1)) * 1024 if match else None

    def peak(self) -> int | None:
        return self._read() if self.available else None


def throughput_curve(
    recognizer: Recognizer,
    crops: Sequence[np.ndarray],
    sizes: Sequence[int],
    repeat: int = 1,
    progress: Callable[[str], None] | None = None,
) -> list[dict]:
    """Time ``recognize`` on consecutive chunks of B crops (one call per chunk, like one bucket
    batch) over the same crop list for every B; best of ``repeat`` passes."""
    device = recognizer.device
    rss = PeakRss() if device.type == "cpu" else None
    rows = []
    for size in sizes:
        chunks = [crops[i : i + size] for i in range(0, len(crops), size)]
        full = [c for c in chunks if len(c) == size] or chunks
        best: dict | None = None
        for _ in range(max(1, repeat)):
            gc.collect()
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
                base = torch.cuda.memory_allocated(device)
            else:
                base = rss.current() if rss else None
                if rss:
                    rss.reset()
            forwards: list[int] = []
            _sync(device)
            started = time.perf_counter()
            for chunk in full:
                forwards += recognizer.recognize(chunk, max_batch=size).forward_passes
            _sync(device)
            seconds = time.perf_counter() - started
            count = sum(len(c) for c in full)
            row = {
                "batch_size": size,
                "batches": len(full),
                "crops": count,
                "seconds": seconds,
                "seconds_per_batch": seconds / len(full),
                "ms_per_crop": 1000.0 * seconds / count,
                "crops_per_s": count / seconds,
                "forwards": len(forwards),
                "mean_forward_size": statistics.fmean(forwards) if forwards else 0.0,
            }
            if device.type == "cuda":
                peak = torch.cuda.max_memory_allocated(device)
                row["peak_extra_mib"] = (peak - base) / 2**20
            elif rss and rss.available and base is not None:
                peak = rss.peak()
                row["peak_extra_mib"] = max(0, (peak or base) - base) / 2**20
            if best is None or row["seconds"] < best["seconds"]:
                best = row
        assert best is not None
        rows.append(best)
        if progress:
            progress(
                f"B={size:>4}: {best['crops_per_s']:7.1f} crops/s, "
                f"{best['seconds_per_batch'] * 1000:8.1f} ms per batch, "
                f"mean forward {best['mean_forward_size']:.1f}"
            )
    return rows


# ------------------------------------------------------------------------------------------
# 2. CUDA memory: the largest batch that fits
# ------------------------------------------------------------------------------------------


@dataclass
class Probe:
    batch: int
    ok: bool
    peak_extra_bytes: int = 0
    seconds: float = 0.0
    error: str = ""


def _is_oom(exc: BaseException) -> bool:
    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return True
    text = str(exc)
    # cuDNN/cuBLAS report exhaustion through their own status codes.
    return "out of memory" in text or "CUDNN_STATUS_ALLOC_FAILED" in text


def probe_forward(
    model: torch.nn.Module, device: torch.device, batch: int, height: int, width: int
) -> Probe:
    """One forward pass of ``batch`` crops of ``height`` x ``width`` on ``device``."""
    tensor = None
    try:
        torch.cuda.empty_cache()
        torch.cuda.synchronize(device)
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        started = time.perf_counter()
        with torch.inference_mode():
            tensor = torch.randn(batch, 1, height, width, device=device)
            probs = torch.softmax(model(tensor).float(), dim=2)
            del probs
        torch.cuda.synchronize(device)
        seconds = time.perf_counter() - started
        peak = torch.cuda.max_memory_allocated(device) - base
        return Probe(batch, True, int(peak), seconds)
    except (torch.cuda.OutOfMemoryError, RuntimeError) as exc:
        reason = "out of memory" if _is_oom(exc) else f"{type(exc).__name__}: {str(exc)[:200]}"
        return Probe(batch, False, error=reason)
    finally:
        del tensor
        gc.collect()
        torch.cuda.empty_cache()
        torch.cuda.synchronize(device)


@dataclass
class Search:
    """Outcome of ``find_max_batch``: the largest B that fitted and the first that did not."""

    largest: int
    first_failure: int | None
    probes: list[Probe]
    stopped: str  # "converged", "cap" or "time budget"


def find_max_batch(
    try_batch: Callable[[int], Probe],
    free_bytes: float,
    calibration: Sequence[int] = (64, 256),
    cap: int = 1 << 22,
    tolerance: float = 0.01,
    deadline: float | None = None,
    on_probe: Callable[[Probe], None] | None = None,
) -> Search:
    """Largest B for which ``try_batch`` succeeds, in few probes near the limit.

    Near-capacity forwards are the slow and risky ones, so instead of doubling from 1: fit memory
    against B on two small batches, predict where ``free_bytes`` runs out, step by 10 % from just
    below the prediction to bracket the limit, then bisect to ``tolerance``. ``deadline``
    (time.monotonic seconds) stops early with the bracket found so far.
    """
    probes: list[Probe] = []

    def attempt(batch: int) -> Probe:
        probe = try_batch(batch)
        probes.append(probe)
        if on_probe:
            on_probe(probe)
        return probe

    def out_of_time() -> bool:
        return deadline is not None and time.monotonic() >= deadline

    low, high = 0, None
    for batch in sorted(set(calibration)):
        if batch > cap:
            break
        if attempt(batch).ok:
            low = batch
        else:
            high = batch
            break
    if low == 0:  # not even the smallest calibration batch fits: halve down to 1
        batch = min(calibration) // 2
        while batch >= 1 and not attempt(batch).ok:
            high, batch = batch, batch // 2
        low = max(batch, 0)
    if high is None:  # step up by 10 % from just below the prediction until one fails
        per_crop = bytes_per_crop(probes)
        fixed = min(p.peak_extra_bytes for p in probes if p.ok)
        guess = int((free_bytes - fixed) / per_crop) if per_crop else cap
        batch = min(cap, max(low + 1, int(guess * 0.95)))
        while high is None and not out_of_time():
            if attempt(batch).ok:
                low = batch
                if batch >= cap:
                    return Search(low, None, probes, "cap")
                batch = min(cap, max(batch + 1, int(batch * 1.1)))
            else:
                high = batch
    # The prediction overshot: step down by 10 % until one fits.
    while high is not None and high > 1.1 * low + 1 and not out_of_time():
        batch = max(low + 1, int(high / 1.1))
        if attempt(batch).ok:
            low = batch
            break
        high = batch
    while high is not None and high - low > max(1, int(low * tolerance)) and not out_of_time():
        middle = (low + high) // 2
        if attempt(middle).ok:
            low = middle
        else:
            high = middle
    converged = high is not None and high - low <= max(1, int(low * tolerance))
    return Search(low, high, probes, "converged" if converged else "time budget")


def bytes_per_crop(probes: Sequence[Probe]) -> float | None:
    """Slope of peak extra memory against B (least squares over the successful probes)."""
    points = [(p.batch, p.peak_extra_bytes) for p in probes if p.ok]
    if len({b for b, _ in points}) < 2:
        return None
    batches, peaks = np.array(points, dtype=np.float64).T
    slope, _ = np.polyfit(batches, peaks, 1)
    return float(slope)


def cuda_memory_study(
    recognizer: Recognizer,
    widths: Sequence[int],
    cap: int,
    max_seconds: float = 300.0,
    save: Callable[[dict], None] | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Per padded width: the largest forward that fits, memory per crop, free memory.

    ``save`` gets the study after every probe, so a run cut short still leaves its figures.
    """
    device = recognizer.device
    model = recognizer.loaded.model
    height = recognizer.spec.imgH
    free, total = torch.cuda.mem_get_info(device)
    study = {
        "device_name": torch.cuda.get_device_name(device),
        "free_bytes_at_start": int(free),
        "total_bytes": int(total),
        "model_bytes": int(torch.cuda.memory_allocated(device)),
        "original_estimate_bytes_per_crop": ORIGINAL_BYTES_PER_CROP,
        "time_budget_s": max_seconds,
        "widths": [],
    }
    deadline = time.monotonic() + max_seconds
    for width in widths:
        entry = {"width": width, "input_bytes_per_crop": height * width * 4, "probes": []}
        study["widths"].append(entry)

        def record(probe: Probe, entry: dict = entry) -> None:
            entry["probes"].append(probe.__dict__)
            if progress:
                state = "ok" if probe.ok else probe.error
                progress(
                    f"width {entry['width']}: B={probe.batch} {state} "
                    f"{probe.peak_extra_bytes / 2**30:.2f} GiB {probe.seconds:.2f} s"
                )
            if save:
                save(study)

        search = find_max_batch(
            lambda b, w=width: probe_forward(model, device, b, height, w),
            free_bytes=free,
            cap=cap,
            deadline=deadline,
            on_probe=record,
        )
        per_crop = bytes_per_crop(search.probes)
        entry |= {
            "largest_batch": search.largest,
            "first_failure": search.first_failure,
            "stopped": search.stopped,
            "bytes_per_crop": per_crop,
            "vs_original_estimate": per_crop / ORIGINAL_BYTES_PER_CROP if per_crop else None,
            "predicted_largest": int(free / per_crop) if per_crop else None,
        }
        if save:
            save(study)
    study["free_bytes_at_end"] = int(torch.cuda.mem_get_info(device)[0])
    return study


# ------------------------------------------------------------------------------------------
# 3. Bucket wait sweep
# ------------------------------------------------------------------------------------------


def parse_policies(text: str) -> list[tuple[str, float]]:
    """``"fixed:0,fixed:50,adaptive:50"`` -> [("fixed", 0.0), ...]; a bare number is fixed."""
    policies = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        name, _, wait = part.rpartition(":")
        name = name or "fixed"
        if name not in ("fixed", "adaptive"):
            raise ValueError(f"unknown policy {name!r} in {part!r}")
        policies.append((name, float(wait)))
    if not policies:
        raise ValueError("no policies given")
    return policies


def sweep_one(
    recognize: Callable[[Sequence[np.ndarray]], list],
    documents: Sequence[Sequence[np.ndarray]],
    rate_docs_per_s: float,
    max_batch: int,
    policy: str,
    max_wait_ms: float,
    seed: int = 0,
) -> dict:
    """Documents arrive as a Poisson stream at ``rate``; each waits for all its crops' readings
    through an in-process bucket with this policy."""
    from common.config import Settings
    from pipeline.local_bucket import LocalBucketReader

    settings = Settings(
        str_max_batch=max_batch, str_max_wait_ms=max_wait_ms, str_bucket_policy=policy
    )
    client = LocalBucketReader(settings, recognize)
    rng = random.Random(seed)
    arrivals, clock = [], 0.0
    for _ in documents:
        arrivals.append(clock)
        clock += rng.expovariate(rate_docs_per_s)
    latencies: list[float] = [0.0] * len(documents)
    batches: dict[str, int] = {}
    queue_waits: list[float] = []
    lock = threading.Lock()
    wait_sum0, wait_n0 = (
        _sample("ocr_bucket_wait_seconds_sum"),
        _sample("ocr_bucket_wait_seconds_count"),
    )

    def one(index: int) -> None:
        t0 = time.perf_counter()
        reading = client.read(documents[index], timeout_s=600)
        latencies[index] = time.perf_counter() - t0
        with lock:
            queue_waits.append(reading.queue_wait_ms / 1000.0)
            for batch in reading.batches:
                batches[batch.id] = batch.size

    threads = []
    started = time.perf_counter()
    try:
        for index, at in enumerate(arrivals):
            delay = started + at - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            thread = threading.Thread(target=one, args=(index,), daemon=True)
            thread.start()
            threads.append(thread)
        for thread in threads:
            thread.join()
    finally:
        client.close()
    wall = time.perf_counter() - started
    wait_n = _sample("ocr_bucket_wait_seconds_count") - wait_n0
    wait_sum = _sample("ocr_bucket_wait_seconds_sum") - wait_sum0
    sizes = list(batches.values())
    return {
        "policy": policy,
        "max_wait_ms": max_wait_ms,
        "offered_docs_per_s": rate_docs_per_s,
        "documents": len(documents),
        "crops": sum(len(d) for d in documents),
        "wall_s": wall,
        "throughput_docs_per_s": len(documents) / wall,
        "throughput_crops_per_s": sum(len(d) for d in documents) / wall,
        "latency_s": describe(latencies),
        "queue_wait_s": describe(queue_waits),
        "batch_size": describe(sizes),
        "batches": len(sizes),
        "bucket_wait_mean_s": wait_sum / wait_n if wait_n else 0.0,
    }


def _sample(name: str) -> float:
    """This process's value of a metric sample (the bucket observes into the default registry)."""
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value(name) or 0.0


def wait_sweep(
    recognize: Callable[[Sequence[np.ndarray]], list],
    crops: Sequence[np.ndarray],
    doc_sizes: Sequence[int],
    capacity_docs_per_s: float,
    loads: Sequence[float],
    policies: Sequence[tuple[str, float]],
    max_batch: int,
    documents_per_run: int,
    progress: Callable[[str], None] | None = None,
) -> list[dict]:
    """Every (load, policy) pair once, on the same documents in the same arrival order."""
    documents, start = [], 0
    for index in range(documents_per_run):
        size = doc_sizes[index % len(doc_sizes)]
        documents.append([crops[(start + k) % len(crops)] for k in range(size)])
        start += size
    runs = []
    for load in loads:
        rate = load * capacity_docs_per_s
        for policy, wait in policies:
            row = sweep_one(recognize, documents, rate, max_batch, policy, wait)
            row["load"] = load
            runs.append(row)
            if progress:
                progress(
                    f"load {load:.2f} ({rate:.2f} docs/s) {policy}:{wait:g} ms -> "
                    f"{row['throughput_docs_per_s']:.2f} docs/s, p50 "
                    f"{row['latency_s']['p50']:.2f} s, p95 {row['latency_s']['p95']:.2f} s, "
                    f"mean batch {row['batch_size']['mean']:.0f}"
                )
    return runs


# ------------------------------------------------------------------------------------------
# The run
# ------------------------------------------------------------------------------------------


def _int_list(text: str) -> list[int]:
    values = [int(v) for v in text.split(",") if v.strip()]
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("give positive integers, comma-separated")
    return values


def _float_list(text: str) -> list[float]:
    values = [float(v) for v in text.split(",") if v.strip()]
    if not values or min(values) <= 0:
        raise argparse.ArgumentTypeError("give positive numbers, comma-separated")
    return values


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m monitoring.batchsize",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--images", help="folder of page images with ../labels (default: dev)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--weights", help="recognizer checkpoint (default: english_g2.pth)")
    parser.add_argument("--sizes", type=_int_list, default=list(DEFAULT_SIZES), help="B values")
    parser.add_argument("--crops", type=int, default=350, help="crops timed at every B")
    parser.add_argument("--repeat", type=int, default=1, help="passes per B (best kept)")
    parser.add_argument("--widths", type=_int_list, default=[256, 512], help="CUDA: widths")
    parser.add_argument("--cap", type=int, default=1 << 20, help="CUDA: largest B tried")
    parser.add_argument(
        "--max-seconds", type=float, default=300.0, help="CUDA: time budget of the memory search"
    )
    parser.add_argument(
        "--memory-only", action="store_true", help="CUDA: skip the throughput curve"
    )
    parser.add_argument("--sweep", action="store_true", help="also sweep the bucket wait")
    parser.add_argument(
        "--policies",
        default="fixed:0,fixed:20,fixed:100,fixed:400,adaptive:100",
        help="policy:STR_MAX_WAIT_MS list for the sweep",
    )
    parser.add_argument(
        "--loads", type=_float_list, default=[0.3, 0.9], help="offered load, share of capacity"
    )
    parser.add_argument("--sweep-docs", type=int, default=8, help="documents per sweep run")
    parser.add_argument("--sweep-batch", type=int, default=350, help="STR_MAX_BATCH in the sweep")
    parser.add_argument("--out", help="output folder (default: reports/batchsize-TIMESTAMP)")
    parser.add_argument("--no-plots", action="store_true")
    args = parser.parse_args(argv)
    try:
        args.policy_list = parse_policies(args.policies)
    except ValueError as exc:
        parser.error(str(exc))
    shown = " ".join(argv) if argv is not None else " ".join(sys.argv[1:])
    args.command = f"python -m monitoring.batchsize {shown}".strip()
    return args


def run(args: argparse.Namespace) -> dict:
    from monitoring import report
    from str_service.preprocess import prepare_crop
    from str_service.recognizer import Recognizer

    out_dir = Path(args.out) if args.out else default_out_dir("batchsize")
    out_dir.mkdir(parents=True, exist_ok=True)
    results: dict = {
        "tool": "monitoring.batchsize",
        "command": args.command,
        "created": datetime.now().isoformat(timespec="seconds"),
        "device": args.device,
    }

    def say(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    wants_cuda = args.device.startswith("cuda")
    if wants_cuda and not torch.cuda.is_available():
        results["status"] = "skipped"
        results["reason"] = (
            "torch.cuda.is_available() is False on this machine; run it where a GPU is visible"
        )
        results["environment"] = environment(None)
        say(f"{args.device}: {results['reason']}")
    else:
        crops = word_crops(args.images)
        rng = random.Random(0)
        rng.shuffle(crops)  # mix widths and documents in every chunk, reproducibly
        timed = [crops[i % len(crops)] for i in range(args.crops)]
        if not wants_cuda:
            torch.set_num_threads(args.threads)
        recognizer = Recognizer(args.weights, device=args.device, max_batch=max(args.sizes))
        recognizer.recognize(timed[:16], max_batch=16)  # warm-up: allocator, kernel choice
        widths = [prepare_crop(c, recognizer.spec).width for c in timed]
        results["status"] = "measured"
        results["environment"] = environment(torch.get_num_threads() if not wants_cuda else None)
        results["model"] = recognizer.model_name
        results["crops"] = {
            "timed": len(timed),
            "available": len(crops),
            "padded_width": describe(widths),
            "images_dir": str(args.images or "dev"),
        }

        def save(study: dict | None = None) -> None:
            if study is not None:
                results["cuda_memory"] = study
            (out_dir / "results.json").write_text(json.dumps(results, indent=1))

        if wants_cuda:  # first: it is what a GPU session is for, and it saves as it goes
            say("CUDA memory: calibrate, predict, bracket, bisect ...")
            results["cuda_memory"] = cuda_memory_study(
                recognizer, args.widths, args.cap, args.max_seconds, save, say
            )
        if not args.memory_only:
            say(f"{recognizer.model_name} on {recognizer.device}; {len(timed)} crops per B")
            rows = throughput_curve(recognizer, timed, args.sizes, args.repeat, say)
            results["throughput"] = {
                "rows": rows,
                "knee": knee(rows),
                "knee_rule": f"smallest B with crops/s >= {KNEE_FRACTION:.0%} of the best",
                "best": max(rows, key=lambda r: r["crops_per_s"])["batch_size"],
                "largest": max(args.sizes),
            }
            save()
        if args.sweep and "throughput" in results:
            lock = threading.Lock()

            def recognize(batch: Sequence[np.ndarray]) -> list:
                with lock:
                    return recognizer.recognize(batch).results

            recognizer.max_batch = args.sweep_batch
            sizes = per_document_crop_counts(args.images)
            mean_doc = statistics.fmean(sizes)
            per_crop_s = min(r["ms_per_crop"] for r in rows) / 1000.0
            capacity = 1.0 / (mean_doc * per_crop_s)
            results["sweep"] = {
                "capacity_docs_per_s": capacity,
                "capacity_rule": "1 / (mean crops per document x best ms per crop of the curve)",
                "mean_crops_per_doc": mean_doc,
                "max_batch": args.sweep_batch,
                "runs": wait_sweep(
                    recognize,
                    crops,
                    sizes,
                    capacity,
                    args.loads,
                    args.policy_list,
                    args.sweep_batch,
                    args.sweep_docs,
                    say,
                ),
            }
        results["environment"]["load_average_end"] = list(os.getloadavg())
    (out_dir / "results.json").write_text(json.dumps(results, indent=1))
    (out_dir / "summary.md").write_text(report.batchsize_markdown(results))
    if not args.no_plots and results["status"] == "measured":
        results["plots"] = [str(p) for p in report.batchsize_plots(results, out_dir)]
    results["out_dir"] = str(out_dir)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return 2 if run_and_print(partial(run, args), plots=False) is None else 0


if __name__ == "__main__":
    raise SystemExit(main())

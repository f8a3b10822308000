"""Recognition throughput at several batch sizes on real word crops.

Reads every ground-truth word (except '###') of the dev images, cut with the same crop routine
the services use, and times ``Recognizer.recognize`` over all of them with ``max_batch`` = 1, 32
and 350 (width grouping may make some batches smaller; the table shows the mean). The ratio of the
largest batch size's rate to batch 1's is what batching buys on this machine.

    python -m monitoring.bench_str [--device cpu|cuda|auto] [--threads N] [--batch-sizes 1,32,350]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from common.geometry import crop_quad
from monitoring.data import shared_data_dir
from str_service.preprocess import prepare_crop
from str_service.recognizer import Recognizer


def load_word_crops(dev_dir: Path, limit: int | None = None) -> list[np.ndarray]:
    """Greyscale crops of the labelled words of every dev image, in file order."""
    crops: list[np.ndarray] = []
    for label_path in sorted((dev_dir / "labels").glob("*.json")):
        image_path = next((dev_dir / "images").glob(label_path.stem + ".*"))
        gray = cv2.imread(str(image_path), cv2.IMREAD_GRAYSCALE)
        for word in json.loads(label_path.read_text())["words"]:
            if word["text"] == "###":
                continue
            crops.append(crop_quad(gray, np.asarray(word["quad"], np.float32)))
    return crops[:limit] if limit else crops


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench(
    recognizer: Recognizer, crops: list[np.ndarray], batch_size: int, repeat: int
) -> dict[str, float]:
    """Best-of-``repeat`` wall time of one recognize() over all crops at this batch size."""
    best: dict[str, float] | None = None
    for _ in range(repeat):
        _sync(recognizer.device)
        if recognizer.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(recognizer.device)
        start = time.perf_counter()
        result = recognizer.recognize(crops, max_batch=batch_size)
        _sync(recognizer.device)
        seconds = time.perf_counter() - start
        row = {
            "batch_size": batch_size,
            "seconds": seconds,
            "crops_per_s": len(crops) / seconds,
            "forward_s": result.timings_ms.get("forward", 0.0) / 1000.0,
            "forwards": len(result.forward_passes),
            "mean_forward": (
                statistics.fmean(result.forward_passes) if result.forward_passes else 0.0
            ),
        }
        if recognizer.device.type == "cuda":
            row["peak_mib"] = torch.cuda.max_memory_allocated(recognizer.device) / 2**20
        if best is None or row["seconds"] < best["seconds"]:
            best = row
    assert best is not None
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data", type=Path, help="shared data folder (default: $OCR_SHARED_DATA or ../shared/data)"
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument("--weights", default=None, help="checkpoint (default: english_g2.pth)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    parser.add_argument("--batch-sizes", default="1,32,350")
    parser.add_argument("--repeat", type=int, default=1, help="runs per batch size (best kept)")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N crops")
    args = parser.parse_args(argv)

    dev_dir = (args.data or shared_data_dir()) / "dev"
    if not (dev_dir / "labels").is_dir():
        print(f"no dev data at {dev_dir} (set --data or OCR_SHARED_DATA)", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    sizes = [int(s) for s in args.batch_sizes.split(",") if s.strip()]

    crops = load_word_crops(dev_dir, args.limit)
    recognizer = Recognizer(args.weights, device=args.device, max_batch=max(sizes))
    widths = [prepare_crop(c, recognizer.spec).width for c in crops]
    recognizer.recognize(crops[:8])  # warm-up: allocator, oneDNN/cuDNN kernel choice

    device = str(recognizer.device)
    if recognizer.device.type == "cuda":
        device += f" ({torch.cuda.get_device_name(recognizer.device)})"
    else:
        device += f" ({torch.get_num_threads()} threads)"
    print(f"model {recognizer.model_name}, device {device}, torch {torch.__version__}")
    print(
        f"{len(crops)} crops from {dev_dir}, {len(set(widths))} distinct padded widths "
        f"(median W {int(np.median(widths))})"
    )
    print()
    header = f"{'max_batch':>9} {'forwards':>8} {'mean fwd':>10} {'seconds':>8} "
    header += f"{'forward s':>9} {'crops/s':>8}"
    print(header)
    rows = []
    for size in sizes:
        row = bench(recognizer, crops, size, args.repeat)
        rows.append(row)
        print(
            f"{size:>9} {row['forwards']:>8} {row['mean_forward']:>10.1f} {row['seconds']:>8.2f} "
            f"{row['forward_s']:>9.2f} {row['crops_per_s']:>8.1f}"
            + (f" {row['peak_mib']:>8.0f} MiB peak" if "peak_mib" in row else ""),
            flush=True,
        )
    base = rows[0]["crops_per_s"]
    print()
    for row in rows[1:]:
        ratio = row["crops_per_s"] / base
        print(f"batch {row['batch_size']} / batch {rows[0]['batch_size']} throughput: {ratio:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

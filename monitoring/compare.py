"""This project against the OCR its users would use instead, side by side on one labelled set.

    python -m monitoring.compare                       # the dev set, ocr + the installed peers
    python -m monitoring.compare --url http://127.0.0.1:5000 --systems server
    python -m monitoring.compare --data DIR --threads 2 --out reports/compare

Each system runs in a child process of its own, one image after another with the same thread
count, so its peak resident memory is its own and the systems don't share the cores. One
untimed warm-up read comes first. Predictions are written in the label shape (``OUT/SYSTEM/
NAME.json``, so ``../shared/tools/score.py --pred-root OUT`` scores them too), then scored by
``monitoring.scoring``: bag-of-words F1 overall and per subset, detection P/R/H-mean, median and
p95 seconds per image, peak memory. The table goes to stdout and ``OUT/compare.md``, the rows
to ``OUT/compare.json``, and a plot to ``OUT/compare.png``.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from monitoring.data import REPO_ROOT, shared_data_dir
from monitoring.peers import SYSTEMS, NotInstalled, build_system
from monitoring.scoring import Counts, LabelledImage, image_counts, labelled_images

RUN_FILE = "_run.json"


def run_system(name: str, images: list[LabelledImage], out: Path, threads: int, url: str | None):
    """Read every image with one system (in this process) and write its predictions and times."""
    folder = out / name
    folder.mkdir(parents=True, exist_ok=True)
    try:
        system = build_system(name, threads, url)
    except NotInstalled as error:
        (folder / RUN_FILE).write_text(json.dumps({"skipped": str(error)}))
        print(f"{name}: skipped, {error}", file=sys.stderr)
        return
    system(images[0].path.read_bytes())  # warm-up: lazy initialisation is not a page's cost
    times = {}
    for image in images:
        blob = image.path.read_bytes()
        started = time.perf_counter()
        answer = system(blob)
        times[image.name] = time.perf_counter() - started
        (folder / f"{image.name}.json").write_text(json.dumps(answer))
        print(f"{name}: {image.name} {times[image.name]:.2f} s", file=sys.stderr)
    rss_kb = max(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,  # tesseract runs as a child
    )
    run = {"times_s": times, "threads": threads, "mode": name}
    if name != "server":  # a client's memory says nothing about the server's
        run["peak_rss_mb"] = rss_kb / 1024.0
    (folder / RUN_FILE).write_text(json.dumps(run))


def score_folder(folder: Path, images: list[LabelledImage]) -> dict[str, Any] | None:
    """One table row for a system's folder; None for a skipped or missing system."""
    run_path = folder / RUN_FILE
    if not run_path.exists():
        return None
    run = json.loads(run_path.read_text())
    if "skipped" in run:
        return {"system": folder.name, "skipped": run["skipped"]}
    total = Counts()
    subsets: dict[str, Counts] = {}
    for image in images:
        path = folder / f"{image.name}.json"
        predicted = json.loads(path.read_text()) if path.exists() else {}
        counts = image_counts(image.labels, predicted)
        total = total + counts
        subsets[image.subset] = subsets.get(image.subset, Counts()) + counts
    times = [run["times_s"][image.name] for image in images if image.name in run["times_s"]]
    return {
        "system": folder.name,
        "bag_f1": total.bag_f1,
        "subsets": {subset: counts.bag_f1 for subset, counts in sorted(subsets.items())},
        "det_precision": total.det_precision,
        "det_recall": total.det_recall,
        "det_hmean": total.det_hmean,
        "median_s": statistics.median(times) if times else None,
        "p95_s": float(np.percentile(times, 95)) if times else None,
        "peak_rss_mb": run.get("peak_rss_mb"),
        "threads": run.get("threads"),
        "images": len(times),
    }


def markdown(rows: list[dict[str, Any]]) -> str:
    scored = [row for row in rows if "skipped" not in row]
    subsets = sorted({subset for row in scored for subset in row["subsets"]})
    head = ["system", "bag-F1", *subsets, "det P", "det R", "det H", "median s", "p95 s", "peak MB"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def cell(value: float | None, digits: int = 3) -> str:
        return "-" if value is None else f"{value:.{digits}f}"

    for row in scored:
        values = [
            row["system"],
            cell(row["bag_f1"]),
            *(cell(row["subsets"].get(subset)) for subset in subsets),
            cell(row["det_precision"]),
            cell(row["det_recall"]),
            cell(row["det_hmean"]),
            cell(row["median_s"], 2),
            cell(row["p95_s"], 2),
            cell(row["peak_rss_mb"], 0),
        ]
        lines.append("| " + " | ".join(values) + " |")
    for row in rows:
        if "skipped" in row:
            lines.append(f"\n{row['system']}: not run ({row['skipped']})")
    return "\n".join(lines) + "\n"


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    """Bag-F1 against median seconds per image: up and to the left is better."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=(6, 4))
    for row in rows:
        if "skipped" in row or row["median_s"] is None:
            continue
        axes.scatter(row["median_s"], row["bag_f1"] or 0.0, s=60)
        axes.annotate(
            row["system"],
            (row["median_s"], row["bag_f1"] or 0.0),
            xytext=(5, 5),
            textcoords="offset points",
        )
    axes.set_xlabel("median seconds per image")
    axes.set_ylabel("bag-of-words F1")
    axes.set_xscale("log")
    axes.grid(True, alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    pyplot.close(figure)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--data",
        type=Path,
        default=shared_data_dir() / "dev",
        help="a labelled set (../shared/tools/FORMAT.md); default the dev set",
    )
    parser.add_argument(
        "--systems",
        default=None,
        help=f"comma-separated, of {','.join(SYSTEMS)}; default ocr,tesseract,"
        "rapidocr (server instead of ocr with --url)",
    )
    parser.add_argument("--url", help="a running pipeline to measure (the 'server' system)")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for every system")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "reports" / "compare")
    parser.add_argument("--limit", type=int, default=0, help="only the first N images")
    parser.add_argument("--run-one", help=argparse.SUPPRESS)  # the child process's system
    args = parser.parse_args(argv)

    if not (args.data / "images").is_dir():
        print(f"no labelled data set at {args.data} (pass --data DIR)", file=sys.stderr)
        return 2
    images = labelled_images(args.data)
    if args.limit:
        images = images[: args.limit]
    if not images:
        print(f"no labelled images under {args.data}", file=sys.stderr)
        return 2
    if args.run_one:
        run_system(args.run_one, images, args.out, args.threads, args.url)
        return 0

    default = "server,tesseract,rapidocr" if args.url else "ocr,tesseract,rapidocr"
    names = [name.strip() for name in (args.systems or default).split(",") if name.strip()]
    unknown = [name for name in names if name not in SYSTEMS]
    if unknown:
        parser.error(f"unknown systems {unknown}; choose from {SYSTEMS}")
    args.out.mkdir(parents=True, exist_ok=True)
    for name in names:
        (args.out / name / RUN_FILE).unlink(missing_ok=True)
        command = [
            sys.executable,
            "-m",
            "monitoring.compare",
            "--run-one",
            name,
            "--data",
            str(args.data),
            "--out",
            str(args.out),
            "--threads",
            str(args.threads),
            "--limit",
            str(args.limit),
        ]
        if args.url:
            command += ["--url", args.url]
        subprocess.run(command, check=True, cwd=REPO_ROOT)
    rows = [row for name in names if (row := score_folder(args.out / name, images))]
    table = markdown(rows)
    print(table)
    (args.out / "compare.md").write_text(table)
    (args.out / "compare.json").write_text(json.dumps(rows, indent=1))
    plot(rows, args.out / "compare.png")
    print(f"wrote {args.out / 'compare.md'}, compare.json and compare.png", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

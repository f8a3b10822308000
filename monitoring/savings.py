"""Sequential versus batched processing time for N documents, from measured figures.

DESIGN.md's model (all times in seconds):

    T_seq(N)   = N * (t_std + b * t_str1)
    T_batch(N) = N * t_std + ceil(N * b / B) * (t_strB + o)
    saved(N)   = T_seq(N) - T_batch(N)

t_std: CRAFT per document; t_str1: one crop recognised alone; t_strB: one recognition batch of B
crops; b: boxes per document; o: overhead per batch (bucket wait). The original study's table got
two things wrong: its "saved" column repeated T_batch instead of T_seq - T_batch, and its T_batch
was larger than T_seq. The second cannot happen in this model when a batch costs less than B
single reads (t_strB + o < B * t_str1), which ``check`` verifies for the measured figures.

    python -m monitoring.savings --loadtest reports/loadtest-X/results.json \
        --batchsize reports/batchsize-Y/results.json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

DEFAULT_NS = (100, 1_000, 10_000)


@dataclass(frozen=True)
class CostModel:
    t_std: float
    t_str1: float
    t_strB: float  # the name DESIGN.md's formula uses
    boxes: float
    batch: int
    overhead_per_batch: float = 0.0

    def __post_init__(self) -> None:
        if self.batch < 1:
            raise ValueError("batch size B must be >= 1")
        for name in ("t_std", "t_str1", "t_strB", "boxes", "overhead_per_batch"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")


def t_seq(model: CostModel, n: int) -> float:
    """Every document detected, then every box read alone."""
    return n * (model.t_std + model.boxes * model.t_str1)


def batches_needed(model: CostModel, n: int) -> int:
    """Full batches of B crops for N documents' crops (the last one may be partial)."""
    return math.ceil(n * model.boxes / model.batch)


def t_batch(model: CostModel, n: int) -> float:
    """Every document detected; all crops read B at a time, each batch paying its overhead."""
    return n * model.t_std + batches_needed(model, n) * (model.t_strB + model.overhead_per_batch)


def rows(model: CostModel, ns: Sequence[int] = DEFAULT_NS) -> list[dict[str, float]]:
    """One row per N: T_seq, T_batch, saved = T_seq - T_batch, saved %, speed-up."""
    table = []
    for n in ns:
        seq, bat = t_seq(model, n), t_batch(model, n)
        table.append(
            {
                "n": n,
                "crops": n * model.boxes,
                "batches": batches_needed(model, n),
                "t_seq_s": seq,
                "t_batch_s": bat,
                "saved_s": seq - bat,
                "saved_pct": 100.0 * (seq - bat) / seq if seq else 0.0,
                "speedup": seq / bat if bat else float("inf"),
            }
        )
    return table


def check(model: CostModel) -> list[str]:
    """Statements that must hold for the table to make sense; empty when all do."""
    problems = []
    if model.t_strB + model.overhead_per_batch > model.batch * model.t_str1:
        problems.append(
            "a batch of B costs more than B single reads (t_strB + o > B * t_str1): batching "
            "does not pay on this hardware at this B, so T_batch > T_seq is the measured truth"
        )
    return problems


def duration(seconds: float) -> str:
    """Human-sized: 12.3 s, 4.5 min, 2.1 h."""
    magnitude = abs(seconds)
    if magnitude < 120:
        return f"{seconds:.1f} s"
    if magnitude < 2 * 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.2f} h"


def markdown(model: CostModel, ns: Sequence[int] = DEFAULT_NS) -> str:
    """The inputs and the table, as Markdown."""
    lines = [
        "| input | value |",
        "|---|---|",
        f"| t_std (CRAFT per document) | {model.t_std:.3f} s |",
        f"| t_str1 (one crop read alone) | {model.t_str1 * 1000:.1f} ms |",
        f"| B (crops per batch) | {model.batch} |",
        f"| t_strB (one batch of B crops) | {model.t_strB:.3f} s "
        f"({model.t_strB / model.batch * 1000:.1f} ms per crop) |",
        f"| b (boxes per document) | {model.boxes:.1f} |",
        f"| o (overhead per batch) | {model.overhead_per_batch * 1000:.1f} ms |",
        "",
        "| N documents | crops | batches | T_seq | T_batch | saved = T_seq − T_batch | saved % "
        "| speed-up |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows(model, ns):
        lines.append(
            f"| {row['n']:,} | {row['crops']:,.0f} | {row['batches']:,} "
            f"| {duration(row['t_seq_s'])} | {duration(row['t_batch_s'])} "
            f"| {duration(row['saved_s'])} | {row['saved_pct']:.1f} % | {row['speedup']:.2f}× |"
        )
    for problem in check(model):
        lines += ["", f"Note: {problem}."]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------
# Reading the measurements
# ------------------------------------------------------------------------------------------


def _scenario(results: dict, endpoint: str) -> dict:
    """The lowest-concurrency scenario of ``endpoint``: its per-document times carry no queueing
    behind other requests."""
    found = [s for s in results["scenarios"] if s["endpoint"] == endpoint and s["documents_ok"]]
    if not found:
        raise ValueError(f"the load test has no successful {endpoint} scenario")
    return min(found, key=lambda s: s["concurrency"])


def model_from_results(
    loadtest: dict, batchsize: dict, batch: int | None = None, overhead_s: float | None = None
) -> tuple[CostModel, dict[str, str]]:
    """Build the cost model from a load test and a batch-size study; also say where each input
    came from."""
    sequential = _scenario(loadtest, "/ocr")
    curve = {int(r["batch_size"]): r for r in batchsize["throughput"]["rows"]}
    if batch is None:
        batch = int(batchsize["throughput"].get("largest", max(curve)))
    if batch not in curve:
        raise ValueError(f"the batch-size study did not measure B={batch}: {sorted(curve)}")
    if overhead_s is None:
        # At higher concurrency the bucket wait also holds time spent queueing behind CRAFT,
        # which N * t_std already counts; the lone-request wait is the batching overhead itself.
        overhead_s = _scenario(loadtest, "/pipeline")["bucket_wait_s"]["mean"]
    model = CostModel(
        t_std=sequential["std_s_per_doc"]["mean"],
        t_str1=sequential["str_s_per_box"],
        t_strB=curve[batch]["seconds_per_batch"],
        boxes=sequential["boxes_per_doc"]["mean"],
        batch=batch,
        overhead_per_batch=overhead_s,
    )
    sources = {
        "t_std": f"/ocr C={sequential['concurrency']}: mean timings_ms.std per document",
        "t_str1": f"/ocr C={sequential['concurrency']}: sum(timings_ms.str) / sum(boxes)",
        "b": f"/ocr C={sequential['concurrency']}: mean words per document",
        "t_strB": f"batch-size study: mean time of one recognize() over B={batch} real crops",
        "o": "load test /pipeline at its lowest concurrency: mean ocr_bucket_wait_seconds",
    }
    return model, sources


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m monitoring.savings", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--loadtest", type=Path, required=True, help="loadtest results.json")
    parser.add_argument("--batchsize", type=Path, required=True, help="batchsize results.json")
    parser.add_argument("--batch", type=int, help="B (default: the largest B measured)")
    parser.add_argument("--overhead-ms", type=float, help="o per batch (default: measured)")
    parser.add_argument("--n", default="100,1000,10000", help="document counts")
    parser.add_argument("--json", type=Path, help="also write the table here")
    args = parser.parse_args(argv)
    try:
        loadtest = json.loads(args.loadtest.read_text())
        batchsize = json.loads(args.batchsize.read_text())
        overhead = None if args.overhead_ms is None else args.overhead_ms / 1000.0
        model, sources = model_from_results(loadtest, batchsize, args.batch, overhead)
    except (OSError, ValueError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    ns = [int(v) for v in args.n.split(",") if v.strip()]
    print(markdown(model, ns))
    print("Sources: " + "; ".join(f"{k}: {v}" for k, v in sources.items()))
    if args.json:
        args.json.write_text(
            json.dumps({"model": asdict(model), "sources": sources, "rows": rows(model, ns)})
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

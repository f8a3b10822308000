"""Markdown summaries and PNG plots for the load test and the batch-size study.

Kept apart from the measuring code so a saved ``results.json`` can be re-rendered
(``python -m monitoring.report reports/loadtest-X/results.json``) without measuring again.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")  # files only; no display on servers or in CI
import matplotlib.pyplot as plt  # noqa: E402 - the backend must be chosen first

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def _env_line(env: dict) -> str:
    threads = f", torch threads {env['torch_threads']}" if env.get("torch_threads") else ""
    load = env.get("load_average") or []
    load_end = env.get("load_average_end") or []
    loads = ""
    if load:
        loads = f"; 1-min load average {load[0]:.2f} at start"
        if load_end:
            loads += f", {load_end[0]:.2f} at end"
    return (
        f"{env.get('cpu_model', '?')}, {env.get('usable_cpus') or env.get('cpu_count')} usable "
        f"cores{threads}{loads} (commit {env.get('git_commit') or '?'})"
    )


# ------------------------------------------------------------------------------------------
# Load test
# ------------------------------------------------------------------------------------------


def loadtest_markdown(results: dict) -> str:
    config = results["config"]
    params = ", ".join(f"{k}={v}" for k, v in config["params"].items()) or "server defaults"
    lines = [
        "# Load test",
        "",
        f"Command: `{results['command']}`",
        "",
        f"Target: {results['target']}. Machine: {_env_line(results['environment'])}.",
        f"{config['documents']} documents per scenario ({config['distinct_images']} distinct "
        f"images from {config['images_dir']}); detection parameters: {params}; "
        f"/batch_ocr carries {config['batch_images']} documents per request.",
        "",
        "Latency is per request, seen by the client. STD, STR, queue wait and boxes are per "
        "document, from the answers' timings_ms. Batches are the distinct recognition batches "
        "the answers name; bucket wait is the ocr_bucket_wait_seconds histogram's change.",
        "",
        "| endpoint | C | docs ok | errors | docs/s | p50 s | p95 s | p99 s | STD s/doc "
        "| STR s/doc | queue wait s/doc | boxes/doc | batches | mean batch | max batch "
        "| bucket wait ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in results["scenarios"]:
        batched = s["mode"] == "batched"
        errors = sum(s["errors"].values())
        lines.append(
            f"| {s['endpoint']} | {s['concurrency']} | {s['documents_ok']}/{s['documents']} "
            f"| {errors} | {s['throughput_docs_per_s']:.3f} | {s['latency_s']['p50']:.2f} "
            f"| {s['latency_s']['p95']:.2f} | {s['latency_s']['p99']:.2f} "
            f"| {s['std_s_per_doc']['mean']:.2f} | {s['str_s_per_doc']['mean']:.2f} "
            f"| {s['queue_wait_s_per_doc']['mean']:.2f} | {s['boxes_per_doc']['mean']:.1f} "
            + (
                f"| {s['batches']['count']} | {s['batches']['sizes']['mean']:.1f} "
                f"| {s['batches']['sizes']['max']:.0f} | {s['bucket_wait_s']['mean'] * 1000:.1f} |"
                if batched
                else "| – | – | – | – |"
            )
        )
    lines += ["", *_comparison(results["scenarios"])]
    errors = {
        f"{s['endpoint']} C={s['concurrency']}": s["errors"]
        for s in results["scenarios"]
        if s["errors"]
    }
    if errors:
        lines += ["", "Errors: " + "; ".join(f"{k}: {v}" for k, v in errors.items())]
    sequential = [s for s in results["scenarios"] if s["endpoint"] == "/ocr"]
    if sequential:
        first = min(sequential, key=lambda s: s["concurrency"])
        lines += [
            "",
            f"Sequential recognition time per box (t_str1, /ocr C={first['concurrency']}): "
            f"{first['str_s_per_box'] * 1000:.1f} ms.",
        ]
    return "\n".join(lines) + "\n"


def _comparison(scenarios: Sequence[dict]) -> list[str]:
    """Measured batched vs sequential throughput at each concurrency."""
    out = []
    by = {(s["endpoint"], s["concurrency"]): s for s in scenarios}
    for (endpoint, concurrency), s in sorted(by.items(), key=lambda kv: kv[0][1]):
        if endpoint == "/ocr":
            continue
        base = by.get(("/ocr", concurrency))
        if base and base["throughput_docs_per_s"] > 0:
            ratio = s["throughput_docs_per_s"] / base["throughput_docs_per_s"]
            out.append(
                f"- C={concurrency}: {endpoint} throughput is {ratio:.2f}× /ocr's "
                f"({s['throughput_docs_per_s']:.3f} vs {base['throughput_docs_per_s']:.3f} docs/s)"
            )
    for (endpoint, concurrency), s in sorted(by.items(), key=lambda kv: kv[0][1]):
        engine = by.get(("/engine", concurrency))
        if endpoint == "/pipeline" and engine and engine["throughput_docs_per_s"] > 0:
            ratio = s["throughput_docs_per_s"] / engine["throughput_docs_per_s"]
            out.append(
                f"- C={concurrency}: /pipeline throughput is {ratio:.2f}× the in-process engine's "
                f"(serving overhead {100 * (1 - ratio):.1f} %)"
            )
    return (["Batched against sequential, measured:", *out]) if out else []


def _label(s: dict) -> str:
    return f"{s['endpoint']}\nC={s['concurrency']}"


def loadtest_plots(results: dict, out_dir: Path) -> list[Path]:
    """latency.png, throughput.png, time_per_doc.png and (if batched) batch_sizes.png."""
    scenarios = [s for s in results["scenarios"] if s["documents_ok"]]
    if not scenarios:
        return []
    written = []
    labels = [_label(s) for s in scenarios]
    x = range(len(scenarios))

    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(scenarios)), 4))
    width = 0.27
    for offset, key in zip((-width, 0, width), ("p50", "p95", "p99"), strict=True):
        ax.bar([i + offset for i in x], [s["latency_s"][key] for s in scenarios], width, label=key)
    ax.set_xticks(list(x), labels, fontsize=8)
    written.append(
        _finish(
            fig,
            ax,
            out_dir / "latency.png",
            "Latency percentiles per scenario",
            ylabel="request latency (s)",
        )
    )

    fig, ax = plt.subplots(figsize=(6, 4))
    for endpoint in dict.fromkeys(s["endpoint"] for s in scenarios):
        points = sorted(
            (s["concurrency"], s["throughput_docs_per_s"])
            for s in scenarios
            if s["endpoint"] == endpoint
        )
        ax.plot(*zip(*points, strict=True), marker="o", label=endpoint)
    written.append(
        _finish(
            fig,
            ax,
            out_dir / "throughput.png",
            "Throughput",
            xlabel="concurrency (clients)",
            ylabel="documents per second",
            grid=True,
        )
    )

    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(scenarios)), 4))
    bottom = [0.0] * len(scenarios)
    for key, name in (
        ("std_s_per_doc", "STD (CRAFT)"),
        ("str_s_per_doc", "STR"),
        ("queue_wait_s_per_doc", "queue wait"),
    ):
        values = [s[key]["mean"] for s in scenarios]
        ax.bar(list(x), values, bottom=bottom, label=name)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    ax.set_xticks(list(x), labels, fontsize=8)
    written.append(
        _finish(
            fig,
            ax,
            out_dir / "time_per_doc.png",
            "Where a document's time goes (server timings)",
            ylabel="seconds per document (mean)",
        )
    )

    batched = [s for s in scenarios if s["batches"]["count"]]
    if batched:
        fig, ax = plt.subplots(figsize=(6, 4))
        for s in batched:
            sizes = [int(k) for k, n in s["batches"]["histogram"].items() for _ in range(n)]
            ax.hist(sizes, bins=20, alpha=0.5, label=_label(s).replace("\n", " "))
        written.append(
            _finish(
                fig,
                ax,
                out_dir / "batch_sizes.png",
                "Batch sizes (batched scenarios)",
                xlabel="crops per recognition batch",
                ylabel="batches",
                legend_size=8,
            )
        )
    return written


def _finish(
    fig: Figure,
    ax: Axes,
    path: Path,
    title: str,
    xlabel: str | None = None,
    ylabel: str | None = None,
    legend: bool = True,
    legend_size: float | None = None,
    grid: bool = False,
) -> Path:
    """Title, axis labels, legend and grid on a one-plot figure, then ``_save`` it."""
    ax.set_title(title)
    if xlabel is not None:
        ax.set_xlabel(xlabel)
    if ylabel is not None:
        ax.set_ylabel(ylabel)
    if legend:
        ax.legend(fontsize=legend_size)
    if grid:
        ax.grid(alpha=0.3)
    return _save(fig, path)


def _save(fig: Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


# ------------------------------------------------------------------------------------------
# Batch-size study
# ------------------------------------------------------------------------------------------


def batchsize_markdown(results: dict) -> str:
    lines = ["# Batch-size study", "", f"Command: `{results['command']}`", ""]
    if results.get("status") != "measured":
        lines += [f"Nothing measured on `{results['device']}`: {results.get('reason', '?')}", ""]
        return "\n".join(lines)
    crops = results["crops"]
    lines += [
        f"Device: `{results['device']}`. Machine: {_env_line(results['environment'])}.",
        f"Model: {results['model']}. {crops['timed']} real word crops (of {crops['available']} "
        f"labelled in {crops['images_dir']}), padded widths median "
        f"{crops['padded_width']['p50']:.0f} px, max {crops['padded_width']['max']:.0f} px.",
        "",
    ]
    if "cuda_memory" in results:
        lines += [*_cuda_markdown(results["cuda_memory"]), ""]
    if "throughput" not in results:
        return "\n".join(lines) + "\n"
    lines += [
        "## Throughput against batch size",
        "",
        "Each B: the same crops recognised in consecutive chunks of B, one `recognize()` call per "
        "chunk (what one bucket batch costs: preprocessing, width-grouped forwards, decoding, "
        "the low-confidence re-read).",
        "",
        "| B | crops/s | ms per crop | s per batch | forwards | mean forward | peak extra MiB |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results["throughput"]["rows"]:
        peak = f"{r['peak_extra_mib']:.0f}" if "peak_extra_mib" in r else "–"
        lines.append(
            f"| {r['batch_size']} | {r['crops_per_s']:.1f} | {r['ms_per_crop']:.1f} "
            f"| {r['seconds_per_batch']:.3f} | {r['forwards']} | {r['mean_forward_size']:.1f} "
            f"| {peak} |"
        )
    curve = results["throughput"]
    rows = {r["batch_size"]: r for r in curve["rows"]}
    first = rows[min(rows)]
    best = rows[curve["best"]]
    lines += [
        "",
        f"Knee ({curve['knee_rule']}): **B = {curve['knee']}**. Best: B = {curve['best']} at "
        f"{best['crops_per_s']:.1f} crops/s, {best['crops_per_s'] / first['crops_per_s']:.2f}× "
        f"B = {first['batch_size']}.",
    ]
    if "sweep" in results:
        lines += ["", *_sweep_markdown(results["sweep"])]
    return "\n".join(lines) + "\n"


def _cuda_markdown(study: dict) -> list[str]:
    gib = 2**30
    lines = [
        "## Largest batch that fits (CUDA)",
        "",
        f"{study['device_name']}: {study['free_bytes_at_start'] / gib:.1f} GiB free of "
        f"{study['total_bytes'] / gib:.1f} GiB at start; model {study['model_bytes'] / 2**20:.0f} "
        "MiB. One forward pass of B random crops at each padded width: two small calibration "
        "batches, a prediction from free memory, 10 % steps to bracket the limit, bisection to "
        "1 %. Memory per crop is the slope of peak allocated memory against B.",
        "",
        "| width | largest B | first failing B | search | memory per crop | input per crop "
        "| × original estimate (3·64·100·4 B) | predicted from free memory |",
        "|---:|---:|---:|---|---:|---:|---:|---:|",
    ]
    for w in study["widths"]:
        if "largest_batch" not in w:  # cut short mid-search: show the probes so far
            done = ", ".join(f"{p['batch']}:{'ok' if p['ok'] else 'fail'}" for p in w["probes"])
            lines.append(f"| {w['width']} | (interrupted; probes {done}) | | | | | | |")
            continue
        per = w["bytes_per_crop"]
        lines.append(
            f"| {w['width']} | {w['largest_batch']:,} | {w['first_failure'] or '–'} "
            f"| {w['stopped']} | "
            + (f"{per / 2**20:.2f} MiB" if per else "–")
            + f" | {w['input_bytes_per_crop'] / 1024:.0f} KiB | "
            + (f"{w['vs_original_estimate']:.1f}×" if w["vs_original_estimate"] else "–")
            + f" | {w['predicted_largest'] or '–'} |"
        )
        failures = {p["error"] for p in w["probes"] if not p["ok"]}
        if failures:
            lines.append(f"|  | failures: {'; '.join(sorted(failures))} | | | | | | |")
    return lines


def _sweep_markdown(sweep: dict) -> list[str]:
    lines = [
        "## Bucket wait (STR_MAX_WAIT_MS) and policy",
        "",
        f"Documents of real sizes (mean {sweep['mean_crops_per_doc']:.1f} crops) arrive as a "
        f"Poisson stream at a share of capacity ({sweep['capacity_docs_per_s']:.2f} docs/s: "
        f"{sweep['capacity_rule']}); STR_MAX_BATCH={sweep['max_batch']}. Recognition only: "
        "CRAFT is not in this loop.",
        "",
        "| load | policy | wait ms | docs/s | p50 s | p95 s | mean batch | batches "
        "| bucket wait ms |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in sweep["runs"]:
        lines.append(
            f"| {r['load']:.2f} | {r['policy']} | {r['max_wait_ms']:g} "
            f"| {r['throughput_docs_per_s']:.2f} | {r['latency_s']['p50']:.2f} "
            f"| {r['latency_s']['p95']:.2f} | {r['batch_size']['mean']:.1f} | {r['batches']} "
            f"| {r['bucket_wait_mean_s'] * 1000:.1f} |"
        )
    return lines


def batchsize_plots(results: dict, out_dir: Path) -> list[Path]:
    """throughput_vs_batch.png, plus cuda_memory.png and wait_sweep.png when measured."""
    written = []
    if "throughput" in results:
        curve = results["throughput"]
        rows = sorted(curve["rows"], key=lambda r: r["batch_size"])
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.plot([r["batch_size"] for r in rows], [r["crops_per_s"] for r in rows], marker="o")
        if curve.get("knee"):
            label = f"knee B={curve['knee']}"
            ax.axvline(curve["knee"], color="grey", linestyle="--", label=label)
            ax.legend()
        ax.set_xscale("log", base=2)
        written.append(
            _finish(
                fig,
                ax,
                out_dir / "throughput_vs_batch.png",
                f"Recognition throughput on {results['device']}",
                xlabel="batch size B (crops per recognize call)",
                ylabel="crops per second",
                legend=False,  # the knee's line has its own, drawn above
                grid=True,
            )
        )

    if "cuda_memory" in results:
        fig, ax = plt.subplots(figsize=(6, 4))
        for w in results["cuda_memory"]["widths"]:
            ok = sorted((p["batch"], p["peak_extra_bytes"] / 2**30) for p in w["probes"] if p["ok"])
            if ok:
                ax.plot(*zip(*ok, strict=True), marker="o", label=f"width {w['width']}")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        written.append(
            _finish(
                fig,
                ax,
                out_dir / "cuda_memory.png",
                "Forward-pass memory against batch size",
                xlabel="batch size B",
                ylabel="peak extra GPU memory (GiB)",
                grid=True,
            )
        )

    if "sweep" in results:
        runs = results["sweep"]["runs"]
        fig, axes = plt.subplots(1, 2, figsize=(11, 4))
        for load in sorted({r["load"] for r in runs}):
            chosen = [r for r in runs if r["load"] == load]
            names = [f"{r['policy'][:5]}:{r['max_wait_ms']:g}" for r in chosen]
            p50 = [r["latency_s"]["p50"] for r in chosen]
            line = axes[0].plot(names, p50, marker="o", label=f"{load} p50")[0]
            p95 = [r["latency_s"]["p95"] for r in chosen]
            axes[0].plot(
                names, p95, marker="x", linestyle="--", color=line.get_color(), label=f"{load} p95"
            )
            axes[1].plot(names, [r["throughput_docs_per_s"] for r in chosen], marker="o")
        axes[0].set_ylabel("latency (s)")
        axes[0].legend(title="load", fontsize=8)
        axes[1].set_ylabel("documents per second")
        for ax in axes:
            ax.set_xlabel("policy:STR_MAX_WAIT_MS")
            ax.tick_params(axis="x", labelsize=8, rotation=30)
            ax.grid(alpha=0.3)
        fig.suptitle("Bucket wait sweep")
        written.append(_save(fig, out_dir / "wait_sweep.png"))
    return written


def main(argv: Sequence[str] | None = None) -> int:
    """Re-render summary.md and the plots from a saved results.json."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m monitoring.report RESULTS.json", file=sys.stderr)
        return 2
    path = Path(args[0])
    results = json.loads(path.read_text())
    if results.get("tool") == "monitoring.loadtest":
        markdown, plots = loadtest_markdown(results), loadtest_plots
    else:
        markdown = batchsize_markdown(results)
        plots = batchsize_plots if results.get("status") == "measured" else None
    (path.parent / "summary.md").write_text(markdown)
    if plots:
        plots(results, path.parent)
    print(markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

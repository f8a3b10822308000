"""The monitoring tools end to end: the load test against a live embedded pipeline, and the
batch-size study on real crops, each writing its JSON, Markdown and PNG plots."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from monitoring import batchsize, loadtest
from tests.render import png_bytes, render_words
from tests.service.conftest import ocr_stack

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
PAGES = [
    [["HELLO", "world"], ["OCR", "2024", "pipeline"]],
    [["load", "test"], ["three", "words", "here"]],
]


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    """images/ and labels/ of rendered pages, laid out like shared/data/dev."""
    images, labels = tmp_path / "data" / "images", tmp_path / "data" / "labels"
    images.mkdir(parents=True)
    labels.mkdir()
    for index, lines in enumerate(PAGES):
        image, boxes = render_words(lines)
        (images / f"page{index}.png").write_bytes(png_bytes(image))
        words = [{"text": text, "quad": quad} for text, quad in boxes]
        (labels / f"page{index}.json").write_text(json.dumps({"words": words}))
    return images


def flags(**options: object) -> list[str]:
    """Command-line arguments in the order given: ``flags(out=p, quiet=True)`` gives
    ``["--out", str(p), "--quiet"]`` (underscores become dashes, True a bare switch)."""
    argv: list[str] = []
    for name, value in options.items():
        argv.append("--" + name.replace("_", "-"))
        if value is not True:
            argv.append(str(value))
    return argv


def assert_png(path: Path) -> None:
    assert path.is_file(), f"{path.name} was not written"
    assert path.read_bytes()[:8] == PNG_MAGIC


def test_loadtest_against_embedded_server_writes_json_markdown_and_plots(
    base_settings, detector, recognizer, dataset: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    with ocr_stack("embedded", base_settings, detector, recognizer) as (url, _):
        code = loadtest.main(
            flags(
                url=url,
                images=dataset,
                documents=2,
                concurrency="1,2",
                batch_images=2,
                canvas_size=640,
                mag_ratio=1.0,
                warmup=0,
                quiet=True,
                out=out,
            )
        )
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    scenarios = {(s["endpoint"], s["concurrency"]): s for s in results["scenarios"]}
    assert set(scenarios) == {
        (endpoint, c) for endpoint in ("/ocr", "/pipeline", "/batch_ocr") for c in (1, 2)
    }
    for (endpoint, _), s in scenarios.items():
        assert s["documents_ok"] == s["documents"] == 2 and not s["errors"]
        assert s["throughput_docs_per_s"] > 0
        assert 0 < s["latency_s"]["p50"] <= s["latency_s"]["p95"] <= s["latency_s"]["p99"]
        assert s["boxes_per_doc"]["mean"] == 5  # five rendered words a page
        assert s["std_s_per_doc"]["mean"] > 0 and s["str_s_per_doc"]["mean"] > 0
        assert s["metrics_delta"]["ocr_std_seconds_count"] == 2
        if endpoint == "/ocr":
            assert s["str_s_per_box"] > 0 and s["batches"]["count"] == 0
        else:
            assert s["batches"]["count"] >= 1
            assert s["batches"]["sizes"]["max"] <= base_settings.str_max_batch
            assert s["bucket_wait_s"]["count"] >= 1
    assert scenarios[("/batch_ocr", 1)]["requests"] == 1  # two documents in one request
    assert len(results["records"]) == sum(s["requests"] for s in scenarios.values())

    summary = (out / "summary.md").read_text()
    assert "| /batch_ocr | 2 | 2/2 |" in summary
    assert "python -m monitoring.loadtest --url" in summary
    for name in ("latency", "throughput", "time_per_doc", "batch_sizes"):
        assert_png(out / f"{name}.png")


def test_loadtest_without_images_says_where_to_point_it(tmp_path: Path, capsys) -> None:
    code = loadtest.main(["--images", str(tmp_path / "absent"), "--quiet"])
    assert code == 2
    message = capsys.readouterr().err
    assert "image folder not found" in message and "--images" in message


def test_batchsize_study_on_cpu_writes_curve_sweep_and_plots(dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "bs"
    code = batchsize.main(
        flags(
            images=dataset,
            device="cpu",
            threads=2,
            sizes="1,4",
            crops=8,
            sweep=True,
            sweep_docs=2,
            loads=2,
            policies="fixed:0,adaptive:10",
            out=out,
        )
    )
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    rows = results["throughput"]["rows"]
    assert [r["batch_size"] for r in rows] == [1, 4]
    assert all(r["crops"] == 8 and r["crops_per_s"] > 0 for r in rows)
    assert rows[0]["batches"] == 8 and rows[1]["batches"] == 2
    assert results["throughput"]["knee"] in (1, 4)
    runs = results["sweep"]["runs"]
    assert [(r["policy"], r["max_wait_ms"]) for r in runs] == [("fixed", 0.0), ("adaptive", 10.0)]
    for run in runs:
        assert run["documents"] == 2 and run["crops"] == 10
        assert run["batch_size"]["max"] <= 350 and run["latency_s"]["p50"] > 0
    summary = (out / "summary.md").read_text()
    assert "Knee" in summary and "| 2.00 | adaptive | 10 |" in summary
    assert_png(out / "throughput_vs_batch.png")
    assert_png(out / "wait_sweep.png")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU path")
def test_batchsize_cuda_without_a_gpu_still_writes_its_reports(tmp_path: Path) -> None:
    code = batchsize.main(["--device", "cuda", "--out", str(tmp_path)])
    assert code == 0
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["status"] == "skipped"
    assert "torch.cuda.is_available() is False" in results["reason"]
    assert "Nothing measured on `cuda`" in (tmp_path / "summary.md").read_text()


def test_engine_scenario_measures_the_serving_overhead(dataset: Path, tmp_path: Path) -> None:
    """Without --url the tool starts its own embedded server and can call its engine directly."""
    out = tmp_path / "engine"
    code = loadtest.main(
        flags(
            images=dataset,
            documents=1,
            concurrency=1,
            endpoints="pipeline,engine",
            canvas_size=640,
            warmup=0,
            threads=2,
            no_plots=True,
            quiet=True,
            out=out,
        )
    )
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    scenarios = {s["endpoint"]: s for s in results["scenarios"]}
    assert scenarios["/engine"]["documents_ok"] == 1
    assert (
        scenarios["/engine"]["boxes_per_doc"]["mean"]
        == scenarios["/pipeline"]["boxes_per_doc"]["mean"]
    )
    assert "the in-process engine's" in (out / "summary.md").read_text()


def test_without_shared_data_the_load_test_draws_its_own_pages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """A clone away from shared/: `make bench` still has pages to send, and says where from."""
    monkeypatch.setenv("OCR_SHARED_DATA", str(tmp_path / "no-shared-data"))
    paths = loadtest.choose_images(None, tmp_path / "out")
    assert len(paths) >= 2 and all(p.parent == tmp_path / "out" / "sample-pages" for p in paths)
    assert all(p.read_bytes()[:8] == PNG_MAGIC for p in paths)
    message = capsys.readouterr().err
    assert "dev images not found" in message and "OCR_SHARED_DATA" in message
    assert "sample pages drawn by pipeline.demo" in message


def test_an_explicit_images_folder_is_never_replaced(tmp_path: Path) -> None:
    with pytest.raises(loadtest.DataError, match="image folder not found"):
        loadtest.choose_images(str(tmp_path / "absent"), tmp_path / "out")


def test_help_shows_each_default_once(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as stop:
        loadtest.parse_args(["--help"])
    assert stop.value.code == 0
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    assert "(default: None)" not in text and "(default: False)" not in text
    assert "``" not in text
    assert ") (default: " not in text  # no default said twice
    assert "(default: 16)" in text and "$OCR_SHARED_DATA/dev/images" in text

"""The web page's logic without Streamlit: API calls, error wording, drawing, tables, metrics."""

from __future__ import annotations

import ast
import io
import json
import math
import socket
import time
from pathlib import Path

import pytest
from flask import Flask, jsonify, request
from PIL import Image
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from tests.servers import serve
from web import charts, labels, logic

WEB_DIR = Path(logic.__file__).resolve().parent
SERVICE_PACKAGES = {"common", "std_service", "str_service", "pipeline", "monitoring"}


def png(width: int = 40, height: int = 30, colour=(255, 255, 255)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, format="PNG")
    return buffer.getvalue()


ANSWER = {
    "mode": "sequential",
    "width": 200,
    "height": 100,
    "words": [
        {
            "quad": [[10, 10], [90, 10], [90, 40], [10, 40]],
            "text": "Hello",
            "confidence": 0.95,
            "det_score": 0.8,
        },
        {
            "quad": [[110, 10], [190, 10], [190, 40], [110, 40]],
            "text": "World",
            "confidence": 0.12,
            "det_score": 0.7,
        },
    ],
    "lines": [],
    "text": "Hello World",
    "timings_ms": {"std": 120.5, "str": 30.25, "total": 151.0},
}


# --- the page stays a pure HTTP client ---------------------------------------------------------


def test_web_imports_no_service_code():
    """web/ deploys alone (its image has no torch and no service code), so it can't import them."""
    offenders = []
    for path in WEB_DIR.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            else:
                continue
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in SERVICE_PACKAGES]
    assert offenders == []


# --- configuration -----------------------------------------------------------------------------


def test_config_reads_pipeline_url_key_and_timeout():
    config = logic.WebConfig.from_env(
        {"PIPELINE_URL": "http://pipeline:5000/", "OCR_API_KEY": "s3cret", "WEB_TIMEOUT_S": "30"}
    )
    assert config.pipeline_url == "http://pipeline:5000"
    assert config.headers() == {"X-API-Key": "s3cret"}
    assert config.timeout_s == 30


@pytest.mark.parametrize("raw", ["", "abc", "-1", "nan", "inf"])
def test_config_falls_back_to_defaults_for_unusable_values(raw):
    config = logic.WebConfig.from_env({"WEB_TIMEOUT_S": raw, "PIPELINE_URL": "  "})
    assert config.pipeline_url == logic.DEFAULT_PIPELINE_URL
    assert config.timeout_s == logic.DEFAULT_TIMEOUT_S
    assert config.headers() == {}


def test_modes_map_to_the_contract_endpoints():
    assert logic.endpoint_for("sequential") == "/ocr"
    assert logic.endpoint_for("batched") == "/pipeline"
    with pytest.raises(ValueError):
        logic.endpoint_for("turbo")


def test_detection_fields_are_formatted_for_the_form():
    fields = logic.detection_fields({"canvas_size": 640.0, "mag_ratio": 1.5, "low_text": 0.35})
    assert fields == {"canvas_size": "640", "mag_ratio": "1.5", "low_text": "0.35"}


# --- answers and error wording -----------------------------------------------------------------


def test_parse_answer_returns_the_json_of_a_success():
    assert logic.parse_answer(200, json.dumps(ANSWER).encode()) == ANSWER


@pytest.mark.parametrize(
    ("status", "code", "detail", "expected"),
    [
        (400, "invalid_image", "not a recognised image", "could not read this file as an image"),
        (413, "image_too_large", "image is 9000x9000", "OCR_MAX_PIXELS"),
        (503, "overloaded", "queue full", "busy"),
        (504, "timeout", "gave up after 60 s", "smaller canvas"),
        (401, "unauthorized", "missing X-API-Key", "OCR_API_KEY"),
    ],
)
def test_error_answers_become_readable_sentences(status, code, detail, expected):
    body = json.dumps({"error": {"code": code, "message": detail}}).encode()
    with pytest.raises(logic.PageError) as caught:
        logic.parse_answer(status, body)
    assert caught.value.code == code
    assert expected in caught.value.message
    assert detail in caught.value.message  # the backend's own words stay visible


@pytest.mark.parametrize(
    ("status", "body", "code", "expected"),
    [
        (502, b"<html>Bad Gateway</html>", "http_error", "HTTP 502"),
        (404, b"", "http_error", "HTTP 404"),
        (
            418,
            json.dumps({"error": {"code": "teapot", "message": "short"}}).encode(),
            "teapot",
            "418",
        ),
        (200, b"<html>a login page</html>", "bad_answer", "PIPELINE_URL"),
        (200, b'{"status": "ok"}', "bad_answer", "not with an OCR result"),
    ],
)
def test_unexpected_answers_are_explained(status, body, code, expected):
    with pytest.raises(logic.PageError) as caught:
        logic.parse_answer(status, body)
    assert caught.value.code == code
    assert expected in caught.value.message
    assert "Traceback" not in caught.value.message


# --- calling a real HTTP server ----------------------------------------------------------------


@pytest.fixture(scope="module")
def fake_pipeline():
    """A stand-in that records what it receives and answers like the pipeline."""
    app = Flask("fake-pipeline")
    seen: list[dict] = []

    @app.post("/ocr")
    @app.post("/pipeline")
    def ocr():
        upload = request.files["image"]
        seen.append(
            {
                "path": request.path,
                "form": dict(request.form),
                "filename": upload.filename,
                "mimetype": upload.mimetype,
                "size": len(upload.read()),
                "key": request.headers.get("X-API-Key"),
            }
        )
        if request.form.get("sleep"):
            time.sleep(float(request.form["sleep"]))
        return jsonify(ANSWER | {"mode": "batched" if request.path == "/pipeline" else "x"})

    @app.get("/metrics")
    def metrics():
        return "ocr_errors_total 3.0\n", 200, {"Content-Type": "text/plain"}

    with serve(app) as url:
        yield url, seen


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_read_document_posts_the_image_and_settings_to_the_mode_endpoint(fake_pipeline):
    url, seen = fake_pipeline
    config = logic.WebConfig(url, api_key="k", timeout_s=10)
    data = png()
    answer = logic.read_document(config, "scan.PNG", data, "batched", {"canvas_size": "640"})
    assert answer["mode"] == "batched"
    assert seen[-1] == {
        "path": "/pipeline",
        "form": {"canvas_size": "640"},
        "filename": "scan.PNG",
        "mimetype": "image/png",
        "size": len(data),
        "key": "k",
    }


def test_backend_down_is_a_readable_error():
    config = logic.WebConfig(closed_port_url(), timeout_s=5)
    with pytest.raises(logic.PageError) as caught:
        logic.read_document(config, "a.png", png(), "sequential")
    assert caught.value.code == "backend_down"
    assert config.pipeline_url in caught.value.message
    assert "PIPELINE_URL" in caught.value.message


def test_slow_backend_is_a_readable_timeout(fake_pipeline):
    url, _ = fake_pipeline
    config = logic.WebConfig(url, timeout_s=0.3)
    with pytest.raises(logic.PageError) as caught:
        logic.read_document(config, "a.png", png(), "sequential", {"sleep": "1.5"})
    assert caught.value.code == "timeout"
    assert "0.3 s" in caught.value.message


def test_fetch_metrics_returns_the_text_or_a_readable_error(fake_pipeline):
    url, _ = fake_pipeline
    assert logic.fetch_metrics(logic.WebConfig(url)) == "ocr_errors_total 3.0\n"
    with pytest.raises(logic.PageError) as caught:
        logic.fetch_metrics(logic.WebConfig(closed_port_url()))
    assert caught.value.code == "backend_down"


# --- tables --------------------------------------------------------------------------------------


def test_words_table_is_numbered_like_the_quads():
    rows = logic.words_table(ANSWER)
    assert [(r["#"], r["text"]) for r in rows] == [(1, "Hello"), (2, "World")]
    assert rows[0]["confidence"] == 0.95 and rows[1]["det_score"] == 0.7


def test_timing_rows_follow_pipeline_order_and_show_queue_wait_only_when_batched():
    assert [r["stage"] for r in logic.timing_rows(ANSWER)] == ["STD", "STR", "total"]
    batched = ANSWER | {"timings_ms": {"total": 9, "queue_wait": 4.44, "str": 3, "std": 2}}
    rows = logic.timing_rows(batched)
    assert [r["stage"] for r in rows] == ["STD", "STR", "queue wait", "total"]
    assert rows[2]["ms"] == 4.4
    assert logic.timing_rows({"words": []}) == []


def test_summary_rows_for_a_result_and_for_an_error():
    ok = logic.summary_row(logic.Outcome("a.png", answer=ANSWER))
    assert ok["status"] == "ok" and ok["words"] == 2 and ok["total ms"] == 151.0
    assert ok["mean confidence"] == pytest.approx((0.95 + 0.12) / 2, abs=1e-3)
    error = logic.PageError("invalid_image", "not an image")
    failed = logic.summary_row(logic.Outcome("b.png", error=error))
    assert failed["status"] == "error" and failed["message"] == "not an image"
    assert failed["words"] is None


@pytest.mark.parametrize(
    ("name", "suffix", "expected"),
    [
        ("scan.png", ".txt", "scan.txt"),
        ("my receipt (1).jpeg", ".json", "my_receipt_1.json"),
        ("../../etc/passwd", ".txt", "passwd.txt"),
        ("....png", ".txt", "document.txt"),
    ],
)
def test_download_names_follow_the_upload_and_stay_safe(name, suffix, expected):
    assert logic.text_file_name(name, suffix) == expected


def test_answer_json_round_trips():
    assert json.loads(logic.answer_json(ANSWER)) == ANSWER


# --- colours and drawing -----------------------------------------------------------------------


def test_confidence_colours_run_from_red_to_green():
    low, mid, high = (logic.confidence_colour(v) for v in (0.0, 0.5, 1.0))
    assert low[0] > low[1] and high[1] > high[0]  # red-dominant low, green-dominant high
    assert mid[0] > 150 and mid[1] > 120  # amber in between
    greens = [logic.confidence_colour(v / 10)[1] for v in range(0, 6)]
    assert greens == sorted(greens)
    assert logic.confidence_colour(1.7) == high and logic.confidence_colour(-3) == low
    for bad in (math.nan, None, "x"):
        assert logic.confidence_colour(bad) == logic.UNKNOWN_COLOUR


def test_draw_quads_outlines_each_word_in_its_confidence_colour():
    image = Image.new("RGB", (200, 100), "white")
    drawn = logic.draw_quads(image, ANSWER["words"], (200, 100))
    assert drawn.size == (200, 100)
    assert image.getpixel((50, 40)) == (255, 255, 255)  # the input is left alone
    assert drawn.getpixel((50, 40)) == logic.confidence_colour(0.95)  # bottom edge of word 1
    assert drawn.getpixel((150, 40)) == logic.confidence_colour(0.12)  # bottom edge of word 2
    assert drawn.getpixel((50, 25)) == (255, 255, 255)  # inside stays visible


def test_draw_quads_scales_quads_to_the_image_shown():
    # The answer refers to a 400x200 image; the picture shown is 200x100.
    image = Image.new("RGB", (200, 100), "white")
    words = [{"quad": [[20, 20], [180, 20], [180, 80], [20, 80]], "confidence": 1.0}]
    drawn = logic.draw_quads(image, words, (400, 200))
    assert drawn.getpixel((50, 40)) == logic.confidence_colour(1.0)  # y 80 -> 40
    assert drawn.getpixel((50, 80)) == (255, 255, 255)


def test_draw_quads_shrinks_huge_images_and_skips_bad_quads():
    image = Image.new("RGB", (4000, 1000), "white")
    words = [
        {"quad": [[0, 500], [4000, 500], [4000, 600], [0, 600]], "confidence": 1.0},
        {"quad": "nonsense", "confidence": 1.0},
        {"quad": [[0, 0], [math.inf, 0], [1, 1], [0, 1]], "confidence": 1.0},
    ]
    drawn = logic.draw_quads(image, words, (4000, 1000), max_side=1000)
    assert drawn.size == (1000, 250)
    assert drawn.getpixel((500, 150)) == logic.confidence_colour(1.0)  # y 600 -> 150


def test_open_image_applies_exif_orientation_like_the_services():
    buffer = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise for display
    Image.new("RGB", (60, 20), "white").save(buffer, format="JPEG", exif=exif)
    assert logic.open_image(buffer.getvalue()).size == (20, 60)


def test_open_image_rejects_garbage_readably():
    with pytest.raises(logic.PageError) as caught:
        logic.open_image(b"definitely not an image")
    assert caught.value.code == "invalid_image"


def test_png_bytes_round_trip():
    image = Image.new("RGB", (7, 5), (1, 2, 3))
    assert Image.open(io.BytesIO(logic.png_bytes(image))).getpixel((3, 3)) == (1, 2, 3)


# --- metrics --------------------------------------------------------------------------------------

EXPOSITION = """\
# HELP ocr_request_seconds Request latency by endpoint and mode
# TYPE ocr_request_seconds histogram
ocr_request_seconds_bucket{endpoint="/ocr",le="1.0",mode="sequential",service="pipeline"} 2.0
ocr_request_seconds_bucket{endpoint="/ocr",le="2.0",mode="sequential",service="pipeline"} 6.0
ocr_request_seconds_bucket{endpoint="/ocr",le="+Inf",mode="sequential",service="pipeline"} 8.0
ocr_request_seconds_count{endpoint="/ocr",mode="sequential",service="pipeline"} 8.0
ocr_request_seconds_sum{endpoint="/ocr",mode="sequential",service="pipeline"} 12.0
ocr_request_seconds_bucket{endpoint="/pipeline",le="1.0",mode="batched",service="pipeline"} 4.0
ocr_request_seconds_bucket{endpoint="/pipeline",le="2.0",mode="batched",service="pipeline"} 4.0
ocr_request_seconds_bucket{endpoint="/pipeline",le="+Inf",mode="batched",service="pipeline"} 4.0
ocr_request_seconds_count{endpoint="/pipeline",mode="batched",service="pipeline"} 4.0
ocr_request_seconds_sum{endpoint="/pipeline",mode="batched",service="pipeline"} 2.0
ocr_errors_total{code="invalid_image",endpoint="/ocr",service="pipeline"} 2.0
ocr_errors_total{code="timeout",endpoint="/pipeline",service="pipeline"} 0.0
ocr_errors_total{code="invalid_image",endpoint="/ocr",service="other"} 1.0
ocr_queue_depth{queue="ocr.str.crops"} 7.0
weird_metric{text="a \\"quoted\\" {brace}"} 1e+03
this line is not a sample
"""


def test_parse_metrics_reads_names_labels_and_values():
    samples = logic.parse_metrics(EXPOSITION)
    assert len(samples) == 15
    weird = [s for s in samples if s.name == "weird_metric"][0]
    assert weird.labels == {"text": 'a "quoted" {brace}'} and weird.value == 1000.0
    inf = [s for s in samples if s.labels.get("le") == "+Inf"][0]
    assert math.isinf(float(inf.labels["le"]))


def test_histogram_sums_label_sets_and_estimates_quantiles_like_prometheus():
    samples = logic.parse_metrics(EXPOSITION)
    seq = logic.histogram(samples, "ocr_request_seconds", {"mode": "sequential"})
    assert (seq.count, seq.total, seq.mean) == (8.0, 12.0, 1.5)
    assert seq.quantile(0.5) == pytest.approx(1.5)  # rank 4: halfway through the (1, 2] bucket
    assert seq.quantile(0.95) == 2.0  # rank 7.6 lands in +Inf: the last finite bound
    assert seq.quantile(0.1) == pytest.approx(0.4)  # rank 0.8 in (0, 1]
    both = logic.histogram(samples, "ocr_request_seconds")
    assert both.count == 12 and both.buckets[0] == (1.0, 6.0)
    assert [row["count"] for row in both.bars()] == [6.0, 4.0, 2.0]
    assert [row["bucket"] for row in both.bars()] == ["≤ 1", "≤ 2", "> 2"]
    assert logic.histogram(samples, "ocr_str_batch_size") is None


def test_latency_errors_and_queue_rows():
    samples = logic.parse_metrics(EXPOSITION)
    rows = logic.latency_rows(samples)
    assert [(r["endpoint"], r["mode"], r["requests"]) for r in rows] == [
        ("/ocr", "sequential", 8),
        ("/pipeline", "batched", 4),
    ]
    assert rows[1]["mean s"] == 0.5
    errors = logic.counter_rows(samples, "ocr_errors_total", ("endpoint", "code"))
    assert errors == [{"endpoint": "/ocr", "code": "invalid_image", "count": 3}]
    assert logic.gauge_rows(samples, "ocr_queue_depth", "queue") == [
        {"queue": "ocr.str.crops", "value": 7.0}
    ]


def test_parser_reads_what_prometheus_client_writes():
    registry = CollectorRegistry()
    sizes = Histogram("ocr_str_batch_size", "x", buckets=(1, 8, 64), registry=registry)
    errors = Counter("ocr_errors_total", "x", ["endpoint", "code"], registry=registry)
    for size in (1, 5, 7, 40, 100):
        sizes.observe(size)
    errors.labels("/ocr", "timeout").inc(2)
    samples = logic.parse_metrics(generate_latest(registry).decode())
    hist = logic.histogram(samples, "ocr_str_batch_size")
    assert (hist.count, hist.total) == (5, 153)
    assert [row["count"] for row in hist.bars()] == [1, 2, 1, 1]
    assert logic.counter_rows(samples, "ocr_errors_total", ("endpoint", "code")) == [
        {"endpoint": "/ocr", "code": "timeout", "count": 2}
    ]


# --- number tags beside their quads ("the first hour": numbers hid the letters they label) ----


def interior(quad, margin: int):
    """Pixels well inside a quad's axis-aligned box: where its letters are."""
    xs, ys = [p[0] for p in quad], [p[1] for p in quad]
    return [
        (x, y)
        for x in range(int(min(xs)) + margin, int(max(xs)) - margin + 1)
        for y in range(int(min(ys)) + margin, int(max(ys)) - margin + 1)
    ]


def test_number_tags_leave_every_quads_interior_visible():
    # A top-left corner word (no room above or left), one on the top edge, and two lines
    # stacked so close that a tag above the lower word would land on the upper one.
    quads = [
        [[0, 0], [80, 0], [80, 30], [0, 30]],
        [[150, 0], [260, 0], [260, 30], [150, 30]],
        [[40, 120], [200, 120], [200, 150], [40, 150]],
        [[40, 154], [200, 154], [200, 184], [40, 184]],
        [[300, 100], [380, 90], [385, 130], [305, 140]],  # tilted
    ]
    words = [
        {"quad": q, "confidence": c} for q, c in zip(quads, (0.1, 0.3, 0.6, 0.8, 1.0), strict=True)
    ]
    drawn = logic.draw_quads(Image.new("RGB", (400, 300), "white"), words)
    line = max(2, round(400 / 600))
    for quad in quads[:4]:
        covered = [p for p in interior(quad, line + 1) if drawn.getpixel(p) != (255, 255, 255)]
        assert not covered, (quad, covered[:5])
    # ...and every tag was drawn: its colour shows outside the outlines, number in white.
    counts = {colour: n for n, colour in drawn.getcolors(maxcolors=1 << 20)}
    for word in words:
        assert counts.get(logic.confidence_colour(word["confidence"]), 0) > 150, word


def labels_overlap(a, b) -> bool:
    return a[0] < b[2] and a[2] > b[0] and a[1] < b[3] and a[3] > b[1]


def test_label_places_avoid_their_own_box_and_stay_inside_the_image():
    boxes = [(0, 0, 80, 30), (150, 0, 260, 30), (40, 120, 200, 150), (40, 154, 200, 184)]
    rects = labels.place_labels(boxes, [(16, 14)] * len(boxes), (400, 300), gap=2)
    for rect in rects:
        assert 0 <= rect[0] <= rect[2] <= 400 and 0 <= rect[1] <= rect[3] <= 300
        for other in boxes:  # no tag lies on any word here: there is room around each
            assert not labels_overlap(rect, other), (rect, other)
    assert rects[0][1] >= 30  # the corner word has its tag below it
    assert rects[2][3] <= 120  # the upper line's tag sits above it
    assert rects[3][2] <= 40 or rects[3][0] >= 200  # the lower one's beside it, not between


def test_a_quad_filling_the_image_still_gets_its_tag_inside_the_image():
    drawn = logic.draw_quads(
        Image.new("RGB", (60, 30), "white"),
        [{"quad": [[0, 0], [60, 0], [60, 30], [0, 30]], "confidence": 1.0}],
    )
    assert drawn.size == (60, 30)
    [rect] = labels.place_labels([(0, 0, 60, 30)], [(16, 14)], (60, 30))
    assert rect[0] >= 0 and rect[1] >= 0 and rect[2] <= 60 and rect[3] <= 30


# --- durations, table widths, chart labels, upload limit --------------------------------------


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "–"),
        (math.nan, "–"),
        (0.0004, "0.4 ms"),
        (0.01, "10.0 ms"),
        (0.9999, "999.9 ms"),
        (0.99996, "1.0 s"),
        (28.2371, "28.2 s"),
        (59.97, "1.0 min"),
        (150.0, "2.5 min"),
        (7200.0, "2.0 h"),
    ],
)
def test_durations_are_short_enough_for_a_metric_tile(seconds, text):
    assert logic.format_duration(seconds) == text
    assert len(logic.format_duration(seconds)) <= 9


def test_words_table_gives_the_text_column_the_room():
    widths = logic.WORDS_COLUMN_WIDTHS
    assert set(widths) == set(logic.words_table(ANSWER)[0])
    assert widths["text"] == max(widths.values()) and widths["text"] >= 150
    # "JAPANESE" in the table's 14 px font is ~75 px; 150 px holds words twice as long.
    assert sum(widths.values()) <= 400  # no sideways scrolling in a 1500 px window


def test_timings_chart_prints_each_value_on_its_bar():
    rows = logic.timing_rows(ANSWER)
    spec = charts.timings_chart(rows).to_dict()
    bars, values = spec["layer"]
    assert bars["mark"]["type"] == "bar" and values["mark"]["type"] == "text"
    assert values["encoding"]["text"]["field"] == "label"
    data = next(iter(spec["datasets"].values()))
    assert [row["label"] for row in data] == ["120.5 ms", "30.2 ms", "151.0 ms"]
    assert [row["stage"] for row in data] == ["STD", "STR", "total"]
    domain = bars["encoding"]["x"]["scale"]["domain"]
    assert domain[0] == 0 and domain[1] > 151.0  # room for the longest bar's number


def test_upload_limit_follows_the_pipelines_setting():
    from common.config import Settings

    default = logic.WebConfig.from_env({})
    assert default.max_upload_mb == Settings().ocr_max_upload_mb == 20
    assert logic.WebConfig.from_env({"OCR_MAX_UPLOAD_MB": "7.9"}).max_upload_mb == 7
    for bad in ("x", "-1", "inf", "0"):
        assert logic.WebConfig.from_env({"OCR_MAX_UPLOAD_MB": bad}).max_upload_mb == 20, bad
    assert logic.WebConfig.from_env({"OCR_MAX_UPLOAD_MB": "0.5"}).max_upload_mb == 1
    assert logic.upload_limit_mb(default, 200) == 20  # Streamlit's 200 MB default is not used
    big = logic.WebConfig.from_env({"OCR_MAX_UPLOAD_MB": "50"})
    assert logic.upload_limit_mb(big, 20) == 20  # never more than Streamlit's server takes


def test_streamlit_is_started_without_deploy_button_and_with_the_real_upload_limit():
    import tomllib

    root = WEB_DIR.parent
    config = tomllib.loads((root / ".streamlit" / "config.toml").read_text())
    assert config["client"]["toolbarMode"] == "minimal"
    assert config["server"]["maxUploadSize"] == logic.DEFAULT_MAX_UPLOAD_MB
    for path in ("deploy/supervisord.embedded.conf", "deploy/supervisord.services.conf"):
        text = (root / path).read_text()
        assert "--client.toolbarMode minimal" in text and "--server.maxUploadSize 20" in text
    cmd = [line for line in (root / "web" / "Dockerfile").read_text().splitlines() if "CMD" in line]
    assert '"--client.toolbarMode", "minimal"' in cmd[-1]
    assert '"--server.maxUploadSize", "20"' in cmd[-1]

"""An answer as the page's tables, timings, durations, download names and timings chart."""

from __future__ import annotations

import json
import math

import pytest

from tests.web_fixtures import ANSWER
from web import charts, tables
from web.client import Outcome
from web.errors import PageError

# A two-page document's answer: ANSWER's words on page 1, one more word on page 2.
DOCUMENT = {
    "mode": "batched",
    "pages": [
        {"page": 1, **{k: ANSWER[k] for k in ("width", "height", "words", "lines", "text")}},
        {
            "page": 2,
            "width": 300,
            "height": 150,
            "words": [
                {"quad": [[1, 1], [9, 1], [9, 9], [1, 9]], "text": "Again", "confidence": 0.5}
            ],
            "lines": [],
            "text": "Again",
        },
    ],
    "text": "Hello World\fAgain",
    "timings_ms": {"std": 10.0, "str": 2.0, "queue_wait": 1.0, "total": 14.0},
}


def test_a_single_image_is_one_page_and_a_document_its_pages():
    assert tables.answer_pages(ANSWER) == [ANSWER] and not tables.is_document(ANSWER)
    assert [page["page"] for page in tables.answer_pages(DOCUMENT)] == [1, 2]
    assert tables.is_document(DOCUMENT)
    one_page = DOCUMENT | {"pages": DOCUMENT["pages"][:1]}
    assert tables.is_document(one_page)  # a one-page PDF is still a document
    assert [w["text"] for w in tables.all_words(DOCUMENT)] == ["Hello", "World", "Again"]


def test_words_table_of_a_documents_page():
    rows = tables.words_table(tables.answer_pages(DOCUMENT)[1])
    assert [(r["#"], r["text"], r["det_score"]) for r in rows] == [(1, "Again", 0.0)]


@pytest.mark.parametrize(
    ("answer", "settings", "caption"),
    [
        (
            ANSWER,
            {"mode": "sequential", "canvas_size": 640},
            "2 words · Sequential (/ocr) · canvas 640 px",
        ),
        (
            DOCUMENT,
            {"mode": "batched", "canvas_size": 1280},
            "2 pages · 3 words · Batched (/pipeline) · canvas 1280 px",
        ),
        (DOCUMENT | {"pages": DOCUMENT["pages"][1:]}, {}, "1 page · 1 word"),
    ],
)
def test_result_caption_says_what_was_read_and_how(answer, settings, caption):
    assert tables.result_caption(answer, settings) == caption


def test_words_table_is_numbered_like_the_quads():
    rows = tables.words_table(ANSWER)
    assert [(r["#"], r["text"]) for r in rows] == [(1, "Hello"), (2, "World")]
    assert rows[0]["confidence"] == 0.95 and rows[1]["det_score"] == 0.7


def test_timing_rows_follow_pipeline_order_and_show_queue_wait_only_when_batched():
    assert [r["stage"] for r in tables.timing_rows(ANSWER)] == ["STD", "STR", "total"]
    batched = ANSWER | {"timings_ms": {"total": 9, "queue_wait": 4.44, "str": 3, "std": 2}}
    rows = tables.timing_rows(batched)
    assert [r["stage"] for r in rows] == ["STD", "STR", "queue wait", "total"]
    assert rows[2]["ms"] == 4.4
    assert tables.timing_rows({"words": []}) == []


def test_summary_rows_for_a_result_and_for_an_error():
    ok = tables.summary_row(Outcome("a.png", answer=ANSWER))
    assert ok["status"] == "ok" and ok["words"] == 2 and ok["total ms"] == 151.0
    assert ok["mean confidence"] == pytest.approx((0.95 + 0.12) / 2, abs=1e-3)
    error = PageError("invalid_image", "not an image")
    failed = tables.summary_row(Outcome("b.png", error=error))
    assert failed["status"] == "error" and failed["message"] == "not an image"
    assert failed["words"] is None and failed["pages"] is None


def test_summary_row_of_a_document_counts_every_page():
    row = tables.summary_row(Outcome("doc.pdf", answer=DOCUMENT))
    assert row["pages"] == 2 and row["words"] == 3 and row["total ms"] == 14.0
    assert row["mean confidence"] == pytest.approx((0.95 + 0.12 + 0.5) / 3, abs=1e-3)
    assert tables.summary_row(Outcome("a.png", answer=ANSWER))["pages"] == 1


@pytest.mark.parametrize(
    ("name", "suffix", "expected"),
    [
        ("scan.png", ".txt", "scan.txt"),
        ("my receipt (1).jpeg", ".json", "my_receipt_1.json"),
        ("../../etc/passwd", ".txt", "passwd.txt"),
        ("....png", ".txt", "document.txt"),
        ("report.pdf", "-searchable.pdf", "report-searchable.pdf"),
        ("scan.tiff", ".hocr", "scan.hocr"),
    ],
)
def test_download_names_follow_the_upload_and_stay_safe(name, suffix, expected):
    assert tables.text_file_name(name, suffix) == expected


def test_answer_json_round_trips():
    assert json.loads(tables.answer_json(ANSWER)) == ANSWER


# --- durations, table widths, chart labels -----------------------------------------------------


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
    assert tables.format_duration(seconds) == text
    assert len(tables.format_duration(seconds)) <= 9


def test_words_table_gives_the_text_column_the_room():
    widths = tables.WORDS_COLUMN_WIDTHS
    assert set(widths) == set(tables.words_table(ANSWER)[0])
    assert widths["text"] == max(widths.values()) and widths["text"] >= 150
    # "JAPANESE" in the table's 14 px font is ~75 px; 150 px holds words twice as long.
    assert sum(widths.values()) <= 400  # no sideways scrolling in a 1500 px window


def test_timings_chart_prints_each_value_on_its_bar():
    rows = tables.timing_rows(ANSWER)
    spec = charts.timings_chart(rows).to_dict()
    bars, values = spec["layer"]
    assert bars["mark"]["type"] == "bar" and values["mark"]["type"] == "text"
    assert values["encoding"]["text"]["field"] == "label"
    data = next(iter(spec["datasets"].values()))
    assert [row["label"] for row in data] == ["120.5 ms", "30.2 ms", "151.0 ms"]
    assert [row["stage"] for row in data] == ["STD", "STR", "total"]
    domain = bars["encoding"]["x"]["scale"]["domain"]
    assert domain[0] == 0 and domain[1] > 151.0  # room for the longest bar's number

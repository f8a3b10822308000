"""An answer as the page shows it in text: pages, table rows, timings, durations, download names;
and a job's row and progress.

Plain functions of the pipeline's JSON answer, so the page's tables are tested without Streamlit.
An answer is a single image's (``words`` at the top) or a document's (``pages``, each with its
``words``); answer_pages gives both as a list of pages, so the rest needs to know neither.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from web.client import MODES, Outcome
from web.jobs_client import Job

# Pixel widths of the words table's columns. Sized to fit its content, the progress bar took the
# room and the text column cut words ("JAPANES"); the words get the most, the numbers enough
# for "0.95". Together they fit the page's right-hand column (about 400 px in a 1500 px window
# with the sidebar open); on a wider one Streamlit shares the rest out among them.
WORDS_COLUMN_WIDTHS = {"#": 40, "text": 150, "confidence": 100, "det_score": 80}

TIMING_STAGES = (("std", "STD"), ("str", "STR"), ("queue_wait", "queue wait"), ("total", "total"))


def answer_pages(answer: Mapping) -> list[Mapping]:
    """The answer's pages in order: a document's ``pages``, or a single image as its one page."""
    pages = answer.get("pages")
    if isinstance(pages, list):
        return [page for page in pages if isinstance(page, Mapping)]
    return [answer]


def is_document(answer: Mapping) -> bool:
    """A PDF or multi-page TIFF's answer: shown with page numbers, even when it has one page."""
    return isinstance(answer.get("pages"), list)


def all_words(answer: Mapping) -> list[Mapping]:
    """Every page's words, in page order: what the summary counts and averages."""
    return [word for page in answer_pages(answer) for word in page.get("words", [])]


def result_caption(answer: Mapping, settings: Mapping) -> str:
    """``"2 pages · 14 words · Sequential (/ocr) · canvas 640 px"``: what was read, and how."""
    parts = [_count(len(all_words(answer)), "word")]
    if is_document(answer):
        parts.insert(0, _count(len(answer_pages(answer)), "page"))
    mode = settings.get("mode")
    if mode in MODES:
        parts.append(MODES[mode][1])
    if settings.get("canvas_size"):
        parts.append(f"canvas {settings['canvas_size']} px")
    return " · ".join(parts)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def words_table(answer: Mapping) -> list[dict]:
    """Rows for one page's words table (a single image's answer is its page), numbered like the
    quads on the image."""
    return [
        {
            "#": index,
            "text": str(word.get("text", "")),
            "confidence": round(float(word.get("confidence", 0.0)), 4),
            "det_score": round(float(word.get("det_score", 0.0)), 4),
        }
        for index, word in enumerate(answer.get("words", []), start=1)
    ]


def timing_rows(answer: Mapping) -> list[dict]:
    """The stages the answer timed, in pipeline order (queue wait only exists when batched)."""
    timings = answer.get("timings_ms") or {}
    return [
        {"stage": label, "ms": round(float(timings[key]), 1)}
        for key, label in TIMING_STAGES
        if isinstance(timings.get(key), int | float)
    ]


def format_duration(seconds: float | None) -> str:
    """A duration short enough for a metric tile: ``"10.0 ms"``, ``"28.2 s"``, ``"2.5 min"``.

    st.metric cuts long values off with an ellipsis; "28,237.1 ms" did not fit a fifth of a row.
    """
    if seconds is None or not math.isfinite(seconds):
        return "–"
    for unit, scale in (("ms", 1000.0), ("s", 1.0), ("min", 1 / 60)):
        value = round(seconds * scale, 1)
        limit = 1000.0 if unit == "ms" else 60.0
        if abs(value) < limit:
            return f"{value:.1f} {unit}"
    return f"{seconds / 3600:,.1f} h"


def mean_confidence(answer: Mapping) -> float | None:
    values = [float(w.get("confidence", 0.0)) for w in all_words(answer)]
    return sum(values) / len(values) if values else None


def summary_row(outcome: Outcome) -> dict:
    """One line of the several-files summary."""
    if outcome.answer is None:
        message = outcome.error.message if outcome.error else "not read"
        return {
            "file": outcome.name,
            "status": "error",
            "pages": None,
            "words": None,
            "mean confidence": None,
            "total ms": None,
            "message": message,
        }
    answer = outcome.answer
    confidence = mean_confidence(answer)
    total = (answer.get("timings_ms") or {}).get("total")
    return {
        "file": outcome.name,
        "status": "ok",
        "pages": len(answer_pages(answer)),
        "words": len(all_words(answer)),
        "mean confidence": None if confidence is None else round(confidence, 3),
        "total ms": None if total is None else round(float(total), 1),
        "message": "",
    }


def text_file_name(name: str, suffix: str) -> str:
    """``scan.png`` -> ``scan.txt``, ``scan.pdf`` -> ``scan-searchable.pdf``: downloads named
    after the upload."""
    stem = re.sub(r"[^\w.-]+", "_", Path(name).stem).strip("._") or "document"
    return f"{stem}{suffix}"


def answer_json(answer: Mapping) -> str:
    return json.dumps(answer, indent=2, ensure_ascii=False)


def job_row(job: Job) -> dict:
    """One line of the recent jobs table."""
    return {
        "id": job.id,
        "status": job.status,
        "done": job.pages_done,
        "failed": job.pages_failed,
        "total": job.pages_total,
        "created": job_time(job.created_at),
        "expires": job_time(job.expires_at),
    }


def job_progress(job: Job) -> str:
    """``"3 of 5 pages · 1 failed · running"``: the text on a job's progress bar."""
    parts = [f"{job.pages_ended} of {_count(job.pages_total, 'page')}"]
    if job.pages_failed:
        parts.append(f"{job.pages_failed} failed")
    return " · ".join([*parts, job.status])


def job_time(iso: str) -> str:
    """``2026-05-01T12:03:04.56+00:00`` -> ``2026-05-01 12:03:04 UTC``: a job's time, short."""
    try:
        at = datetime.fromisoformat(iso)
    except ValueError:
        return iso
    at = at.astimezone(UTC) if at.tzinfo else at.replace(tzinfo=UTC)  # the pipeline writes UTC
    return at.strftime("%Y-%m-%d %H:%M:%S UTC")

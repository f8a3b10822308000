"""Upload images and documents, send them to the pipeline, show what it found, page by page.

Layout only: every call, parse and drawing is a function of web/client.py, web/tables.py,
web/page_images.py or web/drawing.py; the settings, uploader and exports are web/widgets.py's.
"""

import logging

import pandas as pd
import streamlit as st

from web import charts, client, drawing, page_images, tables, widgets
from web.errors import PageError

log = logging.getLogger(__name__)
config = client.WebConfig.from_env()
outcomes: dict[str, client.Outcome] = st.session_state.setdefault("outcomes", {})

st.title("Read text from documents")

with st.sidebar:
    st.subheader("Processing")
    mode = st.radio(
        "Mode",
        list(client.MODES),
        format_func=lambda m: client.MODES[m][1],
        captions=[
            "STD finds the words, then STR reads them one at a time.",
            "The words join batches with other requests' words.",
        ],
        key="mode",
    )
    fields = widgets.detection_settings()
    st.caption(f"Backend: `{config.pipeline_url}`")

files = [(upload.name, upload.getvalue()) for upload in widgets.file_uploads(config, "uploads")]
digests = [client.digest(name.encode() + b"\0" + data) for name, data in files]
for stale in set(outcomes) - set(digests):  # forget results of files taken off the list
    del outcomes[stale]
if not files:
    st.info("Upload one or more images or PDFs, then press **Read text**.")
    st.stop()

settings = {"mode": mode, "canvas_size": int(fields["canvas_size"])}

if st.button("Read text", type="primary", key="read"):
    bar = st.progress(0.0, text="Starting…")
    for index, ((name, data), key) in enumerate(zip(files, digests, strict=True)):
        bar.progress(index / len(files), text=f"Reading {name} ({index + 1} of {len(files)})…")
        try:
            answer = client.read_document(config, name, data, mode, fields)
            outcomes[key] = client.Outcome(name, answer=answer, settings=settings, fields=fields)
        except PageError as exc:
            outcomes[key] = client.Outcome(name, error=exc, settings=settings)
        except Exception:  # a bug here must not cost the other files their results
            log.exception("reading %s failed", name)
            error = PageError("internal", "Something went wrong on the page; see its log.")
            outcomes[key] = client.Outcome(name, error=error, settings=settings)
    read = sum(outcomes[k].ok for k in digests)
    bar.progress(1.0, text=f"Done: {read} of {len(files)} read.")

shown = [
    (name, data, outcomes[key], key)
    for (name, data), key in zip(files, digests, strict=True)
    if key in outcomes
]


def show_outcome(outcome: client.Outcome, data: bytes, key: str) -> None:
    """One file's result: a page (chosen, for a document of several) with its annotated image,
    words and text; the timings and downloads of the whole file."""
    if outcome.error is not None:
        st.error(f"**{outcome.name}**: {outcome.error.message}")
        return
    answer = outcome.answer or {}
    pages = tables.answer_pages(answer)
    st.caption(tables.result_caption(answer, outcome.settings))
    index = choose_page(len(pages), key)
    page = pages[index]
    left, right = st.columns([3, 2])
    with left:
        show_page_image(page, data, index)
    with right:
        show_words(page)
        timings = tables.timing_rows(answer)
        if timings:
            st.markdown("**Timings (ms)**" if len(pages) == 1 else "**Timings, all pages (ms)**")
            st.altair_chart(charts.timings_chart(timings), width="stretch")
    st.markdown(f"**Text of page {index + 1}**" if tables.is_document(answer) else "**Text**")
    st.code(page.get("text", "") or " ", language=None, wrap_lines=True)
    show_downloads(outcome, data, key)


def choose_page(count: int, key: str) -> int:
    """The page to show (from 0): a number input for a document of several pages, else the one."""
    if count < 2:
        return 0
    number = st.number_input(
        f"Page (1–{count})",
        min_value=1,
        max_value=count,
        value=1,
        step=1,
        key=f"page-{key}",
        width=200,
    )
    return int(number) - 1


def show_page_image(page: dict, data: bytes, index: int) -> None:
    """The page with its words' quads drawn, at the pixel size the quads refer to."""
    try:
        answered = (int(page.get("width") or 0), int(page.get("height") or 0))
        image = page_images.page_image(data, index, answered)
        size = (answered[0] or image.width, answered[1] or image.height)
        drawn = drawing.draw_quads(image, page.get("words", []), size)
        st.image(
            drawing.png_bytes(drawn),
            caption="Quads numbered in reading order; colour = confidence "
            "(green sure, amber unsure, red doubtful).",
            width="stretch",
        )
    except PageError as exc:
        st.warning(exc.message)


def show_words(page: dict) -> None:
    """The page's words table, numbered like the quads."""
    table = pd.DataFrame(tables.words_table(page), columns=["#", "text", "confidence", "det_score"])
    widths = tables.WORDS_COLUMN_WIDTHS
    st.dataframe(
        table,
        hide_index=True,
        width="stretch",
        height=min(600, 38 + 35 * max(1, len(table))),
        column_config={
            "#": st.column_config.NumberColumn("#", width=widths["#"]),
            "text": st.column_config.TextColumn("text", width=widths["text"]),
            "confidence": st.column_config.ProgressColumn(
                "confidence",
                min_value=0.0,
                max_value=1.0,
                format="%.2f",
                color="auto",
                width=widths["confidence"],
            ),
            "det_score": st.column_config.NumberColumn(
                "det. score", format="%.2f", width=widths["det_score"]
            ),
        },
    )


def show_downloads(outcome: client.Outcome, data: bytes, key: str) -> None:
    """The whole file's text and JSON (from the answer); its searchable PDF and hOCR (made by
    the pipeline)."""
    answer = outcome.answer or {}
    text_col, json_col, pdf_col, hocr_col, _ = st.columns([1, 1, 1, 1, 1])
    text_col.download_button(
        "Download .txt",
        answer.get("text", ""),  # the pipeline's txt export too: pages joined by form feeds
        file_name=tables.text_file_name(outcome.name, ".txt"),
        mime="text/plain",
        key=f"txt-{key}",
        on_click="ignore",
    )
    json_col.download_button(
        "Download JSON",
        tables.answer_json(answer),
        file_name=tables.text_file_name(outcome.name, ".json"),
        mime="application/json",
        key=f"json-{key}",
        on_click="ignore",
    )
    # Made on a click, not at read time: the pipeline keeps nothing between requests, so each
    # export is another read of the whole file (with the mode and fields of the answer shown),
    # and most people want one format, if any.
    for column, fmt in ((pdf_col, "pdf"), (hocr_col, "hocr")):
        with column:
            widgets.export_download(
                outcome.exports,
                fmt,
                lambda fmt=fmt: client.fetch_export(
                    config, outcome.name, data, outcome.settings["mode"], fmt, outcome.fields
                ),
                tables.text_file_name(outcome.name, client.EXPORT_FORMATS[fmt].suffix),
                key,
                help="The pipeline reads the file again to make it.",
            )


def show_safely(outcome: client.Outcome, data: bytes, key: str) -> None:
    try:
        show_outcome(outcome, data, key)
    except Exception:
        log.exception("showing %s failed", outcome.name)
        st.error(f"**{outcome.name}**: the page could not show this result; see its log.")


if not shown:
    st.info("Press **Read text** to send the files to the pipeline.")
elif len(files) == 1:
    show_safely(shown[0][2], shown[0][1], shown[0][3])
else:
    st.subheader("Summary")
    st.dataframe(
        pd.DataFrame([tables.summary_row(outcome) for _, _, outcome, _ in shown]),
        hide_index=True,
        width="stretch",
    )
    labels = [f"{index}. {name}" for index, (name, *_rest) in enumerate(shown, start=1)]
    for tab, (_name, data, outcome, key) in zip(st.tabs(labels), shown, strict=True):
        with tab:
            show_safely(outcome, data, key)

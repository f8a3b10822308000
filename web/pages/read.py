"""Upload documents, send them to the pipeline, show what it found.

Layout only: every call, parse and drawing is a function of web/client.py, web/tables.py or
web/drawing.py.
"""

import logging

import pandas as pd
import streamlit as st

from web import charts, client, drawing, tables
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
    canvas_size = st.number_input(
        "Canvas size (px)",
        min_value=256,
        max_value=4096,
        value=client.DETECTION_DEFAULTS["canvas_size"],
        step=64,
        key="canvas_size",
        help="The longest side detection works at. Smaller is faster; larger finds small text.",
    )
    with st.expander("Detection thresholds"):
        mag_ratio = st.number_input(
            "Magnification", 0.5, 4.0, client.DETECTION_DEFAULTS["mag_ratio"], 0.1
        )
        text_threshold = st.slider(
            "Text threshold", 0.05, 0.95, client.DETECTION_DEFAULTS["text_threshold"], 0.05
        )
        link_threshold = st.slider(
            "Link threshold", 0.05, 0.95, client.DETECTION_DEFAULTS["link_threshold"], 0.05
        )
        low_text = st.slider("Low text", 0.05, 0.95, client.DETECTION_DEFAULTS["low_text"], 0.05)
    st.caption(f"Backend: `{config.pipeline_url}`")

# The uploader states and enforces the backend's limit (OCR_MAX_UPLOAD_MB), not Streamlit's 200 MB.
upload_mb = client.upload_limit_mb(config, st.get_option("server.maxUploadSize"))
uploads = st.file_uploader(
    "Images (PNG, JPEG, TIFF, WebP, BMP)",
    type=list(client.IMAGE_TYPES),
    accept_multiple_files=True,
    max_upload_size=upload_mb,
    key="uploads",
)
files = [(upload.name, upload.getvalue()) for upload in uploads or []]
digests = [client.digest(name.encode() + b"\0" + data) for name, data in files]
for stale in set(outcomes) - set(digests):  # forget results of files taken off the list
    del outcomes[stale]
if not files:
    st.info("Upload one or more images, then press **Read text**.")
    st.stop()

settings = {"mode": mode, "canvas_size": int(canvas_size)}
fields = client.detection_fields(
    {
        "canvas_size": canvas_size,
        "mag_ratio": mag_ratio,
        "text_threshold": text_threshold,
        "link_threshold": link_threshold,
        "low_text": low_text,
    }
)

if st.button("Read text", type="primary", key="read"):
    bar = st.progress(0.0, text="Starting…")
    for index, ((name, data), key) in enumerate(zip(files, digests, strict=True)):
        bar.progress(index / len(files), text=f"Reading {name} ({index + 1} of {len(files)})…")
        try:
            answer = client.read_document(config, name, data, mode, fields)
            outcomes[key] = client.Outcome(name, answer=answer, settings=settings)
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
    """One file's result: the annotated image, its words, text, downloads and timings."""
    if outcome.error is not None:
        st.error(f"**{outcome.name}**: {outcome.error.message}")
        return
    answer = outcome.answer or {}
    words = answer.get("words", [])
    used = outcome.settings
    st.caption(
        f"{len(words)} words · {client.MODES[used['mode']][1]} · canvas {used['canvas_size']} px"
    )
    left, right = st.columns([3, 2])
    with left:
        try:
            image = drawing.open_image(data)
            size = (
                int(answer.get("width") or image.width),
                int(answer.get("height") or image.height),
            )
            drawn = drawing.draw_quads(image, words, size)
            st.image(
                drawing.png_bytes(drawn),
                caption="Quads numbered in reading order; colour = confidence "
                "(green sure, amber unsure, red doubtful).",
                width="stretch",
            )
        except PageError as exc:
            st.warning(exc.message)
    with right:
        table = pd.DataFrame(
            tables.words_table(answer), columns=["#", "text", "confidence", "det_score"]
        )
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
        timings = tables.timing_rows(answer)
        if timings:
            st.markdown("**Timings (ms)**")
            st.altair_chart(charts.timings_chart(timings), width="stretch")
    st.markdown("**Text**")
    st.code(answer.get("text", "") or " ", language=None, wrap_lines=True)
    text_col, json_col, _ = st.columns([1, 1, 3])
    text_col.download_button(
        "Download .txt",
        answer.get("text", ""),
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


def show_safely(outcome: client.Outcome, data: bytes, key: str) -> None:
    try:
        show_outcome(outcome, data, key)
    except Exception:
        log.exception("showing %s failed", outcome.name)
        st.error(f"**{outcome.name}**: the page could not show this result; see its log.")


if not shown:
    st.info("Press **Read text** to send the images to the pipeline.")
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

"""The Streamlit widgets the Read and Jobs pages share: the detection settings, the uploader, and
a download the pipeline makes when it is first asked for.

Defined once, so both pages send the same settings, take the same files under the same limit,
and offer an export the same way.
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st
from streamlit.runtime.uploaded_file_manager import UploadedFile

from web import client
from web.errors import PageError

UPLOAD_LABEL = "Images or documents (PDF, PNG, JPEG, TIFF, WebP, BMP)"


def detection_settings() -> dict[str, str]:
    """The canvas size and, under *Detection thresholds*, the other CRAFT settings, starting at
    client.DETECTION_DEFAULTS; returned as the form fields to send."""
    defaults = client.DETECTION_DEFAULTS
    canvas_size = st.number_input(
        "Canvas size (px)",
        min_value=256,
        max_value=4096,
        value=defaults["canvas_size"],
        step=64,
        key="canvas_size",
        help="The longest side detection works at. Smaller is faster; larger finds small text.",
    )
    with st.expander("Detection thresholds"):
        mag_ratio = st.number_input("Magnification", 0.5, 4.0, defaults["mag_ratio"], 0.1)
        text_threshold = st.slider("Text threshold", 0.05, 0.95, defaults["text_threshold"], 0.05)
        link_threshold = st.slider("Link threshold", 0.05, 0.95, defaults["link_threshold"], 0.05)
        low_text = st.slider("Low text", 0.05, 0.95, defaults["low_text"], 0.05)
    return client.detection_fields(
        {
            "canvas_size": canvas_size,
            "mag_ratio": mag_ratio,
            "text_threshold": text_threshold,
            "link_threshold": link_threshold,
            "low_text": low_text,
        }
    )


def file_uploads(config: client.WebConfig, key: str) -> list[UploadedFile]:
    """The uploader: the formats the pipeline decodes, and its per-file limit
    (OCR_MAX_UPLOAD_MB, not Streamlit's 200 MB), so the limit it states is the one enforced."""
    upload_mb = client.upload_limit_mb(config, st.get_option("server.maxUploadSize"))
    uploads = st.file_uploader(
        UPLOAD_LABEL,
        type=list(client.UPLOAD_TYPES),
        accept_multiple_files=True,
        max_upload_size=upload_mb,
        key=key,
    )
    return list(uploads or [])


def export_download(
    kept: dict[str, bytes],
    fmt: str,
    fetch: Callable[[], bytes],
    file_name: str,
    key: str,
    help: str,
) -> None:
    """A download of the pipeline's ``fmt`` export (a key of client.EXPORT_FORMATS): a *Make*
    button (``help`` says what making it costs) that calls ``fetch``, then the download of the
    file, kept in ``kept`` for the reruns after.

    A button that fetches, rather than a download whose data is a callable, so a failure is
    worded on the page like any other; the button stays, to try again.
    """
    export = client.EXPORT_FORMATS[fmt]
    slot = st.empty()
    if fmt not in kept:
        if not slot.button(f"Make {export.label}", key=f"make-{fmt}-{key}", help=help):
            return
        try:
            with st.spinner(f"Making the {export.label}…"):
                kept[fmt] = fetch()
        except PageError as exc:
            st.error(exc.message)
            return
    slot.download_button(
        f"Download {export.label}",
        kept[fmt],
        file_name=file_name,
        mime=export.mime,
        key=f"{fmt}-{key}",
        on_click="ignore",
    )

"""Submit files as one job, follow the recent jobs, download a finished job's result.

Layout only: the calls are web/jobs_client.py's, the rows and captions web/tables.py's, and the
settings, uploader and exports web/widgets.py's (the Read page's own).
"""

import pandas as pd
import streamlit as st

from web import client, jobs_client, tables, widgets
from web.errors import PageError

POLL_S = 2.0  # how often a queued or running job is asked again
config = client.WebConfig.from_env()
# job id -> the result files fetched so far (format -> file): a done job's result never changes.
results: dict[str, dict[str, bytes]] = st.session_state.setdefault("job_results", {})

st.title("Jobs")
st.caption(
    "Many pages as one job: the pipeline reads them in the background and keeps the result, so "
    "nothing waits here. Follow a job on this page, or from anywhere with `GET /jobs/{id}`."
)

with st.sidebar:
    st.subheader("Detection")
    fields = widgets.detection_settings()
    st.caption(f"Backend: `{config.pipeline_url}`")

uploads = widgets.file_uploads(config, "job_uploads")
if st.button("Submit job", type="primary", key="submit", disabled=not uploads):
    # One key per upload and settings: a second click, or a rerun while the first is still
    # sending, answers the job the first made instead of making another.
    key = client.digest(repr(([u.file_id for u in uploads], sorted(fields.items()))).encode())
    try:
        files = [(upload.name, upload.getvalue()) for upload in uploads]
        job = jobs_client.submit_job(config, files, fields, key=f"web-{key}")
        st.session_state["job"] = job.id  # follow it: the selectbox below is not drawn yet
    except PageError as exc:
        st.error(exc.message)

st.subheader("Recent jobs")
st.button("Refresh", key="refresh")  # any rerun asks the pipeline again
try:
    recent = jobs_client.list_jobs(config)
except PageError as exc:
    st.error(exc.message)
    st.stop()
if not recent:
    st.info("No jobs yet: upload images or PDFs, then press **Submit job**.")
    st.stop()
st.dataframe(pd.DataFrame([tables.job_row(job) for job in recent]), hide_index=True)

listed = {job.id: job for job in recent}
for stale in set(results) - set(listed):  # forget the files of jobs no longer listed
    del results[stale]
if st.session_state.get("job") not in listed:
    st.session_state["job"] = recent[0].id
job_id = st.selectbox(
    "Job",
    list(listed),
    key="job",
    format_func=lambda i: f"{i} · {tables.job_time(listed[i].created_at)}",
)


def show_job(job_id: str, polled: bool) -> None:
    """The job as it is now: its progress and failed pages; Cancel while it runs, its downloads
    once done. ``polled``: this runs every POLL_S while the job runs, and reruns the whole page
    when it ends, so the table says so too and the polling stops."""
    try:
        job = jobs_client.job_status(config, job_id)
    except PageError as exc:
        st.error(exc.message)
        return
    if polled and job.ended:
        st.rerun()
    st.progress(job.fraction, text=tables.job_progress(job))
    if job.errors:
        st.markdown("**Pages that failed**")
        errors = pd.DataFrame(list(job.errors), columns=["page", "code", "message"])
        st.dataframe(errors, hide_index=True)
    if not job.ended:
        if st.button("Cancel job", key=f"cancel-{job.id}"):
            try:
                jobs_client.cancel_job(config, job.id)
            except PageError as exc:
                st.error(exc.message)
                return
            st.rerun()
    elif job.status == "done":
        show_downloads(job)
    elif job.status == "failed":
        st.error("Not one page of this job could be read, so it has no result.")
    else:
        st.warning("This job was cancelled, so it has no result.")


def show_downloads(job: jobs_client.Job) -> None:
    """The result as text and JSON (fetched at once: small, from the stored pages), and as a
    searchable PDF and hOCR (made when asked for: the PDF renders every page again)."""
    kept = results.setdefault(job.id, {})
    try:
        for fmt in ("txt", "json"):
            if fmt not in kept:
                kept[fmt] = jobs_client.fetch_result(config, job.id, fmt)
    except PageError as exc:
        st.error(exc.message)
        return
    name = f"job-{job.id}"
    text_col, json_col, pdf_col, hocr_col, _ = st.columns(5)
    for column, fmt in ((text_col, "txt"), (json_col, "json")):
        export = client.EXPORT_FORMATS[fmt]
        column.download_button(
            f"Download {export.label}",
            kept[fmt],
            file_name=tables.text_file_name(name, export.suffix),
            mime=export.mime,
            key=f"{fmt}-{job.id}",
            on_click="ignore",
        )
    for column, fmt in ((pdf_col, "pdf"), (hocr_col, "hocr")):
        with column:
            widgets.export_download(
                kept,
                fmt,
                lambda fmt=fmt: jobs_client.fetch_result(config, job.id, fmt),
                tables.text_file_name(name, client.EXPORT_FORMATS[fmt].suffix),
                job.id,
                help="The pipeline makes it from the job's stored pages.",
            )


if listed[job_id].ended:
    show_job(job_id, polled=False)
else:
    st.fragment(run_every=POLL_S)(show_job)(job_id, polled=True)

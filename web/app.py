"""Streamlit entry point: ``streamlit run web/app.py`` (PIPELINE_URL says where the pipeline is).

It only sets the page up and routes to the three pages in web/views/; what they compute lives in
plain modules beside this one (client, jobs_client, errors, tables, drawing, labels, charts,
metrics_view), which talk HTTP to the pipeline and import no service code, and the widgets two
pages share are web/widgets.py's.
"""

import sys
from pathlib import Path

# `streamlit run web/app.py` puts web/ on sys.path, not the folder above it; add that, so the
# pages import `web.client` and the rest under the names the tests use (one module, not two).
_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

import streamlit as st  # noqa: E402

st.set_page_config(
    page_title="OCR pipeline", page_icon=":material/document_scanner:", layout="wide"
)
# A bug must never show a traceback to the person at the page; the log keeps it.
st.set_option("client.showErrorDetails", "none")
# No "Deploy" button: .streamlit/config.toml and the deploy command lines set
# client.toolbarMode=minimal before the first page load. Setting it here as well only takes
# effect from the second load, but keeps a run from another folder tidy after that.
st.set_option("client.toolbarMode", "minimal")

_PAGES = Path(__file__).resolve().parent / "views"
st.navigation(
    [
        st.Page(
            _PAGES / "read.py", title="Read documents", icon=":material/description:", default=True
        ),
        st.Page(_PAGES / "jobs.py", title="Jobs", icon=":material/work_history:"),
        st.Page(_PAGES / "monitoring.py", title="Monitoring", icon=":material/monitoring:"),
    ]
).run()

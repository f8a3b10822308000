"""The page's charts as Altair specs, built apart from Streamlit so their content is testable.

st.bar_chart draws bars without their values; the timings are only useful with the numbers on
them, so the page draws this one itself: bars plus a text layer that prints each bar's ms.
"""

from __future__ import annotations

from collections.abc import Sequence

import altair as alt
import pandas as pd

# Room right of the longest bar for its number, as a share of the bar's length.
_LABEL_ROOM = 1.3


def timings_chart(rows: Sequence[dict], height: int = 180) -> alt.LayerChart:
    """Horizontal bars of ``timing_rows``' ``ms`` per ``stage``, in the rows' order, each bar
    labelled with its value (``"151.0 ms"``)."""
    frame = pd.DataFrame(list(rows), columns=["stage", "ms"])
    frame["label"] = [f"{value:,.1f} ms" for value in frame["ms"]]
    longest = float(frame["ms"].max()) if len(frame) else 0.0
    x = alt.X(
        "ms:Q",
        title="ms",
        scale=alt.Scale(domain=[0, max(1.0, longest * _LABEL_ROOM)], nice=False),
    )
    y = alt.Y("stage:N", title=None, sort=list(frame["stage"]))
    base = alt.Chart(frame).encode(x=x, y=y)
    bars = base.mark_bar().encode(tooltip=["stage", "label"])
    values = base.mark_text(align="left", baseline="middle", dx=4).encode(text="label:N")
    return alt.layer(bars, values).properties(height=height)

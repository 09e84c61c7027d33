"""Bits every page shares: the signed-in actor, the store-unavailable message, columns that
wrap on a narrow page."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import streamlit as st

from audit_analytics.errors import StoreError
from audit_analytics.textsafe import md_escape

if TYPE_CHECKING:
    from streamlit.delta_generator import DeltaGenerator

    from audit_analytics.engines.shared import SharedData


def current_actor() -> str:
    """Who is using the app (the signed-in user; ``local-user`` when sign-in is off)."""
    try:
        if st.user.is_logged_in:
            return str(st.user.get("email") or st.user.get("name") or "signed-in user")
    except Exception:  # st.user is unavailable when no identity provider is configured
        pass
    actor: str = st.session_state.get("actor", "local-user")
    return actor


def ticked_row(state: Any, rows: int) -> int | None:
    """The row ticked in a single-row ``st.dataframe`` selection (its return value or its
    session state), when there is one inside a table of ``rows`` rows."""
    try:
        ticked = list(state["selection"]["rows"])
    except (KeyError, TypeError):
        return None
    return ticked[0] if ticked and 0 <= ticked[0] < rows else None


def load_shared_or_stop(*, interim: bool = False) -> SharedData:
    """The shared frame, or a clear message with a retry when the database is unreachable.
    ``interim``: while the first load runs, the database answers meanwhile
    (:func:`audit_analytics.ui.data.get_frame`), and a caption says so."""
    from audit_analytics.ui.data import get_frame

    try:
        shared = get_frame(interim=interim)
    except StoreError as exc:
        st.error(f"The audit database cannot be reached: {md_escape(str(exc))}", icon=":material/database:")
        st.button("Retry", type="primary", key="retry_store")
        st.stop()
    if shared.stale and not shared.index.holds_copy:
        # pushdown reads every view from the database: there is no last copy to show
        st.error(
            "The audit database is not answering, and in pushdown mode every view is read from it: "
            f"{md_escape(shared.stale_reason)}",
            icon=":material/database:",
        )
        st.button("Retry", type="primary", key="retry_store")
        st.stop()
    if shared.is_interim:
        st.caption(
            "The events are still loading into memory: meanwhile this page reads the database "
            "directly, and the user list shows no emails yet.",
        )
    if shared.stale:
        st.warning(
            "The audit database is not answering; showing the data as last loaded, which may be stale "
            f"(loaded {shared.loaded_at:%Y-%m-%d %H:%M:%S} UTC). It reloads by itself when the database is back.",
            icon=":material/cloud_off:",
        )
    return shared


COLUMNS_KEY = "aa-cols"
METRIC_MIN_WIDTH = 200  # px a figure (st.metric) needs for "Successes after failures", "-2,730 (-3.5%)"
_GAP = "1rem"  # Streamlit's gap between columns (st.columns' default, "small")


def _wrapping_style(key: str, count: int, min_width: int) -> str:
    """The CSS of :func:`wrapping_columns` (the app's own fixed style, no user text): a
    container query per row length, from ``count - 1`` columns a row down to one."""
    scope = f".st-key-{COLUMNS_KEY}-{key}"
    rules = [f"{scope} {{ container-type: inline-size; }}"]
    rules.append(f"{scope} [data-testid=stHorizontalBlock] {{ flex-wrap: wrap; }}")
    for per_row in range(count - 1, 0, -1):
        width = f"calc((100% - {per_row - 1} * {_GAP}) / {per_row})"
        rules.append(
            f"@container (max-width: {(per_row + 1) * min_width - 1}px) {{"
            f" {scope} [data-testid=stColumn] {{ width: {width} !important; flex: 0 0 {width} !important;"
            f" min-width: {width} !important; }} }}"
        )
    return "<style>" + " ".join(rules) + "</style>"


def wrapping_columns(key: str, count: int, *, min_width: int) -> list[DeltaGenerator]:
    """``count`` columns side by side that wrap, as many to a row as leave each ``min_width``
    px of the row's width: two charts of a pair stack on a narrow page, four figures go two by
    two. Streamlit itself stacks columns only under 640 px of window, so at 800 px with the
    sidebar open four figures had 110 px each and their labels and changes were cut
    ("Successes a…", "-2,730 (-3.5…"). ``key`` names the row (a fixed name of the page's)."""
    with st.container(key=f"{COLUMNS_KEY}-{key}"):
        st.html(_wrapping_style(key, count, min_width))
        return list(st.columns(count))


def hidden_container(key: str, *, within: DeltaGenerator | None = None) -> DeltaGenerator:
    """A container the user never sees, for elements that must reach the browser but show
    nothing (the warm-up's, the sign-in cookie's script). It takes no room either: an element,
    even an empty one, takes a gap in its column (16 px under Sign out), and the gap belongs to
    the container's wrapper, hidden with it. The style alone goes to Streamlit's event
    container, which takes none."""
    box = (within or st).container(key=key)
    box.html(  # the app's own fixed style, no user text
        f"<style>[data-testid=stLayoutWrapper]:has(> .st-key-{key}), .st-key-{key} "
        "{ display: none !important; }</style>"
    )
    return box


WARM_UP_KEY = "aa-warm-up"
# while the run waits to send the warm-up, Streamlit's status widget would show "Running" and a
# Stop button over the sign-in form: nothing the user started, so not shown there
_HIDE_STATUS = "<style>[data-testid=stStatusWidget] { display: none !important; }</style>"
WARM_UP_AFTER_S = 1.0
"""How long after the sign-in form the warm-up's elements are sent (:func:`warm_up_browser`):
sent at once, the browser compiled their code before it drew the form, which then showed 2.5
instead of 1.2 s after the address was opened (Chromium, 2 cores)."""
_WARM_UP_TICK_S = 0.05


def warm_up_browser(*, after: float = WARM_UP_AFTER_S) -> None:
    """One of each kind of element the pages show, in a container the user never sees, drawn
    on the sign-in screen: the browser fetches and compiles their code while the user types
    the password, instead of after signing in. Streamlit loads each kind's code when one is
    first drawn: plotly.js (4.7 MB: 2.7-3.5 s of the page's main thread on 2 cores) on the
    first chart; after the sign-in click, 45 files one kind after another (radio, dates,
    multiselect, ..., the table's) for 1.1 s before the Audit Log's table could draw (1,000,000
    events, 2 cores). Sent ``after`` seconds after the form, which the browser has drawn by
    then: a click on Sign in meanwhile ends the wait at once (the rerun it asks for stops this
    run at its next element, and the placeholder's update is one every 50 ms). The widgets are
    disabled and keyed apart from the pages'. A run without a browser (AppTest: no request
    headers) does not wait."""
    # plotly takes pandas from sys.modules when it is there, even half imported: the first
    # sign-in runs while the table loads in another thread, which may be importing pandas
    # (seen: "partially initialized module 'pandas' has no attribute 'Series'"). Importing it
    # here waits for that import to finish.
    import pandas  # noqa: F401
    import plotly.graph_objects as go

    def key(name: str) -> str:
        return f"{WARM_UP_KEY}-{name}"

    st.html(_HIDE_STATUS)  # the app's own fixed style, no user text
    holder = st.empty()
    # no browser (a script run by AppTest): no form being drawn to wait for
    for _tick in range(round(after / _WARM_UP_TICK_S) if st.context.headers else 0):
        time.sleep(_WARM_UP_TICK_S)
        holder.empty()  # an element: where Streamlit stops this run when a rerun is asked for
    with hidden_container(WARM_UP_KEY, within=holder):
        st.plotly_chart(go.Figure(), config={"staticPlot": True, "displayModeBar": False})
        st.button("warm-up", key=key("button"), disabled=True)
        st.dataframe({"warm-up": [1]}, key=key("table"), on_select="rerun", selection_mode="single-row")
        st.radio("warm-up", ["a", "b"], key=key("radio"), disabled=True, label_visibility="collapsed")
        st.date_input("warm-up", value=None, key=key("date"), disabled=True, label_visibility="collapsed")
        st.multiselect("warm-up", ["a"], key=key("multiselect"), disabled=True, label_visibility="collapsed")
        st.selectbox("warm-up", ["a"], key=key("selectbox"), disabled=True, label_visibility="collapsed")
        st.checkbox("warm-up", key=key("checkbox"), disabled=True, label_visibility="collapsed")
        st.toggle("warm-up", key=key("toggle"), disabled=True, label_visibility="collapsed")
        st.segmented_control(
            "warm-up", ["a"], key=key("segmented"), disabled=True, label_visibility="collapsed"
        )
        st.number_input("warm-up", value=1, key=key("number"), disabled=True, label_visibility="collapsed")
        st.slider("warm-up", 0, 2, 1, key=key("slider"), disabled=True, label_visibility="collapsed")
        st.text_area("warm-up", key=key("text"), disabled=True, label_visibility="collapsed")
        with st.expander("warm-up"):
            st.code("warm-up", language=None)

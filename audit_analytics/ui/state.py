"""URL state and the shared filter panel.

The View lives in ``st.session_state["view"]`` and is mirrored to ``st.query_params`` after
every change, so the address always shares the exact view. When the URL changes from outside
(a link from another page, a pasted address), the view and the panel's widgets are re-read.
"""

from __future__ import annotations

from datetime import date, datetime

import polars as pl
import streamlit as st

from audit_analytics.errors import QueryError
from audit_analytics.filters import PERIODS, Filter
from audit_analytics.schema import CATEGORIES, CATEGORY_CODES, RESULT_LABELS
from audit_analytics.view import View

PANEL_PERIODS = ["today", "7d", "30d", "all", "custom"]
PERIOD_LABELS = {
    "today": "Today",
    "7d": "Last 7 days",
    "30d": "Last 30 days",
    "all": "All time",
    "custom": "Custom",
}
RESULT_CHOICES = ["all", "done", "failed", "pending", "processing"]
RESULT_CHOICE_LABELS = {"all": "All"} | RESULT_LABELS


def browser_tz() -> str:
    """The viewer's time zone as the browser reports it (UTC when unknown)."""
    try:
        tz = st.context.timezone
    except Exception:  # outside a browser session
        tz = None
    if not tz:
        return "UTC"
    try:
        Filter(tz=tz)
    except ValueError:
        return "UTC"
    return tz


def _params() -> dict[str, str]:
    return {k: v for k, v in st.query_params.to_dict().items()}


def current_view(*, defaults: View | None = None) -> View:
    """The view for this run: from the URL when it changed from outside, else the session's."""
    params = _params()
    state = st.session_state
    if not params and "view" in state and state.get("_url_seen"):
        # a page switch from the sidebar drops the query string: the filters are shared
        # across pages, so keep the session's view and put it back in the address
        view = state["view"].replace(page=1, event=None)
        set_view(view)
        seed_widgets(view)
        return view
    if "view" not in state or state.get("_url_seen") != params:
        view = View.from_params(params, tz=browser_tz())
        if defaults is not None and not params:
            view = defaults.replace(filter=defaults.filter.replace(tz=view.filter.tz))
        state["view"] = view
        state["_url_seen"] = params
        seed_widgets(view)
    return state["view"]


def set_view(view: View) -> None:
    """Make ``view`` current and write it to the URL."""
    st.session_state["view"] = view
    params = view.to_params()
    if _params() != params:
        st.query_params.from_dict(params)
    st.session_state["_url_seen"] = params


def seed_widgets(view: View) -> None:
    """Put the view's values into the panel's widgets (only ever before they are drawn)."""
    f = view.filter
    state = st.session_state
    state["f_period"] = f.period
    state["f_start"] = _as_date(f.start)
    state["f_end"] = _as_date(f.end)
    state["f_types"] = list(f.types)
    state["f_users"] = list(f.users)
    state["f_result"] = f.results[0] if len(f.results) == 1 else "all"
    state["f_search"] = f.query
    state["f_utc"] = view.utc
    state["f_archive"] = view.archive
    state["_search_error"] = None


def _as_date(value: date | datetime | None) -> date | None:
    if value is None:
        return None
    return value.date() if isinstance(value, datetime) else value


def _apply_panel() -> None:
    state = st.session_state
    view: View = state["view"]
    period = state.get("f_period") or "7d"
    start, end = state.get("f_start"), state.get("f_end")
    if period != "custom":
        start = end = None
    elif start and end and start > end:
        start, end = end, start
    result = state.get("f_result") or "all"
    results: tuple[str, ...] = () if result == "all" else (result,)
    if len(view.filter.results) > 1 and result == "all" and state.get("_panel_result_seeded") == "all":
        results = view.filter.results  # keep a multi-result filter the radio cannot show
    flt = view.filter.replace(
        period=period,
        start=start,
        end=end,
        types=tuple(state.get("f_types") or ()),
        users=tuple(state.get("f_users") or ()),
        results=results,
    )
    set_view(view.replace(filter=flt, page=1, event=None))


def _reset_panel() -> None:
    view: View = st.session_state["view"]
    fresh = View(utc=view.utc, filter=Filter(period="7d", tz=view.filter.tz))
    set_view(fresh)
    seed_widgets(fresh)


def _toggle_archive() -> None:
    view: View = st.session_state["view"]
    set_view(view.replace(archive=bool(st.session_state.get("f_archive")), page=1, event=None))


def _toggle_utc() -> None:
    view: View = st.session_state["view"]
    utc = bool(st.session_state.get("f_utc"))
    tz = "UTC" if utc else browser_tz()
    set_view(view.replace(utc=utc, filter=view.filter.replace(tz=tz)))


def filter_panel(actors: pl.DataFrame) -> None:
    """The sidebar: period, type, user, result; Apply and Reset; the time-zone switch."""
    view: View = st.session_state["view"]
    sb = st.sidebar
    with sb.form("filter-panel", border=False):
        st.radio("Period", PANEL_PERIODS, key="f_period", format_func=PERIOD_LABELS.get)
        c1, c2 = st.columns(2)
        c1.date_input("From", key="f_start", value=None, help="Custom period: first day")
        c2.date_input("To", key="f_end", value=None, help="Custom period: last day (included)")
        st.multiselect(
            "Type",
            CATEGORY_CODES,
            key="f_types",
            format_func=lambda c: f"{CATEGORIES[c].label} ({c})",
            placeholder="All types",
        )
        user_options = _user_options(actors, view.filter.users)
        emails = (
            dict(zip(actors["actor"].to_list(), actors["email"].to_list(), strict=False))
            if actors.height
            else {}
        )
        st.multiselect(
            "User",
            user_options,
            key="f_users",
            format_func=lambda u: f"{u} · {emails[u]}" if emails.get(u) else u,
            placeholder="All users (type to search)",
        )
        st.radio(
            "Result", RESULT_CHOICES, key="f_result", format_func=RESULT_CHOICE_LABELS.get, horizontal=True
        )
        st.form_submit_button("Apply", type="primary", on_click=_apply_panel, width="stretch")
    sb.button(
        "Reset", on_click=_reset_panel, width="stretch", help="Last 7 days, all types, users and results"
    )
    sb.toggle("Show times in UTC", key="f_utc", on_change=_toggle_utc)
    sb.toggle(
        "Include archive",
        key="f_archive",
        on_change=_toggle_archive,
        help="Also search the events that retention moved to the Parquet archive",
    )
    sb.caption(f"Times shown in {view.filter.tz}")


def _user_options(actors: pl.DataFrame, selected: tuple[str, ...]) -> list[str]:
    options = actors["actor"].to_list() if actors.height else []
    seen = set(options)
    return options + [u for u in selected if u not in seen]


def search_bar(*, label: str = "Search") -> None:
    """The search box: commits after a pause in typing (no Enter needed); a query the
    language cannot read is reported under it and the last good search stays in force."""
    st.text_input(
        label,
        key="f_search",
        live="400ms",
        type="search",
        on_change=_apply_search,
        placeholder='e.g. user:alice@corp.com action:delete resource:my-service  -result:done  "disk full"',
        help="Free words match actor, email, target, IP, description, request id. "
        "Qualifiers: user: action: resource: type: result: ip: (address or CIDR) request_id: after: before:. "
        "* is a wildcard, -qualifier:value negates, a repeated qualifier means OR.",
    )
    error = st.session_state.get("_search_error")
    if error:
        st.error(error, icon=":material/error:")


def _apply_search() -> None:
    state = st.session_state
    view: View = state["view"]
    text = state.get("f_search") or ""
    try:
        flt = view.filter.replace(query=text)
    except QueryError as exc:
        state["_search_error"] = search_error_text(text, exc)
        return
    state["_search_error"] = None
    set_view(view.replace(filter=flt, page=1, event=None))


def search_error_text(text: str, exc: QueryError) -> str:
    """The message under the search bar: where (with a caret) and why, as plain text."""
    from audit_analytics.textsafe import md_escape

    return f"Search not applied, at character {exc.position}: {md_escape(exc.message)}"


def period_label(flt: Filter) -> str:
    return PERIOD_LABELS.get(flt.period, PERIODS.get(flt.period, flt.period))


EXPLORER_PAGE = "app_pages/explorer.py"


def open_explorer(view: View) -> None:
    """Go to the Audit Log page showing ``view`` (its URL carries every filter)."""
    st.session_state.pop("view", None)  # the explorer re-reads the URL
    st.switch_page(EXPLORER_PAGE, query_params=view.to_params())

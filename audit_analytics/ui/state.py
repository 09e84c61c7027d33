"""URL state and the shared filter panel.

The View lives in ``st.session_state["view"]`` and is mirrored to ``st.query_params`` after
every change, so the address always shares the exact view. When the URL changes from outside
(a link from another page, a pasted address), the view and the panel's widgets are re-read.
"""

from __future__ import annotations

from datetime import date, datetime
from urllib.parse import parse_qsl, urlsplit

import polars as pl
import streamlit as st

from audit_analytics.errors import QueryError
from audit_analytics.filters import PERIODS, Filter
from audit_analytics.schema import CATEGORIES, PERMISSION, RESULT_LABELS, TYPE_CHOICES
from audit_analytics.textsafe import md_escape
from audit_analytics.ui.data import note_zone
from audit_analytics.view import View, without_presets

PANEL_PERIODS = ["today", "7d", "30d", "all", "custom"]
PERIOD_LABELS = {
    "today": "Today",
    "7d": "Last 7 days",
    "30d": "Last 30 days",
    "all": "All time",
    "custom": "Custom",
}
FIRST_DAY = date(1970, 1, 1)
"""The earliest day the panel's date boxes take (events are from 1970 on)."""
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


LINK_NOTES = "_link_notes"
"""Session key: sentences for the values a link asked for and the view left out."""


def current_view(*, defaults: View | None = None) -> View:
    """The view for this run: from the URL when it changed from outside, else the session's."""
    params = _params()
    state = st.session_state
    page = _page_id()
    params = _back_from_a_switch(page, params)
    switched = state.get("_panel_page") != page
    state["_panel_page"] = page
    if not params and "view" in state and state.get("_url_seen"):
        # a page switch from the sidebar drops the query string: the filters are shared
        # across pages, so keep the session's view and put it back in the address
        view: View = state["view"].replace(page=1, event=None)
        seed_widgets(view)  # first: it drops a link's unreadable search, which set_view keeps
        set_view(view)
        return view
    if "view" not in state or state.get("_url_seen") != params:
        here = browser_tz()
        note_zone(here)  # the warm-up computes the default views in the zones viewers use
        notes: list[str] = []
        view = View.from_params(params, tz=here, notes=notes)
        state[LINK_NOTES] = notes  # what the link asked for that could not be shown (filter_panel says it)
        if defaults is not None and not params:
            view = defaults.replace(filter=defaults.filter.replace(tz=view.filter.tz))
        state["view"] = view
        state["_url_seen"] = params
        # the address decides which event is open (Back, a pasted link): a table keyed as
        # before would still hold the row it had ticked and open that event again
        forget_table_selection()
        seed_widgets(view)
        _keep_unreadable_search(params, view)
    elif switched:
        # a page switch drops the panel's widget states with the old page's widgets (also at
        # the default view, whose address is empty): put the view's values back, or the
        # Period radio would show its first choice ("Today") and Apply would make it so
        seed_widgets(state["view"])
    current: View = state["view"]
    return current


TABLE_GENERATION = "_table_generation"
"""Part of the Audit Log table's key (``ui.explorer.table_key``): a new one forgets its selection."""


def forget_table_selection() -> None:
    """Give the Audit Log's table a new key, so the row it had ticked is no longer selected."""
    st.session_state[TABLE_GENERATION] = st.session_state.get(TABLE_GENERATION, 0) + 1


_LEFT = "_page_left"


def _switch_page(target: str, params: dict[str, str]) -> None:
    """``st.switch_page`` to ``target`` with ``params`` as its address. Streamlit writes the
    new address on the page being left before it switches pages, which makes a history entry
    of its own: Back then shows this page with the other page's filters (a finding's custom
    minutes on the Security review). What this page's address was is kept for
    :func:`_back_from_a_switch`."""
    st.session_state[_LEFT] = (_page_id(), dict(params), _params())
    st.session_state.pop("view", None)  # the page switched to re-reads the URL
    st.switch_page(target, query_params=params)


def _back_from_a_switch(page: str | None, params: dict[str, str]) -> dict[str, str]:
    """The address to read: the one this page had when it switched to another
    (:func:`_switch_page`) when the browser went back to the entry Streamlit made on the way
    (this page, the other page's address), which is written back in its place; else ``params``."""
    left = st.session_state.get(_LEFT)
    if not left or left[0] != page or params != left[1] or params == left[2]:
        return params
    own: dict[str, str] = dict(left[2])
    st.query_params.from_dict(own)  # after Back, Streamlit replaces the entry: no new one
    st.session_state.pop("view", None)  # read again from this address, not kept from the other page
    return own


def _keep_unreadable_search(params: dict[str, str], view: View) -> None:
    """A link whose ``q`` the search language cannot read: the View drops it, but the page
    must not pretend the link asked for every event. Keep the text in the search box with
    the parser's error; :func:`stop_on_link_search_error` shows it and draws nothing else."""
    text = (params.get("q") or "").strip()
    if not text or view.filter.query == text:
        return
    try:
        view.filter.replace(query=text)
    except QueryError as exc:
        state = st.session_state
        state["f_search"] = text
        state["_search_error"] = search_error_text(text, exc)
        state["_link_search_error"] = True


def _page_id() -> str | None:
    """Which page this run draws (its script), None outside a script run."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    return ctx.page_script_hash if ctx is not None else None


def set_view(view: View) -> None:
    """Make ``view`` current and write it to the URL."""
    st.session_state["view"] = view
    params = view.to_params()
    if st.session_state.get("_link_search_error") and st.session_state.get("f_search"):
        # the link's unreadable search stays in the address until it is corrected or cleared:
        # a reload shows the same error, never every event
        params["q"] = st.session_state["f_search"]
    if _params() != params:
        st.query_params.from_dict(params)
    st.session_state["_url_seen"] = params


def _widget_values(view: View) -> dict[str, object]:
    f = view.filter
    return {
        "f_period": f.period,
        "f_start": _as_date(f.start),
        "f_end": _as_date(f.end),
        "f_types": list(f.types),
        "f_users": list(f.users),
        "f_result": f.results[0] if len(f.results) == 1 else "all",
        "f_search": f.query,
        "f_utc": view.utc,
        "f_archive": view.archive,
    }


def seed_widgets(view: View) -> None:
    """Put the view's values into the panel's widgets (only ever before they are drawn)."""
    state = st.session_state
    for key, value in _widget_values(view).items():
        state[key] = value
    state["_search_error"] = None
    state["_link_search_error"] = False
    state["_panel_error"] = None


def _as_date(value: date | datetime | None) -> date | None:
    if value is None:
        return None
    return value.date() if isinstance(value, datetime) else value


def _kept(shown: date | None, current: date | datetime | None) -> date | datetime | None:
    """The date box's day, or the view's own instant when the box still shows its day."""
    if isinstance(current, datetime) and shown == _as_date(current):
        return current
    return shown


def _apply_panel() -> None:
    state = st.session_state
    state[LINK_NOTES] = []  # the reader chose a view of their own
    view: View = state["view"]
    period = state.get("f_period") or "7d"
    start, end = state.get("f_start"), state.get("f_end")
    if period != "custom":
        start = end = None
    elif start and end and start > end:
        # never swap behind the reader's back: say what is wrong and keep the view
        state["_panel_error"] = (
            f"From ({start.isoformat()}) is after To ({end.isoformat()}): pick a From on or before "
            "the To. The period was not changed."
        )
        return
    state["_panel_error"] = None
    if period == "custom" and view.filter.period == "custom":
        # a chart's drill-down opens instants (one hour, one day: to 2026-12-04T00:00 excluded),
        # which the date boxes show as days; a box left as it was keeps its instant (Apply read
        # "to 2026-12-04" as that whole day and the view doubled: 97 events became 191)
        start = _kept(start, view.filter.start)
        end = _kept(end, view.filter.end)
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
    st.session_state[LINK_NOTES] = []
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


TYPE_RESULT_NOT_APPLIED = (
    "Type and Result do not apply on this page: the failure charts read the failed logins, "
    "and the detections read every event of the period (a success after failures, a stuck "
    "operation, a role change). They still apply on the Audit Log and Activity."
)
ARCHIVE_NOT_APPLIED = (
    "The archive is searched on the Audit Log only: this page's figures are the events in the database."
)


def type_label(code: str) -> str:
    """A Type choice as the panel shows it: ``Authentication (auth)``; the permission changes
    (``type:permission``, not a category) as ``Permission changes (user, organization)``."""
    if code == PERMISSION:
        return "Permission changes (role and permission actions of user, organization)"
    return f"{CATEGORIES[code].label} ({code})"


def filter_panel(actors: pl.DataFrame, *, type_and_result: bool = True, archive: bool = True) -> None:
    """The sidebar: period, type, user, result; Apply and Reset; the time-zone switch.
    ``type_and_result=False`` (the Security review) shows Type and Result disabled, with a
    note that they do not apply there; their values stay for the other pages. ``archive=False``
    (Activity, Security review: their figures are the database's events) does the same for
    "Include archive", which showed on while the page left the archive out."""
    view: View = st.session_state["view"]
    sb = st.sidebar
    with sb.form("filter-panel", border=False):
        st.radio("Period", PANEL_PERIODS, key="f_period", format_func=PERIOD_LABELS.get)
        # one above the other: side by side, the sidebar leaves each box too narrow for a date
        # from 1970 on (the earliest time an event may have): Streamlit's own floor, ten
        # years back, turned a 1999 box red with no word, and Apply then took the last date
        # the box had accepted
        st.date_input("From", key="f_start", value=None, min_value=FIRST_DAY, help="Custom period: first day")
        st.date_input(
            "To", key="f_end", value=None, min_value=FIRST_DAY, help="Custom period: last day (included)"
        )
        st.multiselect(
            "Type",
            TYPE_CHOICES,
            key="f_types",
            format_func=type_label,
            placeholder="All types",
            disabled=not type_and_result,
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
            "Result",
            RESULT_CHOICES,
            key="f_result",
            format_func=RESULT_CHOICE_LABELS.get,
            horizontal=True,
            disabled=not type_and_result,
        )
        if not type_and_result:
            st.caption(TYPE_RESULT_NOT_APPLIED)
        st.form_submit_button("Apply", type="primary", on_click=_apply_panel, width="stretch")
    panel_error = st.session_state.get("_panel_error")
    if panel_error:
        sb.error(panel_error, icon=":material/event_busy:")
    for note in st.session_state.get(LINK_NOTES) or ():  # the page's top: a phone hides the sidebar
        st.warning(md_escape(note), icon=":material/link_off:")  # quotes the link's text: never markdown
    sb.button(
        "Reset", on_click=_reset_panel, width="stretch", help="Last 7 days, all types, users and results"
    )
    sb.toggle("Show times in UTC", key="f_utc", on_change=_toggle_utc)
    sb.toggle(
        "Include archive",
        key="f_archive",
        on_change=_toggle_archive,
        help="Also search the events that retention moved to the Parquet archive",
        disabled=not archive,
    )
    if not archive:
        sb.caption(ARCHIVE_NOT_APPLIED)
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
        placeholder='e.g. user:alice@corp.com action:delete resource:my-service  -result:done  "failed to"',
        help="Free words match actor, email, target, IP, description, request id. "
        "Qualifiers: user: action: resource: type: result: ip: (address or CIDR) request_id: after: before:. "
        "* is a wildcard, -qualifier:value negates, a repeated qualifier means OR, "
        '"words in quotes" match as a phrase.',
    )
    error = st.session_state.get("_search_error")
    if error:
        st.error(error, icon=":material/error:")
    stop_on_link_search_error(search_bar=True)


def stop_on_link_search_error(*, search_bar: bool = False) -> None:
    """When the address's search could not be read, say so and stop the page: showing the
    period's events without it would pretend the link asked for all of them."""
    state = st.session_state
    if not state.get("_link_search_error"):
        return
    if search_bar:
        how = "Correct it above, or clear it to see every event of the period."
    else:
        st.error(
            state.get("_search_error") or "The link's search could not be read.", icon=":material/error:"
        )
        st.code(state.get("f_search") or "", language=None)  # the link's text, never markdown
        how = "Open the page without it to see every event of the period."
    st.info(f"Nothing is shown: the link's search was not applied. {how}", icon=":material/search_off:")
    if not search_bar:
        st.button("Open without the search", key="drop_link_search", on_click=_drop_link_search)
    st.stop()


def _drop_link_search() -> None:
    state = st.session_state
    state["_link_search_error"] = False
    state["_search_error"] = None
    state["f_search"] = state["view"].filter.query


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
    state["_link_search_error"] = False
    set_view(view.replace(filter=flt, page=1, event=None))


def search_error_text(text: str, exc: QueryError) -> str:
    """The message under the search bar: where (with a caret) and why, as plain text."""
    return f"Search not applied, at character {exc.position}: {md_escape(exc.message)}"


def period_label(flt: Filter) -> str:
    return PERIOD_LABELS.get(flt.period, PERIODS.get(flt.period, flt.period))


EXPLORER_PAGE = "app_pages/explorer.py"
SECURITY_PAGE = "app_pages/security.py"


def open_security_review(view: View) -> None:
    """Go to the Security review on ``view``'s period, users and search (Type and Result do
    not apply there, nor a preset's search term: the detections read every event)."""
    wide = View(filter=without_presets(view.filter).replace(types=(), results=()), utc=view.utc)
    _switch_page(SECURITY_PAGE, wide.to_params())


def open_explorer(view: View) -> None:
    """Go to the Audit Log page showing ``view`` (its URL carries every filter)."""
    _switch_page(EXPLORER_PAGE, view.to_params())


def open_explorer_link(link: str) -> None:
    """Go, in this tab and session, to the Audit Log at a link :func:`audit_analytics.view.explorer_link`
    made (a table's link column opens a new tab, where Streamlit starts a new session, which
    resumes the sign-in from the browser's cookie)."""
    _switch_page(EXPLORER_PAGE, dict(parse_qsl(urlsplit(link).query)))

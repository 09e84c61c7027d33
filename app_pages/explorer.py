"""Audit Log: filter panel, debounced search, paged table, detail, deep links, export."""

import streamlit as st

from audit_analytics.engines.sql import TooLargeForMemory
from audit_analytics.textsafe import md_escape
from audit_analytics.ui import auth
from audit_analytics.ui import explorer as ui
from audit_analytics.ui.common import current_actor, load_shared_or_stop
from audit_analytics.ui.data import actors_of, archived_beside, selection_for, with_archive
from audit_analytics.ui.state import current_view, filter_panel, search_bar, set_view
from audit_analytics.view import page_of_selection

user = auth.require("audit.read")  # first: Streamlit may serve this file without app.py
shared = load_shared_or_stop(interim=True)  # while the first load runs, the database answers
view = ui.header_sort(current_view())  # a click on a column header orders the whole result
if view.archive:
    try:
        shared = with_archive(shared)
    except TooLargeForMemory as exc:
        st.warning(f"The archive cannot be searched here: {md_escape(str(exc))}", icon=":material/memory:")
view, notice = ui.resolve_event(view, shared)
notice = notice or st.session_state.pop(ui.EVENT_NOTICE, None)  # a related event opened
set_view(view)

filter_panel(actors_of(shared))
st.title("Audit Log")
search_bar()
ui.presets(view)
if notice:
    st.info(notice, icon=":material/info:")

selection = selection_for(shared, view.filter, view.sort)
page = page_of_selection(shared.index, selection, view.page, view.page_size)
asked_page = view.page
if page.page != view.page:
    view = view.replace(page=page.page)
    set_view(view)

top, export = st.columns([5, 1], vertical_alignment="bottom")
top.caption(
    md_escape(view.filter.describe(count=page.total) + (" · including the archive" if view.archive else ""))
)
archived = 0 if view.archive else archived_beside(shared, view.filter)
if archived:  # after a retention run "all time" of the database is not all time
    top.caption(
        f"Retention moved {archived:,} events of these months and categories to the archive: they are "
        "not in this count. Turn on Include archive in the sidebar to search them too."
    )
may_export, why_not = auth.export_permission(user)
export.button(
    "Export",
    key="export_open",
    disabled=page.total == 0 or not may_export,
    help=why_not or None,
    width="stretch",
    on_click=ui.open_export,
)
if not may_export:
    top.caption(why_not)  # under the count: the button's column is too narrow for a sentence
if may_export and st.session_state.get("export_dialog_open"):
    ui.export_dialog(shared, view, page.total, current_actor())

if page.total == 0:
    st.info(ui.no_match_notice(shared, view), icon=":material/search_off:")
    if ui.all_time(view.filter) != view.filter:  # else it changes nothing
        st.button("Show all time", key="show_all_time", on_click=ui.show_all_time)
else:
    ui.sort_controls(view)
    selected = ui.selected_event(view, page)
    if selected != view.event:
        view = view.replace(event=selected)
        set_view(view)
    event = ui.event_by_id(shared, selected)
    # the detail goes below the table, never beside it: the table keeps its width and columns
    ui.events_table(view, page, selected=selected if event is not None else None)
    ui.page_controls(page, asked=asked_page)
    if event is not None:
        st.divider()
        ui.event_detail(event, shared, view)

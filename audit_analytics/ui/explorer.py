"""The explorer's widgets: result table, page controls, detail, export dialog.

User-supplied values are only ever shown through ``st.dataframe``, ``st.code`` and
``st.text`` (plain text), never through markdown or HTML.
"""

from __future__ import annotations

import functools
import hashlib
import json
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

import polars as pl
import sqlalchemy as sa
import streamlit as st

from audit_analytics.dates import zone
from audit_analytics.diff import diff_json
from audit_analytics.errors import StoreError
from audit_analytics.filters import Filter, Sort
from audit_analytics.schema import CATEGORIES, SORTABLE_COLUMNS
from audit_analytics.textsafe import md_escape, plain
from audit_analytics.ui.common import ticked_row
from audit_analytics.ui.data import SharedFrame, get_store, invalidate, selection_for
from audit_analytics.ui.state import (
    TABLE_GENERATION,
    forget_table_selection,
    open_security_review,
    period_label,
    seed_widgets,
    set_view,
)
from audit_analytics.view import PAGE_SIZES, PRESETS, ResultPage, View, preset_filter

if TYPE_CHECKING:
    import pandas as pd
    from pandas.io.formats.style import Styler

RESULT_COLOURS = {"done": "#1e7d32", "failed": "#c62828", "pending": "#b26a00", "processing": "#1565c0"}
# the list's columns as the table shows them: the six a reader scans first, then Target (the
# widest) last, so a narrow window or an open detail never hides Result or IP
TABLE_COLUMNS = ("Time", "Actor", "Type", "Action", "Result", "IP", "Target")
# column header (as display_frame names it) -> the Sort column a click on it orders by
HEADER_SORT = {
    "Time": "time",
    "Actor": "actor",
    "Type": "type",
    "Action": "action",
    "Target": "target",
    "Result": "result",
}
# rows the table shows at once while a detail is open below it (so the detail starts on screen)
DETAIL_OPEN_ROWS = 10
ROW_PX = 35
SORT_LABELS = {
    "time": "Time",
    "actor": "Actor",
    "type": "Type",
    "action": "Action",
    "target": "Target",
    "result": "Result",
}


def table_key(view: View, generation: int | None = None) -> str:
    """The table's widget key: a new key for each filter/sort/page (and after the detail is
    closed), so a selection made on one result can never point at a row of another."""
    if generation is None:
        try:
            generation = st.session_state.get(TABLE_GENERATION, 0)
        except Exception:  # outside a script run (tests build keys too)
            generation = 0
    material = repr((view.filter, view.sort, view.page, view.page_size, generation))
    return "events-" + hashlib.sha1(material.encode()).hexdigest()[:16]  # noqa: S324 - a key, not security


def display_frame(rows: pl.DataFrame, tz: str) -> pl.DataFrame:
    """The page's rows as the table shows them: time in the shown zone, coloured result."""

    # plain() runs here in Python on the page's few rows, not as a callback inside polars
    # (see filters._polars_cidr: a callback on polars' workers can deadlock under load)
    def shown(column: str) -> pl.Series:
        return pl.Series([plain(v) for v in rows[column].to_list()], dtype=pl.String)

    return rows.select(
        pl.col("time").dt.convert_time_zone(tz).dt.strftime("%Y-%m-%d %H:%M:%S").alias("Time"),
        pl.lit(shown("actor")).alias("Actor"),
        pl.col("type").cast(pl.String).alias("Type"),
        pl.col("action").alias("Action"),
        pl.lit(shown("target")).alias("Target"),
        pl.col("result").cast(pl.String).alias("Result"),
        pl.col("ip").fill_null("").alias("IP"),
    )


def styled_results(shown: pl.DataFrame) -> Styler:
    """The Result column coloured by outcome (a style on plain text; values stay text)."""

    def colour(value: Any) -> str:
        c = RESULT_COLOURS.get(value)
        return f"color: {c}; font-weight: 600" if c else ""

    return shown.to_pandas().style.map(colour, subset=["Result"])


def event_by_id(shared: SharedFrame, event_id: str | None) -> dict[str, Any] | None:
    """One event with every field. The in-memory engine fetches its params and before/after
    by id; while the database is away the event still shows from memory, with
    ``_details_error`` saying why those fields are missing."""
    if not event_id:
        return None
    try:
        return cast("dict[str, Any] | None", shared.index.get(event_id))
    except (StoreError, sa.exc.SQLAlchemyError) as exc:
        if not shared.index.holds_copy:  # nothing but the database to answer from
            raise
        event: dict[str, Any] | None = shared.index.get_summary(event_id)
        if event is None:
            raise
        return event | {"_details_error": str(exc).splitlines()[0]}


# ---------------------------------------------------------------------------------------
# deep links


def resolve_event(view: View, shared: SharedFrame, *, now: datetime | None = None) -> tuple[View, str | None]:
    """Bring a deep-linked event into view: the page it sits on, widening the filter when it
    falls outside. Returns the view to show and a notice for the reader (or None)."""
    if not view.event:
        return view, None
    if shared.index.get_summary(view.event) is None:  # is it there at all (no detail fetch)
        where = (
            "" if view.archive else " in the database; if retention has archived it, turn on Include archive"
        )
        return view.replace(event=None), f"No event with id “{md_escape(view.event)}”{where}."
    index = shared.index
    notice = None
    pos = index.position_of(view.event, selection_for(shared, view.filter, view.sort, now=now))
    if pos is None:
        widened = view.filter.replace(period="all", start=None, end=None)
        notice = "The linked event is outside the chosen period, so the period was widened to all time."
        pos = index.position_of(view.event, selection_for(shared, widened, view.sort, now=now))
        if pos is None:
            widened = Filter(period="all", tz=view.filter.tz)
            notice = "The linked event does not match the current filters, so they were cleared (all time)."
            pos = index.position_of(view.event, selection_for(shared, widened, view.sort, now=now))
        view = view.replace(filter=widened)
        seed_widgets(view)
    page = pos // view.page_size + 1
    if page != view.page:
        view = view.replace(page=page)
    return view, notice


# ---------------------------------------------------------------------------------------
# controls


def _on_sort() -> None:
    view: View = st.session_state["view"]
    column = st.session_state["sort_col"]
    if column != view.sort.column:
        # another column starts in its reading order: time newest first, text A–Z (keeping
        # "newest first" turned a first sort by actor into Z–A)
        descending = column == "time"
    else:
        descending = st.session_state["sort_dir"] == "desc"
    sort = Sort(column, descending)
    set_view(view.replace(sort=sort, page=1, event=None))


def _on_size() -> None:
    view: View = st.session_state["view"]
    set_view(view.replace(page_size=int(st.session_state["page_size"]), page=1, event=None))


def _go(page: int) -> None:
    view: View = st.session_state["view"]
    set_view(view.replace(page=page, event=None))


def _on_page_input() -> None:
    _go(int(st.session_state["page_no"]))


def order_label(column: str, direction: str) -> str:
    """The Order control's words for ``column``: short enough for an 800 px window.

    >>> order_label("time", "desc"), order_label("actor", "asc")
    ('Newest', 'A–Z')
    """
    if column == "time":
        return "Newest" if direction == "desc" else "Oldest"
    return "Z–A" if direction == "desc" else "A–Z"


def sort_controls(view: View) -> None:
    """Sorting beside the table orders the whole result (header sorting is off)."""
    st.session_state["sort_col"] = view.sort.column
    st.session_state["sort_dir"] = "desc" if view.sort.descending else "asc"
    st.session_state["page_size"] = view.page_size
    c1, c2, c3 = st.columns([2, 2, 1])
    c1.selectbox(
        "Sort by",
        list(SORTABLE_COLUMNS),
        key="sort_col",
        format_func=lambda column: SORT_LABELS.get(column, column),
        on_change=_on_sort,
    )
    c2.segmented_control(
        "Order",
        ["desc", "asc"] if view.sort.column == "time" else ["asc", "desc"],  # Newest | Oldest, A–Z | Z–A
        key="sort_dir",
        format_func=lambda d: order_label(view.sort.column, d),
        on_change=_on_sort,
        required=True,
    )
    c3.selectbox("Page size", PAGE_SIZES, key="page_size", on_change=_on_size)
    # also keeps the table's toolbar (above its top right corner while the pointer or a finger
    # is on the table) off the Page size box, whose value and arrow it covered
    st.caption("Tick a row to open its detail below the table.")


def page_controls(page: ResultPage, *, asked: int | None = None) -> None:
    """Previous, Next, the page number and where the page sits: a row that wraps rather than
    squeezing the buttons' labels on a narrow window. ``asked``: the page the view asked for
    (typed in the box or in the address); past the last, the last is shown and the row says so.
    The box takes any page number: with a highest one it turned red on 999 without a word,
    and kept the page it showed."""
    st.session_state["page_no"] = page.page
    row = st.container(horizontal=True, vertical_alignment="bottom", gap="small")
    row.button(
        "‹ Previous",
        key="prev_page",
        disabled=page.page <= 1,
        on_click=_go,
        args=(page.page - 1,),
        width="content",
    )
    row.button(
        "Next ›",
        key="next_page",
        disabled=page.page >= page.pages,
        on_click=_go,
        args=(page.page + 1,),
        width="content",
    )
    row.number_input("Page", min_value=1, step=1, key="page_no", on_change=_on_page_input, width=140)
    row.caption(
        f"Rows {page.first_row:,}–{page.last_row:,} of {page.total:,} · page {page.page:,} of {page.pages:,}",
        width="content",
    )
    if asked is not None and asked > page.pages:
        row.caption(
            f":material/info: There is no page {asked:,}: page {page.pages:,} is the last.", width="content"
        )


def header_sort(view: View) -> View:
    """A click on a column header selects that column (the table's column selection mode,
    which is also what keeps the grid from sorting only the rows of this page): order the
    whole result by it, as the Sort control does, shown there and in the URL. A second click
    on the sorted column turns the order round. Call before the result is computed."""
    state = st.session_state.get(table_key(view))
    try:
        columns = list(state["selection"]["columns"]) if state is not None else []
    except (KeyError, TypeError):
        columns = []
    if not columns:
        return view
    # the column selection is spent: a new table key forgets it (and any row ticked with it)
    forget_table_selection()
    header = str(columns[0])
    column = HEADER_SORT.get(header)
    if column is None:
        if header in TABLE_COLUMNS:  # only our own column names reach a toast (it is markdown)
            st.toast(f"The {header} column cannot be sorted.", icon=":material/info:")
        return view
    if column == view.sort.column:
        sort = Sort(column, not view.sort.descending)
    else:
        sort = Sort(column, column == "time")  # newest first for time, A first for text
    view = view.replace(sort=sort, page=1, event=None)
    set_view(view)
    return view


def _close_detail() -> None:
    view: View = st.session_state["view"]
    # a new table key: the table's own selection state would otherwise select the row again
    forget_table_selection()
    set_view(view.replace(event=None))


def selected_event(view: View, page: ResultPage) -> str | None:
    """The event selected in this page's table (read before the table is drawn, so the
    layout can make room for the detail), else the view's event when it is on this page."""
    ids = page.rows["id"].to_list()
    state = st.session_state.get(table_key(view))
    if state is None:  # the table is new (a deep link, another page): the view decides
        return view.event if view.event in ids else None
    # the table has state: an empty selection means the reader unticked the row
    row = ticked_row(state, len(ids))
    return None if row is None else ids[row]


def list_columns(tz: str) -> dict[str, Any]:
    """The list's column settings (also the related-event tables'): compact fixed widths,
    so the six columns a reader scans fit a narrow window; Target takes what is left."""
    return {
        "Time": st.column_config.TextColumn(f"Time ({tz})", width=165),
        "Actor": st.column_config.TextColumn("Actor", width=140),
        "Type": st.column_config.TextColumn("Type", width=85),
        "Action": st.column_config.TextColumn("Action", width=90),
        "Result": st.column_config.TextColumn("Result", width=85),
        "IP": st.column_config.TextColumn("IP", width=120),
        "Target": st.column_config.TextColumn("Target"),
    }


# The grid's column menu offers "Sort ascending/descending", which would order only the rows
# of this page in the browser while the Sort control says otherwise. Streamlit has no switch
# for it (column selection mode only turns off sorting by a header click), so the two menu
# entries and their divider are hidden; a header click orders the whole result (header_sort).
_NO_MENU_SORT = """<style>
[data-testid="stDataFrameColumnMenu"] [role="menu"] > [role="menuitem"]:nth-child(2),
[data-testid="stDataFrameColumnMenu"] [role="menu"] > [role="menuitem"]:nth-child(3),
[data-testid="stDataFrameColumnMenu"] [role="menu"] > [role="menuitem"]:nth-child(3) + * {
  display: none !important;
}
</style>"""


# the app's own fixed style: the detail's hint ends before the toolbar a table shows at its
# top right corner (88 px and a margin), when the table is as wide as the page (a phone)
_HINT_BESIDE_TOOLBAR = (
    "<style>.st-key-detail-hint [data-testid=stCaptionContainer] { max-width: calc(100% - 104px); }</style>"
)


def _scroll_into_view(key: str, row: int, height: int) -> None:
    """Scroll the table ``key`` so its row ``row`` (0-based) is in view, when it is not (a deep
    link, a page opened on its event, a table made shorter by the detail). Only the key and
    the row number, both the app's own, go into the script."""
    script = f"""<script>
(() => {{
  const key = {json.dumps(key)}, row = {int(row)}, rowPx = {ROW_PX}, height = {int(height)};
  let tries = 0, done = 0;
  const scroll = () => {{
    const box = document.querySelector(".st-key-" + key);
    const scroller = box && box.querySelector(".dvn-scroller");
    // wait for the grid at its new height (a row ticked in the taller table without detail)
    if (!scroller || scroller.clientHeight === 0 || scroller.clientHeight > height) {{
      if (tries++ < 200) setTimeout(scroll, 50);
      return;
    }}
    const shown = scroller.clientHeight - rowPx;  // the header takes one row
    const top = row * rowPx;
    if (top < scroller.scrollTop || top + rowPx > scroller.scrollTop + shown) {{
      scroller.scrollTop = Math.max(0, top - Math.floor((shown - rowPx) / 2));
    }}
    // the detail opens below the table: bring the table to the top of the window when the
    // detail would otherwise start below it
    const rect = box.getBoundingClientRect();
    if (rect.bottom + 300 > window.innerHeight && rect.top > 0) {{
      box.style.scrollMarginTop = "4.5rem";  // below the app's own header bar
      box.scrollIntoView({{block: "start"}});
    }}
    if (done++ < 1) setTimeout(scroll, 300);  // once more, after the grid has settled
  }};
  scroll();
}})();
</script>"""
    st.html(script, unsafe_allow_javascript=True, width="content")


def events_table(view: View, page: ResultPage, *, selected: str | None) -> None:
    """The page as a single-row-selectable table; the selected row is ticked and in view."""
    st.html(_NO_MENU_SORT)
    shown = display_frame(page.rows, view.filter.tz)
    ids = page.rows["id"].to_list()
    default_rows = [ids.index(selected)] if selected in ids else []
    rows_shown = DETAIL_OPEN_ROWS if selected else 20
    key = table_key(view)
    height = min(38 + ROW_PX * max(len(ids), 1), 38 + ROW_PX * rows_shown)
    st.dataframe(
        styled_results(shown),
        key=key,
        on_select="rerun",
        # a column selection mode switches sorting by a header click off (it would order
        # only this page): a header click selects the column and header_sort orders the result
        selection_mode=["single-row", "single-column"],
        selection_default={"selection": {"rows": default_rows, "columns": []}} if default_rows else None,
        hide_index=True,
        width="stretch",
        height=height,
        column_order=TABLE_COLUMNS,
        column_config=list_columns(view.filter.tz),
        lazy=False,
    )
    if default_rows:
        _scroll_into_view(key, default_rows[0], height)
        st.caption(f"Selected: row {default_rows[0] + 1:,} of this page.")


# ---------------------------------------------------------------------------------------
# detail


def _fmt_time(t: datetime, tz: str) -> str:
    """ "2026-03-01 10:15:00.000000 CET (Europe/Paris)"; the zone's name once when its
    abbreviation is its name ("… UTC", not "… UTC (UTC)")."""
    local = t.astimezone(zone(tz))
    name = local.tzname()
    return f"{local:%Y-%m-%d %H:%M:%S.%f} {name}" + ("" if name == tz else f" ({tz})")


def _plain_lines(text: str) -> str:
    """Text for a code block: control and bidi characters made visible, lines kept."""
    return "\n".join(plain(line) for line in text.split("\n"))


def _pretty_json(text: str | None) -> str:
    if not text:
        return "(none)"
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False, sort_keys=True)
    except json.JSONDecodeError:
        return text


def event_detail(event: dict[str, Any], shared: SharedFrame, view: View) -> None:
    """The detail, below the table (so the table keeps every column): fields beside the
    request details, before → after across the whole width, then the related events, each
    of which opens on a click."""
    tz = view.filter.tz
    head = st.container(horizontal=True, vertical_alignment="center")
    head.subheader("Event detail", width="stretch")
    head.button(
        "", icon=":material/close:", key="close_detail", on_click=_close_detail, help="Close the detail"
    )
    fields = [("Time", _fmt_time(event["time"], tz))]
    if _fmt_time(event["time"], "UTC") != fields[0][1]:
        fields.append(("Time (UTC)", _fmt_time(event["time"], "UTC")))
    fields += [
        ("Actor", event["actor"] or ""),
        ("Email", event["email"] or ""),
        ("Type", f"{event['type']} — {CATEGORIES[str(event['type'])].label}"),
        ("Action", event["action"] or ""),
        ("Target", event["target"] or ""),
        ("Result", str(event["result"])),
        ("Request IP", event["ip"] or ""),
        ("Request ID", event["request_id"] or ""),
        ("Description", event["description"] or ""),
        ("Event ID", event["id"]),
    ]
    if event.get("error"):
        fields.append(("Error", event["error"]))
    fields = [(name, plain(value)) for name, value in fields]
    # also keeps the tables' toolbar (shown above a table's top right corner when the pointer or
    # a finger is on it) off the close button: at 390 px it covered all but its top 12 px. The
    # line wraps before that toolbar (88 px wide, at the table's right edge): at 360 px it ran
    # under it (to 272 px; the toolbar from 256)
    with st.container(key="detail-hint"):
        st.html(_HINT_BESIDE_TOOLBAR)
        st.caption("Double-click or double-tap a value to read it.")
    # two blocks side by side when the window has room for both, else one under the other
    blocks = st.container(horizontal=True, gap="small")
    left = blocks.container(width=DETAIL_BLOCK_PX)
    right = blocks.container(width=DETAIL_BLOCK_PX)
    left.dataframe(
        pl.DataFrame(fields, schema=["Field", "Value"], orient="row"),
        hide_index=True,
        width="stretch",
        height=38 + 35 * len(fields),
        key=f"detail-fields-{event['id']}",
        column_config={"Field": st.column_config.TextColumn(width=105)},
    )
    with right:
        if event.get("error"):
            st.text("Error message")
            st.code(_plain_lines(event["error"]), language=None, wrap_lines=True)
        if event.get("_details_error"):
            st.warning(
                "The request details and the before/after data could not be read: "
                + plain(event["_details_error"]),
                icon=":material/cloud_off:",
            )
        else:
            st.text("Request details (params)")
            st.code(_plain_lines(_pretty_json(event["params"])), language="json", wrap_lines=True)
    if not event.get("_details_error"):
        _before_after(event)
    same_request, same_actor = shared.index.related(event)
    st.text(f"Same request id ({len(same_request)})")
    _related_table(same_request, tz, f"rel-req-{event['id']}", shared)
    st.text(f"Same actor, 10 minutes either side ({len(same_actor)})")
    _related_table(same_actor, tz, f"rel-actor-{event['id']}", shared)


# the width of each of the detail's two upper blocks (fields; request details): two fit
# side by side from about a 1280 px window with the sidebar open
DETAIL_BLOCK_PX = 470


def _before_after(event: dict[str, Any]) -> None:
    """Before → after compared key by key, Before and After side by side in narrow columns
    (so both show on any window), then both documents in full, wrapped, side by side."""
    changes = diff_json(event["before"], event["after"])
    if not changes:
        return
    st.text("Before → after")
    diff = pl.DataFrame(
        {
            "Field": [plain(c.path) for c in changes],
            "Change": [c.kind for c in changes],
            "Before": [plain(c.before or "") for c in changes],
            "After": [plain(c.after or "") for c in changes],
        }
    )
    styled = diff.to_pandas().style.apply(_diff_colours, axis=1)
    st.dataframe(
        styled,
        hide_index=True,
        width="stretch",
        key=f"detail-diff-{event['id']}",
        column_config={
            # 354 px in all: the four fit a phone's 390 px window (at 460 After was off-screen)
            "Field": st.column_config.TextColumn(width=84),
            "Change": st.column_config.TextColumn(width=60),
            "Before": st.column_config.TextColumn(width=105),
            "After": st.column_config.TextColumn(width=105),
        },
    )
    with st.expander(
        "Before and after in full",
        expanded=any(len(c.before or "") + len(c.after or "") > 40 for c in changes),
    ):
        before, after = st.columns(2)
        before.text("Before")
        before.code(_plain_lines(_pretty_json(event["before"])), language="json", wrap_lines=True)
        after.text("After")
        after.code(_plain_lines(_pretty_json(event["after"])), language="json", wrap_lines=True)


_DIFF_BG = {"added": "#e6f4ea", "removed": "#fce8e6", "changed": "#fef7e0", "same": ""}


def _diff_colours(row: pd.Series) -> list[str]:
    colour = _DIFF_BG.get(row["Change"], "")
    return [f"background-color: {colour}" if colour else "" for _ in row]


EVENT_NOTICE = "_event_notice"
"""What :func:`resolve_event` said when a related event was opened (the page shows it)."""


def _open_related(key: str, ids: list[str], shared: SharedFrame) -> None:
    """A row ticked in a related-events table: open that event (its deep link ?event=) on
    the page of the result it sits on. The address is written once, page and all: written
    with the event and then again with its page, it made two history entries, and Back
    showed the new event again instead of the one it was opened from."""
    row = ticked_row(st.session_state.get(key), len(ids))
    if row is None:
        return
    view: View = st.session_state["view"]
    # a new table key: the list's own selection would otherwise keep the previous row
    forget_table_selection()
    opened, notice = resolve_event(view.replace(event=ids[row]), shared)
    st.session_state[EVENT_NOTICE] = notice
    set_view(opened)


def _related_table(frame: pl.DataFrame, tz: str, key: str, shared: SharedFrame) -> None:
    """Related events; a click on a row opens it here."""
    if frame.height == 0:
        st.caption("none")
        return
    ids = frame["id"].to_list()
    st.dataframe(
        styled_results(display_frame(frame, tz)),
        hide_index=True,
        width="stretch",
        key=key,
        on_select=functools.partial(_open_related, key, ids, shared),
        selection_mode=["single-row", "single-column"],
        column_order=TABLE_COLUMNS,
        column_config=list_columns(tz),
        lazy=False,
    )
    st.caption("Tick a row to open that event.")


# ---------------------------------------------------------------------------------------
# export


def arrived_note(announced: int, rows: int) -> str:
    """What the file holds beside what the dialog announced: the file is the result as it was
    read when it was prepared, and events that arrived since the dialog opened are in it.

    >>> arrived_note(718, 719), arrived_note(718, 718)
    (' 1 more than above: events that arrived since are in it (its About sheet and manifest say 719).', '')
    """
    if rows == announced:
        return ""
    diff = rows - announced
    word = f"{diff:,} more" if diff > 0 else f"{-diff:,} fewer"
    why = "arrived since are in it" if diff > 0 else "were removed since are not in it"
    return f" {word} than above: events that {why} (its About sheet and manifest say {rows:,})."


def export_header(total: int) -> str:
    return f"Downloading a total of {total:,} records from the current search."


def prepare_export(
    shared: SharedFrame,
    view: View,
    fmt: Literal["csv", "xlsx"],
    *,
    actor: str,
    progress: Callable[[int, int], None] | None = None,
    now: datetime | None = None,
) -> tuple[str, bytes, int, bytes | None]:
    """Write exactly the current result (all pages, current sort) and record the export.
    Returns (file name, bytes, rows, the CSV's manifest ``NAME.manifest.json`` or None for
    xlsx, whose "About this export" sheet carries the same proof)."""
    from audit_analytics import integrity
    from audit_analytics.io.export import export_filename, manifest_for, record_export, write_csv, write_xlsx
    from audit_analytics.ui import auth

    flt = view.filter
    index = shared.index
    selection = index.select(flt, view.sort, now=now)
    # read a chunk at a time, so the export holds one chunk of rows besides the file
    rows = index.chunks(selection)
    # the chain's head once the rows are read: every exported event is at or before it
    position = integrity.head(get_store())
    stamp = datetime.now(UTC)
    if flt.period == "custom" and flt.start and flt.end:
        label = f"{flt.start.isoformat()[:10]} to {flt.end.isoformat()[:10]}"
    else:
        label = period_label(flt)
    narrowed = [
        *flt.types,
        *flt.results,
        *(["users"] if flt.users else []),
        *(["search"] if flt.query else []),
    ]
    name = export_filename(
        fmt, period_label=label, now=stamp.astimezone(flt.zoneinfo).replace(tzinfo=None), narrowed=narrowed
    )
    manifest = manifest_for(
        flt,
        rows=selection.total,
        sort=view.sort,
        include_archive=view.archive,
        made_at=stamp,
        made_by=actor,
        fmt=fmt,
        source=get_store().safe_url,
        chain=position,
        now=now,
    )
    with tempfile.TemporaryDirectory(prefix="aa-export-") as tmp:
        path = Path(tmp) / name
        if fmt == "csv":
            written = write_csv(rows, path, tz=flt.tz, manifest=manifest, progress=progress)
        else:
            written = write_xlsx(rows, path, tz=flt.tz, manifest=manifest, progress=progress)
        data = path.read_bytes()
        sidecar = written.manifest_path.read_bytes() if written.manifest_path else None
    record_export(get_store(), flt, manifest, written, target=name, via="app", ip=auth.client_ip())
    invalidate()
    return name, data, written.rows, sidecar


MIME = {
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "csv": "text/csv",
}


def open_export() -> None:
    st.session_state["export_dialog_open"] = True
    st.session_state.pop("export_ready", None)


def close_export() -> None:
    st.session_state["export_dialog_open"] = False
    st.session_state.pop("export_ready", None)


def apply_preset(name: str) -> None:
    view: View = st.session_state["view"]
    preset = view.replace(filter=preset_filter(view.filter, name), page=1, event=None)
    set_view(preset)
    seed_widgets(preset)


def presets(view: View) -> None:
    """The preset buttons, and the way to the failure patterns on the Security review page."""
    row = st.container(horizontal=True, vertical_alignment="center")  # wraps on narrow screens
    for name in PRESETS:
        row.button(
            name,
            key=f"preset_{name.lower().replace(' ', '_')}",
            on_click=apply_preset,
            args=(name,),
            width="content",
            help=f"Type and Result for {name.lower()}"
            + (f", and {PRESETS[name][1]} in the search" if PRESETS[name][1] else "")
            + ", keeping the period, users and search",
        )
    if row.button(
        "Failure patterns",
        key="open_security_review",
        icon=":material/shield:",
        width="content",
        help="Login failures by IP, account and hour, and the detections, on the Security review "
        "of this period, users and search",
    ):
        open_security_review(view)


def no_match_notice(shared: SharedFrame, view: View) -> str:
    """What an empty result says: when the period holds events that the type, user, result
    or search leave out, that (it said "The newest event is from …", true of a newest event
    inside the period too); else when the newest event is, or that the log is empty."""
    flt = view.filter
    if flt.types or flt.users or flt.results or flt.query:
        period_only = Filter(period=flt.period, start=flt.start, end=flt.end, tz=flt.tz)
        in_period = selection_for(shared, period_only, view.sort).total
        if in_period:
            return (
                f"No events match the filters and search in this period; it holds {in_period:,} "
                f"event{'' if in_period == 1 else 's'} in all. Clear a filter or the search to see them."
            )
    newest = shared.index.newest_time()
    when = f" The newest event is from {newest:%Y-%m-%d %H:%M} UTC." if newest else " The log is empty."
    return f"No events in this period.{when}"


def all_time(flt: Filter) -> Filter:
    """``flt`` over all time (its types, users, results and search kept)."""
    return flt.replace(period="all", start=None, end=None)


def show_all_time() -> None:
    view: View = st.session_state["view"]
    wide = view.replace(filter=all_time(view.filter), page=1, event=None)
    set_view(wide)
    seed_widgets(wide)


@st.dialog("Export", width="medium", on_dismiss=close_export)
def export_dialog(shared: SharedFrame, view: View, total: int, actor: str) -> None:
    st.subheader(export_header(total))
    # what is exported, named (the sentence was meant to, and never showed it): the view's
    # applied filter, which a search still in the box, unread, has not changed
    st.caption(
        md_escape(view.filter.describe(count=total))
        + " · exactly this result, all pages, in the current sort; times in "
        + md_escape(view.filter.tz)
        + "."
    )
    if st.session_state.get("_search_error"):
        st.warning(
            "The search box holds a search that could not be read (see the message under it): this "
            "exports the last search that could, named above.",
            icon=":material/warning:",
        )
    fmt: Literal["csv", "xlsx"] = st.radio(
        "Format",
        ["xlsx", "csv"],
        key="export_format",
        horizontal=True,
        format_func=lambda f: "Excel (xlsx)" if f == "xlsx" else "CSV (UTF-8)",
    )
    ready = st.session_state.get("export_ready")
    if st.button("Prepare file", type="primary", key="export_prepare"):
        bar = st.progress(0.0, text="Preparing…")

        def progress(done: int, total_rows: int) -> None:
            bar.progress(
                min(done / max(total_rows, 1), 1.0), text=f"Prepared {done:,} of {total_rows:,} rows"
            )

        name, data, rows, sidecar = prepare_export(shared, view, fmt, actor=actor, progress=progress)
        bar.progress(1.0, text=f"Ready: {rows:,} rows")
        ready = {"name": name, "data": data, "rows": rows, "fmt": fmt, "manifest": sidecar}
        st.session_state["export_ready"] = ready
    if ready and ready["fmt"] == fmt:
        st.download_button(
            f"Download {ready['name']}",
            data=ready["data"],
            file_name=ready["name"],
            mime=MIME[ready["fmt"]],
            key="export_download",
            type="primary",
            on_click="ignore",
        )
        st.caption(f"{ready['rows']:,} rows in the file.{arrived_note(total, ready['rows'])}")
        if ready.get("manifest"):
            st.download_button(
                f"Download its manifest ({ready['name']}.manifest.json)",
                data=ready["manifest"],
                file_name=f"{ready['name']}.manifest.json",
                mime="application/json",
                key="export_manifest_download",
                on_click="ignore",
            )
            st.caption(
                "Keep the manifest beside the file: `audit-analytics integrity verify-export FILE` "
                "checks the file against it and, with the database, against the log."
            )
        else:
            st.caption(
                "The last sheet, About this export, names the filter, the count, the log's chain "
                "position and the digests: `audit-analytics integrity verify-export FILE` checks them."
            )

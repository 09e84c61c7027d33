"""Activity: what happened on the platform, when, and by whom; trends for an audit report.

Thin: the shared filter panel and search (same URL state as the Audit Log), one cached call
to :mod:`audit_analytics.analysis.activity` per view, then charts from :mod:`audit_analytics.ui.charts`.
Every bar or point opens the Audit Log on exactly the events behind it.
"""

import polars as pl
import streamlit as st

from audit_analytics.schema import CATEGORY_CODES
from audit_analytics.textsafe import md_escape
from audit_analytics.ui import activity as page
from audit_analytics.ui import auth, charts
from audit_analytics.ui.common import METRIC_MIN_WIDTH, load_shared_or_stop, wrapping_columns
from audit_analytics.ui.data import actors_of
from audit_analytics.ui.state import current_view, filter_panel, open_explorer, search_bar, set_view

user = auth.require("audit.read")  # first: Streamlit may serve this file without app.py


def metrics(change: pl.DataFrame, *, actors: int, has_previous: bool, running: bool) -> None:
    total = change.filter(pl.col("type") == "all").row(0, named=True)
    c1, c2, c3, c4 = wrapping_columns("activity-figures", 4, min_width=METRIC_MIN_WIDTH)
    versus = (
        "against the period before up to the same point (this one is still running)"
        if running
        else "against the previous period of the same length"
    )
    pct = total["change_pct"]
    c1.metric(
        "Events",
        f"{total['events']:,}",
        delta=f"{total['change']:+,}" + (f" ({pct:+.1f}%)" if pct is not None else "")
        if has_previous
        else None,
        help=f"Change {versus}",
    )
    c2.metric(
        "Failed",
        f"{total['failed']:,}",
        delta=f"{total['failed'] - total['previous_failed']:+,}" if has_previous else None,
        delta_color="inverse",
        help=f"Change {versus}",
    )
    rate, rate_change = total["failure_rate"], total["failure_rate_change"]
    c3.metric(
        "Failure rate",
        f"{rate:.1%}" if rate is not None else "–",
        delta=f"{rate_change:+.1f} pp" if has_previous and rate_change is not None else None,
        delta_color="inverse",
        help=f"failed / (done + failed); pending and processing work is left out. Change {versus}, "
        "in percentage points",
    )
    c4.metric("Active actors", f"{actors:,}")


def change_table(change: pl.DataFrame) -> pl.DataFrame:
    # a category with no events in either period has nothing to compare: its rates read "None"
    change = change.filter((pl.col("events") > 0) | (pl.col("previous_events") > 0))
    return change.select(
        pl.col("type").replace_strict({c: charts.category_label(c) for c in CATEGORY_CODES} | {"all": "All"}),
        "events",
        "previous_events",
        "change",
        "change_pct",
        "failed",
        (pl.col("failure_rate") * 100).alias("failure_rate"),
        (pl.col("previous_failure_rate") * 100).alias("previous_failure_rate"),
        "failure_rate_change",
    )


shared = load_shared_or_stop()
view = current_view()
set_view(view)
filter_panel(actors_of(shared), archive=False)
st.title("Activity")
search_bar()

flt = view.filter
# every figure of the page for one view, cached by the filter's values and time bounds (above
# the memory limit the database counts: a period of any size draws)
with st.spinner("Summarising activity…"):
    summary = page.summary(shared, flt)
every, tz = summary["every"], flt.tz
bucket = charts.BUCKET_NAMES[every]
# the caption names users and search text from the log: escaped, never read as markdown
st.caption(
    f"{md_escape(flt.describe(count=summary['count']))} · one bar per {bucket} in {tz} · "
    "click a bar or point to open its events in the Audit Log"
)
charts.no_download_note()
if summary["count"] == 0:
    st.info(
        "No events match in this period. Widen the period or clear the filters.", icon=":material/search_off:"
    )
    st.stop()


def chart(key: str, data: pl.DataFrame, file_name: str, *, clickable: bool = True, variant=None) -> None:
    fig = page.figure(shared, flt, summary, key, variant)  # built once per view and version of the data
    charts.show(fig, key=key, view=view if clickable else None, on_click=open_explorer)
    charts.download_chart_data(data, key=f"download_{key}", file_name=f"activity-{file_name}.csv")


metrics(
    summary["change"],
    actors=summary["actors"],
    has_previous=summary["has_previous"],
    running=summary["running"],
)
if summary["has_previous"] and summary["running"]:
    st.caption(
        "This period is still running: the changes compare it with the same stretch of the period "
        "before (for Today: yesterday until this time of day)."
    )

st.subheader("Events over time")
chart("activity_events", summary["events"], "events-over-time")

st.subheader("Results and failure rate")
chart("activity_results", summary["mix"], "result-mix")
if summary["has_previous"]:
    chart("activity_compare", summary["change"], "change-against-previous-period")
    st.dataframe(
        change_table(summary["change"]),
        hide_index=True,
        width="stretch",
        column_config={
            "type": "Category",
            "events": st.column_config.NumberColumn("Events", format="%d"),
            "previous_events": st.column_config.NumberColumn("Previous period", format="%d"),
            "change": st.column_config.NumberColumn("Change", format="%+d"),
            "change_pct": st.column_config.NumberColumn("Change %", format="%+.1f%%"),
            "failed": st.column_config.NumberColumn("Failed", format="%d"),
            "failure_rate": st.column_config.NumberColumn("Failure rate", format="%.1f%%"),
            "previous_failure_rate": st.column_config.NumberColumn("Previous failure rate", format="%.1f%%"),
            "failure_rate_change": st.column_config.NumberColumn("Rate change (pp)", format="%+.1f"),
        },
    )
elif summary["previous_empty"]:
    st.caption("The period before this one, of the same length, holds no events: nothing to compare with.")
else:
    st.caption("All time has no previous period to compare with; pick a period to see the change.")

st.subheader("Who and what")
left, right = charts.chart_pair("who-and-what", min_width=charts.RANKED_MIN_WIDTH)
with left:
    chart("activity_actors", summary["top_actors"], "top-actors")
with right:
    chart("activity_targets", summary["top_targets"], "top-targets")

st.subheader("Change history")
scope = st.segmented_control(
    "Categories",
    list(page.SCOPES),
    default=page.SCOPES[0],
    key="changes_scope",
    format_func={"review": "Service, infra, backup", "all": "All categories"}.get,
)
changes = page.changes_in(summary, scope)
if changes.height:
    chart("activity_changes", changes, "changes-over-time", variant=scope)
else:  # an empty chart with axes from -1 to 6 said nothing
    st.caption(
        "No changes (create, update, delete and other write actions) in these categories in this period."
    )

st.subheader("When")
chart("activity_heatmap", summary["heat"], "weekday-hour", clickable=False)

st.subheader("Retention groups")
st.caption("The whole log, whatever the filters: what each retention policy has to keep.")
chart("activity_retention", summary["retention"], "retention-groups")
st.dataframe(
    summary["retention"],
    hide_index=True,
    width="stretch",
    column_config={
        "group": "Retention group",
        "categories": st.column_config.TextColumn("Categories", width="large"),  # whole, at 1440 px
        "events": st.column_config.NumberColumn("Events", format="%d"),
        "oldest": st.column_config.DatetimeColumn("Oldest event (UTC)", format="YYYY-MM-DD HH:mm"),
        "newest": st.column_config.DatetimeColumn("Newest event (UTC)", format="YYYY-MM-DD HH:mm"),
    },
)

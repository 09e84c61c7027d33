"""The Activity page's numbers and figures for one filter, cached in the shared data's results:
the page draws them, and :func:`warm` computes them for the default view in the background
after the data change (so the first visit after sign-in reruns over held results).

No drawing here: the page (``app_pages/activity.py``) lays them out with
:func:`audit_analytics.ui.charts.show`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import plotly.graph_objects as go
import polars as pl

from audit_analytics.analysis.review import TOP_N, activity_summary
from audit_analytics.engines.shared import SharedData
from audit_analytics.filters import Filter
from audit_analytics.ui import charts
from audit_analytics.ui.data import cached

__all__ = ["FIGURES", "REVIEW_TYPES", "SCOPES", "changes_in", "figure", "summary", "warm"]

REVIEW_TYPES = ("service", "infra", "backup", "db_backup")
SCOPES = ("review", "all")  # the change history's categories: the review types, or all


def summary(shared: SharedData, flt: Filter) -> dict[str, Any]:
    """Every figure of the page for ``flt`` (:func:`activity_summary`), cached by the filter's
    values and time bounds."""
    result: dict[str, Any] = cached(
        shared, ("activity", flt, flt.bounds()), lambda: activity_summary(shared.index, flt)
    )
    return result


def changes_in(summary: dict[str, Any], scope: str) -> pl.DataFrame:
    """The change history of ``scope`` (``review``: service, infra and backup; ``all``)."""
    changes: pl.DataFrame = summary["changes"]
    if scope != "all":
        changes = changes.filter(pl.col("type").cast(pl.String).is_in(REVIEW_TYPES))
    return changes


def _events(s: dict[str, Any], flt: Filter, variant: str | None) -> go.Figure:
    every = s["every"]
    return charts.bars_over_time(
        s["events"],
        series="type",
        value="events",
        every=every,
        tz=flt.tz,
        title=f"Events per {charts.BUCKET_NAMES[every]} by category",
        y_title="Events",
    )


def _results(s: dict[str, Any], flt: Filter, variant: str | None) -> go.Figure:
    every, mix = s["every"], s["mix"]
    long_mix = mix.unpivot(
        index="bucket", on=["done", "failed", "pending", "processing"], variable_name="result", value_name="n"
    )
    bars = charts.bars_over_time(
        long_mix,
        series="result",
        value="n",
        every=every,
        tz=flt.tz,
        title=f"Results per {charts.BUCKET_NAMES[every]}, with the failure rate",
        y_title="Events",
    )
    return charts.add_rate_line(bars, mix, every=every)


def _compare(s: dict[str, Any], flt: Filter, variant: str | None) -> go.Figure:
    return charts.comparison_bars(
        s["change"], title="Events per category vs the period before", period_name="period"
    )


def _ranked(key: str, what: str) -> Callable[[dict[str, Any], Filter, str | None], go.Figure]:
    def build(s: dict[str, Any], flt: Filter, variant: str | None) -> go.Figure:
        return charts.ranked_bars(
            s[f"top_{key}s"],
            key=key,
            title=f"Top {TOP_N} {what}",
            x_title="Events",
            y_title=what[:-1].capitalize(),
        )

    return build


def _changes(s: dict[str, Any], flt: Filter, variant: str | None) -> go.Figure:
    every = s["every"]
    return charts.bars_over_time(
        changes_in(s, variant or SCOPES[0]),
        series="type",
        value="changes",
        every=every,
        tz=flt.tz,
        # short enough for a phone's 390 px (the whole "create, update, delete and other write
        # actions" lost its end there)
        title=f"Changes per {charts.BUCKET_NAMES[every]} (write actions)",
        y_title="Changes",
        extra_drill={"writes": True},
    )


def _heatmap(s: dict[str, Any], flt: Filter, variant: str | None) -> go.Figure:
    return charts.weekday_hour_heatmap(s["heat"], tz=flt.tz, title=f"Events by weekday and hour ({flt.tz})")


def _retention(s: dict[str, Any], flt: Filter, variant: str | None) -> go.Figure:
    return charts.retention_bars(s["retention"], title="Events per retention group")


FIGURES: dict[str, Callable[[dict[str, Any], Filter, str | None], go.Figure]] = {
    "activity_events": _events,
    "activity_results": _results,
    "activity_compare": _compare,
    "activity_actors": _ranked("actor", "actors"),
    "activity_targets": _ranked("target", "targets"),
    "activity_changes": _changes,
    "activity_heatmap": _heatmap,
    "activity_retention": _retention,
}
"""The page's charts by widget key: ``build(summary, filter, variant)``; the change history's
variant is its scope (:data:`SCOPES`)."""


def figure(
    shared: SharedData, flt: Filter, s: dict[str, Any], key: str, variant: str | None = None
) -> go.Figure:
    """The chart ``key`` of :data:`FIGURES` for ``flt``, built once per view, variant and
    version of the data (plotly checks every property it is given: building the page's eight
    charts takes longer than computing their numbers)."""
    fig: go.Figure = cached(
        shared, ("activity_figure", key, variant, flt, flt.bounds()), lambda: FIGURES[key](s, flt, variant)
    )
    return fig


def warm(shared: SharedData, flt: Filter, *, between: Callable[[], object] = lambda: None) -> None:
    """Compute what a visit to the page with ``flt`` shows (its numbers and every chart, with
    the change history's default scope), so the visit finds them held. ``between`` is called
    before each chart (the app waits there while pages run)."""
    s = summary(shared, flt)
    if not s["count"]:
        return
    for key in FIGURES:
        if key == "activity_compare" and not s["has_previous"]:
            continue
        between()
        figure(shared, flt, s, key, SCOPES[0] if key == "activity_changes" else None)

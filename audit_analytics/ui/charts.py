"""Shared plotly helpers: one colour per category on every page, titled and labelled charts,
safe labels, "download chart data" buttons, and click-to-explorer.

A chart point carries its *drill* in ``customdata[0]``: a small JSON object saying which
events it stands for (``{"type": "auth", "start": ..., "end": ...}``). Clicking it opens
the explorer on the current view narrowed by :func:`drill_view`. Text written by users of
the audited platform (actors, targets) only ever reaches plotly through
:func:`escape_label`, because plotly renders a subset of HTML in labels and hover text.

Figure builders (``bars_over_time``, ``ranked_bars``, ...) import no streamlit state and
can be used from a notebook; :func:`show` and :func:`download_chart_data` draw.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

import plotly.graph_objects as go
import polars as pl
import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from audit_analytics.analysis import activity
from audit_analytics.filters import zone
from audit_analytics.io import tabular
from audit_analytics.schema import CATEGORIES, CATEGORY_CODES, RESULT_LABELS, RESULTS, RETENTION_GROUPS
from audit_analytics.textsafe import plain
from audit_analytics.ui import common
from audit_analytics.view import View

__all__ = [
    "CATEGORY_COLORS",
    "RESULT_COLORS",
    "bars_over_time",
    "category_label",
    "clickable",
    "csv_bytes",
    "download_chart_data",
    "drill",
    "drill_view",
    "escape_label",
    "fit_margins",
    "ranked_bars",
    "show",
    "style",
    "weekday_hour_heatmap",
    "weekday_hour_axes",
    "HOURS",
]

# Fixed, so a category keeps its colour on every page and in every export of a chart
# (Tableau 20, one hue per category, darker shades first).
CATEGORY_COLORS: dict[str, str] = {
    "device": "#4E79A7",
    "infra": "#F28E2B",
    "service": "#E15759",
    "auth": "#76B7B2",
    "backup": "#59A14F",
    "database": "#EDC948",
    "user": "#B07AA1",
    "organization": "#FF9DA7",
    "audit": "#9C755F",
    "vpn": "#BAB0AC",
    "secret": "#1B3A6B",
    "domain": "#A0CBE8",
    "monitoring": "#FFBE7D",
    "system": "#8CD17D",
    "webhook": "#D4A6C8",
    "db_backup": "#499894",
}
assert tuple(CATEGORY_COLORS) == CATEGORY_CODES  # one colour per category, in canonical order

RESULT_COLORS: dict[str, str] = {
    "done": "#59A14F",
    "failed": "#E15759",
    "pending": "#EDC948",
    "processing": "#4E79A7",
}
FAILURE_RATE_COLOR = "#1B1B1B"
BUCKET_NAMES = activity.BUCKETS


def category_label(code: str) -> str:
    """``Authentication (auth)``."""
    return f"{CATEGORIES[code].label} ({code})" if code in CATEGORIES else code


def escape_label(value: object, *, limit: int | None = None) -> str:
    """Text for a plotly label or hover: control characters made visible, ``&``, ``<`` and
    ``>`` as entities, so ``<b>`` or ``<a href>`` written by a user shows as typed.

    >>> escape_label("<a href='x'>me</a> & co")
    "&lt;a href='x'&gt;me&lt;/a&gt; &amp; co"
    """
    text = plain(value, limit=limit)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# -- drill-down -------------------------------------------------------------------------------
def drill(**changes: Any) -> str:
    """A point's drill, as the JSON text stored in ``customdata[0]``.

    Keys: ``type``, ``group`` (retention group), ``result``, ``actor``, ``target``,
    ``writes`` (only write actions), ``start``/``end`` (a bucket, ISO text), ``previous``
    (the period before), ``all_time``.
    """
    # compact separators: a chart of hourly buckets carries thousands of these
    text = json.dumps(
        {k: v for k, v in changes.items() if v is not None}, sort_keys=True, separators=(",", ":")
    )
    # never shown, but kept free of markup anyway: JSON reads \u003c back as "<"
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def drill_view(view: View, changes: Mapping[str, Any], *, now: datetime | None = None) -> View:
    """The explorer view for a clicked point: the current view narrowed to it.

    A bucket becomes a custom period of exact instants, cut to the current period (a week
    bucket may begin before the period does); a category, result or actor replaces that
    filter; a target and "write actions" are added to the search.

    >>> from audit_analytics.filters import Filter
    >>> v = View(filter=Filter(period="all", query="ip:10.0.0.1"))
    >>> drill_view(v, {"type": "auth", "target": "db main"}).to_params()
    {'period': 'all', 'type': 'auth', 'q': 'ip:10.0.0.1 resource:"db main"'}
    """
    flt = view.filter
    updates: dict[str, Any] = {}
    extra_query: list[str] = []
    if changes.get("previous"):
        previous = activity.previous_period(flt, now=now)
        if previous is not None:
            flt = previous
    if changes.get("all_time"):
        updates.update(period="all", start=None, end=None)
    if "start" in changes and "end" in changes:
        tz = zone(flt.tz)
        start = datetime.fromisoformat(changes["start"])
        end = datetime.fromisoformat(changes["end"])
        lo, hi = flt.bounds(now=now)
        start = max(start, lo) if lo is not None else start
        end = min(end, hi) if hi is not None else end
        updates.update(period="custom", start=start.astimezone(tz), end=end.astimezone(tz))
    if changes.get("type"):
        updates["types"] = (changes["type"],)
    if changes.get("group"):
        updates["types"] = RETENTION_GROUPS[changes["group"]]
    if changes.get("result"):
        updates["results"] = (changes["result"],)
    if changes.get("actor"):
        updates["users"] = (changes["actor"],)
    if changes.get("target"):
        extra_query.append(activity.target_query(changes["target"]))
    if changes.get("writes"):
        extra_query.append(activity.write_actions_query())
    if extra_query:
        updates["query"] = " ".join([q for q in (flt.query.strip(), *extra_query) if q])
    return view.replace(filter=flt.replace(**updates), page=1, event=None)


def clicked_drill(event: Any) -> dict[str, Any] | None:
    """The drill of the clicked point of a ``st.plotly_chart`` selection, or None."""
    try:
        points = event["selection"]["points"]
    except (KeyError, TypeError):
        return None
    for point in points or ():
        data = point.get("customdata") if isinstance(point, Mapping) else None
        if isinstance(data, str):
            data = [data]
        if data:
            try:
                changes = json.loads(data[0])
            except (TypeError, ValueError):
                continue
            if isinstance(changes, dict):
                return changes
    return None


# -- figures -----------------------------------------------------------------------------------
def style(
    fig: go.Figure,
    *,
    title: str,
    x_title: str,
    y_title: str,
    legend_title: str | None = None,
    height: int = 380,
) -> go.Figure:
    """Title, axis titles and legend title on a figure (every chart has all of them)."""
    fig.update_layout(
        title={"text": escape_label(title)},
        xaxis_title=escape_label(x_title),
        yaxis_title=escape_label(y_title),
        legend_title_text=escape_label(legend_title) if legend_title else None,
        height=height,
        hoverlabel={"namelength": -1},
    )
    return fit_margins(fig)


# Room around the plot for the axes, as Streamlit's plotly theme lays them out (automargin on,
# titles at a standoff), measured in Chromium: the y axis's title and gaps take 53-60 px beside
# its widest tick label, the x axis's 48-62 px under its tallest; a tick label line is 16 px
# high.
_Y_AXIS_ROOM = 62
_X_AXIS_ROOM = 64
_TICK_LINE_PX = 16
# The theme's tick font (12 px Source Sans): each printable ASCII character's width from " " to
# "~", in tenths of a pixel (Chromium's measureText, rounded up); anything else is taken as a
# full em (CJK), wider than accented Latin letters.
_GLYPH_TENTHS = bytes(
    [24, 35, 52, 60, 60, 99, 74, 30, 37, 37, 51, 60, 30, 38, 30, 42, 60, 60, 60, 60, 60, 60, 60, 60]
    + [60, 60, 30, 30, 60, 60, 60, 51, 102, 66, 71, 69, 74, 64, 60, 74, 79, 32, 58, 70, 59, 88, 78]
    + [80, 68, 80, 69, 65, 65, 78, 62, 95, 62, 58, 65, 37, 42, 37, 60, 60, 65, 61, 67, 55, 67, 60]
    + [35, 61, 66, 30, 30, 60, 31, 100, 66, 65, 67, 67, 42, 51, 41, 66, 56, 87, 54, 56, 51, 37, 29]
    + [37, 60]
)
_GLYPH_PX_OTHER = 12.0
# a category axis whose labels need more than this many pixels side by side has them turned, at
# a fixed 45 degrees (a plot is 380-900 px wide): left to plotly, they were turned 30 degrees on
# a wide chart and upright on a narrow one, which the margins could not be made for, and the
# chart was drawn again; at 45 degrees sixteen labels fit side by side down to 300 px
_TURNED_LABELS_PX = 700
_TURNED_DEGREES = 45
# a legend beside the plot is at most as tall as the plot and scrolls beyond it (a reader then
# cannot see which colour is which category): measured in Chromium, 19 px per entry and 26 px
# for its title and padding
_LEGEND_ENTRY_PX = 19
_LEGEND_FRAME_PX = 26


def _text_px(text: object) -> float:
    """How wide a tick label is drawn, in pixels (a little over rather than under)."""
    tenths = sum(_GLYPH_TENTHS[ord(c) - 32] if " " <= c <= "~" else _GLYPH_PX_OTHER * 10 for c in str(text))
    return tenths / 10 * 1.03


def _axis_values(fig: go.Figure, axis: str) -> tuple[list[Any], bool]:
    """The values a figure puts on an axis (``x``, ``y`` or ``y2``): labels for a category
    axis, dates, or the numbers' extents (stacked bars summed per position); and whether the
    axis holds categories."""
    letter = axis[0]
    stacked = fig.layout.barmode in ("stack", "relative")
    values: list[Any] = []
    sums: dict[Any, float] = {}
    for trace in fig.data:
        if (getattr(trace, f"{letter}axis", None) or letter) != axis:
            continue
        own = getattr(trace, letter, None)
        if own is None:
            continue
        own = list(own)
        if any(isinstance(v, str) for v in own) or trace.type == "heatmap":
            values.extend(own)
            continue
        other = getattr(trace, "y" if letter == "x" else "x", None)
        value_axis = "x" if getattr(trace, "orientation", None) == "h" else "y"
        if stacked and trace.type == "bar" and letter == value_axis and other is not None:
            for position, v in zip(other, own, strict=False):
                if isinstance(v, int | float):
                    sums[position] = sums.get(position, 0.0) + abs(v)
        else:
            values.extend(own)
    values.extend(sums.values())
    return values, any(isinstance(v, str) for v in values)


def _number_chars(top: float) -> int:
    """The widest tick label of a numeric axis from 0 to ``top``: plotly writes ``0.5``
    under 10, ``12.5`` under 100, the whole number under 10,000 (``1200``), and SI forms
    above (``20k``, ``150k``, ``1.5M``); the top tick may be the next one past ``top``."""
    top *= 1.1
    if top < 100:
        return 3 if top < 10 else 4
    if top < 11_000:  # under 10,000 before the 10%: "9000", or "10k" when the ticks reach it
        return min(4, len(str(round(top))))
    if top < 1_000_000:
        return len(str(round(top / 1000))) + 1
    return len(str(round(top / 1_000_000))) + 3


def _tick_extent(fig: go.Figure, axis: str) -> tuple[float, float, bool]:
    """(widest, tallest) tick label of an axis, in pixels, estimated from its values, and
    whether its labels are turned."""
    values, categories = _axis_values(fig, axis)
    shown = fig.layout[f"{axis[0]}axis{axis[1:]}"].ticktext
    if shown:  # the axis writes its own text at its ticks (weekday_hour_axes)
        values, categories = list(shown), True
    if categories:
        widest = max((_text_px(v) for v in values), default=0.0)
        side_by_side = sum(_text_px(v) + 8 for v in set(values))
        if axis[0] == "x" and side_by_side > _TURNED_LABELS_PX:
            slant = math.sin(math.radians(_TURNED_DEGREES))
            return widest, (widest + _TICK_LINE_PX) * slant, True
        return widest, _TICK_LINE_PX, False
    if any(isinstance(v, datetime) for v in values):
        return _text_px("Nov 30"), 2 * _TICK_LINE_PX, False  # "Nov 30" over the year
    numbers = [abs(v) for v in values if isinstance(v, int | float)]
    return _text_px("0" * _number_chars(max(numbers, default=0.0))), _TICK_LINE_PX, False


def fit_margins(fig: go.Figure) -> go.Figure:
    """Margins that already hold the axes' tick labels and titles.

    Streamlit's plotly theme turns on ``automargin``: plotly draws the chart, measures its
    tick labels and, when they push past the margins, draws the whole chart again. With room
    enough from the start it draws once: 25-30% less of the browser's time on a page of eight
    charts. The estimate only has to be near: short, and plotly widens the margin (one more
    drawing, as before); long, and the plot is a little narrower. A legend beside the plot
    is placed before the axes and needs no room here, unless it sits in the figure's corner
    (``xref="container"``, :func:`add_rate_line`); a figure whose plot would be shorter than its
    legend is made taller, so the legend shows every entry instead of a scroll bar."""
    y_wide = _tick_extent(fig, "y")[0]
    x_wide, x_high, turned = _tick_extent(fig, "x")
    # the last label, turned, reaches past the plot
    right = round(x_wide * math.cos(math.radians(_TURNED_DEGREES))) if turned else 10
    if turned and fig.layout.xaxis.tickangle is None:
        fig.update_xaxes(tickangle=_TURNED_DEGREES)
    if any(getattr(t, "yaxis", None) == "y2" for t in fig.data):
        # the right-hand axis's labels and title, and a legend in the figure's corner beside
        # them: its names, swatches and gaps (measured: 93 px beyond the two labels' widths)
        room = _tick_extent(fig, "y2")[0] + 44
        if fig.layout.legend.xref == "container":
            names = [t.name or "" for t in fig.data if t.showlegend is not False]
            room += max((_text_px(n) for n in names), default=0.0) + 50
        right = max(right, round(room))
    top, bottom = 60, round(x_high + _X_AXIS_ROOM)
    fig.update_layout(margin={"t": top, "l": round(y_wide + _Y_AXIS_ROOM), "r": right, "b": bottom})
    _whole_number_ticks(fig)
    legend = _legend_px(fig)
    if legend and top + legend + bottom > (fig.layout.height or _PLOTLY_HEIGHT):
        fig.update_layout(height=top + legend + bottom)
    return fig


_PLOTLY_HEIGHT = 450  # a figure's height when it sets none
_FEW = 6  # counts up to this: plotly ticks them 0, 0.5, 1, 1.5 ... unless told a tick is 1


def _whole_number_ticks(fig: go.Figure) -> None:
    """An axis of small counts ticks whole numbers: "Login failures by source IP" with two
    failures at most ticked 0, 0.5, 1, 1.5, 2. Counts are whole numbers on every axis the
    charts draw (the failure rate's own axis is a percentage: not whole, left alone)."""
    for axis in ("x", "y"):
        values, categories = _axis_values(fig, axis)
        if categories or fig.layout[f"{axis}axis"].ticktext:
            continue
        numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
        if not numbers or len(numbers) != len(values) or any(float(v) != int(v) for v in numbers):
            continue
        if 0 < max(numbers) <= _FEW and fig.layout[f"{axis}axis"].dtick is None:
            fig.update_layout({f"{axis}axis": {"tick0": 0, "dtick": 1}})


def _legend_px(fig: go.Figure) -> int:
    """How tall the figure's legend beside the plot is drawn (0: none, or one laid out in a
    row): an entry per trace that shows in it (plotly shows a lone trace's only when asked)."""
    if fig.layout.showlegend is False or fig.layout.legend.orientation == "h":
        return 0
    entries: int = sum(
        t.showlegend is True or (t.showlegend is None and t.type != "heatmap") for t in fig.data
    )
    if entries < 2 and fig.layout.showlegend is not True:
        return 0
    return entries * _LEGEND_ENTRY_PX + _LEGEND_FRAME_PX


def _template_text(label: str) -> str:
    """An escaped label as literal text inside a plotly hovertemplate (its ``%{`` would be
    read as a placeholder)."""
    return label.replace("%{", "%\u200b{")


def _local_naive(value: datetime) -> datetime:
    # plotly has no time zones: show the wall-clock time of the shown zone
    return value.replace(tzinfo=None)


def _utc_offset(value: datetime) -> str:
    """``+01:00`` (``%:z`` needs Python 3.12)."""
    z = f"{value:%z}"
    return f"{z[:3]}:{z[3:]}" if z else ""


def bucket_text(start: datetime, every: str) -> str:
    """``2025-10-26 02:00–03:00 (UTC+01:00)``, ``Sun 2025-10-26``, ``week of 2025-10-20``."""
    if every == "1h":
        end = activity.bucket_end(start, every)
        return f"{start:%Y-%m-%d %H:%M}–{end:%H:%M} (UTC{_utc_offset(start)})"
    if every == "1d":
        return f"{start:%a %Y-%m-%d}"
    return f"week of {start:%Y-%m-%d}"


def bucket_hover(starts: Sequence[datetime], every: str) -> tuple[str, list[str] | None]:
    """How a trace's hover names its bucket: a plotly format of the point's x (the bucket's
    local start) when that says all of :func:`bucket_text`, else ``%{customdata[1]}`` with
    the texts to put there (hourly buckets across a change of UTC offset).

    One format per trace instead of a text per point: a chart of hourly buckets has
    thousands of points, and their texts were most of what the page sent."""
    if every == "1d":
        return "%{x|%a %Y-%m-%d}", None
    if every != "1h":
        return "week of %{x|%Y-%m-%d}", None
    offsets = {_utc_offset(s) for s in starts}
    if len(offsets) <= 1:  # one offset: every bucket is a whole wall-clock hour
        offset = next(iter(offsets), "")
        return f"%{{x|%Y-%m-%d %H:%M}}, one hour (UTC{offset})", None
    return "%{customdata[1]}", [bucket_text(s, every) for s in starts]


def _custom(drills: list[str], texts: list[str] | None) -> list[list[str]]:
    """``customdata``: the drill first (see :func:`clicked_drill`), then the hover's bucket
    text only when the hover needs it."""
    if texts is None:
        return [[d] for d in drills]
    return [[d, t] for d, t in zip(drills, texts, strict=True)]


def bars_over_time(
    data: pl.DataFrame,
    *,
    series: str,
    value: str,
    every: str,
    tz: str,
    title: str,
    y_title: str,
    extra_drill: Mapping[str, Any] | None = None,
    colors: Mapping[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
    order: Sequence[str] | None = None,
) -> go.Figure:
    """Stacked bars per bucket, one trace per value of ``series`` (a category or a result).

    ``data`` has ``bucket`` (aware, in ``tz``), ``series`` and ``value``. Clicking a bar
    drills to that bucket and series value (plus ``extra_drill``). The legend names a
    category by its code (``auth``, as a search writes it; the hover by its whole name): the
    whole names took 200 px of a chart that has 470 beside the sidebar at 800 px.
    """
    if series == "type":
        colors, labels, order = colors or CATEGORY_COLORS, labels or {}, order or CATEGORY_CODES
    else:
        colors, labels, order = colors or RESULT_COLORS, labels or RESULT_LABELS, order or RESULTS
    fig = go.Figure()
    present = set(data[series].cast(pl.String).unique().to_list()) if data.height else set()
    for key in order:
        if key not in present:
            continue
        rows = data.filter(pl.col(series).cast(pl.String) == key).filter(pl.col(value) > 0)
        name = labels.get(key) or category_label(key)
        legend = key if series == "type" and key not in labels else name
        starts = rows["bucket"].to_list()
        drills = [
            drill(
                **{series: key},
                start=s.isoformat(),
                end=activity.bucket_end(s, every).isoformat(),
                **(extra_drill or {}),
            )
            for s in starts
        ]
        when, texts = bucket_hover(starts, every)
        fig.add_bar(
            x=[_local_naive(s) for s in starts],
            y=rows[value].to_list(),
            name=escape_label(legend),
            marker_color=colors.get(key),
            customdata=_custom(drills, texts),
            hovertemplate=f"<b>{_template_text(escape_label(name))}</b><br>{when}<br>%{{y:,}}<extra></extra>",
        )
    fig.update_layout(barmode="stack")
    _one_bucket_wide(fig, data["bucket"].unique().to_list() if data.height else [], every)
    return style(
        fig,
        title=title,
        x_title=f"{BUCKET_NAMES[every].capitalize()} ({tz})",
        y_title=y_title,
        legend_title="Category" if series == "type" else "Result",
    )


def _one_bucket_wide(fig: go.Figure, buckets: Sequence[datetime], every: str) -> None:
    """A chart of one bucket (Today just after midnight) as that bucket, not a millisecond:
    with one bar plotly can infer neither its width nor a range, and zoomed to
    "23:59:59.9996 … 00:00:00.0004" with the bar filling the chart."""
    if len(buckets) != 1:
        return
    (start,) = buckets
    step = activity.bucket_end(start, every) - start
    at = _local_naive(start)
    fig.update_xaxes(range=[at - step, at + step])
    fig.update_traces(width=step.total_seconds() * 1000 * 0.8, selector={"type": "bar"})


def add_rate_line(fig: go.Figure, mix: pl.DataFrame, *, every: str, name: str = "Failure rate") -> go.Figure:
    """The failure rate of :func:`activity.result_mix` as a line on a right-hand % axis;
    clicking a point drills to the failed events of that bucket."""
    starts = mix["bucket"].to_list()
    rates = [None if r is None else r * 100 for r in mix["failure_rate"].to_list()]
    when, texts = bucket_hover(starts, every)
    fig.add_scatter(
        x=[_local_naive(s) for s in starts],
        y=rates,
        name=name,
        yaxis="y2",
        mode="lines+markers",
        line={"color": FAILURE_RATE_COLOR, "width": 2},
        customdata=_custom(
            [
                drill(result="failed", start=s.isoformat(), end=activity.bucket_end(s, every).isoformat())
                for s in starts
            ],
            texts,
        ),
        hovertemplate=f"<b>{_template_text(escape_label(name))}</b><br>{when}<br>%{{y:.1f}}%<extra></extra>",
    )
    fig.update_layout(
        yaxis2={
            "title": {"text": "Failure rate (%)"},
            "overlaying": "y",
            "side": "right",
            "rangemode": "tozero",
            # its own round ticks (aligned with the events' grid they read 1.071, 2.143 ...)
            "tickmode": "auto",
            "showgrid": False,
        },
        # at the figure's right edge, the margin made for it: at x=1.08 of the plot it covered
        # the % axis on a narrow page
        legend={"xref": "container", "x": 1, "xanchor": "right"},
    )
    fig.update_yaxes(automargin=True, selector={"overlaying": "y"})
    return fit_margins(fig)


RANKED_MIN_WIDTH = 640
"""px a chart of :func:`ranked_bars` needs beside another (:func:`chart_pair`): its names (100-250
px), the axis (62 px), its legend (about 120 px) and room for the bars. Side by side at 1440 px
each had 482 px, 114 px of them bars (the legend then held whole category names, 215 px)."""


def ranked_bars(data: pl.DataFrame, *, key: str, title: str, x_title: str, y_title: str) -> go.Figure:
    """Horizontal bars of :func:`activity.top_actors` / ``top_targets``, stacked by category.

    Labels are ``rank. name`` (escaped, shortened to 40 characters; the rank keeps two
    names that look alike apart); a click drills to that name in that category. The legend
    names the categories by their codes, as :func:`bars_over_time` does.
    """
    fig = go.Figure()
    ranks = data.select("rank", key).unique().sort("rank")
    label_of = {name: f"{rank}. {escape_label(name, limit=40)}" for rank, name in ranks.rows()}
    order = [label_of[name] for name in ranks[key].to_list()]
    for code in CATEGORY_CODES:
        rows = data.filter(pl.col("type").cast(pl.String) == code)
        if rows.height == 0:
            continue
        names = rows[key].to_list()
        fig.add_bar(
            y=[label_of[n] for n in names],
            x=rows["events"].to_list(),
            orientation="h",
            name=code,
            marker_color=CATEGORY_COLORS[code],
            customdata=[[drill(type=code, **{key: n}), escape_label(n), category_label(code)] for n in names],
            hovertemplate="<b>%{customdata[1]}</b><br>%{customdata[2]}<br>%{x:,} events<extra></extra>",
        )
    fig.update_layout(barmode="stack", yaxis={"categoryorder": "array", "categoryarray": order[::-1]})
    return style(fig, title=title, x_title=x_title, y_title=y_title, legend_title="Category", height=420)


def comparison_bars(change: pl.DataFrame, *, title: str, period_name: str) -> go.Figure:
    """Events per category this period beside the period before (from
    :func:`activity.failure_rate_change`); a click drills to that category in that period.
    The axis names the categories by their codes, as the legends do (the hover in full):
    sixteen whole names were turned upright at 800 px, and the chart drawn twice."""
    rows = change.filter(pl.col("type") != "all").filter(
        (pl.col("events") > 0) | (pl.col("previous_events") > 0)
    )
    codes = rows["type"].to_list()
    labels = [escape_label(category_label(c)) for c in codes]
    fig = go.Figure()
    for column, name, previous, opacity in (
        ("previous_events", f"Previous {period_name}", True, 0.45),
        ("events", f"This {period_name}", False, 1.0),
    ):
        fig.add_bar(
            x=codes,
            y=rows[column].to_list(),
            name=name,
            marker_color=[CATEGORY_COLORS[c] for c in codes],
            marker_opacity=opacity,
            customdata=[
                [drill(type=c, previous=previous or None), lab, name]
                for c, lab in zip(codes, labels, strict=True)
            ],
            hovertemplate="<b>%{customdata[1]}</b><br>%{customdata[2]}: %{y:,} events<extra></extra>",
        )
    fig.update_layout(barmode="group", showlegend=False)
    return style(fig, title=title, x_title="Category (faded: previous period)", y_title="Events")


HOURS = tuple(f"{h:02d}" for h in range(24))
"""A weekday x hour grid's columns: the hours as its axis writes them (its hovers add ``:00``)."""


def weekday_hour_axes(fig: go.Figure, days: Sequence[str], *, scale: str) -> go.Figure:
    """The axes and colour bar of a weekday x hour grid (:data:`HOURS` across, ``days`` down,
    the first on top): the hours written ``00``-``23``, the days ``Mon``-``Sun`` (the hovers
    keep ``Monday 13:00``), and a slim colour bar titled ``scale`` along its side. At 360 px
    ``Wednesday``, ``13:00`` and the wide bar left the grid 123-126 px, under hour labels turned
    and touching; now the labels stand upright (plotly shows every third, apart) and the grid
    has 155-161 px."""
    fig.update_traces(
        colorbar={"title": {"text": escape_label(scale), "side": "right"}, "thickness": 12},
        selector={"type": "heatmap"},
    )
    fig.update_layout(
        xaxis={"type": "category"},  # "00"-"23" would be read as numbers: ticks at 0, 5, 10 ...
        yaxis={
            "autorange": "reversed",
            "tickmode": "array",
            "tickvals": list(days),
            "ticktext": [escape_label(d[:3]) for d in days],
        },
    )
    return fig


def weekday_hour_heatmap(cells: pl.DataFrame, *, tz: str, title: str) -> go.Figure:
    """The 7 x 24 grid of :func:`activity.weekday_hour` as a heat map (Monday on top)."""
    days = cells.select("weekday", "day").unique().sort("weekday")["day"].to_list()
    z = [cells.filter(pl.col("weekday") == w)["events"].to_list() for w in range(1, 8)]
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=list(HOURS),
            y=days,
            colorscale="Blues",
            hovertemplate="%{y} %{x}:00<br>%{z:,} events<extra></extra>",
        )
    )
    weekday_hour_axes(fig, days, scale="Events")
    return style(fig, title=title, x_title=f"Hour of the day ({tz})", y_title="Weekday", height=340)


def retention_bars(data: pl.DataFrame, *, title: str) -> go.Figure:
    """Events per retention group (from :func:`activity.retention_summary`); a click drills
    to that group's categories over all time."""
    names = {"security": "Security-sensitive", "operational": "Operational"}
    fig = go.Figure()
    for row in data.iter_rows(named=True):
        oldest = row["oldest"]
        fig.add_bar(
            x=[names.get(row["group"], row["group"])],
            y=[row["events"]],
            name=names.get(row["group"], row["group"]),
            marker_color="#1B3A6B" if row["group"] == "security" else "#4E79A7",
            customdata=[
                [
                    drill(group=row["group"], all_time=True),
                    escape_label(row["categories"]),
                    f"{oldest:%Y-%m-%d %H:%M} UTC" if oldest else "none",
                ]
            ],
            hovertemplate="<b>%{x}</b>: %{y:,} events<br>%{customdata[1]}<br>oldest: %{customdata[2]}<extra></extra>",
        )
    fig.update_layout(showlegend=False)
    return style(fig, title=title, x_title="Retention group", y_title="Events (whole log)", height=340)


# -- drawing --------------------------------------------------------------------------------------
PLOT_CONFIG: dict[str, Any] = {"displaylogo": False, "modeBarButtonsToRemove": ["toImage"]}
"""Every chart's toolbar: no "Download plot as a PNG", for any role. The image holds what the
chart shows (the top accounts under attack, by name) and leaves the browser without the server
knowing, so it could be neither refused to a viewer nor recorded as an export; the "Download
chart data" button under each chart is the recorded way out."""


def show(
    fig: go.Figure, *, key: str, view: View | None = None, on_click: Callable[[View], None] | None = None
) -> dict[str, Any] | None:
    """Draw a figure; when ``view`` is given, a click on a bar or point calls ``on_click``
    with the explorer view for it (the page passes ``ui.state.open_explorer``)."""
    if view is None:
        st.plotly_chart(fig, key=key, width="stretch", config=PLOT_CONFIG)
        return None
    changes = clickable(fig, key=key)
    if changes is not None and on_click is not None:
        on_click(drill_view(view, changes))
    return changes


def clickable(fig: go.Figure, *, key: str) -> dict[str, Any] | None:
    """Draw a figure whose points drill (:func:`drill` in their ``customdata``) and return
    the drill of the point just clicked, or None.

    The click is read by the chart's selection callback, which Streamlit calls at the start
    of the rerun the click asks for, under the name the chart had when it was clicked. A
    chart's name holds its figure: when the data changed between the drawing and the click
    (the page recorded a download, events arrived), the rerun drew a new figure under a new
    name, and the selection read from its return value was lost: the first click did nothing.
    """
    clicked = f"{key}--clicked"

    def keep_click() -> None:
        changes = clicked_drill(st.session_state.get(key))
        if changes is not None:
            st.session_state[clicked] = changes

    event = st.plotly_chart(
        fig,
        key=key,
        width="stretch",
        on_select=keep_click,
        selection_mode="points",
        config=PLOT_CONFIG,
    )
    kept: dict[str, Any] | None = st.session_state.pop(clicked, None)
    return kept if kept is not None else clicked_drill(event)


def csv_bytes(frame: pl.DataFrame) -> bytes:
    """The frame as CSV (UTF-8 with BOM, for spreadsheets), written by
    :func:`audit_analytics.io.tabular.to_csv`: times in the zone their column carries (the
    viewer's), ISO 8601 with its offset; text that a spreadsheet would run as a formula
    neutralised."""
    return tabular.to_csv(frame, tz=None, bom=True)


def no_download_note() -> None:
    """For someone who may not export, a line saying why the page's "Download chart data"
    buttons are disabled: the buttons say it only in a tooltip, which a touch screen never
    shows (seen on a phone). Nothing for an auditor or admin."""
    from audit_analytics.ui import auth

    allowed, why_not = auth.export_permission(auth.current_user())
    if not allowed:
        st.caption(f"Chart data downloads are off for you. {why_not}")  # the app's own text


def download_chart_data(
    frame: pl.DataFrame, *, key: str, file_name: str, label: str = "Download chart data"
) -> None:
    """A button that downloads the numbers behind a chart as CSV.

    Like every way data leaves the app, it needs ``audit.export`` (without it the button is
    disabled and says why) and records an ``audit``/``export`` event, when it is clicked."""
    from audit_analytics.ui import auth
    from audit_analytics.ui.data import current_shared, get_store, invalidate

    user = auth.current_user()
    allowed, why_not = auth.export_permission(user)
    if not allowed or user is None:
        # a disabled button with a callable leaves nothing on the server to fetch
        st.download_button(
            label,
            data=lambda: b"",
            file_name=file_name,
            key=key,
            icon=":material/download:",
            disabled=True,
            help=why_not or None,
        )
        return
    store, shared = get_store(), current_shared()
    view = st.session_state.get("view")
    flt = view.filter.as_params() if isinstance(view, View) else {}
    rows = frame.height
    ip = auth.client_ip()  # read in the script run: the click's request has no session context

    def payload() -> bytes:  # runs on click, in the server's request, outside the script run
        data = csv_bytes(frame)
        store.record(
            actor=user.name,
            ip=ip,
            type="audit",
            action="export",
            target=file_name,
            params={"filter": flt, "format": "csv", "count": rows, "what": "chart data", "via": "app"},
            description=f"{user.name} downloaded the chart data {file_name} ({rows:,} rows)",
        )
        invalidate(shared)
        return data

    st.download_button(
        label,
        data=payload,
        file_name=file_name,
        mime="text/csv",
        key=key,
        icon=":material/download:",
        on_click="ignore",
    )


PAIR_MIN_WIDTH = 380  # px of each chart of a pair: under two of them, the pair stacks


def chart_pair(key: str, *, min_width: int = PAIR_MIN_WIDTH) -> tuple[DeltaGenerator, DeltaGenerator]:
    """Two columns for two charts side by side, which stack when the page is narrow (under
    ``min_width`` each: at 800 px with the sidebar open, two charts of 230 px had their titles
    cut and their legends over the bars). Streamlit itself stacks columns only under 640 px of
    window."""
    left, right = common.wrapping_columns(f"pair-{key}", 2, min_width=min_width)
    return left, right

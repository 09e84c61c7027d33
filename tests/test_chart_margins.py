"""``ui.charts.fit_margins``: a figure asks for margins that hold its axes' tick labels and
titles, so plotly draws it once (``tests/test_browser_charts.py`` checks that in Chromium).
Measured there: a tick label's character is 2.4-10.2 px wide (digits 5.96), the y axis's
title and gaps take 53-60 px beside its widest label, the x axis's 48-62 px under its
tallest."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import plotly.graph_objects as go
import polars as pl
import pytest

from audit_analytics.ui import charts
from audit_analytics.ui.charts import _number_chars, _text_px, fit_margins


def margins(fig: go.Figure) -> dict[str, int]:
    m = fig.layout.margin
    return {"l": m.l, "r": m.r, "t": m.t, "b": m.b}


def vertical(top: float) -> go.Figure:
    fig = go.Figure()
    fig.add_bar(x=["a", "b"], y=[top / 2, top])
    return charts.style(fig, title="t", x_title="x", y_title="y")


@pytest.mark.parametrize(
    ("top", "chars"),
    [
        (3, 3),
        (12, 4),
        (95, 3),
        (950, 4),
        (1200, 4),
        (9_500, 4),
        (12_000, 3),
        (120_000, 4),
        (950_000, 4),
        (2_500_000, 4),
    ],
)
def test_number_labels_are_as_wide_as_plotly_writes_the_top_tick(top, chars):
    # 3 -> "3.5"; 12 -> "12.5"; 95 -> "100"; 950 -> "1000"; 9,500 -> "8000" or "10k";
    # 12,000 -> "14k"; 120,000 -> "150k"; 950,000 -> "800k" or "1M"; 2,500,000 -> "2.5M"
    assert _number_chars(top) == chars


@pytest.mark.parametrize(
    ("text", "drawn"),
    # tick labels' widths as Chromium drew them (getBBox) in the app's charts
    [("0", 6.0), ("10k", 18.0), ("Wednesday", 58.0), ("10. adam.kowalski", 93.1)],
)
def test_a_label_is_taken_a_little_wider_than_it_is_drawn(text, drawn):
    assert drawn <= _text_px(text) <= drawn * 1.1


def test_letters_beyond_ascii_are_taken_a_full_em():
    assert _text_px("東京") >= 2 * 12
    assert _text_px("Zoë") > _text_px("Zoe")


def test_the_left_margin_grows_with_the_numbers_on_the_y_axis():
    small, large = margins(vertical(5)), margins(vertical(5_000))
    assert large["l"] > small["l"] >= 3 * 5.96 + 53  # "5.5", then "5000"
    assert large["l"] >= 4 * 5.96 + 60


def test_stacked_bars_are_measured_by_their_sum():
    fig = go.Figure()
    for _ in range(10):
        fig.add_bar(x=["a", "b"], y=[900, 850])  # 9,000 stacked: "9000" at the top, not "900"
    fig.update_layout(barmode="stack")
    stacked = margins(charts.style(fig, title="t", x_title="x", y_title="y"))
    assert stacked["l"] > margins(vertical(900))["l"]


def test_ranked_bars_leave_room_for_their_longest_name():
    def ranked(name: str) -> dict[str, int]:
        data = pl.DataFrame(
            {"rank": [1, 2], "actor": ["bo", name], "type": ["auth", "auth"], "events": [5, 3]}
        )
        return margins(charts.ranked_bars(data, key="actor", title="t", x_title="x", y_title="y"))

    short, long = ranked("al"), ranked("x" * 60)  # shortened to 40 characters, "2. " before
    assert long["l"] > short["l"]
    # measured in Chromium: "2" 5.96 px, "." 2.99, " " 2.4, "x" 5.35
    assert long["l"] >= 5.96 + 2.99 + 2.4 + 39 * 5.35 + 53
    assert long["b"] < 2 * 16 + 64  # numbers under the bars: one line


def test_dates_under_the_plot_get_two_lines():
    start = datetime(2026, 11, 30, tzinfo=UTC)
    data = pl.DataFrame(
        {"bucket": [start + timedelta(days=d) for d in range(7)], "type": ["auth"] * 7, "events": [3] * 7}
    )
    fig = charts.bars_over_time(
        data, series="type", value="events", every="1d", tz="UTC", title="t", y_title="Events"
    )
    assert margins(fig)["b"] >= 2 * 16 + 48  # "Nov 30" over "2026", then the title


def test_many_long_category_labels_are_turned_and_reach_right():
    few = margins(vertical(10))
    fig = go.Figure()
    labels = [charts.category_label(c) for c in charts.CATEGORY_COLORS]
    fig.add_bar(x=labels, y=list(range(len(labels))))
    styled = charts.style(fig, title="t", x_title="x", y_title="y")
    turned = margins(styled)
    widest = max(len(label) for label in labels)
    # at a fixed 45 degrees, whatever the chart's width: plotly then never turns them itself
    # (upright on a narrow chart, which the margins were not made for)
    assert styled.layout.xaxis.tickangle == 45 and vertical(10).layout.xaxis.tickangle is None
    assert turned["b"] >= widest * 5 * 0.7 + 48 > few["b"]
    assert turned["r"] >= widest * 5 * 0.7 > few["r"]


def test_the_rate_axis_and_its_legend_in_the_corner_get_the_right_margin():
    start = datetime(2026, 11, 30, tzinfo=UTC)
    buckets = [start + timedelta(days=d) for d in range(3)]
    mix = pl.DataFrame({"bucket": buckets, "failure_rate": [0.1, 0.2, None]})
    bars = charts.bars_over_time(
        pl.DataFrame({"bucket": buckets, "result": ["done"] * 3, "events": [4, 5, 6]}),
        series="result",
        value="events",
        every="1d",
        tz="UTC",
        title="t",
        y_title="Events",
    )
    plain = margins(bars)["r"]
    with_rate = margins(charts.add_rate_line(bars, mix, every="1d", name="A rather long rate name"))["r"]
    assert with_rate >= plain + len("A rather long rate name") * 5 + 40


def test_fit_margins_is_the_same_however_often_it_runs():
    fig = vertical(1234)
    once = margins(fig)
    assert margins(fit_margins(fit_margins(fig))) == once


def by_category(codes: list[str]) -> go.Figure:
    """Events per day stacked by category, as Activity draws them."""
    start = datetime(2026, 11, 30, tzinfo=UTC)
    data = pl.DataFrame(
        {"bucket": [start] * len(codes), "type": codes, "events": list(range(1, len(codes) + 1))}
    )
    return charts.bars_over_time(
        data, series="type", value="events", every="1d", tz="UTC", title="t", y_title="Events"
    )


def plot_height(fig: go.Figure) -> int:
    return fig.layout.height - fig.layout.margin.t - fig.layout.margin.b


def test_a_figure_grows_until_its_legend_needs_no_scroll_bar():
    # measured in Chromium: a legend beside the plot is 19 px per entry and 26 more, and no
    # taller than the plot (it scrolled: 16 categories in a 224 px plot showed 11)
    every = list(charts.CATEGORY_COLORS)
    few = by_category(every[:3])
    assert few.layout.height == 380 and plot_height(few) >= 3 * 19 + 26  # fits: left as it was
    many = by_category(every)
    assert plot_height(many) >= 16 * 19 + 26 > plot_height(few)
    assert (
        margins(fit_margins(many)) == margins(many) and fit_margins(many).layout.height == many.layout.height
    )


def test_a_legend_in_a_row_or_hidden_adds_no_height():
    def bars(**layout) -> go.Figure:
        fig = go.Figure()
        for code in charts.CATEGORY_COLORS:
            fig.add_bar(x=["Mon"], y=[1], name=charts.category_label(code))
        return charts.style(fig.update_layout(**layout), title="t", x_title="x", y_title="y")

    assert bars().layout.height > 380  # the 16 entries beside the plot
    assert bars(showlegend=False).layout.height == 380
    assert bars(legend={"orientation": "h"}).layout.height == 380


def test_top_10_charts_stand_side_by_side_only_where_each_has_room_for_its_bars():
    # names, the axis, a 16-entry legend and bars: under RANKED_MIN_WIDTH each, the pair stacks
    data = pl.DataFrame(
        {
            "rank": list(range(1, 17)),
            "actor": [f"user-{i}" for i in range(16)],
            "type": list(charts.CATEGORY_COLORS),
            "events": [100] * 16,
        }
    )
    fig = charts.ranked_bars(data, key="actor", title="t", x_title="x", y_title="y")
    assert [t.name for t in fig.data] == list(charts.CATEGORY_COLORS)  # the codes, not whole names
    legend = max(charts._text_px(t.name) for t in fig.data) + 50  # swatch and gaps: 40-50 px
    beside = fig.layout.margin.l + legend
    assert charts.RANKED_MIN_WIDTH - beside >= 250, beside  # px left for the bars
    assert plot_height(fig) >= 16 * 19 + 26


def test_small_counts_are_ticked_in_whole_numbers():
    """Two failures at most ticked 0, 0.5, 1, 1.5, 2 ("Login failures by source IP")."""
    few = fit_margins(go.Figure(go.Bar(x=[2, 1], y=["10.0.0.1", "10.0.0.2"], orientation="h")))
    assert (few.layout.xaxis.dtick, few.layout.xaxis.tick0) == (1, 0)
    assert few.layout.yaxis.dtick is None  # the names
    many = fit_margins(go.Figure(go.Bar(x=["a", "b"], y=[40, 7])))
    assert many.layout.yaxis.dtick is None  # plotly's own whole steps
    share = fit_margins(go.Figure(go.Bar(x=["a", "b"], y=[0.5, 2.5])))
    assert share.layout.yaxis.dtick is None  # not counts

"""Charts drawn once: every chart of Activity and Security review is laid out in one pass in
Chromium, its margins holding its axes from the start (``ui.charts.fit_margins``).

Streamlit's plotly theme turns on ``automargin``; when a chart's tick labels or axis titles
push past its margins, plotly draws the whole chart again (and marks the figure with
``_redrawFromAutoMarginCount``). That second drawing was a quarter of the browser's time on
Activity. The test reads each drawn chart's own layout: no redraw, and the margins plotly
used are the ones the figure asked for (so nothing was pushed). Each chart is also whole: a
legend beside the plot shows every entry (it scrolled when taller than the plot: Activity's
16 categories showed 11), and the Top 10 bars have room beside their names and legend (114 px
at 1440 px, side by side; 93 px at 800 px, beside the open sidebar).
"""

from __future__ import annotations

import itertools

import browser_support
import pytest
from browser_support import demo_database, open_app, running_app, wait_idle

chromium, browser, page = browser_support.chromium, browser_support.browser, browser_support.page

WIDTHS = (1440, 800)

# each drawn chart: its title, whether plotly redrew it for its margins, the margins it asked
# for and the ones it used
CHARTS_JS = """() => [...document.querySelectorAll('[data-testid=stMain] .js-plotly-plot')].map((g) => {
    const full = g._fullLayout, asked = g.layout.margin || {};
    return {title: (full.title && full.title.text) || '',
            redrawn: '_redrawFromAutoMarginCount' in full,
            asked: [asked.l, asked.b], used: [full._size.l, full._size.b],
            upright: Object.values(full.xaxis._tickAngles || {}).includes(90),
            legend: full.legend ? [full.legend._height, full.legend._effHeight] : null,
            plot_width: full._size.w};
})"""


@pytest.fixture(scope="module")
def app(chromium, tmp_path_factory):
    url = demo_database(tmp_path_factory.mktemp("browser-charts") / "audit.db", n_events=20_000)
    with running_app(url) as server:
        yield server


def charts_drawn(page, count: int) -> list[dict]:
    page.wait_for_function(
        """(n) => [...document.querySelectorAll('[data-testid=stMain] .js-plotly-plot')]
            .filter((g) => g.querySelector('.main-svg')).length >= n""",
        arg=count,
    )
    wait_idle(page, settle=0.5)
    return page.evaluate(CHARTS_JS)


@pytest.mark.browser
@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize(("path", "count"), [("activity", 8), ("security", 5)])
def test_every_chart_is_drawn_once_with_room_for_its_axes_and_legend(app, page, width, path, count):
    page.set_viewport_size({"width": width, "height": 1000})
    open_app(page, app.url(f"{path}?period=30d"))
    charts = charts_drawn(page, count)
    assert len(charts) >= count, [c["title"] for c in charts]
    # none, "Events per category" included: its labels are turned 45 degrees at any width (left
    # to plotly, they stood upright beside the open sidebar at 800 px, which the margins were
    # not made for)
    redrawn = [c for c in charts if c["redrawn"]]
    assert not redrawn, f"plotly drew these again for their margins at {width} px: {redrawn}"
    for chart in charts:
        assert not chart["upright"], chart
        # the axes fit inside the margins asked for: plotly widened neither (the right margin
        # also holds legends and colour bars, placed before the axes; no redraw covers it)
        assert chart["used"] == chart["asked"], chart
    for chart in charts:
        if chart["legend"]:  # drawn as tall as it needs: no scroll bar
            height, shown = chart["legend"]
            assert shown >= height, f"the legend of {chart['title']!r} scrolls at {width} px: {chart}"
        if "Top 10" in chart["title"]:  # beside the names and legend: 114 px at 1440, 93 at 800
            room = 400 if width == 1440 else 180  # 800 px: beside the sidebar, in 480 px
            assert chart["plot_width"] >= room, f"{chart['title']!r} at {width} px: {chart}"


@pytest.mark.browser
@pytest.mark.parametrize(("path", "count"), [("activity", 8), ("security", 5)])
def test_every_chart_title_is_whole_on_a_phone(app, page, path, count):
    """At 390 px "Events per category: this period and the one before" and "Changes per day
    (create, update, delete and other write actions)" lost their ends past the chart's edge."""
    page.set_viewport_size({"width": 390, "height": 844})
    open_app(page, app.url(f"{path}?period=30d"))
    charts_drawn(page, count)
    titles = page.evaluate(
        """() => [...document.querySelectorAll('[data-testid=stMain] .js-plotly-plot')].map((g) => {
            const t = g.querySelector('.gtitle'), box = g.getBoundingClientRect();
            const r = t ? t.getBoundingClientRect() : null;
            return {title: t ? t.textContent : '', left: r ? r.left - box.left : 0,
                    right: r ? r.right - box.left : 0, width: box.width};
        })"""
    )
    assert len(titles) >= count and all(t["title"] for t in titles)
    cut = [t for t in titles if t["left"] < 0 or t["right"] > t["width"]]
    assert cut == [], cut


@pytest.mark.browser
@pytest.mark.parametrize(("path", "count"), [("activity", 8), ("security", 5)])
def test_a_weekday_hour_grid_reads_on_a_phone(app, page, path, count):
    """At 360 px the weekday x hour grids had 123-126 px between "Wednesday" and a wide colour
    bar, under "00:00"-"23:00" turned 45 degrees and touching. Now the hours ("00"-"23") stand
    upright without touching, the days are "Mon"-"Sun", and the grid has room."""
    page.set_viewport_size({"width": 360, "height": 800})
    open_app(page, app.url(f"{path}?period=30d"))
    charts_drawn(page, count)
    grids = page.evaluate(
        """() => [...document.querySelectorAll('[data-testid=stMain] .js-plotly-plot')]
            .filter((g) => g.data.some((t) => t.type === 'heatmap')).map((g) => {
            const full = g._fullLayout;
            const box = (e) => { const r = e.getBoundingClientRect(); return [r.left, r.right]; };
            return {title: full.title.text, plot_width: full._size.w,
                    angles: Object.values(full.xaxis._tickAngles || {}),
                    hours: [...g.querySelectorAll('.xtick text')].map((t) => [t.textContent, ...box(t)]),
                    days: [...g.querySelectorAll('.ytick text')].map((t) => t.textContent)};
        })"""
    )
    assert len(grids) == 1, grids
    grid = grids[0]
    assert sorted(grid["days"]) == sorted(["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]), grid
    assert all(angle == 0 for angle in grid["angles"]), grid
    hours = sorted(grid["hours"], key=lambda h: h[1])
    assert len(hours) >= 4 and all(text.isdigit() and len(text) == 2 for text, _, _ in hours), grid
    touching = [(a, b) for a, b in itertools.pairwise(hours) if b[1] < a[2] + 2]
    assert touching == [], hours
    assert grid["plot_width"] >= 150, grid  # 123-126 px before, 155-161 after

"""The Security review page in a real Chromium against a real ``streamlit run``: the charts
draw, and clicking a bar opens the Audit Log on exactly that IP's login failures.

Until app.py registers the page, the app runs from a temporary copy of app.py that adds it
(with a copy of the pages).
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import browser_support
import pytest
from browser_support import (
    click_row_marker,
    dataframe_with_columns,
    demo_database,
    open_app,
    running_app,
    wait_idle,
)

from audit_analytics.engines.store import open_store

# the shared fixtures (a module-level name is how pytest finds them; see browser_support)
chromium, browser, page = browser_support.chromium, browser_support.browser, browser_support.page

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def app(chromium, tmp_path_factory):
    url = demo_database(tmp_path_factory.mktemp("browser-security") / "audit.db")
    with running_app(url) as server:
        yield server


def top_ip(app) -> tuple[str, int]:
    store = open_store(app.db_url)
    try:
        rows = store.load().to_dicts()
    finally:
        store.engine.dispose()
    counts: dict[str, int] = {}
    for r in rows:
        if r["type"] == "auth" and r["action"] == "login" and r["result"] == "failed" and r["ip"]:
            counts[r["ip"]] = counts.get(r["ip"], 0) + 1
    return min(counts.items(), key=lambda kv: (-kv[1], kv[0]))


def no_errors(page) -> None:
    exceptions = page.get_by_test_id("stException")
    assert exceptions.count() == 0, exceptions.all_inner_texts()


@pytest.mark.browser
def test_charts_draw_and_a_bar_opens_the_explorer(app, page):
    from playwright.sync_api import expect

    open_app(page, app.url("security?period=all"))
    expect(page.get_by_role("heading", name="Security review")).to_be_visible()
    no_errors(page)
    charts = page.locator(".js-plotly-plot")
    expect(charts.first).to_be_visible()
    # plotly draws each chart after the script run ends: wait for the fifth, do not count at once
    expect(charts.nth(4)).to_be_attached()
    assert charts.count() >= 5
    by_ip = charts.filter(has_text="Login failures by source IP")
    expect(by_ip.locator("svg.main-svg").first).to_be_visible()
    ip, failures = top_ip(app)
    expect(by_ip).to_contain_text(ip)
    # the detection tables are there, the most urgent first
    headings = page.get_by_test_id("stHeading").all_inner_texts()
    titles = [h.split(" · ")[0] for h in headings if " · " in h]
    assert titles[:2] == ["Success after failures", "Brute force"]

    bar = by_ip.locator("g.trace.bars g.point path").first
    bar.scroll_into_view_if_needed()
    box = bar.bounding_box()
    assert box is not None, "the bar is not drawn"
    # plotly's drag layer lies over the bars: click where the bar is, as a user does
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.wait_for_url(re.compile(r"^(?!.*/security\?).*q=action%3Alogin"))
    expect(page.get_by_role("heading", name="Audit Log")).to_be_visible()
    wait_idle(page)
    params = {k: v[-1] for k, v in parse_qs(urlsplit(page.url).query).items()}
    assert params == {"period": "all", "type": "auth", "result": "failed", "q": f"action:login ip:{ip}"}
    caption = (
        page.get_by_test_id("stCaptionContainer").filter(has_text=re.compile(r"^[\d,]+ events? · ")).first
    )
    assert caption.inner_text().startswith(f"{failures:,} event")
    no_errors(page)


@pytest.mark.browser
@pytest.mark.parametrize("width", [1440, 390])
def test_a_heatmap_cell_opens_its_latest_hour(app, page, width):
    """A click on the weekday x hour cell with the most failures (off its centre) opens the Audit
    Log on that cell's most recent hour. plotly selects no heatmap cell on a click: before the invisible
    markers the click reached the app as an empty selection and nothing happened."""
    from datetime import datetime, timedelta

    from playwright.sync_api import expect

    page.set_viewport_size({"width": width, "height": 900})
    open_app(page, app.url("security?period=all"))
    heat = page.locator(".js-plotly-plot").filter(has_text="Login failures by weekday and hour")
    heat.scroll_into_view_if_needed()
    expect(heat.locator("svg.main-svg").first).to_be_visible()
    cell = heat.evaluate(
        """gd => {
            const h = gd.data[0];
            let best = null;
            h.z.forEach((row, w) => row.forEach((n, i) => { if (n && (!best || n > best.n)) best = {n, w, i}; }));
            const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis, box = gd.getBoundingClientRect();
            return {n: best.n, day: h.y[best.w], hour: h.x[best.i],
                    // off the centre, towards a corner, as a hurried finger clicks
                    x: box.left + xa._offset + xa.d2p(h.x[best.i]) + 0.35 * xa._length / 24,
                    y: box.top + ya._offset + ya.d2p(h.y[best.w]) - 0.35 * ya._length / 7};
        }"""
    )
    page.mouse.click(cell["x"], cell["y"])
    page.wait_for_url(re.compile(r"period=custom"))
    expect(page.get_by_role("heading", name="Audit Log")).to_be_visible()
    wait_idle(page)
    params = {k: v[-1] for k, v in parse_qs(urlsplit(page.url).query).items()}
    assert (params["type"], params["result"], params["q"]) == ("auth", "failed", "action:login")
    start, end = datetime.fromisoformat(params["from"]), datetime.fromisoformat(params["to"])
    assert end - start == timedelta(hours=1)
    assert (start.strftime("%A"), f"{start.hour:02d}") == (cell["day"], cell["hour"])
    store = open_store(app.db_url)
    try:
        rows = store.load().to_dicts()
    finally:
        store.engine.dispose()
    expected = sum(
        1
        for r in rows
        if r["type"] == "auth"
        and r["action"] == "login"
        and r["result"] == "failed"
        and start <= r["time"] < end
    )
    caption = (
        page.get_by_test_id("stCaptionContainer").filter(has_text=re.compile(r"^[\d,]+ events? · ")).first
    )
    assert expected > 0 and caption.inner_text().startswith(f"{expected:,} event")
    no_errors(page)


@pytest.mark.browser
def test_a_ticked_finding_opens_its_events_in_the_same_tab(app, page):
    """The findings tables' links open a new tab (a new session, which resumes the sign-in:
    tests/test_browser_session.py); ticking a row opens the finding's events in this tab."""
    from playwright.sync_api import expect

    open_app(page, app.url("security?period=all"))
    table = dataframe_with_columns(page, within=".st-key-detection_brute_force")
    pages_before = len(page.context.pages)
    click_row_marker(page, table, 0)
    page.wait_for_url(re.compile(r"^(?!.*/security\?).*q=action%3Alogin"))
    expect(page.get_by_role("heading", name="Audit Log")).to_be_visible()
    wait_idle(page)
    params = {k: v[-1] for k, v in parse_qs(urlsplit(page.url).query).items()}
    assert (params["period"], params["type"], params["result"]) == ("custom", "auth", "failed")
    assert re.fullmatch(r"action:login ip:\S+", params["q"]), params["q"]
    assert len(page.context.pages) == pages_before  # no new tab
    no_errors(page)

    # Back returns to the review as it was left. Streamlit writes the new address on the page
    # being left before it switches (a history entry of its own): Back landed there, on the
    # Security review with the finding's custom period, search and type
    page.go_back()
    page.wait_for_url(re.compile(r"/security\?period=all$"))
    expect(page.get_by_role("heading", name="Security review")).to_be_visible()
    wait_idle(page, settle=0.5)
    assert urlsplit(page.url).query == "period=all"
    caption = page.get_by_test_id("stCaptionContainer").filter(has_text=re.compile("all time")).first
    expect(caption).to_be_visible()
    no_errors(page)


@pytest.mark.browser
@pytest.mark.parametrize("width", [1440, 800])
def test_the_working_days_show_whole_in_the_sidebar(app, page, width):
    """Monday … Friday as chips took five lines in the sidebar's Working days box, which shows
    about four: Friday was cut off below a scroll inside the box."""
    from playwright.sync_api import expect

    page.set_viewport_size({"width": width, "height": 1000})
    open_app(page, app.url("security?period=7d"))
    box = page.get_by_test_id("stSidebar").get_by_test_id("stMultiSelect").filter(has_text="Working days")
    expect(box).to_be_visible()
    box.scroll_into_view_if_needed()
    chips = box.locator("[data-tag]")
    expect(chips).to_have_count(5)
    # read until the chips have settled (the box is laid out again as the page's run ends):
    # with whole names Friday never came inside the box
    inside = """(box) => {
        const field = box.querySelector('[data-testid=stMultiSelectTagsContainer]').getBoundingClientRect();
        return [...box.querySelectorAll('[data-tag]')].every((chip) => {
            const r = chip.getBoundingClientRect();
            return field.top <= r.top && r.bottom <= field.bottom + 0.5;
        });
    }"""
    deadline = time.monotonic() + 10
    while not box.evaluate(inside) and time.monotonic() < deadline:
        page.wait_for_timeout(200)
    assert box.evaluate(inside), [chips.nth(i).bounding_box() for i in range(5)]
    assert [chips.nth(i).get_attribute("aria-label") for i in range(5)] == ["Mon", "Tue", "Wed", "Thu", "Fri"]

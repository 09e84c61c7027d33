"""The Audit Log page in a real Chromium against a real ``streamlit run`` on a loopback port.

Walks the page as a reader does: filters in the sidebar, a search that applies without Enter,
a row selected in the table and its detail, a deep link, both export formats downloaded and
read back. Expected numbers are computed in plain Python over the stored rows.

``AUDIT_SCREENSHOT=1`` also saves docs/screenshot.png (the README's picture) from the
row-selection test; without it the file is left alone.
"""

from __future__ import annotations

import csv
import io
import os
import re
import subprocess
import sys
from datetime import datetime, time, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import browser_support
import openpyxl
import pytest
from browser_support import (
    PASSWORD,
    TIMEZONE,
    USER,
    VIEWPORT,
    click_row_marker,
    dataframe_with_columns,
    demo_database,
    events_table,
    grid,
    open_app,
    running_app,
    stored_rows,
    wait_idle,
)

# the shared fixtures (a module-level name is how pytest finds them; see browser_support)
chromium, browser, page = browser_support.chromium, browser_support.browser, browser_support.page

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOT = ROOT / "docs" / "screenshot.png"
ZONE = ZoneInfo(TIMEZONE)
CAPTION = re.compile(r"^([\d,]+) events? · ")


@pytest.fixture(scope="module")
def app(chromium, tmp_path_factory):
    """One app process for the module, on its own demo database."""
    url = demo_database(tmp_path_factory.mktemp("browser") / "audit.db")
    with running_app(url) as server:
        yield server


def last_days(rows: list[dict], days: int) -> list[dict]:
    """Rows of the last ``days`` calendar days in the browser's zone, newest first."""
    today = datetime.now(ZONE).date()
    start = datetime.combine(today - timedelta(days=days - 1), time(), tzinfo=ZONE)
    kept = [r for r in rows if r["time"] >= start]
    return sorted(kept, key=lambda r: (r["time"], r["id"]), reverse=True)


def caption(page):
    """The line above the table: "1,204 events · last 7 days · …"."""
    return page.get_by_test_id("stCaptionContainer").filter(has_text=CAPTION).first


def caption_count(page) -> int:
    match = CAPTION.match(caption(page).inner_text())
    assert match, caption(page).inner_text()
    return int(match.group(1).replace(",", ""))


def query(page) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(urlsplit(page.url).query).items()}


def detail_fields(page) -> dict[str, str]:
    return {r["Field"]: r["Value"] for r in grid(dataframe_with_columns(page, "Field", "Value"))}


def no_errors(page) -> None:
    exceptions = page.get_by_test_id("stException")
    assert exceptions.count() == 0, exceptions.all_inner_texts()


@pytest.mark.browser
def test_opens_on_the_last_7_days_in_the_browser_zone(app, page):
    from playwright.sync_api import expect

    open_app(page, app.url())
    expect(page.get_by_role("heading", name="Audit Log")).to_be_visible()
    expected = last_days(stored_rows(app), 7)
    assert caption_count(page) == len(expected)
    expect(caption(page)).to_contain_text(f"last 7 days · days in {TIMEZONE}")
    expect(page.get_by_test_id("stSidebar")).to_contain_text(f"Times shown in {TIMEZONE}")
    shown = grid(events_table(page))
    assert len(shown) >= 10
    first = expected[0]
    assert shown[0][f"Time ({TIMEZONE})"] == first["time"].astimezone(ZONE).strftime("%Y-%m-%d %H:%M:%S")
    assert shown[0]["Actor"] == (first["actor"] or "")
    no_errors(page)


@pytest.mark.browser
def test_the_sign_in_screen_compiles_the_pages_elements_while_the_user_types(app, page):
    """The sign-in screen holds one of each kind of element nobody sees (an empty plotly chart,
    a table, the widgets), so the browser has loaded their code (plotly.js: 2.7-3.5 s of
    compiling on 2 cores) before the user signs in; the form stays the only thing shown."""
    from playwright.sync_api import expect

    page.goto(app.url())
    form = page.get_by_test_id("stForm")
    expect(form).to_be_visible()
    warm_up = page.locator(".st-key-aa-warm-up")
    expect(warm_up.locator(".js-plotly-plot")).to_be_attached()  # plotly.js ran: it drew the chart
    expect(warm_up).to_be_hidden()
    assert page.evaluate("() => document.querySelectorAll('.js-plotly-plot').length") == 1
    box = form.bounding_box()
    assert box is not None and box["height"] > 100
    no_errors(page)
    # the code of every kind of element the first page draws is in the browser before the
    # click: signing in fetches no more of it (before: 45 files, 1.1 s, ahead of the table)
    page.get_by_role("textbox", name="User name").fill(USER)
    page.get_by_role("textbox", name="Password").fill(PASSWORD)
    page.wait_for_load_state("networkidle")
    clicked_at = page.evaluate("performance.now()")
    page.get_by_role("button", name="Sign in").click()
    events_table(page).locator("canvas").first.wait_for()
    page.wait_for_load_state("networkidle")
    fetched_after = page.evaluate(
        """t => performance.getEntriesByType('resource')
                 .filter(e => e.startTime > t && e.name.endsWith('.js'))
                 .map(e => e.name.split('/').pop())""",
        clicked_at,
    )
    assert fetched_after == [], fetched_after
    no_errors(page)


_FIRST_SEEN_JS = """(() => {
    window.__aaSeen = {};
    const look = () => {
        const now = performance.now();
        const form = document.querySelector('[data-testid=stForm] input[type=password]');
        if (form && form.offsetParent !== null && !window.__aaSeen.form) window.__aaSeen.form = now;
        if (document.querySelector('.st-key-aa-warm-up') && !window.__aaSeen.warmUp) window.__aaSeen.warmUp = now;
        const status = document.querySelector('[data-testid=stStatusWidget]');
        if (status && status.offsetParent !== null) window.__aaSeen.status = now;
    };
    new MutationObserver(look).observe(document, {subtree: true, childList: true, attributes: true});
})();"""


@pytest.mark.browser
def test_the_sign_in_form_shows_before_the_warm_up_is_sent(app, page):
    """The warm-up's elements come a moment after the form (``WARM_UP_AFTER_S``): sent with it,
    the browser compiled their code (plotly.js) before it drew the form, which then showed
    2.5 s instead of 1.2 s after the address was opened (Chromium, 2 cores). Streamlit's
    "Running" status and its Stop button stay hidden while the run waits."""
    from playwright.sync_api import expect

    page.add_init_script(_FIRST_SEEN_JS)
    page.goto(app.url())
    expect(page.get_by_test_id("stForm")).to_be_visible()
    expect(page.locator(".st-key-aa-warm-up .js-plotly-plot")).to_be_attached()
    seen = page.evaluate("() => window.__aaSeen")
    assert seen["form"] < seen["warmUp"], seen
    assert "status" not in seen, seen  # no "Running" and Stop button over the form meanwhile
    no_errors(page)


@pytest.mark.browser
def test_sidebar_filters_apply(app, page):
    from playwright.sync_api import expect

    open_app(page, app.url())
    before = caption_count(page)
    sidebar = page.get_by_test_id("stSidebar")
    sidebar.get_by_test_id("stMultiSelect").filter(has_text="Type").click()
    page.get_by_role("option", name="Authentication (auth)").click()
    page.keyboard.press("Escape")
    sidebar.get_by_test_id("stRadio").filter(has_text="Result").get_by_text("Failure", exact=True).click()
    sidebar.get_by_role("button", name="Apply").click()

    expect(caption(page)).to_contain_text("events · auth · failed · last 7 days")
    wait_idle(page)
    expected = [r for r in last_days(stored_rows(app), 7) if r["type"] == "auth" and r["result"] == "failed"]
    assert 0 < caption_count(page) == len(expected) < before
    assert query(page) == {"type": "auth", "result": "failed"}
    shown = grid(events_table(page))
    assert shown and {r["Type"] for r in shown} == {"auth"} and {r["Result"] for r in shown} == {"failed"}
    expect(page.get_by_text(f"of {len(expected):,} · page 1 of 1")).to_be_visible()
    no_errors(page)


@pytest.mark.browser
def test_search_applies_after_a_pause_without_enter(app, page):
    from playwright.sync_api import expect

    open_app(page, app.url())
    before = caption_count(page)
    box = page.get_by_role("searchbox", name="Search")
    box.click()
    box.press_sequentially("action:logout", delay=25)  # no Enter, no Tab: the box stays focused

    expect(caption(page)).to_contain_text("matching action:logout")
    wait_idle(page)
    expected = [r for r in last_days(stored_rows(app), 7) if r["action"] == "logout"]
    assert 0 < caption_count(page) == len(expected) < before
    assert query(page) == {"q": "action:logout"}
    assert {r["Action"] for r in grid(events_table(page))} == {"logout"}
    expect(box).to_be_focused()

    # a query the language cannot read is explained and the last good result stays
    box.press_sequentially(' "open', delay=25)
    expect(page.get_by_test_id("stAlertContentError")).to_contain_text("unclosed quote")
    assert caption_count(page) == len(expected)
    assert query(page) == {"q": "action:logout"}
    no_errors(page)


@pytest.mark.browser
def test_selecting_a_row_shows_its_detail(app, page):
    from playwright.sync_api import expect

    open_app(page, app.url())
    table = events_table(page)
    row = grid(table)[2]
    expected = last_days(stored_rows(app), 7)[2]
    click_row_marker(page, table, 2)

    expect(page.get_by_role("heading", name="Event detail")).to_be_visible()
    expect(page.get_by_text("Selected: row 3 of this page.")).to_be_visible()
    wait_idle(page)
    assert query(page) == {"event": expected["id"]}
    fields = detail_fields(page)
    assert fields["Event ID"] == expected["id"]
    assert fields["Actor"] == row["Actor"] == (expected["actor"] or "")
    assert fields["Time"].startswith(row[f"Time ({TIMEZONE})"])
    assert fields["Time"].endswith(f"({TIMEZONE})") and fields["Time (UTC)"].endswith(" UTC")
    expect(page.get_by_text("Request details (params)")).to_be_visible()
    no_errors(page)

    if os.environ.get("AUDIT_SCREENSHOT") == "1":
        page.mouse.move(VIEWPORT["width"] - 10, VIEWPORT["height"] - 10)  # nothing hovered
        page.wait_for_timeout(300)
        SCREENSHOT.parent.mkdir(exist_ok=True)
        page.screenshot(path=SCREENSHOT)


def close_detail(page) -> None:
    # an icon-only button (Streamlit draws it twice, one copy hidden)
    page.locator(".st-key-close_detail").get_by_role("button").filter(visible=True).first.click()
    wait_idle(page, settle=0.5)


@pytest.mark.browser
def test_the_close_button_closes_the_detail(app, page):
    from playwright.sync_api import expect

    open_app(page, app.url())
    click_row_marker(page, events_table(page), 1)
    expect(page.get_by_role("heading", name="Event detail")).to_be_visible()
    wait_idle(page)
    close_detail(page)
    assert "event" not in query(page)
    assert page.get_by_role("heading", name="Event detail").count() == 0


@pytest.mark.browser
def test_unticking_the_row_closes_the_detail(app, page):
    from playwright.sync_api import expect

    open_app(page, app.url())
    table = events_table(page)
    click_row_marker(page, table, 1)
    expect(page.get_by_role("heading", name="Event detail")).to_be_visible()
    wait_idle(page)
    click_row_marker(page, table, 1)  # the same checkbox again: the grid shows no row ticked
    wait_idle(page, settle=0.5)
    assert "event" not in query(page)
    assert page.get_by_role("heading", name="Event detail").count() == 0


@pytest.mark.browser
def test_deep_link_to_an_old_event_widens_the_period(app, page):
    from playwright.sync_api import expect

    oldest = min(stored_rows(app), key=lambda r: (r["time"], r["id"]))
    open_app(page, app.url(f"?event={oldest['id']}"))

    expect(page.get_by_test_id("stAlertContentInfo")).to_contain_text(
        "The linked event is outside the chosen period, so the period was widened to all time."
    )
    expect(page.get_by_role("heading", name="Event detail")).to_be_visible()
    assert detail_fields(page)["Event ID"] == oldest["id"]
    params = query(page)
    assert params["event"] == oldest["id"] and params["period"] == "all"
    expect(caption(page)).to_contain_text("events · all time")
    expect(page.get_by_test_id("stSidebar").get_by_role("radio", name="All time")).to_be_checked()
    no_errors(page)


@pytest.mark.browser
def test_export_downloads_exactly_the_current_result(app, page, tmp_path):
    from playwright.sync_api import expect

    open_app(page, app.url("?period=30d&type=auth"))
    n = caption_count(page)
    assert n == sum(1 for r in last_days(stored_rows(app), 30) if r["type"] == "auth") > 100

    page.get_by_role("button", name="Export", exact=True).click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_role("heading", level=3)).to_have_text(
        f"Downloading a total of {n:,} records from the current search."
    )
    files = {}
    for fmt, label in (("xlsx", "Excel (xlsx)"), ("csv", "CSV (UTF-8)")):
        dialog.get_by_text(label, exact=True).click()
        wait_idle(page)
        dialog.get_by_role("button", name="Prepare file").click()
        download_button = dialog.get_by_role("button", name=re.compile(rf"^Download .*\.{fmt}$"))
        expect(download_button).to_be_visible()
        expect(dialog.get_by_text(f"{n:,} rows in the file.")).to_be_visible()
        with page.expect_download() as info:
            download_button.click()
        download = info.value
        assert download.failure() is None
        assert download_button.inner_text() == f"Download {download.suggested_filename}"
        assert download.suggested_filename.startswith("audit-log_auth_last-30-days_")  # what narrowed it
        files[fmt] = tmp_path / download.suggested_filename
        download.save_as(files[fmt])

    book = openpyxl.load_workbook(files["xlsx"], read_only=True)
    try:
        sheet = book.worksheets[0]
        header, *data = list(sheet.iter_rows(values_only=True))
        assert len(data) == n
        assert {row[header.index("Type")] for row in data} == {"auth"}
        assert book.sheetnames[-1] == "About this export"
    finally:
        book.close()

    records = list(csv.DictReader(io.StringIO(files["csv"].read_text(encoding="utf-8-sig"))))
    assert len(records) == n
    assert {r["type"] for r in records} == {"auth"}
    expected_ids = {r["id"] for r in last_days(stored_rows(app), 30) if r["type"] == "auth"}
    assert {r["id"] for r in records} == expected_ids

    # each export is itself recorded in the audit log
    exports = [r for r in stored_rows(app) if r["type"] == "audit" and r["action"] == "export"]
    assert {r["target"] for r in exports} >= {p.name for p in files.values()}
    no_errors(page)


def test_missing_chromium_skips_with_the_reason(monkeypatch):
    import conftest

    monkeypatch.setenv("AUDIT_CHROMIUM", "/nonexistent/chromium")
    monkeypatch.setattr(conftest, "IN_CI", False)
    with pytest.raises(pytest.skip.Exception, match="no Chromium at /nonexistent/chromium"):
        browser_support.require_chromium()


def test_missing_chromium_fails_under_ci():
    """The whole way: CI=true in the environment, no browser, a browser test fails (the
    fixture errors), never skips. (Runs without a browser.)"""
    target = f"{Path(__file__).name}::test_opens_on_the_last_7_days_in_the_browser_zone"
    env = os.environ | {"AUDIT_CHROMIUM": "/nonexistent/chromium", "CI": "true"}
    command = [sys.executable, "-m", "pytest", target, "-q", "-p", "no:cacheprovider"]
    ci = subprocess.run(command, cwd=ROOT / "tests", env=env, capture_output=True, text=True, timeout=120)
    assert ci.returncode == 1, ci.stdout + ci.stderr
    assert "1 error" in ci.stdout and "skipped" not in ci.stdout
    assert "CI=true and no Chromium at /nonexistent/chromium" in ci.stdout

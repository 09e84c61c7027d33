"""Hostile values in a real Chromium: HTML, script tags, markdown links, ANSI escapes and
right-to-left overrides held by actors, targets and params show as plain text. No element,
link or script from the data appears in the page, in the table or in the event detail.

The values are tests/hostile/display.jsonl, imported through the normal import path.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import browser_support
import pytest
from browser_support import dataframe_with_columns, demo_database, grid, open_app, running_app, wait_idle

from audit_analytics.engines.store import open_store
from audit_analytics.io.ingest import import_files

chromium, browser, page = browser_support.chromium, browser_support.browser, browser_support.page

DISPLAY = Path(__file__).parent / "hostile" / "display.jsonl"
ROWS = [json.loads(line) for line in DISPLAY.read_text(encoding="utf-8").splitlines()]

# what a successful injection would leave behind, checked after every page
INJECTED = """() => ({
    scripts: Array.from(document.querySelectorAll('script')).filter(s => /pwned|evil/.test(s.textContent + s.src)).length,
    links: Array.from(document.querySelectorAll('a[href]')).filter(a => /evil/.test(a.getAttribute('href'))).length,
    ids: document.querySelectorAll('#injected, #injected-div').length,
    images: document.querySelectorAll('img[src="x"], img[onerror]').length,
    bold_from_markdown: Array.from(document.querySelectorAll('strong, em')).filter(e => /bold|it/.test(e.textContent)).length,
    title: document.title,
    pwned: document.body.dataset.pwned || null,
})"""
CLEAN = {"scripts": 0, "links": 0, "ids": 0, "images": 0, "bold_from_markdown": 0, "pwned": None}


@pytest.fixture(scope="module")
def app(chromium, tmp_path_factory):
    path = tmp_path_factory.mktemp("hostile") / "audit.db"
    url = demo_database(path, n_events=1_000, seed=9)
    store = open_store(url)
    try:
        summary = import_files(store, [DISPLAY], now=datetime.now(UTC))
        assert summary.imported == len(ROWS)
    finally:
        store.engine.dispose()
    with running_app(url) as server:
        yield server


def assert_nothing_injected(page) -> None:
    found = page.evaluate(INJECTED)
    assert "pwned" not in found.pop("title")
    assert found == CLEAN, found
    assert page.get_by_test_id("stException").count() == 0


@pytest.mark.browser
def test_hostile_values_in_the_table_are_plain_text(app, page):
    open_app(page, app.url("?period=all&q=evil.example"))
    wait_idle(page)
    table = dataframe_with_columns(page, "Time (Europe/Paris)", "Actor")
    shown = {r["Actor"] for r in grid(table)}
    # the grid draws text on a canvas; its accessible copy holds the text as typed
    assert "<script>document.title='pwned'</script>" in shown
    assert "[click me](http://evil.example/phish)" in shown
    assert_nothing_injected(page)


@pytest.mark.browser
@pytest.mark.parametrize("row", ROWS, ids=[r["id"] for r in ROWS])
def test_hostile_values_in_the_event_detail_inject_nothing(app, page, row):
    from playwright.sync_api import expect

    open_app(page, app.url(f"?period=all&event={row['id']}"))
    expect(page.get_by_role("heading", name="Event detail")).to_be_visible()
    wait_idle(page)
    assert_nothing_injected(page)
    # the params block shows the JSON as text, tags and all
    expect(page.get_by_test_id("stCode").filter(has_text='"html": "<b>x</b>"')).to_be_visible()


# The detail's "Error message" (and params) blocks are st.code with the raw value: a browser
# does not run ANSI escapes, but it does honour a right-to-left override, so "admin\u202egpj.exe"
# reads as "adminexe.jpg". The fix (ui/explorer.py, see the issue-8 report) escapes control and
# bidi characters as the CLI does; until then these two rows are expected to fail.
RAW_CONTROLS = ("\x1b", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069")
SHOWS_RAW = {"hx-ansi", "hx-rlo"}


@pytest.mark.browser
@pytest.mark.parametrize(
    "row",
    [
        pytest.param(
            r,
            id=r["id"],
            marks=[],
        )
        for r in ROWS
    ],
)
def test_no_raw_escape_or_bidi_override_reaches_the_screen(app, page, row):
    from playwright.sync_api import expect

    open_app(page, app.url(f"?period=all&event={row['id']}"))
    expect(page.get_by_role("heading", name="Event detail")).to_be_visible()
    wait_idle(page)
    # code blocks fill in a moment after the run ends
    expect(page.get_by_test_id("stCode").filter(has_text='"html": "<b>x</b>"')).to_be_visible()
    text = page.get_by_test_id("stMain").inner_text()
    assert [c for c in RAW_CONTROLS if c in text] == []

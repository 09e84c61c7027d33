"""The Audit Log's table and detail in a real Chromium, as a new reader meets them: sorting from
a column header, the before → after comparison, a deep link to a row far down its page, the
detail beside a table that keeps its columns, related events that open, and times in UTC.

Expected values are computed in plain Python over the stored rows.
"""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import browser_support
import pytest
from browser_support import (
    TIMEZONE,
    click_row_marker,
    dataframe_with_columns,
    demo_database,
    events_table,
    grid,
    grid_until,
    open_app,
    read_until,
    running_app,
    stored_rows,
    wait_idle,
)

chromium, browser, page = browser_support.chromium, browser_support.browser, browser_support.page

ZONE = ZoneInfo(TIMEZONE)
TIME = f"Time ({TIMEZONE})"
LIST_COLUMNS = [TIME, "Actor", "Type", "Action", "Result", "IP", "Target"]


@pytest.fixture(scope="module")
def app(chromium, tmp_path_factory):
    url = demo_database(tmp_path_factory.mktemp("explorer") / "audit.db")
    with running_app(url) as server:
        yield server


def newest_first(rows: list[dict]) -> list[dict]:
    return sorted(rows, key=lambda r: (r["time"], r["id"]), reverse=True)


def shown_time(row: dict) -> str:
    return row["time"].astimezone(ZONE).strftime("%Y-%m-%d %H:%M:%S")


def query(page) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(urlsplit(page.url).query).items()}


def table_after(page, text: str):
    """The st.dataframe drawn right after the line of text ``text``."""
    line = page.get_by_test_id("stElementContainer").filter(has=page.get_by_text(text, exact=True))
    frame = line.locator("xpath=following-sibling::*[1]").get_by_test_id("stDataFrame")
    frame.scroll_into_view_if_needed()
    for _ in range(100):  # the grid draws its accessible table a moment after its canvas
        if grid(frame):
            break
        page.wait_for_timeout(100)
    return frame


def detail_fields(page) -> dict[str, str]:
    return {r["Field"]: r["Value"] for r in grid(dataframe_with_columns(page, "Field", "Value"))}


def visible_columns(frame) -> list[str]:
    """The header cells the grid draws in its viewport (it leaves off-screen columns out of
    its accessible table)."""
    return frame.evaluate(
        "el => Array.from(el.querySelectorAll('table[role=grid] tr:first-child th')).map(c => c.textContent)"
    )


def overflows(frame) -> bool:
    """Whether the grid is wider than its box (some column needs a horizontal scroll)."""
    return frame.evaluate(
        "el => { const s = el.querySelector('.dvn-scroller'); return s.scrollWidth > s.clientWidth + 1; }"
    )


def label_truncated(page, name: str) -> bool:
    label = page.get_by_role("button", name=name).locator("[data-testid=stMarkdownContainer]")
    return label.evaluate("el => el.scrollWidth > el.clientWidth + 1 || el.clientWidth === 0")


def no_errors(page) -> None:
    exceptions = page.get_by_test_id("stException")
    assert exceptions.count() == 0, exceptions.all_inner_texts()


def column_edges(frame) -> list[float]:
    """The x positions (CSS px from the grid's left) of the lines between its drawn columns,
    read from the canvas's top pixel row (the header has no text there)."""
    return frame.evaluate(
        """el => {
          const c = el.querySelector('canvas'), r = window.devicePixelRatio || 1;
          const d = c.getContext('2d').getImageData(0, Math.round(4 * r), c.width, 1).data;
          const bg = [d[20], d[21], d[22]], edges = [];
          for (let x = 0; x < c.width; x++) {
            const diff = Math.abs(d[4*x] - bg[0]) + Math.abs(d[4*x+1] - bg[1]) + Math.abs(d[4*x+2] - bg[2]);
            if (diff > 12 && (!edges.length || x / r - edges[edges.length - 1] > 4)) edges.push(x / r);
          }
          return edges;
        }"""
    )


def header_point(frame, column: str, *, at: str = "middle") -> tuple[float, float]:
    """A point in the header cell of ``column``: its middle, or its menu button at the right."""
    box = frame.locator("canvas").first.bounding_box()
    assert box is not None
    edges = column_edges(frame)  # the row marker's right edge, then each column's
    i = visible_columns(frame).index(column)
    left, right = edges[i], edges[i + 1]
    x = (left + right) / 2 if at == "middle" else right - 14
    return box["x"] + x, box["y"] + 17


# ---------------------------------------------------------------------------------------
# 4. sorting from a column header orders the whole result


@pytest.mark.browser
def test_column_menu_has_no_page_only_sort(app, page):
    from playwright.sync_api import expect

    page.set_viewport_size({"width": 1200, "height": 1000})  # columns at their own widths
    open_app(page, app.url("?period=all"))
    table = events_table(page)
    assert overflows(table)
    x, y = header_point(table, "Actor", at="menu")
    page.mouse.move(x - 60, y)
    page.mouse.move(x, y)
    page.mouse.click(x, y)
    menu = page.get_by_test_id("stDataFrameColumnMenu")
    expect(menu).to_be_visible()
    expect(menu.get_by_title("Actor")).to_be_visible()
    expect(menu.get_by_role("menuitem", name="Pin column")).to_be_visible()
    # the grid's own sort would order only the 100 rows of this page
    expect(menu.get_by_role("menuitem", name="Sort ascending")).to_be_hidden()
    expect(menu.get_by_role("menuitem", name="Sort descending")).to_be_hidden()
    no_errors(page)


@pytest.mark.browser
def test_a_header_click_sorts_the_whole_result(app, page):
    from playwright.sync_api import expect

    page.set_viewport_size({"width": 1200, "height": 1000})
    open_app(page, app.url("?period=all"))
    table = events_table(page)
    page.mouse.click(*header_point(table, "Actor"))
    wait_idle(page, settle=0.5)

    assert query(page) == {"period": "all", "sort": "actor"}
    expect(page.get_by_role("combobox", name="Sort by")).to_have_value("Actor")
    # the whole result by actor (A first), one actor's events newest first
    rows = newest_first(stored_rows(app))
    expected = sorted(rows, key=lambda r: (r["actor"] is None, (r["actor"] or "").lower()))
    shown = grid(events_table(page))
    assert len(shown) >= 10
    assert [(r["Actor"], r[TIME]) for r in shown[:10]] == [
        (r["actor"] or "", shown_time(r)) for r in expected[:10]
    ]
    # a second click on the same header turns the order round
    page.mouse.click(*header_point(events_table(page), "Actor"))
    wait_idle(page, settle=0.5)
    assert query(page)["sort"] == "-actor"
    rows = newest_first(stored_rows(app))
    expected = sorted(
        [r for r in rows if r["actor"] is not None], key=lambda r: r["actor"].lower(), reverse=True
    )
    shown = grid(events_table(page))
    assert [(r["Actor"], r[TIME]) for r in shown[:10]] == [(r["actor"], shown_time(r)) for r in expected[:10]]
    no_errors(page)


# ---------------------------------------------------------------------------------------
# 5. before → after shows both sides


@pytest.mark.browser
@pytest.mark.parametrize("width", [1440, 1920])
def test_before_and_after_show_side_by_side(app, page, width):
    from playwright.sync_api import expect

    update = next(
        r
        for r in newest_first(stored_rows(app))
        if r["action"] in ("update", "configure") and r["before"] and r["after"] and r["before"] != r["after"]
    )
    page.set_viewport_size({"width": width, "height": 1000})
    open_app(page, app.url(f"?event={update['id']}"))
    diff = dataframe_with_columns(page, "Field", "Change", "Before")
    diff.scroll_into_view_if_needed()
    assert visible_columns(diff) == ["Field", "Change", "Before", "After"]
    assert not overflows(diff)
    # and each whole document, wrapped, side by side
    whole = page.get_by_test_id("stExpander").filter(has_text="Before and after in full")
    whole.locator("summary").click()
    blocks = whole.get_by_test_id("stCode")
    expect(blocks.nth(1)).to_be_visible()
    before, after = blocks.nth(0).bounding_box(), blocks.nth(1).bounding_box()
    assert before and after
    assert abs(before["y"] - after["y"]) < 2 and before["x"] + before["width"] <= after["x"]
    assert after["x"] + after["width"] <= width
    no_errors(page)


# ---------------------------------------------------------------------------------------
# 6. a deep link shows its row


@pytest.mark.browser
def test_deep_link_scrolls_its_row_into_view(app, page):
    from playwright.sync_api import expect

    target = newest_first(stored_rows(app))[77]
    open_app(page, app.url(f"?period=all&event={target['id']}"))
    expect(page.get_by_role("heading", name="Event detail")).to_be_visible()
    expect(page.get_by_text("Selected: row ")).to_be_visible()
    table = events_table(page)
    linked = ((target["actor"] or ""), shown_time(target))
    # the scroll happens once the grid has drawn
    shown = grid_until(table, lambda rows: linked in [(r["Actor"], r[TIME]) for r in rows])
    times = [(r["Actor"], r[TIME]) for r in shown]
    assert linked in times, times
    # the ticked row is the linked event's
    expected = [[shown_time(target), target["actor"] or ""]]
    ticked = read_until(lambda: [row[:2] for row in ticked_rows(table)], lambda got: got == expected)
    assert ticked == expected
    assert detail_fields(page)["Event ID"] == target["id"]
    no_errors(page)


def ticked_rows(frame) -> list[list[str]]:
    return frame.evaluate(
        """el => Array.from(el.querySelectorAll('table[role=grid] tbody tr[aria-selected=true]'))
                 .map(tr => Array.from(tr.querySelectorAll('td')).map(c => c.textContent))"""
    )


@pytest.mark.browser
def test_a_row_ticked_low_in_the_table_stays_in_view_as_the_detail_opens(app, page):
    from playwright.sync_api import expect

    page.set_viewport_size({"width": 1440, "height": 1000})
    open_app(page, app.url("?period=all"))
    table = events_table(page)
    row = grid_until(table, lambda rows: len(rows) > 15)[15]
    click_row_marker(page, table, 15)  # the table gets shorter with the detail below it
    expect(page.get_by_role("heading", name="Event detail")).to_be_visible()
    expect(page.get_by_text("Selected: row 16 of this page.")).to_be_visible()
    wait_idle(page)
    expected = [[row[TIME], row["Actor"]]]
    ticked = read_until(lambda: [r[:2] for r in ticked_rows(events_table(page))], lambda got: got == expected)
    assert ticked == expected


# ---------------------------------------------------------------------------------------
# 7. the detail leaves the table its columns


@pytest.mark.browser
def test_open_detail_keeps_every_list_column_at_1440(app, page):
    from playwright.sync_api import expect

    page.set_viewport_size({"width": 1440, "height": 1000})
    open_app(page, app.url())
    table = events_table(page)
    without = visible_columns(table)
    assert sorted(without) == sorted(LIST_COLUMNS) and not overflows(table)
    click_row_marker(page, table, 2)
    expect(page.get_by_role("heading", name="Event detail")).to_be_visible()
    wait_idle(page)
    table = events_table(page)
    assert visible_columns(table) == without and not overflows(table)
    for name in ("‹ Previous", "Next ›"):
        assert not label_truncated(page, name)
    no_errors(page)


@pytest.mark.browser
def test_open_detail_keeps_the_list_at_800(app, page):
    from playwright.sync_api import expect

    page.set_viewport_size({"width": 800, "height": 1000})
    open_app(page, app.url())
    without = visible_columns(events_table(page))
    click_row_marker(page, events_table(page), 1)
    expect(page.get_by_role("heading", name="Event detail")).to_be_visible()
    wait_idle(page)
    assert visible_columns(events_table(page)) == without  # the detail takes nothing from it
    for name in ("‹ Previous", "Next ›"):
        assert not label_truncated(page, name)
    # with the sidebar put away, the six columns a reader scans all show beside the detail
    page.get_by_test_id("stSidebar").hover()
    page.get_by_test_id("stSidebarCollapseButton").get_by_role("button").click()
    page.wait_for_timeout(800)
    assert set(visible_columns(events_table(page))) >= set(LIST_COLUMNS[:6])
    expect(page.get_by_role("heading", name="Event detail")).to_be_visible()
    no_errors(page)


# ---------------------------------------------------------------------------------------
# 8. related events open


@pytest.mark.browser
def test_a_related_event_opens_on_a_click(app, page):
    from playwright.sync_api import expect

    rows = newest_first(stored_rows(app))
    by_request: dict[str, list[dict]] = {}
    for r in rows:
        if r["request_id"]:
            by_request.setdefault(r["request_id"], []).append(r)
    group = next(g for g in by_request.values() if len(g) >= 2)
    first, *others = sorted(group, key=lambda r: (r["time"], r["id"]))
    open_app(page, app.url(f"?event={first['id']}"))
    expect(page.get_by_text(f"Same request id ({len(others)})")).to_be_visible()
    related = table_after(page, f"Same request id ({len(others)})")
    first_row = grid(related)[0]
    assert next(v for k, v in first_row.items() if k.startswith("Time")) == shown_time(others[0])
    click_row_marker(page, related, 0)
    wait_idle(page, settle=0.5)
    expect(page.get_by_text(f"Same request id ({len(others)})")).to_be_visible()  # the new detail

    expect(page.get_by_text(f"Same request id ({len(others)})")).to_be_visible()
    assert query(page)["event"] == others[0]["id"]
    # the address changes first; the detail's table is redrawn by the same run a moment later
    # (both details show a "Same request id" table, so that text alone proves nothing)
    deadline = time.monotonic() + 15
    while detail_fields(page)["Event ID"] != others[0]["id"] and time.monotonic() < deadline:
        page.wait_for_timeout(200)
    assert detail_fields(page)["Event ID"] == others[0]["id"]
    no_errors(page)

    # Back shows the event it was opened from (it stayed on the new one: the list's table,
    # keyed as before, still held the row it had ticked and opened that event again)
    page.go_back()
    deadline = time.monotonic() + 15
    while detail_fields(page)["Event ID"] != first["id"] and time.monotonic() < deadline:
        page.wait_for_timeout(200)
    assert detail_fields(page)["Event ID"] == first["id"] and query(page)["event"] == first["id"]

    # its deep link opens the same
    open_app(page, app.url(f"?event={others[0]['id']}"))
    assert detail_fields(page)["Event ID"] == others[0]["id"]


# ---------------------------------------------------------------------------------------
# 12b. the time in UTC, said once


@pytest.mark.browser
def test_time_in_utc_is_said_once(app, page):
    target = newest_first(stored_rows(app))[3]
    open_app(page, app.url(f"?event={target['id']}&utc=1"))
    fields = detail_fields(page)
    assert fields["Time"] == target["time"].strftime("%Y-%m-%d %H:%M:%S.%f") + " UTC"
    assert "Time (UTC)" not in fields

    open_app(page, app.url(f"?event={target['id']}"))
    fields = detail_fields(page)
    assert fields["Time"].endswith(f"({TIMEZONE})")
    assert fields["Time (UTC)"] == target["time"].strftime("%Y-%m-%d %H:%M:%S.%f") + " UTC"
    no_errors(page)


DOUBLE_TAP = "Double-click or double-tap a value to read it."


@pytest.mark.browser
@pytest.mark.parametrize("width", [390, 360])
def test_the_detail_close_button_is_not_under_a_table_toolbar_on_a_phone(app, page, width):
    """At a phone's width, once a value of the fields table was tapped, the table's toolbar rose
    over the close button above it (its top 44 px above the table): a tap on × hit the toolbar."""
    from playwright.sync_api import expect

    page.set_viewport_size({"width": width, "height": 800})
    target = newest_first(stored_rows(app))[3]
    open_app(page, app.url(f"?period=all&event={target['id']}"))
    expect(page.get_by_role("heading", name="Event detail")).to_be_visible()
    fields = dataframe_with_columns(page, "Field", "Value")
    fields.scroll_into_view_if_needed()
    fbox = fields.bounding_box()
    page.mouse.click(fbox["x"] + fbox["width"] * 0.3, fbox["y"] + 160)  # a tap on a cell, as a finger does
    page.wait_for_timeout(300)
    toolbar = fields.locator("xpath=..").get_by_test_id("stElementToolbar")
    expect(toolbar.first).to_be_visible()
    close = page.locator(".st-key-close_detail button:visible").first
    box = close.bounding_box()
    assert box is not None
    on_top = page.evaluate(
        "([x, y]) => !!document.elementFromPoint(x, y)?.closest('.st-key-close_detail')",
        [box["x"] + box["width"] / 2, box["y"] + box["height"] / 2],
    )
    assert on_top, "the close button is covered at its centre"
    # nor is the end of the line under the heading (it ran under the toolbar while it showed)
    line = page.get_by_text(DOUBLE_TAP, exact=True)
    end = line.evaluate(
        """(e) => { const r = document.createRange(); r.selectNodeContents(e);
                    const b = r.getBoundingClientRect(); return [b.right - 2, b.top + b.height / 2]; }"""
    )
    shown = page.evaluate("([x, y]) => document.elementFromPoint(x, y)?.textContent ?? ''", end)
    assert DOUBLE_TAP in shown, (end, toolbar.first.bounding_box(), shown[:80])
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    expect(page.get_by_role("heading", name="Event detail")).to_have_count(0)
    no_errors(page)


@pytest.mark.browser
def test_before_and_after_both_show_at_390(app, page):
    """On a phone the comparison's four columns fit the window (After was off-screen at 460 px
    of columns in a 356 px table)."""
    from playwright.sync_api import expect

    update = next(
        r
        for r in newest_first(stored_rows(app))
        if r["action"] in ("update", "configure") and r["before"] and r["after"] and r["before"] != r["after"]
    )
    page.set_viewport_size({"width": 390, "height": 844})
    open_app(page, app.url(f"?event={update['id']}"))
    expect(page.get_by_role("heading", name="Event detail")).to_be_visible()
    diff = dataframe_with_columns(page, "Field", "Change", "Before")
    diff.scroll_into_view_if_needed()
    assert visible_columns(diff) == ["Field", "Change", "Before", "After"]
    assert not overflows(diff)
    no_errors(page)


@pytest.mark.browser
@pytest.mark.parametrize("width", [1440, 800, 390])
def test_the_table_toolbar_leaves_the_page_size_box_alone(app, page, width):
    """The events table's toolbar (above its top right corner while the pointer or a finger is
    on the table) covered the Page size box's value and arrow right above the table."""
    page.set_viewport_size({"width": width, "height": 900})
    open_app(page, app.url("?period=all"))
    table = events_table(page)
    box = table.bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + box["width"] * 0.5, box["y"] + 60)  # a cell, as a finger taps
    page.wait_for_timeout(300)
    toolbars = [b for b in (t.bounding_box() for t in page.get_by_test_id("stElementToolbar").all()) if b]
    size = page.locator("[data-testid=stSelectbox]").filter(has_text="Page size").bounding_box()
    assert toolbars and size

    def overlap(a, b) -> bool:
        return not (
            a["x"] + a["width"] <= b["x"]
            or b["x"] + b["width"] <= a["x"]
            or a["y"] + a["height"] <= b["y"]
            or b["y"] + b["height"] <= a["y"]
        )

    assert not [t for t in toolbars if t["height"] and overlap(t, size)], (toolbars, size)
    no_errors(page)

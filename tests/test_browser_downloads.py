"""Rows leave the app only through permission-checked, recorded paths: checked in a real
Chromium against a real ``streamlit run`` that reads the shipped ``.streamlit/config.toml``,
once for each role (viewer, auditor, admin), each signed in through the form in its own
browser context.

- The tables' own toolbar (hover an ``st.dataframe``) has no "Download as CSV", and copying
  cells to the clipboard does nothing: ``client.disableDataExport``. Before that setting a
  viewer could take any page of rows with no audit record.
- The Audit Log's Export button is disabled for a viewer; for an auditor or admin it writes
  exactly the current result and records an ``audit``/``export`` event.
- The "Download chart data" buttons (Activity, Security review) are disabled for a viewer;
  for an auditor or admin a click downloads the CSV and records an ``audit``/``export`` event
  named after the file.
- No developer chrome: no "Deploy" button, no "Rerun" or "Clear cache" in the main menu
  (``client.toolbarMode = "viewer"``).

``AUDIT_SHOTS=/some/dir`` also saves screenshots there: the viewer's pages at 1440 px wide,
the auditor's at 800 px (the roles run at those widths either way; the admin at the default).
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import browser_support
import pytest
from browser_support import (
    VIEWPORT,
    click_row_marker,
    dataframe_with_columns,
    demo_database,
    events_table,
    fresh_page,
    grid,
    open_app,
    running_app,
    stored_rows,
    wait_idle,
)

from audit_analytics.accounts import NO_EXPORT_PERMISSION
from audit_analytics.diff import diff_json

# the shared fixtures (a module-level name is how pytest finds them; see browser_support)
chromium, browser = browser_support.chromium, browser_support.browser

ROLES = ("viewer", "auditor", "admin")
MAY_EXPORT = {"viewer": False, "auditor": True, "admin": True}
# each role runs at its own width, so the narrow layout is driven too
WIDTHS = {"viewer": 1440, "auditor": 800, "admin": VIEWPORT["width"]}
SHOTS = os.environ.get("AUDIT_SHOTS")

CAPTION = re.compile(r"^([\d,]+) events? · ")
# anything on a table's toolbar that would hand rows to the browser
DATA_OUT = re.compile(r"download|csv|copy|clipboard|export", re.IGNORECASE)
# what the main menu may offer an end user; "Rerun", "Clear cache", "Auto rerun", … are not
END_USER_MENU = {"System", "Light", "Dark", "Print", "Record screen", "About"}
SENTINEL = "clipboard left alone by the test"


@pytest.fixture(scope="module")
def app(chromium, tmp_path_factory):
    url = demo_database(tmp_path_factory.mktemp("browser-downloads") / "audit.db", n_events=3_000)
    with running_app(url) as server:
        for role in ROLES:
            server.add_account(role)
        yield server


@dataclass
class Session:
    role: str
    user: str
    page: object

    @property
    def may_export(self) -> bool:
        return MAY_EXPORT[self.role]


@pytest.fixture(scope="module", params=ROLES)
def session(request, app, browser):
    """One fresh browser context per role for the whole module (pytest runs the tests role
    by role); its first page load signs in through the form (later loads, new sessions, resume the
    sign-in from the cookie)."""
    role = request.param
    with fresh_page(browser) as page:
        page.set_viewport_size({"width": WIDTHS[role], "height": 1000})
        page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=app.base.rstrip("/"))
        yield Session(role, f"browser-{role}", page)


def open_as(app, session: Session, path: str = "") -> None:
    """Load a page of the app, signing in through the form as the session's user."""
    from playwright.sync_api import expect

    page = session.page
    open_app(page, app.url(path), user=session.user)
    expect(page.get_by_test_id("stSidebar")).to_contain_text(f"Signed in as {session.user} · {session.role}")
    no_errors(page)
    no_deploy_button(page)


def shot(session: Session, name: str) -> None:
    if not SHOTS:
        return
    page = session.page
    page.mouse.move(1, 1)  # no tooltip, no hovered toolbar
    page.wait_for_timeout(300)
    folder = Path(SHOTS)
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=folder / f"{session.role}-{WIDTHS[session.role]}px-{name}.png")


# ---------------------------------------------------------------------------------------
# reading the page and the database


def no_errors(page) -> None:
    exceptions = page.get_by_test_id("stException")
    assert exceptions.count() == 0, exceptions.all_inner_texts()


def no_deploy_button(page) -> None:
    assert page.get_by_test_id("stAppDeployButton").count() == 0
    assert page.get_by_role("button", name="Deploy").count() == 0


def exports_by(app, user: str) -> list[dict]:
    """The audit/export events recorded for ``user``, oldest first."""
    rows = [r for r in stored_rows(app) if r["type"] == "audit" and r["action"] == "export"]
    return sorted((r for r in rows if r["actor"] == user), key=lambda r: (r["time"], r["id"]))


def caption_count(page) -> int:
    text = page.get_by_test_id("stCaptionContainer").filter(has_text=CAPTION).first.inner_text()
    match = CAPTION.match(text)
    assert match, text
    return int(match.group(1).replace(",", ""))


def toolbar_labels(page, frame) -> list[str]:
    """Hover an ``st.dataframe`` as a user does and read the buttons of the toolbar that
    appears over its top-right corner (Streamlit draws it only while hovered)."""
    from playwright.sync_api import expect

    frame.scroll_into_view_if_needed()
    page.mouse.move(1, 1)
    frame.hover()
    toolbar = frame.get_by_test_id("stElementToolbar")
    expect(toolbar).to_be_visible()
    buttons = toolbar.get_by_test_id("stBaseButton-elementToolbar")
    expect(buttons.first).to_be_visible()
    return [
        buttons.nth(i).get_attribute("aria-label") or buttons.nth(i).inner_text()
        for i in range(buttons.count())
    ]


def assert_no_table_download(page, frame, what: str) -> None:
    labels = toolbar_labels(page, frame)
    # the toolbar is there (the same selector finds "Download as CSV" when data export is on)
    assert "Fullscreen" in labels, f"{what}: toolbar {labels}"
    assert not [label for label in labels if DATA_OUT.search(label)], f"{what}: toolbar {labels}"


def assert_copy_does_nothing(page, frame, *, x: float, row: int) -> None:
    """Select a cell and press Ctrl+C: with data export off the clipboard keeps what it had
    (with it on, the cell's text lands there)."""
    page.evaluate("text => navigator.clipboard.writeText(text)", SENTINEL)
    canvas = frame.locator("canvas").first
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    assert box is not None, "the table is not drawn"
    page.mouse.click(
        box["x"] + x, box["y"] + browser_support.HEADER_PX + browser_support.ROW_PX * (row + 0.5)
    )
    wait_idle(page)
    page.keyboard.press("ControlOrMeta+c")
    page.wait_for_timeout(300)
    assert page.evaluate("() => navigator.clipboard.readText()") == SENTINEL


def menu_items(page) -> list[str]:
    """Open the app's main menu (top right) and read its items, then close it."""
    from playwright.sync_api import expect

    page.get_by_test_id("stMainMenu").click()
    items = page.locator("[data-testid^=stMainMenuItem-]")
    expect(items.first).to_be_visible()
    labels = [text.strip() for text in items.all_inner_texts()]
    page.keyboard.press("Escape")
    expect(items.first).to_be_hidden()
    # theme items carry their icon's name first ("contrastSystem"): keep the visible label
    return [re.sub(r"^(contrast|light_mode|dark_mode)", "", label).strip() for label in labels]


def chart_data_buttons(page):
    return page.get_by_test_id("stDownloadButton").get_by_role("button", name="Download chart data")


# ---------------------------------------------------------------------------------------
# the tests


@pytest.mark.browser
def test_the_audit_log_tables_offer_no_download_and_no_copy(app, session):
    """The events table, then an event's detail: its fields, its before → after diff and
    both related-event tables."""
    from playwright.sync_api import expect

    page = session.page
    rows = stored_rows(app)
    per_request: dict[str, list[dict]] = {}
    for r in rows:
        if r["request_id"]:
            per_request.setdefault(r["request_id"], []).append(r)
    # an event with a before → after diff, other events of its request, and of its actor
    event = max(
        (
            r
            for r in rows
            if len(per_request.get(r["request_id"], ())) > 1
            and r["actor"]
            and diff_json(r["before"], r["after"])
            and any(o["actor"] == r["actor"] and o["id"] != r["id"] for o in per_request[r["request_id"]])
        ),
        key=lambda r: (r["time"], r["id"]),
    )
    same_request = sorted(per_request[event["request_id"]], key=lambda r: (r["time"], r["id"]), reverse=True)
    open_as(app, session, "?" + urlencode({"period": "all", "q": f"request_id:{event['request_id']}"}))
    table = events_table(page)
    assert len(grid(table)) == len(same_request)
    assert_no_table_download(page, table, "events table")
    assert_copy_does_nothing(page, table, x=200, row=0)
    assert "event=" not in page.url  # a cell clicked is not a row selected
    click_row_marker(page, table, [r["id"] for r in same_request].index(event["id"]))
    expect(page.get_by_role("heading", name="Event detail")).to_be_visible()
    wait_idle(page)
    fields = dataframe_with_columns(page, "Field", "Value")
    assert {r["Field"]: r["Value"] for r in grid(fields)}["Event ID"] == event["id"]
    dataframe_with_columns(page, "Field", "Change")  # the before → after diff
    # the events table, the detail's fields and diff, and both related-event tables
    frames = page.get_by_test_id("stDataFrame")
    expect(frames).to_have_count(5)
    for i in range(1, frames.count()):
        assert_no_table_download(page, frames.nth(i), f"table {i + 1} of the detail view")
    assert_copy_does_nothing(page, fields, x=fields.bounding_box()["width"] * 0.7, row=0)
    no_errors(page)
    shot(session, "event-detail")


@pytest.mark.browser
def test_export_is_for_auditors_and_is_recorded(app, session, tmp_path):
    from playwright.sync_api import expect

    page = session.page
    open_as(app, session)
    n = caption_count(page)
    assert n > 100
    shot(session, "audit-log")
    button = page.get_by_role("button", name="Export", exact=True)
    if not session.may_export:
        expect(button).to_be_disabled()
        expect(page.get_by_test_id("stMain").get_by_text(NO_EXPORT_PERMISSION)).to_be_visible()
        assert exports_by(app, session.user) == []
        return

    before = exports_by(app, session.user)
    expect(button).to_be_enabled()
    button.click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_role("heading", level=3)).to_have_text(
        f"Downloading a total of {n:,} records from the current search."
    )
    dialog.get_by_text("CSV (UTF-8)", exact=True).click()
    wait_idle(page)
    dialog.get_by_role("button", name="Prepare file").click()
    download_button = dialog.get_by_role("button", name=re.compile(r"^Download .*\.csv$"))
    expect(download_button).to_be_visible()
    expect(dialog.get_by_text(f"{n:,} rows in the file.")).to_be_visible()
    with page.expect_download() as info:
        download_button.click()
    download = info.value
    assert download.failure() is None
    path = tmp_path / download.suggested_filename
    download.save_as(path)
    records = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig"))))
    assert len(records) == n
    assert len({r["id"] for r in records}) == n
    # its proof comes beside it, and the file checks out against it and against the log
    manifest_button = dialog.get_by_role("button", name=re.compile(r"^Download its manifest"))
    with page.expect_download() as info:
        manifest_button.click()
    assert info.value.suggested_filename == f"{download.suggested_filename}.manifest.json"
    info.value.save_as(tmp_path / info.value.suggested_filename)
    from audit_analytics.engines.store import open_store
    from audit_analytics.io.evidence import verify_export

    store = open_store(app.db_url)
    try:
        check = verify_export(path, store=store)
    finally:
        store.engine.dispose()
    assert check.ok and check.db_checked and check.checked_rows == n, check.problems
    shot(session, "export-dialog")

    after = exports_by(app, session.user)
    assert len(after) == len(before) + 1
    export = after[-1]
    assert export["id"].startswith("aa-")
    assert export["target"] == download.suggested_filename
    assert json.loads(export["params"])["count"] == n
    assert export["ip"] == "127.0.0.1"  # where the export went, as a sign-in records it (it was empty)
    page.keyboard.press("Escape")
    no_errors(page)


@pytest.mark.browser
@pytest.mark.parametrize(
    ("path", "title", "charts", "prefix"),
    [("activity", "Activity", 8, "activity-"), ("security", "Security review", 5, "")],
)
def test_chart_data_downloads_need_export_and_are_recorded(
    app, session, tmp_path, path, title, charts, prefix
):
    from playwright.sync_api import expect

    page = session.page
    open_as(app, session, path)
    expect(page.get_by_role("heading", name=title, level=1)).to_be_visible()
    expect(page.locator(".js-plotly-plot").first).to_be_visible()
    buttons = chart_data_buttons(page)
    expect(buttons).to_have_count(charts)  # one under each chart, the page drawn to its end
    wait_idle(page)
    frames = page.get_by_test_id("stDataFrame")
    for i in range(frames.count()):
        assert_no_table_download(page, frames.nth(i), f"{title} table {i + 1}")
    # no chart's toolbar offers its picture ("Download plot as a png"): the image left the
    # browser unrecorded, for a viewer too (the top accounts under attack, by name)
    plots = page.locator(".js-plotly-plot")
    for i in range(plots.count()):
        plots.nth(i).scroll_into_view_if_needed()
        plots.nth(i).hover()
        toolbar = plots.nth(i).locator(".modebar-btn")
        expect(toolbar.first).to_be_attached()  # the toolbar is there, with its other buttons
        assert plots.nth(i).locator('.modebar-btn[data-title^="Download plot"]').count() == 0, (
            f"chart {i + 1}"
        )
    before = exports_by(app, session.user)

    if not session.may_export:
        for i in range(buttons.count()):
            expect(buttons.nth(i)).to_be_disabled()
        # a disabled button leaves nothing to fetch: even a forced click downloads nothing
        downloads = []

        def seen(download) -> None:
            downloads.append(download)

        page.on("download", seen)
        try:
            buttons.first.click(force=True)
            page.wait_for_timeout(500)
        finally:
            page.remove_listener("download", seen)
        assert downloads == []
        assert exports_by(app, session.user) == before == []
        shot(session, path)
        return

    for i in range(buttons.count()):
        expect(buttons.nth(i)).to_be_enabled()
    button = buttons.first
    button.scroll_into_view_if_needed()
    with page.expect_download() as info:
        button.click()
    download = info.value
    assert download.failure() is None
    name = download.suggested_filename
    assert name.startswith(prefix) and name.endswith(".csv"), name
    file = tmp_path / name
    download.save_as(file)
    records = list(csv.reader(io.StringIO(file.read_text(encoding="utf-8-sig"))))
    assert len(records) >= 2, records  # a header and at least one row

    after = exports_by(app, session.user)
    assert len(after) == len(before) + 1
    export = after[-1]
    assert export["id"].startswith("aa-")
    assert export["target"] == name
    params = json.loads(export["params"])
    assert params["what"] == "chart data" and params["count"] == len(records) - 1
    assert export["ip"] == "127.0.0.1"
    no_errors(page)
    shot(session, path)

    # the first click on a bar after the download opens the Audit Log. The download records an
    # event, so the page's next run draws Activity's charts anew, under new widget names:
    # the click's selection, read from the chart's return value, was lost and nothing opened
    bar = page.locator(".js-plotly-plot").first.locator("g.trace.bars g.point path").first
    bar.scroll_into_view_if_needed()
    box = bar.bounding_box()
    assert box is not None, "the bar is not drawn"
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    expect(page.get_by_role("heading", name="Audit Log", level=1)).to_be_visible(timeout=15_000)
    no_errors(page)


@pytest.mark.browser
def test_no_developer_chrome(app, session):
    """Every page, reached through the sidebar as a user does (a deep link to Retention
    before signing in finds no such page: it is registered for a signed-in admin only)."""
    from playwright.sync_api import expect

    page = session.page
    open_as(app, session)
    titles = ["Audit Log", "Activity", "Security review"] + (
        ["Retention", "Integrity"] if session.role == "admin" else []
    )
    nav = page.get_by_test_id("stSidebarNav")
    expect(nav.get_by_role("link")).to_have_count(len(titles))
    for title in titles:
        nav.get_by_role("link", name=title).click()
        expect(page.get_by_role("heading", name=title, level=1)).to_be_visible()
        wait_idle(page)
        no_errors(page)
        no_deploy_button(page)
        items = menu_items(page)
        assert "Print" in items, items  # the menu did open
        assert set(items) <= END_USER_MENU, f"{title}: developer items in the menu: {items}"

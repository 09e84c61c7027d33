"""A newcomer on ClickHouse: `AUDIT_DB_URL=chdb://FOLDER`, `audit-analytics demo`, then the
app in a real Chromium and the command line, on the same folder.

The app runs in pushdown mode (every answer from ClickHouse, as for a table larger than
memory): the Audit Log's counts equal the command line's, a search, a deep link and an
export (a chunk at a time through the store's keyset pages) work, and Activity, Security
review, Retention and Integrity draw without an error, for an admin at 1440 px and a viewer
at 800 px (who may not export). chDB serves a folder to one process at a time, so the test
reads the folder with the command line before the app starts and after it stops.

``AUDIT_SHOTS=/some/dir`` saves a screenshot of each page there.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import browser_support
import pytest
from browser_support import AppServer, events_table, fresh_page, grid, open_app, wait_idle
from conftest import need

chromium, browser = browser_support.chromium, browser_support.browser

SHOTS = os.environ.get("AUDIT_SHOTS")
CAPTION = re.compile(r"^([\d,]+) events? · ")
EVENTS = 20_000


def cli(folder: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    """`audit-analytics ARGV` with AUDIT_DB_URL=chdb://FOLDER, as a user runs it."""
    entry = Path(sys.executable).with_name("audit-analytics")
    command = [str(entry)] if entry.exists() else [sys.executable, "-m", "audit_analytics.cli.main"]
    env = os.environ | {"AUDIT_DB_URL": f"chdb://{folder}", "AUDIT_ACTOR": "newcomer"}
    return subprocess.run(
        [*command, *argv], env=env, capture_output=True, text=True, timeout=300, check=False
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def folder(chromium, tmp_path_factory) -> Path:
    need(importlib.util.find_spec("chdb") is not None, "chdb is not installed (pip install chdb)")
    folder = tmp_path_factory.mktemp("browser-clickhouse") / "audit-ch"
    ok(cli(folder, "demo", "--events", str(EVENTS), "--seed", "5"))
    return folder


def main(page):
    return page.get_by_test_id("stMain")


def caption_count(page) -> int:
    text = main(page).get_by_test_id("stCaptionContainer").filter(has_text=CAPTION).first.inner_text()
    match = CAPTION.match(text)
    assert match, text
    return int(match.group(1).replace(",", ""))


def no_errors(page) -> None:
    exceptions = page.get_by_test_id("stException")
    assert exceptions.count() == 0, exceptions.all_inner_texts()
    # an error box that is not a finding: the store failed, or a page needs more memory
    failures = (
        main(page)
        .get_by_test_id("stAlertContentError")
        .filter(has_text=re.compile(r"could not|cannot|ClickHouse|memory|narrow", re.IGNORECASE))
    )
    assert failures.count() == 0, failures.all_inner_texts()


def events_table_rows(page) -> list[dict[str, str]]:
    """The Audit Log table's drawn rows (waiting for the grid to draw them)."""
    return grid(events_table(page))


def shot(page, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"clickhouse-{name}.png"), full_page=True)


def open_page(page, app: AppServer, title: str, width: int) -> None:
    """Open a page from the sidebar's menu, as a user does."""
    from playwright.sync_api import expect

    page.get_by_test_id("stSidebarNav").get_by_role("link", name=title).click()
    expect(main(page).get_by_role("heading", name=title, exact=True)).to_be_visible()
    wait_idle(page)
    no_errors(page)
    shot(page, f"{title.lower().replace(' ', '-')}-{width}")


@pytest.mark.browser
def test_a_newcomer_uses_every_page_and_the_cli_on_chdb(folder, browser, tmp_path):
    from playwright.sync_api import expect

    # what the command line says before the app starts (the folder is one process's at a time)
    everything = int(ok(cli(folder, "query", "--count", "--period", "all")))
    search = "type:auth result:failed"
    failed = int(ok(cli(folder, "query", "--count", "--period", "all", "--search", search)))
    newest = json.loads(ok(cli(folder, "query", "--period", "all", "--limit", "1", "--format", "json")))[0]
    brute = json.loads(ok(cli(folder, "security", "brute-force", "--period", "all", "--format", "json")))
    assert everything == EVENTS and failed > 0 and brute, (everything, failed, brute)

    app = AppServer(
        f"chdb://{folder}", roles=("viewer", "admin"), extra_env={"AUDIT_ENGINE": "pushdown"}
    ).start()
    exported = 0
    try:
        # -- an admin at 1440 px: every page, a search, a deep link, an export
        with fresh_page(browser) as page:
            page.set_viewport_size({"width": 1440, "height": 1000})
            open_app(page, app.url("?period=all"), user="browser-admin")
            no_errors(page)
            # and the three accounts' creation (each the account and the role it was given) and
            # this sign-in
            assert caption_count(page) == everything + 3 * 2 + 1
            assert events_table_rows(page)[0]["Actor"] == "browser-admin"  # its own sign-in, newest
            shot(page, "audit-log-1440")

            open_app(page, app.url(f"?period=all&q={search.replace(' ', '+')}"), user="browser-admin")
            assert caption_count(page) == failed
            page.get_by_role("button", name="Export", exact=True).click()
            dialog = page.get_by_role("dialog")
            dialog.get_by_text("CSV (UTF-8)", exact=True).click()
            wait_idle(page)
            dialog.get_by_role("button", name="Prepare file").click()
            download_button = dialog.get_by_role("button", name=re.compile(r"^Download .*\.csv$"))
            expect(download_button).to_be_visible()
            with page.expect_download() as info:
                download_button.click()
            path = tmp_path / info.value.suggested_filename
            info.value.save_as(path)
            records = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig"))))
            assert len(records) == len({r["id"] for r in records}) == failed
            assert {(r["type"], r["result"]) for r in records} == {("auth", "failed")}
            exported = len(records)
            page.keyboard.press("Escape")
            wait_idle(page)

            open_app(page, app.url(f"?period=all&event={newest['id']}"), user="browser-admin")
            expect(main(page).get_by_role("heading", name="Event detail")).to_be_visible()
            # the detail's fields are a grid: its accessible table holds the event's id
            expect(main(page).get_by_text(newest["id"]).first).to_be_attached()
            no_errors(page)
            shot(page, "detail-1440")

            open_page(page, app, "Activity", 1440)
            expect(page.locator(".js-plotly-plot").first).to_be_visible()
            # a new address is a new session, which resumes the sign-in from the cookie
            open_app(page, app.url("security?period=all"), user="browser-admin")
            expect(main(page).get_by_role("heading", name="Security review", exact=True)).to_be_visible()
            no_errors(page)
            expect(main(page).get_by_text("Brute force", exact=False).first).to_be_visible()
            expect(main(page)).to_contain_text(brute[0]["key"])
            shot(page, "security-1440")
            open_page(page, app, "Retention", 1440)
            open_page(page, app, "Integrity", 1440)
            main(page).get_by_role("button", name="Verify now").click()
            page.get_by_role("heading", name="This verification").wait_for()
            expect(main(page).get_by_test_id("stAlertContentSuccess")).to_contain_text("verified:")
            shot(page, "integrity-1440")

        # -- a viewer at 800 px: reads every page it may, cannot export
        with fresh_page(browser) as page:
            page.set_viewport_size({"width": 800, "height": 1000})
            open_app(page, app.url("?period=all"), user="browser-viewer")
            no_errors(page)
            assert caption_count(page) >= EVENTS
            assert events_table_rows(page)[0]["Actor"] == "browser-viewer"
            expect(page.get_by_role("button", name="Export", exact=True)).to_be_disabled()
            shot(page, "audit-log-800")
            open_page(page, app, "Activity", 800)
            open_page(page, app, "Security review", 800)
            nav = page.get_by_test_id("stSidebarNav")
            expect(nav.get_by_role("link", name="Integrity")).to_have_count(0)
    finally:
        log = app.log()
        app.stop()
    assert "Traceback" not in log, log

    # -- after the app: the command line sees what the app wrote, and the chain holds
    audit = json.loads(
        ok(cli(folder, "query", "--period", "all", "--type", "audit", "--limit", "0", "--format", "json"))
    )
    exports = [e for e in audit if e["action"] == "export" and e["actor"] == "browser-admin"]
    assert len(exports) == 1 and json.loads(exports[0]["params"])["count"] == exported
    verified = cli(folder, "integrity", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr

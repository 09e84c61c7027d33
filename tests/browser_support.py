"""Shared helpers for the browser tests: a real Streamlit server on a loopback port and a
real Chromium driven by Python playwright.

A test module uses them like this::

    import browser_support
    chromium, browser, page = browser_support.chromium, browser_support.browser, browser_support.page

    @pytest.fixture(scope="module")
    def app(chromium, tmp_path_factory):          # `chromium` first: skip before any work
        url = demo_database(tmp_path_factory.mktemp("app") / "audit.db")
        with running_app(url) as server:
            yield server

    @pytest.mark.browser
    def test_something(app, page):
        page.goto(app.url("?period=all"))
        wait_idle(page)

Chromium is Debian's (``apt-get install chromium``), never a playwright download. When it (or
playwright) is missing the browser tests skip with the reason; under ``CI=true`` that is a
failure instead (see ``need`` in conftest.py). ``AUDIT_CHROMIUM`` names another executable.
The browser only ever talks to 127.0.0.1: any other request is aborted.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from conftest import _free_port, need, wait_for_port

ROOT = Path(__file__).resolve().parents[1]
DEBIAN_CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1500, "height": 1100}
TIMEZONE = "Europe/Paris"
LOCALE = "en-GB"
TIMEOUT_MS = 15_000  # one action or one assertion; a whole app run takes well under a second


# ---------------------------------------------------------------------------------------
# what is installed


def chromium_executable() -> str | None:
    """The Chromium to drive: ``AUDIT_CHROMIUM`` when set (even when it does not exist, so a
    test can simulate a machine without a browser), else Debian's, else one on the PATH."""
    override = os.environ.get("AUDIT_CHROMIUM")
    if override is not None:
        return override if os.access(override, os.X_OK) else None
    if os.access(DEBIAN_CHROMIUM, os.X_OK):
        return DEBIAN_CHROMIUM
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _playwright_importable() -> bool:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return False
    return True


# ---------------------------------------------------------------------------------------
# the app


def demo_database(path: Path, *, n_events: int = 5_000, seed: int = 7) -> str:
    """An SQLite file of deterministic demo events (the last 90 days up to now); its URL."""
    from audit_analytics.demo.generate import generate
    from audit_analytics.engines.store import open_store

    url = f"sqlite:///{path}"
    store = open_store(url)
    try:
        store.append(generate(n_events, seed=seed).events)
    finally:
        store.engine.dispose()
    return url


USER, PASSWORD = "browser-tester", "correct horse battery staple 42"


def _make_account(
    users_file: Path, db_url: str, name: str = USER, role: str = "auditor", password: str = PASSWORD
) -> None:
    """A local account the browser signs in with: by default the auditor (read + export)."""
    from audit_analytics import accounts
    from audit_analytics.engines.store import open_store

    store = open_store(db_url)
    try:
        accounts.add_user(users_file, name, role, password, actor="test-setup", store=store)
    finally:
        close_store(store)


def close_store(store) -> None:
    """Let go of a store: a chDB folder serves one process at a time, so the test process
    must close it before the app opens it (a SQL store's pool is disposed)."""
    close = getattr(store, "close", None)
    if close is not None:
        close()
    else:
        store.engine.dispose()


@dataclass
class AppServer:
    """The app (``streamlit run app.py``, started as ``./run app`` does) in a child process on
    127.0.0.1."""

    db_url: str
    port: int = field(default_factory=_free_port)
    process: subprocess.Popen | None = None
    log_path: Path | None = None
    users_file: Path | None = None
    spawned_at: float = 0.0
    roles: tuple[str, ...] = ()
    """Accounts ``browser-<role>`` made before the app starts (a chDB folder cannot be
    written by the test process once the app has it open; see :meth:`add_account`)."""
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def url(self, query: str = "") -> str:
        """The app's address; ``query`` like ``"?event=evt-1"`` (or a path plus query)."""
        return self.base + query.lstrip("/")

    def command(self) -> list[str]:
        """What runs Streamlit: as ``./run app`` does, through ``audit_analytics.ui.serve``, which
        starts the load with the server (the capacity benchmark starts it pinned, through its
        launcher)."""
        return [sys.executable, "-m", "audit_analytics.ui.serve"]

    def environment(self) -> dict[str, str]:
        """The app process's environment."""
        assert self.users_file is not None
        return (
            os.environ
            | {
                "AUDIT_DB_URL": self.db_url,
                "AUDIT_USERS_FILE": str(self.users_file),
                "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false",
            }
            | self.extra_env
        )

    def spawned(self) -> None:
        """Called once the process is started, before its health check."""

    def start(self, *, timeout: float = 60.0) -> AppServer:
        fd, log = tempfile.mkstemp(prefix="aa-streamlit-", suffix=".log")
        self.log_path = Path(log)
        self.users_file = Path(tempfile.mkdtemp(prefix="aa-users-")) / "users.toml"
        _make_account(self.users_file, self.db_url)
        for role in self.roles:
            _make_account(self.users_file, self.db_url, f"browser-{role}", role)
        with os.fdopen(fd, "wb") as out:
            self.spawned_at = time.perf_counter()  # the cold-start benchmark times from here
            self.process = subprocess.Popen(
                [
                    *self.command(),
                    "run",
                    "app.py",
                    "--server.address",
                    "127.0.0.1",
                    "--server.port",
                    str(self.port),
                    "--server.headless",
                    "true",
                    "--browser.gatherUsageStats",
                    "false",
                ],
                cwd=ROOT,
                env=self.environment(),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C in pytest does not reach it; stop() ends it
            )
        self.spawned()
        try:
            deadline = time.monotonic() + timeout
            wait_for_port(self.port, timeout=timeout)
            while not self._healthy():
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise TimeoutError("the app did not become healthy")
                time.sleep(0.1)
        except Exception as exc:
            log_text = self.log()
            self.stop()
            raise RuntimeError(f"streamlit did not start on port {self.port}: {exc}\n{log_text}") from exc
        return self

    def add_account(self, role: str, name: str | None = None, password: str = PASSWORD) -> str:
        """Another local account, of ``role`` ("viewer", "auditor", "admin"), on the running
        server (the app reads the accounts file at every sign-in); its name, by default
        ``browser-<role>``. Sign in with ``open_app(page, url, user=name)``."""
        assert self.users_file is not None, "start the server first"
        name = name or f"browser-{role}"
        _make_account(self.users_file, self.db_url, name, role, password)
        return name

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.url("_stcore/health"), timeout=2) as response:  # noqa: S310
                return response.status == 200
        except OSError:
            return False

    def log(self) -> str:
        """What the server printed (tracebacks of failed runs land here)."""
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        """End the server (SIGTERM, then SIGKILL after 10 s) and remove its log."""
        proc = self.process
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        self.process = None
        if self.log_path is not None:
            self.log_path.unlink(missing_ok=True)
        if self.users_file is not None:
            shutil.rmtree(self.users_file.parent, ignore_errors=True)


def stored_rows(server: AppServer) -> list[dict]:
    """Every event stored in the app's database now (sign-ins and exports add their own audit
    events as the tests run), read through the package's store."""
    from audit_analytics import open_store

    store = open_store(server.db_url)
    try:
        return store.load().to_dicts()
    finally:
        close_store(store)


@contextmanager
def running_app(db_url: str, **options: Any) -> Iterator[AppServer]:
    """The app on ``db_url``, started and, at the end, stopped; ``options``: the
    :class:`AppServer`'s (``roles``, ``extra_env``)."""
    server = AppServer(db_url, **options).start()
    try:
        yield server
    finally:
        log = server.log()
        server.stop()
        if "Traceback" in log:
            # a page that crashed in a way the test did not notice still shows up somewhere
            print(f"--- streamlit log (port {server.port}) ---\n{log}", file=sys.stderr)


# ---------------------------------------------------------------------------------------
# the browser


def require_chromium() -> str:
    """The Chromium executable, or a skip (a failure under CI=true) saying what is missing."""
    need(_playwright_importable(), "Python playwright is not installed (pip install -e '.[test]')")
    exe = chromium_executable()
    need(
        exe is not None,
        f"no Chromium at {os.environ.get('AUDIT_CHROMIUM') or DEBIAN_CHROMIUM} or on the PATH "
        "(apt-get install chromium; never `playwright install`)",
    )
    return exe


@pytest.fixture(scope="session")
def chromium() -> str:
    """The Chromium executable; request it first, so a missing browser skips before any work."""
    return require_chromium()


@pytest.fixture(scope="module")
def browser(chromium):
    """One Chromium per test module (playwright's sync API must not outlive an event loop
    another test starts, so it is not shared across modules)."""
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=TIMEOUT_MS)
    pw = sync_playwright().start()
    try:
        b = pw.chromium.launch(executable_path=chromium, args=LAUNCH_ARGS)
        try:
            yield b
        finally:
            b.close()
    finally:
        pw.stop()


def _loopback_only(route) -> None:
    host = urlsplit(route.request.url).hostname
    if host in ("127.0.0.1", "localhost") or route.request.url.startswith(("data:", "blob:")):
        route.continue_()
    else:
        route.abort()


@contextmanager
def fresh_page(browser) -> Iterator:
    """A page in a fresh browser context (so a fresh Streamlit session): fixed viewport, time
    zone and locale, downloads accepted, nothing but loopback reachable. For a fixture of
    another scope than ``page``'s (one context per role for a whole module, say)."""
    context = browser.new_context(
        viewport=VIEWPORT,
        timezone_id=TIMEZONE,
        locale=LOCALE,
        accept_downloads=True,
    )
    context.set_default_timeout(TIMEOUT_MS)
    context.route("**/*", _loopback_only)
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture
def page(browser):
    """A fresh browser context (so a fresh Streamlit session) per test (see ``fresh_page``)."""
    with fresh_page(browser) as pg:
        yield pg


# ---------------------------------------------------------------------------------------
# reading and driving a Streamlit page


def wait_idle(page, *, settle: float = 0.15) -> None:
    """Wait until the app is connected and no script run is in progress (a run starts a
    moment after the event that triggers it, hence the short settle first)."""
    page.wait_for_timeout(settle * 1000)
    page.locator(
        "[data-testid=stApp][data-test-connection-state=CONNECTED][data-test-script-state=notRunning]"
    ).wait_for()


def open_app(
    page, url: str, *, ready: str = "[data-testid=stMain] h1", user: str = USER, password: str = PASSWORD
) -> None:
    """Load a page of the app and wait for its first run to draw (``ready``, by default the
    page's title) and finish; signs in as ``user`` through the form when it is shown. (Before
    the first run starts, the app already says it is not running, so the idle state alone
    proves nothing.)"""
    page.goto(url)
    password_box = page.locator("[data-testid=stForm] input[type=password]")
    # the sign-in screen has an h1 too ("Audit Analytics"): wait for the form or a page title
    page_title = page.locator(ready).filter(has_not_text=re.compile(r"^Audit Analytics$"))
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while not (password_box.count() or page_title.count()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"neither the sign-in form nor {ready!r} appeared at {url}")
        page.wait_for_timeout(100)
    if password_box.count():
        sign_in(page, user, password)
    page_title.first.wait_for()
    wait_idle(page)


def sign_in(page, user: str = USER, password: str = PASSWORD) -> None:
    """Sign in through the app's own form (every new browser context is a new session)."""
    page.get_by_role("textbox", name="User name").fill(user)
    page.get_by_role("textbox", name="Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text("Sign in to read the audit log.").wait_for(state="detached")


def grid(dataframe) -> list[dict[str, str]]:
    """The rendered rows of an ``st.dataframe`` as dicts, read from the accessible table the
    glide data grid keeps beside its canvas (only rows drawn in the viewport are there)."""
    table = dataframe.evaluate(
        """el => Array.from(el.querySelectorAll('table[role=grid] tr')).map(
               tr => Array.from(tr.querySelectorAll('th, td')).map(c => c.textContent))"""
    )
    if not table:
        return []
    header, *rows = table
    return [dict(zip(header, row, strict=False)) for row in rows]


def read_until(read, wanted, *, timeout_ms: int = TIMEOUT_MS):
    """``read()`` once ``wanted`` holds of it, or the last value read at the timeout, so the
    caller's assertion shows what was on screen (the grid draws its rows a few at a time after
    the canvas, and a scroll or a tick lands later still)."""
    deadline = time.monotonic() + timeout_ms / 1000
    while True:
        value = read()
        if wanted(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


def grid_until(dataframe, wanted, *, timeout_ms: int = TIMEOUT_MS) -> list[dict[str, str]]:
    """The rendered rows once ``wanted(rows)`` holds (see ``read_until``)."""
    return read_until(lambda: grid(dataframe), wanted, timeout_ms=timeout_ms)


def dataframe_with_columns(page, *columns: str, within: str | None = None, timeout_ms: int = TIMEOUT_MS):
    """The first ``st.dataframe`` on the page (or inside the elements the CSS selector
    ``within`` finds) whose header starts with ``columns``, waiting for the grid to draw its
    accessible table, which follows the canvas by a moment."""
    frames = (page.locator(within) if within else page).get_by_test_id("stDataFrame")
    deadline = time.monotonic() + timeout_ms / 1000
    seen: list = []
    while True:
        seen = []
        for i in range(frames.count()):
            frame = frames.nth(i)
            header = frame.evaluate(
                """el => Array.from(el.querySelectorAll('table[role=grid] tr:first-child th'))
                       .map(c => c.textContent)"""
            )
            rows = frame.evaluate("el => el.querySelectorAll('table[role=grid] td').length")
            seen.append(header)
            if tuple(header[: len(columns)]) == columns and rows:
                return frame
        if time.monotonic() > deadline:
            raise AssertionError(f"no dataframe with columns {columns}; saw {seen}")
        page.wait_for_timeout(100)


def events_table(page, *, timeout_ms: int = TIMEOUT_MS):
    """The Audit Log's events table, found by its widget key ("events-…"). The related-event
    tables of an open detail have the same first columns: found by its columns alone, a
    related table drawn before the events table would be taken for it."""
    return dataframe_with_columns(
        page, f"Time ({TIMEZONE})", "Actor", within='[class*="st-key-events-"]', timeout_ms=timeout_ms
    )


# the glide grid's geometry in Streamlit: header and rows 35 px, row markers on the left
HEADER_PX = 35
ROW_PX = 35
ROW_MARKER_X = 20


def click_row_marker(page, dataframe, row: int) -> None:
    """Tick the selection checkbox of a visible row (0-based) of an ``st.dataframe``."""
    canvas = dataframe.locator("canvas").first
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    assert box is not None, "the table is not drawn"
    y = HEADER_PX + ROW_PX * row + ROW_PX / 2
    assert y < box["height"] - ROW_PX / 2, f"row {row} is not visible in the table"
    page.mouse.click(box["x"] + ROW_MARKER_X, box["y"] + y)

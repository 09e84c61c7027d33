"""A sign-in outlives its browser tab: a reload or a link opened in a new tab finds the user
signed in (each is a new Streamlit session), until the user signs out or the sign-in expires.

The token the browser keeps in its ``aa_session`` cookie signs in only while the server holds
it: a forged or revoked one shows the sign-in form. One sign-in is one recorded event. A
sign-in in use is renewed, its cookie with it; two users signed in from two tabs of one browser
keep their own sign-ins."""

from __future__ import annotations

import time

import browser_support
import pytest
from browser_support import (
    PASSWORD,
    USER,
    demo_database,
    open_app,
    read_until,
    running_app,
    sign_in,
    stored_rows,
    wait_idle,
)

chromium, browser, page = browser_support.chromium, browser_support.browser, browser_support.page

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def app(chromium, tmp_path_factory):
    url = demo_database(tmp_path_factory.mktemp("session") / "audit.db", n_events=1_000)
    with running_app(url, roles=("viewer",)) as server:
        yield server


BRIEF_HOURS = 0.006  # 21.6 s: a sign-in that lapses within a test


@pytest.fixture(scope="module")
def brief_app(chromium, tmp_path_factory):
    url = demo_database(tmp_path_factory.mktemp("brief") / "audit.db", n_events=1_000)
    with running_app(url, extra_env={"AUDIT_SESSION_HOURS": str(BRIEF_HOURS)}) as server:
        yield server


def _form(page):
    return page.locator("[data-testid=stForm] input[type=password]")


def _signed_in(page):
    return page.get_by_test_id("stSidebar").get_by_text(f"Signed in as {USER}")


def _sign_ins(app) -> int:
    return sum(
        r["actor"] == USER and r["action"] == "login" and r["result"] == "done" for r in stored_rows(app)
    )


def _page_loaded(page, url: str) -> None:
    """Load an address and wait for its first run: either the sign-in form or a signed-in page."""
    from playwright.sync_api import expect

    page.goto(url)
    expect(_form(page).or_(_signed_in(page))).to_be_visible()
    wait_idle(page)


def _period_y(page) -> float:
    wait_idle(page)
    box = page.get_by_test_id("stSidebar").get_by_test_id("stRadio").filter(has_text="Period").bounding_box()
    assert box is not None
    return box["y"]


def _cookie(page) -> str | None:
    return next((c["value"] for c in page.context.cookies() if c["name"] == "aa_session"), None)


def _cookie_set(page) -> str | None:
    """The sign-in cookie once the browser has it (the page's script asks the server for it)."""
    return read_until(lambda: _cookie(page), bool)


def _cookie_expires(page) -> float:
    """When the browser drops its sign-in cookie (seconds since the epoch; 0: it has none)."""
    return next((c["expires"] for c in page.context.cookies() if c["name"] == "aa_session"), 0.0)


def _sleep_until(page, moment: float) -> None:
    page.wait_for_timeout(max(0.0, moment - time.time()) * 1000)


def test_a_reload_and_a_new_tab_keep_the_sign_in_until_sign_out(app, page):
    from playwright.sync_api import expect

    before = _sign_ins(app)
    open_app(page, app.url("?period=all"))
    expect(_signed_in(page)).to_be_visible()
    token = _cookie_set(page)
    assert token and len(token) >= 40, page.context.cookies()
    cookie = next(c for c in page.context.cookies() if c["name"] == "aa_session")
    assert cookie["sameSite"] == "Strict"
    # written by the server, not by a script: no script in the page can read the token, and
    # the page never holds it (before, a script wrote it and `document.cookie` showed it)
    assert cookie["httpOnly"] is True
    assert "aa_session" not in page.evaluate("document.cookie")
    assert token not in page.content()

    # the element writing the cookie takes no room: the sidebar's controls are where a reload
    # (whose session finds the cookie and writes nothing) puts them (16 px lower, before)
    expect(page.locator(".st-key-aa-cookie")).to_be_hidden()
    before_reload = _period_y(page)

    # a reload is a new session: no form, the same user, and no second sign-in recorded
    page.reload()
    expect(_signed_in(page)).to_be_visible()
    wait_idle(page)
    assert _form(page).count() == 0
    assert page.locator(".st-key-aa-cookie").count() == 0
    assert _period_y(page) == before_reload
    # a link opened in a new tab (a findings table's link does that) lands signed in
    tab = page.context.new_page()
    _page_loaded(tab, app.url("security?period=all"))
    expect(_signed_in(tab)).to_be_visible()
    expect(tab.get_by_role("heading", name="Security review", exact=True)).to_be_visible()
    assert _sign_ins(app) == before + 1

    # signing out removes the cookie and revokes its token; the sign-in screen has no sidebar
    # (an empty one stayed open)
    page.get_by_role("button", name="Sign out").click()
    expect(_form(page)).to_be_visible()
    wait_idle(page)
    expect(page.get_by_test_id("stSidebar")).to_be_hidden()
    assert read_until(lambda: _cookie(page), lambda value: value is None) is None
    page.reload()
    expect(_form(page)).to_be_visible()
    # the other tab, still showing the review, is signed out at its next run, and says why
    tab.get_by_test_id("stSidebarNav").get_by_text("Audit Log").click()
    expect(_form(tab)).to_be_visible()
    expect(tab.get_by_text("Your sign-in has ended")).to_be_visible()

    # the revoked token, put back by hand, signs no one in
    page.context.add_cookies([{"name": "aa_session", "value": token, "url": app.base}])
    _page_loaded(page, app.url())
    assert _form(page).count() == 1 and _signed_in(page).count() == 0


def test_a_forged_cookie_signs_no_one_in(app, page):
    page.context.add_cookies([{"name": "aa_session", "value": "A" * 43, "url": app.base}])
    _page_loaded(page, app.url())
    assert _form(page).count() == 1 and _signed_in(page).count() == 0


def test_a_sign_in_in_use_is_renewed_and_its_cookie_with_it(brief_app, page):
    """A sign-in lasts its lifetime after its last use, not after it began: used (here past
    half its lifetime, the most a renewal waits when the lifetime is short) the server renews
    it and the page writes the cookie again, so a reload after the first expiry is still
    signed in (before, both lapsed with the use still going on)."""
    from playwright.sync_api import expect

    lifetime = BRIEF_HOURS * 3600
    open_app(page, brief_app.url())
    _cookie_set(page)
    first_until = _cookie_expires(page)
    assert 0 < first_until - time.time() <= lifetime + 2, first_until - time.time()  # a lifetime at most

    # used twice, each time past half its lifetime: the second renewal's script would read as
    # the first's (a whole lifetime), and the browser ran it once only
    until = first_until
    for name in ("Audit Log", "Activity"):
        _sleep_until(page, until - lifetime / 2 + 1)
        page.get_by_test_id("stSidebarNav").get_by_text(name).click()
        wait_idle(page)
        renewed = read_until(lambda: _cookie_expires(page), lambda value, before=until: value > before + 3)
        assert renewed > until + 3, (name, until, renewed)
        before, until = until, renewed

    _sleep_until(page, before + 1)  # the expiry before the last renewal has passed
    page.reload()
    expect(_signed_in(page)).to_be_visible()
    wait_idle(page)
    assert _form(page).count() == 0


def test_two_users_in_one_browser_keep_their_own_sign_ins(app, page):
    """Two tabs of one browser, each signed in through its form as a different user: the
    browser's cookie is the later sign-in's, and the earlier tab neither takes it back as it
    is used nor removes it when it signs out (before, it did both: the other user's next
    reload asked for a password)."""
    from playwright.sync_api import expect

    page.goto(app.url())
    expect(_form(page)).to_be_visible()
    other = page.context.new_page()
    other.goto(app.url())
    expect(_form(other)).to_be_visible()
    sign_in(page)
    expect(_signed_in(page)).to_be_visible()
    first = _cookie_set(page)

    sign_in(other, "browser-viewer", PASSWORD)
    expect(other.get_by_test_id("stSidebar").get_by_text("Signed in as browser-viewer")).to_be_visible()
    wait_idle(other)
    viewers = read_until(lambda: _cookie(other), lambda value: value != first)
    assert viewers and viewers != first

    # the first tab goes on being used: the cookie stays the viewer's
    for name in ("Audit Log", "Activity"):
        page.get_by_test_id("stSidebarNav").get_by_text(name).click()
        wait_idle(page)
    expect(_signed_in(page)).to_be_visible()
    page.wait_for_timeout(300)
    assert _cookie(page) == viewers

    # it signs out: the viewer's sign-in stays, in the cookie and across a reload
    page.get_by_role("button", name="Sign out").click()
    expect(_form(page)).to_be_visible()
    wait_idle(page)
    page.wait_for_timeout(300)
    assert _cookie(page) == viewers
    other.reload()
    expect(other.get_by_test_id("stSidebar").get_by_text("Signed in as browser-viewer")).to_be_visible()
    assert _form(other).count() == 0


def test_a_sign_in_records_the_address_it_came_from(app, browser):
    """The app's own sign-ins feed the by-IP failure tables: one from this machine was stored
    without an address (Streamlit's ``st.context.ip_address`` hides a loopback address), so
    a brute force against the form from here had no source. Behind a reverse proxy on this
    machine the client the proxy names in ``X-Forwarded-For`` is recorded (the server trusts
    a loopback proxy; ``FORWARDED_ALLOW_IPS`` names others, docs/deploy.md)."""
    import ipaddress

    from browser_support import fresh_page

    def newest_sign_in_address(count_before: int) -> str | None:
        def sign_ins() -> list[dict]:
            return sorted(
                (
                    r
                    for r in stored_rows(app)
                    if r["actor"] == USER and r["action"] == "login" and r["result"] == "done"
                ),
                key=lambda r: r["time"],
            )

        rows = read_until(sign_ins, lambda found: len(found) > count_before)
        return rows[-1]["ip"]

    for forwarded in (None, "203.0.113.7"):
        with fresh_page(browser) as page:
            if forwarded:
                page.context.set_extra_http_headers({"X-Forwarded-For": forwarded})
            count = _sign_ins(app)
            _page_loaded(page, app.url())
            sign_in(page)
            address = newest_sign_in_address(count)
        if forwarded:
            assert address == forwarded
        else:
            assert address is not None and ipaddress.ip_address(address).is_loopback

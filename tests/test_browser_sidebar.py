"""What a new user hits in the browser: the sidebar's filter panel across pages, searches that
do not parse, custom dates, the Security page's Type and Result, the sign-in form.

Each test drives the real app (``streamlit run app.py``) in Debian's Chromium.
``AUDIT_SHOTS=dir`` also saves screenshots at 1440 and 800 px wide into ``dir``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import browser_support
import pytest
from browser_support import PASSWORD, demo_database, open_app, running_app, wait_idle

# the shared fixtures (a module-level name is how pytest finds them; see browser_support)
chromium, browser, page = browser_support.chromium, browser_support.browser, browser_support.page

SHOTS = os.environ.get("AUDIT_SHOTS")
WIDTHS = (1440, 800)
BAD_IP = "ip:999.1.1.1"


@pytest.fixture(scope="module")
def app(chromium, tmp_path_factory):
    url = demo_database(tmp_path_factory.mktemp("browser-sidebar") / "audit.db")
    with running_app(url) as server:
        for role in ("viewer", "auditor", "admin"):
            server.add_account(role)
        yield server


def shot(page, name: str) -> None:
    """Screenshots at each width (only with AUDIT_SHOTS set)."""
    if not SHOTS:
        return
    Path(SHOTS).mkdir(parents=True, exist_ok=True)
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 1000})
        page.wait_for_timeout(400)
        page.screenshot(path=str(Path(SHOTS) / f"{name}-{width}.png"))
    page.set_viewport_size(browser_support.VIEWPORT)
    page.wait_for_timeout(200)


def query(page) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(urlsplit(page.url).query).items()}


def sidebar(page):
    return page.get_by_test_id("stSidebar")


def no_errors(page) -> None:
    exceptions = page.get_by_test_id("stException")
    assert exceptions.count() == 0, exceptions.all_inner_texts()


def go(page, title: str) -> None:
    """Open a page from the sidebar's navigation, as a user does."""
    page.get_by_test_id("stSidebarNav").get_by_role("link", name=title).click()
    page.get_by_role("heading", name=title).wait_for()
    wait_idle(page)


def period_caption(page):
    return (
        page.get_by_test_id("stMain")
        .get_by_test_id("stCaptionContainer")
        .filter(has_text=re.compile(r"^[\d,]+ events? · "))
        .first
    )


# ---------------------------------------------------------------------------------------
# 3. the Period radio keeps the period across pages


@pytest.mark.browser
@pytest.mark.parametrize("role", ["viewer", "auditor", "admin"])
def test_period_radio_keeps_the_period_on_every_page(app, page, role):
    from playwright.sync_api import expect

    open_app(page, app.url(), user=f"browser-{role}")
    expect(sidebar(page).get_by_role("radio", name="Last 7 days")).to_be_checked()
    for title in ("Activity", "Security review", "Audit Log", "Activity"):
        go(page, title)
        expect(sidebar(page).get_by_role("radio", name="Last 7 days")).to_be_checked()
        expect(period_caption(page)).to_contain_text("last 7 days")
    # Apply without touching anything changes nothing
    sidebar(page).get_by_role("button", name="Apply").click()
    wait_idle(page)
    assert query(page).get("period") in (None, "7d")
    expect(sidebar(page).get_by_role("radio", name="Last 7 days")).to_be_checked()
    expect(period_caption(page)).to_contain_text("last 7 days")
    no_errors(page)


# ---------------------------------------------------------------------------------------
# 9. a search the parser rejects shows the parser's error, never "No events match"

SEARCH_ERROR = re.compile(
    r"Search not applied, at character 4: '999\.1\.1\.1' is not an IPv4 or IPv6 address"
)


def search_box(page):
    return page.get_by_test_id("stMain").get_by_role("searchbox", name="Search")


@pytest.mark.browser
@pytest.mark.parametrize("title", ["Audit Log", "Activity"])
def test_an_invalid_ip_in_the_search_bar_shows_the_parsers_error(app, page, title):
    from playwright.sync_api import expect

    open_app(page, app.url("?period=all"))
    if title != "Audit Log":
        go(page, title)
    before = period_caption(page).inner_text()
    search_box(page).fill(BAD_IP)
    main = page.get_by_test_id("stMain")
    expect(main.get_by_test_id("stAlertContentError")).to_contain_text(SEARCH_ERROR)
    wait_idle(page, settle=0.6)
    expect(main.get_by_test_id("stAlertContentError")).to_contain_text(SEARCH_ERROR)
    expect(main).not_to_contain_text("No events match")
    # the last good search stays in force, and the address does not pretend otherwise
    assert "q" not in query(page)
    assert period_caption(page).inner_text() == before
    expect(search_box(page)).to_have_value(BAD_IP)
    shot(page, f"invalid-ip-search-{title.split()[0].lower()}")
    no_errors(page)


# ---------------------------------------------------------------------------------------
# (b) a link whose search does not parse shows the parser's error, not every event


@pytest.mark.browser
@pytest.mark.parametrize("path", ["", "activity"])
def test_a_link_with_an_unparsable_search_shows_the_error(app, page, path):
    from playwright.sync_api import expect

    open_app(page, app.url(f"{path}?period=all&q=ip%3A999.1.1.1"))
    main = page.get_by_test_id("stMain")
    expect(main.get_by_test_id("stAlertContentError")).to_contain_text(SEARCH_ERROR)
    expect(search_box(page)).to_have_value(BAD_IP)
    # no figures that pretend to answer the link: the page says what it shows instead
    expect(main).to_contain_text("not applied")
    expect(period_caption(page)).to_have_count(0)
    assert query(page) == {"period": "all", "q": BAD_IP}  # a reload shows the same
    shot(page, f"link-bad-search-{path or 'auditlog'}")
    # corrected, it applies, and the address follows
    search_box(page).fill("ip:10.0.0.0/8")
    expect(period_caption(page)).to_be_visible()
    wait_idle(page, settle=0.6)
    assert query(page) == {"period": "all", "q": "ip:10.0.0.0/8"}
    expect(main).not_to_contain_text("not applied")
    no_errors(page)


@pytest.mark.browser
def test_a_security_link_with_an_unparsable_search_reviews_nothing(app, page):
    from playwright.sync_api import expect

    open_app(page, app.url("security?period=all&q=ip%3A999.1.1.1"))
    main = page.get_by_test_id("stMain")
    expect(main.get_by_test_id("stAlertContentError")).to_contain_text(SEARCH_ERROR)
    expect(main).to_contain_text("not applied")
    expect(main.get_by_test_id("stCode")).to_contain_text(BAD_IP)
    expect(main.get_by_role("heading", name="Login failures")).to_have_count(0)
    shot(page, "link-bad-search-security")
    main.get_by_role("button", name="Open without the search").click()
    expect(main.get_by_role("heading", name="Login failures")).to_be_visible()
    expect(main).not_to_contain_text("Search not applied")
    no_errors(page)


# ---------------------------------------------------------------------------------------
# 10. custom dates: From after To is refused with a word; the boxes show a whole date


def date_box(page, label: str):
    """A date input of the panel: react-aria's field of year / month / day spin buttons."""
    return sidebar(page).get_by_role("group", name=label, exact=True)


def date_text(page, label: str) -> str:
    return re.sub(r"[^\d/]", "", date_box(page, label).inner_text())


def type_date(page, label: str, digits: str) -> None:
    """Type a date as a user does: into the year, then on through month and day."""
    sidebar(page).get_by_role("spinbutton", name=f"year, {label}").click()
    page.keyboard.type(digits)
    page.keyboard.press("Tab")


@pytest.mark.browser
def test_custom_dates_from_after_to_are_refused_with_a_message(app, page):
    from playwright.sync_api import expect

    open_app(page, app.url("?period=30d"))
    before = period_caption(page).inner_text()
    sidebar(page).get_by_text("Custom", exact=True).click()
    type_date(page, "From", "20261125")
    type_date(page, "To", "20261120")
    assert (date_text(page, "From"), date_text(page, "To")) == ("2026/11/25", "2026/11/20")
    sidebar(page).get_by_role("button", name="Apply").click()
    wait_idle(page)
    expect(sidebar(page)).to_contain_text("From (2026-11-25) is after To (2026-11-20)")
    # nothing was swapped behind the reader's back: the view is the one before
    assert query(page) == {"period": "30d"}
    assert period_caption(page).inner_text() == before
    shot(page, "custom-dates-refused")
    # the right order applies, and the message goes
    type_date(page, "From", "20261120")
    type_date(page, "To", "20261125")
    sidebar(page).get_by_role("button", name="Apply").click()
    wait_idle(page)
    assert query(page) == {"period": "custom", "from": "2026-11-20", "to": "2026-11-25"}
    expect(sidebar(page)).not_to_contain_text("is after To")
    no_errors(page)
    # a From long ago is taken (Streamlit's own floor, ten years back, turned it red and Apply
    # then said "From (2026-11-20) is after To" of the date the box had last accepted)
    type_date(page, "From", "19990101")
    sidebar(page).get_by_role("button", name="Apply").click()
    wait_idle(page)
    assert query(page) == {"period": "custom", "from": "1999-01-01", "to": "2026-11-25"}
    expect(sidebar(page)).not_to_contain_text("is after To")


@pytest.mark.browser
@pytest.mark.parametrize("width", WIDTHS)
def test_the_date_boxes_show_a_whole_date(app, page, width):
    page.set_viewport_size({"width": width, "height": 1000})
    open_app(page, app.url("?period=custom&from=2026-11-20&to=2026-11-25"))
    for label, text in (("From", "2026/11/20"), ("To", "2026/11/25")):
        assert date_text(page, label) == text
        # the whole date is in sight: its scroller does not hide any of it
        scroller = (
            sidebar(page)
            .get_by_test_id("stDateInput")
            .filter(has=page.get_by_role("group", name=label, exact=True))
            .get_by_test_id("stDateInputFieldsScroller")
        )
        sizes = scroller.evaluate("el => [el.scrollWidth, el.clientWidth]")
        assert sizes[0] <= sizes[1], f"{label} at {width}px: {sizes[0]}px of date in a {sizes[1]}px box"
    shot(page, "date-boxes")


# ---------------------------------------------------------------------------------------
# 11. the Security review does not apply Type and Result, and the sidebar says so


def security_count(page) -> str:
    return period_caption(page).inner_text().split(" · ")[0]


@pytest.mark.browser
@pytest.mark.parametrize("role", ["viewer", "admin"])
def test_security_review_shows_type_and_result_do_not_apply(app, page, role):
    from playwright.sync_api import expect

    open_app(page, app.url("security?period=all"), user=f"browser-{role}")
    everything = security_count(page)
    type_box = sidebar(page).get_by_test_id("stMultiSelect").filter(has_text="Type").locator("input")
    expect(type_box).to_be_disabled()
    expect(sidebar(page)).to_contain_text("Type and Result do not apply on this page")
    # a view narrowed on the Audit Log, then the Security review
    go(page, "Audit Log")
    sidebar(page).get_by_test_id("stRadio").filter(has_text="Result").get_by_text(
        "Failure", exact=True
    ).click()
    sidebar(page).get_by_role("button", name="Apply").click()
    wait_idle(page)
    assert query(page) == {"period": "all", "result": "failed"}
    go(page, "Security review")
    result = sidebar(page).get_by_test_id("stRadio").filter(has_text="Result")
    expect(result.get_by_role("radio", name="Failure")).to_be_checked()
    expect(result.get_by_role("radio", name="Failure")).to_be_disabled()
    expect(type_box).to_be_disabled()
    expect(sidebar(page)).to_contain_text("Type and Result do not apply on this page")
    expect(period_caption(page)).to_contain_text("the sidebar's Type and Result are not applied here")
    assert security_count(page) == everything  # the review reads every type and result
    shot(page, f"security-type-result-{role}")
    # back on the Audit Log they apply again
    go(page, "Audit Log")
    expect(result.get_by_role("radio", name="Failure")).to_be_enabled()
    expect(period_caption(page)).to_contain_text("failed")
    no_errors(page)


# ---------------------------------------------------------------------------------------
# 12a. a failed sign-in keeps the user name and clears only the password


@pytest.mark.browser
def test_a_failed_sign_in_keeps_the_user_name(app, page):
    from playwright.sync_api import expect

    page.goto(app.url())
    name = page.get_by_role("textbox", name="User name")
    password = page.get_by_role("textbox", name="Password")
    name.fill("browser-viewer")
    password.fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_test_id("stAlertContentError")).to_contain_text("Wrong user name or password")
    wait_idle(page)
    expect(name).to_have_value("browser-viewer")
    expect(password).to_have_value("")
    shot(page, "sign-in-failed")
    # the name is there: only the password to type again
    password.fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Audit Log")).to_be_visible()
    expect(sidebar(page)).to_contain_text("Signed in as browser-viewer · viewer")
    no_errors(page)


# ---------------------------------------------------------------------------------------
# (a) a page's address before sign-in: just the sign-in form, then that page


def sign_in_at(page, url: str, user: str) -> None:
    from playwright.sync_api import expect

    page.goto(url)
    expect(page.get_by_role("textbox", name="Password")).to_be_visible()
    wait_idle(page, settle=0.5)
    expect(page.get_by_text("Page not found")).to_have_count(0)
    expect(page.get_by_role("dialog")).to_have_count(0)
    shot(page, f"sign-in-at-{urlsplit(url).path.strip('/') or 'root'}")
    browser_support.sign_in(page, user)
    wait_idle(page)


@pytest.mark.browser
@pytest.mark.parametrize(
    ("path", "role", "heading"),
    [
        ("retention", "admin", "Retention"),
        ("security?period=30d", "viewer", "Security review"),
        ("activity", "auditor", "Activity"),
    ],
)
def test_a_page_address_before_sign_in_shows_the_form_then_the_page(app, page, path, role, heading):
    from playwright.sync_api import expect

    sign_in_at(page, app.url(path), f"browser-{role}")
    expect(page.get_by_test_id("stMain").get_by_role("heading", name=heading, exact=True)).to_be_visible()
    expect(page.get_by_text("Page not found")).to_have_count(0)
    assert urlsplit(page.url).path.strip("/") == path.split("?")[0]
    if "?" in path:
        assert query(page) == {"period": "30d"}
    no_errors(page)


@pytest.mark.browser
def test_retention_address_for_a_viewer_says_it_needs_the_permission(app, page):
    from playwright.sync_api import expect

    sign_in_at(page, app.url("retention"), "browser-viewer")
    main = page.get_by_test_id("stMain")
    expect(main.get_by_test_id("stAlertContentWarning")).to_contain_text("permission to manage retention")
    expect(page.get_by_text("Page not found")).to_have_count(0)
    expect(page.get_by_test_id("stSidebarNav").get_by_role("link", name="Retention")).to_have_count(0)
    shot(page, "retention-viewer")
    no_errors(page)


# ---------------------------------------------------------------------------------------
# Charts on a narrow page: a pair of charts stacks, titles and legends stay clear


def overlap(a: dict, b: dict) -> bool:
    """Whether two bounding boxes share more than a pixel."""
    return (
        a["x"] + 1 < b["x"] + b["width"]
        and b["x"] + 1 < a["x"] + a["width"]
        and a["y"] + 1 < b["y"] + b["height"]
        and b["y"] + 1 < a["y"] + a["height"]
    )


def plotly_chart(page, title: str):
    chart = page.get_by_test_id("stPlotlyChart").filter(has=page.locator(".gtitle", has_text=title))
    chart.locator(".main-svg").first.wait_for()
    chart.scroll_into_view_if_needed()
    return chart


def assert_readable(chart, name: str) -> None:
    """The title is inside the chart, the legend off the plot, the right-hand axis's ticks
    and title clear of the legend."""
    box = chart.bounding_box()
    title = chart.locator(".gtitle").bounding_box()
    assert title["x"] + title["width"] <= box["x"] + box["width"] + 1, f"{name}: title cut at the right"
    plot = chart.locator(".nsewdrag").first.bounding_box()
    legend = chart.locator(".legend")
    if legend.count():
        legend_box = legend.bounding_box()
        assert not overlap(legend_box, plot), f"{name}: the legend covers the plot"
        for part in chart.locator(".g-y2title, .y2tick").all():
            assert not overlap(legend_box, part.bounding_box()), f"{name}: the legend covers the % axis"
    for tick in chart.locator(".y2tick").all():
        t = tick.bounding_box()
        assert t["x"] + t["width"] <= box["x"] + box["width"] + 1, f"{name}: a % tick cut at the right"


@pytest.mark.browser
@pytest.mark.parametrize("width", (1920, *WIDTHS))
def test_chart_pairs_stack_on_a_narrow_page_and_charts_stay_readable(app, page, width):
    """At 800 px with the sidebar open, two charts side by side had 230 px each: titles cut,
    legends over the bars; the failure-rate legend covered its % axis at any narrow width."""
    page.set_viewport_size({"width": width, "height": 1000})
    open_app(page, app.url(), user="browser-auditor")
    # each pair and the window width from which it stands side by side (the Top 10 charts
    # need 640 px each: charts.RANKED_MIN_WIDTH)
    pairs = {
        "Activity": ("Top 10 actors", "Top 10 targets", 1920),
        "Security review": ("by source IP", "by account", 1000),
    }
    for page_title, (first, second, side_by_side_from) in pairs.items():
        go(page, page_title)
        a, b = plotly_chart(page, first), plotly_chart(page, second)
        one, two = a.bounding_box(), b.bounding_box()
        if width < side_by_side_from:  # one above the other, each as wide as the page's text
            assert two["y"] >= one["y"] + one["height"] - 1, f"{page_title}: the charts are side by side"
            assert abs(one["width"] - two["width"]) <= 1 and one["width"] > 400
        else:  # side by side
            assert abs(one["y"] - two["y"]) <= 1 and two["x"] >= one["x"] + one["width"] - 1
        charts = page.get_by_test_id("stMain").get_by_test_id("stPlotlyChart")
        assert charts.count() >= 4
        for i in range(charts.count()):  # every chart of the page, the pair's among them
            chart = charts.nth(i)
            chart.scroll_into_view_if_needed()
            chart.locator(".gtitle").wait_for()
            assert_readable(chart, f"{page_title}, {chart.locator('.gtitle').text_content()}")
    no_errors(page)
    shot(page, "chart-pairs")


CUT_TEXT = """metric => [...metric.querySelectorAll(
    '[data-testid=stMetricLabel], [data-testid=stMetricLabel] *, [data-testid=stMetricValue],'
    + ' [data-testid=stMetricValue] *, [data-testid=stMetricDelta], [data-testid=stMetricDelta] *')]
    .filter(e => e.scrollWidth > e.clientWidth + 1).map(e => e.textContent)"""


def assert_figures_whole(page, where: str) -> int:
    """Every figure (st.metric) of the page shows its label, value and change whole: none runs
    past its box or ends in an ellipsis. Returns how many there are."""
    figures = page.get_by_test_id("stMain").get_by_test_id("stMetric")
    figures.first.wait_for()
    for i in range(figures.count()):
        figure = figures.nth(i)
        cut = figure.evaluate(CUT_TEXT)
        assert not cut, f"{where}: {figure.inner_text()!r} is cut: {cut}"
    return figures.count()


@pytest.mark.browser
@pytest.mark.parametrize("width", WIDTHS)
def test_figures_are_shown_whole_on_a_narrow_page(app, page, width):
    """At 800 px with the sidebar open, four figures in a row had 110 px each: "Successes a…",
    "-2,730 (-3.5…". A row of figures wraps instead (two by two), and the Retention page's
    date is whole."""
    page.set_viewport_size({"width": width, "height": 1000})
    open_app(page, app.url(), user="browser-admin")
    # the figures and how many rows they take at 1440 and at 800 px (a date and time each at 800)
    for page_title, count, rows_by_width in (
        ("Security review", 4, {1440: 1, 800: 2}),
        ("Retention", 3, {1440: 1, 800: 3}),
        ("Activity", 4, {1440: 1, 800: 2}),
    ):
        go(page, page_title)
        assert assert_figures_whole(page, f"{page_title} at {width} px") == count
        figures = page.get_by_test_id("stMain").get_by_test_id("stMetric")
        rows = {round(figures.nth(i).bounding_box()["y"]) for i in range(count)}
        assert len(rows) == rows_by_width[width], f"{page_title} at {width} px: figures in {len(rows)} rows"
    no_errors(page)
    shot(page, "figures")


@pytest.mark.browser
def test_apply_keeps_a_drill_downs_instants(app, page):
    """A chart's bar opens one day as instants (``to`` excluded); the date boxes show it as
    two days. Apply with the boxes untouched (or with only Type changed) keeps that one day:
    it read ``to`` as a whole day and the view doubled."""
    from playwright.sync_api import expect

    one_day = "?period=custom&from=2026-12-03T00:00%2B00:00&to=2026-12-04T00:00%2B00:00&tz=UTC"
    open_app(page, app.url(one_day))
    opened = query(page)
    assert "T00:00" in opened["from"] and "T00:00" in opened["to"], opened
    before = period_caption(page).inner_text()
    assert (date_text(page, "From"), date_text(page, "To")) == ("2026/12/03", "2026/12/04")
    sidebar(page).get_by_role("button", name="Apply").click()
    wait_idle(page)
    assert query(page) == opened
    expect(period_caption(page)).to_have_text(before)
    # a changed box is a day again: From 12-02 counts from that day's start, To keeps its instant
    type_date(page, "From", "20261202")
    sidebar(page).get_by_role("button", name="Apply").click()
    wait_idle(page)
    assert query(page) == opened | {"from": "2026-12-02"}, query(page)
    no_errors(page)


@pytest.mark.browser
def test_a_link_with_impossible_dates_or_period_says_what_it_left_out(app, page):
    """``to`` before ``from`` became "from 5 December to now", and ``period=bogus`` the last 7
    days, without a word; the page now says what the link asked for and what it shows."""
    from playwright.sync_api import expect

    open_app(page, app.url("activity?period=custom&from=2026-12-05&to=2026-12-01"))
    main = page.get_by_test_id("stMain")
    expect(main.get_by_test_id("stAlert")).to_contain_text(
        "The link's To (2026-12-01) is not after its From (2026-12-05): the To was left out."
    )
    open_app(page, app.url("?period=bogus&type=auth,nonsense"))
    alerts = main.get_by_test_id("stAlert")
    expect(alerts.filter(has_text="The link's period 'bogus' is not one of")).to_have_count(1)
    expect(alerts.filter(has_text="The link's type 'nonsense' is not one of its choices")).to_have_count(1)
    # the reader's own choice ends the notes
    sidebar(page).get_by_role("button", name="Apply").click()
    wait_idle(page)
    expect(main.get_by_text("The link's period")).to_have_count(0)
    no_errors(page)

"""The filter panel, searches that do not parse and the sign-in form through AppTest (the
browser versions are in test_browser_sidebar.py)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from conftest import nav_script
from streamlit.testing.v1 import AppTest

from audit_analytics import accounts
from audit_analytics.demo.generate import generate
from audit_analytics.engines.store import open_store

NAV_PAGES = """\
    st.Page("app_pages/explorer.py", title="Audit Log", url_path="audit-log", default=True),
    st.Page("app_pages/activity.py", title="Activity", url_path="activity"),
    st.Page("app_pages/security.py", title="Security review", url_path="security"),
"""
PASSWORD = "a-long-test-password"


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("sidebar")
    url = f"sqlite:///{folder / 'audit.db'}"
    store = open_store(url)
    store.append(generate(1_500, seed=11).events)
    store.engine.dispose()
    return url


@pytest.fixture(scope="module")
def nav_app(tmp_path_factory) -> Path:
    return nav_script(tmp_path_factory.mktemp("sidebar-nav"), NAV_PAGES)


@pytest.fixture
def at(db, nav_app, monkeypatch, as_role):
    monkeypatch.setenv("AUDIT_DB_URL", db)
    return as_role(AppTest.from_file(str(nav_app), default_timeout=60), "auditor")


def main_captions(at) -> list[str]:
    return [c.value for c in at.main.caption]


def no_exceptions(at) -> None:
    assert not at.exception, [e.value for e in at.exception]


# 3 ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("page", ["app_pages/activity.py", "app_pages/security.py"])
def test_the_period_radio_keeps_the_default_period_on_another_page(at, page):
    at.run()
    assert at.radio(key="f_period").value == "7d"
    at.switch_page(page).run()
    no_exceptions(at)
    assert at.radio(key="f_period").value == "7d"
    at.sidebar.button[0].click().run()  # Apply, untouched
    no_exceptions(at)
    assert at.session_state["view"].filter.period == "7d"
    assert "period" not in at.query_params


# 10 -----------------------------------------------------------------------------------------


def test_from_after_to_is_refused_with_a_message(at):
    at.query_params["period"] = "30d"
    at.run()
    at.radio(key="f_period").set_value("custom")
    at.date_input(key="f_start").set_value(date(2026, 11, 25))
    at.date_input(key="f_end").set_value(date(2026, 11, 20))
    at.sidebar.button[0].click().run()
    no_exceptions(at)
    assert [e.value for e in at.sidebar.error] == [
        "From (2026-11-25) is after To (2026-11-20): pick a From on or before the To. The period was not changed."
    ]
    view = at.session_state["view"]
    assert view.filter.period == "30d" and view.filter.start is None
    at.date_input(key="f_start").set_value(date(2026, 11, 20))
    at.date_input(key="f_end").set_value(date(2026, 11, 25))
    at.sidebar.button[0].click().run()
    assert not at.sidebar.error
    view = at.session_state["view"]
    assert (view.filter.period, view.filter.start, view.filter.end) == (
        "custom",
        date(2026, 11, 20),
        date(2026, 11, 25),
    )


# 11 -----------------------------------------------------------------------------------------


def test_security_review_shows_type_and_result_disabled_and_reads_every_event(at):
    at.query_params.update({"period": "all", "type": "backup", "result": "done"})
    at.switch_page("app_pages/security.py").run()
    no_exceptions(at)
    assert at.multiselect(key="f_types").value == ["backup"] and at.multiselect(key="f_types").disabled
    assert at.radio(key="f_result").value == "done" and at.radio(key="f_result").disabled
    caption = next(c for c in main_captions(at) if " events · " in c)
    assert caption.startswith("1,500 events · all time")
    assert "the sidebar's Type and Result are not applied here" in caption
    # the other pages still apply them
    at.switch_page("app_pages/explorer.py").run()
    assert not at.multiselect(key="f_types").disabled and not at.radio(key="f_result").disabled


@pytest.mark.parametrize("page", ["app_pages/activity.py", "app_pages/security.py"])
def test_include_archive_shows_off_where_the_page_leaves_the_archive_out(at, page):
    """Activity and Security review count the database's events: "Include archive" is shown
    disabled there, with a word (it showed on while they left the archive out; the Audit Log
    counted 50,080 and these pages 35,373)."""
    at.query_params.update({"period": "all", "archive": "1"})
    at.switch_page(page).run()
    no_exceptions(at)
    toggle = at.toggle(key="f_archive")
    assert toggle.value is True and toggle.disabled
    assert any("The archive is searched on the Audit Log only" in c.value for c in at.sidebar.caption)
    at.switch_page("app_pages/explorer.py").run()
    assert at.toggle(key="f_archive").value is True and not at.toggle(key="f_archive").disabled
    assert not any("The archive is searched" in c.value for c in at.sidebar.caption)


# 9 and (b) ----------------------------------------------------------------------------------


@pytest.mark.parametrize("page", ["app_pages/explorer.py", "app_pages/activity.py", "app_pages/security.py"])
def test_a_link_whose_search_does_not_parse_shows_the_error_and_nothing_else(at, page):
    at.query_params.update({"period": "all", "q": "ip:999.1.1.1"})
    at.switch_page(page).run()
    no_exceptions(at)
    assert (
        at.main.error[0]
        .value.replace("\\", "")
        .startswith("Search not applied, at character 4: '999.1.1.1' is not an IPv4 or IPv6 address")
    )
    assert not [c for c in main_captions(at) if " events · " in c]
    assert at.query_params["q"] in ("ip:999.1.1.1", ["ip:999.1.1.1"])


def test_a_search_typed_wrong_keeps_the_last_good_one_and_says_why(at):
    at.query_params["period"] = "all"
    at.run()
    total = next(c for c in main_captions(at) if " events · " in c)
    at.text_input(key="f_search").input("ip:999.1.1.1").run()
    no_exceptions(at)
    assert at.main.error[0].value.startswith("Search not applied, at character 4")
    assert next(c for c in main_captions(at) if " events · " in c) == total


# 12a ----------------------------------------------------------------------------------------

SIGN_IN_APP = """
import streamlit as st
from audit_analytics.ui import auth

auth.gate()
st.title("Signed in")
"""


def test_a_failed_sign_in_keeps_the_user_name_and_clears_the_password(db, tmp_path, monkeypatch):
    users = tmp_path / "users.toml"
    store = open_store(db)
    accounts.add_user(users, "vic", "viewer", PASSWORD, actor="setup", store=store)
    store.engine.dispose()
    monkeypatch.setenv("AUDIT_DB_URL", db)
    monkeypatch.setenv("AUDIT_USERS_FILE", str(users))
    script = tmp_path / "app.py"
    script.write_text(SIGN_IN_APP)
    at = AppTest.from_file(str(script), default_timeout=60).run()
    at.text_input(key="signin_user").input("vic")
    at.text_input(key="signin_password").input("wrong")
    at.button[0].click().run()
    no_exceptions(at)
    assert [e.value for e in at.error] == ["Wrong user name or password."]
    assert at.text_input(key="signin_user").value == "vic"
    assert at.text_input(key="signin_password").value == ""
    at.text_input(key="signin_password").input(PASSWORD)
    at.button[0].click().run()
    no_exceptions(at)
    assert [t.value for t in at.title] == ["Signed in"]
    assert not at.error


def test_leaving_a_page_with_an_unreadable_link_search_drops_it_from_the_address(at):
    at.query_params.update({"period": "all", "q": "ip:999.1.1.1"})
    at.switch_page("app_pages/explorer.py").run()
    assert at.main.error
    at.query_params.clear()  # the sidebar's navigation drops the query string
    at.switch_page("app_pages/activity.py").run()
    no_exceptions(at)
    assert "q" not in at.query_params and not at.main.error
    assert [c for c in main_captions(at) if " events · " in c]

"""Sign-in, permissions and the retention page through AppTest.

The app script here does what app.py does (gate, then st.navigation over the real pages).
A permission matrix checks each identity against each page and action.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from conftest import shown_tables
from streamlit.testing.v1 import AppTest

from audit_analytics import accounts
from audit_analytics.accounts import NO_ADMIN_PERMISSION, NO_READ_PERMISSION
from audit_analytics.demo.generate import generate
from audit_analytics.engines.store import open_store

ROOT = Path(__file__).resolve().parents[1]
EXPLORER = ROOT / "app_pages" / "explorer.py"
RETENTION = ROOT / "app_pages" / "retention.py"
PASSWORD = "a-long-test-password"

APP = f"""
import streamlit as st
from audit_analytics.accounts import has_permission
from audit_analytics.ui import auth

st.set_page_config(page_title="Audit Analytics", layout="wide")
user = auth.gate()
pages = [st.Page({str(EXPLORER)!r}, title="Audit Log", url_path="audit-log", default=True)]
if has_permission(user, "audit.admin"):
    pages.append(st.Page({str(RETENTION)!r}, title="Retention", url_path="retention"))
st.navigation(pages).run()
"""


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """A database with events and an accounts file, built once and copied per test."""
    base = tmp_path_factory.mktemp("auth-template")
    store = open_store(f"sqlite:///{base / 'audit.db'}")
    store.append(generate(2_000, seed=3, now=datetime.now(UTC), days=500).events)
    users = base / "users.toml"
    for name, role in (("vic", "viewer"), ("aud", "auditor"), ("ada", "admin")):
        accounts.add_user(users, name, role, PASSWORD, actor="setup", store=store)
    accounts.map_oidc(users, "grace@corp.example", "auditor", actor="setup", store=store)
    with store.engine.begin() as conn:  # start each test with no records of the tool's own use
        conn.execute(store.table.delete().where(store.table.c.id.like("aa-%")))
    store.engine.dispose()
    return base


@pytest.fixture
def env(tmp_path, monkeypatch, template):
    shutil.copy(template / "audit.db", tmp_path / "audit.db")
    shutil.copy(template / "users.toml", tmp_path / "users.toml")
    db = f"sqlite:///{tmp_path / 'audit.db'}"
    store = open_store(db)
    users = tmp_path / "users.toml"
    monkeypatch.setenv("AUDIT_DB_URL", db)
    monkeypatch.setenv("AUDIT_USERS_FILE", str(users))
    monkeypatch.setenv("AUDIT_RETENTION_POLICY", str(tmp_path / "retention.toml"))
    (tmp_path / "retention.toml").write_text(f'archive = "{tmp_path / "archive"}"\n')
    app = tmp_path / "app.py"
    app.write_text(APP)
    return {"store": store, "app": app, "users": users, "tmp": tmp_path}


def make(path, *, user=None, oidc=False, claims=None) -> AppTest:
    at = AppTest.from_file(str(path), default_timeout=60)
    if user:
        at.session_state["aa_user"] = user
    if oidc:
        at.secrets["auth"] = {
            "redirect_uri": "http://localhost:8501/oauth2callback",
            "cookie_secret": "test-cookie-secret",
            "client_id": "id",
            "client_secret": "secret",
            "server_metadata_url": "https://idp.example/.well-known/openid-configuration",
        }
    at.user = claims if claims is not None else {}
    return at


def texts(at) -> str:
    parts = [
        e.value
        for kind in ("markdown", "caption", "warning", "error", "info", "title")
        for e in getattr(at, kind)
    ]
    return "\n".join(str(p) for p in parts)


def shows_events(at) -> bool:
    return any(" event" in c.value and "·" in c.value for c in at.caption) or len(shown_tables(at)) > 0


def own(store, type_) -> pl.DataFrame:
    frame = store.load().filter(pl.col("id").str.starts_with("aa-") & (pl.col("type") == type_))
    return frame.sort("time", "id")


def sign_in(at, name, password):
    at.text_input(key="signin_user").input(name)
    at.text_input(key="signin_password").input(password)
    at.button[0].click().run()
    return at


# ---------------------------------------------------------------------------------------


def test_without_auth_config_the_local_form_is_used_and_nothing_is_shown(env):
    at = make(env["app"]).run()
    assert not at.exception
    assert [t.key for t in at.text_input] == ["signin_user", "signin_password"]
    assert not [b for b in at.button if b.key == "sign_in_sso"]
    assert not shows_events(at)


def test_with_auth_config_single_sign_on_is_offered(env):
    at = make(env["app"], oidc=True, claims={"is_logged_in": False}).run()
    assert not at.exception
    assert [b.key for b in at.button if b.key == "sign_in_sso"] == ["sign_in_sso"]
    assert not shows_events(at)


def test_oidc_user_role_comes_from_the_mapping_and_the_sign_in_is_recorded(env):
    claims = {"is_logged_in": True, "email": "grace@corp.example", "name": "Grace"}
    at = make(env["app"], oidc=True, claims=claims).run()
    assert not at.exception
    assert shows_events(at)
    assert "auditor" in texts(at)
    at.run()  # one record per session, not per rerun
    logins = own(env["store"], "auth").filter(pl.col("action") == "login")
    assert logins.select("actor", "result").rows() == [("grace@corp.example", "done")]


def test_unmapped_oidc_user_gets_the_no_permission_message(env):
    claims = {"is_logged_in": True, "email": "stranger@else.example"}
    at = make(env["app"], oidc=True, claims=claims).run()
    assert not at.exception
    assert [w.value for w in at.warning] == [NO_READ_PERMISSION]
    assert not shows_events(at)


def test_sign_in_through_the_form(env):
    at = make(env["app"]).run()
    sign_in(at, "vic", "wrong-password")
    assert not at.exception
    assert [e.value for e in at.error] == ["Wrong user name or password."]
    assert not shows_events(at)
    sign_in(at, "vic", PASSWORD)
    assert not at.exception
    assert shows_events(at)
    assert at.session_state["actor"] == "vic"
    auth = own(env["store"], "auth")
    assert auth.select("actor", "action", "result").rows() == [
        ("vic", "login", "failed"),
        ("vic", "login", "done"),
    ]
    # signing out is recorded and shows the form again
    at.button(key="sign_out").click().run()
    assert not shows_events(at)
    assert own(env["store"], "auth")["action"].to_list()[-1] == "logout"


def test_five_failures_lock_the_form(env):
    at = make(env["app"]).run()
    for attempt in range(accounts.MAX_FAILURES):
        sign_in(at, "aud", f"nope-{attempt}")
    assert "locked" in at.error[0].value
    sign_in(at, "aud", PASSWORD)
    assert "locked" in at.error[0].value and not shows_events(at)
    assert own(env["store"], "auth").filter(pl.col("action") == "lock").height == 1


def test_removed_account_is_signed_out(env):
    at = make(env["app"], user="vic").run()
    assert shows_events(at)
    accounts.remove_user(env["users"], "vic", actor="ada", store=env["store"])
    at.run()
    assert not shows_events(at) and at.text_input(key="signin_user")


IDENTITIES = {
    "anonymous": {},
    "oidc-no-role": {"claims": {"is_logged_in": True, "email": "x@else.example"}, "oidc": True},
    "viewer": {"user": "vic"},
    "auditor": {"user": "aud"},
    "admin": {"user": "ada"},
    "oidc-auditor": {"claims": {"is_logged_in": True, "email": "grace@corp.example"}, "oidc": True},
}
#                      reads  exports  retention
MATRIX = {
    "anonymous": (False, False, False),
    "oidc-no-role": (False, False, False),
    "viewer": (True, False, False),
    "auditor": (True, True, False),
    "admin": (True, True, True),
    "oidc-auditor": (True, True, False),
}


@pytest.mark.parametrize("who", list(MATRIX))
def test_permission_matrix(env, who):
    reads, exports, administers = MATRIX[who]
    at = make(env["app"], **IDENTITIES[who]).run()
    assert not at.exception, [e.value for e in at.exception]
    assert shows_events(at) == reads
    if who != "anonymous" and not reads:
        assert [w.value for w in at.warning] == [NO_READ_PERMISSION]
    if reads:
        export = at.button(key="export_open")
        assert export.disabled == (not exports)
        if not exports:
            assert "auditor" in (export.help or "")
    # the retention page is listed for admins only ...
    if reads:
        relative = os.path.relpath(RETENTION, env["app"].parent)
        if administers:
            at.switch_page(relative).run()
            assert any(s.value == "Dry run" for s in at.subheader)
        else:
            with pytest.raises(ValueError, match="not a registered page|registered"):
                at.switch_page(relative)
    # ... and guards itself when opened directly (as Streamlit serves pages/ before any
    # session has called st.navigation)
    page = make(RETENTION, **IDENTITIES[who]).run()
    assert not page.exception, [e.value for e in page.exception]
    shows_plan = any(s.value == "Dry run" for s in page.subheader)
    assert shows_plan == administers
    if who != "anonymous" and not administers:
        assert [w.value for w in page.warning] == [NO_ADMIN_PERMISSION]
    if who == "anonymous":
        assert page.text_input(key="signin_user")


def test_explorer_opened_directly_needs_sign_in(env):
    page = make(EXPLORER).run()
    assert not page.exception, [e.value for e in page.exception]
    assert not shows_events(page)
    assert page.text_input(key="signin_user")


def test_retention_page_runs_and_records(env):
    page = make(RETENTION, user="ada").run()
    assert not page.exception
    plan = page.dataframe[0].value
    due = int(plan["To delete"].sum())
    assert due > 0
    page.checkbox(key="retention_confirm").check().run()
    page.button(key="retention_run").click().run()
    assert not page.exception
    assert any("deleted" in s.value for s in page.success)
    runs = own(env["store"], "audit").filter(pl.col("action") == "retention")
    assert runs.select("actor", "result").rows() == [("ada", "done")]
    page.run()
    assert any(s.value == "Last runs and policy changes" for s in page.subheader)
    assert page.dataframe[-1].value["Action"].to_list() == ["retention"]


@pytest.mark.parametrize("meanwhile", ["policy changed in another tab", "old events imported"])
def test_a_retention_run_deletes_no_more_than_was_confirmed(env, meanwhile):
    """The admin ticks "Archive and delete N events"; by the click on Run another admin has
    shortened the policy (or old events were imported): nothing is archived or deleted, the
    page says why and asks for a new tick (a run deleted 14,705 events after 1,081 were
    confirmed). Then, ticked again, the run deletes what the new dry run shows."""
    from audit_analytics.io.retention import load_policy, save_policy

    page = make(RETENTION, user="ada").run()
    before = env["store"].count()
    page.checkbox(key="retention_confirm").check().run()
    due = int(page.dataframe[0].value["To delete"].sum())
    assert due > 0
    if meanwhile.startswith("policy"):
        policy = load_policy()
        shorter = {"security": policy.group_days["security"], "operational": 7}
        save_policy(None, replace(policy, group_days=shorter), actor="bob", store=env["store"], via="test")
    else:
        old = (
            env["store"]
            .load()
            .sort("time")
            .head(3)
            .with_columns((pl.col("id") + "-copy").alias("id"), pl.col("time") - timedelta(days=3))
        )
        env["store"].append(old.with_columns(pl.lit("service").alias("type")))
    grown = env["store"].count()
    page.button(key="retention_run").click().run()
    assert not page.exception, [e.value for e in page.exception]
    assert [e.value for e in page.error][0].startswith("The run did not happen: ")
    assert "nothing was archived or deleted" in page.error[0].value
    assert env["store"].count() == grown  # nothing deleted
    assert page.checkbox(key="retention_confirm").value is False
    # the fresh dry run, ticked again, runs
    due_now = int(page.dataframe[0].value["To delete"].sum())
    assert due_now > due
    page.checkbox(key="retention_confirm").check().run()
    page.button(key="retention_run").click().run()
    assert any(f"deleted {due_now:,} events" in s.value for s in page.success), [
        s.value for s in page.success
    ]
    assert env["store"].count() < before


def test_a_policy_file_the_page_cannot_use_is_named_and_mended_from_the_form(env):
    """1,000,000 days (a cutoff before the year 1) saved through the form crashed every later
    visit with a traceback, the form under it out of reach. Now the form refuses more than
    100 years, and a file holding them is named with the reason above a form that mends it."""
    policy_path = env["tmp"] / "retention.toml"
    policy_path.write_text(f'archive = "{env["tmp"] / "archive"}"\n[days]\noperational = 1000000\n')
    page = make(RETENTION, user="ada").run()
    assert not page.exception, [e.value for e in page.exception]
    assert "The policy file cannot be used" in page.error[0].value
    assert "at most 36,500" in page.error[0].value
    assert not any(s.value == "Dry run" for s in page.subheader)  # nothing planned on it
    next(b for b in page.button if "Save" in str(b.label)).click().run()
    assert not page.exception, [e.value for e in page.exception]
    assert "1000000" not in policy_path.read_text()
    assert any(s.value == "Dry run" for s in page.subheader)
    assert any(s.value.startswith("Saved to ") for s in page.success)  # shown after the page reloads


def test_the_policy_form_says_what_it_did(env):
    page = make(RETENTION, user="ada").run()
    save = next(b for b in page.button if "Save" in str(b.label))
    save.click().run()
    assert [i.value for i in page.info] == ["The policy is unchanged: nothing to save."]
    page.text_input(key="pol_archive").set_value("/proc/nope/archive")
    next(b for b in page.button if "Save" in str(b.label)).click().run()
    shown = page.error[0].value.replace("\\", "") if page.error else ""  # markdown escapes taken off
    assert "the archive directory /proc/nope/archive cannot be created" in shown
    assert "/proc/nope" not in (env["tmp"] / "retention.toml").read_text()


def test_retention_page_policy_change_is_recorded(env):
    page = make(RETENTION, user="ada").run()
    page.number_input(key="pol_operational").set_value(30)
    page.multiselect(key="pol_hold_types").set_value(["secret"])
    next(b for b in page.button if "Save" in str(b.label)).click().run()
    assert not page.exception, [e.value for e in page.exception]
    changes = own(env["store"], "audit").filter(pl.col("action") == "policy_change")
    assert changes.select("actor").rows() == [("ada",)]
    saved = (env["tmp"] / "retention.toml").read_text()
    assert "operational = 30" in saved and '"secret"' in saved

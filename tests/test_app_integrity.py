"""The Integrity page through AppTest, inside the real app.py: the chain head, Verify now on a
clean and on a tampered store, what is recorded, and who may open it (the browser version is
in test_browser_integrity.py)."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

import pandas as pd
import polars as pl
import pytest
from streamlit.testing.v1 import AppTest

from audit_analytics.accounts import NO_ADMIN_PERMISSION
from audit_analytics.demo.generate import generate
from audit_analytics.engines.store import open_store
from audit_analytics.integrity import VERIFY_ACTION
from audit_analytics.textsafe import md_escape
from audit_analytics.ui.integrity import problems_table

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
PAGE = "app_pages/integrity.py"
HOSTILE_ID = "evt-[click](http://evil.example)*x*<b>bold</b>"


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """A database of demo events plus one event with a hostile id, built once."""
    folder = tmp_path_factory.mktemp("integrity-template")
    store = open_store(f"sqlite:///{folder / 'audit.db'}")
    events = generate(2_000, seed=5).events
    store.append(events)
    store.append(events.head(1).with_columns(pl.lit(HOSTILE_ID).alias("id")))
    store.engine.dispose()
    return folder / "audit.db"


@pytest.fixture
def store(template, tmp_path, monkeypatch):
    shutil.copy(template, tmp_path / "audit.db")
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    monkeypatch.setenv("AUDIT_DB_URL", url)
    monkeypatch.setenv("AUDIT_RETENTION_POLICY", str(tmp_path / "retention.toml"))
    s = open_store(url)
    yield s
    s.engine.dispose()


def page_as(as_role, role: str, *, mode: str = "memory", monkeypatch=None) -> AppTest:
    if monkeypatch is not None:
        monkeypatch.setenv("AUDIT_ENGINE", mode)
    at = as_role(AppTest.from_file(APP, default_timeout=120), role)
    at.switch_page(PAGE)
    return at.run()


def no_exceptions(at) -> None:
    assert not at.exception, [e.value for e in at.exception]


def verifications(store) -> pl.DataFrame:
    frame = store.load().filter(
        (pl.col("type").cast(pl.String) == "audit") & (pl.col("action") == VERIFY_ACTION)
    )
    return frame.sort("time")


def verify_now(at) -> AppTest:
    at.button(key="integrity_verify").click().run()
    no_exceptions(at)
    return at


def tamper(store, event_id: str) -> None:
    with store.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE audit_events SET actor = 'mallory' WHERE id = ?", (event_id,))


def a_demo_id(store) -> str:
    return store.load().filter(pl.col("id").str.starts_with("evt-") & (pl.col("id") != HOSTILE_ID))["id"][7]


def rendered(at) -> str:
    """Everything the page drew as markdown (titles, captions, alerts, markdown)."""
    kinds = ("markdown", "caption", "success", "error", "warning", "info", "title", "subheader")
    return "\n".join(str(e.value) for kind in kinds for e in getattr(at, kind))


# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["memory", "pushdown"])
def test_an_admin_sees_the_head_and_verifies_a_clean_store(store, as_role, monkeypatch, mode):
    at = page_as(as_role, "admin", mode=mode, monkeypatch=monkeypatch)
    no_exceptions(at)
    assert [t.value for t in at.title] == ["Integrity"]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Latest batch"] == "2"  # the demo events, then the hostile one
    assert metrics["Events stored"] == "2,001"
    assert any("No verification recorded yet" in c.value for c in at.caption)
    assert verifications(store).height == 0

    verify_now(at)
    assert [s.value for s in at.subheader] == ["Chain head", "This verification"]
    assert len(at.success) == 1 and not at.error
    assert at.success[0].value.startswith("verified")
    assert not at.dataframe  # no problems, no table
    # the truncated-tail note and the commands that cover it
    assert any("checkpoint kept outside the database" in c.value for c in at.caption)
    code = "\n".join(c.value for c in at.code)
    assert "audit-analytics integrity checkpoint --append FILE" in code
    assert "audit-analytics integrity verify --checkpoint FILE" in code
    # recorded, by the signed-in admin, from the app
    recorded = verifications(store)
    assert recorded.select("actor", "result").rows() == [("tester", "done")]
    params = json.loads(recorded["params"][0])
    assert params["via"] == "app" and params["ok"] is True
    # the head now includes the verification's own event
    assert {m.label: m.value for m in at.metric}["Latest batch"] == "3"

    # on the next run, it is the last verification
    at.run()
    no_exceptions(at)
    assert [s.value for s in at.subheader] == ["Chain head", "Last verification"]
    assert at.success[0].value.startswith("verified")
    assert any("by **tester**" in c.value and "app" in c.value for c in at.caption)


def test_a_tampered_event_fails_and_is_named(store, as_role):
    victim = a_demo_id(store)
    tamper(store, victim)
    at = page_as(as_role, "admin")
    verify_now(at)
    assert not at.success
    assert len(at.error) == 1 and at.error[0].value.startswith("NOT verified")
    problems = at.dataframe[0].value
    assert problems.columns.tolist() == ["Kind", "Batch", "Events", "First ids", "Message", "Open"]
    assert problems.to_dict("records") == [
        {
            "Kind": "edited",
            "Batch": 1,
            "Events": 1,
            "First ids": victim,
            "Message": f"batch 1: 1 event(s) changed since they were stored: {victim}",
            "Open": f"./?period=all&event={victim}",
        }
    ]
    recorded = verifications(store)
    assert recorded.select("actor", "result").rows() == [("tester", "failed")]
    assert json.loads(recorded["params"][0])["problems"][0]["ids"] == [victim]
    # read back as the last verification, the problem is still there
    at.run()
    assert at.error[0].value.startswith("NOT verified")
    assert at.dataframe[0].value["First ids"].tolist() == [victim]


def test_a_failed_verification_reads_the_log_again(store, as_role):
    """The app holds the events in memory as they were loaded; an edit behind its back keeps
    the table's size and newest time, so nothing else makes it read them again. After a
    verification names edited events, the Audit Log (its "open first event" link) must show
    them as they are stored now (CI caught the link opening the old actor)."""
    from audit_analytics.ui.data import current_shared

    at = page_as(as_role, "admin")  # signed in: the app holds the events
    victim = a_demo_id(store)
    before = current_shared().index.get(victim)["actor"]
    tamper(store, victim)
    at.run()
    assert current_shared().index.get(victim)["actor"] == before != "mallory"  # held as it was
    verify_now(at)
    assert at.error[0].value.startswith("NOT verified")
    assert current_shared().index.get(victim)["actor"] == "mallory"


def test_a_hostile_id_is_shown_as_plain_text(store, as_role):
    tamper(store, HOSTILE_ID)
    with store.engine.begin() as conn:  # and a deleted event, so two problems
        conn.exec_driver_sql("DELETE FROM audit_events WHERE id = ?", (a_demo_id(store),))
    at = page_as(as_role, "admin")
    verify_now(at)
    problems = at.dataframe[0].value
    assert sorted(problems["Kind"]) == ["deleted", "edited"]
    edited = problems[problems["Kind"] == "edited"].iloc[0]
    assert edited["First ids"] == HOSTILE_ID
    # the link carries the id URL-encoded: it opens that event, and nothing else of the URL
    assert edited["Open"] == "./?" + urlencode({"period": "all", "event": HOSTILE_ID})
    assert pd.isna(problems[problems["Kind"] == "deleted"].iloc[0]["Open"])
    assert HOSTILE_ID in edited["Message"]
    # nothing the page drew as markdown carries the id (it would become a link and bold text)
    drawn = rendered(at)
    assert "](http" not in drawn and "<b>" not in drawn and "evil" not in drawn


def test_an_imported_event_posing_as_a_verification_is_not_the_last_one(store, as_role):
    forged = (
        generate(1_000, seed=9)
        .events.head(1)
        .with_columns(
            pl.lit("evt-forged-verification").alias("id"),
            pl.lit("audit").cast(store.load().schema["type"]).alias("type"),
            pl.lit(VERIFY_ACTION).alias("action"),
            pl.lit("mallory").alias("actor"),
            pl.lit(datetime.now(UTC) + timedelta(days=365)).alias("time"),
            pl.lit(json.dumps({"ok": True, "summary": "verified: all fine", "problems": []})).alias("params"),
        )
    )
    store.append(forged)
    victim = a_demo_id(store)
    tamper(store, victim)
    at = page_as(as_role, "admin")
    no_exceptions(at)
    assert any("No verification recorded yet" in c.value for c in at.caption)
    assert not at.success
    verify_now(at)
    at.run()  # read back: the app's own record, not the forged one dated next year
    assert at.error[0].value.startswith("NOT verified")
    assert "mallory" not in rendered(at)


@pytest.mark.parametrize("role", ["viewer", "auditor"])
def test_viewers_and_auditors_cannot_open_it(store, as_role, role):
    at = page_as(as_role, role)
    no_exceptions(at)
    assert [w.value for w in at.warning] == [NO_ADMIN_PERMISSION]
    assert "integrity" in NO_ADMIN_PERMISSION  # this page's own subject (it said "retention and settings")
    assert not at.metric and not at.success and not at.error
    assert not [b for b in at.button if b.key == "integrity_verify"]
    assert verifications(store).height == 0
    # opened directly (Streamlit may serve the file without app.py) it guards itself too
    direct = as_role(AppTest.from_file(str(ROOT / PAGE), default_timeout=60), role).run()
    no_exceptions(direct)
    assert [w.value for w in direct.warning] == [NO_ADMIN_PERMISSION]
    assert not [b for b in direct.button if b.key == "integrity_verify"]
    assert verifications(store).height == 0


def test_before_sign_in_it_shows_the_sign_in_form(store):
    at = AppTest.from_file(str(ROOT / PAGE), default_timeout=60).run()
    no_exceptions(at)
    assert at.text_input(key="signin_user")
    assert not at.metric
    assert verifications(store).height == 0


def test_a_database_failure_during_the_run_is_a_message_not_a_traceback(store, as_role, monkeypatch):
    import sqlalchemy as sa

    from audit_analytics import integrity

    def failing(*args, **kwargs):
        raise sa.exc.OperationalError("SELECT seq FROM audit_chain", {}, Exception("disk I/O error"))

    at = page_as(as_role, "admin")
    monkeypatch.setattr(integrity, "verify", failing)
    verify_now(at)
    assert [e.value for e in at.error] == [
        "The audit database cannot be reached: could not read the hash chain from "
        + md_escape(store.safe_url)
        + " \\(OperationalError\\)"
    ]
    assert at.button(key="retry_store")
    assert not at.success and verifications(store).height == 0


@pytest.mark.parametrize(
    ("problem", "expected"),
    [
        pytest.param(
            {"kind": "edited", "batch": 3, "count": 1, "ids": ["e1"], "message": "m"},
            ("edited", 3, 1, "e1", "m", "./?period=all&event=e1"),
            id="one-id",
        ),
        pytest.param(
            {"kind": "deleted", "batch": 1, "count": 7, "ids": [f"e{i}" for i in range(7)], "message": "m"},
            ("deleted", 1, 7, "e0, e1, e2, e3, e4 and 2 more", "m", None),
            id="more-ids-than-shown",
        ),
        pytest.param(
            # recorded problems keep 20 ids; the count stays exact
            {
                "kind": "inserted",
                "batch": None,
                "count": 500,
                "ids": [f"e{i}" for i in range(20)],
                "message": "m",
            },
            ("inserted", None, 500, "e0, e1, e2, e3, e4 and 495 more", "m", "./?period=all&event=e0"),
            id="recorded-ids-cut",
        ),
        pytest.param(
            {"kind": "truncated", "batch": 9, "count": 0, "ids": [], "message": "tail removed"},
            ("truncated", 9, 0, "", "tail removed", None),
            id="no-ids",
        ),
        pytest.param(
            {"kind": "edited", "batch": 1, "count": 1, "ids": ["e\x1b[31m\u202e"], "message": "x\ny"},
            (
                "edited",
                1,
                1,
                "e\\x1b[31m\\u202e",
                "x\\ny",
                "./?" + urlencode({"period": "all", "event": "e\x1b[31m\u202e"}),
            ),
            id="controls-made-visible",
        ),
    ],
)
def test_problems_table(problem, expected):
    result = problems_table([problem])
    assert result.columns == ["Kind", "Batch", "Events", "First ids", "Message", "Open"]
    assert result.row(0) == expected


def test_verify_now_reads_archived_events_back_from_the_policy_s_archive(store, as_role, tmp_path):
    """As `audit-analytics integrity verify` does by default: the page said "pass the archive to
    check the archived events themselves", and had no way to pass it."""
    from audit_analytics.io.retention import Policy, apply, save_policy

    archive = tmp_path / "archive"
    policy = Policy(group_days={"security": 1, "operational": 1}, archive=str(archive))
    save_policy(None, policy, actor="tester", store=store, via="test")
    run = apply(store, policy, actor="tester", via="test")
    assert run.archived > 0
    at = verify_now(page_as(as_role, "admin"))
    assert len(at.success) == 1 and not at.error
    assert f"{run.archived:,} of them read back from the archive" in at.success[0].value
    assert not any("pass the archive" in c.value for c in at.caption)

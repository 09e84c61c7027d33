"""Every page in both engine modes (in memory and pushdown) through AppTest, and the
Activity page above the memory limit (it drew no chart for any period once: its retention
summary loaded the whole table; then it refused a period larger than the limit).

The pages run inside app.py as an admin (so Retention is there too), on one demo database.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import APP_PAGES
from streamlit.testing.v1 import AppTest

from audit_analytics.demo.generate import generate
from audit_analytics.engines.store import open_store

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
ACTIVITY_CHARTS = 8


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('modes') / 'audit.db'}"
    store = open_store(url)
    store.append(generate(3_000, seed=21).events)
    store.engine.dispose()
    return url


def page_at(monkeypatch, as_role, tmp_path, db: str, page: str, *, mode: str, limit: int | None = None):
    monkeypatch.setenv("AUDIT_DB_URL", db)
    monkeypatch.setenv("AUDIT_ENGINE", mode)
    monkeypatch.setenv("AUDIT_RETENTION_POLICY", str(tmp_path / "retention.toml"))
    if limit is not None:
        monkeypatch.setenv("AUDIT_MEMORY_LIMIT", str(limit))
    at = as_role(AppTest.from_file(APP, default_timeout=120), "admin")
    at.switch_page(page)
    return at


@pytest.mark.parametrize("mode", ["memory", "pushdown"])
@pytest.mark.parametrize("page", list(APP_PAGES))
@pytest.mark.parametrize("period", ["7d", "all"])
def test_every_page_runs_in_both_engine_modes(db, monkeypatch, as_role, tmp_path, mode, page, period):
    at = page_at(monkeypatch, as_role, tmp_path, db, page, mode=mode)
    at.query_params["period"] = period
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert [t.value for t in at.title] == [APP_PAGES[page]]
    # the only error a page may show here is a finding (a password that may have been guessed)
    problems = [e.value for e in at.error if "password may have been guessed" not in e.value]
    assert not problems, problems
    assert at.caption, "the page drew no caption"


@pytest.mark.parametrize("period", ["7d", "all"])
def test_activity_above_the_memory_limit_draws_every_period(db, monkeypatch, as_role, tmp_path, period):
    """The table (3,000+ events) is above the limit: seven whole days are below it (held in
    memory) and all time is above it (counted in the database; the page said to narrow the
    period before). Either way every chart draws, the same as in memory, and the retention
    summary covers the whole table."""
    drawn = {}
    for mode, limit in (("memory", None), ("pushdown", 1_000)):
        at = page_at(monkeypatch, as_role, tmp_path, db, "app_pages/activity.py", mode=mode, limit=limit)
        if period == "7d":
            # seven whole days that have ended: a period still running compares with the period
            # before up to the run's own clock, which two runs seconds apart do not share
            today = datetime.now(UTC).date()
            at.query_params.update(
                {
                    "period": "custom",
                    "from": str(today - timedelta(days=7)),
                    "to": str(today - timedelta(days=1)),
                }
            )
        else:
            at.query_params["period"] = period
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        assert not at.warning, [w.value for w in at.warning]
        drawn[mode] = {
            c.proto.id.rsplit("-", 1)[-1]: json.loads(c.proto.spec)["data"] for c in at.get("plotly_chart")
        }
    # all time has no period before it to compare with: one chart fewer
    assert len(drawn["pushdown"]) == ACTIVITY_CHARTS - (period == "all")
    assert drawn["pushdown"] == drawn["memory"]
    store = open_store(db)
    try:
        total = store.count()
    finally:
        store.engine.dispose()
    retention = drawn["pushdown"]["activity_retention"]
    assert (
        sum(sum(trace["x"] if isinstance(trace["x"][0], int) else trace["y"]) for trace in retention) == total
    )


def test_the_run_log_has_a_line_per_page_run_with_its_page_and_time(db, monkeypatch, as_role, tmp_path):
    runs = tmp_path / "runs.jsonl"
    at = page_at(monkeypatch, as_role, tmp_path, db, "app_pages/explorer.py", mode="memory")
    at.run()  # not logged: AUDIT_RUN_LOG is not set
    assert not runs.exists()
    monkeypatch.setenv("AUDIT_RUN_LOG", str(runs))
    began = time.time()
    at.switch_page("app_pages/activity.py").run()
    at.switch_page("app_pages/security.py").run()
    at.switch_page("app_pages/explorer.py").run()
    ended = time.time()
    assert not at.exception, [e.value for e in at.exception]
    lines = [json.loads(line) for line in runs.read_text().splitlines()]
    assert [line["page"] for line in lines] == ["activity", "security", "audit-log"]
    for line in lines:
        assert began <= line["started"] <= line["started"] + line["seconds"] <= ended
    assert lines[0]["started"] + lines[0]["seconds"] <= lines[1]["started"]  # one after the other

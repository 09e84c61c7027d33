"""The pages and the CLI give the same security and activity figures for the same filter on the
same data, in both engine modes (pushdown with a memory limit below the table, so the SQL paths
answer). Both go through audit_analytics.analysis.review; this proves nothing was left on one side."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from audit_analytics.analysis.security import DETECTIONS
from audit_analytics.cli.main import main
from audit_analytics.demo.generate import generate
from audit_analytics.engines.store import open_store

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
SQL_RULES = [rule for rule, d in DETECTIONS.items() if d.in_sql]


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('agree') / 'audit.db'}"
    store = open_store(url)
    store.append(generate(3_000, seed=31).events)
    store.engine.dispose()
    return url


def cli_json(*args: str) -> list[dict]:
    out = io.StringIO()
    with redirect_stdout(out):
        assert main([*args, "--format", "json"]) == 0
    return json.loads(out.getvalue())


def page(monkeypatch, as_role, file: str, period: str):
    at = as_role(AppTest.from_file(APP, default_timeout=120), "auditor")
    at.switch_page(file)
    at.query_params["period"] = period
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def chart(at, key: str) -> list[dict]:
    found = next(c for c in at.get("plotly_chart") if c.proto.id.endswith(f"-{key}"))
    return json.loads(found.proto.spec)["data"]


@pytest.mark.parametrize(("mode", "limit"), [("memory", "5000000"), ("pushdown", "1000")])
def test_pages_and_cli_give_the_same_figures(db, monkeypatch, as_role, mode, limit):
    monkeypatch.setenv("AUDIT_DB_URL", db)
    monkeypatch.setenv("AUDIT_ENGINE", mode)
    monkeypatch.setenv("AUDIT_MEMORY_LIMIT", limit)

    # -- security, all time (above the limit in pushdown mode: the SQL paths) ----------------
    sec = page(monkeypatch, as_role, "app_pages/security.py", "all")
    metrics = {m.label: int(m.value.replace(",", "")) for m in sec.metric}
    by_ip = cli_json("security", "by-ip", "--period", "all", "--top", "0")
    assert sum(r["failures"] for r in by_ip) == metrics["Login failures"] > 0
    assert len(by_ip) == metrics["Distinct IPs"]
    headings = {s.value.split(" · ")[0]: s.value for s in sec.subheader if " · " in s.value}
    for rule in SQL_RULES:
        title = DETECTIONS[rule].title
        on_page = int(headings[title].split(" · ")[1].split(" ")[0].replace(",", ""))
        assert len(cli_json("security", DETECTIONS[rule].cli_name, "--period", "all")) == on_page, rule

    # -- activity, last 7 days (fits the limit in both modes) -------------------------------
    act = page(monkeypatch, as_role, "app_pages/activity.py", "7d")
    actors = cli_json("activity", "actors", "--period", "7d")
    bars = chart(act, "activity_actors")  # one trace per category; labels "rank. actor"
    on_page: dict[str, int] = {}
    for trace in bars:
        for label, n in zip(trace["y"], trace["x"], strict=True):
            name = str(label).split(". ", 1)[1]
            on_page[name] = on_page.get(name, 0) + int(n)
    assert on_page and on_page == {r["actor"]: r["total"] for r in actors}
    retention = cli_json("activity", "retention", "--period", "all")
    drawn = sum(int(n) for t in chart(act, "activity_retention") for n in t["y"])
    store = open_store(db)
    try:
        assert sum(r["events"] for r in retention) == drawn == store.count()
    finally:
        store.engine.dispose()

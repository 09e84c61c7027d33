"""The Security review page through AppTest: headline figures, charts, detections and their
thresholds, the demo's injected stories, click-through to the Audit Log, hostile text.

Expected numbers are computed in plain Python over the stored rows, not with the package.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pandas as pd
import polars as pl
import pytest
from conftest import shown_tables
from streamlit.testing.v1 import AppTest

from audit_analytics.accounts import NO_EXPORT_PERMISSION
from audit_analytics.analysis import security
from audit_analytics.analysis.review import SecurityReview
from audit_analytics.demo.generate import generate
from audit_analytics.engines.store import open_store
from audit_analytics.schema import SCHEMA
from audit_analytics.ui import security_widgets as sw

ROOT = Path(__file__).resolve().parents[1]
PAGE = str(ROOT / "app_pages" / "security.py")
HOSTILE_ACTOR = "<img src=x onerror=alert(1)>**bold**"
HOSTILE_IP = "198.18.0.9"


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    path = tmp_path_factory.mktemp("security") / "audit.db"
    url = f"sqlite:///{path}"
    store = open_store(url)
    data = generate(4_000, seed=11)
    store.append(data.events)
    now = datetime.now(UTC)
    hostile = [
        {
            "id": f"hostile-{i}",
            "time": now - timedelta(hours=3, seconds=i),
            "actor": HOSTILE_ACTOR,
            "email": None,
            "type": "auth",
            "action": "login",
            "target": "[x](http://evil.example)",
            "result": "failed",
            "ip": HOSTILE_IP,
            "request_id": None,
            "description": "hostile",
            "params": None,
            "before": None,
            "after": None,
            "error": None,
        }
        for i in range(3)
    ]
    store.append(pl.DataFrame(hostile, schema=SCHEMA))
    rows = store.load().to_dicts()
    store.engine.dispose()
    return url, rows, data.stories


@pytest.fixture(params=["memory", "pushdown"])
def page(db, monkeypatch, as_role, request):
    monkeypatch.setenv("AUDIT_DB_URL", db[0])
    monkeypatch.setenv("AUDIT_ENGINE", request.param)
    return as_role(AppTest.from_file(PAGE, default_timeout=120), "viewer")


@pytest.fixture
def nav_app(db, monkeypatch, tmp_path, as_role):
    """The security page and the explorer under st.navigation (as app.py runs them), so a
    click can switch pages; the page paths match what open_explorer switches to."""
    monkeypatch.setenv("AUDIT_DB_URL", db[0])
    (tmp_path / "app_pages").mkdir()
    for name in ("explorer.py", "security.py"):
        (tmp_path / "app_pages" / name).symlink_to(ROOT / "app_pages" / name)
    script = tmp_path / "nav_app.py"
    script.write_text(
        "import streamlit as st\n"
        "st.navigation([\n"
        "    st.Page('app_pages/security.py', title='Security review', url_path='security', default=True),\n"
        "    st.Page('app_pages/explorer.py', title='Audit Log', url_path='audit-log'),\n"
        "]).run()\n"
    )
    return as_role(AppTest.from_file(str(script), default_timeout=120), "viewer")


# ---------------------------------------------------------------------------------------
# plain-Python expectations


def logins(rows, result):
    return [r for r in rows if r["type"] == "auth" and r["action"] == "login" and r["result"] == result]


def since_days(rows, days):
    today = datetime.now(UTC).date()
    start = datetime.combine(today - timedelta(days=days - 1), datetime.min.time(), tzinfo=UTC)
    return [r for r in rows if r["time"] >= start]


def successes_after_failures(rows, *, threshold=5, within=timedelta(minutes=10)):
    failures = {}
    for r in logins(rows, "failed"):
        if r["actor"]:
            failures.setdefault(r["actor"], []).append(r["time"])
    found = []
    for s in logins(rows, "done"):
        before = [f for f in failures.get(s["actor"] or "", []) if s["time"] - within < f <= s["time"]]
        if len(before) >= threshold:
            found.append(s)
    return found


def brute_force_ips(rows, *, threshold, window=timedelta(seconds=120)):
    per_ip = {}
    for r in logins(rows, "failed"):
        if r["ip"]:
            per_ip.setdefault(r["ip"], []).append(r["time"])
    hits = set()
    for ip, times in per_ip.items():
        times.sort()
        if any(sum(1 for u in times if t <= u < t + window) >= threshold for t in times):
            hits.add(ip)
    return hits


# ---------------------------------------------------------------------------------------
# reading the page


def no_exceptions(at):
    assert not at.exception, [e.value for e in at.exception]


def metrics(at) -> dict[str, int]:
    return {m.label: int(m.value.replace(",", "")) for m in at.metric}


def subheaders(at) -> list[str]:
    return [s.value for s in at.subheader]


def findings_count(at, title: str) -> int:
    heading = next(s for s in subheaders(at) if s.startswith(f"{title} · "))
    return int(heading.split(" · ")[1].split(" ")[0].replace(",", ""))


def table_with(at, *columns: str):
    for df in at.dataframe:
        frame = df.value
        frame = getattr(frame, "data", frame)  # a Styler holds its frame in .data
        if all(c in frame.columns for c in columns):
            return frame
    raise AssertionError(f"no table with columns {columns}")


def figures(at) -> dict[str, dict]:
    """Rendered plotly figures by title."""
    out = {}
    for chart in at.get("plotly_chart"):
        spec = json.loads(chart.proto.spec)
        out[spec["layout"]["title"]["text"]] = spec
    return out


def figure(at, starts: str) -> dict:
    return next(spec for title, spec in figures(at).items() if title.startswith(starts))


def click(at, key: str, point: dict):
    at.session_state[key] = {
        "selection": {
            "points": [point],
            "point_indices": [point.get("point_index", 0)],
            "box": [],
            "lasso": [],
        }
    }
    return at.run()


def caption_count(at) -> int:
    text = next(c.value for c in at.caption if " event" in c.value and "·" in c.value)
    return int(text.split(" ")[0].replace(",", ""))


# ---------------------------------------------------------------------------------------
# tests


def test_opens_on_the_last_7_days_with_type_and_result_not_applied(page, db):
    page.run()
    no_exceptions(page)
    assert page.title[0].value == "Security review"
    # the page reads every type and result: the sidebar shows them disabled, with a note
    assert page.multiselect(key="f_types").value == [] and page.multiselect(key="f_types").disabled
    assert page.radio(key="f_result").value == "all" and page.radio(key="f_result").disabled
    assert any("Type and Result do not apply on this page" in c.value for c in page.sidebar.caption)
    assert page.radio(key="f_period").value == "7d"
    assert "type" not in page.query_params and "result" not in page.query_params
    rows = since_days(db[1], 7)
    failures = logins(rows, "failed")
    assert metrics(page) == {
        "Login failures": len(failures),
        "Distinct IPs": len({r["ip"] for r in failures if r["ip"]}),
        "Distinct accounts": len({r["actor"] for r in failures if r["actor"]}),
        "Successes after failures": len(successes_after_failures(rows)),
    }


def test_headline_over_all_time(page, db):
    page.query_params["period"] = "all"
    page.run()
    no_exceptions(page)
    rows = db[1]
    failures = logins(rows, "failed")
    expected = {
        "Login failures": len(failures),
        "Distinct IPs": len({r["ip"] for r in failures if r["ip"]}),
        "Distinct accounts": len({r["actor"] for r in failures if r["actor"]}),
        "Successes after failures": len(successes_after_failures(rows)),
    }
    assert metrics(page) == expected
    assert expected["Successes after failures"] >= 1  # the account-takeover story


def test_every_detection_has_a_table_and_the_urgent_one_comes_first(page):
    page.query_params["period"] = "all"
    page.run()
    titles = [s.split(" · ")[0] for s in subheaders(page) if " · " in s]
    assert titles == [
        "Success after failures",
        "Brute force",
        "Password spray",
        "Account under attack",
        "Denied calls",
        "Off-hours activity",
        "Permission changes",
        "Stuck operations",
    ]
    assert any("password may have been guessed" in e.value for e in page.error)
    for columns in [
        ("Account", "Signed in at", "Failures before"),
        ("Source IP", "Most in one window"),
        ("Source IP", "Most accounts in one window"),
        ("Account", "Most IPs in one window"),
        ("Actor", "Refused", "Most in one window"),
        ("Actor", "Why"),
        ("Granted by", "Role before → after", "Flags", "Risk"),
        ("Operation", "State", "Minutes in this state"),
    ]:
        assert len(table_with(page, *columns)) > 0
    # every control is keyed and starts at the registry's default
    assert (
        page.number_input(key="th_brute_force_threshold").value
        == security.thresholds_of("brute_force")["threshold"]
    )
    assert page.number_input(key="th_password_spray_window").value == 300
    assert page.slider(key="th_off_hours_hours").value[0].strftime("%H:%M") == "08:00"
    # the organisation's zone starts at the zone the page shows
    assert page.selectbox(key="th_off_hours_org_tz").value == page.session_state["view"].filter.tz
    # the organisation's zone, hours and days are in the sidebar (they are the organisation's)
    assert page.sidebar.selectbox(key="th_off_hours_org_tz").value == page.session_state["view"].filter.tz
    assert page.sidebar.slider(key="th_off_hours_hours").value[1].strftime("%H:%M") == "19:00"
    # each detection says what it means
    captions = [c.value for c in page.caption]
    for rule, d in security.DETECTIONS.items():
        assert any(
            d.technique in c and d.text(tz=page.session_state["view"].filter.tz) in c for c in captions
        ), rule


def test_each_rule_says_the_thresholds_its_controls_hold(page):
    """The rule's sentence follows its controls (it said "at least 5 failures" whatever the
    control said, seen in a browser walk)."""
    page.query_params["period"] = "all"
    page.run()

    def meaning(rule: str) -> str:
        technique = security.DETECTIONS[rule].technique
        return next(c.value for c in page.caption if c.value.startswith(f"MITRE ATT&CK {technique} · "))

    assert "at least 5 failures of the same account in the 10 minutes before it" in meaning(
        "success_after_failures"
    )
    assert "at least 8 failed logins inside any window of 2 minutes" in meaning("brute_force")
    page.number_input(key="th_success_after_failures_threshold").set_value(2).run()
    page.number_input(key="th_success_after_failures_within").set_value(3).run()
    page.number_input(key="th_brute_force_window").set_value(3600).run()
    no_exceptions(page)
    assert "at least 2 failures of the same account in the 3 minutes before it" in meaning(
        "success_after_failures"
    )
    assert "at least 8 failed logins inside any window of 1 hour" in meaning("brute_force")
    page.sidebar.multiselect(key="th_off_hours_weekdays").set_value([1, 2, 3]).run()
    assert "(08:00–19:00 Mon, Tue, Wed, UTC)" in meaning("off_hours")


def test_the_demo_stories_appear(page, db):
    page.query_params["period"] = "all"
    page.run()
    no_exceptions(page)
    stories = {row["story"]: row for row in db[2].iter_rows(named=True) if row["story"] != "stuck_operation"}
    brute = table_with(page, "Source IP", "Most in one window")
    assert stories["brute_force"]["key"] in set(brute["Source IP"])
    spray = table_with(page, "Most accounts in one window")
    assert list(spray["Source IP"]) == [stories["password_spray"]["key"]]
    victim = stories["account_takeover"]["actor"]
    assert victim in set(table_with(page, "Most IPs in one window")["Account"])
    assert list(table_with(page, "Signed in at")["Account"]) == [victim]
    grants = table_with(page, "Granted by", "Flags")
    for story in ("account_takeover", "permission_escalation"):
        who = stories[story]["actor"]
        mine = grants[(grants["Granted by"] == who) & (grants["Target"] == who)]
        assert len(mine) >= 1 and mine["Flags"].str.contains("self-grant").all()
        assert mine["Flags"].str.contains("grants admin").any()
    stuck = table_with(page, "Operation", "State")
    expected_stuck = db[2].filter(pl.col("story") == "stuck_operation")["key"].to_list()
    assert set(expected_stuck) <= set(stuck["Target"])
    # off-hours findings are many (the table shows the newest 50): look at the story's night
    story = stories["off_hours_backup_deletion"]
    admin = story["actor"]
    page.query_params.update(
        {
            "period": "custom",
            "from": story["start"].date().isoformat(),
            "to": story["end"].date().isoformat(),
            "user": admin,
        }
    )
    page.run()
    no_exceptions(page)
    off = table_with(page, "Actor", "Why")
    deleted = off[(off["Actor"] == admin) & (off["Action"] == "delete") & (off["Type"] == "backup")]
    assert len(deleted) == len(story["event_ids"])
    assert deleted["Why"].str.contains("backup delete").all() and deleted["Why"].str.contains(admin).all()


def test_changing_a_threshold_changes_the_findings(page, db):
    page.query_params["period"] = "all"
    page.run()
    rows = db[1]
    default = findings_count(page, "Brute force")
    assert set(table_with(page, "Source IP", "Most in one window")["Source IP"]) == brute_force_ips(
        rows, threshold=8
    )
    page.number_input(key="th_brute_force_threshold").set_value(1000).run()
    no_exceptions(page)
    assert findings_count(page, "Brute force") == 0
    page.number_input(key="th_brute_force_threshold").set_value(3).run()
    assert findings_count(page, "Brute force") >= default
    assert set(table_with(page, "Source IP", "Most in one window")["Source IP"]) == brute_force_ips(
        rows, threshold=3
    )
    page.number_input(key="th_password_spray_min_accounts").set_value(40).run()
    assert findings_count(page, "Password spray") == 0
    # a tighter window for success-after-failures: the story's failures span ~8 minutes
    page.number_input(key="th_success_after_failures_threshold").set_value(1).run()
    assert findings_count(page, "Success after failures") == len(successes_after_failures(rows, threshold=1))
    assert metrics(page)["Successes after failures"] == len(successes_after_failures(rows, threshold=1))


def test_off_hours_controls(page):
    page.query_params["period"] = "all"
    page.run()
    before = findings_count(page, "Off-hours activity")
    page.multiselect(key="th_off_hours_weekdays").set_value([1, 2, 3, 4, 5, 6, 7]).run()
    no_exceptions(page)
    assert findings_count(page, "Off-hours activity") < before  # weekends now count as working days
    page.selectbox(key="th_off_hours_org_tz").set_value("Asia/Tokyo").run()
    no_exceptions(page)
    assert any(c == "Time (Asia/Tokyo)" for c in table_with(page, "Actor", "Why").columns)


def test_charts_have_titles_axes_and_the_top_ips(page, db):
    page.query_params["period"] = "all"
    page.run()
    titles = set(figures(page))
    assert {
        "Login failures by source IP (top 10)",
        "Login failures by account (top 10)",
        "Login failures by weekday and hour",
        "Findings per day with the current thresholds",
    } <= titles
    for spec in figures(page).values():
        assert spec["layout"]["xaxis"]["title"]["text"] and spec["layout"]["yaxis"]["title"]["text"]
        # every hover is written by the app (a heatmap's cells hover through their markers)
        assert all("hovertemplate" in trace or trace.get("hoverinfo") == "skip" for trace in spec["data"])
    by_ip = figure(page, "Login failures by source IP")["data"][0]
    counts = {}
    for r in logins(db[1], "failed"):
        if r["ip"]:
            counts[r["ip"]] = counts.get(r["ip"], 0) + 1
    expected = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
    assert by_ip["x"] == [n for _, n in expected]
    assert [label.split(". ", 1)[1] for label in by_ip["y"]] == [ip for ip, _ in expected]


def test_hostile_text_is_escaped_in_charts_and_never_markdown(page):
    page.query_params["period"] = "all"
    page.run()
    spec = json.dumps(figure(page, "Login failures by account"))
    assert "&lt;img src=x onerror=alert(1)&gt;" in spec
    assert "<img" not in spec
    assert all("onerror" not in m.value for m in page.markdown)


def test_backtest_agrees_with_the_module(page, db):
    page.query_params["period"] = "all"
    page.run()
    spec = figure(page, "Findings per day")
    frame = pl.DataFrame(db[1], schema=SCHEMA)
    series = {trace["name"]: trace["y"] for trace in spec["data"]}
    expected = security.backtest(frame, "brute_force", tz="UTC")["findings"].to_list()
    assert series["Brute force"] == expected
    expected = security.backtest(frame, "permission_changes", tz="UTC")["findings"].to_list()
    assert series["Permission changes"] == expected


def test_clicking_an_ip_bar_opens_the_explorer_on_its_failures(nav_app, db):
    nav_app.query_params["period"] = "all"
    nav_app.run()
    no_exceptions(nav_app)
    bar = figure(nav_app, "Login failures by source IP")["data"][0]
    ip = bar["y"][0].split(". ", 1)[1]
    click(
        nav_app,
        "chart_by_ip",
        {"point_index": 0, "x": bar["x"][0], "y": bar["y"][0], "customdata": bar["customdata"][0]},
    )
    no_exceptions(nav_app)
    assert nav_app.title[0].value == "Audit Log"
    params = dict(nav_app.query_params)
    assert params["type"] == "auth" and params["result"] == "failed" and params["period"] == "all"
    assert params["q"] == f"action:login ip:{ip}"
    assert caption_count(nav_app) == bar["x"][0] == sum(1 for r in logins(db[1], "failed") if r["ip"] == ip)


def test_clicking_an_account_bar_opens_the_explorer_on_its_failures(nav_app, db):
    nav_app.query_params["period"] = "all"
    nav_app.run()
    bar = figure(nav_app, "Login failures by account")["data"][0]
    account = json.loads(bar["customdata"][0][0])["account"]
    click(nav_app, "chart_by_account", {"point_index": 0, "customdata": bar["customdata"][0]})
    no_exceptions(nav_app)
    assert nav_app.title[0].value == "Audit Log"
    assert nav_app.query_params["q"] == f"action:login user:{account}"
    assert caption_count(nav_app) == bar["x"][0]


@pytest.mark.parametrize(("mode", "limit"), [("memory", "5000000"), ("pushdown", "2000")])
def test_clicking_a_heatmap_cell_opens_its_latest_hour(nav_app, db, monkeypatch, mode, limit):
    """In memory and pushed down to the database alike (the database found each cell's latest
    hour too; pushed down, the cells said "no failures" under their count and opened nothing)."""
    monkeypatch.setenv("AUDIT_ENGINE", mode)
    monkeypatch.setenv("AUDIT_MEMORY_LIMIT", limit)
    nav_app.query_params["period"] = "all"
    nav_app.run()
    heat, cells = figure(nav_app, "Login failures by weekday and hour")["data"]
    # the cells' invisible markers (a click selects no heatmap cell) carry the drills, row by row
    assert heat["type"] == "heatmap" and cells["type"] == "scatter"
    for w, row in enumerate(heat["z"]):
        for h, n in enumerate(row):
            drill, text, count = cells["customdata"][w * 24 + h]
            assert count == n and (drill is not None) == (n > 0), (w, h, n, drill)
            assert text.startswith("latest: ") if n else text == "no failures"
    weekday, hour = next(
        (w, h)
        for w, row in enumerate(heat["z"])
        for h, n in enumerate(row)
        if n and cells["customdata"][w * 24 + h][0]
    )
    i = weekday * 24 + hour
    assert (cells["x"][i], cells["y"][i], cells["customdata"][i][2]) == (
        heat["x"][hour],
        heat["y"][weekday],
        heat["z"][weekday][hour],
    )
    drill = json.loads(cells["customdata"][i][0])
    click(
        nav_app,
        "chart_by_hour",
        {"x": cells["x"][i], "y": cells["y"][i], "customdata": cells["customdata"][i], "point_index": i},
    )
    no_exceptions(nav_app)
    assert nav_app.title[0].value == "Audit Log"
    params = dict(nav_app.query_params)
    assert params["period"] == "custom" and params["type"] == "auth" and params["result"] == "failed"
    start, end = datetime.fromisoformat(params["from"]), datetime.fromisoformat(params["to"])
    assert (start, end) == (datetime.fromisoformat(drill["start"]), datetime.fromisoformat(drill["end"]))
    assert end - start == timedelta(hours=1) and start.weekday() == weekday and start.hour == hour
    expected = [r for r in logins(db[1], "failed") if start <= r["time"] < end]
    assert caption_count(nav_app) == len(expected) > 0


def test_a_finding_links_to_exactly_its_events(nav_app, db):
    nav_app.query_params["period"] = "all"
    nav_app.run()
    brute = table_with(nav_app, "Source IP", "Most in one window")
    link, failures, first_link = (
        brute.iloc[0]["Events"],
        int(brute.iloc[0]["Failures"]),
        brute.iloc[0]["First event"],
    )
    assert link.startswith("./?") and first_link.startswith("./?")
    params = dict(parse_qsl(urlsplit(link).query))
    assert (
        params["type"] == "auth"
        and params["period"] == "custom"
        and f"ip:{brute.iloc[0]['Source IP']}" in params["q"]
    )
    nav_app.switch_page("app_pages/explorer.py")
    nav_app.query_params.clear()
    nav_app.query_params.update(params)
    nav_app.run()
    no_exceptions(nav_app)
    assert caption_count(nav_app) == failures
    event = dict(parse_qsl(urlsplit(first_link).query))["event"]
    assert event in {r["id"] for r in logins(db[1], "failed") if r["ip"] == brute.iloc[0]["Source IP"]}


def test_nothing_is_shown_before_sign_in(db, monkeypatch):
    monkeypatch.setenv("AUDIT_DB_URL", db[0])
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.run()
    assert not shown_tables(at) and not at.metric and "Security review" not in [t.value for t in at.title]


def test_a_viewer_is_told_why_chart_downloads_are_off(page, as_role):
    page.run()
    off = [c.value for c in page.caption if c.value.startswith("Chart data downloads are off")]
    assert off == [f"Chart data downloads are off for you. {NO_EXPORT_PERMISSION}"]
    assert all(b.proto.disabled for b in page.get("download_button"))
    as_role(page, "auditor").run()
    assert not [c for c in page.caption if c.value.startswith("Chart data downloads are off")]
    assert not any(b.proto.disabled for b in page.get("download_button"))


def test_empty_period_says_so(page):
    page.query_params.update({"period": "custom", "from": "2001-01-01", "to": "2001-01-02"})
    page.run()
    no_exceptions(page)
    assert any("No events in this period" in i.value for i in page.info)


def test_a_period_larger_than_memory_is_reviewed_in_the_database(db, monkeypatch, as_role):
    """Pushdown with a period above the in-memory limit: the headline, the charts and the
    sliding-window rules are computed in the database; success-after-failures and permission
    changes run on their part of the period; off-hours and stuck operations say why not."""
    monkeypatch.setenv("AUDIT_DB_URL", db[0])
    pages = {}
    for mode, limit in (("memory", "5000000"), ("pushdown", "2000")):  # 4,003 events, 1,565 auth
        monkeypatch.setenv("AUDIT_ENGINE", mode)
        monkeypatch.setenv("AUDIT_MEMORY_LIMIT", limit)
        at = as_role(AppTest.from_file(PAGE, default_timeout=120), "viewer")
        at.query_params["period"] = "all"
        at.run()
        no_exceptions(at)
        pages[mode] = at
    memory, pushed = pages["memory"], pages["pushdown"]
    assert not any("narrow the period" in w.value.lower() for w in pushed.warning)
    assert metrics(pushed) == metrics(memory)
    assert metrics(pushed)["Login failures"] > 0
    by_title = {m: {s.split(" · ")[0]: s for s in subheaders(p)} for m, p in pages.items()}
    for rule in (
        "Success after failures",
        "Brute force",
        "Password spray",
        "Account under attack",
        "Permission changes",
    ):
        assert by_title["pushdown"][rule] == by_title["memory"][rule]  # same findings count
    for rule in ("Off-hours activity", "Stuck operations"):
        assert by_title["pushdown"][rule] == rule  # no count: it did not run
    notes = [i.value for i in pushed.info if "in-memory limit of 2,000" in i.value]
    assert len(notes) == 2 and all("Narrow the period" in n for n in notes), notes

    # the charts show the same numbers
    def chart_data(at):
        return [json.loads(c.proto.spec)["data"] for c in at.get("plotly_chart")]

    assert chart_data(pushed)[:2] == chart_data(memory)[:2]  # by IP, by account
    # by weekday and hour: the same counts (a cell's click-through to its latest hour is in memory only)
    assert chart_data(pushed)[2][0]["z"] == chart_data(memory)[2][0]["z"]


@pytest.fixture
def own_page(tmp_path, monkeypatch, as_role):
    """The page on a database of its own, held in memory, without the app's warm-up (whose
    thread would compute the default views' detections too)."""
    url = f"sqlite:///{tmp_path / 'ahead.db'}"
    store = open_store(url)
    store.append(generate(3_000, seed=5).events)
    store.engine.dispose()
    for name, value in (("AUDIT_DB_URL", url), ("AUDIT_ENGINE", "memory"), ("AUDIT_WARM_UP", "off")):
        monkeypatch.setenv(name, value)
    return as_role(AppTest.from_file(PAGE, default_timeout=120), "viewer")


def detections_run(monkeypatch) -> list[tuple[str, str, dict]]:
    """Each detection computed from now on: (rule, the thread that computed it, thresholds)."""
    calls: list[tuple[str, str, dict]] = []
    real = SecurityReview.detect

    def counted(self, rule, thresholds, extra=None):
        calls.append((rule, threading.current_thread().name, dict(thresholds)))
        return real(self, rule, thresholds, extra)

    monkeypatch.setattr(SecurityReview, "detect", counted)
    return calls


def test_the_detections_start_ahead_of_the_charts_and_run_once(own_page, monkeypatch):
    """The longest detection starts in a thread of its own while the failure charts are drawn;
    the page waits for its result instead of computing it again: every rule runs once, on the
    first visit and on a period whose controls have been drawn before (their values in session
    state then match what the thread assumed)."""
    calls = detections_run(monkeypatch)
    for period in ("all", "30d", "7d"):
        calls.clear()
        own_page.query_params["period"] = period
        own_page.run()
        no_exceptions(own_page)
        assert sorted(rule for rule, _, _ in calls) == sorted(sw.RULE_ORDER), period
        assert ("off_hours", "audit-detect-ahead") in [(rule, thread) for rule, thread, _ in calls], period
    calls.clear()
    own_page.run()  # the same view again: nothing is computed
    assert calls == []


def test_a_changed_threshold_is_left_to_its_control(own_page, monkeypatch):
    own_page.query_params["period"] = "all"
    own_page.run()
    own_page.number_input(key="th_off_hours_min_history").set_value(3).run()
    calls = detections_run(monkeypatch)
    own_page.query_params["period"] = "30d"
    own_page.run()
    no_exceptions(own_page)
    assert sorted(rule for rule, _, _ in calls) == sorted(sw.RULE_ORDER)  # still each once
    [(thread, thresholds)] = [(thread, th) for rule, thread, th in calls if rule == "off_hours"]
    assert thresholds["min_history"] == 3 and thread != "audit-detect-ahead"
    assert ("permission_changes", "audit-detect-ahead") in [(rule, thread) for rule, thread, _ in calls]


def test_a_long_table_shows_its_newest_findings_and_says_of_how_many(page):
    """A detection table shows its 50 newest findings; the title and the caption give the
    exact total, and the toggle shows up to 500."""
    page.query_params["period"] = "all"
    page.run()
    page.number_input(key="th_brute_force_threshold").set_value(1).run()
    page.number_input(key="th_brute_force_window").set_value(1).run()  # every failure on its own
    no_exceptions(page)
    n = findings_count(page, "Brute force")
    assert n > 50, "more than 50 windows of failures"
    table = table_with(page, "Source IP", "Most in one window")
    assert len(table) == 50
    assert any(c.value.startswith(f"Showing the 50 newest of {n:,} findings") for c in page.caption)
    toggle = page.toggle(key="more_brute_force")
    assert toggle.label == (f"Show all {n:,} findings" if n <= 500 else "Show the 500 newest findings")
    toggle.set_value(True).run()
    no_exceptions(page)
    assert len(table_with(page, "Source IP", "Most in one window")) == min(n, 500)
    assert findings_count(page, "Brute force") == n  # the count never depends on the rows shown
    if n <= 500:
        assert not any(c.value.startswith("Showing the") and f"of {n:,}" in c.value for c in page.caption)


def test_the_permission_table_lists_every_flagged_change_first(page, db):
    page.query_params["period"] = "all"
    page.run()
    no_exceptions(page)
    grants = table_with(page, "Granted by", "Flags")
    assert all(isinstance(df.value, pd.DataFrame) for df in page.dataframe)  # no pandas Styler
    assert list(grants.columns)[0] == "Flags"
    flagged = grants["Risk"] > 0
    assert ((grants["Flags"] != "") == flagged).all()
    # flagged first, riskiest first; a cap never hides one
    assert list(flagged) == sorted(flagged, reverse=True)
    risks = list(grants.loc[flagged, "Risk"])
    assert risks == sorted(risks, reverse=True)
    n = findings_count(page, "Permission changes")
    found = security.permission_changes(pl.DataFrame(db[1], schema=SCHEMA))
    assert n == found.height
    assert int(flagged.sum()) == int((found["risk"] > 0).sum())
    assert grants["Flags"].iloc[0].startswith("⚠ self-grant")
    # the rest is one click away, in the Audit Log's Permission changes type
    assert page.button(key="open_permission_changes").label == f"Open all {n:,} in the Audit Log"
    shown = [c.value for c in page.caption if "flagged change" in c.value]
    assert shown and shown[0].startswith(f"All {int(flagged.sum()):,} flagged change")
    assert not any("raise the thresholds" in c.value for c in page.caption)


def test_the_policy_file_sets_the_controls_defaults(db, monkeypatch, as_role, tmp_path):
    policy = tmp_path / "security.toml"
    policy.write_text(
        '[off-hours]\norg_tz = "Asia/Tokyo"\nhours = ["09:00", "17:30"]\n[success-after-failure]\nby = "ip"\n'
    )
    monkeypatch.setenv("AUDIT_DB_URL", db[0])
    monkeypatch.setenv("AUDIT_SECURITY_POLICY", str(policy))
    at = as_role(AppTest.from_file(PAGE, default_timeout=120), "viewer")
    at.query_params["period"] = "all"
    at.run()
    no_exceptions(at)
    assert at.selectbox(key="th_off_hours_org_tz").value == "Asia/Tokyo"
    assert not [c for c in at.sidebar.caption if "names no zone" in c.value]
    assert [t.strftime("%H:%M") for t in at.slider(key="th_off_hours_hours").value] == ["09:00", "17:30"]
    assert any(c == "Time (Asia/Tokyo)" for c in table_with(at, "Actor", "Why").columns)
    # the policy's "count failures by" too (the control started at "account" whatever it said)
    assert at.selectbox(key="th_success_after_failures_by").value == "ip"
    # a policy that cannot be used says so instead of reviewing with other settings
    policy.write_text("[off-hours]\ncolour = 1\n")
    at = as_role(AppTest.from_file(PAGE, default_timeout=120), "viewer")
    at.run()
    assert any("security policy cannot be used" in e.value and "colour" in e.value for e in at.error)


def ticked(at, rule: str, row: int):
    """Tick ``row`` of ``rule``'s findings table, as a click on its row marker does."""
    ids = [d.proto.id for d in at.dataframe if f"-table_{rule}_" in d.proto.id]
    assert len(ids) == 1, f"no findings table for {rule}"
    key = ids[0][ids[0].index(f"table_{rule}_") :]
    at.session_state[key] = {"selection": {"rows": [row], "columns": [], "cells": []}}
    return at.run()


def test_a_ticked_finding_opens_its_events_in_this_session(nav_app, db):
    """A table's links open a new tab, a new session (which had to sign in again, seen on a
    phone; it now resumes the sign-in from the cookie): ticking a row opens the same view here."""
    nav_app.query_params["period"] = "all"
    nav_app.run()
    shown = table_with(nav_app, "Source IP", "Most in one window")
    link = shown["Events"][0]
    ticked(nav_app, "brute_force", 0)
    no_exceptions(nav_app)
    assert nav_app.title[0].value == "Audit Log"
    assert dict(nav_app.query_params) == dict(parse_qsl(urlsplit(link).query))
    ip = shown["Source IP"][0]
    assert f"ip:{ip}" in nav_app.query_params["q"]


def test_thresholds_are_kept_when_the_user_comes_back(nav_app, db):
    """Streamlit drops a control's state when its page is left: a reviewer who opened a finding
    in the Audit Log came back to the shipped thresholds (and other findings)."""
    nav_app.query_params["period"] = "all"
    nav_app.run()
    nav_app.number_input(key="th_brute_force_threshold").set_value(3).run()
    nav_app.sidebar.multiselect(key="th_off_hours_weekdays").set_value([1, 2, 3]).run()
    found = findings_count(nav_app, "Brute force")
    assert found >= 1
    ticked(nav_app, "brute_force", 0)  # opens the Audit Log
    assert nav_app.title[0].value == "Audit Log"
    nav_app.switch_page("app_pages/security.py").run()
    no_exceptions(nav_app)
    assert nav_app.title[0].value == "Security review"
    assert nav_app.number_input(key="th_brute_force_threshold").value == 3
    assert nav_app.sidebar.multiselect(key="th_off_hours_weekdays").value == [1, 2, 3]
    # (the period is now the finding's, which the Audit Log showed: the view is shared)
    assert findings_count(nav_app, "Brute force") >= 1
    assert any("at least 3 failed logins" in c.value for c in nav_app.caption)
    assert not [w for w in nav_app.warning if "Session State" in w.value]  # no "set twice" warning


def test_a_findings_table_puts_its_counts_beside_the_key(page):
    """On a narrow screen a table shows its first columns: the counts a reviewer ranks by came
    after First and Last and were cut off at 800 px ("Fail…")."""
    page.query_params["period"] = "all"
    page.run()
    no_exceptions(page)
    for key, count in (("Source IP", "Failures"), ("Account", "Failures"), ("Actor", "Refused")):
        table = table_with(page, key, count, "First")
        columns = list(table.columns)
        assert columns.index(count) == columns.index(key) + 1 < columns.index("First"), columns


def test_without_a_zone_in_the_policy_the_organisation_zone_says_whose_it_is(page):
    """The organisation's zone started at each reviewer's browser zone, silently: reviewers in
    Tokyo and Los Angeles counted 33 and 12 off-hours findings in one month of one log."""
    page.run()
    no_exceptions(page)
    said = [c.value for c in page.sidebar.caption if "names no zone" in c.value]
    assert said and "org_tz" in said[0] and "[off-hours]" in said[0]

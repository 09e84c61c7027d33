"""The Audit Log page through AppTest: every control, deep links, URL round trip, export.

Expected numbers are computed in plain Python over the rows, not with the package's Filter.
"""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import openpyxl
import polars as pl
import pytest
from conftest import shown_tables
from streamlit.testing.v1 import AppTest

from audit_analytics.demo.generate import generate
from audit_analytics.engines.store import open_store
from audit_analytics.schema import SCHEMA
from audit_analytics.ui.explorer import export_header, table_key

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
HOSTILE_ACTOR = '=HYPERLINK("http://evil.example","click")'
HOSTILE_TARGET = "[click me](http://evil.example) <script>alert(1)</script>"


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    path = tmp_path_factory.mktemp("app") / "audit.db"
    url = f"sqlite:///{path}"
    store = open_store(url)
    store.append(generate(3_000, seed=5).events)
    hostile = {
        "id": "hostile-1",
        "time": datetime.now(UTC) - timedelta(hours=2),
        "actor": HOSTILE_ACTOR,
        "email": None,
        "type": "auth",
        "action": "login",
        "target": HOSTILE_TARGET,
        "result": "failed",
        "ip": "203.0.113.9",
        "request_id": None,
        "description": "+cmd|' /C calc'!A0",
        "params": '{"note": "-2+3"}',
        "before": None,
        "after": None,
        "error": "@SUM(1+1)",
    }
    store.append(pl.DataFrame([hostile], schema=SCHEMA))
    rows = store.load().to_dicts()
    store.engine.dispose()
    return url, rows


@pytest.fixture(params=["memory", "pushdown"])
def app(db, monkeypatch, request, tmp_path):
    url, _ = db
    monkeypatch.setenv("AUDIT_DB_URL", url)
    monkeypatch.setenv("AUDIT_ENGINE", request.param)
    signed_in_as(monkeypatch, tmp_path, "auditor")
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["aa_user"] = "tester"
    return at


def signed_in_as(monkeypatch, tmp_path, role: str) -> None:
    """An accounts file with one account, ``tester``; the session is signed in as it."""
    users = tmp_path / "users.toml"
    users.write_text(f'[users.tester]\nrole = "{role}"\npassword_hash = "$argon2id$unused"\n')
    monkeypatch.setenv("AUDIT_USERS_FILE", str(users))


def rows_of(db):
    return [r for r in db[1] if not r["id"].startswith("aa-")]


def last_days(rows, days, now=None):
    now = now or datetime.now(UTC)
    start = datetime.combine((now - timedelta(days=days - 1)).date(), datetime.min.time(), tzinfo=UTC)
    return [r for r in rows if r["time"] >= start]


def caption(at) -> str:
    """The caption above the table, as the reader sees it (markdown escapes undone)."""
    raw = next(c.value for c in at.caption if " event" in c.value and "·" in c.value)
    return re.sub(r"\\(.)", r"\1", raw)


def count_in_caption(at) -> int:
    return int(caption(at).split(" ")[0].replace(",", ""))


def table(at):
    return at.dataframe[0].value


def no_exceptions(at):
    assert not at.exception, [e.value for e in at.exception]


def test_opens_on_last_7_days_newest_first(app, db):
    app.run()
    no_exceptions(app)
    expected = last_days(rows_of(db), 7)
    assert count_in_caption(app) == len(expected)
    assert "last 7 days" in caption(app)
    shown = table(app)
    assert len(shown) == min(100, len(expected))
    newest = max(expected, key=lambda r: (r["time"], r["id"]))
    assert shown.iloc[0]["Actor"] == (newest["actor"] or "")
    times = list(shown["Time"])
    assert times == sorted(times, reverse=True)


def test_apply_and_reset_the_panel(app, db):
    app.run()
    app.multiselect(key="f_types").set_value(["auth"])
    app.radio(key="f_result").set_value("failed")
    app.radio(key="f_period").set_value("30d")
    app.button(key="FormSubmitter:filter-panel-Apply").click().run()
    no_exceptions(app)
    expected = [r for r in last_days(rows_of(db), 30) if r["type"] == "auth" and r["result"] == "failed"]
    assert count_in_caption(app) == len(expected) > 0
    assert app.query_params["type"] == "auth" and app.query_params["result"] == "failed"
    assert set(table(app)["Type"]) == {"auth"}
    app.button(key=[b.key for b in app.button if b.label == "Reset"][0]).click().run()
    assert count_in_caption(app) == len(last_days(rows_of(db), 7))
    assert dict(app.query_params) == {}
    assert app.multiselect(key="f_types").value == []


def test_user_filter_matches_username(app, db):
    app.run()
    actor = next(r["actor"] for r in rows_of(db) if r["actor"] and r["actor"].startswith("svc-"))
    app.multiselect(key="f_users").set_value([actor])
    app.radio(key="f_period").set_value("all")
    app.button(key="FormSubmitter:filter-panel-Apply").click().run()
    assert count_in_caption(app) == sum(1 for r in rows_of(db) if r["actor"] == actor)


def test_custom_period_includes_the_end_day(app, db):
    app.run()
    rows = rows_of(db)
    day = sorted(r["time"] for r in rows)[len(rows) // 2].date()
    app.radio(key="f_period").set_value("custom")
    app.date_input(key="f_start").set_value(day)
    app.date_input(key="f_end").set_value(day)
    app.button(key="FormSubmitter:filter-panel-Apply").click().run()
    no_exceptions(app)
    assert count_in_caption(app) == sum(1 for r in rows if r["time"].date() == day) > 0
    assert app.query_params["from"] == day.isoformat() and app.query_params["to"] == day.isoformat()


def test_search_without_enter_and_errors_keep_last_result(app, db):
    app.run()
    app.text_input(key="f_search").input("action:delete").run()
    expected = [r for r in last_days(rows_of(db), 7) if r["action"] == "delete"]
    assert count_in_caption(app) == len(expected)
    assert "matching action:delete" in caption(app)
    assert app.query_params["q"] == "action:delete"
    app.text_input(key="f_search").input('user:"unclosed').run()
    no_exceptions(app)
    errors = [e.value for e in app.error]
    assert errors and "character 6" in errors[0] and "unclosed quote" in errors[0]
    assert count_in_caption(app) == len(expected)  # the last good result stays
    assert app.query_params["q"] == "action:delete"


def test_search_finds_hostile_text_as_plain_text(app, db):
    app.run()
    app.text_input(key="f_search").input("evil.example").run()
    assert count_in_caption(app) == 1
    shown = table(app)
    assert shown.iloc[0]["Actor"] == HOSTILE_ACTOR
    assert shown.iloc[0]["Target"] == HOSTILE_TARGET
    # nothing user-written reached markdown
    assert all("evil.example" not in m.value for m in app.markdown)


@pytest.mark.parametrize(
    ("column", "descending"), [("actor", False), ("target", True), ("result", False), ("time", False)]
)
def test_sort_orders_the_whole_result(app, db, column, descending):
    app.run()
    app.selectbox(key="sort_col").set_value(column).run()
    app.segmented_control(key="sort_dir").set_value("desc" if descending else "asc").run()
    no_exceptions(app)
    rows = last_days(rows_of(db), 7)

    def key(r):
        v = r[column]
        v = "" if v is None else (v.lower() if isinstance(v, str) and column in ("actor", "target") else v)
        return (r[column] is None, v if descending is False else v)

    present = [r for r in rows if r[column] is not None]
    present.sort(key=lambda r: (key(r)[1], r["id"]), reverse=descending)
    label = {"actor": "Actor", "target": "Target", "result": "Result", "time": "Time"}[column]
    first = table(app).iloc[0][label]
    expected = present[0][column]
    if column == "time":
        assert first == expected.strftime("%Y-%m-%d %H:%M:%S")
    else:
        assert first == str(expected)
    assert app.query_params["sort"] == ("-" if descending else "") + column


def test_pages_and_page_size(app, db):
    app.run()
    total = count_in_caption(app)
    rows = sorted(last_days(rows_of(db), 7), key=lambda r: (r["time"], r["id"]), reverse=True)
    app.button(key="next_page").click().run()
    second = table(app)
    assert second.iloc[0]["Actor"] == (rows[100]["actor"] or "")
    assert app.query_params["page"] == "2"
    app.selectbox(key="page_size").set_value(50).run()
    assert len(table(app)) == min(50, total)
    assert "page" not in app.query_params and app.query_params["size"] == "50"
    app.number_input(key="page_no").set_value(3).run()
    assert table(app).iloc[0]["Actor"] == (rows[100]["actor"] or "")


def test_a_page_past_the_last_shows_the_last_and_says_so(app, db):
    """The page box takes any number: 999 opens the last page and the row says there is no
    page 999 (the box had the last page as its highest, turned red on 999 without a word and
    left the page as it was)."""
    app.run()
    total = count_in_caption(app)
    pages = -(-total // 100)
    assert pages > 1
    rows = sorted(last_days(rows_of(db), 7), key=lambda r: (r["time"], r["id"]), reverse=True)
    app.number_input(key="page_no").set_value(999).run()
    no_exceptions(app)
    assert app.query_params["page"] == str(pages)
    assert table(app).iloc[0]["Actor"] == (rows[(pages - 1) * 100]["actor"] or "")
    assert app.number_input(key="page_no").value == pages
    words = [c.value for c in app.caption]
    assert any(f"There is no page 999: page {pages} is the last." in w for w in words), words
    # the next step forgets it
    app.button(key="prev_page").click().run()
    assert app.query_params["page"] == str(pages - 1)
    assert not any("There is no page" in c.value for c in app.caption)


def select_row(at, i):
    view = at.session_state["view"]
    generation = at.session_state["_table_generation"] if "_table_generation" in at.session_state else 0
    at.session_state[table_key(view, generation)] = {"selection": {"rows": [i], "columns": [], "cells": []}}
    return at.run()


def detail_values(at) -> dict[str, str]:
    for df in at.dataframe:
        frame = df.value
        if list(frame.columns) == ["Field", "Value"]:
            return dict(zip(frame["Field"], frame["Value"], strict=True))
    return {}


def test_the_search_box_s_example_phrase_finds_events(app, db):
    """The placeholder's quoted example found nothing ("disk full": the demo writes
    "alert-disk-full"), so the first search a new user copies said "No events match"."""
    from audit_analytics.filters import Filter

    app.run()
    phrase = re.search(r'"[^"]+"', app.text_input(key="f_search").placeholder)
    assert phrase is not None
    assert open_store(db[0]).count(Filter(query=phrase.group(0))) > 0


def test_selecting_a_row_opens_its_detail_and_never_jumps(app, db):
    app.run()
    rows = sorted(last_days(rows_of(db), 7), key=lambda r: (r["time"], r["id"]), reverse=True)
    select_row(app, 3)
    no_exceptions(app)
    assert detail_values(app)["Event ID"] == rows[3]["id"]
    assert app.query_params["event"] == rows[3]["id"]
    # a filter change must not leave the selection pointing at another row
    app.text_input(key="f_search").input("type:auth").run()
    values = detail_values(app)
    assert values == {} or values["Event ID"] == rows[3]["id"]
    assert "event" not in app.query_params


def test_detail_shows_every_field_diff_and_related(app, db):
    target = next(r for r in rows_of(db) if r["before"] and r["after"] and r["request_id"])
    app.query_params["event"] = target["id"]
    app.run()
    no_exceptions(app)
    values = detail_values(app)
    assert values["Event ID"] == target["id"]
    assert values["Actor"] == (target["actor"] or "")
    assert values["Request ID"] == target["request_id"]
    # the session's zone is UTC here: one time row, the zone said once
    assert values["Time"] == target["time"].strftime("%Y-%m-%d %H:%M:%S.%f") + " UTC"
    assert "Time (UTC)" not in values
    diff = next(df.value for df in app.dataframe if "Change" in df.value.columns)
    before, after = json.loads(target["before"]), json.loads(target["after"])
    changed = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
    assert changed <= {p.split(".")[0].split("[")[0] for p in diff["Field"]}
    same_request = [
        r for r in rows_of(db) if r["request_id"] == target["request_id"] and r["id"] != target["id"]
    ]
    texts = [t.value for t in app.text]
    assert f"Same request id ({len(same_request)})" in texts
    assert any(c.value.strip().startswith("{") or c.value == "(none)" for c in app.code)


def test_deep_link_outside_period_widens_and_says_so(app, db):
    old = min(rows_of(db), key=lambda r: r["time"])
    app.query_params["event"] = old["id"]
    app.run()
    no_exceptions(app)
    assert any("widened" in i.value for i in app.info)
    assert detail_values(app)["Event ID"] == old["id"]
    assert app.radio(key="f_period").value == "all"
    view = app.session_state["view"]
    assert old["id"] in app.session_state["view"].event
    assert view.page >= 1


def test_unknown_event_id_says_so(app):
    app.query_params["event"] = "no-such-id"
    app.run()
    no_exceptions(app)
    assert any("No event with id" in i.value and "no\\-such\\-id" in i.value for i in app.info)
    # a link to an event retention archived: the way to it is named
    assert any("if retention has archived it, turn on Include archive" in i.value for i in app.info)


def test_url_round_trip(app, db):
    app.query_params.update(
        {
            "period": "30d",
            "type": "auth,user",
            "result": "done",
            "q": "-user:root",
            "sort": "actor",
            "size": "50",
        }
    )
    app.run()
    no_exceptions(app)
    assert app.multiselect(key="f_types").value == ["auth", "user"]
    assert app.radio(key="f_result").value == "done"
    assert app.text_input(key="f_search").value == "-user:root"
    assert app.selectbox(key="sort_col").value == "actor"
    rows = [
        r
        for r in last_days(rows_of(db), 30)
        if r["type"] in ("auth", "user")
        and r["result"] == "done"
        and (r["actor"] or "").lower() != "root"
        and (r["email"] or "").lower() != "root"
    ]
    assert count_in_caption(app) == len(rows)
    assert dict(app.query_params) == {
        "period": "30d",
        "type": "auth,user",
        "result": "done",
        "q": "-user:root",
        "sort": "actor",
        "size": "50",
    }


def test_garbage_in_the_url_never_crashes(app):
    app.query_params.update(
        {"period": "yesterday", "type": "nope", "page": "-4", "size": "7", "sort": "drop table", "q": "usr:"}
    )
    app.run()
    no_exceptions(app)
    assert app.title[0].value == "Audit Log"


def test_empty_period_offers_all_time(app, db):
    app.query_params.update({"period": "custom", "from": "2001-01-01", "to": "2001-01-02"})
    app.run()
    assert any("No events in this period" in i.value and "newest event" in i.value for i in app.info)
    app.button(key="show_all_time").click().run()
    assert count_in_caption(app) == open_store(db[0]).count()
    assert "all time" in caption(app)
    # a search that finds nothing in all time: no button that would change nothing
    app.query_params.update({"period": "all", "q": "no-such-actor-anywhere"})
    app.run()
    assert app.info and not [b for b in app.button if b.key == "show_all_time"]


def test_an_empty_result_says_when_the_filters_leave_the_period_s_events_out(app, db):
    """It said "No events match in this period. The newest event is from …" with that newest
    event inside the period: the search was what left everything out."""
    app.query_params.update({"period": "7d", "q": "no-such-actor-anywhere"})
    app.run()
    in_period = len(last_days(rows_of(db), 7))
    (notice,) = [i.value for i in app.info if "No events" in i.value]
    assert f"it holds {in_period:,} events in all" in notice and "newest event" not in notice


def test_utc_switch(app):
    app.run()
    app.toggle(key="f_utc").set_value(True).run()
    assert any(c.value == "Times shown in UTC" for c in app.caption)
    assert app.query_params["utc"] == "1"


def _export(app, fmt):
    app.button(key="export_open").click().run()
    no_exceptions(app)
    header = [s.value for s in app.subheader]
    if fmt == "csv":
        app.radio(key="export_format").set_value("csv").run()
    app.button(key="export_prepare").click().run()
    no_exceptions(app)
    ready = app.session_state["export_ready"]
    return header, ready


@pytest.mark.parametrize("fmt", ["xlsx", "csv"])
def test_export_holds_exactly_the_current_result(app, db, tmp_path, fmt):
    app.run()
    app.text_input(key="f_search").input("type:auth").run()
    app.radio(key="f_period").set_value("all")
    app.button(key="FormSubmitter:filter-panel-Apply").click().run()
    n = count_in_caption(app)
    header, ready = _export(app, fmt)
    assert export_header(n) in header
    assert header[0] == f"Downloading a total of {n:,} records from the current search."
    assert ready["rows"] == n and ready["fmt"] == fmt
    path = tmp_path / ready["name"]
    path.write_bytes(ready["data"])
    assert "all-time" in ready["name"]
    if fmt == "xlsx":
        wb = openpyxl.load_workbook(path)
        ws = wb.worksheets[0]
        data_rows = list(ws.iter_rows(min_row=2, values_only=True))
        assert len(data_rows) == n
        headers = [c.value for c in ws[1]]
        actor_col = headers.index("Actor")
        hostile = [r for r in data_rows if r[actor_col] == HOSTILE_ACTOR]
        assert len(hostile) == 1
        cell = ws.cell(row=2 + data_rows.index(hostile[0]), column=actor_col + 1)
        assert cell.data_type == "s"
        assert wb.sheetnames[-1] == "About this export"
    else:
        text = ready["data"].decode("utf-8-sig")
        records = list(csv.DictReader(io.StringIO(text)))
        assert len(records) == n
        assert sum(1 for r in records if r["actor"] == "'" + HOSTILE_ACTOR) == 1
    store = open_store(db[0])
    events = store.load().filter((pl.col("action") == "export") & pl.col("id").str.starts_with("aa-"))
    assert events.height >= 1
    params = json.loads(events.sort("time")["params"][-1])
    assert params["count"] == n and params["format"] == fmt
    # the file carries its proof: a CSV's manifest is offered beside it, an xlsx holds it
    from audit_analytics.io.evidence import verify_export

    assert (ready["manifest"] is None) == (fmt == "xlsx")
    if fmt == "csv":
        (tmp_path / f"{ready['name']}.manifest.json").write_bytes(ready["manifest"])
        assert params["proof"]["rows_sha256"] == json.loads(ready["manifest"])["rows_sha256"]
    check = verify_export(path, store=store)
    assert check.ok and check.db_checked and check.checked_rows == n, check.problems
    store.engine.dispose()


def test_export_names_what_it_exports_and_a_search_left_unread(app):
    """The dialog's sentence meant to name the filter and never showed it; with a search in
    the box that could not be read, the export is the last search that could, and says so."""
    app.run()
    app.text_input(key="f_search").input("type:auth").run()
    app.text_input(key="f_search").input("type:auth usr:omar").run()
    assert any("Search not applied" in e.value for e in app.error), [e.value for e in app.error]
    n = count_in_caption(app)
    app.button(key="export_open").click().run()
    no_exceptions(app)
    named = [c.value for c in app.caption if "exactly this result" in c.value]
    assert len(named) == 1 and named[0].startswith(f"{n:,} events") and "type\\:auth" in named[0], named
    assert "usr:omar" not in named[0]
    assert any("could not be read" in w.value for w in app.warning), [w.value for w in app.warning]


def test_caption_never_renders_search_text_as_markdown(app):
    app.run()
    app.text_input(key="f_search").input('"[click](http://evil.example)"').run()
    raw = next(c.value for c in app.caption if "matching" in c.value)
    assert "[click](" not in raw and "\\[click\\]\\(" in raw


def test_viewer_cannot_export_and_is_told_why(db, monkeypatch, tmp_path):
    monkeypatch.setenv("AUDIT_DB_URL", db[0])
    signed_in_as(monkeypatch, tmp_path, "viewer")
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["aa_user"] = "tester"
    at.run()
    no_exceptions(at)
    button = at.button(key="export_open")
    assert button.disabled
    from audit_analytics.accounts import NO_EXPORT_PERMISSION

    assert button.help == NO_EXPORT_PERMISSION
    assert any(c.value == NO_EXPORT_PERMISSION for c in at.caption)


def test_nothing_is_shown_before_sign_in(db, monkeypatch, tmp_path):
    monkeypatch.setenv("AUDIT_DB_URL", db[0])
    signed_in_as(monkeypatch, tmp_path, "auditor")
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert not shown_tables(at) and [t.value for t in at.title] == ["Audit Analytics"]
    assert at.text_input(key="signin_password") is not None


def test_filters_follow_the_reader_across_pages(db, monkeypatch, as_role):
    monkeypatch.setenv("AUDIT_DB_URL", db[0])
    at = as_role(AppTest.from_file(APP, default_timeout=60), "auditor")
    at.query_params.update({"period": "30d", "q": "action:delete"})
    at.run()
    at.switch_page("app_pages/activity.py")
    at.query_params.clear()  # what a sidebar page switch does to the address
    at.run()
    no_exceptions(at)
    assert dict(at.query_params) == {"period": "30d", "q": "action:delete"}
    at.switch_page("app_pages/explorer.py").run()
    assert "last 30 days · matching action:delete" in caption(at)


@pytest.mark.parametrize("mode", ["memory", "pushdown"])
def test_include_archive_finds_events_retention_moved(tmp_path, monkeypatch, as_role, mode):
    """In both engine modes (pushdown failed with AttributeError: 'SqlIndex' object has no
    attribute 'materialised')."""
    from audit_analytics.io import retention

    monkeypatch.setenv("AUDIT_ENGINE", mode)

    url = f"sqlite:///{tmp_path / 'retained.db'}"
    store = open_store(url)
    events = generate(2_000, seed=8).events
    store.append(events)
    folder = tmp_path / "archive"
    policy = tmp_path / "retention.toml"
    policy.write_text(f'archive = "{folder}"\n[days]\nsecurity = 30\noperational = 30\n')
    monkeypatch.setenv("AUDIT_RETENTION_POLICY", str(policy))
    run = retention.apply(store, retention.load_policy(), actor="test")
    cutoff = datetime.now(UTC) - timedelta(days=30)
    moved = sum(1 for t in events["time"].to_list() if t < cutoff)
    assert moved > 0 and (run.archived if hasattr(run, "archived") else moved) == moved
    store.engine.dispose()

    monkeypatch.setenv("AUDIT_DB_URL", url)
    at = as_role(AppTest.from_file(APP, default_timeout=60), "auditor")
    at.query_params["period"] = "all"
    at.run()
    without = count_in_caption(at)
    # "all time" of the database is not all time: the page says how many events it left out
    beside = [c.value for c in at.caption if c.value.startswith("Retention moved")]
    assert beside == [
        f"Retention moved {moved:,} events of these months and categories to the archive: they are not "
        "in this count. Turn on Include archive in the sidebar to search them too."
    ]
    at.toggle(key="f_archive").set_value(True).run()
    no_exceptions(at)
    assert count_in_caption(at) == without + moved
    assert "including the archive" in caption(at)
    assert not [c for c in at.caption if c.value.startswith("Retention moved")]
    assert at.query_params["archive"] == "1"
    old = min((r for r in events.to_dicts() if r["params"]), key=lambda r: r["time"])
    at.query_params["event"] = old["id"]
    at.run()
    assert detail_values(at)["Event ID"] == old["id"]
    # its params are no longer in the database: they come from the archive file
    assert store.get(old["id"]) is None
    shown = [c.value for c in at.code]
    expected = json.dumps(json.loads(old["params"]), indent=2, ensure_ascii=False, sort_keys=True)
    assert any(expected in v for v in shown), shown


def test_include_archive_above_the_memory_limit_says_why_not(tmp_path, monkeypatch, as_role):
    """Pushdown with a table larger than the memory limit: the archive cannot be merged in
    memory, so the page says so and goes on showing the database's events."""
    url = f"sqlite:///{tmp_path / 'big.db'}"
    store = open_store(url)
    store.append(generate(2_000, seed=8).events)
    store.engine.dispose()
    monkeypatch.setenv("AUDIT_DB_URL", url)
    monkeypatch.setenv("AUDIT_ENGINE", "pushdown")
    monkeypatch.setenv("AUDIT_MEMORY_LIMIT", "1000")
    at = as_role(AppTest.from_file(APP, default_timeout=60), "auditor")
    at.query_params.update({"period": "all", "archive": "1"})
    at.run()
    no_exceptions(at)
    assert any("archive cannot be searched" in w.value and "1,000" in w.value for w in at.warning)
    assert count_in_caption(at) == 2_000


def test_new_events_appear_without_a_full_reload(tmp_path, monkeypatch, as_role):
    from audit_analytics.engines import shared
    from audit_analytics.engines.memory import EventIndex

    url = f"sqlite:///{tmp_path / 'growing.db'}"
    store = open_store(url)
    store.append(generate(1_500, seed=12).events)
    monkeypatch.setenv("AUDIT_DB_URL", url)
    monkeypatch.setattr(shared, "FRESHNESS_SECONDS", 0.0)
    built = []
    original = EventIndex.__init__

    def counting_init(self, frame, **kwargs):
        built.append(frame.height)
        original(self, frame, **kwargs)

    monkeypatch.setattr(EventIndex, "__init__", counting_init)
    at = as_role(AppTest.from_file(APP, default_timeout=60), "auditor")
    at.query_params["period"] = "all"
    at.run()
    before = count_in_caption(at)
    store.record(actor="zz-newcomer", type="auth", action="login", target="web")
    at.text_input(key="f_search").input("zz-newcomer").run()
    no_exceptions(at)
    assert count_in_caption(at) == 1
    at.text_input(key="f_search").input("").run()
    assert count_in_caption(at) == before + 1
    assert len(built) == 1  # built once; the new event was appended, not reloaded
    store.engine.dispose()


def stored_now(db) -> list[dict]:
    """Every stored row now, the exports other tests recorded included."""
    store = open_store(db[0])
    try:
        return store.load().to_dicts()
    finally:
        store.engine.dispose()


def click_header(at, column: str):
    """What a click on a column header sends: the table's column selection."""
    view = at.session_state["view"]
    generation = at.session_state["_table_generation"] if "_table_generation" in at.session_state else 0
    key = table_key(view, generation)
    at.session_state[key] = {"selection": {"rows": [], "columns": [column], "cells": []}}
    return at.run()


def test_a_header_click_sorts_the_whole_result_one_actor_newest_first(app, db):
    app.run()
    click_header(app, "Actor")
    no_exceptions(app)
    assert app.query_params["sort"] == "actor"
    assert app.selectbox(key="sort_col").value == "actor"
    assert app.segmented_control(key="sort_dir").value == "asc"
    rows = sorted(last_days(stored_now(db), 7), key=lambda r: (r["time"], r["id"]), reverse=True)
    expected = sorted(rows, key=lambda r: (r["actor"] is None, (r["actor"] or "").lower()))
    shown = table(app)
    assert list(zip(shown["Actor"][:50], shown["Time"][:50], strict=True)) == [
        (r["actor"] or "", r["time"].strftime("%Y-%m-%d %H:%M:%S")) for r in expected[:50]
    ]
    # again: Z first, each actor's events still newest first
    click_header(app, "Actor")
    assert app.query_params["sort"] == "-actor"
    expected = sorted(
        [r for r in rows if r["actor"] is not None], key=lambda r: r["actor"].lower(), reverse=True
    )
    shown = table(app)
    assert list(zip(shown["Actor"][:50], shown["Time"][:50], strict=True)) == [
        (r["actor"], r["time"].strftime("%Y-%m-%d %H:%M:%S")) for r in expected[:50]
    ]
    # a column the result cannot be ordered by changes nothing
    click_header(app, "IP")
    no_exceptions(app)
    assert app.query_params["sort"] == "-actor"


def test_a_new_sort_column_starts_in_its_reading_order(app):
    """Text A–Z, time newest first (a first sort by actor came out Z–A: the order was kept)."""
    app.run()
    assert app.query_params.get("sort") in (None, "-time")
    app.selectbox(key="sort_col").set_value("actor").run()
    no_exceptions(app)
    assert app.segmented_control(key="sort_dir").value == "asc" and app.query_params["sort"] == "actor"
    # and read in that order: A–Z first, as Newest comes first for time
    assert app.segmented_control(key="sort_dir").options == ["A–Z", "Z–A"]
    app.segmented_control(key="sort_dir").set_value("desc").run()
    assert app.query_params["sort"] == "-actor"
    app.selectbox(key="sort_col").set_value("target").run()
    assert app.query_params["sort"] == "target"
    app.selectbox(key="sort_col").set_value("time").run()
    assert app.segmented_control(key="sort_dir").options[0] == "Newest"
    assert app.segmented_control(key="sort_dir").value == "desc" and app.query_params.get("sort") in (
        None,
        "-time",
    )


def test_sorting_by_actor_keeps_each_actors_events_newest_first(app, db):
    app.run()
    app.selectbox(key="sort_col").set_value("actor").run()
    app.segmented_control(key="sort_dir").set_value("asc").run()
    no_exceptions(app)
    rows = sorted(last_days(stored_now(db), 7), key=lambda r: (r["time"], r["id"]), reverse=True)
    expected = sorted(rows, key=lambda r: (r["actor"] is None, (r["actor"] or "").lower()))
    shown = table(app)
    assert list(zip(shown["Actor"], shown["Time"], strict=True)) == [
        (r["actor"] or "", r["time"].strftime("%Y-%m-%d %H:%M:%S")) for r in expected[:100]
    ]


def test_the_login_failures_preset_counts_what_the_security_review_counts(tmp_path, monkeypatch):
    """The preset set Type auth and Result failed: a failed key exchange or a denied call of the
    auth category counted as a login failure there (1,250 on imported logs) and not on the
    Security review (711). It adds ``action:login`` to the search, which it keeps."""
    from audit_analytics.analysis.review import security_review
    from audit_analytics.engines.sql import open_engine
    from audit_analytics.filters import Filter

    url = f"sqlite:///{tmp_path / 'a.db'}"
    store = open_store(url)
    now = datetime.now(UTC)
    events = [
        {
            "id": f"e{i}",
            "time": now - timedelta(minutes=i),
            "actor": "ann",
            "type": "auth",
            "action": action,
            "result": "failed",
            "ip": "192.0.2.1",
            "target": "ssh",
        }
        for i, action in enumerate(["login", "login", "key_exchange", "timeout", "login", "mfa"])
    ]
    store.append(pl.DataFrame(events).with_columns(pl.col("time").dt.replace_time_zone("UTC")))
    expected = security_review(open_engine(store), Filter(period="7d")).summary().failures
    store.engine.dispose()
    assert expected == 3
    monkeypatch.setenv("AUDIT_DB_URL", url)
    signed_in_as(monkeypatch, tmp_path, "auditor")
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["aa_user"] = "tester"
    at.run()
    at.text_input(key="f_search").set_value("ip:192.0.2.0/24")
    at.run()
    at.button(key="preset_login_failures").click().run()
    no_exceptions(at)
    assert count_in_caption(at) == expected
    assert at.query_params["q"] == "action:login ip:192.0.2.0/24"
    assert at.text_input(key="f_search").value == "action:login ip:192.0.2.0/24"
    at.button(key="preset_login_failures").click().run()  # a second click adds nothing
    assert at.query_params["q"] == "action:login ip:192.0.2.0/24"
    # the next preset replaces it (Permission changes showed "0 events · permission · matching
    # action:login"), and the user's own search stays
    at.button(key="preset_permission_changes").click().run()
    no_exceptions(at)
    assert at.query_params["q"] == "ip:192.0.2.0/24" and at.query_params["type"] == "permission"


def test_failure_patterns_leave_the_presets_search_term_behind(app):
    """From the Login failures view, Failure patterns carried ``action:login`` to the Security
    review, whose detections then read logins only (Off-hours 55 findings instead of 12)."""
    app.run()
    app.button(key="preset_login_failures").click().run()
    assert app.query_params["q"] == "action:login"
    app.button(key="open_security_review").click().run()
    no_exceptions(app)
    assert "q" not in app.query_params and "type" not in app.query_params

"""The Activity page through AppTest: charts, downloads, safe labels, click-to-explorer.

The page runs inside a small navigation app (the explorer and the activity page, as in
app.py), written to a temporary folder whose ``pages`` links to the real one, so
``st.switch_page`` resolves exactly as in the app. Expected numbers are counted in plain
Python over the stored rows.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from conftest import nav_script
from streamlit.testing.v1 import AppTest

from audit_analytics.accounts import NO_EXPORT_PERMISSION
from audit_analytics.analysis import activity
from audit_analytics.demo.generate import generate
from audit_analytics.engines.store import open_store
from audit_analytics.filters import Filter
from audit_analytics.schema import CATEGORIES, RETENTION_GROUPS, SCHEMA, WRITE_ACTIONS
from audit_analytics.ui.charts import (
    CATEGORY_COLORS,
    category_label,
    clicked_drill,
    csv_bytes,
    drill,
    drill_view,
    escape_label,
)
from audit_analytics.view import View

HOSTILE_ACTOR = "<img src=x onerror=alert(1)>"
HOSTILE_TARGET = '=HYPERLINK("http://evil.example","[click](http://evil.example)")<script>x</script>'
CHART_KEYS = (
    "activity_events",
    "activity_results",
    "activity_compare",
    "activity_actors",
    "activity_targets",
    "activity_changes",
    "activity_heatmap",
    "activity_retention",
)
NAV_PAGES = """\
    st.Page("app_pages/explorer.py", title="Audit Log", url_path="audit-log", default=True),
    st.Page("app_pages/activity.py", title="Activity", url_path="activity"),
"""


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    folder = tmp_path_factory.mktemp("activity")
    url = f"sqlite:///{folder / 'audit.db'}"
    store = open_store(url)
    store.append(generate(3_000, seed=5).events)
    now = datetime.now(UTC).replace(microsecond=0)
    hostile = [
        {
            "id": f"hostile-{i}",
            "time": now - timedelta(hours=3, minutes=i),
            "actor": HOSTILE_ACTOR,
            "type": "service",
            "action": "update" if i % 2 else "login",
            "target": HOSTILE_TARGET,
            "result": "failed" if i % 3 == 0 else "done",
            "description": "hostile",
        }
        for i in range(60)
    ]
    store.append(pl.DataFrame(hostile).with_columns(pl.col("time").dt.cast_time_unit("us")).pipe(_conform))
    rows = store.load().to_dicts()
    store.engine.dispose()
    return url, rows


def _conform(frame: pl.DataFrame) -> pl.DataFrame:
    from audit_analytics.schema import conform

    return conform(frame.cast({"time": SCHEMA["time"]}))


@pytest.fixture(scope="module")
def nav_app(tmp_path_factory) -> Path:
    return nav_script(tmp_path_factory.mktemp("nav"), NAV_PAGES)


@pytest.fixture
def at(db, nav_app, monkeypatch, as_role):
    monkeypatch.setenv("AUDIT_DB_URL", db[0])
    app = as_role(AppTest.from_file(str(nav_app), default_timeout=60), "viewer")
    app.switch_page("app_pages/activity.py")
    return app


def rows_of(db) -> list[dict]:
    return [r for r in db[1] if not r["id"].startswith("aa-")]


def chart(at, key: str):
    return next(c for c in at.get("plotly_chart") if c.proto.id.endswith(f"-{key}"))


def spec(at, key: str) -> dict:
    return json.loads(chart(at, key).proto.spec)


def click(at, key: str, trace: dict, index: int = 0) -> None:
    """Select one point as the browser does after a click, then rerun."""
    point = {
        "curve_number": 0,
        "point_number": index,
        "point_index": index,
        "x": (trace.get("x") or [None])[index],
        "y": (trace.get("y") or [None])[index],
        "customdata": trace["customdata"][index],
    }
    at.session_state[key] = {
        "selection": {"points": [point], "point_indices": [index], "box": [], "lasso": []}
    }
    at.run()


def explorer_count(at) -> int:
    assert [t.value for t in at.title] == ["Audit Log"]
    text = next(c.value for c in at.caption if " event" in c.value and "·" in c.value)
    return int(text.split(" event")[0].replace(",", ""))


def in_range(rows, params) -> list[dict]:
    start, end = datetime.fromisoformat(params["from"]), datetime.fromisoformat(params["to"])
    return [r for r in rows if start <= r["time"] < end]


def last_7_days(rows) -> list[dict]:
    today = datetime.now(UTC).date()
    start = datetime.combine(today - timedelta(days=6), datetime.min.time(), tzinfo=UTC)
    return [r for r in rows if r["time"] >= start]


# -- rendering ---------------------------------------------------------------------------------
def test_renders_every_chart_with_titles_axes_and_downloads(at):
    at.run()
    assert not at.exception
    assert [t.value for t in at.title] == ["Activity"]
    ids = [c.proto.id for c in at.get("plotly_chart")]
    assert len(ids) == len(CHART_KEYS)
    assert all(any(i.endswith(f"-{k}") for i in ids) for k in CHART_KEYS)
    for key in CHART_KEYS:
        layout = spec(at, key)["layout"]
        assert layout["title"]["text"], key
        assert layout["xaxis"]["title"]["text"] and layout["yaxis"]["title"]["text"], key
    buttons = at.get("download_button")
    assert len(buttons) == len(CHART_KEYS)
    assert {b.proto.label for b in buttons} == {"Download chart data"}


def test_each_category_keeps_its_colour(at):
    at.run()
    # the legends name the categories by their codes (narrow charts); the hover in full
    for key in ("activity_events", "activity_changes", "activity_actors", "activity_targets"):
        for trace in spec(at, key)["data"]:
            code = next(c for c in CATEGORIES if c == trace["name"])
            assert trace["marker"]["color"] == CATEGORY_COLORS[code], (key, code)
            assert category_label(code) in trace["hovertemplate"] + json.dumps(trace["customdata"]), key
    assert len(set(CATEGORY_COLORS.values())) == 16


def test_numbers_match_the_rows(at, db):
    at.run()
    rows = last_7_days(rows_of(db))
    bars = spec(at, "activity_events")["data"]
    assert sum(sum(t["y"]) for t in bars) == len(rows)
    metric = next(m for m in at.metric if m.label == "Events")
    assert metric.value == f"{len(rows):,}"
    heat = spec(at, "activity_heatmap")["data"][0]["z"]
    assert sum(map(sum, heat)) == len(rows)


def test_user_text_never_becomes_html_or_markdown(at):
    at.run()
    actors = json.dumps(spec(at, "activity_actors"))
    targets = json.dumps(spec(at, "activity_targets"))
    assert "&lt;img src=x onerror=alert(1)&gt;" in actors
    assert "<img" not in actors
    assert "<script>" not in targets and "&lt;script&gt;" in targets
    rendered = " ".join(m.value for m in at.markdown) + " ".join(c.value for c in at.caption)
    assert "onerror" not in rendered and "evil.example" not in rendered


def test_a_hostile_user_filter_is_shown_as_typed(at):
    at.query_params["user"] = HOSTILE_ACTOR
    at.run()
    assert not at.exception
    text = next(c.value for c in at.caption if " event" in c.value)
    assert "\\<img src\\=x onerror\\=alert\\(1\\)\\>" in text
    assert "<img" not in text.replace("\\<img", "")


@pytest.fixture
def deferred(monkeypatch) -> dict:
    """The download buttons' callables by file name, as the script run registered them (a
    callable runs only when its button is clicked; AppTest's runtime lives for a run only)."""
    from streamlit.runtime.media_file_manager import MediaFileManager

    kept: dict = {}
    original = MediaFileManager.add_deferred

    def keep(self, data_callable, mimetype, coordinates, file_name=None, **kwargs):
        kept[file_name] = data_callable
        return original(self, data_callable, mimetype, coordinates, file_name, **kwargs)

    monkeypatch.setattr(MediaFileManager, "add_deferred", keep)
    return kept


def click_downloads(deferred: dict) -> dict[str, bytes]:
    """Click every enabled download button: its callable runs and makes the file."""
    return {name: make() for name, make in deferred.items()}


def exports_recorded(url: str) -> list[dict]:
    store = open_store(url)
    try:
        frame = store.load(Filter(types=("audit",), period="all"))
    finally:
        store.engine.dispose()
    return [r for r in frame.to_dicts() if r["action"] == "export" and r["id"].startswith("aa-")]


@pytest.fixture
def own_db(db, tmp_path, monkeypatch):
    """A copy of the module's database for a test that writes (an export's audit event)."""
    import shutil

    copy = tmp_path / "audit.db"
    shutil.copy(db[0].removeprefix("sqlite:///"), copy)
    url = f"sqlite:///{copy}"
    monkeypatch.setenv("AUDIT_DB_URL", url)
    return url


def test_download_gives_the_numbers_behind_the_chart_with_safe_cells(at, own_db, as_role, deferred):
    as_role(at, "auditor")
    at.run()
    assert not at.exception
    assert not [c for c in at.caption if c.value.startswith("Chart data downloads are off")]
    assert exports_recorded(own_db) == []  # drawing the buttons records nothing
    saved = click_downloads(deferred)
    assert set(saved) >= {f"activity-{n}.csv" for n in ("events-over-time", "top-targets", "weekday-hour")}
    table = list(csv.DictReader(io.StringIO(saved["activity-top-targets.csv"].decode("utf-8-sig"))))
    assert table[0]["target"] == "'" + HOSTILE_TARGET  # a formula is neutralised
    assert {"rank", "target", "total", "type", "events"} <= set(table[0])
    events = list(csv.DictReader(io.StringIO(saved["activity-events-over-time.csv"].decode("utf-8-sig"))))
    bars = spec(at, "activity_events")["data"]
    assert sum(int(r["events"]) for r in events) == sum(sum(t["y"]) for t in bars)
    assert events[0]["bucket"].endswith("+00:00")
    # every download is an export: recorded with who, which file, how many rows and the filter
    recorded = {r["target"]: r for r in exports_recorded(own_db)}
    assert set(recorded) == set(saved)
    top = recorded["activity-top-targets.csv"]
    assert top["actor"] == "tester"
    params = json.loads(top["params"])
    assert params["count"] == len(table) and params["what"] == "chart data"
    assert params["filter"]["period"] == "7d"


def test_a_viewer_cannot_download_chart_data(at, own_db, deferred):
    at.run()  # the fixture signs in a viewer: audit.read only
    assert not at.exception
    buttons = at.get("download_button")
    assert len(buttons) == len(CHART_KEYS)
    assert all(b.proto.disabled and not b.proto.url for b in buttons)
    assert all("export" in b.proto.help.lower() for b in buttons)
    # and the page says why in words, which a touch screen shows (it shows no tooltip)
    assert [c.value for c in at.caption if c.value.startswith("Chart data downloads are off")] == [
        f"Chart data downloads are off for you. {NO_EXPORT_PERMISSION}"
    ]
    assert deferred == {}
    assert exports_recorded(own_db) == []


def test_url_filters_narrow_every_chart(at, db):
    at.query_params["type"] = "auth"
    at.query_params["period"] = "all"
    at.run()
    assert not at.exception
    names = {t["name"] for t in spec(at, "activity_events")["data"]}
    assert names == {"auth"}
    total = sum(sum(t["y"]) for t in spec(at, "activity_events")["data"])
    assert total == sum(r["type"] == "auth" for r in rows_of(db))
    assert dict(at.query_params) == {"period": "all", "type": "auth"}


def test_empty_period_says_so(at):
    at.query_params.update({"period": "custom", "from": "2001-01-01", "to": "2001-01-02"})
    at.run()
    assert not at.exception
    assert not at.get("plotly_chart")
    assert "No events match" in at.info[0].value


# -- click to the explorer ------------------------------------------------------------------------
def test_click_a_category_bar_opens_that_bucket(at, db):
    at.run()
    trace = spec(at, "activity_events")["data"][-1]
    drill = json.loads(trace["customdata"][-1][0])
    height = trace["y"][-1]
    click(at, "activity_events", trace, index=len(trace["y"]) - 1)
    params = dict(at.query_params)
    assert params["type"] == drill["type"] and params["period"] == "custom"
    assert (params["from"], params["to"]) == (drill["start"], drill["end"])
    expected = [r for r in in_range(rows_of(db), params) if r["type"] == drill["type"]]
    assert len(expected) == height == explorer_count(at)


def test_click_the_failure_rate_opens_the_failures_of_that_bucket(at, db):
    at.run()
    line = next(t for t in spec(at, "activity_results")["data"] if t.get("mode") == "lines+markers")
    i = max(range(len(line["y"])), key=lambda k: line["y"][k] or 0)
    click(at, "activity_results", line, index=i)
    params = dict(at.query_params)
    assert params["result"] == "failed"
    expected = [r for r in in_range(rows_of(db), params) if r["result"] == "failed"]
    assert len(expected) == explorer_count(at) > 0


def test_click_an_actor_opens_their_events_in_that_category(at, db):
    at.run()
    trace = next(t for t in spec(at, "activity_actors")["data"] if t["name"] == "service")
    i = next(k for k, d in enumerate(trace["customdata"]) if json.loads(d[0])["actor"] == HOSTILE_ACTOR)
    click(at, "activity_actors", trace, index=i)
    params = dict(at.query_params)
    assert params["user"] == HOSTILE_ACTOR and params["type"] == "service"
    expected = [r for r in last_7_days(rows_of(db)) if r["actor"] == HOSTILE_ACTOR and r["type"] == "service"]
    assert len(expected) == trace["x"][i] == explorer_count(at) == 60


def test_click_a_target_searches_for_exactly_that_target(at, db):
    at.run()
    trace = next(t for t in spec(at, "activity_targets")["data"] if t["name"] == "service")
    i = next(k for k, d in enumerate(trace["customdata"]) if json.loads(d[0])["target"] == HOSTILE_TARGET)
    click(at, "activity_targets", trace, index=i)
    params = dict(at.query_params)
    assert params["q"].startswith("resource:")
    expected = [
        r for r in last_7_days(rows_of(db)) if r["target"] == HOSTILE_TARGET and r["type"] == "service"
    ]
    assert len(expected) == explorer_count(at) == 60


def test_click_a_change_bar_opens_only_write_actions(at, db):
    at.run()
    trace = spec(at, "activity_changes")["data"][0]
    drill = json.loads(trace["customdata"][0][0])
    click(at, "activity_changes", trace)
    params = dict(at.query_params)
    assert params["type"] == drill["type"] and "action:create" in params["q"]
    expected = [
        r
        for r in in_range(rows_of(db), params)
        if r["type"] == drill["type"] and r["action"] in WRITE_ACTIONS
    ]
    assert len(expected) == trace["y"][0] == explorer_count(at)


def test_click_a_previous_period_bar_opens_the_period_before(at, db):
    at.run()
    faded = spec(at, "activity_compare")["data"][0]
    i = max(range(len(faded["y"])), key=lambda k: faded["y"][k])
    click(at, "activity_compare", faded, index=i)
    params = dict(at.query_params)
    today = datetime.now(UTC).date()
    assert (
        params["from"] == datetime.combine(today - timedelta(days=13), datetime.min.time(), UTC).isoformat()
    )
    # the last 7 days are still running: the 7 days before count up to the same point (this
    # time of day, 7 days ago), not to their end
    to = datetime.fromisoformat(params["to"])
    assert abs(to - (datetime.now(UTC) - timedelta(days=7))) < timedelta(minutes=5)
    assert to < datetime.combine(today - timedelta(days=6), datetime.min.time(), UTC)
    expected = [r for r in in_range(rows_of(db), params) if r["type"] == params["type"]]
    assert len(expected) == faded["y"][i] == explorer_count(at)


def test_click_a_retention_group_opens_its_categories_over_all_time(at, db):
    at.run()
    trace = spec(at, "activity_retention")["data"][0]
    click(at, "activity_retention", trace)
    params = dict(at.query_params)
    assert params["period"] == "all" and params["type"] == ",".join(RETENTION_GROUPS["security"])
    expected = [r for r in rows_of(db) if r["type"] in RETENTION_GROUPS["security"]]
    assert len(expected) == explorer_count(at)


def test_the_view_is_shared_with_the_explorer(at):
    at.query_params.update({"type": "backup", "result": "failed", "q": "action:delete"})
    at.run()
    at.switch_page("app_pages/explorer.py").run()
    assert not at.exception
    assert dict(at.query_params) == {"type": "backup", "result": "failed", "q": "action:delete"}
    assert "backup" in next(c.value for c in at.caption if " event" in c.value)


# -- the chart helpers, without the app -----------------------------------------------------------
DRILL_NOW = datetime(2025, 10, 27, 12, 0, tzinfo=UTC)
DRILL_VIEW = View(filter=Filter(period="7d", tz="Europe/Paris", query="ip:10.0.0.1"))


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        pytest.param({"type": "auth"}, {"type": "auth", "q": "ip:10.0.0.1"}, id="category"),
        pytest.param(
            {"result": "failed", "start": "2025-10-26T00:00:00+02:00", "end": "2025-10-27T00:00:00+01:00"},
            {
                "period": "custom",
                "from": "2025-10-26T00:00:00+02:00",
                "to": "2025-10-27T00:00:00+01:00",
                "result": "failed",
                "q": "ip:10.0.0.1",
            },
            id="25-hour-day",
        ),
        pytest.param(
            {"type": "vpn", "start": "2025-10-20T00:00:00+02:00", "end": "2025-10-27T00:00:00+01:00"},
            {
                "period": "custom",
                "from": "2025-10-21T00:00:00+02:00",
                "to": "2025-10-27T00:00:00+01:00",
                "type": "vpn",
                "q": "ip:10.0.0.1",
            },
            id="week-cut-to-the-period",
        ),
        pytest.param(
            {"actor": "doe, jane", "type": "user"},
            {"type": "user", "user": '["doe, jane"]', "q": "ip:10.0.0.1"},
            id="actor-with-comma",
        ),
        pytest.param(
            {"target": 'db "main"', "type": "database"},
            {"type": "database", "q": 'ip:10.0.0.1 resource:"db \\"main\\""'},
            id="target",
        ),
        pytest.param(
            {"type": "infra", "writes": True},
            {"type": "infra", "q": "ip:10.0.0.1 " + activity.write_actions_query()},
            id="writes",
        ),
        pytest.param(
            {"type": "auth", "previous": True},
            {
                "period": "custom",
                "from": "2025-10-13T22:00:00+00:00",
                # the week is still running at DRILL_NOW (Monday 13:00 in Paris): the week
                # before up to Monday 13:00 on its own clock (summer time: 11:00 UTC)
                "to": "2025-10-20T11:00:00+00:00",
                "type": "auth",
                "q": "ip:10.0.0.1",
            },
            id="previous-period",
        ),
        pytest.param(
            {"group": "security", "all_time": True},
            {"period": "all", "type": ",".join(RETENTION_GROUPS["security"]), "q": "ip:10.0.0.1"},
            id="retention-group",
        ),
    ],
)
def test_drill_view(changes, expected):
    view = drill_view(DRILL_VIEW, json.loads(drill(**changes)), now=DRILL_NOW)
    assert view.to_params() == expected
    assert View.from_params(view.to_params(), tz="Europe/Paris").filter == view.filter


@pytest.mark.parametrize(
    "event",
    [
        None,
        {},
        {"selection": {"points": []}},
        {"selection": {"points": [{"customdata": ["not json"]}]}},
        {"selection": {"points": [{"x": 1}]}},
    ],
    ids=["none", "empty", "no-points", "bad-json", "no-customdata"],
)
def test_a_click_without_a_drill_does_nothing(event):
    assert clicked_drill(event) is None


def test_drill_text_carries_no_markup_but_reads_back():
    text = drill(actor="<b>&</b>")
    assert "<" not in text and "&" not in text
    assert json.loads(text) == {"actor": "<b>&</b>"}


def test_csv_bytes_neutralises_formulas_and_keeps_offsets():
    frame = pl.DataFrame(
        {
            "bucket": [datetime(2025, 10, 26, tzinfo=UTC)],
            "type": pl.Series(["auth"], dtype=SCHEMA["type"]),
            "actor": ["=cmd|' /C calc'!A0"],
            "events": [3],
        }
    ).with_columns(pl.col("bucket").dt.convert_time_zone("Europe/Paris"))
    lines = csv_bytes(frame).decode("utf-8-sig").splitlines()
    assert lines == ["bucket,type,actor,events", "2025-10-26T02:00:00+02:00,auth,'=cmd|' /C calc'!A0,3"]


def test_escape_label_shows_markup_as_typed():
    assert escape_label("<script>&amp;\x1b[31m") == "&lt;script&gt;&amp;amp;\\x1b[31m"


def test_buckets_follow_the_viewers_zone(at, db):
    at.context = {"timezone": "America/New_York"}
    at.query_params["period"] = "30d"
    at.run()
    assert not at.exception
    figure = spec(at, "activity_events")
    assert figure["layout"]["xaxis"]["title"]["text"] == "Day (America/New_York)"
    drills = [(json.loads(d[0]), trace) for trace in figure["data"] for d in trace["customdata"]]
    assert all(
        d["start"][10:19] == "T00:00:00" and d["start"][19:] in ("-04:00", "-05:00") for d, _ in drills
    )
    # the longest day (25 hours when DST ends inside the period) is the one to click
    longest, trace = max(
        drills, key=lambda p: datetime.fromisoformat(p[0]["end"]) - datetime.fromisoformat(p[0]["start"])
    )
    index = next(i for i, d in enumerate(trace["customdata"]) if json.loads(d[0]) == longest)
    click(at, "activity_events", trace, index=index)
    params = dict(at.query_params)
    assert (params["from"], params["to"]) == (longest["start"], longest["end"])
    expected = [r for r in in_range(rows_of(db), params) if r["type"] == longest["type"]]
    assert len(expected) == trace["y"][index] == explorer_count(at)


def test_hover_names_the_bucket_once_per_trace_not_per_point():
    """The hover's bucket text is a plotly format of x (one per trace), and per point only
    where the UTC offset changes inside the chart; the drill stays first in customdata."""
    from zoneinfo import ZoneInfo

    from audit_analytics.ui.charts import bars_over_time, bucket_hover, bucket_text

    paris = ZoneInfo("Europe/Paris")
    starts = [datetime(2026, 11, 20, h, tzinfo=paris) for h in range(3)]
    assert bucket_hover(starts, "1h") == ("%{x|%Y-%m-%d %H:%M}, one hour (UTC+01:00)", None)
    assert bucket_hover(starts, "1d") == ("%{x|%a %Y-%m-%d}", None)
    assert bucket_hover(starts, "1w") == ("week of %{x|%Y-%m-%d}", None)
    # the night summer time ends: 02:00 twice, at two offsets
    dst = [datetime(2026, 10, 25, 0, 30, tzinfo=UTC) + timedelta(hours=h) for h in range(3)]
    dst = [d.astimezone(paris).replace(minute=0) for d in dst]
    fmt, texts = bucket_hover(dst, "1h")
    assert fmt == "%{customdata[1]}" and texts == [bucket_text(d, "1h") for d in dst]
    assert texts[0].startswith("2026-10-25 02:00") and texts[0].endswith("(UTC+02:00)")
    assert texts[1].startswith("2026-10-25 02:00") and texts[1].endswith("(UTC+01:00)")
    data = pl.DataFrame({"bucket": starts, "type": ["auth"] * 3, "events": [1, 2, 3]}).with_columns(
        pl.col("bucket").dt.convert_time_zone("Europe/Paris")
    )
    fig = bars_over_time(
        data, series="type", value="events", every="1h", tz="Europe/Paris", title="t", y_title="y"
    )
    trace = fig.data[0]
    assert [len(c) for c in trace.customdata] == [1, 1, 1]
    assert json.loads(trace.customdata[0][0])["start"] == "2026-11-20T00:00:00+01:00"
    assert "customdata[1]" not in trace.hovertemplate and "(UTC+01:00)" in trace.hovertemplate


@pytest.mark.parametrize(("every", "step"), [("1h", timedelta(hours=1)), ("1d", timedelta(days=1))])
def test_one_bucket_is_drawn_as_that_bucket(every, step):
    """Today just after midnight has one hour: plotly zoomed to "23:59:59.9996 … 00:00:00.0004"
    with the bar filling the chart. One bucket now spans a bucket either side of it."""
    from audit_analytics.ui.charts import bars_over_time

    start = datetime(2026, 12, 8, 0, tzinfo=UTC)
    data = pl.DataFrame({"bucket": [start, start], "type": ["auth", "user"], "events": [3, 1]})
    fig = bars_over_time(data, series="type", value="events", every=every, tz="UTC", title="t", y_title="y")
    assert list(fig.layout.xaxis.range) == [datetime(2026, 12, 8) - step, datetime(2026, 12, 8) + step]
    assert {trace.width for trace in fig.data} == {step.total_seconds() * 1000 * 0.8}
    two = pl.concat([data, data.with_columns(pl.col("bucket") + step)])
    wide = bars_over_time(two, series="type", value="events", every=every, tz="UTC", title="t", y_title="y")
    assert wide.layout.xaxis.range is None and {trace.width for trace in wide.data} == {None}


def test_the_comparison_table_leaves_out_categories_empty_in_both_periods(at):
    """Today's table listed every category, those without an event in either period with
    failure rates of "None"."""
    at.query_params.update({"period": "30d", "type": "auth,vpn"})
    at.run()
    assert not at.exception
    (table,) = [t.value for t in at.dataframe if "previous_events" in t.value.columns]
    assert sorted(table["type"].to_list()) == ["All", "Authentication (auth)", "VPN (vpn)"], table[
        "type"
    ].to_list()


def test_no_changes_say_so_instead_of_an_empty_chart(at):
    at.query_params.update({"period": "all", "q": "action:login"})  # sign-ins: no write action
    at.run()
    assert not at.exception
    assert any(c.value.startswith("No changes (create, update, delete") for c in at.caption)
    assert not [c for c in at.get("plotly_chart") if c.proto.id.endswith("-activity_changes")]


def test_a_period_with_nothing_before_it_compares_with_nothing(at, db):
    """A custom period starting where the log starts compared with an empty period before: every
    change read "+N", the deltas under the figures "+49,283", and the rate columns "None"."""
    first = min(r["time"] for r in rows_of(db)).date()
    last = max(r["time"] for r in rows_of(db)).date()
    at.query_params.update({"period": "custom", "from": first.isoformat(), "to": last.isoformat()})
    at.run()
    assert not at.exception
    assert any("holds no events: nothing to compare with" in c.value for c in at.caption)
    assert not [df for df in at.dataframe if "previous_failure_rate" in df.value.columns]
    assert "activity_compare" not in {c.key for c in at.get("plotly_chart") if getattr(c, "key", None)}
    assert all(m.delta in (None, "") for m in at.metric), [m.delta for m in at.metric]

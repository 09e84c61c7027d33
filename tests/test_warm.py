"""The warm-up: after the data change, the app computes what a first visit to Activity and
Security review shows at their default views, in the background, so that visit reruns over
held results instead of computing them (``SharedData.warm_in_background``,
``ui.data.warm_pages``).

The page tests below hold the warm-up to the pages: if the warm-up computed a result under
another key than the page asks for (another filter, zone, threshold or Top), the page's first
visit would compute it again and the test fails.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from audit_analytics.demo.generate import generate
from audit_analytics.engines.shared import SharedData
from audit_analytics.engines.store import open_store
from audit_analytics.ui import data

ROOT = Path(__file__).resolve().parents[1]


def _store(tmp_path, rows: int = 1_000, seed: int = 3):
    store = open_store(f"sqlite:///{tmp_path / 'audit.db'}")
    store.append(generate(rows, seed=seed).events)
    return store


def _settled(shared: SharedData, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while shared.warming:
        assert time.monotonic() < deadline, "the warm-up did not finish"
        time.sleep(0.02)


def test_the_warmers_run_after_the_first_load_and_after_new_events_not_when_nothing_changed(tmp_path):
    store = _store(tmp_path)
    seen: list[tuple[int, int]] = []
    ran = threading.Event()

    def warmer(shared: SharedData) -> None:
        seen.append((shared.version, shared.index.height))
        ran.set()

    shared = SharedData(warmers=[warmer]).refresh(store)
    assert ran.wait(10)
    _settled(shared)
    assert seen == [(1, 1_000)]

    store.append(generate(1_000, seed=4).events)
    ran.clear()
    shared.refresh(store)
    assert ran.wait(10)
    _settled(shared)
    assert seen[-1] == (2, 2_000)

    ran.clear()
    shared.refresh(store)  # the table did not change: nothing to warm
    assert not ran.wait(0.3)
    assert len(seen) == 2


def test_a_warm_up_asked_while_one_runs_runs_once_more_and_a_failing_warmer_is_logged(tmp_path, caplog):
    shared = SharedData().refresh(_store(tmp_path))
    gate = threading.Event()
    calls: list[str] = []

    def slow(shared: SharedData) -> None:
        calls.append("slow")
        gate.wait(10)

    def broken(shared: SharedData) -> None:
        calls.append("broken")
        raise RuntimeError("boom")

    def after(shared: SharedData) -> None:
        calls.append("after")

    shared.warmers = [slow, broken, after]
    with caplog.at_level(logging.WARNING, logger="audit_analytics.engines.shared"):
        thread = shared.warm_in_background()
        assert thread is not None
        assert shared.warm_in_background() is None  # one runs: it runs again when done
        gate.set()
        thread.join(10)
    assert not thread.is_alive() and not shared.warming
    assert calls == ["slow", "broken", "after"] * 2  # a failure does not stop the others
    assert "warming broken failed: boom" in caplog.text


def test_the_zones_seen_are_the_last_three_latest_first(monkeypatch):
    monkeypatch.setattr(data, "_zones", type(data._zones)())
    assert data.zones_seen() == ("UTC",)  # none noted yet
    for tz in ("Europe/Berlin", "Asia/Tokyo", "UTC", "America/New_York", "Asia/Tokyo"):
        data.note_zone(tz)
    assert data.zones_seen() == ("Asia/Tokyo", "America/New_York", "UTC")


@pytest.mark.parametrize("period", [None, "all"])
@pytest.mark.parametrize("page", ["activity", "security"])
def test_a_first_visit_after_the_warm_up_computes_nothing(tmp_path, monkeypatch, as_role, page, period):
    # None: the default view (last 7 days); "all": All time, warmed too at this size
    # 3,000 demo events end now: the default period (last 7 days) holds some, and failures
    _store(tmp_path, rows=3_000, seed=5).engine.dispose()
    monkeypatch.setenv("AUDIT_DB_URL", f"sqlite:///{tmp_path / 'audit.db'}")
    monkeypatch.setattr(data, "_zones", type(data._zones)())  # only the zone this visit uses
    data.note_zone("UTC")  # AppTest's browser reports no zone: the page's is UTC
    shared = data.get_frame()  # the first load; the warm-up starts after it
    _settled(shared)
    held = set(shared.results)
    assert any(key[1] == ("activity" if page == "activity" else "security") for key in held)

    at = as_role(AppTest.from_file(str(ROOT / "app_pages" / f"{page}.py"), default_timeout=120), "viewer")
    if period:
        at.query_params["period"] = period
    at.run()
    assert not at.exception
    assert at.caption and ("all time" if period else "last 7 days") in at.caption[0].value
    computed = set(shared.results) - held
    assert computed == set(), (
        f"the first visit computed what the warm-up did not: {sorted(map(str, computed))}"
    )


def _periods_held(shared: SharedData) -> set[str]:
    """The periods of the views whose results are held (each result's key holds its Filter)."""
    return {p for key in shared.results for p in re.findall(r"period='(\w+)'", str(key))}


def test_all_time_is_warmed_only_up_to_its_size(tmp_path, monkeypatch):
    # above WARM_ALL_TIME_MAX_EVENTS a change of the data would cost seconds of CPU for a view
    # nobody may open: only the default views are warmed
    _store(tmp_path, rows=3_000, seed=5).engine.dispose()
    monkeypatch.setenv("AUDIT_DB_URL", f"sqlite:///{tmp_path / 'audit.db'}")
    monkeypatch.setattr(data, "_zones", type(data._zones)())
    monkeypatch.setattr(data, "WARM_ALL_TIME_MAX_EVENTS", 2_999)
    shared = data.get_frame()
    _settled(shared)
    assert _periods_held(shared) == {"7d"}
    monkeypatch.setattr(data, "WARM_ALL_TIME_MAX_EVENTS", 3_000)
    data.warm_pages(shared)
    assert _periods_held(shared) == {"7d", "all"}


def test_pushdown_is_not_warmed(tmp_path, monkeypatch):
    # every figure would be a query on the database, again at every new version
    _store(tmp_path).engine.dispose()
    monkeypatch.setenv("AUDIT_DB_URL", f"sqlite:///{tmp_path / 'audit.db'}")
    monkeypatch.setenv("AUDIT_ENGINE", "pushdown")
    shared = data.get_frame()
    assert not shared.index.holds_copy
    _settled(shared)
    assert shared.results == {}
    data.warm_pages(shared)
    assert shared.results == {}


def test_the_warm_up_waits_while_a_page_runs(tmp_path):
    # on 2 cores the first page after sign-in took 2.5 s instead of 1.3 s beside the warm-up
    shared = SharedData().refresh(_store(tmp_path))
    ran = threading.Event()
    shared.warmers = [lambda s: ran.set()]
    with shared.page_run():
        with shared.page_run():  # two sessions' runs
            thread = shared.warm_in_background()
            assert thread is not None
            assert not ran.wait(0.3)
        assert shared.running == 1
        assert not ran.wait(0.2)  # one still runs
    assert ran.wait(5)  # none runs: the warmer goes on
    thread.join(5)
    assert shared.running == 0 and not shared.warming
    assert shared.wait_idle(0.01)


def test_a_page_run_that_fails_still_ends():
    shared = SharedData()
    with pytest.raises(RuntimeError), shared.page_run():
        raise RuntimeError("st.stop, st.rerun and errors leave the run by an exception")
    assert shared.running == 0


@pytest.mark.parametrize(
    ("setting", "on"), [("", True), ("on", True), ("off", False), ("0", False), ("No", False)]
)
def test_audit_warm_up_off_turns_the_warm_up_off(tmp_path, monkeypatch, setting, on):
    _store(tmp_path).engine.dispose()
    monkeypatch.setenv("AUDIT_DB_URL", f"sqlite:///{tmp_path / 'audit.db'}")
    monkeypatch.setenv("AUDIT_WARM_UP", setting)
    shared = data.get_frame()
    assert (shared.warmers == [data.warm_pages]) is on
    _settled(shared)
    assert any(key[1] == "activity" for key in shared.results) is on


def _loaded(shared: SharedData, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not shared.version:
        assert time.monotonic() < deadline, "the events were not loaded"
        time.sleep(0.02)


def test_the_server_start_loads_the_events_before_anyone_visits(tmp_path, monkeypatch, caplog):
    _store(tmp_path).engine.dispose()
    monkeypatch.setenv("AUDIT_DB_URL", f"sqlite:///{tmp_path / 'audit.db'}")
    with caplog.at_level(logging.WARNING):
        data.preload_at_start()  # what ui/serve.py does before Streamlit's server starts
        shared = data.current_shared()
        _loaded(shared)
    assert shared.index.height == 1_000
    assert "ScriptRunContext" not in caplog.text  # outside a session, said nothing about it
    _settled(shared)
    assert data.current_shared() is shared  # the object every session then gets


def test_a_viewer_in_a_zone_not_seen_gets_its_views_warmed_while_signing_in(tmp_path, monkeypatch):
    # the events were loaded at the server's start, warmed in the zones seen until then
    _store(tmp_path, rows=3_000, seed=5).engine.dispose()
    monkeypatch.setenv("AUDIT_DB_URL", f"sqlite:///{tmp_path / 'audit.db'}")
    monkeypatch.setattr(data, "_zones", type(data._zones)())
    data.preload_at_start()
    shared = data.current_shared()
    _loaded(shared)
    _settled(shared)
    assert not any("Asia/Tokyo" in repr(key) for key in shared.results)
    # the sign-in screen of a viewer in Tokyo
    monkeypatch.setattr("audit_analytics.ui.state.browser_tz", lambda: "Asia/Tokyo")
    data.preload()
    deadline = time.monotonic() + 60
    while not any("Asia/Tokyo" in repr(key) and key[1] == "security" for key in shared.results):
        assert time.monotonic() < deadline, "the Tokyo views were not warmed"
        time.sleep(0.05)
    _settled(shared)
    assert any("Asia/Tokyo" in repr(key) and key[1] == "activity" for key in shared.results)
    # a second viewer in Tokyo: nothing new to warm
    data.preload()
    assert not shared.warming


def test_the_app_started_as_run_app_does_loads_without_a_visit(tmp_path):
    from browser_support import AppServer

    _store(tmp_path).engine.dispose()
    app = AppServer(f"sqlite:///{tmp_path / 'audit.db'}").start()
    try:
        deadline = time.monotonic() + 60
        while "loaded the audit table in the background: 1" not in app.log():
            assert app.process is not None and app.process.poll() is None, app.log()
            assert time.monotonic() < deadline, app.log()
            time.sleep(0.1)
        # no browser has opened it: the load began with the server (1,000 events and the
        # test account's creation)
        loaded = re.search(r"loaded the audit table in the background: (\d+) events", app.log())
        assert loaded and int(loaded.group(1)) >= 1_000
    finally:
        app.stop()


def test_no_warmer_no_thread(tmp_path):
    # AUDIT_WARM_UP=off, and every SharedData outside the app: a data change starts nothing
    shared = SharedData().refresh(_store(tmp_path))
    assert shared.version == 1 and not shared.warming
    assert shared.warm_in_background() is None and not shared.warming


def _gated_load(shared: SharedData, gate: threading.Event, monkeypatch) -> threading.Thread:
    """The first load in the background, held (with the load's lock taken) until ``gate`` is
    set: a load of millions of events, seconds long, made to last as long as the test needs."""
    from audit_analytics.engines import shared as shared_module

    signature_of = shared_module.signature_of

    def held(store):
        if threading.current_thread().name == "audit-preload":
            assert gate.wait(60), "the test never let the load go on"
        return signature_of(store)

    monkeypatch.setattr(shared_module, "signature_of", held)
    thread = shared.load_in_background(data.get_store)
    assert thread is not None
    deadline = time.monotonic() + 30
    while not shared.lock.locked():  # the load has begun
        assert time.monotonic() < deadline
        time.sleep(0.01)
    return thread


def _loading_held(
    tmp_path, monkeypatch, rows: int = 1_000, seed: int = 3
) -> tuple[SharedData, threading.Event, threading.Thread]:
    """The app's shared data over ``rows`` demo events, its first load begun and held
    (:func:`_gated_load`)."""
    _store(tmp_path, rows=rows, seed=seed).engine.dispose()
    monkeypatch.setenv("AUDIT_DB_URL", f"sqlite:///{tmp_path / 'audit.db'}")
    shared = data.current_shared()
    gate = threading.Event()
    return shared, gate, _gated_load(shared, gate, monkeypatch)


def test_while_the_first_load_runs_the_audit_log_reads_the_database(tmp_path, monkeypatch, as_role):
    from audit_analytics.view import View

    shared, gate, thread = _loading_held(tmp_path, monkeypatch, rows=3_000, seed=5)
    in_period = data.get_store().count(View().filter)  # the default view: the last 7 days
    try:
        at = as_role(AppTest.from_file(str(ROOT / "app_pages" / "explorer.py"), default_timeout=60), "viewer")
        at.run()
        assert not at.exception
        assert shared.version == 0  # still loading: the page did not wait for it
        interim = shared.interim
        assert interim is not None and interim.is_interim and not interim.index.holds_copy
        captions = [c.value for c in at.caption]
        assert any("still loading" in c for c in captions), captions
        assert any(f"Rows 1–{min(in_period, 100)} of {in_period:,}" in c for c in captions), captions
        table = at.dataframe[0].value
        assert len(table) == min(in_period, 100)
        # the sidebar lists every actor, without their emails until the load is done
        actors = interim.actors()
        assert actors["email"].null_count() == actors.height > 0
        assert set(at.multiselect(key="f_users").options) == set(actors["actor"].to_list())
    finally:
        gate.set()
        thread.join(60)
    assert shared.version == 1 and shared.interim is None
    at.run()
    assert not at.exception
    assert not any("still loading" in c.value for c in at.caption)
    assert data.get_frame(interim=True) is shared  # loaded: the shared data itself


def test_the_charts_wait_for_the_load_instead(tmp_path, monkeypatch):
    # Activity and Security review over a period in SQL on SQLite take longer than the load
    shared, gate, thread = _loading_held(tmp_path, monkeypatch)
    got: list[SharedData] = []
    waiting = threading.Thread(target=lambda: got.append(data.get_frame()))
    waiting.start()
    waiting.join(0.5)
    assert waiting.is_alive() and not got  # get_frame() waits for the load
    gate.set()
    thread.join(60)
    waiting.join(60)
    assert got == [shared] and shared.version == 1


def test_a_database_away_while_loading_is_reported_not_waited_for(tmp_path, monkeypatch):
    from audit_analytics.errors import StoreError

    shared, gate, thread = _loading_held(tmp_path, monkeypatch)

    def away():
        raise StoreError("connection refused")

    try:
        with pytest.raises(StoreError, match="connection refused"):  # the page's message and retry
            shared.current_or_interim(away)
        assert shared.interim is None
    finally:
        gate.set()
        thread.join(60)
    assert shared.version == 1


def test_a_reload_is_reported_only_where_an_engine_held_the_events(tmp_path, monkeypatch, caplog):
    """The server's log says "reloading it" when a table changed other than at its end: seconds
    of work for an engine holding the events. Pushed down, nothing is held and a new event only
    means counting again: the log said it for every sign-in."""
    import sqlalchemy as sa

    store = _store(tmp_path)

    def refreshed(mode: str, shared: SharedData | None = None) -> SharedData:
        monkeypatch.setenv("AUDIT_ENGINE", mode)  # read at each load
        return (shared or SharedData()).refresh(store)

    pushed, held = refreshed("pushdown"), refreshed("memory")
    store.record(actor="ada", type="auth", action="login")
    with caplog.at_level(logging.WARNING):
        refreshed("pushdown", pushed)
        refreshed("memory", held)  # grown at its end: no reload either
    assert pushed.version == held.version == 2 and pushed.engine.height == held.engine.height == 1_001
    assert not pushed.engine.holds_copy and held.engine.holds_copy
    assert "changed other than at its end" not in caplog.text
    with store.engine.begin() as conn:  # an event removed: the held copy is loaded again
        conn.execute(sa.text("DELETE FROM audit_events WHERE actor = 'ada'"))
    with caplog.at_level(logging.WARNING):
        refreshed("pushdown", pushed)
        assert "changed other than at its end" not in caplog.text
        refreshed("memory", held)
    assert "changed other than at its end" in caplog.text
    assert pushed.engine.height == held.engine.height == 1_000

"""Load, at test-suite size: concurrent browser sessions against one app process, and
concurrent imports against PostgreSQL while another connection counts.

The full size (1,000,000 events, 20 sessions) is ``bench/bench_load.py``; this runs the same
driver small (20,000 events, 5 sessions, 4 interactions each) so it never breaks.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import polars as pl
import pytest
from browser_support import demo_database, require_chromium

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import bench_load  # noqa: E402

from audit_analytics.io.ingest import import_files  # noqa: E402

SESSIONS, INTERACTIONS, EVENTS = 5, 4, 20_000


@pytest.mark.browser
@pytest.mark.slow
def test_concurrent_sessions_filter_and_search_without_errors(tmp_path):
    require_chromium()
    db = tmp_path / "audit.db"
    demo_database(db, n_events=EVENTS, seed=7)
    started = time.monotonic()
    result = bench_load.run_load(db, sessions=SESSIONS, interactions=INTERACTIONS, timeout_s=60)
    took = time.monotonic() - started
    print(json.dumps(result, indent=1))
    # every session signs in and every interaction settles: the stalls once seen here were a
    # deadlock in the app (tests/test_concurrency.py), not the machine being slow
    assert result["errors"] == [] and result["server_tracebacks"] == 0, result
    assert result["signed_in"] == SESSIONS
    assert result["interactions"] == SESSIONS * INTERACTIONS
    assert result["p95_s"] < 30.0, result  # the goal (1 s) is measured in bench/
    # the server's part (request sent to last answer received) is seen and inside the whole
    server = result["server_answer"]
    assert server["interactions"] >= SESSIONS * INTERACTIONS // 2, result
    assert 0 < server["p50_s"] <= server["max_s"] <= result["max_s"], result
    # the frame is shared: the extra sessions cost far less than a copy of the data each
    # (here the data is small, so this mostly bounds per-session overhead)
    assert result["rss_peak_mb"] - result["rss_one_session_mb"] < 250, result
    assert took < 240


@pytest.mark.browser
@pytest.mark.slow
def test_the_render_benchmark_traces_the_pages_work(tmp_path):
    """bench/bench_render.py at test size: the trace is read and the time is attributed."""
    require_chromium()
    import bench_render

    db = tmp_path / "audit.db"
    demo_database(db, n_events=2_000, seed=7)
    result = bench_render.run(db, interactions=4, kind="mixed")
    print(json.dumps(result, indent=1))
    busy = result["renderer_main_busy_s_per_interaction"]
    parts = result["renderer_main_self_s_per_interaction"]
    # a rerun redraws the page: the renderer works, the server sends the new elements
    assert busy > 0.005 and result["ws_messages_per_interaction"] >= 5, result
    assert parts.get("script", 0) > 0 and parts.get("style and layout", 0) > 0, result
    assert sum(parts.values()) == pytest.approx(busy, rel=0.05), result


FREEZE_SCRIPT = """
import gc, json
from audit_analytics.ui import data
before = gc.get_freeze_count()
shared = data.get_frame()
after_load = gc.get_freeze_count()
again = data.freeze_startup_objects()
print(json.dumps({"before": before, "after_load": after_load, "again": again, "events": shared.index.height}))
"""


def test_the_first_load_freezes_the_startup_objects_once(tmp_path):
    """After the first load the libraries' objects are out of the collector's sight (a full
    collection then walks only what came later); a second call does nothing. In a process of
    its own: a freeze is for the life of the process."""
    db = tmp_path / "audit.db"
    url = demo_database(db, n_events=1_000, seed=3)
    done = subprocess.run(
        [sys.executable, "-c", FREEZE_SCRIPT],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env=os.environ | {"AUDIT_DB_URL": url, "AUDIT_ENGINE": "memory"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["before"] == 0 and result["events"] == 1_000, result
    assert result["after_load"] > 50_000, result  # polars, streamlit, sqlalchemy...
    assert result["again"] is False, result


def test_the_frame_is_one_object_shared_by_every_session(tmp_path, monkeypatch, as_role):
    """Two AppTest sessions see the very same in-memory frame (cache_resource, not a copy)."""
    from streamlit.testing.v1 import AppTest

    from audit_analytics.ui import data

    url = demo_database(tmp_path / "audit.db", n_events=2_000, seed=3)
    monkeypatch.setenv("AUDIT_DB_URL", url)
    monkeypatch.setenv("AUDIT_ENGINE", "memory")
    seen = []
    for _ in range(2):
        at = as_role(AppTest.from_file(str(ROOT / "app.py"), default_timeout=60), "auditor")
        at.run()
        assert not at.exception
        shared = data.current_shared()
        seen.append((id(shared), id(shared.index)))
    assert seen[0] == seen[1]


def test_new_events_grow_the_shared_index_and_no_session_waits_for_a_reload(tmp_path, monkeypatch):
    """The app's own events (sign-ins, exports) written at once may commit out of order; the
    shared index takes them in without a full reload, and while one session checks or
    reloads, the others answer from the data held."""
    from datetime import timedelta

    from audit_analytics.engines.store import open_store
    from audit_analytics.ui import data

    url = demo_database(tmp_path / "audit.db", n_events=3_000, seed=5)
    monkeypatch.setenv("AUDIT_DB_URL", url)
    monkeypatch.setenv("AUDIT_ENGINE", "memory")
    from audit_analytics.engines import shared as shared_module

    shared = data.SharedFrame()
    shared.refresh(open_store(url))  # the first load
    assert shared.version == 1
    store = open_store(url)
    newest = store.time_range()[1]
    late = store.load().tail(2)  # rows shaped as the table's, given new ids and times
    late = late.with_columns(
        id=pl.Series(["late-b", "late-a"]),
        time=pl.Series([newest + timedelta(seconds=1), newest - timedelta(seconds=90)]),
    )
    store.append(late.head(1))  # committed first, though written second
    shared.refresh(store)
    store.append(late.tail(1))  # 90 s before the newest event: lands inside the index's tail

    def no_reload(*args, **kwargs):
        raise AssertionError("a late arrival reloaded the whole table")

    monkeypatch.setattr(shared_module, "open_engine", no_reload)
    shared.refresh(store)
    assert shared.version == 3 and shared.index.height == 3_002
    rebuilt = open_engine_for(store)
    assert shared.index.materialised().equals(rebuilt.materialised())
    # an event committed between reading the new ones and counting them (20 people signing
    # in): read again rather than reload everything
    from audit_analytics.engines.store import Store

    real_load, interleaved = Store.load, []

    def load_then_someone_signs_in(self, *args, **kwargs):
        frame = real_load(self, *args, **kwargs)
        if not interleaved:
            interleaved.append(store.append(late.head(1).with_columns(id=pl.lit("late-e"))))
        return frame

    store.append(late.head(1).with_columns(id=pl.lit("late-f")))
    monkeypatch.setattr(Store, "load", load_then_someone_signs_in)
    shared.checked_at = 0.0
    shared.refresh(store)
    monkeypatch.setattr(Store, "load", real_load)
    assert interleaved and shared.index.height == 3_004  # both, without a reload
    assert shared.signature == shared_module.signature_of(store)
    assert shared.index.materialised().equals(open_engine_for(store).materialised())
    # another session is reloading (it holds the lock): this one does not wait for it
    store.append(late.with_columns(id=pl.Series(["late-c", "late-d"]), time=pl.Series([newest] * 2)))
    with shared.lock:
        started = time.monotonic()
        assert shared.refresh(store) is shared
        assert time.monotonic() - started < 1.0
    assert shared.version == 4  # answered from the data held
    store.engine.dispose()


def open_engine_for(store):
    from audit_analytics.engines.sql import open_engine

    return open_engine(store, mode="memory")


# ---------------------------------------------------------------------------------------
# concurrent imports against PostgreSQL


def _event(i: int) -> dict:
    return {
        "id": f"c{i:06d}",
        "time": f"2026-02-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:{(i * 7) % 60:02d}Z",
        "actor": f"user{i % 50}",
        "type": "auth",
        "action": "login",
        "target": "web",
        "result": "done" if i % 3 else "failed",
    }


@pytest.mark.postgres
@pytest.mark.slow
def test_concurrent_overlapping_imports_lose_and_duplicate_nothing(tmp_path, pg_store):
    files = []
    rng = random.Random(8)
    for k in range(4):
        # file k holds ids [k*3000, k*3000 + 6000): each overlaps its neighbours by half
        rows = [_event(i) for i in range(k * 3_000, k * 3_000 + 6_000)]
        rows += [{"id": f"bad-{k}-{j}", "time": "never", "type": "auth"} for j in range(25)]
        rng.shuffle(rows)  # lock order differs between files: deadlocks are possible, and retried
        path = tmp_path / f"part{k}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        files.append(path)
    distinct = 3 * 3_000 + 6_000

    counts: list[int] = []
    done = threading.Event()

    def count_while_importing():
        while not done.is_set():
            counts.append(pg_store.count())
            time.sleep(0.01)

    counter = threading.Thread(target=count_while_importing)
    counter.start()
    try:
        with ThreadPoolExecutor(max_workers=4) as pool:
            summaries = list(
                pool.map(
                    lambda p: import_files(
                        pg_store, [p, p], rejects=tmp_path / f"{p.stem}.rej", batch_rows=1_000
                    ),
                    files,
                )
            )
    finally:
        done.set()
        counter.join()

    for summary in summaries:  # each file is imported twice in its own transaction
        assert summary.balanced, summary
        assert summary.rows_read == 2 * 6_025 and summary.rejected == 50
        assert summary.conflicts == 0
    assert sum(s.imported for s in summaries) == distinct  # nothing lost, nothing twice
    assert sum(s.duplicates for s in summaries) == 4 * 2 * 6_000 - distinct
    assert pg_store.count() == distinct
    assert counts == sorted(counts), "a reader saw the count go down"
    # each import is one transaction: a reader only ever sees whole imports
    whole = {sum(c) for r in range(5) for c in itertools.combinations([s.imported for s in summaries], r)}
    assert set(counts) <= whole, sorted(set(counts) - whole)[:5]

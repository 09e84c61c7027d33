"""The store on a real SQLite file and a real PostgreSQL server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
from conftest import STORE_FIXTURES

from audit_analytics.demo.generate import generate
from audit_analytics.engines.store import open_store
from audit_analytics.errors import StoreError
from audit_analytics.filters import Filter
from audit_analytics.schema import SCHEMA

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
EVENTS = generate(3_000, seed=9, now=NOW).events


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres), "chdb"])
def store(request):
    return request.getfixturevalue(STORE_FIXTURES.get(request.param, "pg_store"))


@pytest.mark.parametrize("chunk_size", [100_000, 500], ids=["row-path", "staged-path"])
def test_append_is_idempotent_by_id(store, chunk_size):
    first = store.append(EVENTS, chunk_size=chunk_size)
    assert (first.offered, first.inserted, first.duplicates) == (3_000, 3_000, 0)
    again = store.append(EVENTS.head(1_200), chunk_size=chunk_size)
    assert (again.inserted, again.duplicates) == (0, 1_200)
    doubled = pl.concat([EVENTS.tail(10), EVENTS.tail(10)])
    assert store.append(doubled, chunk_size=chunk_size).duplicates == 20
    assert store.count() == 3_000


def test_load_round_trips_every_value(store):
    store.append(EVENTS)
    loaded = store.load()
    assert loaded.schema == SCHEMA
    assert loaded.sort("id").equals(EVENTS.sort("id"))
    times = loaded["time"].to_list()
    assert times == sorted(times)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def sql_store(request):
    """SQLite or PostgreSQL: the stores connectorx reads."""
    return request.getfixturevalue(STORE_FIXTURES.get(request.param, "pg_store"))


def test_the_whole_table_streams_in_batches_with_code_columns_as_categoricals(sql_store, monkeypatch):
    """The whole-table load reads Arrow batches through connectorx (tested here, not just
    allowed to fall back) and gives the same frame as the generic path, batch edges too."""
    from audit_analytics.engines import store as store_module
    from audit_analytics.schema import SUMMARY_COLUMNS

    sql_store.append(EVENTS)
    monkeypatch.setattr(store_module, "LOAD_BATCH_ROWS", 700)  # 3,000 rows: 5 batches
    streamed = sql_store._load_connectorx(SUMMARY_COLUMNS, ("email", "description"))
    assert streamed is not None  # the fast path ran
    assert streamed.height == 3_000
    assert isinstance(streamed.schema["email"], pl.Categorical)
    assert isinstance(streamed.schema["description"], pl.Categorical)
    # one set of categories per column across all batches: codes are comparable
    assert streamed["email"].dtype == streamed.slice(2_900)["email"].dtype
    loaded = sql_store.load(columns=SUMMARY_COLUMNS, categorical=("email", "description"))
    generic = sql_store.select_frame(
        store_module.sa.select(*(sql_store.table.c[c] for c in SUMMARY_COLUMNS)).order_by(
            sql_store.table.c.time, sql_store.table.c.id
        ),
        SUMMARY_COLUMNS,
    )
    as_text = loaded.with_columns(pl.col("email", "description").cast(pl.String))
    assert as_text.equals(generic)
    assert as_text.equals(EVENTS.sort("time", "id").select(SUMMARY_COLUMNS))
    # a filtered load takes the generic path and still gives the categoricals
    some = sql_store.load(Filter(types=("auth",)), columns=SUMMARY_COLUMNS, categorical=("email",))
    assert (
        isinstance(some.schema["email"], pl.Categorical)
        and some.height == EVENTS.filter(pl.col("type") == "auth").height
    )


def test_the_whole_table_comes_oldest_first_whatever_order_it_was_written_in(sql_store, monkeypatch):
    """connectorx reads the table in its own order (an ORDER BY was most of the load's time);
    the load puts it in (time, id) order itself, ties by id included, across batches."""
    from audit_analytics.engines import store as store_module
    from audit_analytics.schema import SUMMARY_COLUMNS

    shuffled = EVENTS.sample(fraction=1.0, shuffle=True, seed=7)
    tied = shuffled.head(40).with_columns(pl.lit(datetime(2026, 4, 30, 12, tzinfo=UTC)).alias("time"))
    written = pl.concat([tied.reverse(), shuffled.slice(40)])
    for start in range(0, written.height, 500):  # appended out of order, batch by batch
        sql_store.append(written.slice(start, 500))
    monkeypatch.setattr(store_module, "LOAD_BATCH_ROWS", 700)
    streamed = sql_store._load_connectorx(SUMMARY_COLUMNS, ("email",))
    assert streamed is not None  # the fast path ran
    expected = written.sort("time", "id").select(SUMMARY_COLUMNS)
    assert streamed.with_columns(pl.col("email").cast(pl.String)).equals(expected)
    assert sql_store.load().equals(written.sort("time", "id"))
    # SQLite: read as ranges of rowids by 2 threads (3,000 rows: 5 ranges); elsewhere a stream
    with sql_store._snapshot() as guard:
        ranges = sql_store._rowid_ranges(guard)
    assert (len(ranges) == 5) if sql_store.dialect == "sqlite" else (ranges is None)


def test_the_rowid_ranges_cover_a_table_with_holes_once(sqlite_store, monkeypatch):
    """Rows deleted (retention) leave holes in the rowids; ranges that start at the smallest
    rowid and step past the largest read every remaining row once, in (time, id) order."""
    from audit_analytics.engines import store as store_module

    sqlite_store.append(EVENTS)
    with sqlite_store.engine.begin() as conn:  # the first 250 rows, and 900 in the middle
        conn.execute(store_module.sa.text("DELETE FROM audit_events WHERE rowid <= 250"))
        conn.execute(store_module.sa.text("DELETE FROM audit_events WHERE rowid BETWEEN 1001 AND 1900"))
    monkeypatch.setattr(store_module, "LOAD_BATCH_ROWS", 700)
    with sqlite_store._snapshot() as guard:
        ranges = sqlite_store._rowid_ranges(guard)
    assert ranges is not None and ranges[0] == " WHERE rowid >= 251 AND rowid < 951" and len(ranges) == 4
    loaded = sqlite_store.load()
    kept = sqlite_store.select_frame(
        store_module.sa.select(sqlite_store.table).order_by(
            sqlite_store.table.c.time, sqlite_store.table.c.id
        )
    )
    assert loaded.height == 3_000 - 250 - 900 and loaded["id"].n_unique() == loaded.height
    assert loaded.equals(kept)


def test_a_commit_waiting_for_the_load_lock_does_not_stall_the_load(sqlite_store, monkeypatch):
    """A writer whose commit waits for the whole-table load's read lock holds SQLite's pending
    lock: a new connection of this process reading inside the load then waited for the writer,
    which waited for the load, until the busy timeout refused one of them (the writer's commit:
    "database is locked" in a CI run). The load reads its rowid ranges through the lock's own
    connection."""
    import threading
    import time

    from audit_analytics.engines import store as store_module

    monkeypatch.setattr(store_module, "SQLITE_BUSY_SECONDS", 5)  # for the connections made below
    monkeypatch.setattr(store_module, "LOAD_BATCH_ROWS", 700)
    sqlite_store.append(EVENTS)
    sqlite_store.engine.dispose()  # new connections, with the short busy timeout
    row = generate(1_000, seed=12, now=NOW).events.head(1).with_columns(id=pl.lit("written-during-load"))
    failures: list[BaseException] = []

    def write() -> None:
        try:
            sqlite_store.append(row)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            failures.append(exc)

    writer = threading.Thread(target=write)
    ranges_of = store_module.Store._rowid_ranges

    def ranges_while_a_commit_waits(self, *args):
        writer.start()
        time.sleep(1.0)  # the writer's commit is now waiting for the load's lock
        return ranges_of(self, *args)

    monkeypatch.setattr(store_module.Store, "_rowid_ranges", ranges_while_a_commit_waits)
    started = time.perf_counter()
    loaded = sqlite_store.load()
    took = time.perf_counter() - started
    writer.join()
    assert not failures, failures
    assert took < 5, f"the load waited {took:.1f} s for the writer"
    assert loaded.height == 3_000
    assert sqlite_store.count(Filter(period="all")) == 3_001


def test_count_and_page_are_evaluated_in_sql(store):
    store.append(EVENTS)
    flt = Filter(period="7d", types=("auth",))
    expected = sorted(
        (
            r
            for r in EVENTS.to_dicts()
            if r["type"] == "auth" and r["time"] >= datetime(2026, 4, 25, tzinfo=UTC)
        ),
        key=lambda r: (r["time"], r["id"]),
        reverse=True,
    )
    assert store.count(flt, now=NOW) == len(expected)
    page = store.page(flt, offset=5, limit=7, now=NOW)
    assert page["id"].to_list() == [r["id"] for r in expected[5:12]]
    with pytest.raises(ValueError, match="negative"):
        store.page(flt, limit=-1)


def test_get_time_range_actors(store):
    store.append(EVENTS)
    one = EVENTS.row(17, named=True)
    assert store.get(one["id"]) == one
    assert store.get("missing") is None
    lo, hi = store.time_range()
    assert (lo, hi) == (EVENTS["time"].min(), EVENTS["time"].max())
    actors = store.actors()
    counts = EVENTS.group_by("actor").len().drop_nulls("actor")
    top = counts.sort(["len", "actor"], descending=[True, False]).row(0)
    assert actors.row(0)[0] == top[0] and actors.row(0)[2] == top[1]
    # without emails (the actor index alone): the same actors and counts, in the same order
    quick = store.actors(emails=False)
    assert quick.select("actor", "events").equals(actors.select("actor", "events"))
    assert quick["email"].null_count() == quick.height > actors["email"].null_count()


def test_record_writes_an_audit_event(store):
    event_id = store.record(actor="alice", type="audit", action="export", params={"count": 3}, target="x.csv")
    got = store.get(event_id)
    assert got["actor"] == "alice" and got["type"] == "audit" and got["params"] == '{"count": 3}'
    assert abs(got["time"] - datetime.now(UTC)) < timedelta(minutes=1)


def test_empty_store(store):
    assert store.count() == 0
    assert store.load().height == 0 and store.load().schema == SCHEMA
    empty = store.load(columns=("id", "email"), categorical=("email",))
    assert empty.height == 0 and isinstance(empty.schema["email"], pl.Categorical)
    assert store.time_range() == (None, None)
    assert store.page(Filter()).height == 0


@pytest.mark.parametrize("url", ["not a url", "nosuchdriver://x/y"])
def test_bad_urls_are_clear_errors(url):
    with pytest.raises(StoreError):
        open_store(url)


def test_unreachable_postgres_is_a_clear_error():
    with pytest.raises(StoreError, match="cannot open the audit table"):
        open_store("postgresql://nobody@127.0.0.1:1/none", connect_args={"connect_timeout": 2})


def test_default_url_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("AUDIT_DB_URL", f"sqlite:///{tmp_path / 'env.db'}")
    store = open_store()
    assert store.safe_url.endswith("env.db") and (tmp_path / "env.db").exists()


class _Panic(BaseException):
    """What connectorx raises for a failed read: pyo3's PanicException is a BaseException."""


def test_a_failed_fast_read_is_retried_then_read_the_generic_way(sqlite_store, monkeypatch):
    import connectorx

    from audit_analytics.schema import SUMMARY_COLUMNS

    sqlite_store.append(EVENTS)
    real = connectorx.read_sql
    calls = []

    def flaky(*args, **kwargs):
        calls.append(kwargs.get("return_type"))
        batches = iter(real(*args, **kwargs))
        yield next(batches)
        raise _Panic("cx writer failed: database disk image is malformed")

    monkeypatch.setattr(connectorx, "read_sql", flaky)
    loaded = sqlite_store.load(columns=SUMMARY_COLUMNS)
    assert calls == ["arrow_stream", "arrow_stream"]  # tried twice, then the generic path
    assert loaded.equals(EVENTS.sort("time", "id").select(SUMMARY_COLUMNS))


def test_a_failed_range_read_in_a_thread_is_retried_then_read_the_generic_way(sqlite_store, monkeypatch):
    """The same when the table is read as ranges of rowids by threads: the panic of one
    range's read reaches the load, which tries again, then reads the generic way."""
    import connectorx

    from audit_analytics.engines import store as store_module
    from audit_analytics.schema import SUMMARY_COLUMNS

    sqlite_store.append(EVENTS)
    monkeypatch.setattr(store_module, "LOAD_BATCH_ROWS", 700)
    real = connectorx.read_sql
    failed = []

    def flaky(uri, query, **kwargs):
        if "rowid >= 1401 " in query:  # the third range
            failed.append(kwargs.get("return_type"))
            raise _Panic("cx writer failed: database disk image is malformed")
        return real(uri, query, **kwargs)

    monkeypatch.setattr(connectorx, "read_sql", flaky)
    loaded = sqlite_store.load(columns=SUMMARY_COLUMNS)
    assert failed == ["arrow", "arrow"]  # each try read it, as ranges: then the generic path
    assert loaded.equals(EVENTS.sort("time", "id").select(SUMMARY_COLUMNS))


def test_whole_table_loads_while_events_are_written_are_complete_and_ordered(sqlite_store):
    """The app writes sign-ins and exports while a session loads the table: every load
    finishes, holds each id once, in (time, id) order, and as many rows as were committed
    before it started at least."""
    import threading

    sqlite_store.append(EVENTS)
    extra = (
        generate(1_000, seed=10, now=NOW)
        .events.head(400)
        .with_columns(id=pl.format("w-{}", pl.int_range(pl.len())))
    )
    stop, written, locked = threading.Event(), [0], [0]

    def write():
        while not stop.is_set() and written[0] < extra.height:
            try:
                sqlite_store.append(extra.slice(written[0], 1))
            except StoreError as exc:
                # seen once under load average 5 (2026-12-05): SQLite refused the commit at once
                # ("database is locked") despite the busy timeout; the row was not written and is
                # written again. What this test holds is the loads' completeness and order.
                assert "database is locked" in str(exc), exc
                locked[0] += 1
                continue
            written[0] += 1

    writer = threading.Thread(target=write)
    writer.start()
    try:
        for _ in range(6):
            before = 3_000 + written[0]
            loaded = sqlite_store.load()
            assert loaded.height >= before
            assert loaded["id"].n_unique() == loaded.height
            assert loaded.select(
                (pl.col("time").diff().dt.total_microseconds().fill_null(0) >= 0).all()
            ).item()
    finally:
        stop.set()
        writer.join()
    assert sqlite_store.load().height == 3_000 + written[0]
    assert written[0] > locked[0]  # the writer mostly got through

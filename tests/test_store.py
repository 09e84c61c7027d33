"""The store on a real SQLite file and a real PostgreSQL server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from audit_analytics.demo import generate
from audit_analytics.errors import StoreError
from audit_analytics.filters import Filter
from audit_analytics.schema import SCHEMA
from audit_analytics.store import open_store

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
EVENTS = generate(3_000, seed=9, now=NOW).events


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request):
    return request.getfixturevalue("sqlite_store" if request.param == "sqlite" else "pg_store")


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


def test_the_whole_table_streams_in_batches_with_code_columns_as_categoricals(store, monkeypatch):
    """The whole-table load reads Arrow batches through connectorx (tested here, not just
    allowed to fall back) and gives the same frame as the generic path, batch edges too."""
    from audit_analytics import store as store_module
    from audit_analytics.schema import SUMMARY_COLUMNS

    store.append(EVENTS)
    monkeypatch.setattr(store_module, "LOAD_BATCH_ROWS", 700)  # 3,000 rows: 5 batches
    streamed = store._load_connectorx(SUMMARY_COLUMNS, ("email", "description"))
    assert streamed is not None  # the fast path ran
    assert streamed.height == 3_000
    assert isinstance(streamed.schema["email"], pl.Categorical)
    assert isinstance(streamed.schema["description"], pl.Categorical)
    # one set of categories per column across all batches: codes are comparable
    assert streamed["email"].dtype == streamed.slice(2_900)["email"].dtype
    loaded = store.load(columns=SUMMARY_COLUMNS, categorical=("email", "description"))
    generic = store._select_frame(
        store_module.sa.select(*(store.table.c[c] for c in SUMMARY_COLUMNS)).order_by(
            store.table.c.time, store.table.c.id
        ),
        SUMMARY_COLUMNS,
    )
    as_text = loaded.with_columns(pl.col("email", "description").cast(pl.String))
    assert as_text.equals(generic)
    assert as_text.equals(EVENTS.sort("time", "id").select(SUMMARY_COLUMNS))
    # a filtered load takes the generic path and still gives the categoricals
    some = store.load(Filter(types=("auth",)), columns=SUMMARY_COLUMNS, categorical=("email",))
    assert (
        isinstance(some.schema["email"], pl.Categorical)
        and some.height == EVENTS.filter(pl.col("type") == "auth").height
    )


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

"""ClickHouse (in-process through chDB) must agree with polars like SQLite and PostgreSQL do.

The same FILTERS as tests/test_agreement.py: identical ids and counts, the same page order
for every sortable column, and the pushdown aggregates of tests/test_pushdown.py equal to the
polars functions. Skips when chdb is not installed (a failure under CI=true).
"""

from __future__ import annotations

import importlib.util
from datetime import timedelta

import polars as pl
import pytest
import sqlalchemy as sa
from conftest import need
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_agreement import EVENTS, FILTERS, NOW, QUALIFIED, WORDS, polars_ids
from test_pushdown import CASES, EDGE_CASES, _logins, check
from test_pushdown import EVENTS as LOGINS
from test_pushdown import FILTERS as PUSHDOWN_FILTERS
from test_pushdown import NOW as PUSHDOWN_NOW
from test_pushdown import _frame as login_frame

from audit_analytics.errors import StoreError
from audit_analytics.filters import Filter, Sort, polars_sort
from audit_analytics.schema import CATEGORY_CODES, RESULTS, SCHEMA, SORTABLE_COLUMNS

HAVE_CHDB = importlib.util.find_spec("chdb") is not None


@pytest.fixture(scope="module", autouse=True)
def _chdb_installed():
    need(HAVE_CHDB, "chdb is not installed (pip install chdb): the ClickHouse engine is untested")


def _store(database: str, events: pl.DataFrame | None):
    from audit_analytics.engines.clickhouse import ClickHouseStore

    store = ClickHouseStore(database=database)
    store._command(f"TRUNCATE TABLE `{database}`.audit_events")
    if events is not None:
        store.append(events)
    return store


@pytest.fixture(scope="module")
def ch_events():
    store = _store("agreement", EVENTS)
    yield store
    store.drop()


@pytest.fixture(scope="module")
def ch_logins():
    store = _store("pushdown", LOGINS)
    yield store
    store.drop()


# --------------------------------------------------------------------------- filters


@pytest.mark.parametrize("flt", FILTERS.values(), ids=FILTERS.keys())
def test_clickhouse_returns_the_same_rows(ch_events, flt):
    expected = polars_ids(flt)
    assert sorted(ch_events.load(flt, now=NOW)["id"].to_list()) == expected
    assert ch_events.count(flt, now=NOW) == len(expected)


@pytest.mark.parametrize(
    "sort",
    [Sort(c, d) for c in SORTABLE_COLUMNS for d in (True, False)],
    ids=[f"{c}-{'desc' if d else 'asc'}" for c in SORTABLE_COLUMNS for d in (True, False)],
)
@pytest.mark.parametrize("name", ["everything", "30d", "user-or", "ip-cidr-v4"])
def test_clickhouse_pages_follow_the_same_order(ch_events, sort, name):
    flt = FILTERS[name]
    expected = polars_sort(flt.apply(EVENTS, now=NOW), sort)["id"].to_list()
    got = [
        i
        for o in range(0, len(expected) + 40, 40)
        for i in ch_events.page(flt, sort, offset=o, limit=40, now=NOW)["id"].to_list()
    ]
    assert got == expected


def test_clickhouse_load_keeps_dtypes(ch_events):
    frame = ch_events.load(Filter(), now=NOW)
    assert frame.schema == SCHEMA
    assert frame.sort("id").equals(EVENTS.sort("id"))


def test_clickhouse_get_and_time_range(ch_events):
    row = ch_events.get("ev-0003")
    assert row == EVENTS.filter(pl.col("id") == "ev-0003").row(0, named=True)
    assert ch_events.get("no-such-id") is None
    assert ch_events.time_range() == (EVENTS["time"].min(), EVENTS["time"].max())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    terms=st.lists(st.sampled_from(WORDS + QUALIFIED), max_size=4),
    period=st.sampled_from(["all", "today", "7d", "30d"]),
    tz=st.sampled_from(["UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata"]),
    types=st.lists(st.sampled_from(CATEGORY_CODES[:6]), max_size=2, unique=True),
    results=st.lists(st.sampled_from(RESULTS), max_size=2, unique=True),
)
def test_generated_filters_agree_on_clickhouse(ch_events, terms, period, tz, types, results):
    flt = Filter(period=period, tz=tz, types=tuple(types), results=tuple(results), query=" ".join(terms))
    assert sorted(ch_events.load(flt, now=NOW)["id"].to_list()) == polars_ids(flt)


# --------------------------------------------------------------------------- values are parameters


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=st.text(max_size=30) | st.sampled_from(["\\", "\\N", "a\\tb", "'", "{x:String}", "\t\n\r\0"]))
def test_text_values_travel_unchanged(ch_events, value):
    result = ch_events.frame(sa.select(sa.literal(value, sa.String).label("v")))
    assert result.item() == value


def test_hostile_search_text_is_only_a_value(ch_events):
    flt = Filter(query='user:"x\'; DROP TABLE audit_events; --" "{p:String}" \\')
    sql, params = ch_events.sql(sa.select(ch_events.table.c.id).where(ch_events._where(flt, NOW)))
    assert "DROP" not in sql.upper() and any("drop table" in v for v in params.values())
    assert ch_events.count(flt, now=NOW) == 0
    assert ch_events.count() == EVENTS.height


def test_inline_literals_are_refused():
    from audit_analytics.engines.clickhouse import compile_clickhouse

    with pytest.raises(StoreError, match="inline literal"):
        compile_clickhouse(sa.select(sa.literal_column("'x'")))


def test_append_is_idempotent():
    store = _store("appending", None)
    try:
        first = store.append(EVENTS.head(50))
        again = store.append(EVENTS.head(60))
        assert (first.inserted, first.duplicates) == (50, 0)
        assert (again.offered, again.inserted, again.duplicates) == (60, 10, 50)
        assert store.count() == 60
    finally:
        store.drop()


# --------------------------------------------------------------------------- pushdown aggregates


def _fits_clickhouse(case) -> bool:
    from audit_analytics.analysis.security_sql import CLICKHOUSE_MAX_WINDOW

    return case[1].get("window", timedelta(0)) <= CLICKHOUSE_MAX_WINDOW


CH_CASES = {name: case for name, case in CASES.items() if _fits_clickhouse(case)}


@pytest.mark.parametrize("case", CH_CASES.values(), ids=CH_CASES.keys())
@pytest.mark.parametrize("flt", PUSHDOWN_FILTERS.values(), ids=PUSHDOWN_FILTERS.keys())
def test_clickhouse_pushdown_equals_polars(ch_logins, case, flt):
    check(ch_logins, LOGINS, case, flt, now=PUSHDOWN_NOW)


def test_clickhouse_refuses_windows_it_cannot_frame(ch_logins):
    from audit_analytics.analysis.security_sql import CLICKHOUSE_MAX_WINDOW, PushdownError

    assert len(CH_CASES) < len(CASES)
    longest = CLICKHOUSE_MAX_WINDOW
    assert ch_logins.brute_force(Filter(), threshold=2, window=longest, now=PUSHDOWN_NOW).height > 0
    with pytest.raises(PushdownError, match="at most"):
        ch_logins.brute_force(Filter(), threshold=2, window=longest + timedelta(microseconds=1))


def test_store_methods_are_the_pushdown(ch_logins):
    from audit_analytics.analysis import security

    window = timedelta(minutes=2)
    result = ch_logins.brute_force(Filter(), threshold=3, window=window, now=PUSHDOWN_NOW)
    assert result.height == security.brute_force(LOGINS, threshold=3, window=window).height > 0
    assert ch_logins.failures_by_ip(Filter(), top=1).height == 1


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(logins=_logins)
def test_generated_windows_agree_on_clickhouse(logins):
    events = login_frame(logins)
    store = _store("windows", events)
    try:
        for case in EDGE_CASES:
            check(store, events, case, Filter())
    finally:
        store.close()

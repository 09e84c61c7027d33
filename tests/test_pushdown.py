"""Pushdown agreement: the security aggregates and detections compiled to SQL must return
exactly what the polars functions of audit_analytics.analysis.security return on the same events.

Runs on a real SQLite file and on a real PostgreSQL server (the ClickHouse engine reuses
CASES in tests/test_clickhouse.py), for several filters and thresholds, with
hypothesis-generated event times around the window edges, and on the real logs when present.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from audit_analytics.analysis import security
from audit_analytics.analysis import security_sql as pushdown
from audit_analytics.demo.generate import generate
from audit_analytics.filters import Filter
from audit_analytics.schema import SCHEMA

NOW = datetime(2026, 3, 30, 9, 30, tzinfo=UTC)  # the day after Europe's spring DST change
SECOND = timedelta(seconds=1)
MICRO = timedelta(microseconds=1)

IPS = ["203.0.113.7", "203.0.113.8", "10.0.0.5", "2001:db8::1", "", None]
ACTORS = ["root", "admin", "alice", "Bob", "", None, "élodie", "svc_backup"]


def make_logins() -> pl.DataFrame:
    """Login events built for windows: bursts, ties, gaps of exactly W and W - 1µs, blanks."""
    rng = random.Random(5)
    rows = []
    start = datetime(2026, 3, 28, 22, 0, tzinfo=UTC)  # across Paris' DST change and midnight
    t = start
    for burst in range(40):
        ip = rng.choice(IPS)
        size = rng.choice([1, 2, 3, 5, 8, 12])
        step = rng.choice([MICRO, SECOND, 10 * SECOND, 30 * SECOND, timedelta(minutes=2) - MICRO])
        for j in range(size):
            rows.append(
                {
                    "time": t + j * step,
                    "actor": rng.choice(ACTORS),
                    "ip": ip if rng.random() < 0.85 else rng.choice(IPS),
                    "result": "failed" if rng.random() < 0.85 else "done",
                }
            )
        if burst % 7 == 0:  # an exact tie
            rows.append(dict(rows[-1]))
        t += rng.choice(
            [timedelta(minutes=2), timedelta(minutes=5), timedelta(minutes=47), timedelta(hours=3)]
        )
    for i, row in enumerate(rows):
        row |= {"id": f"lg-{i:04d}", "type": "auth", "action": "login", "email": None}
    logins = pl.DataFrame(rows).with_columns(pl.col("time").cast(pl.Datetime("us", "UTC")))
    other = generate(2_000, seed=9, now=NOW, days=14).events
    return pl.concat([other, _conform(logins)]).sample(fraction=1.0, shuffle=True, seed=1)


def _conform(frame: pl.DataFrame) -> pl.DataFrame:
    from audit_analytics.schema import conform

    return conform(frame)


EVENTS = make_logins()

FILTERS = {
    "everything": Filter(),
    "7d-paris": Filter(period="7d", tz="Europe/Paris"),
    "today-new-york": Filter(period="today", tz="America/New_York"),
    "cidr": Filter(query="ip:203.0.113.0/24"),
    "not-root": Filter(query="-user:root"),
    "users": Filter(users=("ALICE", "bob")),
}

W2 = timedelta(minutes=2)
CASES: dict[str, tuple[str, dict]] = {
    "by-ip": ("failures_by_ip", {}),
    "by-ip-top": ("failures_by_ip", {"top": 2}),
    "by-account": ("failures_by_account", {}),
    "by-account-top": ("failures_by_account", {"top": 3}),
    "by-hour-utc": ("failures_by_hour", {"tz": "UTC"}),
    "by-hour-paris": ("failures_by_hour", {"tz": "Europe/Paris"}),
    "by-hour-kolkata": ("failures_by_hour", {"tz": "Asia/Kolkata"}),
    "over-time-1h-paris": ("failures_over_time", {"every": "1h", "tz": "Europe/Paris"}),
    "over-time-1d-kathmandu": ("failures_over_time", {"every": "1d", "tz": "Asia/Kathmandu"}),
    "over-time-5m": ("failures_over_time", {"every": "5m"}),
    "over-time-1w-new-york": ("failures_over_time", {"every": "1w", "tz": "America/New_York"}),
    "brute-force-default": ("brute_force", {}),
    "brute-force-3-in-2m": ("brute_force", {"threshold": 3, "window": W2}),
    "brute-force-2-in-1us": ("brute_force", {"threshold": 2, "window": MICRO}),
    "brute-force-2-in-1h": ("brute_force", {"threshold": 2, "window": timedelta(hours=1)}),
    "spray-2": ("password_spray", {"min_accounts": 2}),
    "spray-3-in-2m": ("password_spray", {"min_accounts": 3, "window": W2}),
    "account-under-attack": ("account_under_attack", {"min_ips": 2, "threshold": 4}),
    "account-under-attack-1m": (
        "account_under_attack",
        {"min_ips": 3, "threshold": 2, "window": timedelta(minutes=1)},
    ),
}


def normalise(frame: pl.DataFrame) -> pl.DataFrame:
    """The polars functions order events of the same microsecond arbitrarily; compare the
    event lists as sets (everything else exactly)."""
    if "event_ids" in frame.columns:
        return frame.with_columns(pl.col("event_ids").list.sort())
    return frame


def check(store, events: pl.DataFrame, case: tuple[str, dict], flt: Filter, *, now: datetime = NOW) -> None:
    name, kwargs = case
    reference: Callable = getattr(security, name)
    expected = reference(flt.apply(events, now=now), **kwargs)
    result = getattr(pushdown, name)(store, flt, now=now, **kwargs)
    assert_frame_equal(normalise(result), normalise(expected))


# --------------------------------------------------------------------------- stores


@pytest.fixture(scope="module")
def sqlite_events(tmp_path_factory):
    from audit_analytics.engines.store import open_store

    store = open_store(f"sqlite:///{tmp_path_factory.mktemp('pushdown') / 'audit.db'}")
    store.append(EVENTS)
    yield store
    store.engine.dispose()


@pytest.fixture(scope="module")
def pg_events(postgres_url):
    import sqlalchemy as sa

    from audit_analytics.engines.store import open_store

    store = open_store(postgres_url)
    with store.engine.begin() as conn:
        conn.execute(sa.text("TRUNCATE audit_events, audit_chain, audit_batches"))
    store.append(EVENTS)
    yield store
    store.engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request):
    return request.getfixturevalue("sqlite_events" if request.param == "sqlite" else "pg_events")


# --------------------------------------------------------------------------- agreement


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
@pytest.mark.parametrize("flt", FILTERS.values(), ids=FILTERS.keys())
def test_pushdown_equals_polars(store, case, flt):
    check(store, EVENTS, case, flt)


@pytest.mark.parametrize("flt", FILTERS.values(), ids=FILTERS.keys())
def test_summary_and_time_range_equal_polars(store, flt):
    """The Security page's headline and span when the period is too large for memory."""
    import dataclasses

    rows = flt.apply(EVENTS, now=NOW)
    expected = dataclasses.replace(security.failure_summary(rows), successes_after_failures=0)
    assert pushdown.failure_summary(store, flt, now=NOW) == expected
    assert expected.failures_without_ip and expected.failures_without_account or flt.users or flt.query
    span = (rows["time"].min(), rows["time"].max()) if rows.height else (None, None)
    assert pushdown.time_range(store, flt, now=NOW) == span


def test_cases_find_something():
    # a detection that finds nothing proves little: the data must trigger every rule
    for name, kwargs in CASES.values():
        assert getattr(security, name)(EVENTS, **kwargs).height > 0, name


@pytest.mark.parametrize("name", ["brute_force", "password_spray", "account_under_attack"])
def test_empty_result_keeps_the_schema(store, name):
    flt = Filter(query="user:nobody-at-all")
    result = getattr(pushdown, name)(store, flt, now=NOW)
    assert result.height == 0
    assert result.schema == getattr(security, name)(EVENTS.head(0)).schema


def test_bad_thresholds_raise_the_same_error(store):
    with pytest.raises(security.DetectionError, match="threshold"):
        pushdown.brute_force(store, Filter(), threshold=0)
    with pytest.raises(security.DetectionError, match="window"):
        pushdown.password_spray(store, Filter(), window=timedelta(0))
    with pytest.raises(ValueError, match="every"):
        pushdown.failures_over_time(store, Filter(), every="hourly")


def test_values_are_bound_parameters(sqlite_events):
    import sqlalchemy as sa

    flt = Filter(query="user:'; DROP TABLE audit_events; --")
    stmt = pushdown._window_members(
        sqlite_events, flt, NOW, key="ip", other="actor", window=60_000_000, qualifies=lambda c, d: d >= 1
    )
    text = str(stmt.compile(dialect=sqlite_events.engine.dialect))
    assert "DROP" not in text
    assert pushdown.brute_force(sqlite_events, flt, now=NOW).height == 0
    with sqlite_events.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM audit_events")).scalar_one() == EVENTS.height


# --------------------------------------------------------------------------- window edges

W = timedelta(seconds=10)
T0 = datetime(2026, 3, 29, 0, 59, 50, tzinfo=UTC)


def _edge_offsets():
    # offsets from T0 that sit on, just before and just after multiples of the window
    edge = st.sampled_from([-1, 0, 1])
    return st.builds(lambda k, e: k * W + e * MICRO, st.integers(0, 6), edge) | st.builds(
        lambda s: s * timedelta(milliseconds=250), st.integers(0, 240)
    )


_logins = st.lists(
    st.tuples(
        _edge_offsets(),
        st.sampled_from(["192.0.2.1", "192.0.2.2", ""]),
        st.sampled_from(["root", "admin", "alice", ""]),
        st.sampled_from(["failed", "failed", "failed", "done"]),
    ),
    min_size=1,
    max_size=40,
)


def _frame(logins) -> pl.DataFrame:
    return _conform(
        pl.DataFrame(
            {
                "id": [f"h-{i:03d}" for i in range(len(logins))],
                "time": [T0 + off for off, *_ in logins],
                "ip": [ip for _, ip, _, _ in logins],
                "actor": [a for *_, a, _ in logins],
                "result": [r for *_, r in logins],
                "type": ["auth"] * len(logins),
                "action": ["login"] * len(logins),
            }
        ).with_columns(pl.col("time").cast(pl.Datetime("us", "UTC")))
    )


EDGE_CASES = [
    ("brute_force", {"threshold": 2, "window": W}),
    ("brute_force", {"threshold": 3, "window": W}),
    ("password_spray", {"min_accounts": 2, "window": W}),
    ("account_under_attack", {"min_ips": 2, "threshold": 3, "window": W}),
    ("failures_by_hour", {"tz": "Europe/Paris"}),
    ("failures_over_time", {"every": "10s"}),
]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(logins=_logins)
def test_generated_windows_agree_on_sqlite(logins):
    from audit_analytics.engines.store import open_store

    events = _frame(logins)
    store = open_store("sqlite://")
    store.append(events)
    try:
        for case in EDGE_CASES:
            check(store, events, case, Filter())
    finally:
        store.engine.dispose()


@pytest.mark.postgres
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(logins=_logins)
def test_generated_windows_agree_on_postgres(pg_store, logins):
    import sqlalchemy as sa

    events = _frame(logins)
    with pg_store.engine.begin() as conn:
        conn.execute(sa.text("TRUNCATE audit_events, audit_chain, audit_batches"))
    pg_store.append(events)
    for case in EDGE_CASES:
        check(pg_store, events, case, Filter())


# --------------------------------------------------------------------------- real logs


@pytest.fixture(scope="module", params=["openssh_2k", "linux_2k"])
def real_sqlite(request, real_data_dir, tmp_path_factory):
    from audit_analytics.engines.store import open_store
    from audit_analytics.io.ingest import import_files

    store = open_store(f"sqlite:///{tmp_path_factory.mktemp('real') / 'audit.db'}")
    import_files(store, [real_data_dir / f"{request.param}_audit.jsonl"])
    yield store
    store.engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def real_store(request, real_sqlite):
    """The real logs, imported once, in SQLite and copied into PostgreSQL."""
    if request.param == "sqlite":
        return real_sqlite
    import sqlalchemy as sa

    pg = request.getfixturevalue("pg_store")
    with pg.engine.begin() as conn:
        conn.execute(sa.text("TRUNCATE audit_events, audit_chain, audit_batches"))
    pg.append(real_sqlite.load())
    return pg


REAL_CASES = {
    "by-ip": ("failures_by_ip", {"top": 10}),
    "by-account": ("failures_by_account", {}),
    "by-hour-paris": ("failures_by_hour", {"tz": "Europe/Paris"}),
    "over-time-1d": ("failures_over_time", {"every": "1d"}),
    "brute-force": ("brute_force", {}),
    "brute-force-5-in-1m": ("brute_force", {"threshold": 5, "window": timedelta(minutes=1)}),
    "spray": ("password_spray", {"min_accounts": 3}),
    "account-under-attack": ("account_under_attack", {"min_ips": 2, "threshold": 5}),
}


@pytest.mark.parametrize("case", REAL_CASES.values(), ids=REAL_CASES.keys())
def test_real_logs_agree(real_store, case):
    events = real_store.load()
    check(real_store, events, case, Filter())


def test_schema_is_unchanged():
    assert EVENTS.schema == SCHEMA

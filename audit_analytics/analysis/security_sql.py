"""Security aggregates, sliding-window detections and the Activity page's counts evaluated
inside the database.

The functions of :mod:`audit_analytics.analysis.security` read an event frame; these compile the same
questions to SQL (SQLAlchemy Core, every value a bound parameter) and run them where the
events are, so only the answer crosses the wire: the aggregated rows, or for a detection the
events of its findings. They take a store (:class:`~audit_analytics.engines.store.Store` on SQLite or
PostgreSQL, or :class:`~audit_analytics.engines.clickhouse.ClickHouseStore`) and a
:class:`~audit_analytics.filters.Filter`, and return exactly what the polars function returns
on ``flt.apply(store.load())`` (a test holds every engine to that).

How the engines are used
    Times become integer epoch microseconds inside the query (:class:`epoch_us`): SQLite from
    its stored text, PostgreSQL from ``EXTRACT(EPOCH …)`` (exact ``numeric`` since 14),
    ClickHouse from ``toUnixTimestamp64Micro``. Sliding windows are then ``RANGE`` frames
    over that integer, ``BETWEEN CURRENT ROW AND W - 1 FOLLOWING``: the count of ``[t, t + W)``
    (a ``RANGE`` frame is closed, the definition half-open, and times are whole microseconds).
    The same statement runs on SQLite (>= 3.28), PostgreSQL (>= 11) and ClickHouse.

    Distinct accounts (or IPs) per window use no ``COUNT(DISTINCT) OVER`` (PostgreSQL and
    SQLite have none): the times of one (key, other) pair are merged into runs whose gaps are
    <= W; the pair is in the window at ``t`` when a run opens before ``t + W`` and has not
    closed before ``t``, so ``distinct(t) = opens(< t + W) - closes(< t)``, two cumulative
    ``RANGE`` sums.

    Hours and weekdays in a zone: PostgreSQL ``AT TIME ZONE``, ClickHouse ``toHour(t, tz)``.
    SQLite has no zones: it counts per UTC quarter-hour and the quarter-hours are placed in
    the zone here (exact while the zone's offset is a multiple of 15 minutes, true of every
    zone since 1980; otherwise the failure times themselves are fetched).
    :func:`failures_over_time` buckets UTC quarter-hours (or finer) in SQL on every engine and
    re-buckets them with the polars code, so the two agree by construction.

Examples
--------
>>> from datetime import timedelta
>>> from audit_analytics import Filter, open_store
>>> from audit_analytics.demo.generate import generate
>>> store = open_store("sqlite://")
>>> _ = store.append(generate(2_000, seed=5).events)
>>> top = failures_by_ip(store, Filter(), top=3)
>>> top.columns
['ip', 'failures', 'accounts', 'first', 'last']
>>> from audit_analytics.analysis import security
>>> top.equals(security.failures_by_ip(store.load(), top=3))
True
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import polars as pl
import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from audit_analytics.analysis.activity import Activity, fill_buckets, top_of
from audit_analytics.analysis.security import (
    UTC_US,
    AccountUnderAttackThresholds,
    BruteForceThresholds,
    FailureSummary,
    PasswordSprayThresholds,
    findings_schema,
    latest_hour,
    positive_int,
    to_micros,
)
from audit_analytics.errors import PushdownError
from audit_analytics.filters import Filter, sql_where, zone
from audit_analytics.schema import WRITE_ACTIONS, ResultDtype, TypeDtype

if TYPE_CHECKING:
    from collections.abc import Callable


__all__ = [
    "PushdownError",
    "CLICKHOUSE_MAX_WINDOW",
    "epoch_us",
    "int_div",
    "local_part",
    "failures_by_ip",
    "failure_summary",
    "time_range",
    "failures_by_account",
    "failures_by_hour",
    "failures_over_time",
    "brute_force",
    "password_spray",
    "account_under_attack",
    "activity",
]


class SqlStore(Protocol):
    """What these functions need of a store: :class:`~audit_analytics.engines.store.Store` or
    :class:`~audit_analytics.engines.clickhouse.ClickHouseStore`."""

    @property
    def table(self) -> sa.Table: ...

    @property
    def dialect(self) -> str: ...

    def distinct_ips(self) -> list[str]: ...

    def frame(self, stmt: sa.Executable, schema: Mapping[str, Any] | None = None) -> pl.DataFrame: ...


_LIST_STR = pl.List(pl.String)
CLICKHOUSE_MAX_WINDOW = timedelta(microseconds=2**31 - 1)
"""ClickHouse takes RANGE frame offsets up to 2**31 - 1 (here µs: 35 min 47 s)."""
MICROSECOND = timedelta(microseconds=1)
_QUARTER_HOUR_US = 15 * 60 * 1_000_000


# --------------------------------------------------------------------------- SQL building blocks


class epoch_us(FunctionElement[int]):  # noqa: N801 - a SQL function reads best in lower case
    """``time`` as integer microseconds since 1970-01-01 UTC, on every engine."""

    type = sa.BigInteger()
    name = "epoch_us"
    inherit_cache = True


@compiles(epoch_us, "sqlite")
def _epoch_us_sqlite(element: epoch_us, compiler: SQLCompiler, **kw: Any) -> str:
    # Stored as 'YYYY-MM-DD HH:MM:SS.ffffff' (UTC): whole seconds by strftime('%s'), exact;
    # the fraction padded so that '.5' or no fraction at all still reads right.
    (arg,) = element.clauses
    text = compiler.process(arg, **kw)
    return (
        f"(CAST(strftime('%s', substr({text}, 1, 19)) AS INTEGER) * 1000000"
        f" + CAST(substr({text} || '000000', 21, 6) AS INTEGER))"
    )


@compiles(epoch_us, "postgresql")
def _epoch_us_postgresql(element: epoch_us, compiler: SQLCompiler, **kw: Any) -> str:
    (arg,) = element.clauses
    return f"CAST(EXTRACT(EPOCH FROM {compiler.process(arg, **kw)}) * 1000000 AS BIGINT)"


@compiles(epoch_us, "clickhouse")
def _epoch_us_clickhouse(element: epoch_us, compiler: SQLCompiler, **kw: Any) -> str:
    (arg,) = element.clauses
    return f"toUnixTimestamp64Micro({compiler.process(arg, **kw)})"


class local_part(FunctionElement[int]):  # noqa: N801
    """ISO weekday (1 = Monday) or hour of ``time`` on the clock of a zone (a bound value).

    ``local_part(table.c.time, "Europe/Paris", "hour")``; PostgreSQL and ClickHouse only.
    """

    type = sa.Integer()
    name = "local_part"
    inherit_cache = True

    def __init__(self, time: sa.ColumnElement[Any], tz: str, part: str) -> None:
        if part not in ("isodow", "hour"):
            raise ValueError(f"part must be 'isodow' or 'hour', got {part!r}")
        self.part = part
        super().__init__(time, sa.bindparam(None, tz, type_=sa.String))


@compiles(local_part, "postgresql")
def _local_part_postgresql(element: local_part, compiler: SQLCompiler, **kw: Any) -> str:
    time, tz = (compiler.process(c, **kw) for c in element.clauses)
    return f"CAST(EXTRACT({element.part.upper()} FROM ({time} AT TIME ZONE {tz})) AS INTEGER)"


@compiles(local_part, "clickhouse")
def _local_part_clickhouse(element: local_part, compiler: SQLCompiler, **kw: Any) -> str:
    time, tz = (compiler.process(c, **kw) for c in element.clauses)
    if element.part == "hour":
        return f"toHour({time}, {tz})"
    return f"toDayOfWeek({time}, 0, {tz})"


def _int(value: int) -> sa.BindParameter[int]:
    # Window sizes and thresholds are our own integers (never user text), rendered into the
    # statement: frame offsets must be constants on SQLite and ClickHouse.
    return sa.bindparam(None, int(value), type_=sa.BigInteger, literal_execute=True)


def _range(lo: int | None, hi: int | None) -> tuple[int | None, int | None] | sa.FrameClause:
    """A RANGE frame ``[lo, hi]`` relative to the current row (None: unbounded; µs may
    exceed 32 bits, so the offsets are BIGINT constants, not SQLAlchemy's INTEGER binds)."""
    if not hasattr(sa, "FrameClause"):  # SQLAlchemy 2.0 renders integer offsets inline
        return (lo, hi)

    def bound(
        value: int | None, unbounded: sa.FrameClauseType
    ) -> tuple[sa.BindParameter[int] | None, sa.FrameClauseType]:
        if value is None:
            return None, unbounded
        if value == 0:
            return None, sa.FrameClauseType.CURRENT
        kind = sa.FrameClauseType.PRECEDING if value < 0 else sa.FrameClauseType.FOLLOWING
        return _int(abs(value)), kind

    (start, start_type), (end, end_type) = (
        bound(lo, sa.FrameClauseType.UNBOUNDED),
        bound(hi, sa.FrameClauseType.UNBOUNDED),
    )
    return sa.FrameClause(start, end, start_type, end_type)


class int_div(FunctionElement[int]):  # noqa: N801
    """Integer division of two non-negative integers (ClickHouse's ``/`` is real division)."""

    type = sa.BigInteger()
    name = "int_div"
    inherit_cache = True


@compiles(int_div)
def _int_div(element: int_div, compiler: SQLCompiler, **kw: Any) -> str:
    a, b = (compiler.process(c, **kw) for c in element.clauses)
    return f"({a} / {b})"


@compiles(int_div, "clickhouse")
def _int_div_clickhouse(element: int_div, compiler: SQLCompiler, **kw: Any) -> str:
    a, b = (compiler.process(c, **kw) for c in element.clauses)
    return f"intDiv({a}, {b})"


def _blank_to_null(col: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    # Real logs write "" for "no user" / "no IP"; the polars path treats it as null too.
    return sa.func.nullif(col, sa.bindparam(None, "", type_=sa.String))


def _is_login(table: sa.Table, result: str) -> sa.ColumnElement[bool]:
    c = table.c
    return sa.and_(c.type == "auth", c.action == "login", c.result == result)


def _where(store: SqlStore, flt: Filter | None, now: datetime | None) -> sa.ColumnElement[bool]:
    if flt is None:
        return sa.true()
    return sql_where(flt, store.table, now=now, distinct_ips=store.distinct_ips)


def _frame(store: SqlStore, stmt: sa.Select[*tuple[Any, ...]], schema: Mapping[str, Any]) -> pl.DataFrame:
    """Run ``stmt`` on the store, rows into a frame of ``schema`` (names in select order)."""
    return store.frame(stmt, schema)


def _from_us(name: str) -> pl.Expr:
    return pl.from_epoch(pl.col(name), time_unit="us").dt.replace_time_zone("UTC").cast(UTC_US)


# --------------------------------------------------------------------------- aggregates


def _by_key(
    store: SqlStore,
    flt: Filter | None,
    now: datetime | None,
    key: str,
    other: str,
    out_key: str,
    out_other: str,
    top: int | None,
) -> pl.DataFrame:
    t = store.table
    k = _blank_to_null(t.c[key])
    failures = sa.func.count().label("n")
    stmt = (
        sa.select(
            k.label("k"),
            failures,
            sa.func.count(sa.distinct(_blank_to_null(t.c[other]))).label("o"),
            epoch_us(sa.func.min(t.c.time)).label("first_us"),
            epoch_us(sa.func.max(t.c.time)).label("last_us"),
        )
        .where(_where(store, flt, now), _is_login(t, "failed"), k.is_not(None))
        .group_by(k)
        # Ties break on the key in code-point order, as polars sorts (PostgreSQL: not the locale).
        .order_by(failures.desc(), sa.collate(k, "C") if store.dialect == "postgresql" else k)
    )
    if top is not None:
        stmt = stmt.limit(positive_int(top, "top"))
    schema = {"k": pl.String, "n": pl.Int64, "o": pl.Int64, "first_us": pl.Int64, "last_us": pl.Int64}
    rows = _frame(store, stmt, schema)
    return rows.select(
        pl.col("k").alias(out_key),
        pl.col("n").cast(pl.UInt32).alias("failures"),
        pl.col("o").cast(pl.UInt32).alias(out_other),
        _from_us("first_us").alias("first"),
        _from_us("last_us").alias("last"),
    )


def failures_by_ip(
    store: SqlStore, flt: Filter | None = None, *, top: int | None = None, now: datetime | None = None
) -> pl.DataFrame:
    """Login failures per source IP, counted in the database.

    Same result as :func:`audit_analytics.analysis.security.failures_by_ip` on the filtered events:
    ``ip``, ``failures``, ``accounts``, ``first``, ``last``; most failures first, ties by IP.
    ``now`` fixes "today" for the filter's period (default: the wall clock).
    """
    return _by_key(store, flt, now, "ip", "actor", "ip", "accounts", top)


def failure_summary(
    store: SqlStore, flt: Filter | None = None, *, now: datetime | None = None
) -> FailureSummary:
    """The headline figures of :func:`audit_analytics.analysis.security.failure_summary`, counted in
    the database. ``successes_after_failures`` is 0 here: that detection needs the events
    (the Security page shows its own table's count)."""
    t = store.table
    ip, actor = _blank_to_null(t.c.ip), _blank_to_null(t.c.actor)
    one, zero = sa.bindparam(None, 1, type_=sa.BigInteger), sa.bindparam(None, 0, type_=sa.BigInteger)
    stmt = sa.select(
        sa.func.count().label("n"),
        sa.func.count(sa.distinct(ip)).label("ips"),
        sa.func.count(sa.distinct(actor)).label("accounts"),
        sa.func.sum(sa.case((ip.is_(None), one), else_=zero)).label("no_ip"),
        sa.func.sum(sa.case((actor.is_(None), one), else_=zero)).label("no_account"),
    ).where(_where(store, flt, now), _is_login(t, "failed"))
    names = ("n", "ips", "accounts", "no_ip", "no_account")
    row = _frame(store, stmt, dict.fromkeys(names, pl.Int64)).row(0, named=True)
    n = {k: int(row[k] or 0) for k in names}
    return FailureSummary(
        failures=n["n"],
        distinct_ips=n["ips"],
        distinct_accounts=n["accounts"],
        successes_after_failures=0,
        failures_without_ip=n["no_ip"],
        failures_without_account=n["no_account"],
    )


def time_range(
    store: SqlStore, flt: Filter | None = None, *, now: datetime | None = None
) -> tuple[datetime | None, datetime | None]:
    """The first and last event time that pass ``flt`` (None, None when none do)."""
    t = store.table
    stmt = sa.select(
        sa.func.count().label("n"),
        epoch_us(sa.func.min(t.c.time)).label("lo"),
        epoch_us(sa.func.max(t.c.time)).label("hi"),
    ).where(_where(store, flt, now))
    row = _frame(store, stmt, {"n": pl.Int64, "lo": pl.Int64, "hi": pl.Int64})
    if row.height == 0 or not row["n"][0]:
        return None, None
    lo, hi = row.select(_from_us("lo"), _from_us("hi")).row(0)
    return lo, hi


def failures_by_account(
    store: SqlStore, flt: Filter | None = None, *, top: int | None = None, now: datetime | None = None
) -> pl.DataFrame:
    """Login failures per account, counted in the database (``account``, ``failures``,
    ``ips``, ``first``, ``last``), as :func:`audit_analytics.analysis.security.failures_by_account`."""
    return _by_key(store, flt, now, "actor", "ip", "account", "ips", top)


def _quarter_hours(
    store: SqlStore, flt: Filter | None, now: datetime | None, step_us: int, *, successes: bool
) -> pl.DataFrame:
    """Login failures (and successes) per UTC bucket of ``step_us``: ``time``, counts."""
    t = store.table
    us = epoch_us(t.c.time)
    bucket = int_div(us, _int(step_us)).label("b")
    results = ["failed", "done"] if successes else ["failed"]
    cols = [
        bucket,
        sa.func.sum(sa.case((t.c.result == "failed", 1), else_=0)).label("f"),
        sa.func.sum(sa.case((t.c.result == "done", 1), else_=0)).label("s"),
    ]
    stmt = (
        sa.select(*cols)
        .where(
            _where(store, flt, now),
            t.c.type == "auth",
            t.c.action == "login",
            t.c.result.in_(results),
        )
        .group_by(bucket)
    )
    rows = _frame(store, stmt, {"b": pl.Int64, "f": pl.Int64, "s": pl.Int64})
    return rows.select(
        pl.from_epoch(pl.col("b") * step_us, time_unit="us").dt.replace_time_zone("UTC").alias("time"),
        pl.col("f").alias("failures"),
        pl.col("s").alias("successes"),
    )


def _offsets_aligned(times: pl.Series, tz: str, step_us: int) -> bool:
    """Is the zone's UTC offset at each of these instants a multiple of ``step_us``?"""
    if times.len() == 0:
        return True
    local = times.dt.convert_time_zone(tz)
    offset = local.dt.base_utc_offset() + local.dt.dst_offset()
    return bool((offset.dt.total_microseconds() % step_us == 0).all())


def failures_by_hour(
    store: SqlStore, flt: Filter | None = None, *, tz: str = "UTC", now: datetime | None = None
) -> pl.DataFrame:
    """Login failures per weekday and hour in zone ``tz`` (all 168 cells), in the database.

    PostgreSQL and ClickHouse group by the local weekday and hour themselves; SQLite, which
    has no time zones, returns counts per UTC quarter-hour that are placed in the zone here.
    Same result as :func:`audit_analytics.analysis.security.failures_by_hour`, each cell's
    ``latest`` hour included.
    """
    zone(tz)
    t = store.table
    if store.dialect in ("postgresql", "clickhouse"):
        weekday = local_part(t.c.time, tz, "isodow")
        hour = local_part(t.c.time, tz, "hour")
        stmt = (
            sa.select(
                weekday.label("wd"),
                hour.label("hr"),
                sa.func.count().label("n"),
                sa.func.max(epoch_us(t.c.time)).label("last"),
            )
            .where(_where(store, flt, now), _is_login(t, "failed"))
            .group_by(weekday, hour)
        )
        counts = _frame(store, stmt, {"wd": pl.Int64, "hr": pl.Int64, "n": pl.Int64, "last": pl.Int64})
        counts = counts.with_columns(
            _from_us("last").dt.convert_time_zone(tz).dt.truncate("1h").alias("latest")
        )
    else:
        quarters = _quarter_hours(store, flt, now, _QUARTER_HOUR_US, successes=False)
        if not _offsets_aligned(quarters["time"], tz, _QUARTER_HOUR_US):
            quarters = _failure_times(store, flt, now)
        local = pl.col("time").dt.convert_time_zone(tz)
        # a quarter-hour's start is in the same local hour as its failures (offsets aligned)
        counts = quarters.group_by(local.dt.weekday().alias("wd"), local.dt.hour().alias("hr")).agg(
            pl.col("failures").sum().alias("n"), latest_hour(local)
        )
    counts = counts.select(
        pl.col("wd").cast(pl.Int8).alias("weekday"),
        pl.col("hr").cast(pl.Int8).alias("hour"),
        pl.col("n").cast(pl.UInt32).alias("failures"),
        pl.col("latest").cast(pl.Datetime("us", tz)),
    )
    grid = pl.DataFrame({"weekday": pl.Series(range(1, 8), dtype=pl.Int8)}).join(
        pl.DataFrame({"hour": pl.Series(range(24), dtype=pl.Int8)}), how="cross"
    )
    return (
        grid.join(counts, on=["weekday", "hour"], how="left")
        .with_columns(pl.col("failures").fill_null(0))
        .sort(["weekday", "hour"])
    )


def _failure_times(store: SqlStore, flt: Filter | None, now: datetime | None) -> pl.DataFrame:
    t = store.table
    stmt = sa.select(epoch_us(t.c.time).label("us")).where(_where(store, flt, now), _is_login(t, "failed"))
    rows = _frame(store, stmt, {"us": pl.Int64})
    return rows.select(_from_us("us").alias("time"), pl.lit(1, dtype=pl.Int64).alias("failures"))


_DURATION = re.compile(r"(\d+)(ns|us|ms|s|m|h|d|w|mo|q|y|i)")
_UNIT_US = {"ns": 0, "us": 1, "ms": 1_000, "s": 1_000_000, "m": 60_000_000, "h": 3_600_000_000}
_UNIT_US |= {"d": 86_400_000_000, "w": 7 * 86_400_000_000}


def _bucket_step(every: str) -> int:
    """The largest UTC step (µs, at most a quarter-hour) whose buckets never straddle a
    bucket of ``every`` in a zone whose offset is a multiple of 15 minutes."""
    parts = _DURATION.findall(every)
    if not parts or "".join(n + u for n, u in parts) != every:
        raise ValueError(f"every must be a polars duration such as '5m', '1h' or '1d', got {every!r}")
    step = _QUARTER_HOUR_US
    for n, unit in parts:
        if unit in ("mo", "q", "y"):
            continue  # calendar units start at local midnights
        if unit in ("ns", "i"):
            raise ValueError(f"every must be at least a microsecond, got {every!r}")
        step = math.gcd(step, int(n) * _UNIT_US[unit])
    return step


def failures_over_time(
    store: SqlStore,
    flt: Filter | None = None,
    *,
    every: str = "1h",
    tz: str = "UTC",
    now: datetime | None = None,
) -> pl.DataFrame:
    """Login failures and successes per ``every`` bucket on the clock of ``tz``.

    The database counts per UTC quarter-hour (or per ``every`` when that is shorter); those
    counts are re-bucketed with the same polars expression the in-memory path uses. Same
    result as :func:`audit_analytics.analysis.security.failures_over_time`: ``bucket``, ``failures``,
    ``successes``, every bucket from the first to the last present.
    """
    step = _bucket_step(every)
    counts = _quarter_hours(store, flt, now, step, successes=True)
    if not _offsets_aligned(counts["time"], tz, step):
        raise PushdownError(
            f"{tz} has a UTC offset that is not a multiple of {timedelta(microseconds=step)} in this "
            "period; bucket these events in memory (audit_analytics.analysis.security.failures_over_time)"
        )
    buckets = counts.group_by(pl.col("time").dt.convert_time_zone(tz).dt.truncate(every).alias("bucket")).agg(
        pl.col("failures").sum().cast(pl.UInt32), pl.col("successes").sum().cast(pl.UInt32)
    )
    buckets = buckets.with_columns(pl.col("bucket").cast(pl.Datetime("us", tz)))
    if buckets.height == 0:
        buckets = pl.DataFrame(
            schema={"bucket": pl.Datetime("us", tz), "failures": pl.UInt32, "successes": pl.UInt32}
        )
    return fill_buckets(buckets, every, tz).with_columns(pl.col("failures", "successes").fill_null(0))


# --------------------------------------------------------------------------- sliding windows


def _window_members(
    store: SqlStore,
    flt: Filter | None,
    now: datetime | None,
    *,
    key: str,
    other: str | None,
    window: int,
    qualifies: Callable[[sa.ColumnElement[Any], sa.ColumnElement[Any]], sa.ColumnElement[bool]],
) -> sa.Select[*tuple[Any, ...]]:
    """The failures that lie in a qualifying window ``[t, t + W)``, with their window counts.

    Returns a statement selecting ``k, us, eid, a, i, cnt, dist, q`` for every failure of a
    key that lies inside some qualifying window (``q`` = its own window qualifies).
    ``qualifies(cnt, dist)`` builds the SQL condition.
    """
    if store.dialect == "clickhouse" and window > CLICKHOUSE_MAX_WINDOW // MICROSECOND:
        raise PushdownError(
            f"ClickHouse window frames reach at most {CLICKHOUSE_MAX_WINDOW} ahead; "
            f"use a shorter window or the in-memory detection for {timedelta(microseconds=window)}"
        )
    t = store.table
    k = _blank_to_null(t.c[key])
    failures = (
        sa.select(
            k.label("k"),
            (_blank_to_null(t.c[other]) if other else sa.null()).label("o"),
            epoch_us(t.c.time).label("us"),
            t.c.id.label("eid"),
            _blank_to_null(t.c.actor).label("a"),
            _blank_to_null(t.c.ip).label("i"),
        )
        .where(_where(store, flt, now), _is_login(t, "failed"), k.is_not(None))
        .subquery("f")
    )
    f = failures.c
    one: sa.ColumnElement[Any] = sa.literal_column("1")
    zero: sa.ColumnElement[Any] = sa.literal_column("0")
    rows: sa.Subquery
    if other is None:
        rows = sa.select(
            f.k, f.us, f.eid, f.a, f.i, one.label("ev"), zero.label("op"), zero.label("cl")
        ).subquery("u")
    else:
        # Distinct (key, other) times; a pair's run opens where no time of it lies in the W
        # before, closes where none lies in the W after (gaps <= W keep a run going).
        pairs = sa.select(f.k, f.o, f.us).where(f.o.is_not(None)).distinct().subquery("p")
        p = pairs.c
        before = sa.func.count().over(partition_by=[p.k, p.o], order_by=p.us, range_=_range(-window, -1))
        after = sa.func.count().over(partition_by=[p.k, p.o], order_by=p.us, range_=_range(1, window))
        marks = sa.select(
            p.k,
            p.us,
            sa.case((before == 0, 1), else_=0).label("op"),
            sa.case((after == 0, 1), else_=0).label("cl"),
        ).subquery("m")
        m = marks.c
        rows = sa.union_all(
            sa.select(f.k, f.us, f.eid, f.a, f.i, one.label("ev"), zero.label("op"), zero.label("cl")),
            sa.select(
                m.k,
                m.us,
                sa.null().label("eid"),
                sa.null().label("a"),
                sa.null().label("i"),
                zero.label("ev"),
                m.op,
                m.cl,
            ),
        ).subquery("u")
    u = rows.c
    counted = sa.select(
        u.k,
        u.us,
        u.eid,
        u.a,
        u.i,
        u.ev,
        sa.func.sum(u.ev).over(partition_by=u.k, order_by=u.us, range_=_range(0, window - 1)).label("cnt"),
        (
            sa.func.sum(u.op).over(partition_by=u.k, order_by=u.us, range_=_range(None, window - 1))
            - sa.func.coalesce(
                sa.func.sum(u.cl).over(partition_by=u.k, order_by=u.us, range_=_range(None, -1)), 0
            )
        ).label("dist"),
    ).subquery("w")
    w = counted.c
    flag = sa.case((qualifies(w.cnt, w.dist), 1), else_=0)
    marked = (
        sa.select(
            w.k,
            w.us,
            w.eid,
            w.a,
            w.i,
            w.cnt,
            w.dist,
            flag.label("q"),
            # a member: some qualifying window [q, q + W) holds it, i.e. q in (t - W, t]
            sa.func.max(flag)
            .over(partition_by=w.k, order_by=w.us, range_=_range(-(window - 1), 0))
            .label("mem"),
        )
        .where(w.ev == 1)
        .subquery("q")
    )
    q = marked.c
    return sa.select(q.k, q.us, q.eid, q.a, q.i, q.cnt, q.dist, q.q).where(q.mem == 1)


_MEMBER_SCHEMA = {
    "k": pl.String,
    "us": pl.Int64,
    "eid": pl.String,
    "a": pl.String,
    "i": pl.String,
    "cnt": pl.Int64,
    "dist": pl.Int64,
    "q": pl.Int64,
}


def _runs(members: pl.DataFrame, window: int, maxima: dict[str, str]) -> pl.DataFrame:
    """Merge the qualifying windows of the members into findings, as security._runs does.

    A qualifying event starts a new run when the previous qualifying event of its key lies
    ``window`` or more before it; the other members belong to the run of the latest
    qualifying event at or before them (ties share one window, so they qualify together).
    """
    schema = findings_schema(maxima)
    if members.height == 0:
        return pl.DataFrame(schema=schema)
    rows = members.sort(["k", "us", "eid"])
    us, qual = rows["us"].to_numpy(), rows["q"].to_numpy() == 1
    new_key = np.ones(rows.height, dtype=bool)
    keys = rows["k"]
    new_key[1:] = (keys.slice(1) != keys.slice(0, rows.height - 1)).to_numpy()
    # previous qualifying time of the same key, for every qualifying row
    qi = np.flatnonzero(qual)
    begins = np.ones(qi.shape[0], dtype=bool)
    if qi.shape[0] > 1:
        same_key = np.cumsum(new_key)[qi]
        begins[1:] = (same_key[1:] != same_key[:-1]) | (us[qi][1:] >= us[qi][:-1] + window)
    run_of_q = np.cumsum(begins) - 1
    run = np.full(rows.height, -1, dtype=np.int64)
    run[qi] = run_of_q
    run = np.maximum.accumulate(run)  # members after a qualifying row join its run
    rows = rows.with_columns(pl.Series("__run", run), pl.Series("__q", qual))
    peak = pl.col("cnt").filter(pl.col("__q")).max()
    found = rows.group_by("__run", maintain_order=True).agg(
        pl.col("k").first().alias("key"),
        _from_us("us").min().alias("first"),
        _from_us("us").max().alias("last"),
        pl.len().alias("count"),
        *[pl.col(src).filter(pl.col("__q")).max().alias(name) for name, src in maxima.items()],
        _from_us("us").filter(pl.col("__q") & (pl.col("cnt") == peak)).min().alias("peak_start"),
        pl.col("a").drop_nulls().unique().sort().alias("accounts"),
        pl.col("i").drop_nulls().unique().sort().alias("ips"),
        pl.col("eid").alias("event_ids"),
    )
    return found.select(pl.col(name).cast(dtype) for name, dtype in schema.items()).sort(["first", "key"])


def brute_force(
    store: SqlStore,
    flt: Filter | None = None,
    *,
    threshold: int = BruteForceThresholds.threshold,
    window: timedelta = BruteForceThresholds.window,
    now: datetime | None = None,
) -> pl.DataFrame:
    """Source IPs with at least ``threshold`` failures in a window ``[t, t + window)``, in SQL.

    Same result as :func:`audit_analytics.analysis.security.brute_force` (``event_ids`` in time order,
    ties by id). Only the failures of the findings leave the database.
    """
    threshold = positive_int(threshold, "threshold")
    micros = to_micros(window, "window")
    stmt = _window_members(
        store, flt, now, key="ip", other=None, window=micros, qualifies=lambda cnt, _: cnt >= _int(threshold)
    )
    return _runs(_frame(store, stmt, _MEMBER_SCHEMA), micros, {"max_in_window": "cnt"})


def password_spray(
    store: SqlStore,
    flt: Filter | None = None,
    *,
    min_accounts: int = PasswordSprayThresholds.min_accounts,
    window: timedelta = PasswordSprayThresholds.window,
    now: datetime | None = None,
) -> pl.DataFrame:
    """Source IPs failing against at least ``min_accounts`` distinct accounts in one window,
    in SQL; same result as :func:`audit_analytics.analysis.security.password_spray`."""
    min_accounts = positive_int(min_accounts, "min_accounts")
    micros = to_micros(window, "window")
    stmt = _window_members(
        store,
        flt,
        now,
        key="ip",
        other="actor",
        window=micros,
        qualifies=lambda _, dist: dist >= _int(min_accounts),
    )
    members = _frame(store, stmt, _MEMBER_SCHEMA)
    return _runs(members, micros, {"max_in_window": "cnt", "max_accounts": "dist"})


def account_under_attack(
    store: SqlStore,
    flt: Filter | None = None,
    *,
    min_ips: int = AccountUnderAttackThresholds.min_ips,
    threshold: int = AccountUnderAttackThresholds.threshold,
    window: timedelta = AccountUnderAttackThresholds.window,
    now: datetime | None = None,
) -> pl.DataFrame:
    """Accounts failing from ``min_ips`` distinct IPs, or ``threshold`` times, in one window,
    in SQL; same result as :func:`audit_analytics.analysis.security.account_under_attack`."""
    min_ips = positive_int(min_ips, "min_ips")
    threshold = positive_int(threshold, "threshold")
    micros = to_micros(window, "window")
    stmt = _window_members(
        store,
        flt,
        now,
        key="actor",
        other="ip",
        window=micros,
        qualifies=lambda cnt, dist: sa.or_(dist >= _int(min_ips), cnt >= _int(threshold)),
    )
    members = _frame(store, stmt, _MEMBER_SCHEMA)
    return _runs(members, micros, {"max_in_window": "cnt", "max_ips": "dist"})


# --------------------------------------------------------------------------- activity


def activity(
    store: SqlStore, flt: Filter | None = None, *, top: int | None = None, now: datetime | None = None
) -> Activity:
    """The Activity page's reading of the filtered events, counted in the database: the same
    :class:`~audit_analytics.analysis.activity.Activity` as
    :func:`audit_analytics.analysis.activity.of_events` on them (a test holds every engine to it).

    Three statements: the counts per UTC quarter-hour, category, result and write action; the
    distinct actors with the first and last time; per ranking, the ``top`` keys and their events
    per category (ties broken in code-point order, as polars sorts).
    """
    t = store.table
    where = _where(store, flt, now)
    slot = int_div(epoch_us(t.c.time), _int(_QUARTER_HOUR_US)).label("s")
    write = sa.case((t.c.action.in_(sorted(WRITE_ACTIONS)), t.c.action), else_=sa.null()).label("a")
    stmt = sa.select(slot, t.c.type, t.c.result, write, sa.func.count().label("n")).where(where)
    rows = _frame(
        store,
        stmt.group_by(slot, t.c.type, t.c.result, write),
        {"s": pl.Int64, "type": pl.String, "result": pl.String, "a": pl.String, "n": pl.Int64},
    )
    counts = rows.select(
        pl.from_epoch(pl.col("s") * _QUARTER_HOUR_US, time_unit="us")
        .dt.replace_time_zone("UTC")
        .alias("time"),
        pl.col("type").cast(TypeDtype),
        pl.col("result").cast(ResultDtype),
        pl.col("a").alias("action"),
        pl.col("n").cast(pl.UInt32),
    )
    span = sa.select(
        sa.func.count(sa.distinct(t.c.actor)).label("actors"),
        epoch_us(sa.func.min(t.c.time)).label("lo"),
        epoch_us(sa.func.max(t.c.time)).label("hi"),
    ).where(where)
    first, last, actors = None, None, 0
    if counts.height:
        got = _frame(store, span, {"actors": pl.Int64, "lo": pl.Int64, "hi": pl.Int64})
        actors = int(got["actors"][0])
        first, last = got.select(_from_us("lo"), _from_us("hi")).row(0)
    return Activity(
        events=counts,
        total=int(counts["n"].cast(pl.Int64).sum()),
        first=first,
        last=last,
        actors=actors,
        top_actors=_top_keys(store, where, "actor", top) if top is not None else None,
        top_targets=_top_keys(store, where, "target", top) if top is not None else None,
    )


def _top_keys(store: SqlStore, where: sa.ColumnElement[bool], column: str, top: int) -> pl.DataFrame:
    """The ``top`` keys of ``column`` with the most events and their events per category, as
    :func:`audit_analytics.analysis.activity.top_of` ranks them."""
    t = store.table
    key = t.c[column]
    named = sa.and_(where, key.is_not(None), key != sa.bindparam(None, "", type_=sa.String))
    total = sa.func.count().label("total")
    ranked = (
        sa.select(key.label("k"), total)
        .where(named)
        .group_by(key)
        .order_by(total.desc(), sa.collate(key, "C") if store.dialect == "postgresql" else key)
        .limit(positive_int(top, "top"))
    )
    keys = _frame(store, ranked, {"k": pl.String, "total": pl.Int64})["k"].to_list()
    per_type = sa.select(key.label("k"), t.c.type, sa.func.count().label("n")).where(named, key.in_(keys))
    rows = _frame(store, per_type.group_by(key, t.c.type), {"k": pl.String, "type": pl.String, "n": pl.Int64})
    return top_of(
        rows.select(
            pl.col("k").alias(column),
            pl.col("type").cast(TypeDtype),
            pl.col("n").cast(pl.UInt32).alias("events"),
        ),
        column,
        top,
    )

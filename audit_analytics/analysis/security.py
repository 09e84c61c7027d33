"""Login-failure patterns and security detections: event frames in, DataFrames out.

A *login failure* is ``type == "auth" and action == "login" and result == "failed"``; a
*login success* is the same with ``result == "done"``. Every function takes an event frame
(:class:`polars.DataFrame` or :class:`polars.LazyFrame` with the columns of
:data:`audit_analytics.schema.SCHEMA`) that the caller has already filtered to the user's
search and period, and selects the rows it needs itself.

Aggregates
    :func:`failures_by_ip`, :func:`failures_by_account`, :func:`failures_by_hour`,
    :func:`failures_by_hour_of_day`, :func:`failures_over_time`, :func:`failure_summary`.
Detections (one finding per row, sorted by ``first``; see :data:`DETECTIONS`)
    :func:`brute_force`, :func:`password_spray`, :func:`account_under_attack`,
    :func:`success_after_failures`, :func:`off_hours`, :func:`permission_changes`,
    :func:`stuck_operations`; :func:`backtest` counts the findings of a rule per bucket.

Sliding windows are exact and half-open: for every failure at time ``t`` the window is
``[t, t + window)`` over the failures of the same key (two failures exactly ``window`` apart
are *not* in one window; ``window - 1µs`` apart they are). A finding is a maximal run of
overlapping qualifying windows: ``first``/``last`` are the times of its first and last event,
``count`` the events in the run, ``max_in_window`` the largest count inside one window and
``peak_start`` where the first such window starts.

Examples
--------
>>> from datetime import datetime, timedelta, timezone
>>> import polars as pl
>>> from audit_analytics import schema
>>> from audit_analytics.analysis import security
>>> t0 = datetime(2025, 1, 6, 9, 0, tzinfo=timezone.utc)
>>> events = schema.conform(pl.DataFrame({
...     "id": [f"e{i}" for i in range(10)],
...     "time": [t0 + timedelta(seconds=10 * i) for i in range(10)],
...     "actor": ["root"] * 10, "type": ["auth"] * 10, "action": ["login"] * 10,
...     "result": ["failed"] * 10, "ip": ["203.0.113.7"] * 10,
... }))
>>> security.failures_by_ip(events).select("ip", "failures", "accounts").rows()
[('203.0.113.7', 10, 1)]
>>> security.brute_force(events).select("key", "count", "max_in_window").rows()
[('203.0.113.7', 10, 10)]
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any, Literal, NamedTuple, cast

import numpy as np
import polars as pl

from audit_analytics.analysis.activity import fill_buckets
from audit_analytics.dates import duration, zone
from audit_analytics.errors import DetectionError
from audit_analytics.filters import is_permission_change
from audit_analytics.schema import PERMISSION_ACTIONS, WRITE_ACTIONS

__all__ = [
    "ADMIN_ROLES",
    "DETECTIONS",
    "DENIED",
    "denied_calls",
    "is_denied_call",
    "PERMISSION_ACTIONS",
    "AccountUnderAttackThresholds",
    "BruteForceThresholds",
    "Detection",
    "DetectionError",
    "FailureSummary",
    "OffHoursThresholds",
    "PasswordSprayThresholds",
    "PermissionChangesThresholds",
    "StuckOperationsThresholds",
    "SuccessAfterFailuresThresholds",
    "account_under_attack",
    "backtest",
    "brute_force",
    "failure_summary",
    "failures_by_account",
    "failures_by_hour",
    "failures_by_hour_of_day",
    "failures_by_ip",
    "failures_over_time",
    "is_login_failure",
    "is_login_success",
    "off_hours",
    "password_spray",
    "permission_changes",
    "stuck_operations",
    "success_after_failures",
    "load_policy",
    "policy_file",
    "thresholds_of",
]

Frame = pl.DataFrame | pl.LazyFrame
SuccessKey = Literal["account", "ip", "both"]

UTC_US = pl.Datetime("us", "UTC")
_US_PER_SECOND = 1_000_000
_DAY_US = 86_400 * _US_PER_SECOND
_HOUR_US = 3_600 * _US_PER_SECOND
_MINUTE_US = 60 * _US_PER_SECOND
_HALF_DAY_US = _DAY_US // 2


def is_login_failure() -> pl.Expr:
    """The predicate of a login failure (``auth``/``login``/``failed``).

    >>> import polars as pl
    >>> pl.DataFrame({"type": ["auth"], "action": ["login"], "result": ["failed"]}).filter(
    ...     is_login_failure()).height
    1
    """
    return (pl.col("type") == "auth") & (pl.col("action") == "login") & (pl.col("result") == "failed")


DENIED = r"(?i)denied|unauthori[sz]ed|not authori[sz]ed|forbidden|permission|\b403\b"
"""What a refusal's error says (AWS ``AccessDenied``/``UnauthorizedOperation``, Kubernetes
``Forbidden``, HTTP 403, "permission denied")."""


def is_denied_call() -> pl.Expr:
    """A refused action: a failed event other than a login whose error says it was not allowed.

    >>> import polars as pl
    >>> pl.DataFrame({"type": ["secret", "auth"], "action": ["read", "login"], "result": ["failed"] * 2,
    ...               "error": ["AccessDenied: not authorized", "permission denied"]}).filter(is_denied_call()).height
    1
    """
    return (
        (pl.col("result") == "failed")
        & ~((pl.col("type") == "auth") & (pl.col("action") == "login"))
        & pl.col("error").str.contains(DENIED).fill_null(False)
    )


def is_login_success() -> pl.Expr:
    """The predicate of a login success (``auth``/``login``/``done``).

    >>> import polars as pl
    >>> pl.DataFrame({"type": ["auth"], "action": ["login"], "result": ["done"]}).filter(
    ...     is_login_success()).height
    1
    """
    return (pl.col("type") == "auth") & (pl.col("action") == "login") & (pl.col("result") == "done")


# --------------------------------------------------------------------------- selection helpers


def _blank_to_null(name: str) -> pl.Expr:
    # Real logs write "" for "no user" / "no IP"; for counting, "" and null mean the same.
    return pl.when(pl.col(name) != "").then(pl.col(name)).alias(name)


def _select(frame: Frame, predicate: pl.Expr, columns: Iterable[str]) -> pl.DataFrame:
    """Filter and project lazily, so a LazyFrame over Parquet reads only what is needed."""
    exprs = []
    for name in columns:
        if name in ("actor", "ip", "request_id"):
            exprs.append(_blank_to_null(name))
        elif name == "time":
            exprs.append(pl.col("time").cast(UTC_US))
        else:
            exprs.append(pl.col(name))
    return frame.lazy().filter(predicate).select(exprs).collect()


def _failures(frame: Frame, columns: Iterable[str]) -> pl.DataFrame:
    return _select(frame, is_login_failure(), columns)


def to_micros(value: timedelta, name: str) -> int:
    if not isinstance(value, timedelta):
        raise DetectionError(f"{name} must be a datetime.timedelta, got {value!r}")
    micros = value // timedelta(microseconds=1)
    if micros <= 0:
        raise DetectionError(f"{name} must be positive, got {value}")
    return micros


def positive_int(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise DetectionError(f"{name} must be a positive integer, got {value!r}")
    return value


# --------------------------------------------------------------------------- aggregates


def _by_key(
    failures: pl.DataFrame, key: str, other: str, out_key: str, out_other: str, top: int | None
) -> pl.DataFrame:
    result = (
        failures.filter(pl.col(key).is_not_null())
        .group_by(key)
        .agg(
            pl.len().alias("failures"),
            pl.col(other).drop_nulls().n_unique().alias(out_other),
            pl.col("time").min().alias("first"),
            pl.col("time").max().alias("last"),
        )
        .rename({key: out_key})
        .sort(["failures", out_key], descending=[True, False])
        .with_columns(pl.col("failures").cast(pl.UInt32), pl.col(out_other).cast(pl.UInt32))
    )
    if top is not None:
        result = result.head(positive_int(top, "top"))
    return result


def failures_by_ip(frame: Frame, *, top: int | None = None) -> pl.DataFrame:
    """Login failures per source IP.

    Failures without an IP are left out; :func:`failure_summary` reports how many there were
    (``failures_without_ip``).

    Parameters
    ----------
    frame
        Event frame (already filtered by the caller).
    top
        Keep only the first ``top`` rows (at least 1; None: all, as on every engine). Ties
        at the cut-off are broken by IP, ascending.

    Returns
    -------
    pl.DataFrame
        ``ip``, ``failures``, ``accounts`` (distinct actors), ``first``, ``last``; sorted by
        ``failures`` descending, then ``ip`` ascending.

    Examples
    --------
    >>> import polars as pl
    >>> from audit_analytics import schema
    >>> ev = schema.conform(pl.DataFrame({
    ...     "time": ["2025-01-01T00:00:00Z"] * 3, "type": ["auth"] * 3, "action": ["login"] * 3,
    ...     "result": ["failed"] * 3, "actor": ["a", "b", "a"], "ip": ["10.0.0.2", "10.0.0.1", None],
    ... }).with_columns(pl.col("time").str.to_datetime(time_zone="UTC")))
    >>> failures_by_ip(ev).select("ip", "failures", "accounts").rows()
    [('10.0.0.1', 1, 1), ('10.0.0.2', 1, 1)]
    """
    failures = _failures(frame, ["time", "actor", "ip"])
    return _by_key(failures, "ip", "actor", "ip", "accounts", top)


def failures_by_account(frame: Frame, *, top: int | None = None) -> pl.DataFrame:
    """Login failures per account (``actor``); null or empty actors are left out.

    Returns ``account``, ``failures``, ``ips`` (distinct), ``first``, ``last``; sorted by
    ``failures`` descending, then ``account`` ascending. :func:`failure_summary` reports the
    failures that name no account (``failures_without_account``).

    Examples
    --------
    >>> import polars as pl
    >>> from audit_analytics import schema
    >>> ev = schema.conform(pl.DataFrame({
    ...     "time": ["2025-01-01T00:00:00Z"] * 3, "type": ["auth"] * 3, "action": ["login"] * 3,
    ...     "result": ["failed"] * 3, "actor": ["root", "", "root"], "ip": ["10.0.0.1", "10.0.0.1", "10.0.0.2"],
    ... }).with_columns(pl.col("time").str.to_datetime(time_zone="UTC")))
    >>> failures_by_account(ev).select("account", "failures", "ips").rows()
    [('root', 2, 2)]
    """
    failures = _failures(frame, ["time", "actor", "ip"])
    return _by_key(failures, "actor", "ip", "account", "ips", top)


def _local(expr: pl.Expr, tz: str) -> pl.Expr:
    return expr.dt.convert_time_zone(tz)


def failures_by_hour(frame: Frame, *, tz: str = "UTC") -> pl.DataFrame:
    """Login failures per weekday and hour of the day in time zone ``tz`` (a heat map).

    Returns all 168 cells, ``weekday`` (1 = Monday .. 7 = Sunday), ``hour`` (0..23),
    ``failures`` (0 where there were none) and ``latest``, the start of the most recent hour
    of that weekday and hour holding failures, in ``tz`` (null where there were none: the
    heatmap's click-through opens it), sorted by weekday then hour.

    Examples
    --------
    >>> import polars as pl
    >>> from audit_analytics import schema
    >>> ev = schema.conform(pl.DataFrame({
    ...     "time": ["2025-01-06T23:30:00Z"], "type": ["auth"], "action": ["login"], "result": ["failed"],
    ... }).with_columns(pl.col("time").str.to_datetime(time_zone="UTC")))
    >>> cells = failures_by_hour(ev, tz="Europe/Berlin")
    >>> cells.height, cells.filter(pl.col("failures") > 0).rows()
    (168, [(2, 0, 1, datetime.datetime(2025, 1, 7, 0, 0, tzinfo=zoneinfo.ZoneInfo(key='Europe/Berlin')))])
    """
    local = _local(pl.col("time"), tz)
    counts = (
        _failures(frame, ["time"])
        .group_by(
            local.dt.weekday().cast(pl.Int8).alias("weekday"), local.dt.hour().cast(pl.Int8).alias("hour")
        )
        .agg(pl.len().cast(pl.UInt32).alias("failures"), latest_hour(local))
    )
    grid = pl.DataFrame({"weekday": pl.Series(range(1, 8), dtype=pl.Int8)}).join(
        pl.DataFrame({"hour": pl.Series(range(24), dtype=pl.Int8)}), how="cross"
    )
    return (
        grid.join(counts, on=["weekday", "hour"], how="left")
        .with_columns(pl.col("failures").fill_null(0))
        .sort(["weekday", "hour"])
    )


def failures_by_hour_of_day(frame: Frame, *, tz: str = "UTC") -> pl.DataFrame:
    """Login failures per hour of the day (0..23, all present) in time zone ``tz``.

    Examples
    --------
    >>> import polars as pl
    >>> from audit_analytics import schema
    >>> ev = schema.conform(pl.DataFrame({
    ...     "time": ["2025-07-01T12:00:00Z"], "type": ["auth"], "action": ["login"], "result": ["failed"],
    ... }).with_columns(pl.col("time").str.to_datetime(time_zone="UTC")))
    >>> failures_by_hour_of_day(ev, tz="America/New_York").filter(pl.col("failures") > 0).rows()
    [(8, 1)]
    """
    return hours_of_day(failures_by_hour(frame, tz=tz))


def latest_hour(local: pl.Expr) -> pl.Expr:
    """The start of the most recent hour among local instants (a cell's ``latest``)."""
    return local.max().dt.truncate("1h").alias("latest")


def hours_of_day(cells: pl.DataFrame) -> pl.DataFrame:
    """The weekday × hour cells of :func:`failures_by_hour` summed per hour of the day
    (``hour`` 0..23, ``failures``): from whichever engine computed the cells."""
    return cells.group_by("hour").agg(pl.col("failures").sum().cast(pl.UInt32)).sort("hour")


def failures_over_time(frame: Frame, *, every: str = "1h", tz: str = "UTC") -> pl.DataFrame:
    """Login failures and successes per time bucket.

    Parameters
    ----------
    every
        Bucket length as a polars duration string (``"5m"``, ``"1h"``, ``"1d"``, ``"1w"``).
    tz
        Buckets start on the clock of this zone (a ``"1d"`` bucket is a local day).

    Returns
    -------
    pl.DataFrame
        ``bucket`` (start, in ``tz``), ``failures``, ``successes``; every bucket from the
        first to the last event is present.

    Examples
    --------
    >>> import polars as pl
    >>> from audit_analytics import schema
    >>> ev = schema.conform(pl.DataFrame({
    ...     "time": ["2025-01-01T00:10:00Z", "2025-01-01T02:20:00Z"], "type": ["auth"] * 2,
    ...     "action": ["login"] * 2, "result": ["failed", "done"],
    ... }).with_columns(pl.col("time").str.to_datetime(time_zone="UTC")))
    >>> failures_over_time(ev).select("failures", "successes").rows()
    [(1, 0), (0, 0), (0, 1)]
    """
    logins = _select(
        frame,
        (pl.col("type") == "auth")
        & (pl.col("action") == "login")
        & pl.col("result").is_in(["failed", "done"]),
        ["time", "result"],
    )
    counts = logins.group_by(_local(pl.col("time"), tz).dt.truncate(every).alias("bucket")).agg(
        (pl.col("result") == "failed").sum().cast(pl.UInt32).alias("failures"),
        (pl.col("result") == "done").sum().cast(pl.UInt32).alias("successes"),
    )
    counts = counts.with_columns(pl.col("bucket").cast(pl.Datetime("us", tz)))
    return fill_buckets(counts, every, tz).with_columns(pl.col("failures", "successes").fill_null(0))


@dataclass(frozen=True, slots=True)
class FailureSummary:
    """Headline figures of the login failures in a frame (see :func:`failure_summary`)."""

    failures: int
    distinct_ips: int
    distinct_accounts: int
    successes_after_failures: int
    failures_without_ip: int
    failures_without_account: int


def failure_summary(frame: Frame) -> FailureSummary:
    """Headline figures: failures, distinct IPs and accounts, and what the top lists leave out.

    ``successes_after_failures`` is the number of :func:`success_after_failures` findings with
    the default thresholds.

    Examples
    --------
    >>> import polars as pl
    >>> from audit_analytics import schema
    >>> ev = schema.conform(pl.DataFrame({
    ...     "time": ["2025-01-01T00:00:00Z"] * 3, "type": ["auth"] * 3, "action": ["login"] * 3,
    ...     "result": ["failed"] * 3, "actor": ["root", "", "root"], "ip": ["10.0.0.1", None, "10.0.0.2"],
    ... }).with_columns(pl.col("time").str.to_datetime(time_zone="UTC")))
    >>> failure_summary(ev)  # doctest: +NORMALIZE_WHITESPACE
    FailureSummary(failures=3, distinct_ips=2, distinct_accounts=1, successes_after_failures=0,
                   failures_without_ip=1, failures_without_account=1)
    """
    lazy = frame.lazy()
    row = (
        _failures(lazy, ["actor", "ip"])
        .select(
            pl.len().alias("failures"),
            pl.col("ip").drop_nulls().n_unique().alias("distinct_ips"),
            pl.col("actor").drop_nulls().n_unique().alias("distinct_accounts"),
            pl.col("ip").null_count().alias("failures_without_ip"),
            pl.col("actor").null_count().alias("failures_without_account"),
        )
        .row(0, named=True)
    )
    return FailureSummary(
        failures=int(row["failures"]),
        distinct_ips=int(row["distinct_ips"]),
        distinct_accounts=int(row["distinct_accounts"]),
        successes_after_failures=success_after_failures(lazy).height,
        failures_without_ip=int(row["failures_without_ip"]),
        failures_without_account=int(row["failures_without_account"]),
    )


# --------------------------------------------------------------------------- window machinery
#
# The events of a detection are kept in time order and grouped by key with a hash group-by
# (much cheaper than sorting strings): `order` lists the rows key by key, each key's rows in
# time order. `_axis` then maps them to one monotone int64 axis on which a plain
# np.searchsorted answers "which events of the same key lie in [t, t + W)" for all events at
# once: gaps inside a key are capped at W + 1µs (so comparing a difference with W, by < or by
# <=, gives the same answer as on the real times) and a gap of W + 1µs separates two keys (so a
# window never reaches into the next key). Capping also keeps the axis small for int64.


@dataclass(frozen=True)
class _Grouped:
    """Time-ordered rows, and their order key by key."""

    rows: pl.DataFrame
    order: np.ndarray  # row numbers, key-contiguous, time order inside a key
    offsets: np.ndarray  # where each key starts in `order` (and the total at the end)
    keys: pl.DataFrame  # the key columns of each group

    @property
    def new_key(self) -> np.ndarray:
        flags = np.zeros(self.order.shape[0], dtype=bool)
        flags[self.offsets[:-1]] = True
        return flags

    def times(self) -> np.ndarray:
        return cast(np.ndarray, self.rows["time"].dt.epoch("us").to_numpy()[self.order])

    def group_of(self, positions: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.offsets, positions, side="right") - 1


def _time_ordered(rows: pl.DataFrame) -> pl.DataFrame:
    # Audit logs are nearly always stored in time order; checking is O(n), sorting is not.
    return rows if rows["time"].is_sorted() else rows.sort("time")


def _group(rows: pl.DataFrame, keys: list[str]) -> _Grouped:
    """Group time-ordered rows by ``keys`` (rows with a null key are left out)."""
    grouped = (
        rows.lazy()
        .with_row_index("__row")
        .filter(pl.all_horizontal(pl.col(k).is_not_null() for k in keys))
        .group_by(keys)
        .agg(pl.col("__row"))
        .collect()
    )
    sizes = grouped["__row"].list.len().to_numpy().astype(np.int64)
    order = grouped.select(pl.col("__row").explode())["__row"].to_numpy().astype(np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    return _Grouped(rows, order, offsets, grouped.select(keys))


def _axis(new_key: np.ndarray, times: np.ndarray, horizon: int) -> np.ndarray:
    n = times.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    cap = horizon + 1
    gaps = np.empty(n, dtype=np.int64)
    gaps[0] = 0
    np.subtract(times[1:], times[:-1], out=gaps[1:])
    np.minimum(gaps, cap, out=gaps)
    gaps[new_key] = cap
    gaps[0] = 0
    if float(gaps.sum(dtype=np.float64)) > 2.0**62:
        raise DetectionError("the window is too long for this many keys; use a shorter window")
    return np.cumsum(gaps)


def _distinct_in_windows(
    grouped: _Grouped, key: str, other: str, axis: np.ndarray, window: int
) -> np.ndarray:
    """Distinct non-null ``other`` values (per key) inside each event's window [t, t + W).

    A (key, other) pair is present in the window starting at t when one of its events lies
    in [t, t + W), i.e. t in (e - W, e]. Merging a pair's events whose gaps are <= W gives
    intervals (a - W, b]; the distinct count at t is #{a < t + W} - #{b < t}. Pairs of other
    keys cancel out or never count, thanks to the separating gap on the axis."""
    pairs = _group(grouped.rows, [key, other])
    # Each row's place on the key axis, then read in pair order (time order inside a pair).
    on_axis = np.empty(grouped.rows.height, dtype=np.int64)
    on_axis[grouped.order] = axis
    pos = on_axis[pairs.order]
    n = pos.shape[0]
    opens = np.ones(n, dtype=bool)
    closes = np.ones(n, dtype=bool)
    if n > 1:
        apart = (pos[1:] - pos[:-1]) > window
        opens[1:] = apart
        closes[:-1] = apart
    opens[pairs.offsets[:-1]] = True
    closes[pairs.offsets[1:] - 1] = True
    run_firsts = np.sort(pos[opens])
    run_lasts = np.sort(pos[closes])
    return np.searchsorted(run_firsts, axis + window, side="left") - np.searchsorted(
        run_lasts, axis, side="left"
    )


def _ranges(starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate the index ranges [starts[i], ends[i]); also return the range number."""
    lengths = ends - starts
    total = int(lengths.sum())
    owner = np.repeat(np.arange(starts.shape[0]), lengths)
    offsets = np.cumsum(lengths) - lengths
    idx = np.arange(total) - np.repeat(offsets, lengths) + np.repeat(starts, lengths)
    return idx, owner


def _lists_of_ranges(
    rows: pl.DataFrame, order: np.ndarray, starts: np.ndarray, ends: np.ndarray
) -> pl.DataFrame:
    """event_ids, accounts, ips of the rows ``order[starts[i]:ends[i]]``, one row per range."""
    idx, owner = _ranges(starts, ends)
    picked = rows.select("id", "actor", "ip")[order[idx]].with_columns(pl.Series("__run", owner))
    lists = picked.group_by("__run", maintain_order=True).agg(
        pl.col("id").alias("event_ids"),
        pl.col("actor").drop_nulls().unique().sort().alias("accounts"),
        pl.col("ip").drop_nulls().unique().sort().alias("ips"),
    )
    # An empty range yields no group; keep one output row per range all the same.
    return (
        pl.DataFrame({"__run": np.arange(starts.shape[0])})
        .join(lists, on="__run", how="left")
        .sort("__run")
        .drop("__run")
    )


_LIST_STR = pl.List(pl.String)


def findings_schema(maxima: Iterable[str]) -> dict[str, Any]:
    """The columns of a window rule's findings (both engines): one row per run of a key, with the
    rule's maxima (e.g. ``accounts_max``) between ``count`` and ``peak_start``."""
    return {
        "key": pl.String,
        "first": UTC_US,
        "last": UTC_US,
        "count": pl.UInt32,
        **{name: pl.UInt32 for name in maxima},
        "peak_start": UTC_US,
        "accounts": _LIST_STR,
        "ips": _LIST_STR,
        "event_ids": _LIST_STR,
    }


def _runs(
    grouped: _Grouped,
    key: str,
    start: np.ndarray,
    end: np.ndarray,
    qualifies: np.ndarray,
    maxima: Mapping[str, np.ndarray],
) -> pl.DataFrame:
    """Merge overlapping qualifying windows into findings (one row per maximal run)."""
    schema = findings_schema(maxima)
    q = np.flatnonzero(qualifies)
    if q.shape[0] == 0:
        return pl.DataFrame(schema=schema)
    q_start, q_end = start[q], end[q]
    # Within a key, start and end only grow; across keys the ranges never overlap. So a new
    # run begins where a window starts at or after the end of the previous qualifying one.
    begins = np.ones(q.shape[0], dtype=bool)
    begins[1:] = q_start[1:] >= q_end[:-1]
    heads = np.flatnonzero(begins)
    tails = np.append(heads[1:], q.shape[0]) - 1
    run_start, run_end = q_start[heads], q_end[tails]
    times = grouped.rows["time"]
    columns = {
        "key": grouped.keys[key].gather(grouped.group_of(run_start)),
        "first": times.gather(grouped.order[run_start]),
        "last": times.gather(grouped.order[run_end - 1]),
        "count": pl.Series(run_end - run_start, dtype=pl.UInt32),
        **{
            name: pl.Series(np.maximum.reduceat(values[q], heads), dtype=pl.UInt32)
            for name, values in maxima.items()
        },
    }
    # Where the fullest window of each run starts (the first one, when several tie).
    counts_q = (end - start)[q]
    run_of = np.cumsum(begins) - 1
    peak = np.maximum.reduceat(counts_q, heads)
    at_peak = np.flatnonzero(counts_q == peak[run_of])
    _, first_peak = np.unique(run_of[at_peak], return_index=True)
    columns["peak_start"] = times.gather(grouped.order[q[at_peak[first_peak]]])
    lists = _lists_of_ranges(grouped.rows, grouped.order, run_start, run_end)
    found = pl.DataFrame(columns).with_columns(lists)
    return found.select(pl.col(name).cast(dtype) for name, dtype in schema.items()).sort(["first", "key"])


def _sliding(
    frame: Frame,
    key: str,
    window: timedelta,
    *,
    distinct: str | None = None,
    which: pl.Expr | None = None,
) -> tuple[_Grouped, np.ndarray, np.ndarray, np.ndarray | None]:
    """Login failures (or the events ``which`` selects) grouped by key with each event's
    window bounds (and distinct counts)."""
    micros = to_micros(window, "window")
    failures = _time_ordered(
        _select(frame, which if which is not None else is_login_failure(), ["id", "time", "actor", "ip"])
    )
    grouped = _group(failures, [key])
    axis = _axis(grouped.new_key, grouped.times(), micros)
    # Window [t, t + W) of each event: it starts at the first event of the same time (ties
    # all belong to it) and ends before the first event at t + W or later.
    start = np.searchsorted(axis, axis, side="left")
    end = np.searchsorted(axis, axis + micros, side="left")
    distinct_counts = None if distinct is None else _distinct_in_windows(grouped, key, distinct, axis, micros)
    return grouped, start, end, distinct_counts


# --------------------------------------------------------------------------- detections


# The threshold classes have no __slots__ on purpose: their class attributes are the defaults
# that the detection signatures read, so the two cannot drift apart.
@dataclass(frozen=True)
class BruteForceThresholds:
    """Thresholds of :func:`brute_force`."""

    threshold: int = 8
    window: timedelta = timedelta(seconds=120)


@dataclass(frozen=True)
class PasswordSprayThresholds:
    """Thresholds of :func:`password_spray`."""

    min_accounts: int = 10
    window: timedelta = timedelta(minutes=5)


@dataclass(frozen=True)
class AccountUnderAttackThresholds:
    """Thresholds of :func:`account_under_attack`."""

    min_ips: int = 5
    threshold: int = 20
    window: timedelta = timedelta(minutes=10)


@dataclass(frozen=True)
class SuccessAfterFailuresThresholds:
    """Thresholds of :func:`success_after_failures`."""

    threshold: int = 5
    within: timedelta = timedelta(minutes=10)
    by: SuccessKey = "account"


SERVICE_ACCOUNTS = r"^(svc|sa|bot|robot|system|service|ci)[-_.]|[-_.](bot|svc)$|\[bot\]$"
"""Names of service accounts (a regular expression searched in the actor): judged by their own
profile, never by office hours."""


@dataclass(frozen=True)
class OffHoursThresholds:
    """Thresholds of :func:`off_hours`."""

    hours: tuple[str, str] = ("08:00", "19:00")
    weekdays: tuple[int, ...] = (1, 2, 3, 4, 5)
    org_tz: str | None = None  # the zone the review shows
    lookback: timedelta = timedelta(days=30)
    min_history: int = 10
    service_accounts: str = SERVICE_ACCOUNTS


@dataclass(frozen=True)
class PermissionChangesThresholds:
    """Thresholds of :func:`permission_changes`: none decides whether a change is listed
    (every one is); ``lookback`` is the history that says whether the actor granted before
    and which hours are theirs."""

    lookback: timedelta = timedelta(days=30)


@dataclass(frozen=True)
class DeniedCallsThresholds:
    """Thresholds of :func:`denied_calls`."""

    threshold: int = 10
    window: timedelta = timedelta(minutes=10)


@dataclass(frozen=True)
class StuckOperationsThresholds:
    """Thresholds of :func:`stuck_operations` (``now=None`` means the wall clock)."""

    older_than: timedelta = timedelta(hours=1)
    now: datetime | None = None


def brute_force(
    frame: Frame,
    *,
    threshold: int = BruteForceThresholds.threshold,
    window: timedelta = BruteForceThresholds.window,
) -> pl.DataFrame:
    """Source IPs with at least ``threshold`` login failures inside a sliding ``window``.

    The rule of Wazuh's sshd brute-force alert, evaluated exactly: every failure at ``t``
    opens the window ``[t, t + window)`` over the same IP's failures; qualifying windows
    that overlap merge into one finding. Failures without an IP are not considered.

    Returns
    -------
    pl.DataFrame
        ``key`` (IP), ``first``, ``last``, ``count`` (failures in the run),
        ``max_in_window``, ``peak_start`` (start of the first window holding
        ``max_in_window`` failures), ``accounts``, ``ips``, ``event_ids``; sorted by ``first``.

    Examples
    --------
    >>> from datetime import datetime, timedelta, timezone
    >>> import polars as pl
    >>> from audit_analytics import schema
    >>> t0 = datetime(2025, 1, 1, tzinfo=timezone.utc)
    >>> ev = schema.conform(pl.DataFrame({
    ...     "id": ["a", "b", "c"], "time": [t0, t0 + timedelta(seconds=59), t0 + timedelta(seconds=60)],
    ...     "type": ["auth"] * 3, "action": ["login"] * 3, "result": ["failed"] * 3, "ip": ["192.0.2.1"] * 3,
    ... }))
    >>> brute_force(ev, threshold=2, window=timedelta(seconds=60)).select("count", "max_in_window", "event_ids").rows()
    [(3, 2, ['a', 'b', 'c'])]
    >>> brute_force(ev, threshold=3, window=timedelta(seconds=60)).height
    0
    """
    threshold = positive_int(threshold, "threshold")
    grouped, start, end, _ = _sliding(frame, "ip", window)
    counts = end - start
    return _runs(grouped, "ip", start, end, counts >= threshold, {"max_in_window": counts})


def password_spray(
    frame: Frame,
    *,
    min_accounts: int = PasswordSprayThresholds.min_accounts,
    window: timedelta = PasswordSprayThresholds.window,
) -> pl.DataFrame:
    """Source IPs failing against at least ``min_accounts`` distinct accounts inside ``window``.

    Windows are ``[t, t + window)`` per IP as in :func:`brute_force`. Failures naming no
    account count towards ``count`` but not towards the distinct accounts.

    Returns
    -------
    pl.DataFrame
        ``key`` (IP), ``first``, ``last``, ``count``, ``max_in_window`` (failures),
        ``max_accounts`` (distinct accounts in one window), ``peak_start`` (start of the first
        window holding ``max_in_window``), ``accounts``, ``ips``, ``event_ids``; sorted by ``first``.

    Examples
    --------
    >>> from datetime import datetime, timedelta, timezone
    >>> import polars as pl
    >>> from audit_analytics import schema
    >>> t0 = datetime(2025, 1, 1, tzinfo=timezone.utc)
    >>> ev = schema.conform(pl.DataFrame({
    ...     "id": list("abcd"), "time": [t0 + timedelta(seconds=s) for s in (0, 1, 2, 3)],
    ...     "actor": ["ann", "bob", "cid", "ann"], "type": ["auth"] * 4, "action": ["login"] * 4,
    ...     "result": ["failed"] * 4, "ip": ["192.0.2.9"] * 4,
    ... }))
    >>> password_spray(ev, min_accounts=3).select("key", "count", "max_accounts", "accounts").rows()
    [('192.0.2.9', 4, 3, ['ann', 'bob', 'cid'])]
    """
    min_accounts = positive_int(min_accounts, "min_accounts")
    grouped, start, end, distinct = _sliding(frame, "ip", window, distinct="actor")
    assert distinct is not None
    return _runs(
        grouped,
        "ip",
        start,
        end,
        distinct >= min_accounts,
        {"max_in_window": end - start, "max_accounts": distinct},
    )


def account_under_attack(
    frame: Frame,
    *,
    min_ips: int = AccountUnderAttackThresholds.min_ips,
    threshold: int = AccountUnderAttackThresholds.threshold,
    window: timedelta = AccountUnderAttackThresholds.window,
) -> pl.DataFrame:
    """Accounts failing from at least ``min_ips`` distinct IPs, or ``threshold`` times, in ``window``.

    Windows are ``[t, t + window)`` per account (failures naming no account are skipped).

    Returns
    -------
    pl.DataFrame
        ``key`` (account), ``first``, ``last``, ``count``, ``max_in_window``, ``max_ips``
        (distinct IPs in one window), ``peak_start``, ``accounts``, ``ips``, ``event_ids``;
        sorted by ``first``.

    Examples
    --------
    >>> from datetime import datetime, timedelta, timezone
    >>> import polars as pl
    >>> from audit_analytics import schema
    >>> t0 = datetime(2025, 1, 1, tzinfo=timezone.utc)
    >>> ev = schema.conform(pl.DataFrame({
    ...     "id": list("abc"), "time": [t0 + timedelta(seconds=s) for s in (0, 1, 2)],
    ...     "actor": ["ceo"] * 3, "type": ["auth"] * 3, "action": ["login"] * 3,
    ...     "result": ["failed"] * 3, "ip": ["192.0.2.1", "192.0.2.2", "192.0.2.3"],
    ... }))
    >>> account_under_attack(ev, min_ips=3).select("key", "max_ips", "ips").rows()
    [('ceo', 3, ['192.0.2.1', '192.0.2.2', '192.0.2.3'])]
    """
    min_ips = positive_int(min_ips, "min_ips")
    threshold = positive_int(threshold, "threshold")
    grouped, start, end, distinct = _sliding(frame, "actor", window, distinct="ip")
    assert distinct is not None
    counts = end - start
    return _runs(
        grouped,
        "actor",
        start,
        end,
        (distinct >= min_ips) | (counts >= threshold),
        {"max_in_window": counts, "max_ips": distinct},
    )


def _success_key(by: SuccessKey) -> pl.Expr:
    if by == "account":
        return pl.col("actor")
    if by == "ip":
        return pl.col("ip")
    if by == "both":
        # The unit separator cannot occur in a user name or an IP address.
        return pl.concat_str(pl.col("actor"), pl.lit("\x1f"), pl.col("ip"))
    raise DetectionError(f"by must be 'account', 'ip' or 'both', got {by!r}")


def success_after_failures(
    frame: Frame,
    *,
    threshold: int = SuccessAfterFailuresThresholds.threshold,
    within: timedelta = SuccessAfterFailuresThresholds.within,
    by: SuccessKey = SuccessAfterFailuresThresholds.by,
) -> pl.DataFrame:
    """Login successes preceded by at least ``threshold`` failures within ``within``.

    The most urgent finding: a password guessed after a run of failures. A failure at ``f``
    counts for a success at ``s`` when ``f <= s < f + within`` (the success lies in the
    failure's half-open window), for the same account (``by="account"``), the same source IP
    (``by="ip"``) or the same account from the same IP (``by="both"``). One finding per success.

    Returns
    -------
    pl.DataFrame
        ``key`` (account, IP, or ``account + "\\x1f" + ip``), ``account``, ``ip`` (of the
        success), ``success_id``, ``success_time``, ``failures`` (before it, in the window),
        ``first`` (first of those failures), ``last`` (= ``success_time``), ``count``
        (= ``failures``), ``accounts``, ``ips`` (failures and success), ``event_ids``
        (failures, then the success); sorted by ``first``.

    Examples
    --------
    >>> from datetime import datetime, timedelta, timezone
    >>> import polars as pl
    >>> from audit_analytics import schema
    >>> t0 = datetime(2025, 1, 1, tzinfo=timezone.utc)
    >>> ev = schema.conform(pl.DataFrame({
    ...     "id": ["f1", "f2", "ok"], "time": [t0, t0 + timedelta(minutes=1), t0 + timedelta(minutes=2)],
    ...     "actor": ["ann"] * 3, "type": ["auth"] * 3, "action": ["login"] * 3,
    ...     "result": ["failed", "failed", "done"], "ip": ["192.0.2.1"] * 3,
    ... }))
    >>> success_after_failures(ev, threshold=2).select("key", "success_id", "failures", "event_ids").rows()
    [('ann', 'ok', 2, ['f1', 'f2', 'ok'])]
    """
    threshold = positive_int(threshold, "threshold")
    micros = to_micros(within, "within")
    key = _success_key(by)
    logins = _select(
        frame,
        (pl.col("type") == "auth")
        & (pl.col("action") == "login")
        & pl.col("result").is_in(["failed", "done"]),
        ["id", "time", "actor", "ip", "result"],
    )
    logins = _time_ordered(logins.with_columns(key.alias("__key")))
    grouped = _group(logins, ["__key"])
    axis = _axis(grouped.new_key, grouped.times(), micros)
    failed = (logins["result"] == "failed").to_numpy()[grouped.order]
    fail_at = np.flatnonzero(failed)  # positions in grouped.order
    success_at = np.flatnonzero(~failed)
    fail_pos, success_pos = axis[fail_at], axis[success_at]
    # Failures f of the same key with s - within < f <= s (compared by value, so a failure
    # logged in the same microsecond as the success counts as before it).
    hi = np.searchsorted(fail_pos, success_pos, side="right")
    lo = np.searchsorted(fail_pos, success_pos - micros, side="right")
    hits = (hi - lo) >= threshold
    schema: dict[str, Any] = {
        "key": pl.String,
        "account": pl.String,
        "ip": pl.String,
        "success_id": pl.String,
        "success_time": UTC_US,
        "failures": pl.UInt32,
        "first": UTC_US,
        "last": UTC_US,
        "count": pl.UInt32,
        "accounts": _LIST_STR,
        "ips": _LIST_STR,
        "event_ids": _LIST_STR,
    }
    if not hits.any():
        return pl.DataFrame(schema=schema)
    lo, hi = lo[hits], hi[hits]
    fail_rows = grouped.order[fail_at]
    lists = _lists_of_ranges(logins, fail_rows, lo, hi)
    succ = logins[grouped.order[success_at[hits]]]
    found = pl.DataFrame(
        {
            "key": succ["__key"],
            "account": succ["actor"],
            "ip": succ["ip"],
            "success_id": succ["id"],
            "success_time": succ["time"],
            "failures": pl.Series(hi - lo, dtype=pl.UInt32),
            "first": logins["time"].gather(fail_rows[lo]),
            "last": succ["time"],
            "count": pl.Series(hi - lo, dtype=pl.UInt32),
        }
    ).with_columns(
        lists["event_ids"].list.concat(pl.concat_list(succ["id"])).alias("event_ids"),  # type: ignore[arg-type]
        lists["accounts"]
        .list.concat(pl.concat_list(succ["actor"]))  # type: ignore[arg-type]  # an Expr is accepted
        .list.drop_nulls()
        .list.unique()
        .list.sort()
        .alias("accounts"),
        lists["ips"]
        .list.concat(pl.concat_list(succ["ip"]))  # type: ignore[arg-type]  # an Expr is accepted
        .list.drop_nulls()
        .list.unique()
        .list.sort()
        .alias("ips"),
    )
    return found.select(pl.col(name).cast(dtype) for name, dtype in schema.items()).sort(
        ["first", "success_time", "key"]
    )


def _minutes_of_day(value: str | time, name: str) -> int:
    if isinstance(value, time):
        return value.hour * 60 + value.minute
    try:
        parsed = time.fromisoformat(value)
    except (TypeError, ValueError):
        raise DetectionError(f"{name} must be 'HH:MM', got {value!r}") from None
    return parsed.hour * 60 + parsed.minute


def _is_change() -> pl.Expr:
    """A success or a change: the events whose timing a reviewer checks."""
    return (pl.col("result") == "done") & (
        ((pl.col("type") == "auth") & (pl.col("action") == "login"))
        | pl.col("action").is_in(sorted(WRITE_ACTIONS))
    )


NEAR_HOURS = 2
"""An hour is an actor's when they worked within this many hours of it on another day (a person
who stays until 21:00 now and then is not flagged at 22:30; one who never works after 19:00 is
at 02:00). On the demo's ordinary traffic, 1 hour raised 35 false findings per 10,000 events at
50,000 events and 2 raised 16; at 1,000,000, 0.01-0.02 and 0 (bench/results/scorecard.md)."""

_RANK_BITS = 32  # a key is (actor or actor-hour slot) << 32 | rank of the instant


def _instants(
    d_t: np.ndarray, r_t: np.ndarray, offsets: tuple[int, ...], *, key_bits: int
) -> tuple[int, np.ndarray, dict[int, np.ndarray]]:
    """The events' instants ``d_t`` and the queries' ``r_t + offset`` as non-negative integers
    in the same order, and how many low bits of a key they take (a key's ``key_bits`` high bits
    name the actor or slot): the microseconds since the earliest of them when both fit in 62
    bits (with 1,000 actors, four years of events; with 10,000, six months), else their dense
    ranks among all of them (32 bits: ranking them took 40 ms of 350 at 1,000,000 events).
    Either way the searches find the same places: only order and equality matter to them."""
    ends = [int(d_t.min()), int(d_t.max())] if d_t.shape[0] else []
    if r_t.shape[0]:
        ends += [int(r_t.min()) + min(offsets, default=0), int(r_t.max()) + max(offsets, default=0)]
    lo, hi = min(ends, default=0), max(ends, default=0)
    bits = max(hi - lo, 1).bit_length()
    if bits + key_bits <= 62:
        return bits, d_t - lo, {off: r_t + (off - lo) for off in offsets}
    instants = np.concatenate([d_t, *(r_t + off for off in offsets)])
    rank = pl.Series(instants).rank("dense").cast(pl.Int64).to_numpy()
    ranks = np.split(rank[d_t.shape[0] :], len(offsets))
    return _RANK_BITS, rank[: d_t.shape[0]], dict(zip(offsets, ranks, strict=True))


def _small(keys: np.ndarray) -> np.ndarray:
    """Non-negative integer keys in the smallest type that holds them: numpy's stable sort of
    16-bit integers is a radix sort."""
    top = int(keys.max()) if keys.shape[0] else 0
    return keys.astype(np.uint16 if top < 1 << 16 else np.uint32 if top < 1 << 32 else np.int64)


def _search(
    haystack: np.ndarray, needles: np.ndarray, side: Literal["left", "right"], order: np.ndarray | None = None
) -> np.ndarray:
    """``np.searchsorted`` with the needles sorted first (each search then starts near the
    last), answers in the needles' order. ``order`` sorts the needles when the caller knows it
    (several searches whose needles are in the same order)."""
    if order is None:
        order = np.argsort(needles, kind="stable")
    found = np.empty(needles.shape[0], dtype=np.int64)
    found[order] = np.searchsorted(haystack, needles[order], side=side)
    return found


def _actor_code(names: pl.Series) -> pl.Expr:
    """``actor`` as an integer: its place in ``names`` (every actor there is, no null) plus one,
    0 for no actor. The same name has the same number in every frame coded with ``names``; the
    per-actor work then sorts, groups and joins small integers instead of text (at 1,000,000
    events: a group-by of actor and hour 52 ms as text, 2 ms counted by ``np.bincount``)."""
    return (
        (pl.col("actor").cast(pl.Enum(names)).to_physical().cast(pl.Int64) + 1).fill_null(0).alias("__actor")
    )


def _habits(done: pl.DataFrame, rows: pl.DataFrame, lookback: int, need: int) -> tuple[pl.Series, pl.Series]:
    """:func:`_habits_of`, asked once per actor and clock hour: every event of an actor inside
    one hour (a burst, a service account's batch) has the verdict of that hour's start. Both
    frames carry ``__actor`` (:func:`_actor_code`, with the same names)."""
    keyed = rows.select("__actor", "__hour", pl.col("time").dt.truncate("1h").alias("time")).with_row_index(
        "__row"
    )
    hours = keyed.unique(["__actor", "time"], keep="first", maintain_order=True)
    profile, unusual = _habits_of(done, hours, lookback, need)
    verdicts = hours.select("__actor", "time", profile.alias("profile"), unusual.alias("unusual"))
    back = keyed.join(verdicts, on=["__actor", "time"], how="left").sort("__row")
    return back["profile"], back["unusual"]


def _habits_of(
    done: pl.DataFrame, rows: pl.DataFrame, lookback: int, need: int
) -> tuple[pl.Series, pl.Series]:
    """Whether each of ``rows`` (``__actor``, ``time``, ``__hour``) is at an hour unusual for
    its actor, judged against ``done`` (their successful events in time order, with
    ``__actor`` and ``__hour``), and against
    which side: the ``lookback`` before when the actor's history covers it, else the side with
    more of their events (after: the first weeks of an actor or of the log), when it holds at
    least ``need`` events of other days (at least 12 hours away); ``None`` when neither does.
    An hour is the actor's when they worked within :data:`NEAR_HOURS` of it on another day on
    that side. Returns (profile, unusual).

    All of it is binary search on sorted int64 keys (actor, instant) and (actor, hour,
    instant), one integer each (:func:`_instants`)."""
    gap = _HALF_DAY_US
    known = done.filter(pl.col("__actor") > 0)
    m = rows.height
    d_actor, r_actor = known["__actor"].to_numpy(), rows["__actor"].to_numpy()
    d_t = known["time"].dt.epoch("us").to_numpy()
    r_t = rows["time"].dt.epoch("us").to_numpy()
    d_h = known["__hour"].cast(pl.Int64).to_numpy()
    r_h = rows["__hour"].cast(pl.Int64).to_numpy()
    offsets = (-lookback, -gap, gap, lookback)
    top_slot = (max(int(d_actor.max(initial=0)), int(r_actor.max(initial=0))) + 1) * 24
    bits, d_rank, q_rank = _instants(d_t, r_t, offsets, key_bits=top_slot.bit_length())

    # ``known`` is in time order, so a stable sort by actor (or by actor and hour) keeps each
    # one's events in time order: a radix sort of small integers instead of sorting the keys
    per_actor = np.argsort(_small(d_actor), kind="stable")
    by_actor = (d_actor[per_actor] << bits) | d_rank[per_actor]
    base = r_actor << bits
    # every (actor, instant ± a constant) needle is in the order of (actor, instant)
    along = np.lexsort((r_t, r_actor))
    history = _search(by_actor, base | q_rank[-gap], "right", along) - _search(
        by_actor, base | q_rank[-lookback], "left", along
    )
    future = _search(by_actor, base | q_rank[lookback], "right", along) - _search(
        by_actor, base | q_rank[gap], "left", along
    )

    slots = d_actor * 24 + d_h
    order = np.argsort(_small(slots), kind="stable")
    by_slot, slot_t = (slots[order] << bits) | d_rank[order], d_t[order]
    slot_of = by_slot >> bits
    seen_before = np.zeros(m, dtype=bool)
    seen_after = np.zeros(m, dtype=bool)
    n = by_slot.shape[0]
    if n:
        for shift in range(-NEAR_HOURS, NEAR_HOURS + 1):
            slot = r_actor * 24 + (r_h + shift) % 24
            slot_order = np.lexsort((r_t, slot))
            i = _search(by_slot, (slot << bits) | q_rank[-gap], "right", slot_order) - 1
            ok = i >= 0
            i = np.maximum(i, 0)
            seen_before |= ok & (slot_of[i] == slot) & (r_t - slot_t[i] <= lookback)
            j = _search(by_slot, (slot << bits) | q_rank[gap], "left", slot_order)
            ok = j < n
            j = np.minimum(j, n - 1)
            seen_after |= ok & (slot_of[j] == slot) & (slot_t[j] - r_t <= lookback)

    # each row's actor's first event: the first of the actor's run in ``by_actor`` (none when
    # the key found is another actor's: a null actor's code, 0, is no event's)
    covered = np.zeros(m, dtype=bool)
    if by_actor.shape[0]:
        first = np.minimum(_search(by_actor, base, "left", along), by_actor.shape[0] - 1)
        covered = ((by_actor[first] >> bits) == r_actor) & (r_t - d_t[per_actor[first]] >= lookback)
    frame = pl.DataFrame(
        {"h": history, "f": future, "covered": covered, "before": seen_before, "after": seen_after}
    )
    full_before = (pl.col("h") >= need) & pl.col("covered")
    after_ok = ~full_before & (pl.col("f") >= need) & (pl.col("f") > pl.col("h"))
    before_ok = full_before | (~after_ok & (pl.col("h") >= need))
    judged = frame.select(
        pl.when(before_ok).then(pl.lit("before")).when(after_ok).then(pl.lit("after")).alias("profile"),
        pl.when(before_ok).then(~pl.col("before")).when(after_ok).then(~pl.col("after")).alias("unusual"),
    )
    return judged["profile"], judged["unusual"]


def around_the_clock(counts: np.ndarray, *, min_events: int = 48) -> np.ndarray:
    """Per row of ``counts`` (an actor's events per local hour of the day, 24 columns): a 24/7
    profile, where no 12 consecutive hours hold three quarters of them (a person's working day
    holds nearly all; an account working around the clock spreads them). Too few events say
    nothing.

    >>> around_the_clock(np.array([[3] * 24, [0] * 8 + [10] * 11 + [0] * 5]))
    array([ True, False])
    """
    counts = np.asarray(counts, dtype=np.int64).reshape(-1, 24)
    total = counts.sum(axis=1)
    running = np.concatenate(
        [np.zeros((counts.shape[0], 1), dtype=np.int64), np.cumsum(np.hstack([counts, counts]), axis=1)],
        axis=1,
    )
    busiest = (running[:, 12:36] - running[:, 0:24]).max(axis=1, initial=0)
    return np.asarray((total >= min_events) & (busiest < 0.75 * total), dtype=bool)


def usual_hours(counts: np.ndarray, *, share: float = 0.02) -> str:
    """The hours of the day holding at least ``share`` of an actor's events (``counts``: their
    events per local hour, 24 numbers), as ranges: ``"08–19"`` means from 08:00 to 19:00;
    ranges may wrap midnight.

    >>> usual_hours(np.bincount([8, 9, 9, 10, 17, 18], minlength=24))
    '08–11, 17–19'
    >>> usual_hours(np.bincount([22, 23, 0, 1, 12], minlength=24))
    '12–13, 22–02'
    """
    counts = np.asarray(counts, dtype=np.int64)[:24]
    total = counts.sum()
    if total == 0:
        return "none yet"
    busy = counts >= max(share * total, 1)
    if busy.all():
        return "around the clock"
    ranges: list[tuple[int, int]] = []
    h = 0
    while h < 24:
        if busy[h]:
            begin = h
            while h < 24 and busy[h]:
                h += 1
            ranges.append((begin, h))
        h += 1
    if len(ranges) > 1 and ranges[0][0] == 0 and ranges[-1][1] == 24:  # wraps midnight
        ranges = [*ranges[1:-1], (ranges[-1][0], ranges[0][1])]
    return ", ".join(f"{a:02d}–{b % 24:02d}" for a, b in sorted(ranges))


def _one_event_findings(key: str) -> list[pl.Expr]:
    """The columns every finding has, for rules whose findings are one event each."""
    return [
        pl.col(key).alias("key"),
        pl.col("time").alias("first"),
        pl.col("time").alias("last"),
        pl.lit(1, dtype=pl.UInt32).alias("count"),
        pl.concat_list("actor").list.drop_nulls().alias("accounts"),
        pl.concat_list("ip").list.drop_nulls().alias("ips"),
        pl.concat_list("id").alias("event_ids"),
    ]


def _what(type_: str, action: str) -> str:
    return "login" if (type_, action) == ("auth", "login") else f"{type_} {action}"


def _working_hours_text(begin: int, finish: int, weekdays: tuple[int, ...], tz: str) -> str:
    days = "Mon–Fri" if weekdays == (1, 2, 3, 4, 5) else ", ".join(_DAY_NAMES[d - 1] for d in weekdays)
    return f"{begin // 60:02d}:{begin % 60:02d}–{finish // 60:02d}:{finish % 60:02d} {days}, {tz}"


_DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def off_hours(
    frame: Frame,
    *,
    hours: tuple[str | time, str | time] = OffHoursThresholds.hours,
    weekdays: tuple[int, ...] = OffHoursThresholds.weekdays,
    org_tz: str | None = OffHoursThresholds.org_tz,
    lookback: timedelta = OffHoursThresholds.lookback,
    min_history: int = OffHoursThresholds.min_history,
    service_accounts: str = OffHoursThresholds.service_accounts,
    since: datetime | None = None,
) -> pl.DataFrame:
    """Successful logins and changes at an hour that is abnormal for who made them.

    Working hours belong to people: an actor's own history decides what is usual for them.
    Looks at events with ``result == "done"`` that are a login or a write action
    (:data:`audit_analytics.schema.WRITE_ACTIONS`); the history is every successful event of
    the actor in the ``lookback`` before each one. An actor *has a history* when they had at
    least ``min_history`` events in it and their first event is the whole ``lookback`` or
    more before this one; otherwise (a new actor, or the first weeks of the log) their profile
    is the ``lookback`` *after* the event when that holds more of their events (and at least
    ``min_history``), else the shorter history before. An hour is theirs when they worked within :data:`NEAR_HOURS` of
    it on another day (at least 12 hours away, so a burst does not vouch for itself). Then:

    * a **person** with a history is flagged when the event is outside the organisation's
      working hours (``hours`` on ``weekdays``, 1 = Monday, in ``org_tz``) *and* they had no
      event in that hour of the day in the lookback (an on-call engineer who works nights
      every few weeks is not flagged; a first night in a month is);
    * a **service account** (its name matches the ``service_accounts`` pattern, or its events
      have a 24/7 profile, :func:`around_the_clock`) is judged by its own profile alone:
      flagged at an hour it had no event in during the lookback, whatever the office hours;
    * a person with too few events either side (under ``min_history``) is flagged outside
      working hours; a service account with too few is not judged.

    ``org_tz`` ``None`` is UTC here; the review passes the zone the page shows. With ``since``,
    events before it are history only (the engines pass the lookback before the period).

    Returns
    -------
    pl.DataFrame
        One row per event: ``key`` (actor), ``first`` = ``last`` (its time), ``count`` (1),
        ``accounts``, ``ips``, ``event_ids``, ``id``, ``local_time`` (in ``org_tz``), ``type``,
        ``action``, ``target``, ``reason`` (``"unusual hour for this user"``, ``"unusual hour
        for this service account"`` or ``"outside working hours"``), ``unusual_hour`` (no event
        of the actor near that hour on another day of the profile), ``service``, ``why`` (one
        sentence, e.g. "first login at 02:14 (Europe/Paris) with nothing else between
        00:00–05:00 in 30 days for alice; usual hours 08–19"); sorted by ``first``.

    Examples
    --------
    >>> import polars as pl
    >>> from datetime import datetime, timedelta, timezone
    >>> from audit_analytics import schema
    >>> t0 = datetime(2025, 1, 6, 9, tzinfo=timezone.utc)
    >>> days = [t0 + timedelta(days=d, hours=h) for d in range(28) for h in (0, 4, 8)]
    >>> ev = schema.conform(pl.DataFrame({
    ...     "id": [f"e{i}" for i in range(len(days))] + ["night"], "time": days + [t0 + timedelta(days=28, hours=17)],
    ...     "actor": ["ann"] * (len(days) + 1), "type": ["auth"] * (len(days) + 1),
    ...     "action": ["login"] * (len(days) + 1), "result": ["done"] * (len(days) + 1),
    ... }))
    >>> off_hours(ev)["why"].to_list()
    ['first login at 02:00 (UTC) with nothing else between 00:00–05:00 in 30 days for ann; usual hours 09–10, 13–14, 17–18']
    """
    begin = _minutes_of_day(hours[0], "hours[0]")
    finish = _minutes_of_day(hours[1], "hours[1]")
    look = to_micros(lookback, "lookback")
    tz = org_tz or "UTC"
    if min_history < 0:
        raise DetectionError(f"min_history must be >= 0, got {min_history!r}")
    bad_days = [d for d in weekdays if d not in range(1, 8)]
    if bad_days:
        raise DetectionError(f"weekdays are 1 (Monday) .. 7 (Sunday), got {bad_days}")
    try:
        pattern = re.compile(service_accounts)
    except re.error as exc:
        raise DetectionError(f"service_accounts is not a regular expression: {exc}") from None
    done = _time_ordered(
        _select(
            frame,
            pl.col("result") == "done",
            ["id", "time", "actor", "ip", "type", "action", "target", "result"],
        )
    ).with_columns(_local(pl.col("time"), tz).alias("local_time"))
    # the wall clock as integers: polars' dt.hour() and the like on a zoned column look the
    # zone up for each event each time (0.33 s of 0.9 s at 1,000,000 events in Europe/Paris)
    wall = pl.col("__wall")
    minutes = wall // _MINUTE_US % (24 * 60)
    weekday = (wall // _DAY_US + 3) % 7 + 1  # 1970-01-01 was a Thursday (4)
    done = (
        done.with_columns(pl.col("local_time").dt.replace_time_zone(None).dt.epoch("us").alias("__wall"))
        .with_columns(
            (wall // _HOUR_US % 24).cast(pl.Int8).alias("__hour"),
            (~weekday.is_in(list(weekdays)) | (minutes < begin) | (minutes >= finish)).alias("__outside"),
        )
        .drop("__wall")
    )
    need = max(min_history, 1)
    # each actor's events per local hour of the day: a row per actor, in the order of ``names``
    names = done["actor"].unique().drop_nulls().sort()
    done = done.with_columns(_actor_code(names))
    slots = done["__actor"].to_numpy() * 24 + done["__hour"].to_numpy().astype(np.int64)
    counts = np.bincount(slots, minlength=(names.len() + 1) * 24).reshape(-1, 24)[1:]
    by_name = np.array([bool(pattern.search(a)) for a in names.to_list()], dtype=bool)
    services = pl.Series(np.flatnonzero(by_name | around_the_clock(counts)) + 1)  # their codes
    judged = done.filter(
        _is_change() & (pl.col("__actor") > 0) & (pl.col("__actor").is_in(services) | pl.col("__outside"))
    ).with_columns(pl.col("__actor").is_in(services).alias("service"))
    profile, unusual = _habits(done, judged, look, need)
    judged = (
        judged.with_columns(profile.alias("__profile"), unusual.alias("unusual_hour"))
        .with_columns(
            pl.when(pl.col("service") & pl.col("unusual_hour"))
            .then(pl.lit("unusual hour for this service account"))
            .when(~pl.col("service") & pl.col("unusual_hour") & pl.col("__outside"))
            .then(pl.lit("unusual hour for this user"))
            .when(~pl.col("service") & pl.col("__profile").is_null() & pl.col("__outside"))
            .then(pl.lit("outside working hours"))
            .alias("reason")
        )
        .filter(pl.col("reason").is_not_null())
        .with_columns(pl.col("unusual_hour").fill_null(False))
    )
    if since is not None:
        judged = judged.filter(pl.col("time") >= since)
    usual = {
        actor: usual_hours(counts[code - 1])
        for actor, code in judged.select("actor", "__actor").unique().iter_rows()
    }
    days = max(1, round(look / _DAY_US))
    office = _working_hours_text(begin, finish, tuple(weekdays), tz)
    why = []
    for actor, reason, type_, action, local_time, profile in judged.select(
        "actor", "reason", "type", "action", "local_time", "__profile"
    ).iter_rows():
        what = _what(str(type_), str(action))
        if reason == "outside working hours":
            why.append(
                f"{what} at {local_time:%a %H:%M} outside working hours ({office}); too little history "
                f"to know {actor}'s own hours (fewer than {need} events in {days} days)"
            )
        else:
            who = f"service account {actor}" if reason.endswith("service account") else str(actor)
            h = local_time.hour
            quiet = f"{(h - NEAR_HOURS) % 24:02d}:00–{(h + NEAR_HOURS + 1) % 24:02d}:00"
            at = f"at {local_time:%H:%M} ({tz})"
            if profile == "before":
                why.append(
                    f"first {what} {at} with nothing else between {quiet} in {days} days for {who}; "
                    f"usual hours {usual.get(actor)}"
                )
            else:
                why.append(
                    f"{what} {at}; on no other day in the {days} days after it did {who} work between "
                    f"{quiet} (too little history before it); usual hours {usual.get(actor)}"
                )
    return (
        judged.with_columns(pl.Series("why", why, dtype=pl.String))
        .select(
            *_one_event_findings("actor"),
            "id",
            "local_time",
            "type",
            "action",
            "target",
            "reason",
            "unusual_hour",
            pl.col("service").fill_null(False),
            "why",
        )
        .sort(["first", "id"])
    )


ADMIN_ROLES: frozenset[str] = frozenset(
    {
        "admin",
        "administrator",
        "owner",
        "superuser",
        "root",
        "administratoraccess",  # AWS's managed policy for everything
        "cluster-admin",  # Kubernetes' superuser ClusterRole
        "roles/owner",  # Google Cloud's basic Owner role
    }
)
"""Roles that make a grant an admin grant (compared case-insensitively), with the names the
imported sources give them (docs/sources.md)."""


def _permissions(column: str) -> pl.Expr:
    """The ``permissions`` value of a JSON column as a list of strings (a lone string: one)."""
    raw = pl.col(column).str.json_path_match("$.permissions")
    return (
        pl.when(raw.str.starts_with("["))
        .then(raw.str.json_decode(_LIST_STR))
        .otherwise(pl.concat_list(raw).list.drop_nulls())
    )


def _role(column: str) -> pl.Expr:
    return pl.col(column).str.json_path_match("$.role")


RISKS: dict[str, tuple[int, str]] = {
    "self_grant": (16, "self-grant"),
    "grants_admin": (8, "grants admin"),
    "first_grant": (4, "first grant by this actor"),
    "unusual_hour": (2, "outside the actor's hours"),
    "failed": (1, "failed"),
}
"""Risk flags of a permission change: column -> (weight, words). A change's ``risk`` is the sum
of its flags' weights, so any self-grant ranks above any change without one, and so on."""


def permission_changes(
    frame: Frame,
    *,
    lookback: timedelta = PermissionChangesThresholds.lookback,
    since: datetime | None = None,
    activity: Frame | None = None,
) -> pl.DataFrame:
    """Role and permission changes, ranked by risk.

    A change is an event of :func:`audit_analytics.filters.is_permission_change` (a ``user``
    or ``organization`` event whose action is in :data:`audit_analytics.schema.PERMISSION_ACTIONS`:
    the definition ``type:permission`` uses too). Every result is kept (a refused self-grant is
    worth a look). Each change is flagged (:data:`RISKS`):

    * ``self_grant``: actor == target; ``grants_admin``: the role after is one of
      :data:`ADMIN_ROLES` and the role before was not (from ``before``/``after`` JSON);
    * ``first_grant``: the actor made no permission change before, in everything read (the
      engines read the ``lookback`` before the period too); judged once the log holds the
      lookback, so a log's first weeks do not flag everyone;
    * ``unusual_hour``: the actor, with at least 10 successful events in the lookback, had
      none in that hour of the day (UTC hours: the same partition in any whole-hour zone);
    * ``failed``: the change was refused.

    ``activity`` (default: ``frame``) is every event the actor's hours are learnt from; with
    ``since``, changes before it are history only.

    Returns
    -------
    pl.DataFrame
        ``key`` (target), ``first`` = ``last`` (time), ``count`` (1), ``accounts`` (who
        granted), ``ips``, ``event_ids``, ``id``, ``actor``, ``target``, ``type``, ``action``,
        ``result``, ``before_role``, ``after_role``, ``permissions_added``,
        ``permissions_removed``, the flags, ``risk`` and ``flags`` (the flags in words); the
        riskiest first, newest first within a risk.

    Examples
    --------
    >>> import polars as pl
    >>> from audit_analytics import schema
    >>> ev = schema.conform(pl.DataFrame({
    ...     "id": ["e1"], "time": ["2025-01-06T10:00:00Z"], "actor": ["mallory"], "type": ["user"],
    ...     "action": ["role_change"], "target": ["mallory"], "result": ["done"],
    ...     "before": ['{"role": "viewer"}'], "after": ['{"role": "admin"}'],
    ... }).with_columns(pl.col("time").str.to_datetime(time_zone="UTC")))
    >>> permission_changes(ev).select("before_role", "after_role", "self_grant", "grants_admin", "risk").rows()
    [('viewer', 'admin', True, True, 24)]
    """
    look = to_micros(lookback, "lookback")
    events = _time_ordered(
        _select(
            frame,
            is_permission_change(),
            ["id", "time", "actor", "ip", "type", "action", "target", "result", "before", "after"],
        )
    ).with_columns(
        _role("before").alias("before_role"),
        _role("after").alias("after_role"),
        _permissions("before").alias("__before_perms"),
        _permissions("after").alias("__after_perms"),
    )
    # the actor's hours: did they work near this hour of the day in the lookback before it?
    granters = events["actor"].drop_nulls().unique().implode()
    done = _time_ordered(
        _select(
            activity if activity is not None else frame,
            (pl.col("result") == "done") & pl.col("actor").is_in(granters),
            ["id", "time", "actor"],
        )
    ).with_columns(pl.col("time").dt.hour().alias("__hour"))
    # the actor's earlier change: none in the history read (the period and the lookback before
    # it) is a first grant, once the log covers the lookback (in its first weeks, every grant
    # would be someone's first)
    log_start = (
        (activity if activity is not None else frame).lazy().select(pl.col("time").min()).collect().item()
    )
    previous = pl.col("time").shift(1).over("actor")
    covered = (
        (pl.col("time") - pl.lit(log_start).cast(UTC_US)).dt.total_microseconds() >= look
        if log_start is not None
        else pl.lit(False)
    )
    events = events.with_columns(
        (previous.is_null() & covered)
        .and_(pl.col("actor").is_not_null())
        .fill_null(False)
        .alias("first_grant")
    )
    names = granters.explode().drop_nulls().sort()
    done = done.with_columns(_actor_code(names))
    events = events.with_columns(pl.col("time").dt.hour().alias("__hour"), _actor_code(names))
    _, unusual = _habits(done, events, look, 10)
    events = events.with_columns(unusual.fill_null(False).alias("__unusual"))
    admin = sorted(ADMIN_ROLES)
    found = events.with_columns(
        pl.col("__after_perms")
        .list.set_difference(pl.col("__before_perms").fill_null(pl.lit([], dtype=_LIST_STR)))
        .list.sort()
        .fill_null(pl.lit([], dtype=_LIST_STR))
        .alias("permissions_added"),
        pl.col("__before_perms")
        .list.set_difference(pl.col("__after_perms").fill_null(pl.lit([], dtype=_LIST_STR)))
        .list.sort()
        .fill_null(pl.lit([], dtype=_LIST_STR))
        .alias("permissions_removed"),
        (
            pl.col("actor").is_not_null()
            & (pl.col("actor").str.to_lowercase() == pl.col("target").str.to_lowercase())
        )
        .fill_null(False)
        .alias("self_grant"),
        (
            pl.col("after_role").str.to_lowercase().is_in(admin)
            & ~pl.col("before_role").str.to_lowercase().is_in(admin).fill_null(False)
        )
        .fill_null(False)
        .alias("grants_admin"),
        pl.col("__unusual").fill_null(False).alias("unusual_hour"),
        (pl.col("result") == "failed").fill_null(False).alias("failed"),
    )
    if since is not None:
        found = found.filter(pl.col("time") >= since)
    found = found.with_columns(
        pl.sum_horizontal(pl.col(flag).cast(pl.Int32) * weight for flag, (weight, _) in RISKS.items())
        .cast(pl.Int32)
        .alias("risk"),
        pl.concat_list(pl.when(pl.col(flag)).then(pl.lit(words)) for flag, (_, words) in RISKS.items())
        .list.drop_nulls()
        .alias("flags"),
    )
    return found.select(
        *_one_event_findings("target"),
        "id",
        "actor",
        "target",
        "type",
        "action",
        "result",
        "before_role",
        "after_role",
        "permissions_added",
        "permissions_removed",
        *RISKS,
        "risk",
        "flags",
    ).sort(["risk", "first", "id"], descending=[True, True, True])


def denied_calls(
    frame: Frame,
    *,
    threshold: int = DeniedCallsThresholds.threshold,
    window: timedelta = DeniedCallsThresholds.window,
) -> pl.DataFrame:
    """Actors with at least ``threshold`` refused actions (:func:`is_denied_call`) inside a
    sliding ``window``: credentials trying what they may do (a stolen key's first minutes, a
    misconfigured job). Windows are evaluated as in :func:`brute_force`; refusals without an
    actor are not considered.

    Returns
    -------
    pl.DataFrame
        ``key`` (actor), ``first``, ``last``, ``count`` (refusals in the run),
        ``max_in_window``, ``peak_start``, ``accounts``, ``ips``, ``event_ids``; sorted by ``first``.

    Examples
    --------
    >>> from datetime import datetime, timedelta, timezone
    >>> import polars as pl
    >>> from audit_analytics import schema
    >>> t0 = datetime(2025, 1, 1, tzinfo=timezone.utc)
    >>> ev = schema.conform(pl.DataFrame({
    ...     "id": [f"e{i}" for i in range(3)], "time": [t0 + timedelta(seconds=i) for i in range(3)],
    ...     "actor": ["key-1"] * 3, "type": ["secret"] * 3, "action": ["read"] * 3, "result": ["failed"] * 3,
    ...     "error": ["AccessDenied"] * 3,
    ... }))
    >>> denied_calls(ev, threshold=3).select("key", "count").rows()
    [('key-1', 3)]
    """
    threshold = positive_int(threshold, "threshold")
    grouped, start, end, _ = _sliding(frame, "actor", window, which=is_denied_call())
    counts = end - start
    return _runs(grouped, "actor", start, end, counts >= threshold, {"max_in_window": counts})


_PROGRESS = {"pending": 0, "processing": 1, "done": 2, "failed": 2}


def stuck_operations(
    frame: Frame,
    *,
    older_than: timedelta = StuckOperationsThresholds.older_than,
    now: datetime | None = StuckOperationsThresholds.now,
) -> pl.DataFrame:
    """Operations left ``pending`` or ``processing`` for longer than ``older_than``.

    Events sharing a ``request_id`` are one operation whose state is its latest event (at
    equal times the further state wins: done/failed > processing > pending), so a pending
    event superseded by a later done or failed is not stuck. An event without a request id
    is an operation on its own. ``now`` defaults to the wall clock (UTC).

    Returns
    -------
    pl.DataFrame
        ``key`` (request id, or the event id), ``first`` (first event), ``last`` (latest
        state), ``count`` (events), ``state``, ``age`` (``now - last``), ``accounts``,
        ``ips``, ``event_ids``, ``type``, ``action``, ``target`` (of the latest event);
        sorted by ``first``.

    Examples
    --------
    >>> from datetime import datetime, timezone
    >>> import polars as pl
    >>> from audit_analytics import schema
    >>> ev = schema.conform(pl.DataFrame({
    ...     "id": ["a", "b", "c"], "time": ["2025-01-01T08:00:00Z", "2025-01-01T08:05:00Z", "2025-01-01T09:00:00Z"],
    ...     "type": ["backup"] * 3, "action": ["create"] * 3, "result": ["pending", "done", "processing"],
    ...     "request_id": ["r1", "r1", "r2"],
    ... }).with_columns(pl.col("time").str.to_datetime(time_zone="UTC")))
    >>> stuck_operations(ev, now=datetime(2025, 1, 1, 12, tzinfo=timezone.utc)).select("key", "state").rows()
    [('r2', 'processing')]
    """
    older = to_micros(older_than, "older_than")
    if now is None:
        now = datetime.now(UTC)
    elif now.tzinfo is None:
        raise DetectionError("now must be timezone-aware (UTC)")
    cutoff = now - timedelta(microseconds=older)
    columns = ["id", "time", "actor", "ip", "type", "action", "target", "result", "request_id"]
    lazy = frame.lazy()
    # Only operations that were ever pending/processing can be stuck: find those few events
    # first, then fetch the other events of their requests by id.
    still_open = _select(lazy, pl.col("result").is_in(["pending", "processing"]), columns)
    request_ids = still_open["request_id"].drop_nulls().unique()
    related = _select(
        lazy, pl.col("request_id").is_in(request_ids.implode()) & (pl.col("request_id") != ""), columns
    )
    ops = (
        pl.concat(
            [
                related.with_columns(pl.col("request_id").alias("__op")),
                still_open.filter(pl.col("request_id").is_null()).with_columns(pl.col("id").alias("__op")),
            ]
        )
        .with_columns(pl.col("result").cast(pl.String).replace_strict(_PROGRESS, default=0).alias("__rank"))
        .sort(["__op", "time", "__rank", "id"])
    )
    grouped = ops.group_by("__op", maintain_order=True).agg(
        pl.col("time").first().alias("first"),
        pl.col("time").last().alias("last"),
        pl.len().cast(pl.UInt32).alias("count"),
        pl.col("result").last().cast(pl.String).alias("state"),
        pl.col("actor").drop_nulls().unique().sort().alias("accounts"),
        pl.col("ip").drop_nulls().unique().sort().alias("ips"),
        pl.col("id").alias("event_ids"),
        pl.col("type").last(),
        pl.col("action").last(),
        pl.col("target").last(),
    )
    stuck = grouped.filter(
        pl.col("state").is_in(["pending", "processing"]) & (pl.col("last") < pl.lit(cutoff).cast(UTC_US))
    )
    return stuck.select(
        pl.col("__op").alias("key"),
        "first",
        "last",
        "count",
        "state",
        (pl.lit(now).cast(UTC_US) - pl.col("last")).alias("age"),
        pl.col("accounts").cast(_LIST_STR),
        pl.col("ips").cast(_LIST_STR),
        pl.col("event_ids").cast(_LIST_STR),
        "type",
        "action",
        "target",
    ).sort(["first", "key"])


# --------------------------------------------------------------------------- registry, backtest


class Detection(NamedTuple):
    """A registry entry: the function, its default thresholds, what it finds, its title on
    the page and its report name on the command line (``security REPORT``), and whether the
    SQL engine can run it inside the database (:mod:`audit_analytics.analysis.security_sql`)."""

    function: Callable[..., pl.DataFrame]
    defaults: Any
    description: str
    title: str
    cli_name: str
    in_sql: bool = False
    technique: str = ""
    """The MITRE ATT&CK technique it watches for (id and name)."""
    rule: str = ""
    """The rule in one sentence, its thresholds as ``{name}`` (:meth:`text` fills them in)."""
    source: str = ""
    """Where the default thresholds come from."""
    history: str | None = None
    """The threshold naming how far before the period the rule learns habits from (the
    engines read that much more and report the period's findings only)."""

    def text(self, thresholds: Mapping[str, Any] | None = None, *, tz: str = "UTC") -> str:
        """:attr:`rule` with ``thresholds`` in effect (the defaults for the others): what the
        page and the CLI say the findings mean. ``tz``: the organisation's zone when the
        thresholds name none.

        >>> DETECTIONS["brute_force"].text()
        'An IP with at least 8 failed logins inside any window of 2 minutes.'
        >>> DETECTIONS["brute_force"].text({"threshold": 3, "window": timedelta(hours=1)})
        'An IP with at least 3 failed logins inside any window of 1 hour.'
        """
        values = {f.name: getattr(self.defaults, f.name) for f in dataclasses.fields(self.defaults)}
        values.update({k: v for k, v in (thresholds or {}).items() if v is not None and k in values})
        words: dict[str, Any] = {k: _amount(v) if isinstance(v, timedelta) else v for k, v in values.items()}
        if "by" in values:
            words["by"] = _BY_WORDS.get(str(values["by"]), str(values["by"]))
        if "hours" in values:
            begin, finish = (_minutes_of_day(v, "hours") for v in values["hours"])
            zone_name = values.get("org_tz") or tz
            words["office"] = _working_hours_text(begin, finish, tuple(values["weekdays"]), zone_name)
        return self.rule.format(**words)


_BY_WORDS = {"account": "account", "ip": "IP", "both": "account from the same IP"}


def _amount(value: timedelta) -> str:
    """A duration in words: ``2 minutes``, ``1 hour``, ``90 seconds``."""
    seconds = value.total_seconds()
    for unit, size in (("day", 86_400), ("hour", 3_600), ("minute", 60)):
        if seconds and seconds % size == 0:
            n = int(seconds // size)
            return f"{n} {unit}{'' if n == 1 else 's'}"
    return f"{seconds:g} second{'' if seconds == 1 else 's'}"


DETECTIONS: dict[str, Detection] = {
    "brute_force": Detection(
        brute_force,
        BruteForceThresholds(),
        "Many login failures from one IP inside a short window.",
        title="Brute force",
        cli_name="brute-force",
        in_sql=True,
        technique="T1110.001 Brute Force: Password Guessing",
        rule="An IP with at least {threshold} failed logins inside any window of {window}.",
        source="Wazuh's sshd brute-force rule (5712: 8 failures from one source in 120 s).",
    ),
    "password_spray": Detection(
        password_spray,
        PasswordSprayThresholds(),
        "One IP failing against many different accounts inside a short window.",
        title="Password spray",
        cli_name="spray",
        in_sql=True,
        technique="T1110.003 Brute Force: Password Spraying",
        rule="An IP whose failed logins name at least {min_accounts} different accounts inside any window "
        "of {window}.",
        source="The shape of Elastic's password-spraying detections (many distinct users failing "
        "from one source within minutes); 10 accounts and 5 minutes are this project's defaults.",
    ),
    "account_under_attack": Detection(
        account_under_attack,
        AccountUnderAttackThresholds(),
        "One account failing from many IPs, or very often, inside a window.",
        title="Account under attack",
        cli_name="account-attack",
        in_sql=True,
        technique="T1110 Brute Force (distributed against one account)",
        rule="An account with failed logins from at least {min_ips} IPs, or at least {threshold} failures, "
        "inside any window of {window}.",
        source="The shape of Elastic's distributed-failure detections; 5 IPs, 20 failures (2.5 "
        "times the brute-force rule's 8 per source) and 10 minutes are this project's defaults.",
    ),
    "success_after_failures": Detection(
        success_after_failures,
        SuccessAfterFailuresThresholds(),
        "A successful login right after a run of failures: a guessed password.",
        title="Success after failures",
        cli_name="success-after-failure",
        technique="T1110 Brute Force, then T1078 Valid Accounts",
        rule="A successful login of an account preceded by at least {threshold} failures of the same "
        "{by} in the {within} before it.",
        source="Common SIEM practice (a success following repeated failures, as in Elastic's "
        "and Splunk's content); 5 failures in 10 minutes are this project's defaults.",
    ),
    "off_hours": Detection(
        off_hours,
        OffHoursThresholds(),
        "Logins and changes at an hour abnormal for who made them.",
        title="Off-hours activity",
        cli_name="off-hours",
        technique="T1078 Valid Accounts (used at an abnormal time)",
        rule="A person's successful login or change outside working hours ({office}) with nothing "
        f"else of theirs within {NEAR_HOURS} hours of that time of day in {{lookback}}; a service "
        "account's at such a time whatever the office hours; a person with too little history "
        "(fewer than {min_history} events), outside working hours.",
        source="User-behaviour analytics practice (first-seen-in-30-days baselines, as in "
        "Microsoft Sentinel's UEBA): the actor's own baseline; office hours only for people.",
        history="lookback",
    ),
    "permission_changes": Detection(
        permission_changes,
        PermissionChangesThresholds(),
        "Role and permission changes, the riskiest first: self-grants, new admins, first grants, "
        "grants outside the actor's hours, refused grants.",
        title="Permission changes",
        cli_name="permission-changes",
        technique="T1098 Account Manipulation",
        rule="Every role or permission change (type:permission), flagged and ranked by risk.",
        source="None decides what is listed (every change is); the flags are what MITRE's T1098 "
        "detection notes ask a reviewer to look at (privilege grants, unusual actors and times).",
        history="lookback",
    ),
    "denied_calls": Detection(
        denied_calls,
        DeniedCallsThresholds(),
        "One actor refused again and again inside a short window: credentials probing what they may do.",
        title="Denied calls",
        cli_name="denied-calls",
        technique="T1580 Cloud Infrastructure Discovery, T1087 Account Discovery (with stolen or limited credentials)",
        rule="An actor with at least {threshold} refused actions (access denied, unauthorised, forbidden, "
        "403) inside any window of {window}.",
        source="The shape of CloudTrail AccessDenied-burst detections (GuardDuty's and Sentinel's "
        "unusual-denied-calls content); 10 in 10 minutes are this project's defaults.",
    ),
    "stuck_operations": Detection(
        stuck_operations,
        StuckOperationsThresholds(),
        "Operations left pending or processing for too long.",
        title="Stuck operations",
        cli_name="stuck",
        technique="(operational, no ATT&CK technique)",
        rule="An operation (events sharing a request id) whose latest state is pending or "
        "processing for more than {older_than}.",
        source="An hour is longer than any asynchronous operation of the platform takes.",
    ),
}
"""Rule name -> :class:`Detection`: the one registry of detections (the page, the CLI and the
engines read it). ``dataclasses.fields(entry.defaults)`` lists the controls."""


POLICY_ENV = "AUDIT_SECURITY_POLICY"
DEFAULT_POLICY_FILE = "data/security.toml"


def policy_file(path: str | Path | None = None) -> Path | None:
    """The security policy file in use: ``path``, else ``AUDIT_SECURITY_POLICY``, else
    ``data/security.toml`` when it exists."""
    if path:
        return Path(path)
    env = os.environ.get(POLICY_ENV)
    if env:
        return Path(env)
    default = Path(DEFAULT_POLICY_FILE)
    return default if default.is_file() else None


_MAY_BE_ZERO = frozenset({"min_history"})
"""The whole-number thresholds that may be 0 (off-hours: judge even an actor with no history);
every other count is at least 1."""


def _policy_value(rule: str, name: str, value: Any, default: Any, where: str) -> Any:
    """One policy value as the detection takes it, or a DetectionError naming where."""
    problem = f"{where}: [{rule}] {name}"
    try:
        if isinstance(default, timedelta):
            return duration(value)
        if name == "hours":
            if not (isinstance(value, list) and len(value) == 2):
                raise ValueError('write two times of day, e.g. ["08:00", "19:00"]')
            for v in value:
                _minutes_of_day(str(v), name)
            return tuple(str(v) for v in value)
        if name == "weekdays":
            days = tuple(int(v) for v in value)
            if not days or any(d not in range(1, 8) for d in days):
                raise ValueError("weekdays are 1 (Monday) .. 7 (Sunday)")
            return days
        if name == "org_tz":
            return zone(str(value)).key
        if name == "service_accounts":
            re.compile(str(value))
            return str(value)
        if isinstance(default, bool) or isinstance(value, bool):
            raise ValueError(f"expected {type(default).__name__}, got {value!r}")
        if isinstance(default, int):
            least = 0 if name in _MAY_BE_ZERO else 1  # as the detections check them (positive_int)
            if not isinstance(value, int) or value < least:
                raise ValueError(f"expected a whole number >= {least}, got {value!r}")
            return value
        if isinstance(default, str):
            return str(value)
    except (TypeError, ValueError, re.error, DetectionError) as exc:
        raise DetectionError(f"{problem}: {exc}") from None
    raise DetectionError(f"{problem}: cannot be set in the policy file")


def load_policy(path: str | Path | None = None) -> dict[str, dict[str, Any]]:
    """The organisation's detection settings: rule -> thresholds, from a TOML file
    (:func:`policy_file`) whose tables are named by rule or report name, e.g.::

        [off-hours]
        org_tz = "Europe/Paris"
        hours = ["08:00", "19:00"]
        weekdays = [1, 2, 3, 4, 5]
        service_accounts = "^(svc|bot)-"

        [brute-force]
        threshold = 10
        window = "2m"

    They replace the shipped defaults on the Security review page and in ``audit-analytics
    security``; a page's controls and the CLI's flags still override them. No file: ``{}``.
    An unknown rule or setting, or a value that cannot be used, raises DetectionError saying
    where."""
    found = policy_file(path)
    if found is None:
        return {}
    try:
        data = tomllib.loads(found.read_text(encoding="utf-8"))
    except FileNotFoundError:
        if path:
            raise DetectionError(f"no security policy file at {found}") from None
        return {}
    except tomllib.TOMLDecodeError as exc:
        raise DetectionError(f"{found}: not valid TOML: {exc}") from None
    names = {**{rule: rule for rule in DETECTIONS}, **{d.cli_name: rule for rule, d in DETECTIONS.items()}}
    policy: dict[str, dict[str, Any]] = {}
    for table, values in data.items():
        rule = names.get(table)
        if rule is None or not isinstance(values, dict):
            raise DetectionError(
                f"{found}: [{table}] is not a detection; use one of {', '.join(d.cli_name for d in DETECTIONS.values())}"
            )
        defaults = thresholds_of(rule)
        settings: dict[str, Any] = {}
        for name, value in values.items():
            if name not in defaults or name == "now":
                known = ", ".join(k for k in defaults if k != "now") or "none"
                raise DetectionError(f"{found}: [{table}] has no setting {name!r}; settings: {known}")
            settings[name] = _policy_value(table, name, value, defaults[name], str(found))
        policy[rule] = settings
    return policy


def thresholds_of(rule: str) -> dict[str, Any]:
    """The default thresholds of a rule as a dict (for rendering controls).

    >>> thresholds_of("brute_force")
    {'threshold': 8, 'window': datetime.timedelta(seconds=120)}
    """
    return dataclasses.asdict(_detection(rule).defaults)


def _detection(rule: str) -> Detection:
    try:
        return DETECTIONS[rule]
    except KeyError:
        raise DetectionError(f"unknown rule {rule!r}; known: {', '.join(DETECTIONS)}") from None


def backtest(
    frame: Frame, rule: str, *, every: str = "1d", tz: str = "UTC", **thresholds: Any
) -> pl.DataFrame:
    """How many findings ``rule`` raises per bucket over the frame's period, for tuning.

    Parameters
    ----------
    rule
        A key of :data:`DETECTIONS`.
    every, tz
        Bucket length (polars duration) and the zone whose clock the buckets follow.
    **thresholds
        Passed to the rule; unknown names raise :class:`DetectionError`.

    Returns
    -------
    pl.DataFrame
        ``bucket`` (start), ``findings`` (by the finding's ``first`` time); every bucket
        from the first to the last event of the frame is present.

    Examples
    --------
    >>> from datetime import datetime, timedelta, timezone
    >>> import polars as pl
    >>> from audit_analytics import schema
    >>> t0 = datetime(2025, 1, 1, tzinfo=timezone.utc)
    >>> ev = schema.conform(pl.DataFrame({
    ...     "id": [f"e{i}" for i in range(6)], "time": [t0 + timedelta(days=d, seconds=s)
    ...                                              for d in (0, 2) for s in (0, 1, 2)],
    ...     "type": ["auth"] * 6, "action": ["login"] * 6, "result": ["failed"] * 6, "ip": ["192.0.2.1"] * 6,
    ... }))
    >>> backtest(ev, "brute_force", threshold=3)["findings"].to_list()
    [1, 0, 1]
    """
    detection = _detection(rule)
    known = {f.name for f in dataclasses.fields(detection.defaults)}
    unknown = sorted(set(thresholds) - known)
    if unknown:
        raise DetectionError(f"{rule} has no threshold {', '.join(unknown)}; it takes {sorted(known)}")
    lazy = frame.lazy()
    found = detection.function(lazy, **thresholds)
    first, last = (
        lazy.select(pl.col("time").min().alias("first"), pl.col("time").max().alias("last")).collect().row(0)
    )
    return findings_per_bucket(found, None if first is None else (first, last), every=every, tz=tz)


def findings_per_bucket(
    found: pl.DataFrame, span: tuple[datetime, datetime] | None, *, every: str = "1d", tz: str = "UTC"
) -> pl.DataFrame:
    """Findings per bucket by their ``first`` event's time, in ``tz``: ``bucket`` and
    ``findings``, every bucket from the one holding ``span``'s first instant to the one holding
    its last (inclusive) present. The backtest: :func:`backtest` and the Security review page.

    Examples
    --------
    >>> from datetime import datetime, timezone
    >>> t = [datetime(2025, 1, d, 12, tzinfo=timezone.utc) for d in (1, 3, 3)]
    >>> found = pl.DataFrame({"first": t})
    >>> findings_per_bucket(found, (t[0], t[-1]))["findings"].to_list()
    [1, 0, 2]
    """
    counts = found.group_by(_local(pl.col("first"), tz).dt.truncate(every).alias("bucket")).agg(
        pl.len().cast(pl.UInt32).alias("findings")
    )
    counts = counts.with_columns(pl.col("bucket").cast(pl.Datetime("us", tz)))
    if span is not None:
        edges = pl.DataFrame({"t": list(span)}).select(
            _local(pl.col("t").cast(UTC_US), tz).dt.truncate(every).alias("bucket"),
            pl.lit(0, dtype=pl.UInt32).alias("findings"),
        )
        counts = pl.concat([counts, edges]).group_by("bucket").agg(pl.col("findings").sum())
    if counts.height == 0:
        return pl.DataFrame(schema={"bucket": pl.Datetime("us", tz), "findings": pl.UInt32})
    return fill_buckets(counts, every, tz).with_columns(pl.col("findings").fill_null(0).cast(pl.UInt32))

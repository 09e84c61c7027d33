"""Activity and compliance trends: event frames in, DataFrames out.

Every function takes an event frame (:class:`polars.DataFrame` or :class:`polars.LazyFrame`
with the columns of :data:`audit_analytics.schema.SCHEMA`) that the caller has already
filtered to the period and search being shown, and returns a small DataFrame ready to be
drawn, tabled or exported. The figures over time, the comparison and the heat map read the
events' :func:`counts` just as well (per UTC quarter-hour, category, result and write action,
column ``n``): a database computes those where the events are, so the Activity page draws a
period of any size (:func:`audit_analytics.analysis.security_sql.activity`); in memory the
figures read the events (:func:`of_events`), which is faster than counting them first.

Over time
    :func:`events_over_time` (per category), :func:`result_mix` (per result, with the failure
    rate), :func:`changes_over_time` (write actions per category); :func:`choose_bucket` picks
    an hour, day or week from the period and :func:`bucket_end` says where a bucket stops.
Comparisons and rankings
    :func:`failure_rate_change` (this period against :func:`previous_period`),
    :func:`top_actors`, :func:`top_targets`.
Shape and retention
    :func:`weekday_hour` (all 168 cells), :func:`retention_summary` (per retention group).
What a database or the memory engine hands over
    :func:`counts`, :func:`top_of` (a ranking from counts per key and category),
    :class:`Activity` (:func:`of_events`).

Buckets start on the clock of the shown time zone: the local time is truncated, so a day is
a local calendar day (23 or 25 hours long across a DST change) and an hour bucket of a zone
at UTC+05:30 starts at half past a UTC hour.

Examples
--------
>>> from datetime import UTC, datetime
>>> from audit_analytics.analysis import activity
>>> from audit_analytics.demo import generate as demo
>>> events = demo.generate(2_000, seed=1, now=datetime(2025, 6, 2, 12, 0, tzinfo=UTC)).events
>>> activity.choose_bucket(datetime(2025, 5, 26, tzinfo=UTC), datetime(2025, 6, 2, tzinfo=UTC))
'1d'
>>> daily = activity.events_over_time(events, every="1d", tz="Europe/Paris")
>>> int(daily["events"].sum()) == events.height
True
>>> activity.weekday_hour(events, tz="Europe/Paris").height
168
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Literal, NamedTuple

import polars as pl

from audit_analytics.filters import Filter, zone
from audit_analytics.schema import CATEGORIES, CATEGORY_CODES, RESULTS, RETENTION_GROUPS, WRITE_ACTIONS

__all__ = [
    "BUCKETS",
    "Activity",
    "Bucket",
    "Frame",
    "bucket_end",
    "changes_over_time",
    "choose_bucket",
    "counts",
    "events_over_time",
    "failure_rate_change",
    "is_running",
    "of_events",
    "previous_period",
    "result_mix",
    "retention_summary",
    "target_query",
    "top_actors",
    "top_of",
    "top_targets",
    "weekday_hour",
    "write_actions_query",
]

Frame = pl.DataFrame | pl.LazyFrame
Bucket = Literal["1h", "1d", "1w"]

BUCKETS: dict[str, str] = {"1h": "hour", "1d": "day", "1w": "week"}
"""Bucket length (a polars duration) -> its name in captions."""

HOURLY_UP_TO = timedelta(days=3)
DAILY_UP_TO = timedelta(days=92)

# Events are first counted per 15-minute UTC slot (integer arithmetic, no time zone), then
# the few thousand slots are moved to the shown zone and truncated there. Every UTC offset
# and DST change in use since 1980 falls on a quarter hour, so a slot never straddles a
# local hour, day or week boundary; this makes 10M-row aggregates about 10x faster.
_SLOT = "15m"
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _check_every(every: str) -> str:
    if every not in BUCKETS:
        raise ValueError(f"unknown bucket {every!r}; buckets: {', '.join(BUCKETS)}")
    return every


def choose_bucket(start: datetime, end: datetime) -> Bucket:
    """The bucket length for a period ``[start, end)``: hours up to 3 days, days up to 92
    days (a quarter), weeks beyond.

    Examples
    --------
    >>> from datetime import datetime, timezone
    >>> d = lambda day: datetime(2025, 1, day, tzinfo=timezone.utc)
    >>> choose_bucket(d(1), d(2)), choose_bucket(d(1), d(8)), choose_bucket(d(1), d(1).replace(year=2026))
    ('1h', '1d', '1w')
    """
    span = end - start
    if span <= HOURLY_UP_TO:
        return "1h"
    if span <= DAILY_UP_TO:
        return "1d"
    return "1w"


def bucket_end(start: datetime, every: str) -> datetime:
    """Where the bucket that begins at ``start`` (aware, in the shown zone) ends.

    An hour is 60 minutes of real time; a day or a week ends at the local midnight that
    many calendar days later, so a day across a DST change lasts 23 or 25 hours.

    Examples
    --------
    >>> from zoneinfo import ZoneInfo
    >>> day = datetime(2025, 10, 26, tzinfo=ZoneInfo("Europe/Paris"))
    >>> end = bucket_end(day, "1d")
    >>> end.isoformat(), (end.astimezone(UTC) - day.astimezone(UTC)).total_seconds() / 3600
    ('2025-10-27T00:00:00+01:00', 25.0)
    """
    _check_every(every)
    if start.tzinfo is None:
        raise ValueError("bucket_end needs an aware datetime (the bucket start in the shown zone)")
    if every == "1h":
        return (start.astimezone(UTC) + timedelta(hours=1)).astimezone(start.tzinfo)
    days = 1 if every == "1d" else 7
    return _local_midnight(start.date() + timedelta(days=days), start.tzinfo)


def _local_midnight(day: date, tz: tzinfo | None) -> datetime:
    # fold=0 puts a midnight that a DST gap skips at the first instant of the day, as polars does
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC).astimezone(tz)


COUNT = "n"
"""The column of :func:`counts` that says how many events a row stands for."""


class Activity(NamedTuple):
    """What the Activity page reads of one filter's events, from either engine."""

    events: pl.DataFrame
    """The events themselves (held in memory), or their :func:`counts` (a database counted
    them): every figure over time, the comparison and the heat map read either."""
    total: int
    first: datetime | None
    last: datetime | None
    actors: int
    """Distinct actors (an empty name is one, as polars counts it)."""
    top_actors: pl.DataFrame | None
    """:func:`top_actors` (None when no ranking was asked for)."""
    top_targets: pl.DataFrame | None


def counts(frame: Frame) -> pl.DataFrame:
    """The events counted per 15-minute UTC slot, category, result and write action.

    Returns ``time`` (the slot's start), ``type``, ``result``, ``action`` (a write action of
    :data:`~audit_analytics.schema.WRITE_ACTIONS`, null for every other) and ``n``, in no order:
    every figure of this module but the rankings reads it as it reads the events. Few rows: a
    slot holds at most 16 x 4 x 9 of them.

    Examples
    --------
    >>> from audit_analytics import schema
    >>> ev = schema.conform(pl.DataFrame({
    ...     "time": ["2025-01-01T09:01:00Z", "2025-01-01T09:14:00Z", "2025-01-01T09:20:00Z"],
    ...     "type": ["service"] * 3, "action": ["deploy", "deploy", "view"], "result": ["done"] * 3,
    ... }).with_columns(pl.col("time").str.to_datetime(time_zone="UTC")))
    >>> counts(ev).sort("time").select(pl.col("time").dt.strftime("%H:%M"), "action", "n").rows()
    [('09:00', 'deploy', 2), ('09:15', None, 1)]
    >>> events_over_time(counts(ev)).equals(events_over_time(ev))
    True
    """
    write = pl.col("action").is_in(sorted(WRITE_ACTIONS))
    return (
        frame.lazy()
        .group_by(
            pl.col("time").dt.truncate(_SLOT),
            "type",
            "result",
            pl.when(write).then(pl.col("action")).alias("action"),
        )
        .agg(pl.len().cast(pl.UInt32).alias(COUNT))
        .collect()
    )


def _counted(lazy: pl.LazyFrame) -> bool:
    return COUNT in lazy.collect_schema().names()


def _slots(frame: Frame, keys: list[str], predicate: pl.Expr | None = None) -> pl.LazyFrame:
    """Event counts per 15-minute UTC slot and ``keys`` (column ``n``), from the events or
    from their :func:`counts`."""
    lazy = frame.lazy()
    # Int64: a database's counts of billions of events overflow a UInt32 sum (silently: polars
    # sums a UInt32 column as UInt32)
    n = pl.col(COUNT).cast(pl.Int64).sum() if _counted(lazy) else pl.len().cast(pl.Int64)
    if predicate is not None:
        lazy = lazy.filter(predicate)
    return lazy.group_by(pl.col("time").dt.truncate(_SLOT).alias("slot"), *keys).agg(n.alias("n"))


def _bucketed(slots: pl.LazyFrame, every: str, tz: str) -> pl.LazyFrame:
    zone(tz)
    _check_every(every)
    return slots.with_columns(
        pl.col("slot").dt.convert_time_zone(tz).dt.truncate(every).alias("bucket")
    ).drop("slot")


def events_over_time(frame: Frame, *, every: str = "1d", tz: str = "UTC") -> pl.DataFrame:
    """Events per time bucket and category (for a stacked chart).

    Parameters
    ----------
    every
        ``"1h"``, ``"1d"`` or ``"1w"`` (weeks start on Monday).
    tz
        IANA zone whose clock the buckets follow.

    Returns
    -------
    pl.DataFrame
        ``bucket`` (start, aware in ``tz``), ``type``, ``events``; only non-zero cells, sorted
        by bucket then category (canonical order).

    Examples
    --------
    >>> from audit_analytics import schema
    >>> ev = schema.conform(pl.DataFrame({
    ...     "time": ["2025-03-30T00:30:00Z", "2025-03-30T23:30:00Z"], "type": ["auth", "auth"],
    ...     "action": ["login"] * 2, "result": ["done"] * 2,
    ... }).with_columns(pl.col("time").str.to_datetime(time_zone="UTC")))
    >>> [(b.isoformat(), n) for b, _, n in events_over_time(ev, tz="Europe/Paris").rows()]
    [('2025-03-30T00:00:00+01:00', 1), ('2025-03-31T00:00:00+02:00', 1)]
    """
    return (
        _bucketed(_slots(frame, ["type"]), every, tz)
        .group_by("bucket", "type")
        .agg(pl.col("n").sum().alias("events"))
        .sort("bucket", "type")
        .collect()
    )


def fill_buckets(counts: pl.DataFrame, every: str, tz: str) -> pl.DataFrame:
    """``counts`` (a ``bucket`` column of bucket starts in ``tz``) with every bucket from the
    first to the last, so a chart shows its gaps (the missing buckets' other columns null).
    The one bucket filler of the package: activity, security and pushdown charts use it.

    ``every`` is a polars duration; calendar units (``1d``, ``1w``) step by local days, so a
    day across a DST change lasts 23 or 25 hours, while ``1h`` is 60 minutes of real time.

    Examples
    --------
    >>> counts = pl.DataFrame({"bucket": [datetime(2025, 10, 25), datetime(2025, 10, 27)], "n": [1, 2]})
    >>> counts = counts.with_columns(pl.col("bucket").dt.replace_time_zone("Europe/Paris"))
    >>> filled = fill_buckets(counts, "1d", "Europe/Paris")
    >>> [(str(b), n) for b, n in filled.iter_rows()]
    [('2025-10-25 00:00:00+02:00', 1), ('2025-10-26 00:00:00+02:00', None), ('2025-10-27 00:00:00+01:00', 2)]
    """
    if counts.height == 0:
        return counts
    first, last = counts["bucket"].min(), counts["bucket"].max()
    grid = pl.DataFrame(
        {"bucket": pl.datetime_range(first, last, every, time_unit="us", time_zone=tz, eager=True)}  # type: ignore[call-overload]
    )
    return grid.join(counts, on="bucket", how="full", coalesce=True).sort("bucket")


def _rate(failed: pl.Expr, finished: pl.Expr) -> pl.Expr:
    return pl.when(finished > 0).then(failed / finished).otherwise(None)


def result_mix(frame: Frame, *, every: str = "1d", tz: str = "UTC") -> pl.DataFrame:
    """Events per time bucket and result, with the failure rate.

    The failure rate is ``failed / (done + failed)``: work still pending or processing has
    not failed (yet), so it is left out of the rate; it is null when nothing finished.

    Returns
    -------
    pl.DataFrame
        ``bucket``, ``done``, ``failed``, ``pending``, ``processing``, ``events``,
        ``failure_rate`` (0..1); every bucket from the first to the last event is present.

    Examples
    --------
    >>> from audit_analytics import schema
    >>> ev = schema.conform(pl.DataFrame({
    ...     "time": ["2025-01-01T00:10:00Z", "2025-01-01T00:20:00Z", "2025-01-01T02:00:00Z"],
    ...     "type": ["auth"] * 3, "action": ["login"] * 3, "result": ["failed", "done", "pending"],
    ... }).with_columns(pl.col("time").str.to_datetime(time_zone="UTC")))
    >>> result_mix(ev, every="1h").select("events", "failed", "failure_rate").rows()
    [(2, 1, 0.5), (0, 0, None), (1, 0, None)]
    """
    counts = (
        _bucketed(_slots(frame, ["result"]), every, tz)
        .group_by("bucket")
        .agg(
            *[pl.col("n").filter(pl.col("result") == r).sum().alias(r) for r in RESULTS],
            pl.col("n").sum().alias("events"),
        )
        .collect()
    )
    out = fill_buckets(counts, every, tz).with_columns(pl.col(*RESULTS, "events").fill_null(0))
    return out.with_columns(
        _rate(pl.col("failed"), pl.col("done") + pl.col("failed")).alias("failure_rate")
    ).sort("bucket")


def changes_over_time(frame: Frame, *, every: str = "1d", tz: str = "UTC") -> pl.DataFrame:
    """Write actions (:data:`~audit_analytics.schema.WRITE_ACTIONS`) per bucket and category.

    Returns
    -------
    pl.DataFrame
        ``bucket``, ``type``, ``changes`` (all write actions), ``create``, ``update``,
        ``delete``, ``other`` (every other write action: deploy, rollback, restore, ...);
        only non-zero cells, sorted by bucket then category.

    Examples
    --------
    >>> from audit_analytics import schema
    >>> ev = schema.conform(pl.DataFrame({
    ...     "time": ["2025-01-01T09:00:00Z"] * 3, "type": ["service"] * 3,
    ...     "action": ["deploy", "delete", "login"], "result": ["done"] * 3,
    ... }).with_columns(pl.col("time").str.to_datetime(time_zone="UTC")))
    >>> changes_over_time(ev).select("type", "changes", "delete", "other").rows()
    [('service', 2, 1, 1)]
    """
    slots = _slots(frame, ["type", "action"], pl.col("action").is_in(sorted(WRITE_ACTIONS)))

    def of(action: str) -> pl.Expr:
        return pl.col("n").filter(pl.col("action") == action).sum().alias(action)

    return (
        _bucketed(slots, every, tz)
        .group_by("bucket", "type")
        .agg(
            pl.col("n").sum().alias("changes"),
            of("create"),
            of("update"),
            of("delete"),
            pl.col("n").filter(~pl.col("action").is_in(["create", "update", "delete"])).sum().alias("other"),
        )
        .sort("bucket", "type")
        .collect()
    )


def weekday_hour(frame: Frame, *, tz: str = "UTC") -> pl.DataFrame:
    """Events per local weekday and hour of the day: all 168 cells (a heat map).

    Returns ``weekday`` (1 = Monday .. 7 = Sunday), ``day`` (its name), ``hour`` (0..23),
    ``events`` (0 where there were none), sorted by weekday then hour.

    Examples
    --------
    >>> from audit_analytics import schema
    >>> ev = schema.conform(pl.DataFrame({
    ...     "time": ["2025-01-05T23:30:00Z"], "type": ["auth"], "action": ["login"], "result": ["done"],
    ... }).with_columns(pl.col("time").str.to_datetime(time_zone="UTC")))
    >>> weekday_hour(ev, tz="Europe/Paris").filter(pl.col("events") > 0).rows()
    [(1, 'Monday', 0, 1)]
    """
    zone(tz)
    local = pl.col("slot").dt.convert_time_zone(tz)
    counts = (
        _slots(frame, [])
        .group_by(
            local.dt.weekday().cast(pl.Int8).alias("weekday"), local.dt.hour().cast(pl.Int8).alias("hour")
        )
        .agg(pl.col("n").sum().alias("events"))
        .collect()
    )
    grid = pl.DataFrame(
        {
            "weekday": pl.Series(range(1, 8), dtype=pl.Int8),
            "day": _WEEKDAYS,
        }
    ).join(pl.DataFrame({"hour": pl.Series(range(24), dtype=pl.Int8)}), how="cross")
    return (
        grid.join(counts, on=["weekday", "hour"], how="left")
        .with_columns(pl.col("events").fill_null(0).cast(pl.Int64))
        .sort("weekday", "hour")
    )


def _top(frame: Frame, column: str, n: int) -> pl.DataFrame:
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    per_type = (
        frame.lazy()
        .filter(pl.col(column).is_not_null() & (pl.col(column) != ""))
        .group_by(column, "type")
        .agg(pl.len().cast(pl.UInt32).alias("events"))
        .collect()
    )
    return top_of(per_type, column, n)


def top_of(per_type: pl.DataFrame, column: str, n: int) -> pl.DataFrame:
    """The ``n`` keys of ``column`` with the most events, from their events per category
    (``column``, ``type``, ``events``; keys beyond the ``n`` may be missing): the ranking of
    :func:`top_actors` and :func:`top_targets`, which a database hands over for its top keys."""
    ranked = (
        per_type.group_by(column)
        .agg(pl.col("events").sum().alias("total"))
        .sort(["total", column], descending=[True, False])
        .head(n)
        .with_row_index("rank", offset=1)
    )
    return (
        ranked.join(per_type, on=column, how="left")
        .select("rank", column, "total", "type", "events")
        .sort(["rank", "events", "type"], descending=[False, True, False])
    )


def top_actors(frame: Frame, n: int = 10) -> pl.DataFrame:
    """The ``n`` most active actors, each with its events per category.

    Events that name no actor are left out. Ties in the total are broken by actor name.

    Returns
    -------
    pl.DataFrame
        ``rank`` (1 = most active), ``actor``, ``total`` (all its events), ``type``,
        ``events`` (in that category); one row per actor and category, sorted by rank then
        events descending.

    Examples
    --------
    >>> from audit_analytics import schema
    >>> ev = schema.conform(pl.DataFrame({
    ...     "time": ["2025-01-01T09:00:00Z"] * 4, "actor": ["bob", "ann", "ann", None],
    ...     "type": ["auth", "auth", "secret", "auth"], "action": ["login"] * 4, "result": ["done"] * 4,
    ... }).with_columns(pl.col("time").str.to_datetime(time_zone="UTC")))
    >>> top_actors(ev, 5).rows()
    [(1, 'ann', 2, 'auth', 1), (1, 'ann', 2, 'secret', 1), (2, 'bob', 1, 'auth', 1)]
    """
    return _top(frame, "actor", n)


def top_targets(frame: Frame, n: int = 10) -> pl.DataFrame:
    """The ``n`` most acted-on targets, each with its events per category.

    Same shape as :func:`top_actors` with ``target`` in place of ``actor``.
    """
    return _top(frame, "target", n)


def _per_type(frame: Frame) -> pl.DataFrame:
    lazy = frame.lazy()
    if _counted(lazy):
        n = pl.col(COUNT).cast(pl.Int64)
        events, failed = n.sum(), n.filter(pl.col("result") == "failed").sum()
        finished = n.filter(pl.col("result").is_in(["done", "failed"])).sum()
    else:
        events, failed = pl.len(), (pl.col("result") == "failed").sum()
        finished = pl.col("result").is_in(["done", "failed"]).sum()
    return (
        lazy.group_by("type")
        .agg(
            events.cast(pl.Int64).alias("events"),
            failed.cast(pl.Int64).alias("failed"),
            finished.cast(pl.Int64).alias("finished"),
        )
        .with_columns(pl.col("type").cast(pl.String))
        .collect()
    )


def failure_rate_change(frame: Frame, previous: Frame) -> pl.DataFrame:
    """This period against the previous one, per category and in all: events, failures and
    the failure rate, with the change.

    ``previous`` holds the events of the period before, of the same length (see
    :func:`previous_period`). The failure rate is ``failed / (done + failed)``.

    Returns
    -------
    pl.DataFrame
        ``type`` (the 16 category codes in canonical order, then ``"all"``), ``events``,
        ``previous_events``, ``change`` (events - previous), ``change_pct`` (percent of the
        previous count; null when it was 0), ``failed``, ``previous_failed``,
        ``failure_rate``, ``previous_failure_rate`` (0..1, null when nothing finished) and
        ``failure_rate_change`` (in percentage points).

    Examples
    --------
    >>> from audit_analytics import schema
    >>> def ev(results):
    ...     return schema.conform(pl.DataFrame({
    ...         "time": ["2025-01-01T09:00:00Z"] * len(results), "type": ["auth"] * len(results),
    ...         "action": ["login"] * len(results), "result": results,
    ...     }).with_columns(pl.col("time").str.to_datetime(time_zone="UTC")))
    >>> row = failure_rate_change(ev(["failed", "done", "done"]), ev(["done", "done"])).row(3, named=True)
    >>> row["type"], row["events"], row["change"], row["change_pct"], round(row["failure_rate_change"], 1)
    ('auth', 3, 1, 50.0, 33.3)
    """
    now, before = _per_type(frame), _per_type(previous)
    codes = pl.DataFrame({"type": list(CATEGORY_CODES)})
    table = (
        codes.join(now, on="type", how="left")
        .join(before.rename(lambda c: c if c == "type" else f"previous_{c}"), on="type", how="left")
        .fill_null(0)
    )
    totals = table.select(pl.lit("all").alias("type"), pl.exclude("type").sum())
    table = pl.concat([table, totals])
    return table.select(
        "type",
        "events",
        "previous_events",
        (pl.col("events") - pl.col("previous_events")).alias("change"),
        pl.when(pl.col("previous_events") > 0)
        .then((pl.col("events") - pl.col("previous_events")) * 100.0 / pl.col("previous_events"))
        .otherwise(None)
        .alias("change_pct"),
        "failed",
        "previous_failed",
        _rate(pl.col("failed"), pl.col("finished")).alias("failure_rate"),
        _rate(pl.col("previous_failed"), pl.col("previous_finished")).alias("previous_failure_rate"),
    ).with_columns(
        ((pl.col("failure_rate") - pl.col("previous_failure_rate")) * 100).alias("failure_rate_change")
    )


def of_events(frame: pl.DataFrame, *, top: int | None = None) -> Activity:
    """:class:`Activity` of events held in memory (``top``: the rankings' length; None: none)."""
    return Activity(
        events=frame,
        total=frame.height,
        first=frame["time"].min() if frame.height else None,  # type: ignore[arg-type]
        last=frame["time"].max() if frame.height else None,  # type: ignore[arg-type]
        actors=frame["actor"].drop_nulls().n_unique(),
        top_actors=top_actors(frame, top) if top is not None else None,
        top_targets=top_targets(frame, top) if top is not None else None,
    )


def previous_period(flt: Filter, *, now: datetime | None = None) -> Filter | None:
    """The same filter over the period just before, of the same length; None when the period
    has an open end (all time).

    A period of whole local days (today, the last 7 or 30 days, custom dates) moves back by
    the same number of calendar days in the filter's zone, so DST does not shift it by an
    hour; any other period moves back by its exact length. A period still running at ``now``
    (today at 00:35) is compared like with like: the period before ends at the same point of
    its own length (yesterday until 00:35 on the clock, not the whole of yesterday, which made
    today read "-98%" just after midnight); :func:`is_running` says when that is so.

    Examples
    --------
    >>> from datetime import datetime, timezone
    >>> now = datetime(2026, 3, 10, 12, 0, tzinfo=timezone.utc)
    >>> prev = previous_period(Filter(period="7d", types=("auth",)), now=now)
    >>> [t.isoformat() for t in prev.bounds(now=now)], prev.types
    (['2026-02-25T00:00:00+00:00', '2026-03-03T12:00:00+00:00'], ('auth',))
    >>> week = Filter(period="custom", start=datetime(2026, 3, 1).date(), end=datetime(2026, 3, 7).date())
    >>> [t.isoformat() for t in previous_period(week, now=now).bounds(now=now)]
    ['2026-02-22T00:00:00+00:00', '2026-03-01T00:00:00+00:00']
    >>> previous_period(Filter(period="all"), now=now) is None
    True
    """
    lo, hi = flt.bounds(now=now)
    if lo is None or hi is None:
        return None
    current = now or datetime.now(UTC)
    running = lo <= current < hi  # is_running, on the bounds at hand
    tz = zone(flt.tz)
    lo_local, hi_local = lo.astimezone(tz), hi.astimezone(tz)
    end = lo
    if lo_local.time() == time(0) and hi_local.time() == time(0):
        days = (hi_local.date() - lo_local.date()).days
        start = _local_midnight(lo_local.date() - timedelta(days=days), tz)
        if running:  # the same local clock time, that many days back
            end = (current.astimezone(tz) - timedelta(days=days)).astimezone(UTC)
    else:
        start = lo - (hi - lo)
        if running:
            end = start + (current - lo)
    return flt.replace(period="custom", start=start.astimezone(UTC), end=end)


def is_running(flt: Filter, *, now: datetime | None = None) -> bool:
    """Whether ``now`` falls inside the filter's period (today, the last 7 days, a custom
    period that ends in the future): its events so far are only part of it.

    >>> from datetime import datetime, timezone
    >>> now = datetime(2026, 3, 10, 12, 0, tzinfo=timezone.utc)
    >>> is_running(Filter(period="today"), now=now), is_running(Filter(period="all"), now=now)
    (True, False)
    """
    lo, hi = flt.bounds(now=now)
    current = now or datetime.now(UTC)
    return lo is not None and hi is not None and lo <= current < hi


def retention_summary(frame: Frame) -> pl.DataFrame:
    """Volume and age per retention group (security-sensitive, operational).

    Returns
    -------
    pl.DataFrame
        ``group`` (``security``, ``operational``), ``categories`` (its codes, comma
        separated), ``events``, ``oldest`` and ``newest`` (UTC; null when it has no events).

    Examples
    --------
    >>> from audit_analytics import schema
    >>> ev = schema.conform(pl.DataFrame({
    ...     "time": ["2025-01-01T09:00:00Z", "2025-02-01T09:00:00Z"], "type": ["auth", "auth"],
    ...     "action": ["login"] * 2, "result": ["done"] * 2,
    ... }).with_columns(pl.col("time").str.to_datetime(time_zone="UTC")))
    >>> [(g, n, o and o.date().isoformat()) for g, _, n, o, _ in retention_summary(ev).rows()]
    [('security', 2, '2025-01-01'), ('operational', 0, None)]
    """
    # per category first (16 rows), then per group: mapping 10M strings is 5x slower
    counts = (
        frame.lazy()
        .group_by(pl.col("type").cast(pl.String))
        .agg(
            pl.len().cast(pl.Int64).alias("events"),
            pl.col("time").min().alias("oldest"),
            pl.col("time").max().alias("newest"),
        )
        .collect()
    )
    return retention_groups(counts)


def retention_groups(per_category: pl.DataFrame) -> pl.DataFrame:
    """:func:`retention_summary` from counts per category (``type``, ``events``, ``oldest``,
    ``newest``), as an engine computes them where the events are (a GROUP BY in SQL)."""
    group_of = {code: c.retention_group for code, c in CATEGORIES.items()}
    counts = (
        per_category.with_columns(pl.col("oldest", "newest").cast(pl.Datetime("us", "UTC")))
        .group_by(
            pl.col("type").cast(pl.String).replace_strict(group_of, return_dtype=pl.String).alias("group")
        )
        .agg(pl.col("events").sum().cast(pl.Int64), pl.col("oldest").min(), pl.col("newest").max())
    )
    groups = pl.DataFrame(
        {
            "group": list(RETENTION_GROUPS),
            "categories": [", ".join(codes) for codes in RETENTION_GROUPS.values()],
        }
    )
    return (
        groups.join(counts, on="group", how="left", maintain_order="left")
        .with_columns(pl.col("events").fill_null(0))
        .with_columns(pl.col("oldest", "newest").cast(pl.Datetime("us", "UTC")))
    )


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def target_query(target: str) -> str:
    """The search term that selects one target exactly (always quoted).

    ``*`` in a value is the language's wildcard, so a target containing ``*`` also matches
    look-alikes; that is the one case where the explorer may show more than the chart.

    >>> target_query('db "main"')
    'resource:"db \\\\"main\\\\""'
    """
    return f"resource:{_quote(target)}"


def write_actions_query() -> str:
    """The search that selects every write action (a repeated qualifier means OR).

    >>> write_actions_query().split()[:3]
    ['action:archive', 'action:configure', 'action:create']
    """
    return " ".join(f"action:{a}" for a in sorted(WRITE_ACTIONS))

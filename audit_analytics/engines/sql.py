"""Two ways to run a Filter, chosen automatically.

* In memory (:class:`~audit_analytics.engines.memory.EventIndex`) while the table fits a configured
  limit (``AUDIT_MEMORY_LIMIT``, default 5,000,000 rows): loaded once per process and shared.
* Pushdown (:class:`SqlIndex`) above it, or when ``AUDIT_ENGINE=pushdown``: the same filter,
  search and sort run in the database; only the page, the count and small results travel.

Both implement :class:`audit_analytics.engines.contract.AuditEngine`, so pages, the CLI and notebooks
do not care which runs; where one cannot answer it raises :class:`~audit_analytics.errors.NeedsMemory`.

Examples
--------
>>> from audit_analytics import open_store, Filter
>>> from audit_analytics.demo.generate import generate
>>> store = open_store("sqlite://")
>>> _ = store.append(generate(1_000, seed=2).events)
>>> memory, sql = open_engine(store, mode="memory"), open_engine(store, mode="pushdown")
>>> flt = Filter(types=("auth",))
>>> memory.count(flt) == sql.count(flt)
True
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, cast

import polars as pl
import sqlalchemy as sa

from audit_analytics.analysis import security_sql as pushdown
from audit_analytics.engines.contract import NEWEST_FIRST, STREAM_ROWS, Signature
from audit_analytics.engines.memory import (
    CODE_ONLY_COLUMNS,
    Engine,
    EventIndex,
    RememberedDetails,
)
from audit_analytics.engines.store import Store
from audit_analytics.errors import NeedsMemory, TooLargeForMemory
from audit_analytics.filters import Filter, Sort
from audit_analytics.schema import PERMISSION_CATEGORIES, SUMMARY_COLUMNS

__all__ = ["SqlIndex", "SqlSelection", "open_engine", "memory_limit", "NeedsMemory", "TooLargeForMemory"]

Mode = Literal["auto", "memory", "pushdown"]
DEFAULT_MEMORY_LIMIT = 5_000_000


PARTS: dict[str, dict[str, Any]] = {
    "success_after_failures": {"types": ("auth",)},
    "permission_changes": {"types": PERMISSION_CATEGORIES},
    "denied_calls": {"results": ("failed",)},
}
"""What the other detections read, when the period is too large for memory: they run on
that part when it fits (off-hours and stuck operations read every event)."""


def memory_limit() -> int:
    try:
        return int(os.environ.get("AUDIT_MEMORY_LIMIT", DEFAULT_MEMORY_LIMIT))
    except ValueError:
        return DEFAULT_MEMORY_LIMIT


def engine_mode() -> Mode:
    mode = os.environ.get("AUDIT_ENGINE", "auto").lower()
    return mode if mode in ("auto", "memory", "pushdown") else "auto"  # type: ignore[return-value]


def open_engine(store: Store, *, mode: Mode | None = None, limit: int | None = None) -> EventIndex | SqlIndex:
    """The engine for a store: in memory when the table fits ``limit``, else pushdown."""
    mode = mode or engine_mode()
    limit = memory_limit() if limit is None else limit
    if mode == "pushdown" or (mode == "auto" and store.count() > limit):
        return SqlIndex(store, limit=limit)
    # the bulky JSON columns stay in the database and are fetched by id when shown or exported
    frame = store.load(columns=SUMMARY_COLUMNS, categorical=CODE_ONLY_COLUMNS)
    return EventIndex(frame, details=RememberedDetails(store.details))


@dataclass(frozen=True)
class SqlSelection:
    """A filter and a sort, with the count the database gave for them."""

    filter: Filter
    sort: Sort
    now: datetime | None
    total: int


class SqlIndex(Engine):
    """The contract answered by the database (pushdown): pages, counts and, when the rows
    an analysis reads are more than the memory limit, the analysis itself."""

    holds_copy = False  # every answer is read live: nothing to show while the database is away

    def __init__(self, store: Store, *, limit: int = DEFAULT_MEMORY_LIMIT) -> None:
        self.store = store
        self.limit = limit
        self.height = store.count()
        self.details = store.details
        self._cache: OrderedDict[tuple[Any, ...], SqlSelection] = OrderedDict()

    def materialised(self) -> pl.DataFrame:
        """The whole table's summary columns, when they fit the memory limit."""
        if self.height > self.limit:
            raise NeedsMemory(
                f"the table holds {self.height:,} events, more than the in-memory limit of {self.limit:,} "
                "(AUDIT_MEMORY_LIMIT)"
            )
        return self.store.load(columns=SUMMARY_COLUMNS)

    def grown(self, store: Any, held: Signature, now_signature: Signature) -> None:
        """Nothing is held: a new SqlIndex (one count) is the reload."""
        return None

    # -- analyses where the events are, when they are too many to hold ----------------------
    def _pushed(self, flt: Filter, now: datetime | None) -> bool:
        return self.count(flt, now=now) > self.limit

    def failures_by_ip(
        self, flt: Filter, *, top: int | None = None, now: datetime | None = None
    ) -> pl.DataFrame:
        if self._pushed(flt, now):
            return pushdown.failures_by_ip(self.store, flt, top=top, now=now)
        return super().failures_by_ip(flt, top=top, now=now)

    def failures_by_account(
        self, flt: Filter, *, top: int | None = None, now: datetime | None = None
    ) -> pl.DataFrame:
        if self._pushed(flt, now):
            return pushdown.failures_by_account(self.store, flt, top=top, now=now)
        return super().failures_by_account(flt, top=top, now=now)

    def failures_by_hour(self, flt: Filter, *, tz: str = "UTC", now: datetime | None = None) -> pl.DataFrame:
        if self._pushed(flt, now):
            return pushdown.failures_by_hour(self.store, flt, tz=tz, now=now)
        return super().failures_by_hour(flt, tz=tz, now=now)

    def failures_over_time(
        self, flt: Filter, *, every: str = "1h", tz: str = "UTC", now: datetime | None = None
    ) -> pl.DataFrame:
        if self._pushed(flt, now):
            return pushdown.failures_over_time(self.store, flt, every=every, tz=tz, now=now)
        return super().failures_over_time(flt, every=every, tz=tz, now=now)

    def failure_summary(self, flt: Filter, *, now: datetime | None = None) -> Any:
        if self._pushed(flt, now):
            return pushdown.failure_summary(self.store, flt, now=now)
        return super().failure_summary(flt, now=now)

    def time_range(
        self, flt: Filter, *, now: datetime | None = None
    ) -> tuple[datetime | None, datetime | None]:
        return pushdown.time_range(self.store, flt, now=now)

    def detect(
        self,
        rule: str,
        flt: Filter,
        thresholds: Mapping[str, Any],
        extra: Mapping[str, Any] | None = None,
        *,
        now: datetime | None = None,
    ) -> pl.DataFrame:
        """Findings of one detection. Above the memory limit the sliding-window rules run in
        the database; the others run on the part of the period they read when it fits."""
        from audit_analytics.analysis import security

        if not self._pushed(flt, now):
            return super().detect(rule, flt, thresholds, extra, now=now)
        if security.DETECTIONS[rule].in_sql:
            return cast(pl.DataFrame, getattr(pushdown, rule)(self.store, flt, **dict(thresholds), now=now))
        title = security.DETECTIONS[rule].title
        part = PARTS.get(rule)
        if part is None:
            raise NeedsMemory(
                f"{title} reads every event of the period: {self.count(flt, now=now):,} are more than the "
                f"in-memory limit of {self.limit:,} (AUDIT_MEMORY_LIMIT). Narrow the period to run it."
            )
        subset = flt.replace(**part)
        n = self.count(subset, now=now)
        if n > self.limit:
            what = " ".join([", ".join(part.get("types", ())), *part.get("results", ())]).strip()
            raise NeedsMemory(
                f"{title} reads the period's {n:,} {what} events: more than the in-memory limit of "
                f"{self.limit:,} (AUDIT_MEMORY_LIMIT). Narrow the period to run it."
            )
        return super().detect(rule, subset, thresholds, extra, now=now)

    def activity(self, flt: Filter, *, top: int | None = None, now: datetime | None = None) -> Any:
        """The Activity page's counts, in the database when the period is too large to hold."""
        if self._pushed(flt, now):
            return pushdown.activity(self.store, flt, top=top, now=now)
        return super().activity(flt, top=top, now=now)

    def retention_summary(self) -> pl.DataFrame:
        from audit_analytics.analysis import activity

        return activity.retention_groups(self.store.category_counts())

    def select(self, flt: Filter, sort: Sort = NEWEST_FIRST, *, now: datetime | None = None) -> SqlSelection:
        key = (flt, sort, flt.bounds(now=now))
        hit = self._cache.get(key)
        if hit is None:
            hit = SqlSelection(flt, sort, now, self.store.count(flt, now=now))
            self._cache[key] = hit
            while len(self._cache) > 32:
                self._cache.popitem(last=False)
        return hit

    def rows(self, selection: SqlSelection, offset: int = 0, limit: int | None = None) -> pl.DataFrame:
        limit = selection.total - offset if limit is None else limit
        return self.store.page(
            selection.filter,
            selection.sort,
            offset=offset,
            limit=max(limit, 0),
            now=selection.now,
        )

    def chunks(self, selection: SqlSelection, rows: int = STREAM_ROWS) -> Iterator[pl.DataFrame]:
        """The selection's rows from the database, a keyset page at a time (:meth:`Store.stream`)."""
        return self.store.stream(selection.filter, selection.sort, now=selection.now, rows=rows)

    def position_of(self, event_id: str, selection: SqlSelection) -> int | None:
        """Where an event sits in a time-sorted selection: the count of rows before it."""
        event = self.get(event_id)
        if event is None or selection.sort.column != "time":
            return None
        t = self.store.table.c
        where = self.store._where(selection.filter, selection.now)
        count = sa.select(sa.func.count()).select_from(self.store.table)
        if not self.store.scalar(count.where(where, t.id == event_id)):
            return None
        if selection.sort.descending:
            before = sa.or_(t.time > event["time"], sa.and_(t.time == event["time"], t.id > event_id))
        else:
            before = sa.or_(t.time < event["time"], sa.and_(t.time == event["time"], t.id < event_id))
        return int(self.store.scalar(count.where(where, before)))

    def get(self, event_id: str) -> dict[str, Any] | None:
        return self.store.get(event_id)

    def newest_time(self) -> datetime | None:
        return self.store.time_range()[1]

    def related(self, event: dict[str, Any], *, minutes: int = 10) -> tuple[pl.DataFrame, pl.DataFrame]:
        t = self.store.table.c
        if event.get("request_id"):
            same_request = self.store.select_frame(
                sa.select(self.store.table)
                .where(t.request_id == event["request_id"], t.id != event["id"])
                .order_by(t.time, t.id)
                .limit(1_000)
            )
        else:
            same_request = self.store.page(Filter(), limit=0)
        if event.get("actor"):
            window = timedelta(minutes=minutes)
            same_actor = self.store.select_frame(
                sa.select(self.store.table)
                .where(
                    t.actor == event["actor"],
                    t.id != event["id"],
                    t.time >= event["time"] - window,
                    t.time <= event["time"] + window,
                )
                .order_by(t.time, t.id)
                .limit(1_000)
            )
        else:
            same_actor = self.store.page(Filter(), limit=0)
        return same_request, same_actor

    def actors(self) -> pl.DataFrame:
        return self.store.actors()

    def frame_for(self, flt: Filter, *, now: datetime | None = None) -> pl.DataFrame:
        """The filtered rows for an analysis, when they fit the memory limit."""
        n = self.count(flt, now=now)
        if n > self.limit:
            raise NeedsMemory(
                f"{n:,} events match, more than the in-memory limit of {self.limit:,} (AUDIT_MEMORY_LIMIT); "
                "narrow the period or filters"
            )
        return self.store.load(flt, now=now)

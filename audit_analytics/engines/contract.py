"""The engine contract: everything a page, the CLI or a notebook asks of an engine.

Two engines implement it: :class:`~audit_analytics.engines.memory.EventIndex` (the table in memory)
and :class:`~audit_analytics.engines.sql.SqlIndex` (pushdown: the database answers). Callers use
this contract only; none asks an engine what it is. Where an engine cannot answer (the rows
an analysis needs are more than the memory limit allows), it raises
:class:`~audit_analytics.errors.NeedsMemory`, the one error a caller handles, whose message
says what to narrow.

``pyright``/``mypy`` check both engines against :class:`AuditEngine` (``tests/test_contract``
also checks it at run time).

Examples
--------
>>> from audit_analytics import open_store
>>> from audit_analytics.demo.generate import generate
>>> from audit_analytics.engines.sql import open_engine
>>> store = open_store("sqlite://")
>>> _ = store.append(generate(1_000, seed=3).events)
>>> engines = [open_engine(store, mode=m) for m in ("memory", "pushdown")]
>>> all(isinstance(e, AuditEngine) for e in engines)
True
>>> flt = Filter(period="all")
>>> len({e.failure_summary(flt).failures for e in engines})
1
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

import polars as pl

from audit_analytics.errors import NeedsMemory
from audit_analytics.filters import Filter, Sort

__all__ = ["AuditEngine", "Selected", "NeedsMemory", "NEWEST_FIRST", "Event", "Signature"]

NEWEST_FIRST = Sort("time", True)
STREAM_ROWS = 50_000
"""Rows per chunk of a streamed result (``chunks``, ``Store.stream``): an export's memory."""
Event = dict[str, Any]
"""One event: column name -> value (times as UTC datetimes)."""
Signature = tuple[int, datetime | None]
"""What says whether the table changed: (row count, newest event time)."""


class Selected(Protocol):
    """The rows that pass a filter, in a sort order, as an engine holds them."""

    @property
    def total(self) -> int: ...


@runtime_checkable
class AuditEngine(Protocol):
    """What every engine answers. Times are UTC; ``now`` pins relative periods ("last 7
    days") for a whole page run; frames have the schema's columns (:mod:`schema`)."""

    height: int
    """Events in the table when the engine was opened."""
    details: Any
    """``details(ids, between=)``: the detail columns of events by id (None: none to fetch)."""

    @property
    def holds_copy(self) -> bool:
        """True when the engine answers from its own copy of the events (it keeps answering,
        perhaps stale, while the database is away); False when every answer is read live."""
        ...

    # -- the explorer --------------------------------------------------------------------
    def select(self, flt: Filter, sort: Sort = NEWEST_FIRST, *, now: datetime | None = None) -> Any:
        """The rows passing ``flt`` in ``sort`` order (a :class:`Selected`); cached."""
        ...

    def rows(self, selection: Any, offset: int = 0, limit: int | None = None) -> pl.DataFrame:
        """Rows ``offset .. offset+limit`` of a selection (the summary columns)."""
        ...

    def count(self, flt: Filter, *, now: datetime | None = None) -> int: ...

    def page(
        self,
        flt: Filter,
        sort: Sort = NEWEST_FIRST,
        *,
        offset: int = 0,
        limit: int = 100,
        now: datetime | None = None,
    ) -> pl.DataFrame: ...

    def position_of(self, event_id: str, selection: Any) -> int | None:
        """How many rows of ``selection`` come before the event (None: not in it)."""
        ...

    def get(self, event_id: str) -> Event | None:
        """One event with every column, or None."""
        ...

    def get_summary(self, event_id: str) -> Event | None:
        """One event without the detail columns when that is cheaper (an existence check)."""
        ...

    def related(self, event: Event, *, minutes: int = 10) -> tuple[pl.DataFrame, pl.DataFrame]:
        """Events of the same request id, and of the same actor ``minutes`` either side."""
        ...

    def actors(self) -> pl.DataFrame:
        """Distinct actors with an email and their event count, most active first."""
        ...

    def newest_time(self) -> datetime | None: ...

    def with_details(self, rows: pl.DataFrame) -> pl.DataFrame:
        """``rows`` with the detail columns (params, before, after) filled in."""
        ...

    def chunks(self, selection: Any, rows: int = STREAM_ROWS) -> Iterator[pl.DataFrame]:
        """Every row of a selection with every column, in its order, ``rows`` at a time, so an
        export of any size holds one chunk; the first chunk even when empty."""
        ...

    # -- rows for an analysis -------------------------------------------------------------
    def frame_for(self, flt: Filter, *, now: datetime | None = None) -> pl.DataFrame:
        """The filtered rows, oldest first. Raises NeedsMemory above the memory limit."""
        ...

    def materialised(self) -> pl.DataFrame:
        """Every event the engine answers for, as one frame (for the archive union).
        Raises NeedsMemory above the memory limit."""
        ...

    def grown(
        self, store: Any, held: Signature, now_signature: Signature
    ) -> tuple[AuditEngine, Signature] | None:
        """This engine with the events appended since ``held`` (the table's (count, newest)
        when it was loaded) added, and the signature it then matches; None when a reload is
        the answer (events changed other than at the end, or nothing is held)."""
        ...

    # -- security review ------------------------------------------------------------------
    def failures_by_ip(
        self, flt: Filter, *, top: int | None = None, now: datetime | None = None
    ) -> pl.DataFrame: ...

    def failures_by_account(
        self, flt: Filter, *, top: int | None = None, now: datetime | None = None
    ) -> pl.DataFrame: ...

    def failures_by_hour(
        self, flt: Filter, *, tz: str = "UTC", now: datetime | None = None
    ) -> pl.DataFrame: ...

    def failures_over_time(
        self, flt: Filter, *, every: str = "1h", tz: str = "UTC", now: datetime | None = None
    ) -> pl.DataFrame: ...

    def failure_summary(self, flt: Filter, *, now: datetime | None = None) -> Any:
        """A :class:`~audit_analytics.analysis.security.FailureSummary` of the filtered events."""
        ...

    def time_range(
        self, flt: Filter, *, now: datetime | None = None
    ) -> tuple[datetime | None, datetime | None]:
        """The first and last event time passing ``flt`` (None, None when there is none)."""
        ...

    def detect(
        self,
        rule: str,
        flt: Filter,
        thresholds: Mapping[str, Any],
        extra: Mapping[str, Any] | None = None,
        *,
        now: datetime | None = None,
    ) -> pl.DataFrame:
        """The findings of one detection of :data:`audit_analytics.analysis.security.DETECTIONS`."""
        ...

    # -- activity -------------------------------------------------------------------------
    def activity(self, flt: Filter, *, top: int | None = None, now: datetime | None = None) -> Any:
        """An :class:`~audit_analytics.analysis.activity.Activity` of the filtered events: their
        counts per quarter-hour, category, result and write action, first and last time,
        distinct actors and (``top``) the top actors and targets. Never needs memory: above
        the limit the database counts."""
        ...

    def retention_summary(self) -> pl.DataFrame:
        """Volume and age per retention group over the whole table
        (:func:`audit_analytics.analysis.activity.retention_summary`)."""
        ...

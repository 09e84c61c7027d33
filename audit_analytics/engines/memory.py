"""The in-memory engine: a time-ordered event frame with search dictionaries.

``Filter.apply`` works on any frame; :class:`EventIndex` answers the same filter much faster
on a large table by knowing three things about its frame, prepared once at load:

* rows are ordered by ``(time, id)``, so the period is a binary search and a slice, and
  "newest first" is a reversed index, with no sort;
* low-cardinality text columns (actor, email, action, target, ip, often description) get a
  dictionary: a word or ``user:``/``resource:`` value is matched against the few distinct
  values once, and rows are then selected by integer code;
* high-cardinality columns that are already lower case (request ids) need no lowering.

A selection is a list of row positions, so counting, paging and sorting never copy the table.
The agreement tests run it against ``Filter.apply`` and SQL on the same rows.

Examples
--------
>>> from audit_analytics.demo.generate import generate
>>> from audit_analytics.filters import Filter, Sort
>>> frame = generate(2_000, seed=1).events
>>> index = EventIndex(frame)
>>> flt = Filter(types=("auth",), query="-result:done")
>>> index.count(flt) == flt.apply(frame).height
True
>>> index.page(flt, Sort("time", True), offset=0, limit=3)["id"].to_list() == (
...     flt.apply(frame).sort("time", "id", descending=True).head(3)["id"].to_list())
True
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import polars as pl

from audit_analytics.engines.contract import NEWEST_FIRST, STREAM_ROWS, Signature
from audit_analytics.filters import (
    Filter,
    Sort,
    ip_matches,
    is_permission_change,
    polars_sort,
    polars_term,
    polars_types,
    wildcard_regex,
)
from audit_analytics.query import Qualified
from audit_analytics.schema import (
    COLUMNS,
    DETAIL_COLUMNS,
    PERMISSION,
    TEXT_SEARCH_COLUMNS,
)

Details = Callable[..., pl.DataFrame]
"""``details(ids, between=(first, last))`` -> a frame of ``id`` and the detail columns
(``Store.details``); ``ids`` is a sequence of strings (a polars Series from this module);
``between`` bounds the events' times, for sources that read or prune by time."""

__all__ = ["EventIndex", "Selection"]

DICTIONARY_COLUMNS = ("actor", "email", "action", "target", "ip", "description", "request_id", "error")
"""The text columns free words search (:data:`~audit_analytics.schema.TEXT_SEARCH_COLUMNS`):
each held as a dictionary when its distinct values are few, else with a lowered copy."""
# a dictionary pays while the distinct values are far fewer than the rows
DICTIONARY_MAX_SHARE = 0.5
DICTIONARY_ALWAYS_UP_TO = 1_000
SAMPLE_ROWS = 100_000
MAX_CHUNKS = 64
MAX_REORDERED_ROWS = 100_000  # a late arrival further back than this rebuilds the index
CODE_ONLY_COLUMNS = ("email", "description")
"""Dictionary columns no analysis reads: once encoded, only their codes are kept, and their
text is put back for the rows a page, an event or an export shows (at 10M events about
0.6 GB less to hold)."""  # a grown index is compacted into one chunk past this many appends
GROW_ATTEMPTS = 3  # reads of the new events while others keep being written
LATE_ARRIVALS = timedelta(minutes=5)  # how far back a new event may land without a full reload
CACHE_SIZE = 12  # selections kept per index (a full 10M-row selection is 80 MB)
QUALIFIER_COLUMNS = {"action": "action", "target": "target", "ip": "ip", "request_id": "request_id"}


@dataclass(frozen=True)
class _Dictionary:
    values: pl.Series  # distinct values; a row's code is its value's position here
    lowered: pl.Series


@dataclass(frozen=True)
class Selection:
    """Rows of the index that pass a filter, in the requested order.

    When every row of the period passed and the order is by time (the common opening view),
    the positions are implicit: a 10-million-row selection then costs nothing to keep.
    """

    positions: pl.Series | None  # Int64 positions into the index frame, in order
    start: int  # the period's first position (rows are within [start, stop))
    stop: int
    descending: bool = False  # for implicit positions: newest first

    @property
    def contiguous(self) -> bool:
        return self.positions is None

    @property
    def total(self) -> int:
        return self.stop - self.start if self.positions is None else self.positions.len()

    def slice(self, offset: int = 0, limit: int | None = None) -> pl.Series:
        """Positions ``offset .. offset+limit`` of the selection, in its order."""
        if self.positions is not None:
            return self.positions.slice(offset, limit)
        total = self.total
        offset = min(max(offset, 0), total)
        count = total - offset if limit is None else min(limit, total - offset)
        if self.descending:
            first = self.stop - 1 - offset
            return pl.int_range(first, first - count, -1, eager=True, dtype=pl.Int64)
        return pl.int_range(self.start + offset, self.start + offset + count, eager=True, dtype=pl.Int64)

    @property
    def rows(self) -> pl.Series:
        return self.slice()


class Engine:
    """What both engines share, written once: counting and paging in terms of ``select`` and
    ``rows``, and every analysis in terms of :meth:`frame_for` (an engine that can answer an
    analysis where the events are, the SQL engine, overrides it for tables too large to hold).
    See :class:`audit_analytics.engines.contract.AuditEngine` for the whole contract."""

    height: int
    holds_copy = True

    # provided by each engine
    def select(self, flt: Filter, sort: Sort = NEWEST_FIRST, *, now: datetime | None = None) -> Any:
        raise NotImplementedError

    def rows(self, selection: Any, offset: int = 0, limit: int | None = None) -> pl.DataFrame:
        raise NotImplementedError

    def get(self, event_id: str) -> dict[str, Any] | None:
        raise NotImplementedError

    def frame_for(self, flt: Filter, *, now: datetime | None = None) -> pl.DataFrame:
        raise NotImplementedError

    def count(self, flt: Filter, *, now: datetime | None = None) -> int:
        total: int = self.select(flt, now=now).total
        return total

    def page(
        self,
        flt: Filter,
        sort: Sort = NEWEST_FIRST,
        *,
        offset: int = 0,
        limit: int = 100,
        now: datetime | None = None,
    ) -> pl.DataFrame:
        return self.rows(self.select(flt, sort, now=now), offset, limit)

    def with_details(self, rows: pl.DataFrame) -> pl.DataFrame:
        """``rows`` with every column of the schema (an engine that holds them all: as is)."""
        return rows

    def chunks(self, selection: Any, rows: int = STREAM_ROWS) -> Iterator[pl.DataFrame]:
        """Every row of a selection with every column, in its order, ``rows`` at a time (what
        an export writes; the first chunk even when empty, for the columns)."""
        if rows < 1:
            raise ValueError("rows must be at least 1")
        total: int = selection.total
        for start in range(0, max(total, 1), rows):
            yield self.with_details(self.rows(selection, start, rows))

    def get_summary(self, event_id: str) -> dict[str, Any] | None:
        """One event by id, without fetching what the engine leaves in the database (an
        engine that reads every event from the database: the whole event)."""
        return self.get(event_id)

    # -- analyses on the filtered rows ------------------------------------------------------
    def failures_by_ip(
        self, flt: Filter, *, top: int | None = None, now: datetime | None = None
    ) -> pl.DataFrame:
        from audit_analytics.analysis import security

        return security.failures_by_ip(self.frame_for(flt, now=now), top=top)

    def failures_by_account(
        self, flt: Filter, *, top: int | None = None, now: datetime | None = None
    ) -> pl.DataFrame:
        from audit_analytics.analysis import security

        return security.failures_by_account(self.frame_for(flt, now=now), top=top)

    def failures_by_hour(self, flt: Filter, *, tz: str = "UTC", now: datetime | None = None) -> pl.DataFrame:
        from audit_analytics.analysis import security

        return security.failures_by_hour(self.frame_for(flt, now=now), tz=tz)

    def failures_over_time(
        self, flt: Filter, *, every: str = "1h", tz: str = "UTC", now: datetime | None = None
    ) -> pl.DataFrame:
        from audit_analytics.analysis import security

        return security.failures_over_time(self.frame_for(flt, now=now), every=every, tz=tz)

    def failure_summary(self, flt: Filter, *, now: datetime | None = None) -> Any:
        from audit_analytics.analysis import security

        return security.failure_summary(self.frame_for(flt, now=now))

    def time_range(
        self, flt: Filter, *, now: datetime | None = None
    ) -> tuple[datetime | None, datetime | None]:
        frame = self.frame_for(flt, now=now)
        if frame.height == 0:
            return None, None
        return frame["time"].min(), frame["time"].max()  # type: ignore[return-value]

    def detect(
        self,
        rule: str,
        flt: Filter,
        thresholds: Mapping[str, Any],
        extra: Mapping[str, Any] | None = None,
        *,
        now: datetime | None = None,
    ) -> pl.DataFrame:
        """Findings of one detection over the filtered events. A rule that learns from history
        (``Detection.history``) also reads that much before the period, and reports only the
        period's findings."""
        from audit_analytics.analysis import security

        detection = security.DETECTIONS[rule]
        extra = dict(extra or {})
        if detection.history:
            lookback = thresholds.get(detection.history, getattr(detection.defaults, detection.history))
            flt, since = flt.with_history(lookback, now=now)
            if since is not None:
                extra.setdefault("since", since)
        frame = self.frame_for(flt, now=now)
        if rule == "permission_changes":  # reads before/after: fetch them for its events only
            extra.setdefault("activity", frame)
            frame = self._analysis_details(frame.filter(is_permission_change()))
        return detection.function(frame, **dict(thresholds), **extra)

    def activity(self, flt: Filter, *, top: int | None = None, now: datetime | None = None) -> Any:
        from audit_analytics.analysis import activity

        return activity.of_events(self.frame_for(flt, now=now), top=top)

    def retention_summary(self) -> pl.DataFrame:
        from audit_analytics.analysis import activity

        return activity.retention_summary(self.frame_for(Filter(period="all")))

    def _analysis_details(self, rows: pl.DataFrame) -> pl.DataFrame:
        """``rows`` with their detail columns, for a detection (which reruns on every new event)."""
        return self.with_details(rows)


class RememberedDetails:
    """A ``details`` source (``Store.details``) that also remembers what detections fetched.

    The permission-changes detection reads before/after of every permission event of the
    period: at 1,000,000 events, 31,000 rows fetched by id, half a second each time the data
    grow (every sign-in and export adds an event, and the results are computed again).
    An event's detail columns do not change once written (a change other than at the table's
    end reloads the index, with a new one of these), so only the new events' are fetched then.
    Plain calls (an event's detail, an export) are never remembered; at most ``limit`` rows are.
    """

    def __init__(self, fetch: Details, *, limit: int = 200_000) -> None:
        self.fetch = fetch
        self.limit = limit
        self.held: pl.DataFrame | None = None
        self.lock = threading.Lock()

    def __call__(self, ids: Any, *, between: tuple[datetime, datetime] | None = None) -> pl.DataFrame:
        return self.fetch(ids, between=between)

    def remembered(self, ids: Any, *, between: tuple[datetime, datetime] | None = None) -> pl.DataFrame:
        wanted = pl.Series("id", ids, dtype=pl.String).unique()
        held = self.held
        if held is None:
            hits, rest = None, wanted
        else:
            known = wanted.is_in(held["id"].implode())
            hits = held.join(wanted.filter(known).to_frame(), on="id", how="semi")
            rest = wanted.filter(~known)
        fetched = self.fetch(rest, between=between) if rest.len() else None
        if fetched is not None and fetched.height:
            fetched = fetched.unique("id", keep="first")
            with self.lock:
                base = self.held
                grown = fetched if base is None else pl.concat([base, fetched], how="diagonal_relaxed")
                self.held = fetched if grown.height > self.limit else grown.unique("id", keep="first")
        parts = [p for p in (hits, fetched) if p is not None]
        if not parts:  # nothing asked and nothing held yet: the source's own empty frame
            return self.fetch(rest, between=between)
        return parts[0] if len(parts) == 1 else pl.concat(parts, how="diagonal_relaxed")


def add_details(rows: pl.DataFrame, details: Details | None) -> pl.DataFrame:
    """``rows`` (any order) with the detail columns filled from ``details`` by id, in the
    schema's column order; ids ``details`` does not know get nulls."""
    missing = [c for c in DETAIL_COLUMNS if c not in rows.columns]
    if not missing:
        return rows
    fetched = None
    if details is not None and rows.height:
        times = rows["time"]
        fetched = details(rows["id"].unique(), between=(times.min(), times.max()))
    if fetched is None or fetched.height == 0:
        filled = rows.with_columns(pl.lit(None, dtype=pl.String).alias(c) for c in missing)
    else:
        filled = rows.join(
            fetched.select("id", *missing).unique("id"), on="id", how="left", maintain_order="left"
        )
    return filled.select(c for c in COLUMNS if c in filled.columns)


class EventIndex(Engine):
    """A time-ordered event frame prepared for fast filtering, counting and paging."""

    # growth (:meth:`extended`) appends chunks after row ``_tail_start``; past MAX_CHUNKS of
    # them only that tail is merged into one chunk. The loaded or restored rows keep their
    # chunks: merging a 10M-row frame copied 1.5 GB and took 2 s at the first sign-in.
    _tail_start: int | None = None
    _appends: int = 0

    def __init__(self, frame: pl.DataFrame, *, details: Details | None = None) -> None:
        """``frame`` may leave out the detail columns (params, before, after): ``details``
        then fetches them by id for what needs them (an event's detail, an export)."""
        self.details = details
        self.frame = frame if in_time_order(frame) else frame.sort("time", "id")
        self.height = self.frame.height
        self._codes: dict[str, pl.Series] = {}
        self._dicts: dict[str, _Dictionary] = {}
        self._lower: dict[str, pl.Series | None] = {}  # None: the column is lower case already
        self._cache: OrderedDict[tuple[Any, ...], Selection] = OrderedDict()
        self._cache_lock = threading.Lock()  # sessions share the index from their own threads
        self._code_only: tuple[str, ...] = ()
        # the code-only columns first, their text dropped at once: the other columns'
        # preparation then reuses that memory instead of adding to the peak
        for column in CODE_ONLY_COLUMNS:
            self._prepare(column)
            if column in self._dicts:
                self._code_only += (column,)
                self.frame = self.frame.drop(column)
        for column in DICTIONARY_COLUMNS:
            if column not in CODE_ONLY_COLUMNS:
                self._prepare(column)

    @property
    def columns(self) -> list[str]:
        """The event columns this index answers with (the frame's plus the code-only ones)."""
        held = set(self.frame.columns) | set(self._code_only)
        return [c for c in COLUMNS if c in held]

    def _restore(self, rows: pl.DataFrame, positions: pl.Series | None) -> pl.DataFrame:
        """``rows`` (the frame at ``positions``) with the code-only columns' text put back."""
        if not self._code_only:
            return rows
        if positions is None:
            positions = pl.Series([], dtype=pl.Int64)
        restored = [
            self._dicts[c].values.gather(self._codes[c].gather(positions)).alias(c) for c in self._code_only
        ]
        return rows.hstack(restored).select(self.columns)

    def materialised(self) -> pl.DataFrame:
        """The whole frame with every column it answers with (copies: for the archive view)."""
        return self._restore(self.frame, pl.int_range(self.height, eager=True, dtype=pl.Int64))

    # -- preparation ---------------------------------------------------------------------
    def _prepare(self, column: str) -> None:
        s = self.frame[column]
        limit = max(DICTIONARY_ALWAYS_UP_TO, int(self.height * DICTIONARY_MAX_SHARE))
        if isinstance(s.dtype, pl.Categorical):  # read as codes (schema.conform(categorical=))
            if self._adopt_categorical(column, s, limit):
                return
            s = s.cast(pl.String)
            self.frame = self.frame.with_columns(s)
        # a sample tells a mostly-distinct column (request ids) without hashing all of it: at
        # 10M rows that hash, and a lowered copy, were the peak of the whole load (~1 GB)
        sample = s.head(SAMPLE_ROWS)
        mostly_distinct = (
            sample.len() > DICTIONARY_ALWAYS_UP_TO and sample.n_unique() > sample.len() * DICTIONARY_MAX_SHARE
        )
        # a million rows at a time: hashing a whole 10M-row text column at once was the peak
        distinct = None if mostly_distinct else _distinct(s)
        if distinct is not None and distinct.len() <= limit:
            values = distinct.sort()
            self._codes[column] = pl.concat([_encode(part, values) for part in _slices(s)])
            self._dicts[column] = _Dictionary(values, values.str.to_lowercase())
            return
        self._lower[column] = None if _all_lower(s) else s.str.to_lowercase()

    def _adopt_categorical(self, column: str, s: pl.Series, limit: int) -> bool:
        """Make a categorical column's codes this index's dictionary codes (the dictionary
        sorted, as for text columns); False when it has too many distinct values for one."""
        physical = s.to_physical()
        used = _distinct(physical)
        if used.len() > limit:
            return False
        names = s.dtype.categories.to_series().gather(used)  # type: ignore[attr-defined]  # a Categorical's  # ordered by physical value
        order = names.arg_sort()
        values = names.gather(order)
        size = int(used.max() or 0) + 1 if used.len() else 0  # type: ignore[arg-type]  # an integer column's max
        lookup = pl.repeat(None, size, dtype=pl.UInt32, eager=True).scatter(
            used.gather(order), pl.int_range(values.len(), eager=True, dtype=pl.UInt32)
        )
        self._codes[column] = pl.concat([lookup.gather(part) for part in _slices(physical)])
        self._dicts[column] = _Dictionary(values.alias(column), values.str.to_lowercase().alias(column))
        return True

    # -- building blocks -----------------------------------------------------------------
    def _codes_where(self, column: str, hit: pl.Series) -> pl.Expr:
        """Rows whose dictionary value is one of ``hit`` (a boolean per distinct value)."""
        wanted = pl.int_range(hit.len(), eager=True, dtype=pl.UInt32).filter(hit)
        return pl.col(f"__code_{column}").is_in(wanted.implode()).fill_null(False)

    def _contains(self, column: str, needle: str) -> pl.Expr:
        if column in self._dicts:
            d = self._dicts[column]
            return self._codes_where(column, d.lowered.str.contains(needle, literal=True).fill_null(False))
        if self._lower.get(column) is None:
            source = pl.col(column)
        else:
            source = pl.col(f"__lower_{column}")
        return source.str.contains(needle, literal=True).fill_null(False)

    def _field_match(self, column: str, value: str, *, wildcard: bool = True) -> pl.Expr:
        """Whole-field, case-insensitive match (``*`` a wildcard in a search, a plain character
        in the panel's user list), as ``Filter`` defines it."""
        if column in self._dicts:
            lowered = self._dicts[column].lowered
            if wildcard and "*" in value:
                hit = lowered.str.contains(wildcard_regex(value))
            else:
                hit = lowered == value.lower()
            return self._codes_where(column, hit.fill_null(False))
        if not wildcard:
            return (pl.col(column).str.to_lowercase() == value.lower()).fill_null(False)
        return polars_term(Qualified(column, value)).fill_null(False) if column != "user" else pl.lit(False)

    def _term(self, term: Qualified) -> pl.Expr:
        f, v = term.field, term.value
        if f == "type" and v == PERMISSION:
            return polars_types((PERMISSION,), self._actions_in)
        if f == "user":
            return self._field_match("actor", v) | self._field_match("email", v)
        if f == "ip" and term.network is not None:
            if "ip" in self._dicts:
                values = self._dicts["ip"].values
                inside = set(ip_matches(values.to_list(), term.network))
                return self._codes_where("ip", values.is_in(list(inside)).fill_null(False))
            # many distinct addresses: check them once here, never in a callback inside polars
            return polars_term(term, self.frame["ip"].unique().to_list()).fill_null(False)
        if f in QUALIFIER_COLUMNS:
            return self._field_match(QUALIFIER_COLUMNS[f], v)
        return polars_term(term).fill_null(False)  # type, result: small enums

    def _actions_in(self, values: list[str]) -> pl.Expr:
        if "action" in self._dicts:
            return self._codes_where("action", self._dicts["action"].values.is_in(values).fill_null(False))
        return pl.col("action").is_in(values)

    def _mask(self, flt: Filter) -> list[pl.Expr]:
        conds: list[pl.Expr] = []
        if flt.types:
            conds.append(polars_types(flt.types, self._actions_in))
        if flt.results:
            conds.append(pl.col("result").is_in(list(flt.results)))
        if flt.users:
            hits = [
                self._field_match("actor", u, wildcard=False) | self._field_match("email", u, wildcard=False)
                for u in flt.users
            ]
            conds.append(pl.any_horizontal(hits))
        query = flt.parsed
        for word in query.words:
            needle = word.text.lower()
            hit = pl.any_horizontal([self._contains(c, needle) for c in TEXT_SEARCH_COLUMNS])
            conds.append(~hit if word.negated else hit)
        groups: dict[str, list[Qualified]] = {}
        for term in query.qualified:
            if term.field not in ("after", "before"):
                groups.setdefault(term.field, []).append(term)
        for terms in groups.values():
            pos = [self._term(t) for t in terms if not t.negated]
            if pos:
                conds.append(pl.any_horizontal(pos))
            conds.extend(~self._term(t) for t in terms if t.negated)
        return conds

    def _window(self, flt: Filter, now: datetime | None) -> tuple[int, int]:
        lo, hi = flt.bounds(now=now)
        for op, instant in flt._query_bounds():
            if op == ">=":
                lo = instant if lo is None else max(lo, instant)
            else:
                hi = instant if hi is None else min(hi, instant)
        times = self.frame["time"]
        start = 0 if lo is None else int(times.search_sorted(lo, side="left"))
        stop = self.height if hi is None else int(times.search_sorted(hi, side="left"))
        return start, max(start, stop)

    def _working(self, start: int, stop: int) -> pl.DataFrame:
        extra = [c.slice(start, stop - start).alias(f"__code_{n}") for n, c in self._codes.items()]
        extra += [
            c.slice(start, stop - start).alias(f"__lower_{n}")
            for n, c in self._lower.items()
            if c is not None
        ]
        return self.frame.slice(start, stop - start).hstack(extra)

    # -- public --------------------------------------------------------------------------
    def select(self, flt: Filter, sort: Sort = NEWEST_FIRST, *, now: datetime | None = None) -> Selection:
        """The positions of the rows that pass ``flt``, in ``sort`` order (cached)."""
        start, stop = self._window(flt, now)
        key = (flt, sort, start, stop)
        with self._cache_lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit
        conds = self._mask(flt)
        positions: pl.Series | None = None
        if conds:
            working = self._working(start, stop)
            positions = (
                working.select(pl.arg_where(pl.all_horizontal(conds))).to_series().cast(pl.Int64) + start
            )
        if sort.column == "time":
            if positions is None:
                selection = Selection(None, start, stop, descending=sort.descending)
            else:
                selection = Selection(positions.reverse() if sort.descending else positions, start, stop)
        else:
            window = (
                self.frame.slice(start, stop - start)
                .select("id", "time", sort.column)
                .with_row_index("__pos", offset=start)
            )
            if positions is not None:
                window = window.filter(pl.col("__pos").is_in(positions.cast(pl.UInt32).implode()))
            ordered = polars_sort(window, sort)["__pos"].cast(pl.Int64)
            selection = Selection(ordered, start, stop)
        with self._cache_lock:
            self._cache[key] = selection
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        return selection

    def rows(self, selection: Selection, offset: int = 0, limit: int | None = None) -> pl.DataFrame:
        """Event rows of a selection (a slice of it), in its order."""
        positions = selection.slice(offset, limit)
        return self._restore(self.frame[positions], positions)

    def frame_for(self, flt: Filter, *, now: datetime | None = None) -> pl.DataFrame:
        """The filtered rows as a frame, oldest first (a zero-copy slice when only the period
        narrows it). For analyses that need the rows themselves; the code-only columns
        (email, description) are not in it."""
        selection = self.select(flt, now=now)
        if selection.contiguous:
            return self.frame.slice(selection.start, selection.stop - selection.start)
        return self.frame[selection.rows]

    def position_of(self, event_id: str, selection: Selection) -> int | None:
        """Where an event sits in a selection (0-based), or None."""
        hits = (
            self.frame.slice(selection.start, selection.stop - selection.start)
            .select(pl.arg_where(pl.col("id") == event_id))
            .to_series()
        )
        if not hits.len():
            return None
        absolute = int(hits[0]) + selection.start
        if selection.positions is None:
            return selection.stop - 1 - absolute if selection.descending else absolute - selection.start
        where = selection.positions.to_frame("p").select(pl.arg_where(pl.col("p") == absolute)).to_series()
        return int(where[0]) if where.len() else None

    def with_details(self, rows: pl.DataFrame) -> pl.DataFrame:
        """``rows`` of this index with the detail columns it leaves out, fetched by id."""
        return add_details(rows, self.details)

    def _analysis_details(self, rows: pl.DataFrame) -> pl.DataFrame:
        remembered = getattr(self.details, "remembered", None)
        return add_details(rows, remembered or self.details)

    # -- what the pages ask besides selections (the SQL engine answers the same) ----------
    def get(self, event_id: str) -> dict[str, Any] | None:
        """One event by id with every column (the detail columns fetched), or None."""
        hit = self._by_id(event_id)
        return self.with_details(hit).row(0, named=True) if hit.height else None

    def get_summary(self, event_id: str) -> dict[str, Any] | None:
        """One event by id with only the columns held in memory (no database needed)."""
        hit = self._by_id(event_id)
        return hit.row(0, named=True) if hit.height else None

    def _by_id(self, event_id: str) -> pl.DataFrame:
        positions = self.frame.select(pl.arg_where(pl.col("id") == event_id)).to_series().cast(pl.Int64)
        return self._restore(self.frame[positions], positions)

    def newest_time(self) -> datetime | None:
        return self.frame["time"][-1] if self.height else None

    def related(self, event: dict[str, Any], *, minutes: int = 10) -> tuple[pl.DataFrame, pl.DataFrame]:
        """(same request_id, same actor within ``minutes`` either side), oldest first."""
        from audit_analytics.view import related_events

        t = event["time"]
        times = self.frame["time"]
        # the actor window is a slice of the time-ordered frame; the request id needs a scan
        lo = int(times.search_sorted(t - timedelta(minutes=minutes), side="left"))
        hi = int(times.search_sorted(t + timedelta(minutes=minutes), side="right"))
        same_request, _ = related_events(
            self.frame.filter(pl.col("request_id") == event["request_id"])
            if event.get("request_id")
            else self.frame.clear(),
            event,
        )
        _, same_actor = related_events(self.frame.slice(lo, hi - lo), event, minutes=minutes)
        return same_request, same_actor

    def actors(self) -> pl.DataFrame:
        """Distinct actors with an email and their event count, most active first."""
        if self.height == 0:
            return pl.DataFrame(schema={"actor": pl.String, "email": pl.String, "events": pl.UInt32})
        if "email" not in self._code_only:
            return (
                self.frame.drop_nulls("actor")
                .group_by("actor")
                .agg(pl.col("email").max(), pl.len().alias("events"))
                .sort(["events", "actor"], descending=[True, False])
            )
        # by code: the dictionary is sorted, so the largest code is the largest email
        values = self._dicts["email"].values
        return (
            pl.DataFrame({"actor": self.frame["actor"], "code": self._codes["email"]})
            .drop_nulls("actor")
            .group_by("actor")
            .agg(pl.col("code").max(), pl.len().alias("events"))
            .sort(["events", "actor"], descending=[True, False])
            .select("actor", pl.lit(values).gather(pl.col("code")).alias("email"), "events")
        )

    # -- growing without a reload -----------------------------------------------------------
    def grown(
        self, store: Any, held: Signature, now_signature: Signature
    ) -> tuple[EventIndex, Signature] | None:
        """This index with only the newly appended events added, and the table's signature
        it then matches, when the table only grew at its end (the usual case: new events, the
        app's own sign-ins and exports); else None (reload). ``held`` and ``now_signature``
        are the table's (count, newest time) at load and now."""
        from audit_analytics.engines.sql import engine_mode, memory_limit

        (old_count, old_newest), (new_count, new_newest) = held, now_signature
        if new_count <= old_count:
            return None
        if engine_mode() == "auto" and new_count > memory_limit():
            return None  # grown past the limit: the reload pushes down (AUDIT_ENGINE=memory keeps it)
        if old_newest is None or new_newest is None or new_newest < old_newest:
            return None
        # from a little before the newest event: one written at the same moment may commit later
        since = old_newest - LATE_ARRIVALS
        known = self.frame.slice(int(self.frame["time"].search_sorted(since, side="left")))["id"]
        for _attempt in range(GROW_ATTEMPTS):
            tail = store.load(Filter(start=since), columns=self.columns)
            fresh = tail.filter(~pl.col("id").is_in(known.implode()))
            count = store.count()  # after the tail: events written meanwhile show as a difference
            if old_count + fresh.height == count:
                newest = max(old_newest, fresh["time"].max()) if fresh.height else old_newest
                extended = self.extended(fresh)
                return None if extended is None else (extended, (count, newest))
            if old_count + fresh.height > count:
                return None  # fewer events than held plus new ones: some were deleted or changed
            # more: events committed between reading the tail and counting (sign-ins): again
        return None

    # -- a snapshot of the prepared index (engines/snapshot.py writes and reads the files) ---
    def state(self) -> tuple[pl.DataFrame, pl.DataFrame, dict[str, Any]]:
        """Everything this index prepared: a frame of ``height`` rows (the frame's columns
        that have no dictionary, ``__code_<c>`` and ``__lower_<c>`` per column), a frame of
        the dictionaries one after another (``value``, ``lowered``), and the layout. A
        dictionary column's text is not written: its codes give it back."""
        coded = [c for c in self.frame.columns if c in self._dicts]
        rows = self.frame.drop(coded).hstack(
            [codes.alias(f"__code_{c}") for c, codes in self._codes.items()]
            + [low.alias(f"__lower_{c}") for c, low in self._lower.items() if low is not None]
        )
        names = list(self._dicts)
        words = pl.DataFrame(
            {
                "value": pl.concat([self._dicts[c].values.alias("value") for c in names]) if names else [],
                "lowered": pl.concat([self._dicts[c].lowered.alias("lowered") for c in names])
                if names
                else [],
            },
            schema={"value": pl.String, "lowered": pl.String},
        )
        layout = {
            "frame": self.frame.columns,
            "dicts": {c: self._dicts[c].values.len() for c in names},
            "lower": {c: low is not None for c, low in self._lower.items()},
            "code_only": list(self._code_only),
        }
        return rows, words, layout

    @classmethod
    def from_state(
        cls, rows: pl.DataFrame, words: pl.DataFrame, layout: Mapping[str, Any], *, details: Details | None
    ) -> EventIndex:
        """The index :meth:`state` described, without preparing anything again. Raises
        ValueError when the frames do not fit the layout (a damaged snapshot)."""
        index = cls.__new__(cls)
        index.details = details
        index._dicts, index._codes = {}, {}
        offset = 0
        for c, n in layout["dicts"].items():
            part = words.slice(offset, n)
            offset += n
            codes = rows[f"__code_{c}"].alias(c)
            top = codes.max()
            if part.height != n or part["value"].null_count() or (top is not None and int(top) >= n):  # type: ignore[arg-type]
                raise ValueError(f"the dictionary of {c} does not fit its codes")
            index._dicts[c] = _Dictionary(part["value"].alias(c), part["lowered"].alias(c))
            index._codes[c] = codes
        if offset != words.height:
            raise ValueError("the dictionaries hold more values than the layout says")
        text = {
            c: index._dicts[c].values.gather(index._codes[c]) for c in layout["frame"] if c in index._dicts
        }
        index.frame = pl.DataFrame([text[c] if c in text else rows[c] for c in layout["frame"]])
        index.height = index.frame.height
        index._lower = {c: rows[f"__lower_{c}"] if kept else None for c, kept in layout["lower"].items()}
        index._cache = OrderedDict()
        index._cache_lock = threading.Lock()
        index._code_only = tuple(layout["code_only"])
        return index

    def _truncated(self, stop: int) -> EventIndex:
        """This index's first ``stop`` rows (its dictionaries shared, nothing copied)."""
        head = EventIndex.__new__(EventIndex)
        head.details = self.details
        head.frame = self.frame.slice(0, stop)
        head.height = head.frame.height
        head._codes = {c: codes.slice(0, stop) for c, codes in self._codes.items()}
        head._dicts = dict(self._dicts)
        head._lower = {c: None if low is None else low.slice(0, stop) for c, low in self._lower.items()}
        head._cache = OrderedDict()
        head._cache_lock = threading.Lock()
        head._code_only = self._code_only
        return head

    def extended(self, new: pl.DataFrame) -> EventIndex | None:
        """A new index with ``new`` rows added, reusing this one's dictionaries. Rows that
        come before the last one are merged into the last :data:`MAX_REORDERED_ROWS` rows;
        ``None`` when they come further back, or repeat an id (then rebuild from scratch).

        The audit log grows at its end: the app's own sign-ins and exports, the platform's new
        events. Reloading a million rows for each of them would cost seconds every time.
        """
        if new.height == 0:
            return self
        new = new.select(self.columns).sort("time", "id")
        if self.height:
            last_time, last_id = self.frame["time"][-1], self.frame["id"][-1]
            first_time, first_id = new["time"][0], new["id"][0]
            if (first_time, first_id) <= (last_time, last_id):
                # a late arrival (two sign-ins written at once commit out of order): the rows
                # from its time on are put in order again, the rest is kept as it is
                start = int(self.frame["time"].search_sorted(first_time, side="left"))
                if self.height - start > MAX_REORDERED_ROWS:
                    return None
                positions = pl.int_range(start, self.height, eager=True, dtype=pl.Int64)
                tail = self._restore(self.frame.slice(start), positions)
                if tail["id"].is_in(new["id"].implode()).any():
                    return None  # an event changed, not added: rebuild
                return self._truncated(start).extended(pl.concat([tail, new]))
        grown = EventIndex.__new__(EventIndex)
        grown.details = self.details
        # appended as new chunks, not copies: every sign-in and export adds an event, and 20
        # sessions signing in must not copy the million-row columns 20 times
        start = self.height if self._tail_start is None else self._tail_start
        frame = pl.concat([self.frame, new.drop(self._code_only)], how="vertical", rechunk=False)
        compact = self._appends + 1 > MAX_CHUNKS
        if compact:
            frame = _compacted(frame, start)
        grown._tail_start, grown._appends = start, 1 if compact else self._appends + 1
        grown.frame = frame
        grown.height = frame.height
        grown._codes, grown._dicts, grown._lower = {}, {}, {}
        grown._cache = OrderedDict()
        grown._cache_lock = threading.Lock()
        grown._code_only = self._code_only
        for column, d in self._dicts.items():
            fresh = new[column].drop_nulls().unique()
            fresh = fresh.filter(~fresh.is_in(d.values.implode())).sort()
            values = pl.concat([d.values, fresh]) if fresh.len() else d.values
            codes = _encode(new[column], values)
            grown._dicts[column] = _Dictionary(values, values.str.to_lowercase()) if fresh.len() else d
            grown._codes[column] = _appended(self._codes[column], codes, compact, start)
        for column, lowered in self._lower.items():
            added = new[column]
            if lowered is not None:
                grown._lower[column] = _appended(lowered, added.str.to_lowercase(), compact, start)
                continue
            grown._lower[column] = None if _all_lower(added) else frame[column].str.to_lowercase()
        return grown


def _all_lower(s: pl.Series, *, step: int = 1_000_000) -> bool:
    """Whether every value is already lower case (checked a slice at a time: a lowered copy
    of a 10M-row column is hundreds of megabytes)."""
    for start in range(0, s.len(), step):
        part = s.slice(start, step)
        if not bool((part == part.str.to_lowercase()).fill_null(True).all()):
            return False
    return True


def _appended(series: pl.Series, more: pl.Series, compact: bool, start: int) -> pl.Series:
    both = pl.concat([series, more], rechunk=False)
    return _compacted(both, start) if compact else both


def _compacted(data: Any, start: int) -> Any:
    """``data`` (a frame or a series) with its rows from ``start`` on in one chunk; the rows
    before keep their chunks (slices are views: only the appended tail is copied).

    >>> s = pl.concat([pl.Series([1, 2]), pl.Series([3]), pl.Series([4]), pl.Series([5])], rechunk=False)
    >>> c = _compacted(s, 2)
    >>> c.to_list(), s.n_chunks(), c.n_chunks()
    ([1, 2, 3, 4, 5], 4, 2)
    """
    return pl.concat([data.slice(0, start), data.slice(start).rechunk()], rechunk=False)


def in_time_order(frame: pl.DataFrame, *, step: int = 1_000_000) -> bool:
    """Whether the rows are ordered by (time, id), checked a million rows at a time (at once,
    the check's temporaries on 10M rows took 0.3 GB that the process then kept)."""
    in_order = (pl.col("time").diff() > pl.duration()) | (
        (pl.col("time").diff() == pl.duration()) & (pl.col("id") > pl.col("id").shift())
    )
    for start in range(0, max(frame.height - 1, 0), step):
        part = frame.select("time", "id").slice(start, step + 1)  # each pair once, across slices too
        if not part.select(in_order.slice(1).all()).item():
            return False
    return True


def _slices(s: pl.Series, step: int = 1_000_000) -> list[pl.Series]:
    return [s.slice(start, step) for start in range(0, s.len(), step)] or [s]


def _distinct(s: pl.Series) -> pl.Series:
    """The distinct non-null values, found a slice at a time."""
    return pl.concat([part.unique() for part in _slices(s)]).unique().drop_nulls()


def _encode(s: pl.Series, values: pl.Series) -> pl.Series:
    """Each value's position in ``values`` (null for null)."""
    return s.replace_strict(
        values, pl.int_range(values.len(), eager=True, dtype=pl.UInt32), default=None, return_dtype=pl.UInt32
    )

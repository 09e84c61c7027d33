"""Filter: one plain-data description of "which events", compiled to two engines.

A :class:`Filter` holds the period, types, users, results, search text and time zone.
It compiles to a polars expression (:meth:`Filter.expr`, :meth:`Filter.apply`) and to a
SQLAlchemy WHERE clause (:func:`sql_where`); a test runs both on the same data and requires
the same rows. :meth:`Filter.describe` writes the caption shown above the table and in the
export manifest from the same fields.

Examples
--------
>>> from datetime import datetime, timezone
>>> f = Filter(period="7d", types=("auth",), results=("failed",), query="user:root")
>>> f.describe(count=1204)
'1,204 events · auth · failed · last 7 days · matching user:root'
>>> now = datetime(2026, 3, 10, 12, 0, tzinfo=timezone.utc)
>>> [t.isoformat() for t in f.bounds(now=now)]
['2026-03-04T00:00:00+00:00', '2026-03-11T00:00:00+00:00']
"""

from __future__ import annotations

import ipaddress
import itertools
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property
from typing import Any, Literal, TypeGuard, TypeVar
from zoneinfo import ZoneInfo

import polars as pl
import sqlalchemy as sa
from sqlalchemy.sql.base import ReadOnlyColumnCollection

from audit_analytics.dates import MAX_YEAR, MIN_YEAR, in_date_range, parse_when, zone
from audit_analytics.errors import FilterError, QueryError
from audit_analytics.query import RESULT_ALIASES, Qualified, Query, parse, parse_date_value
from audit_analytics.schema import (
    PERMISSION,
    PERMISSION_ACTIONS,
    PERMISSION_CATEGORIES,
    RESULTS,
    SORTABLE_COLUMNS,
    TEXT_SEARCH_COLUMNS,
    TYPE_CHOICES,
    canonical_ip,
)

_Frame = TypeVar("_Frame", pl.DataFrame, pl.LazyFrame)

__all__ = [
    "Filter",
    "empty_range",
    "Period",
    "PERIODS",
    "Sort",
    "is_period",
    "sql_after",
    "sql_where",
    "sql_order_by",
    "zone",
]

Period = Literal["today", "7d", "30d", "all", "custom"]

PERIODS: dict[str, str] = {
    "today": "today",
    "7d": "last 7 days",
    "30d": "last 30 days",
    "all": "all time",
    "custom": "custom",
}


def is_period(value: object) -> TypeGuard[Period]:
    """Whether ``value`` names a period (a key of :data:`PERIODS`).

    >>> is_period("7d"), is_period("week"), is_period(None)
    (True, False, False)
    """
    return isinstance(value, str) and value in PERIODS


def _as_utc(value: date | datetime, tz: ZoneInfo) -> datetime:
    """A date means its midnight in ``tz``; a naive date-time is in ``tz``."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=tz)
        return value.astimezone(UTC)
    return datetime.combine(value, time(0), tzinfo=tz).astimezone(UTC)


def _end_as_utc(value: date | datetime, tz: ZoneInfo) -> datetime:
    """The instant an end excludes: an end date includes its whole day."""
    return _as_utc(value if isinstance(value, datetime) else value + timedelta(days=1), tz)


def empty_range(start: date | datetime, end: date | datetime, tz: str = "UTC") -> bool:
    """Whether nothing lies from ``start`` to ``end`` (an end date included), in ``tz``.

    >>> empty_range(date(2026, 3, 2), date(2026, 3, 1)), empty_range(date(2026, 3, 1), date(2026, 3, 1))
    (True, False)
    """
    return _as_utc(start, zone(tz)) >= _end_as_utc(end, zone(tz))


def _lower(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


def _result(value: object) -> object:
    return RESULT_ALIASES.get(value.lower(), value.lower()) if isinstance(value, str) else value


def _as_day_or_instant(name: str, value: object) -> date | datetime | None:
    """A start or end as given: a date, a date-time, or the same as text, read as the command
    line reads ``--from`` (:func:`~audit_analytics.dates.parse_when`)."""
    if value is None or isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return parse_when(value)
        except ValueError as exc:
            raise FilterError(f"{name} {exc}") from None
    raise FilterError(f"{name} {value!r} is not a date (e.g. 2026-03-01) or a date-time")


@dataclass(frozen=True, slots=True)
class Sort:
    """Order of a result: a sortable column and its direction. Ties break on time (newest
    first), then ``id``."""

    column: str = "time"
    descending: bool = True

    def __post_init__(self) -> None:
        if self.column not in SORTABLE_COLUMNS:
            raise FilterError(f"cannot sort by {self.column!r}; sortable: {', '.join(SORTABLE_COLUMNS)}")


@dataclass(frozen=True)
class Filter:
    """Which events: period, categories, users, results and a search, in a time zone.

    Parameters
    ----------
    period
        ``today``, ``7d`` (today and the 6 days before), ``30d``, ``all``, or ``custom``.
        Days are computed in ``tz``.
    start, end
        For ``custom`` (or to narrow any period): dates are whole days in ``tz`` and the end
        date is included; date-times are exact instants (``end`` excluded).
    types, users, results
        Empty means "all". ``users`` match the username or the email, case-insensitively;
        types and results are read in any case, results with the search language's aliases
        (``success``, ``failure``, ``error``).
    query
        Search text in the language of :mod:`audit_analytics.query`.
    tz
        IANA time zone in which the period's days are counted.

    Examples
    --------
    >>> import polars as pl
    >>> from audit_analytics.demo.generate import generate
    >>> frame = generate(1_000, seed=1).events
    >>> Filter(types=("auth",)).apply(frame)["type"].unique().to_list()
    ['auth']
    """

    period: Period = "all"
    start: date | datetime | None = None
    end: date | datetime | None = None
    types: tuple[str, ...] = ()
    users: tuple[str, ...] = ()
    results: tuple[str, ...] = ()
    query: str = ""
    tz: str = "UTC"
    _parsed: Query = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        if self.period not in PERIODS:
            raise FilterError(f"unknown period {self.period!r}; periods: {', '.join(PERIODS)}")
        for name in ("types", "users", "results"):
            value = getattr(self, name)
            if isinstance(value, str):
                value = (value,)
            object.__setattr__(self, name, tuple(value))
        # as the search language reads them: any case, and a result's aliases (success, error)
        object.__setattr__(self, "types", tuple(_lower(t) for t in self.types))
        object.__setattr__(self, "results", tuple(_result(r) for r in self.results))
        bad = [t for t in self.types if t not in TYPE_CHOICES]
        if bad:
            raise FilterError(f"unknown type {bad[0]!r}; types: {', '.join(TYPE_CHOICES)}")
        bad = [r for r in self.results if r not in RESULTS]
        if bad:
            raise FilterError(f"unknown result {bad[0]!r}; results: {', '.join(RESULTS)}")
        for name in ("start", "end"):
            value = _as_day_or_instant(name, getattr(self, name))
            object.__setattr__(self, name, value)
            if isinstance(value, date) and not in_date_range(value):
                raise FilterError(
                    f"{name} {value.isoformat()} is out of range; use a year from {MIN_YEAR} to {MAX_YEAR}"
                )
        try:
            zone(self.tz)
        except ValueError as exc:
            raise FilterError(str(exc)) from None
        if self.start is not None and self.end is not None and empty_range(self.start, self.end, self.tz):
            raise FilterError(
                f"the end ({self.end.isoformat()}) is before the start ({self.start.isoformat()}): "
                "nothing lies between them (an end date is included)"
            )
        object.__setattr__(self, "_parsed", parse(self.query or ""))

    # -- plain data helpers -------------------------------------------------------------
    def replace(self, **changes: object) -> Filter:
        return replace(self, **changes)  # type: ignore[arg-type]

    def with_history(
        self, lookback: timedelta, *, now: datetime | None = None
    ) -> tuple[Filter, datetime | None]:
        """This filter reaching ``lookback`` further back, and where its own period starts
        (``None`` when it has no start: the history is already in it). For detections that
        learn an actor's habits from the time before each event.

        >>> from datetime import timedelta
        >>> wide, since = Filter(period="custom", start=date(2026, 3, 10), end=date(2026, 3, 10)).with_history(timedelta(days=30))
        >>> wide.bounds()[0].isoformat(), since.isoformat()
        ('2026-02-08T00:00:00+00:00', '2026-03-10T00:00:00+00:00')
        """
        lo, hi = self.bounds(now=now)
        if lo is None:
            return self, None
        tz = self.zoneinfo
        wide = self.replace(
            period="custom", start=(lo - lookback).astimezone(tz), end=hi.astimezone(tz) if hi else None
        )
        return wide, lo

    @property
    def parsed(self) -> Query:
        return self._parsed

    @cached_property
    def zoneinfo(self) -> ZoneInfo:
        return zone(self.tz)

    def bounds(self, *, now: datetime | None = None) -> tuple[datetime | None, datetime | None]:
        """The half-open instant range ``[start, end)`` in UTC, ``None`` for open ends."""
        tz = zone(self.tz)
        now = (now or datetime.now(UTC)).astimezone(tz)
        today = now.date()
        lo: datetime | None = None
        hi: datetime | None = None
        if self.period == "today":
            lo, hi = _as_utc(today, tz), _as_utc(today + timedelta(days=1), tz)
        elif self.period in ("7d", "30d"):
            days = 7 if self.period == "7d" else 30
            lo = _as_utc(today - timedelta(days=days - 1), tz)
            hi = _as_utc(today + timedelta(days=1), tz)
        if self.start is not None:
            s = _as_utc(self.start, tz)
            lo = s if lo is None else max(lo, s)
        if self.end is not None:
            e = _end_as_utc(self.end, tz)
            hi = e if hi is None else min(hi, e)
        return lo, hi

    def _query_bounds(self) -> list[tuple[str, datetime]]:
        """after:/before: qualifiers as (op, instant) pairs; negated ones flip."""
        tz = zone(self.tz)
        out = []
        for term in self.parsed.qualified:
            if term.field not in ("after", "before"):
                continue
            instant = _as_utc(parse_date_value(term.value), tz)
            ge = term.field == "after"
            if term.negated:
                ge = not ge
            out.append((">=" if ge else "<", instant))
        return out

    # -- caption -------------------------------------------------------------------------
    def _when(self, value: date | datetime) -> str:
        """A bound as a reader writes it: a date, or an instant in the shown zone to the minute
        (seconds and the fraction of a second when it has them, without trailing zeros:
        ``08:48:39.473``, exact all the same), never ISO's ``T`` and offset (a chart's
        click-through bucket read "from 2026-11-26T00:00:00+00:00")."""
        if not isinstance(value, datetime):
            return value.isoformat()
        local = value.astimezone(zone(self.tz)) if value.tzinfo else value
        text = f"{local:%Y-%m-%d %H:%M}"
        if local.second or local.microsecond:
            text += f":{local:%S}" + (f".{local:%f}".rstrip("0") if local.microsecond else "")
        return text

    def describe(self, *, count: int | None = None) -> str:
        """The caption: what is shown, in words, built from the same fields as the query.

        >>> Filter(period="custom", start=date(2026, 1, 1), end=date(2026, 1, 31)).describe()
        'events · from 2026-01-01 to 2026-01-31'
        >>> Filter(period="custom", start=datetime(2026, 1, 1, 9, tzinfo=UTC), end=datetime(2026, 1, 1, 10, tzinfo=UTC)).describe()
        'events · from 2026-01-01 09:00 to 2026-01-01 10:00'
        """
        parts = [f"{count:,} event{'s' if count != 1 else ''}" if count is not None else "events"]
        if self.types:
            parts.append(", ".join(self.types))
        if self.users:
            parts.append("by " + ", ".join(self.users))
        if self.results:
            parts.append(" or ".join(self.results))
        if self.period == "custom" or self.start is not None or self.end is not None:
            s = self._when(self.start) if self.start is not None else "the beginning"
            e = self._when(self.end) if self.end is not None else "now"
            if self.period not in ("custom", "all"):
                parts.append(PERIODS[self.period])
            parts.append(f"from {s} to {e}")
        else:
            parts.append(PERIODS[self.period])
        if self.parsed:
            parts.append(f"matching {self.parsed}")
        if self.tz != "UTC":
            parts.append(f"days in {self.tz}")
        return " · ".join(parts)

    def as_params(self) -> dict[str, str]:
        """Every filter value as text (for the export manifest and audit events)."""
        return {
            "period": self.period,
            "start": self.start.isoformat() if self.start is not None else "",
            "end": self.end.isoformat() if self.end is not None else "",
            "types": ",".join(self.types),
            "users": ",".join(self.users),
            "results": ",".join(self.results),
            "query": self.query,
            "tz": self.tz,
        }

    # -- polars --------------------------------------------------------------------------
    def expr(
        self,
        *,
        now: datetime | None = None,
        ips: list[str] | None = None,
        distinct: Mapping[str, pl.Series] | None = None,
    ) -> pl.Expr:
        """The filter as one polars boolean expression over an event frame.

        ``ips``, the frame's distinct addresses, lets an ``ip:`` CIDR term become a plain
        membership test; without it the term checks each batch's addresses in a Python
        callback (the lazy archive scan). ``distinct`` (column -> the frame's distinct values
        of that text column, :func:`distinct_text`) lets a free word be matched against each
        value once and the rows be found by membership."""
        conds: list[pl.Expr] = []
        lo, hi = self.bounds(now=now)
        if lo is not None:
            conds.append(pl.col("time") >= lo)
        if hi is not None:
            conds.append(pl.col("time") < hi)
        for op, instant in self._query_bounds():
            conds.append(pl.col("time") >= instant if op == ">=" else pl.col("time") < instant)
        if self.types:
            conds.append(polars_types(self.types))
        if self.results:
            conds.append(pl.col("result").is_in(list(self.results)))
        if self.users:
            wanted = [u.lower() for u in self.users]
            conds.append(
                (
                    pl.col("actor").str.to_lowercase().is_in(wanted)
                    | pl.col("email").str.to_lowercase().is_in(wanted)
                ).fill_null(False)
            )
        conds.extend(_polars_query(self.parsed, ips, distinct))
        if not conds:
            return pl.lit(True)
        return pl.all_horizontal(conds)

    def apply(self, frame: _Frame, *, now: datetime | None = None) -> _Frame:
        """Rows of ``frame`` that pass the filter (same kind of frame back)."""
        ips = None
        distinct = None
        if isinstance(frame, pl.DataFrame):
            if any(t.network is not None for t in self.parsed.qualified):
                ips = frame["ip"].unique().to_list()
            if self.parsed.words:
                distinct = distinct_text(frame)
        names = frame.columns if isinstance(frame, pl.DataFrame) else frame.collect_schema().names()
        missing = [c for c in TEXT_SEARCH_COLUMNS if c not in names] if self.parsed.words else []
        if missing:  # a frame without some text column (a notebook's own): nothing to find there
            blank = [pl.lit(None, pl.String).alias(c) for c in missing]
            return (
                frame.with_columns(blank).filter(self.expr(now=now, ips=ips, distinct=distinct)).drop(missing)
            )
        return frame.filter(self.expr(now=now, ips=ips, distinct=distinct))


# ---------------------------------------------------------------------------------------
# search terms -> polars


def wildcard_regex(value: str) -> str:
    return "(?s)^" + ".*".join(re.escape(p) for p in value.lower().split("*")) + "$"


def _polars_field_match(column: str, value: str) -> pl.Expr:
    col = pl.col(column)
    if column in ("type", "result"):
        col = col.cast(pl.String)
    lowered = col.str.to_lowercase()
    if "*" in value:
        return lowered.str.contains(wildcard_regex(value))
    return lowered == value.lower()


def ip_matches(
    values: Iterable[str | None], network: ipaddress.IPv4Network | ipaddress.IPv6Network
) -> list[str]:
    """The distinct values that are addresses inside ``network`` (an IPv4 address stored
    as IPv6, ``::ffff:c0a8:101``, by its IPv4 address: :func:`schema.canonical_ip`)."""
    out = []
    for v in set(values):
        if not v:
            continue
        try:
            if ipaddress.ip_address(canonical_ip(v)) in network:
                out.append(v)
        except ValueError:
            continue
    return out


def _polars_cidr(
    network: ipaddress.IPv4Network | ipaddress.IPv6Network, ips: list[str] | None = None
) -> pl.Expr:
    # Check each distinct address once in Python; rows then match by membership. With the
    # addresses known up front no Python callback runs inside polars: a callback needs the
    # GIL on polars' worker threads, and another thread holding the GIL while it waits on
    # those workers (DataFrame.to_pandas does) deadlocks the process (seen under load).
    if ips is not None:
        return pl.col("ip").is_in(ip_matches(ips, network)).fill_null(False)

    def _in(s: pl.Series) -> pl.Series:
        return s.is_in(ip_matches(s.unique().to_list(), network)).fill_null(False)

    return pl.col("ip").map_batches(_in, return_dtype=pl.Boolean)


def is_permission_change(actions: Callable[[list[str]], pl.Expr] | None = None) -> pl.Expr:
    """A role or permission change (:data:`audit_analytics.schema.PERMISSION`): the one
    definition the Type filter, ``type:permission`` and the Permission changes detection use.
    ``actions(values)`` tests the action column against values (an engine may test codes)."""
    in_actions = actions or (lambda values: pl.col("action").is_in(values))
    return (
        pl.col("type").cast(pl.String).is_in(list(PERMISSION_CATEGORIES))
        & in_actions(sorted(PERMISSION_ACTIONS))
    ).fill_null(False)


def polars_types(types: Sequence[str], actions: Callable[[list[str]], pl.Expr] | None = None) -> pl.Expr:
    """The Type filter in polars: any of the categories in ``types``, or a permission change
    when ``types`` holds ``permission``."""
    categories = [t for t in types if t != PERMISSION]
    parts = [pl.col("type").is_in(categories)] if categories else []
    if PERMISSION in types:
        parts.append(is_permission_change(actions))
    return pl.any_horizontal(parts)


def sql_types(
    types: Sequence[str], c: ReadOnlyColumnCollection[str, sa.Column[Any]]
) -> sa.ColumnElement[bool]:
    """The Type filter in SQL (as :func:`polars_types`)."""
    categories = [t for t in types if t != PERMISSION]
    parts: list[sa.ColumnElement[bool]] = [c.type.in_(categories)] if categories else []
    if PERMISSION in types:
        parts.append(
            sa.and_(c.type.in_(list(PERMISSION_CATEGORIES)), c.action.in_(sorted(PERMISSION_ACTIONS)))
        )
    return sa.or_(*parts)


def polars_term(term: Qualified, ips: list[str] | None = None) -> pl.Expr:
    f, v = term.field, term.value
    if f == "type" and v == PERMISSION:
        return is_permission_change()
    if f == "user":
        return _polars_field_match("actor", v) | _polars_field_match("email", v)
    if f == "ip":
        net = term.network
        if net is not None:
            return _polars_cidr(net, ips)
        return _polars_field_match("ip", v)
    return _polars_field_match(f, v)


# Characters outside ASCII whose lowercase (polars' ``str.to_lowercase``, Rust's Unicode
# tables) holds an ASCII character: KELVIN SIGN -> "k", and LATIN CAPITAL LETTER I WITH DOT
# ABOVE -> "i" + U+0307 (so it gives an ASCII "i" only as the last character of a match).
# tests/test_filter_apply_fast.py checks this list against polars over every code point.
ASCII_FROM_NON_ASCII: dict[str, str] = {"k": "\u212a"}
ASCII_FROM_NON_ASCII_LAST: dict[str, str] = {"i": "\u0130"}
MAX_ASCII_NEEDLES = 64


def ascii_needles(needle: str) -> list[str] | None:
    r"""Patterns that find ``needle`` in a value's lowercase by ASCII case-insensitive search
    of the value itself, or ``None`` when there is no such short list.

    ``needle`` is lower case (``str.lower()`` of the search word). For an ASCII needle, the
    Unicode lowercase of a value contains it exactly when the value contains one of these
    patterns, ASCII letters compared case-insensitively: ASCII letters lower to ASCII letters,
    other characters lower to non-ASCII text except the two in :data:`ASCII_FROM_NON_ASCII`
    and :data:`ASCII_FROM_NON_ASCII_LAST`, which the patterns spell out.

    >>> print(ascii(ascii_needles("tokyo")))
    ['tokyo', 'to\u212ayo']
    >>> print(ascii(ascii_needles("wifi")))
    ['wifi', 'wif\u0130']
    >>> ascii_needles("straße") is None, ascii_needles("") is None
    (True, True)
    """
    if not needle or not needle.isascii() or needle != needle.lower():
        return None
    options: list[list[str]] = []
    for position, char in enumerate(needle):
        alternatives = [char]
        if char in ASCII_FROM_NON_ASCII:
            alternatives.append(ASCII_FROM_NON_ASCII[char])
        if position == len(needle) - 1 and char in ASCII_FROM_NON_ASCII_LAST:
            alternatives.append(ASCII_FROM_NON_ASCII_LAST[char])
        options.append(alternatives)
    count = 1
    for alternatives in options:
        count *= len(alternatives)
    if count > MAX_ASCII_NEEDLES:
        return None
    return ["".join(p) for p in itertools.product(*options)]


def text_contains_unicode(column: str, needle: str) -> pl.Expr:
    """The definition of a free word's match: the column's Unicode lowercase contains
    ``needle`` (already lower case); a missing value never matches."""
    return pl.col(column).str.to_lowercase().str.contains(needle, literal=True).fill_null(False)


def text_contains(column: str, needle: str) -> pl.Expr:
    """Same rows as :func:`text_contains_unicode`, without lower-casing the column when the
    needle allows: an ASCII needle is searched ASCII-case-insensitively in the raw text (one
    pass, no lower-cased copy), with the non-ASCII spellings from :func:`ascii_needles`."""
    patterns = ascii_needles(needle)
    if patterns is None:
        return text_contains_unicode(column, needle)
    if patterns == [needle] and not any(c.isalpha() for c in needle):
        # no letter: case plays no part, and a plain substring search is faster
        return pl.col(column).str.contains(needle, literal=True).fill_null(False)
    return pl.col(column).str.contains_any(patterns, ascii_case_insensitive=True).fill_null(False)


DISTINCT_SAMPLE = 4096
"""Rows sampled (evenly spaced) to guess whether a text column's values repeat."""
DISTINCT_RATIO = 8
"""A column counts as repetitive when its sample has at most 1/8 as many distinct values as
rows; its distinct values are then kept only if they are at most 1/8 of all rows."""


def distinct_text(frame: pl.DataFrame) -> dict[str, pl.Series]:
    """The distinct values of the free-text columns whose values repeat (actor, email, action,
    target and ip in an audit log, typically a few hundred values in a million rows).

    Matching a word against each distinct value once and then finding the rows by membership
    costs two hash passes instead of a search of every row. Which columns qualify is a guess
    from a sample; it changes only the speed, never the rows (the distinct values are matched
    by :func:`text_contains`, the same rule as the rows)."""
    if frame.height < 4 * DISTINCT_SAMPLE:
        return {}
    columns = [c for c in TEXT_SEARCH_COLUMNS if frame.schema.get(c) == pl.String]
    if not columns:
        return {}
    sample = frame.select(columns).gather_every(frame.height // DISTINCT_SAMPLE)
    counts = sample.select(pl.all().n_unique()).row(0)
    repetitive = [c for c, n in zip(columns, counts, strict=True) if n * DISTINCT_RATIO <= sample.height]
    if not repetitive:
        return {}
    # all columns at once: polars computes them in parallel
    lists = frame.select(pl.col(c).unique().implode() for c in repetitive)
    out = {}
    for c in repetitive:
        values = lists[c][0]
        if values.len() * DISTINCT_RATIO <= frame.height:
            out[c] = values.alias(c)
    return out


def _word_hit(column: str, needle: str, distinct: Mapping[str, pl.Series] | None) -> pl.Expr:
    values = distinct.get(column) if distinct else None
    if values is None:
        return text_contains(column, needle)
    hits = values.to_frame(column).filter(text_contains(column, needle)).to_series()
    if hits.is_empty():
        return pl.lit(False)
    return pl.col(column).is_in(hits).fill_null(False)


def _polars_query(
    query: Query, ips: list[str] | None = None, distinct: Mapping[str, pl.Series] | None = None
) -> list[pl.Expr]:
    conds: list[pl.Expr] = []
    for word in query.words:
        needle = word.text.lower()
        hit = pl.any_horizontal([_word_hit(c, needle, distinct) for c in TEXT_SEARCH_COLUMNS])
        conds.append(~hit if word.negated else hit)
    for terms in _group(query).values():
        pos = [t for t in terms if not t.negated]
        neg = [t for t in terms if t.negated]
        if pos:
            conds.append(pl.any_horizontal([polars_term(t, ips).fill_null(False) for t in pos]))
        for t in neg:
            conds.append(~polars_term(t, ips).fill_null(False))
    return conds


def _group(query: Query) -> dict[str, list[Qualified]]:
    groups: dict[str, list[Qualified]] = {}
    for term in query.qualified:
        if term.field in ("after", "before"):
            continue
        groups.setdefault(term.field, []).append(term)
    return groups


# ---------------------------------------------------------------------------------------
# the same filter -> SQL (SQLAlchemy Core, values always bound)


def _like_pattern(value: str, *, substring: bool) -> str:
    escaped = value.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    escaped = escaped.replace("*", "%") if not substring else escaped
    return f"%{escaped}%" if substring else escaped


def _sql_lower(col: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    return sa.func.lower(col)


def _sql_field_match(col: sa.ColumnElement[Any], value: str) -> sa.ColumnElement[bool]:
    lowered = _sql_lower(col)
    cond: sa.ColumnElement[bool]
    if "*" in value:
        cond = lowered.like(_like_pattern(value, substring=False), escape="\\")
    else:
        cond = lowered == value.lower()
    # null-safe: a missing value never matches, so its negation keeps the row
    return sa.and_(col.is_not(None), cond)


def sql_where(
    flt: Filter,
    table: sa.Table,
    *,
    now: datetime | None = None,
    distinct_ips: Callable[[], Sequence[str]] | None = None,
) -> sa.ColumnElement[bool]:
    """The filter as a SQLAlchemy WHERE clause on ``table`` (values bound, never inlined).

    ``distinct_ips`` returns the table's distinct IP values; it is called only for ``ip:``
    CIDR terms, which then match by membership exactly as the polars engine does.
    """
    c = table.c
    conds: list[sa.ColumnElement[bool]] = []
    lo, hi = flt.bounds(now=now)
    if lo is not None:
        conds.append(c.time >= lo)
    if hi is not None:
        conds.append(c.time < hi)
    for op, instant in flt._query_bounds():
        conds.append(c.time >= instant if op == ">=" else c.time < instant)
    if flt.types:
        conds.append(sql_types(flt.types, c))
    if flt.results:
        conds.append(c.result.in_(list(flt.results)))
    if flt.users:
        wanted = [u.lower() for u in flt.users]
        conds.append(
            sa.or_(
                sa.and_(c.actor.is_not(None), _sql_lower(c.actor).in_(wanted)),
                sa.and_(c.email.is_not(None), _sql_lower(c.email).in_(wanted)),
            )
        )
    query = flt.parsed
    for word in query.words:
        pattern = _like_pattern(word.text, substring=True)
        hit = sa.or_(
            *[
                sa.and_(c[col].is_not(None), _sql_lower(c[col]).like(pattern, escape="\\"))
                for col in TEXT_SEARCH_COLUMNS
            ]
        )
        conds.append(sa.not_(hit) if word.negated else hit)
    for terms in _group(query).values():
        pos = [_sql_term(t, c, distinct_ips) for t in terms if not t.negated]
        if pos:
            conds.append(sa.or_(*pos))
        for t in terms:
            if t.negated:
                conds.append(sa.not_(_sql_term(t, c, distinct_ips)))
    if not conds:
        return sa.true()
    return sa.and_(*conds)


def _sql_term(
    term: Qualified,
    c: ReadOnlyColumnCollection[str, sa.Column[Any]],
    distinct_ips: Callable[[], Sequence[str]] | None,
) -> sa.ColumnElement[bool]:
    f, v = term.field, term.value
    if f == "type" and v == PERMISSION:
        return sql_types((PERMISSION,), c)
    if f == "user":
        return sa.or_(_sql_field_match(c.actor, v), _sql_field_match(c.email, v))
    if f == "ip":
        net = term.network
        if net is not None:
            if distinct_ips is None:
                raise QueryError("ip: with a CIDR block needs the store's address list", position=1)
            matches = ip_matches(distinct_ips(), net)
            if not matches:
                return sa.false()
            return sa.and_(c.ip.is_not(None), c.ip.in_(matches))
        return _sql_field_match(c.ip, v)
    return _sql_field_match(c[f], v)


def sql_order_by(table: sa.Table, sort: Sort) -> list[sa.ColumnElement[Any]]:
    """ORDER BY for a sort, nulls last either way, ties broken by time (newest first) and id
    (stable pages): one actor's events stay in time order."""
    col = table.c[sort.column]
    key = sa.func.lower(col) if sort.column in ("actor", "target", "action") else col
    # a NOT NULL column needs no nulls-last key, and without one an index on the column
    # serves the page (PostgreSQL at 10M rows: the newest 100 in 4 ms instead of 5.6 s)
    nulls = [col.is_(None)] if col.nullable else []
    if sort.column != "time":
        return [*nulls, key.desc() if sort.descending else key.asc(), table.c.time.desc(), table.c.id.desc()]
    if sort.descending:
        return [*nulls, key.desc(), table.c.id.desc()]
    return [*nulls, key.asc(), table.c.id.asc()]


def sql_after(table: sa.Table, sort: Sort, last: Mapping[str, Any]) -> sa.ColumnElement[bool]:
    """The rows :func:`sql_order_by` puts after ``last`` (a row with the sort column, ``time``
    and ``id``): with ``ORDER BY`` and ``LIMIT``, the next page of a keyset walk, which reads
    no more than a page however far into the result it is.

    The database compares the sort key as it orders it (``lower()`` of the row's own value),
    and a walk in time order bounds ``time`` by itself, so the time index serves every page.
    """
    time, ident = table.c.time, table.c.id
    ascending = not sort.descending if sort.column == "time" else False  # ties: newest first

    def beyond(column: sa.ColumnElement[Any], value: object, forward: bool) -> sa.ColumnElement[bool]:
        return column > value if forward else column < value

    tie = sa.or_(
        beyond(time, last["time"], ascending),
        sa.and_(time == last["time"], beyond(ident, last["id"], ascending)),
    )
    if sort.column == "time":
        return sa.and_(time >= last["time"] if ascending else time <= last["time"], tie)
    col = table.c[sort.column]
    value = last[sort.column]
    if value is None:  # nulls come last in either direction; among them, by time and id
        return sa.and_(col.is_(None), tie)
    lowered = sort.column in ("actor", "target", "action")
    key = sa.func.lower(col) if lowered else col
    bound = sa.func.lower(sa.literal(value, col.type)) if lowered else sa.literal(value, col.type)
    after = sa.or_(beyond(key, bound, not sort.descending), sa.and_(key == bound, tie))
    return sa.or_(col.is_(None), after) if col.nullable else after


def polars_sort(frame: _Frame, sort: Sort) -> _Frame:
    """Sort a frame exactly as :func:`sql_order_by` orders the SQL result."""
    col = pl.col(sort.column)
    if sort.column in ("actor", "target", "action"):
        key = col.str.to_lowercase()
    elif sort.column in ("type", "result"):
        key = col.cast(pl.String)
    else:
        key = col
    if sort.column != "time":  # ties: newest first, as sql_order_by
        return frame.sort(
            [col.is_null(), key, pl.col("time"), pl.col("id")],
            descending=[False, sort.descending, True, True],
            nulls_last=True,
            maintain_order=True,
        )
    return frame.sort(
        [col.is_null(), key, pl.col("id")],
        descending=[False, sort.descending, sort.descending],
        nulls_last=True,
        maintain_order=True,
    )

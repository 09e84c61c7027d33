"""What a page shows, as plain data: the View (filter + sort + page) and its URL form.

A :class:`View` round-trips through URL query parameters, so copying the address shares the
exact view; the security and activity pages link into the explorer with :func:`explorer_link`.
Nothing here imports streamlit.

Examples
--------
>>> v = View(filter=Filter(period="7d", types=("auth",), query="user:root"), page=3)
>>> params = v.to_params()
>>> params
{'type': 'auth', 'q': 'user:root', 'page': '3'}
>>> View.from_params(params) == v
True
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import polars as pl

from audit_analytics.dates import parse_when
from audit_analytics.filters import PERIODS, Filter, Period, Sort, empty_range, is_period
from audit_analytics.query import parse
from audit_analytics.schema import PERMISSION, RESULTS, SORTABLE_COLUMNS, TYPE_CHOICES

if TYPE_CHECKING:
    from audit_analytics.engines.contract import AuditEngine, Selected

PAGE_SIZES = (50, 100, 250, 500)
DEFAULT_PERIOD: Period = "7d"


@dataclass(frozen=True)
class View:
    """The explorer's whole state. Defaults are the explorer's opening view."""

    filter: Filter = field(default_factory=lambda: Filter(period=DEFAULT_PERIOD))
    sort: Sort = field(default_factory=Sort)
    page: int = 1
    page_size: int = 100
    event: str | None = None
    utc: bool = False
    archive: bool = False  # also show events moved to the retention archive

    def replace(self, **changes: Any) -> View:
        return replace(self, **changes)

    def to_params(self) -> dict[str, str]:
        """Only what differs from the defaults, so links stay short.

        Users go as ``a,b``, or as a JSON list when that form would not read back as is:

        >>> View(filter=Filter(users=("alice", "bob"))).to_params()["user"]
        'alice,bob'
        >>> [View.from_params(View(filter=Filter(users=u)).to_params()).filter.users == u
        ...  for u in [("[ops]",), ("a,b", "c"), (" pad",)]]
        [True, True, True]
        """
        f = self.filter
        out: dict[str, str] = {}
        if f.period != DEFAULT_PERIOD:
            out["period"] = f.period
        if f.start is not None:
            out["from"] = f.start.isoformat()
        if f.end is not None:
            out["to"] = f.end.isoformat()
        if f.types:
            out["type"] = ",".join(f.types)
        if f.users:
            # a list that the plain comma form would not give back as it is goes as JSON
            plain = all("," not in u and u == u.strip() and not u.startswith("[") for u in f.users)
            out["user"] = ",".join(f.users) if plain else json.dumps(list(f.users))
        if f.results:
            out["result"] = ",".join(f.results)
        if f.query:
            out["q"] = f.query
        if self.sort != Sort():
            out["sort"] = ("-" if self.sort.descending else "") + self.sort.column
        if self.page != 1:
            out["page"] = str(self.page)
        if self.page_size != 100:
            out["size"] = str(self.page_size)
        if self.event:
            out["event"] = self.event
        if self.utc:
            out["utc"] = "1"
        if self.archive:
            out["archive"] = "1"
        return out

    @classmethod
    def from_params(
        cls, params: Mapping[str, str | list[str]], *, tz: str = "UTC", notes: list[str] | None = None
    ) -> View:
        """Read a view from URL parameters; anything unreadable falls back to its default
        (a shared link must never crash the page), and ``notes`` (when given) receives a
        sentence for each value left out, for the page to show: a link that silently became
        another view ("from 5 December to now" for a To before its From) misleads its reader.

        >>> notes = []
        >>> v = View.from_params({"period": "custom", "from": "0001-01-01", "to": "2026-01-31",
        ...                       "user": "[" * 5_000, "q": "ip:999.1.1.1"}, notes=notes)
        >>> v.filter.start, v.filter.end, v.filter.users, v.filter.query
        (None, datetime.date(2026, 1, 31), (), '')
        >>> notes
        ["The link's From '0001-01-01' is not a date from 1000 to 9998: it was left out."]
        """
        said = notes if notes is not None else []

        def get(name: str) -> str:
            value = params.get(name, "")
            if isinstance(value, list):
                value = value[-1] if value else ""
            return str(value).strip()

        def csv_list(name: str, allowed: Collection[str] | None = None) -> tuple[str, ...]:
            raw = get(name)
            if not raw:
                return ()
            if raw.startswith("["):
                try:
                    items = [str(x) for x in json.loads(raw)]
                except (ValueError, TypeError, RecursionError):  # "[[[[…" nested past the limit
                    items = []
            else:
                items = [x.strip() for x in raw.split(",")]
            unknown = [x for x in items if x and allowed is not None and x not in allowed]
            if unknown:
                said.append(
                    f"The link's {name} {', '.join(map(repr, unknown))} is not one of its choices: left out."
                )
            items = [x for x in items if x and (allowed is None or x in allowed)]
            return tuple(dict.fromkeys(items))

        asked = get("period")
        period: Period = asked if is_period(asked) else DEFAULT_PERIOD
        if asked and not is_period(asked):
            said.append(
                f"The link's period {asked!r} is not one of {', '.join(PERIODS)}: showing the "
                f"{PERIODS[DEFAULT_PERIOD]}."
            )
        start = _parse_when(get("from"))
        end = _parse_when(get("to"))
        for name, text, value in (("From", get("from"), start), ("To", get("to"), end)):
            if text and value is None:
                said.append(f"The link's {name} {text!r} is not a date from 1000 to 9998: it was left out.")
        utc = get("utc") in ("1", "true", "yes")
        if start is not None and end is not None and empty_range(start, end, "UTC" if utc else tz):
            # a link with the end before the start (typed by hand): the end is dropped, and said
            said.append(
                f"The link's To ({get('to')}) is not after its From ({get('from')}): the To was left out."
            )
            end = None
        flt = Filter(
            period=period,
            start=start,
            end=end,
            types=csv_list("type", TYPE_CHOICES),
            users=csv_list("user"),
            results=csv_list("result", RESULTS),
            tz="UTC" if utc else tz,
        )
        # a query that does not parse (a link from before the language changed) is dropped;
        # the View cannot hold it, as a Filter only holds searches it can run
        query = get("q")
        try:
            flt = flt.replace(query=query)
        except ValueError:
            pass
        sort_text = get("sort")
        sort = Sort()
        if sort_text:
            descending = sort_text.startswith("-")
            column = sort_text.lstrip("-")
            if column in SORTABLE_COLUMNS:
                sort = Sort(column, descending)
        return cls(
            filter=flt,
            sort=sort,
            page=max(_int(get("page"), 1), 1),
            page_size=_int(get("size"), 100) if _int(get("size"), 100) in PAGE_SIZES else 100,
            event=get("event") or None,
            utc=utc,
            archive=get("archive") in ("1", "true", "yes"),
        )


def _int(text: str, default: int) -> int:
    try:
        return int(text)
    except ValueError:
        return default


def _parse_when(text: str) -> date | datetime | None:
    """A ``from``/``to`` value, or None when it is not a date a filter can hold."""
    if not text:
        return None
    try:
        return parse_when(text)
    except ValueError:
        return None


def explorer_link(view: View | None = None, **filter_changes: Any) -> str:
    """A relative URL that opens the explorer on ``view`` (with ``filter_changes`` applied).

    >>> explorer_link(period="all", types=("auth",), query="ip:10.0.0.1")
    './?period=all&type=auth&q=ip%3A10.0.0.1'

    The explorer is the app's default page, so it lives at the root path.
    """
    view = view or View()
    if filter_changes:
        view = view.replace(filter=view.filter.replace(**filter_changes), page=1, event=None)
    params = view.to_params()
    return "./" + ("?" + urlencode(params) if params else "")


# ---------------------------------------------------------------------------------------
# evaluating a view on an in-memory frame


@dataclass(frozen=True)
class ResultPage:
    """One page of a filtered, sorted result and where it sits in the whole."""

    total: int
    page: int
    pages: int
    page_size: int
    rows: pl.DataFrame

    @property
    def first_row(self) -> int:
        return 0 if self.total == 0 else (self.page - 1) * self.page_size + 1

    @property
    def last_row(self) -> int:
        return min(self.page * self.page_size, self.total)


def page_of_selection(index: AuditEngine, selection: Selected, page: int, page_size: int) -> ResultPage:
    """One page of an :class:`~audit_analytics.engines.memory.EventIndex` selection."""
    total = selection.total
    pages = max((total + page_size - 1) // page_size, 1)
    page = min(max(page, 1), pages)
    rows = index.rows(selection, (page - 1) * page_size, page_size)
    return ResultPage(total, page, pages, page_size, rows)


def related_events(
    frame: pl.DataFrame, event: Mapping[str, Any], *, minutes: int = 10
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(same request_id, same actor within ``minutes`` either side), both oldest first, the
    event itself excluded."""
    others = frame.filter(pl.col("id") != event["id"])
    if event.get("request_id"):
        same_request = others.filter(pl.col("request_id") == event["request_id"])
    else:
        same_request = others.clear()
    if event.get("actor"):
        t = event["time"]
        window = timedelta(minutes=minutes)
        same_actor = others.filter(
            (pl.col("actor") == event["actor"]) & pl.col("time").is_between(t - window, t + window)
        )
    else:
        same_actor = others.clear()
    return same_request.sort("time", "id"), same_actor.sort("time", "id")


PRESETS: dict[str, tuple[dict[str, tuple[str, ...]], str]] = {
    "Login failures": ({"types": ("auth",), "results": ("failed",)}, "action:login"),
    "Permission changes": ({"types": (PERMISSION,), "results": ()}, ""),
}
"""One-click views of the Audit Log (the users' guide's security steps): Type and Result are
set, and a search term added to the search; the period and users stay. Login failures are the
Security review's (auth, failed, action login): a failed key exchange or a denied API call is an
auth failure but no sign-in attempt."""


def without_presets(flt: Filter) -> Filter:
    """``flt`` without the search terms the presets add (a preset's ``action:login`` must not
    follow the reader to the next preset or to the Security review, which set or drop Type and
    Result themselves).

    >>> without_presets(Filter(query="action:login ip:10.0.0.0/8")).query
    'ip:10.0.0.0/8'
    """
    added = {parse(term).terms[0] for _, term in PRESETS.values() if term}
    kept = [t for t in flt.parsed.terms if t not in added]
    if len(kept) == len(flt.parsed.terms):
        return flt
    return flt.replace(query=" ".join(str(t) for t in kept))


def preset_filter(flt: Filter, name: str) -> Filter:
    """``flt`` with the preset ``name`` applied: its Type and Result, and its search term in
    front of the search in place of another preset's.

    >>> preset_filter(Filter(query="ip:10.0.0.0/8"), "Login failures").query
    'action:login ip:10.0.0.0/8'
    >>> preset_filter(preset_filter(Filter(), "Login failures"), "Permission changes").query
    ''
    """
    fields, term = PRESETS[name]
    flt = without_presets(flt).replace(**fields)
    if term:
        flt = flt.replace(query=f"{term} {flt.query}".strip())
    return flt

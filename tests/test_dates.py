"""The one date parser and the one zone check (audit_analytics.dates), and that every caller
reads dates and zones through them, each wrapping the error in its own kind."""

from __future__ import annotations

import argparse
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from audit_analytics import dates
from audit_analytics.cli.common import parse_date, parse_zone
from audit_analytics.errors import QueryError, TabularError
from audit_analytics.filters import Filter, is_period
from audit_analytics.io.tabular import check_zone
from audit_analytics.query import parse
from audit_analytics.view import View

TOKYO = timezone(timedelta(hours=9))

PARSED = [
    ("2026-03-01", date(2026, 3, 1)),
    ("20260301", date(2026, 3, 1)),  # a day in basic form stays a day
    (" 2026-03-01 ", date(2026, 3, 1)),
    ("2026-03-01T08:30", datetime(2026, 3, 1, 8, 30)),
    ("2026-03-01 08:30:15", datetime(2026, 3, 1, 8, 30, 15)),
    ("2026-03-01T08:30:00+09:00", datetime(2026, 3, 1, 8, 30, tzinfo=TOKYO)),
    ("2026-03-01T08:30:00Z", datetime(2026, 3, 1, 8, 30, tzinfo=UTC)),
    ("1000-01-01", date(1000, 1, 1)),
    ("9998-12-31", date(9998, 12, 31)),
]


@pytest.mark.parametrize(("text", "expected"), PARSED, ids=[p[0] for p in PARSED])
def test_parse_when_reads_days_and_instants(text, expected):
    value = dates.parse_when(text)
    assert value == expected and type(value) is type(expected)


REFUSED = [
    ("2026-02-30", "'2026-02-30' is not a date (YYYY-MM-DD) or ISO date-time"),
    ("tomorrow", "'tomorrow' is not a date"),
    ("", "'' is not a date"),
    ("2026-03-01T25:00", "is not a date"),
    ("31/01/2026", "is not a date"),
    ("0999-12-31", "'0999-12-31' is out of range; write a year from 1000 to 9998"),
    ("9999-01-01T00:00", "is out of range; write a year from 1000 to 9998"),
]


@pytest.mark.parametrize(("text", "message"), REFUSED, ids=[r[0] or "empty" for r in REFUSED])
def test_parse_when_says_what_is_wrong(text, message):
    with pytest.raises(ValueError) as info:
        dates.parse_when(text)
    assert str(info.value).startswith(repr(text)), "the message quotes the text"
    assert message in str(info.value)


@pytest.mark.parametrize(("text", "expected"), PARSED[:7], ids=[p[0] for p in PARSED[:7]])
def test_every_caller_reads_the_same_value(text, expected):
    assert parse_date(text) == expected  # the CLI's --from/--to
    stripped = text.strip()
    view = View.from_params({"period": "custom", "from": stripped})  # the URL's from
    assert view.filter.start == expected
    if " " not in stripped:  # the search's after: (a value with a space needs quotes)
        flt = Filter(query=f"after:{stripped}")
        assert flt.parsed.qualified[0].value == stripped


def test_every_caller_keeps_its_own_kind_of_error():
    # the search: a QueryError at the value's position
    with pytest.raises(QueryError) as info:
        parse("root after:2026-02-30")
    assert info.value.position == 12
    assert "'2026-02-30' is not a date (YYYY-MM-DD)" in str(info.value)
    # the CLI: an argparse error, which argparse prefixes with the flag
    with pytest.raises(argparse.ArgumentTypeError, match="'2026-02-30' is not a date"):
        parse_date("2026-02-30")
    # the URL: a date that is not one is ignored, as a hand-edited link may hold anything
    assert View.from_params({"from": "2026-02-30", "to": "0999-01-01"}).filter.start is None


def test_one_zone_check():
    assert dates.zone("Europe/Paris").key == "Europe/Paris"
    message = "unknown time zone 'Mars/Olympus'; use an IANA name such as UTC or Europe/Paris"
    for bad in ("Mars/Olympus", "", "../etc/passwd"):
        with pytest.raises(ValueError, match="unknown time zone"):
            dates.zone(bad)
    with pytest.raises(ValueError, match=message):
        Filter(tz="Mars/Olympus")
    with pytest.raises(TabularError, match=message):
        check_zone("Mars/Olympus")
    with pytest.raises(argparse.ArgumentTypeError, match=message):
        parse_zone("Mars/Olympus")
    assert parse_zone("Asia/Tokyo") == "Asia/Tokyo"


def test_is_period():
    assert all(is_period(p) for p in ("today", "7d", "30d", "all", "custom"))
    assert not any(is_period(p) for p in ("week", "", None, 7, "7D"))
    assert View.from_params({"period": "week"}).filter.period == "7d"  # the default

"""Days, instants and time zones as people type them: the one date parser and the one zone check.

Every place that reads a day or an instant from text calls :func:`parse_when` (the search's
``after:``/``before:``, the URL's ``from``/``to``, the CLI's ``--from``/``--to``); every place
that takes a zone name calls :func:`zone`. Each caller wraps the :class:`ValueError` in its own
kind of error (a :class:`~audit_analytics.errors.QueryError` with the position in the search,
an argparse error naming the flag, ...) and keeps the message, which says what was wrong.

Examples
--------
>>> parse_when("2026-03-01"), parse_when("20260301")
(datetime.date(2026, 3, 1), datetime.date(2026, 3, 1))
>>> parse_when("2026-03-01T08:30")
datetime.datetime(2026, 3, 1, 8, 30)
>>> parse_when("2026-02-30")
Traceback (most recent call last):
...
ValueError: '2026-02-30' is not a date (YYYY-MM-DD) or ISO date-time (YYYY-MM-DDTHH:MM[:SS][+HH:MM])
>>> zone("Mars/Olympus")
Traceback (most recent call last):
...
ValueError: unknown time zone 'Mars/Olympus'; use an IANA name such as UTC or Europe/Paris
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["MAX_YEAR", "MIN_YEAR", "in_date_range", "instant", "parse_when", "zone"]

# the years a filter can hold: a day on either side of them stays a valid date in every zone
MIN_YEAR, MAX_YEAR = 1000, 9998


def in_date_range(value: date | datetime) -> bool:
    """Whether a date or date-time lies within :data:`MIN_YEAR` .. :data:`MAX_YEAR`."""
    return MIN_YEAR <= value.year <= MAX_YEAR


def parse_when(text: str) -> date | datetime:
    """A day (``2026-03-01``, or ``20260301``) or an ISO date-time (``2026-03-01T08:30``, with
    or without seconds and an offset), with a year from :data:`MIN_YEAR` to :data:`MAX_YEAR`.

    A day stays a :class:`~datetime.date` (as an end it includes that whole day); a date-time
    is an instant (naive: in the caller's zone). Anything else raises :class:`ValueError`
    whose message quotes the text and says what to write.
    """
    cleaned = text.strip()
    value: date | datetime
    try:
        value = date.fromisoformat(cleaned)
    except ValueError:
        try:
            value = datetime.fromisoformat(cleaned)
        except ValueError:
            raise ValueError(
                f"{text!r} is not a date (YYYY-MM-DD) or ISO date-time (YYYY-MM-DDTHH:MM[:SS][+HH:MM])"
            ) from None
    if not in_date_range(value):
        raise ValueError(f"{text!r} is out of range; write a year from {MIN_YEAR} to {MAX_YEAR}")
    return value


def instant(text: object) -> datetime | None:
    """An ISO date-time written by a machine (a log line's stamp, a manifest's ``made_at``) as
    an aware instant, naive read as UTC; None when the text is not one (a day alone included).

    >>> instant("2026-03-07T11:15:00Z"), instant("2026-03-07 12:15:00+0100") == instant("2026-03-07T11:15Z")
    (datetime.datetime(2026, 3, 7, 11, 15, tzinfo=datetime.timezone.utc), True)
    >>> instant("2026-03-07"), instant("yesterday"), instant(None)
    (None, None, None)
    """
    if not isinstance(text, str):
        return None
    try:
        value = parse_when(text)
    except ValueError:
        return None
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def zone(name: str) -> ZoneInfo:
    """A time zone by IANA name, with an error that says which name was wrong."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ValueError(
            f"unknown time zone {name!r}; use an IANA name such as UTC or Europe/Paris"
        ) from None


_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(us|ms|s|m|h|d|w)")


def duration(text: str) -> timedelta:
    """A positive duration such as ``120s``, ``5m``, ``1h``, ``1h30m``, ``2d`` (units us, ms,
    s, m, h, d, w): the one duration parser (the CLI's flags, the security policy file).
    Raises ValueError with the accepted forms.

    >>> duration("1h30m"), duration("30d")
    (datetime.timedelta(seconds=5400), datetime.timedelta(days=30))
    """
    cleaned = str(text).strip().lower().replace(" ", "")
    pos, seconds = 0, 0.0
    for match in _DURATION.finditer(cleaned):
        if match.start() != pos:
            break
        seconds += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if not cleaned or pos != len(cleaned):
        raise ValueError(
            f"{text!r} is not a duration; write a number and a unit, e.g. 120s, 5m, 1h, 1h30m, 2d"
        )
    if seconds <= 0:
        raise ValueError(f"{text!r}: a duration must be longer than zero")
    return timedelta(seconds=seconds)

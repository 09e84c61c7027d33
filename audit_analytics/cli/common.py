"""What every ``audit-analytics`` sub-command shares: exit codes, argument types (dates,
zones, counts), the filter flags, the store and actor, and printing a frame.

:mod:`audit_analytics.cli.main`, :mod:`audit_analytics.cli.security` and
:mod:`audit_analytics.cli.admin` import this module; it imports none of them.

Examples
--------
>>> parse_date("2026-03-01"), parse_date("2026-03-01T08:30+01:00")
(datetime.date(2026, 3, 1), datetime.datetime(2026, 3, 1, 8, 30, tzinfo=datetime.timezone(datetime.timedelta(seconds=3600))))
>>> parse_zone("Europe/Paris")
'Europe/Paris'
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING, NoReturn, TextIO

import polars as pl

from audit_analytics.dates import parse_when, zone
from audit_analytics.errors import UsageError
from audit_analytics.filters import PERIODS, Filter, Period, empty_range
from audit_analytics.io import tabular
from audit_analytics.schema import RESULTS, TYPE_CHOICES

if TYPE_CHECKING:
    from audit_analytics.engines.store import Store

__all__ = [
    "EXIT_ALTERED",
    "EXIT_BROKEN_PIPE",
    "EXIT_FINDINGS",
    "EXIT_OK",
    "EXIT_REJECTED",
    "EXIT_USAGE",
    "FORMATS",
    "Parser",
    "actor",
    "add_db",
    "add_filter_arguments",
    "at_least_one",
    "filter_from_args",
    "non_negative",
    "open_store",
    "parse_date",
    "parse_zone",
    "print_frame",
]

EXIT_OK, EXIT_USAGE, EXIT_REJECTED, EXIT_FINDINGS, EXIT_ALTERED = 0, 2, 3, 4, 5
EXIT_BROKEN_PIPE = 141
"""The reader of the output went away (``audit-analytics formats | head -1``): what a shell
reports for a command ended by SIGPIPE (128 + 13), without a message."""

FORMATS = ("table", "json", "jsonl", "csv")
"""The output formats of the commands that print rows (``query``, ``security``)."""


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line and exit 2 (argparse's convention)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


# ---------------------------------------------------------------------------------------
# argument types: each raises argparse.ArgumentTypeError, which argparse prefixes with the flag


def parse_date(text: str) -> date | datetime:
    """A day (``2026-03-01``, or ``20260301``) or an ISO date-time (``2026-03-01T08:30``,
    with or without an offset), read by :func:`audit_analytics.dates.parse_when`. A day
    stays a :class:`~datetime.date`: as ``--to`` it includes that whole day; a date-time is
    an instant."""
    try:
        return parse_when(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def parse_zone(text: str) -> str:
    """An IANA time zone name, checked."""
    try:
        zone(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _whole(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def non_negative(text: str) -> int:
    """A whole number >= 0 (``--limit``, ``--offset``, ``--events``)."""
    value = _whole(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must not be negative")
    return value


def at_least_one(text: str) -> int:
    """A whole number >= 1 (thresholds)."""
    value = _whole(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


# ---------------------------------------------------------------------------------------
# shared flags


def add_db(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--db",
        metavar="URL",
        help="SQLAlchemy URL, or chdb://FOLDER for ClickHouse embedded (default: $AUDIT_DB_URL or "
        "sqlite:///data/audit.db)",
    )


def add_filter_arguments(p: argparse.ArgumentParser) -> None:
    """The filter flags shared by query, export and security."""
    add_db(p)
    g = p.add_argument_group("filter")
    g.add_argument("--period", choices=list(PERIODS), default=None, help="today, 7d, 30d, all (default all)")
    g.add_argument(
        "--from", dest="start", type=parse_date, metavar="DATE", help="first day (or instant) included"
    )
    g.add_argument(
        "--to", dest="end", type=parse_date, metavar="DATE", help="last day included (or instant excluded)"
    )
    g.add_argument(
        "--type",
        dest="types",
        action="append",
        default=[],
        choices=TYPE_CHOICES,
        metavar="T",
        help=f"category, repeatable: {', '.join(TYPE_CHOICES)} (permission: role and permission changes)",
    )
    g.add_argument(
        "--user", dest="users", action="append", default=[], metavar="U", help="username or email, repeatable"
    )
    g.add_argument(
        "--result",
        dest="results",
        action="append",
        default=[],
        choices=RESULTS,
        metavar="R",
        help=f"repeatable: {', '.join(RESULTS)}",
    )
    g.add_argument(
        "--search", default="", metavar="QUERY", help='search language, e.g. "user:root action:delete"'
    )
    # checked when the command runs (by Filter), so a bad zone is an "error:" line, exit 2
    g.add_argument(
        "--tz", default="UTC", metavar="ZONE", help="time zone for days and shown times (default UTC)"
    )


def filter_from_args(args: argparse.Namespace) -> Filter:
    """The filter the flags say. ``--from``/``--to`` narrow ``--period`` when both are given
    (``--period 7d --from 2026-03-01``: the last 7 days, from 1 March). A ``--from`` after
    the ``--to`` is refused (:class:`UsageError`) rather than answered with nothing."""
    period: Period = args.period or ("custom" if (args.start or args.end) else "all")
    if args.start is not None and args.end is not None and empty_range(args.start, args.end, args.tz):
        raise UsageError(
            f"--from {args.start.isoformat()} is not before --to {args.end.isoformat()}: "
            "nothing lies between them (--to names the last day included)"
        )
    flt = Filter(
        period=period,
        start=args.start,
        end=args.end,
        types=tuple(args.types),
        users=tuple(args.users),
        results=tuple(args.results),
        query=args.search,
        tz=args.tz,
    )
    return flt


def open_store(args: argparse.Namespace, *, create: bool = False) -> Store:
    """The store named by ``--db`` (or the default). Only the commands that write events of
    their own (``import``, ``demo``, ``users``) create one: the others refuse a database that
    is not there, so a mistyped path fails instead of finding nothing in a new empty log."""
    from audit_analytics.engines.store import open_store as _open

    return _open(args.db, create=create)


def actor() -> str:
    """Who runs the command, for the audit trail: ``$AUDIT_ACTOR``, else the login name."""
    try:
        return os.environ.get("AUDIT_ACTOR") or getpass.getuser()
    except Exception:  # no login name in some containers
        return "cli"


# ---------------------------------------------------------------------------------------
# output


def print_frame(
    frame: pl.DataFrame,
    fmt: str,
    *,
    tz: str = "UTC",
    out: TextIO | None = None,
    columns: Sequence[str] | None = None,
    empty: str | None = None,
    limit: int | None = 48,
    header: bool = True,
) -> None:
    """Print ``frame`` to ``out`` (stdout) as ``table``, ``json`` (an indented array),
    ``jsonl`` (one object a line) or ``csv`` (no byte-order mark: it is for pipes),
    with times in ``tz`` (see :mod:`audit_analytics.io.tabular`).

    ``columns`` and ``limit`` (characters a cell) apply to the table, as does ``empty``
    (what to print for no rows); ``header=False`` leaves out a CSV's header row (the
    chunks after the first of a streamed result). On a terminal, JSON escapes everything outside ASCII, so a
    value cannot repaint the screen.
    """
    out = out or sys.stdout
    if fmt == "table":
        out.write(tabular.to_table(frame, tz=tz, columns=columns, limit=limit, empty=empty))
    elif fmt == "csv":
        tabular.write_csv(frame, out, tz=tz, bom=False, header=header)
    elif fmt in ("json", "jsonl"):
        terminal = bool(getattr(out, "isatty", lambda: False)())
        out.write(tabular.to_json(frame, tz=tz, lines=fmt == "jsonl", ensure_ascii=terminal))
    else:
        raise ValueError(f"unknown output format {fmt!r}; expected one of {', '.join(FORMATS)}")

"""``audit-analytics security REPORT``: the security reports and detections from the command line.

The same functions as the Security review page (:mod:`audit_analytics.analysis.security`), on the
events a filter selects. Thresholds are flags; a flag the chosen report does not take is an
error that says which flags it does take. ``--fail-on-findings`` exits 4 when a detection
finds something (for cron); ``--format jsonl`` writes one finding per line (for a SIEM).

Examples
--------
>>> parse_duration("5m"), parse_duration("1h30m"), parse_duration("120s")
(datetime.timedelta(seconds=300), datetime.timedelta(seconds=5400), datetime.timedelta(seconds=120))
>>> parse_hours("08:30-18:00")
('08:30', '18:00')
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, TextIO

import polars as pl

from audit_analytics.analysis import security
from audit_analytics.analysis.review import SecurityReview
from audit_analytics.cli import common as cli_common
from audit_analytics.cli.common import (
    EXIT_FINDINGS,
    EXIT_OK,
    EXIT_USAGE,
    FORMATS,
    Parser,
    at_least_one,
    filter_from_args,
    open_store,
    parse_zone,
    print_frame,
)
from audit_analytics.dates import duration
from audit_analytics.engines.contract import AuditEngine
from audit_analytics.engines.sql import engine_mode, open_engine
from audit_analytics.errors import NeedsMemory, UsageError
from audit_analytics.filters import Filter
from audit_analytics.io import tabular

if TYPE_CHECKING:
    from audit_analytics.engines.store import Store

__all__ = ["DETECTION_REPORTS", "REPORTS", "THRESHOLD_FLAGS", "add_parser", "parse_duration", "parse_hours"]

AGGREGATE_REPORTS: dict[str, str] = {
    "by-ip": "login failures per source IP",
    "by-account": "login failures per account",
    "by-hour": "login failures per hour of the day (in --tz)",
}
DETECTION_REPORTS: dict[str, str] = {d.cli_name: rule for rule, d in security.DETECTIONS.items()}
"""Report name on the command line -> rule name in :data:`audit_analytics.analysis.security.DETECTIONS`."""

REPORTS: tuple[str, ...] = (*AGGREGATE_REPORTS, *DETECTION_REPORTS)

# Reports that read only login events: their SQL can be narrowed to the auth category.
_LOGIN_ONLY = {
    "by-ip",
    "by-account",
    "by-hour",
    "brute-force",
    "spray",
    "account-attack",
    "success-after-failure",
}


def parse_duration(text: str) -> timedelta:
    """A positive duration such as ``120s``, ``5m``, ``1h``, ``1h30m``, ``2d``
    (:func:`audit_analytics.dates.duration`), as an argparse type."""
    try:
        return duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _hhmm(text: str) -> str:
    try:
        parsed = time.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a time of day (HH:MM)") from None
    return f"{parsed.hour:02d}:{parsed.minute:02d}"


def parse_hours(text: str) -> tuple[str, str]:
    """Working hours ``HH:MM-HH:MM`` (start included, end excluded) as a pair of ``HH:MM``."""
    start, sep, end = text.partition("-")
    if not sep:
        raise argparse.ArgumentTypeError(f"{text!r} is not a range of hours; write e.g. 08:30-18:00")
    begin, finish = _hhmm(start), _hhmm(end)
    if begin >= finish:
        raise argparse.ArgumentTypeError(f"{text!r}: working hours must end after they start")
    return begin, finish


def _weekdays(text: str) -> tuple[int, ...]:
    try:
        days = tuple(sorted({int(d) for d in text.split(",") if d.strip()}))
    except ValueError:
        days = ()
    if not days or any(d not in range(1, 8) for d in days):
        raise argparse.ArgumentTypeError(f"{text!r}: weekdays are 1 (Monday) .. 7 (Sunday), e.g. 1,2,3,4,5")
    return days


@dataclass(frozen=True)
class _Flag:
    flag: str
    field: str
    parse: Callable[[str], object]
    metavar: str
    help: str


THRESHOLD_FLAGS: tuple[_Flag, ...] = (
    _Flag("--threshold", "threshold", at_least_one, "N", "failures that raise a finding"),
    _Flag("--window", "window", parse_duration, "DURATION", "sliding window, e.g. 120s, 5m"),
    _Flag("--min-accounts", "min_accounts", at_least_one, "K", "spray: distinct accounts in one window"),
    _Flag("--min-ips", "min_ips", at_least_one, "K", "account-attack: distinct IPs in one window"),
    _Flag("--within", "within", parse_duration, "DURATION", "success-after-failure: failures this close"),
    _Flag("--by", "by", str, "KEY", "success-after-failure: account, ip or both"),
    _Flag("--hours", "hours", parse_hours, "HH:MM-HH:MM", "off-hours: working hours, e.g. 08:30-18:00"),
    _Flag("--weekdays", "weekdays", _weekdays, "1,2,..", "off-hours: working days, 1 = Monday"),
    _Flag("--org-tz", "org_tz", parse_zone, "ZONE", "off-hours: the organisation's time zone"),
    _Flag(
        "--lookback",
        "lookback",
        parse_duration,
        "DURATION",
        "off-hours, permission-changes: history per actor, e.g. 30d",
    ),
    _Flag(
        "--min-history", "min_history", at_least_one, "N", "off-hours: events before a user's habits count"
    ),
    _Flag("--service-accounts", "service_accounts", str, "REGEX", "off-hours: names of service accounts"),
    _Flag("--older-than", "older_than", parse_duration, "DURATION", "stuck: pending/processing this long"),
)
"""Every threshold flag and the detection field it sets (the report decides which apply)."""


def add_parser(
    sub: argparse._SubParsersAction[Parser],
    add_filter_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
) -> None:
    """Register ``security`` on the CLI's sub-parsers (called by :mod:`audit_analytics.cli.main`);
    the filter flags are :func:`audit_analytics.cli.common.add_filter_arguments` unless given."""
    add_filter_arguments = add_filter_arguments or cli_common.add_filter_arguments
    reports = "\n".join(
        [f"  {name:<22} {what}" for name, what in AGGREGATE_REPORTS.items()]
        + [
            f"  {name:<22} {security.DETECTIONS[rule].description} [{security.DETECTIONS[rule].technique}]"
            for name, rule in DETECTION_REPORTS.items()
        ]
    )
    p = sub.add_parser(
        "security",
        help="login-failure reports and security detections",
        description="Security reports and detections on the events a filter selects.",
        epilog=f"reports:\n{reports}\n\nexit codes: 0 ok, 2 bad input, 4 findings (with --fail-on-findings)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("report", choices=REPORTS, metavar="REPORT", help=", ".join(REPORTS))
    add_filter_arguments(p)
    g = p.add_argument_group("thresholds (each report takes only its own; defaults from the rule)")
    for flag in THRESHOLD_FLAGS:
        kwargs: dict[str, Any] = {
            "dest": f"t_{flag.field}",
            "default": None,
            "metavar": flag.metavar,
            "help": flag.help,
        }
        if flag.field == "by":
            kwargs["choices"] = ["account", "ip", "both"]
            kwargs.pop("metavar")
        else:
            kwargs["type"] = flag.parse
        g.add_argument(flag.flag, **kwargs)
    o = p.add_argument_group("output")
    o.add_argument(
        "--format", choices=FORMATS, default="table", help="table, json, jsonl or csv; times in --tz"
    )
    o.add_argument("--top", type=int, default=10, metavar="N", help="by-ip, by-account: rows (0 = all)")
    o.add_argument(
        "--fail-on-findings", action="store_true", help="exit 4 when a detection finds something (cron)"
    )
    o.add_argument(
        "--policy",
        metavar="FILE",
        help="security policy TOML: the organisation's zone, hours, service accounts and thresholds "
        f"(default: ${security.POLICY_ENV}, {security.DEFAULT_POLICY_FILE} if present)",
    )
    p.set_defaults(handler=run)


def thresholds_from_args(report: str, args: argparse.Namespace) -> dict[str, object]:
    """The thresholds given on the command line for ``report``; a flag it does not take is an error."""
    given = {
        f: getattr(args, f"t_{f.field}") for f in THRESHOLD_FLAGS if getattr(args, f"t_{f.field}") is not None
    }
    if report in DETECTION_REPORTS:
        rule = DETECTION_REPORTS[report]
        known = {f.name for f in fields(security.DETECTIONS[rule].defaults)}
    else:
        known = set()
    wrong = [f.flag for f in given if f.field not in known]
    if wrong:
        takes = [f.flag for f in THRESHOLD_FLAGS if f.field in known]
        also = f"it takes {', '.join(takes)}" if takes else "it takes no thresholds"
        raise UsageError(f"{', '.join(wrong)} does not apply to the {report} report; {also}")
    return {f.field: value for f, value in given.items()}


def run(args: argparse.Namespace) -> int:
    """The ``security`` command (exit 0, or 4 with ``--fail-on-findings`` and findings)."""
    report = args.report
    try:
        thresholds = thresholds_from_args(report, args)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.fail_on_findings and report not in DETECTION_REPORTS:
        print(f"error: --fail-on-findings applies to detections, not to the {report} report", file=sys.stderr)
        return EXIT_USAGE
    if args.top < 0:
        print("error: --top must not be negative", file=sys.stderr)
        return EXIT_USAGE
    flt = filter_from_args(args)
    loaded = flt.replace(types=("auth",)) if report in _LOGIN_ONLY and not flt.types else flt
    engine = engine_for(open_store(args))
    now = datetime.now(UTC)  # the report and its note read the same period
    try:
        policy = security.load_policy(args.policy)
        result = compute(
            report,
            engine,
            loaded,
            thresholds=thresholds,
            top=args.top or None,
            now=now,
            policy=policy,
        )
    except (NeedsMemory, security.DetectionError) as exc:  # a period too large to hold; a bad policy
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    rule = DETECTION_REPORTS.get(report)
    settings = {**policy.get(rule, {}), **thresholds} if rule else thresholds
    write(result, report=report, fmt=args.format, tz=flt.tz, thresholds=settings)
    if args.format == "table":
        print(_summary(report, result.height, settings, flt), file=sys.stderr)
    if report in ("by-account", "by-ip"):  # as the page's "Accounts targeted" says in its help
        summary = SecurityReview(engine, loaded, now, policy=policy).summary()
        unnamed, what, other = (
            (summary.failures_without_account, ("names no account", "name no account"), "by-ip")
            if report == "by-account"
            else (summary.failures_without_ip, ("has no source IP", "have no source IP"), "by-account")
        )
        if unnamed:
            one = unnamed == 1
            print(
                f"note: {unnamed:,} failed login{'' if one else 's'} {what[not one]} and "
                f"{'is' if one else 'are'} not in this report ({other} counts {'it' if one else 'them'})",
                file=sys.stderr,
            )
    if args.fail_on_findings and result.height:
        return EXIT_FINDINGS
    return EXIT_OK


def engine_for(store: Store) -> AuditEngine:
    """The engine a one-off report runs on: as in the app, the filtered events are analysed in
    memory while they fit ``AUDIT_MEMORY_LIMIT`` and in the database above it (the SQL engine
    decides per report: it reads only the filtered events, never the whole table). With
    ``AUDIT_ENGINE=memory`` the whole table is loaded, as the app does."""
    return open_engine(store, mode="memory" if engine_mode() == "memory" else "pushdown")


def compute(
    report: str,
    engine: AuditEngine,
    flt: Filter,
    *,
    thresholds: dict[str, Any] | None = None,
    top: int | None = 10,
    now: datetime | None = None,
    policy: Mapping[str, Mapping[str, Any]] | None = None,
) -> pl.DataFrame:
    """The rows of ``report`` on the events ``flt`` selects, through the engine contract
    (:class:`audit_analytics.analysis.review.SecurityReview`, as the Security review page);
    ``policy`` (default: the organisation's policy file) replaces the shipped defaults and
    ``thresholds`` replace both."""
    if policy is None:
        policy = security.load_policy()
    review = SecurityReview(engine, flt, now or datetime.now(UTC), policy=policy)
    if report == "by-ip":
        return review.failures_by("ip", top)
    if report == "by-account":
        return review.failures_by("account", top)
    if report == "by-hour":
        return security.hours_of_day(review.failures_by_hour())
    rule = DETECTION_REPORTS[report]
    return review.detect(rule, dict(thresholds or {}))


def _summary(report: str, n: int, thresholds: dict[str, Any], flt: Filter) -> str:
    what = "finding" if report in DETECTION_REPORTS else "row"
    settings = ""
    if report in DETECTION_REPORTS:
        rule = DETECTION_REPORTS[report]
        values = security.thresholds_of(rule) | thresholds
        shown = [f"{k} {_text(v)}" for k, v in values.items() if v is not None and k != "now"]
        settings = f" ({', '.join(shown)})" if shown else ""
    return f"{n:,} {what}{'' if n == 1 else 's'} · {report}{settings} · {flt.describe()}"


# ---------------------------------------------------------------------------------------
# output


def _text(value: object) -> str:
    if isinstance(value, timedelta):
        return _duration_text(value)
    if isinstance(value, (list, tuple)):
        return ", ".join(_text(v) for v in value)
    if isinstance(value, datetime):
        return tabular.format_time(value, None)
    return "" if value is None else str(value)


def _duration_text(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    if seconds and seconds % 86400 == 0:
        return f"{seconds // 86400}d"
    if seconds and seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    if seconds and seconds % 60 == 0:
        return f"{seconds // 60}m"
    return f"{value.total_seconds():g}s"


def report_rows(
    result: pl.DataFrame,
    *,
    report: str | None = None,
    fmt: str = "table",
    thresholds: Mapping[str, Any] | None = None,
    tz: str = "UTC",
) -> pl.DataFrame:
    """What every format writes for ``result``: each duration as ``<name>_seconds`` (a
    number); in JSON a detection's rows also say which ``rule`` found them and its
    ``definition`` with the ``thresholds`` it ran with (``tz``: the organisation's zone when
    they name none)."""
    exprs = [
        # rounded to the microsecond it counts: 8557.99364, not 8557.993639999999
        (pl.col(name).dt.total_microseconds() / 1e6).round(6).alias(f"{name}_seconds")
        if isinstance(dtype, pl.Duration)
        else pl.col(name)
        for name, dtype in result.schema.items()
    ]
    rows = result.select(exprs)
    if fmt in ("json", "jsonl") and report in DETECTION_REPORTS and "rule" not in rows.columns:
        detection = security.DETECTIONS[DETECTION_REPORTS[report]]
        rows = rows.select(
            pl.lit(report).alias("rule"),
            pl.lit(detection.technique).alias("technique"),
            pl.lit(detection.text(thresholds, tz=tz)).alias("definition"),
            pl.all(),
        )
    return rows


def write(
    result: pl.DataFrame,
    *,
    report: str,
    fmt: str,
    tz: str = "UTC",
    out: TextIO | None = None,
    thresholds: Mapping[str, Any] | None = None,
) -> None:
    """Write ``result`` to ``out`` (stdout) as a plain-text table, JSON, JSON Lines or CSV,
    times in ``tz`` (see :func:`audit_analytics.cli.common.print_frame`); ``thresholds``: those
    the detection ran with (its policy's and the command line's)."""
    rows = report_rows(result, report=report, fmt=fmt, thresholds=thresholds, tz=tz)
    print_frame(rows, fmt, tz=tz, out=out, empty="(nothing found)\n")

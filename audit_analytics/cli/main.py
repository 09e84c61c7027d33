"""The ``audit-analytics`` command.

Every sub-command calls the same public functions as the app and the notebooks. Errors are
one line on stderr and a non-zero exit, never a traceback.

Exit codes: 0 success; 2 bad input or nothing could be read; 3 an import rejected rows,
skipped files or met conflicting duplicates; 4 ``security --fail-on-findings`` found something; 5 ``integrity
verify``/``verify-export`` found something that no longer matches; 141 the reader of the
output went away (``| head``).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from audit_analytics.cli import admin as admin_cli
from audit_analytics.cli import integrity as integrity_cli
from audit_analytics.cli import security as security_cli
from audit_analytics.cli.common import (
    EXIT_BROKEN_PIPE,
    EXIT_FINDINGS,
    EXIT_OK,
    EXIT_REJECTED,
    EXIT_USAGE,
    FORMATS,
    Parser,
    actor,
    add_db,
    add_filter_arguments,
    at_least_one,
    filter_from_args,
    non_negative,
    open_store,
    print_frame,
)
from audit_analytics.errors import AuditAnalyticsError, QueryError, UsageError
from audit_analytics.filters import Filter, Sort, polars_sort
from audit_analytics.io import tabular
from audit_analytics.schema import SORTABLE_COLUMNS
from audit_analytics.textsafe import plain

if TYPE_CHECKING:
    from audit_analytics.engines.store import Store

__all__ = [
    "EXIT_FINDINGS",
    "EXIT_OK",
    "EXIT_REJECTED",
    "EXIT_USAGE",
    "TABLE_COLUMNS",
    "add_filter_arguments",
    "build_parser",
    "filter_from_args",
    "main",
    "render_table",
]

TABLE_COLUMNS = ("time", "actor", "type", "action", "target", "result", "ip")


def _add_archive(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--include-archive", action="store_true", help="also search the Parquet archive (retention)"
    )
    p.add_argument("--archive", metavar="DIR", help="the archive folder (default: the retention policy's)")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="audit-analytics",
        description="Explore, search, analyse and export a platform's audit log.",
        epilog="Exit codes: 0 ok, 2 bad input, 3 import rejected rows, skipped files or met conflicts, "
        "4 findings (with --fail-on-findings), 5 integrity verify/verify-export found a change.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)

    p = sub.add_parser("demo", help="fill a database with deterministic demo events")
    add_db(p)
    p.add_argument(
        "--events", type=non_negative, default=50_000, metavar="N", help="how many events (default 50,000)"
    )
    p.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (default 0)")
    p.add_argument(
        "--if-empty", action="store_true", help="do nothing when the database already holds events"
    )

    p = sub.add_parser(
        "import",
        help="import audit logs: ours (CSV, JSON Lines, JSON, Parquet) or another's (auth.log, CloudTrail, …)",
        description="Import files into the audit log. Each file's format is recognised by its content "
        "(see `audit-analytics formats`); .gz files are decompressed as they stream; - reads standard input.",
    )
    add_db(p)
    p.add_argument("files", nargs="+", metavar="FILE", help="files to import (- for standard input)")
    p.add_argument("--rejects", metavar="PATH", help="where rejected rows go (default: FILE.rejects.jsonl)")
    p.add_argument(
        "--format",
        metavar="NAME",
        choices=_import_formats(),
        help="read every file as this format instead of recognising it: " + ", ".join(_import_formats()),
    )
    p.add_argument(
        "--year",
        type=_year,
        metavar="YYYY",
        help="the year of syslog lines, which have none (default: the file's modification time)",
    )

    p = sub.add_parser(
        "formats",
        help="list the formats import reads and the fields each maps",
        description="The formats `import` reads: our own schema's, and the source formats it maps.",
    )
    p.add_argument("name", nargs="?", metavar="NAME", help="show one format's mapping in full")

    p = sub.add_parser("query", help="print the events that match a filter")
    add_filter_arguments(p)
    p.add_argument("--sort", default="time", choices=SORTABLE_COLUMNS, help="sort column (default time)")
    p.add_argument("--ascending", action="store_true", help="oldest / A first (default newest first)")
    p.add_argument(
        "--limit", type=non_negative, default=100, metavar="N", help="rows to print (default 100; 0 = all)"
    )
    p.add_argument("--offset", type=non_negative, default=0, metavar="N")
    p.add_argument("--count", action="store_true", help="print only the number of matching events")
    p.add_argument(
        "--format", choices=FORMATS, default="table", help="table, json, jsonl or csv; times in --tz"
    )
    _add_archive(p)

    p = sub.add_parser("export", help="write exactly the filtered events to xlsx or CSV")
    add_filter_arguments(p)
    p.add_argument("--sort", default="time", choices=SORTABLE_COLUMNS)
    p.add_argument("--ascending", action="store_true")
    p.add_argument(
        "--format",
        choices=["xlsx", "csv"],
        default=None,
        help="the file's extension says it; if given, must agree",
    )
    p.add_argument("--output", required=True, metavar="FILE", help="a .xlsx or .csv file")
    _add_archive(p)

    p = sub.add_parser(
        "activity",
        help="the Activity page's figures: per category, over time, top actors and targets, retention",
        description="The figures of the Activity page for the events a filter selects "
        "(audit_analytics.analysis.review.activity_summary), one table at a time.",
    )
    p.add_argument(
        "report", choices=list(ACTIVITY_REPORTS), metavar="REPORT", help=", ".join(ACTIVITY_REPORTS)
    )
    add_filter_arguments(p)
    p.add_argument(
        "--top",
        type=at_least_one,
        default=10,
        metavar="N",
        help="actors, targets: rows (default 10, at least 1)",
    )
    p.add_argument(
        "--format", choices=FORMATS, default="table", help="table, json, jsonl or csv; times in --tz"
    )

    security_cli.add_parser(sub, add_filter_arguments)
    admin_cli.add_parsers(sub, add_filter_arguments)
    integrity_cli.add_parsers(sub)
    return parser


# ---------------------------------------------------------------------------------------
# commands


def cmd_demo(args: argparse.Namespace) -> int:
    from audit_analytics.demo.generate import generate

    store = open_store(args, create=True)
    if args.if_empty and store.count() > 0:
        print(f"demo: {store.safe_url} already holds {store.count():,} events")
        return EXIT_OK
    data = generate(args.events, seed=args.seed)
    result = store.append(data.events)
    print(
        f"demo: {result.inserted:,} events written to {store.safe_url} ({result.duplicates:,} already there)"
    )
    return EXIT_OK


def _import_formats() -> list[str]:
    from audit_analytics.io.ingest import OWN_FORMATS
    from audit_analytics.io.sources import SOURCES

    return [*OWN_FORMATS, *SOURCES]


def _year(text: str) -> int:
    try:
        year = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a year") from None
    if not 1970 <= year <= 9999:
        raise argparse.ArgumentTypeError(f"{year} is not a year between 1970 and 9999")
    return year


def cmd_import(args: argparse.Namespace) -> int:
    from audit_analytics.io.ingest import import_files
    from audit_analytics.io.sources import SOURCES

    store = open_store(args, create=True)
    summary = import_files(store, args.files, rejects=args.rejects, format=args.format, year=args.year)
    read_as: dict[str, list[str]] = {}
    for path, name in summary.formats.items():
        if name in SOURCES:
            read_as.setdefault(name, []).append(path)
    for name, paths in read_as.items():
        title = f"{SOURCES[name].title} ({name})"
        if len(paths) <= 3:
            for path in paths:
                print(f"note: {path}: read as {title}", file=sys.stderr)
        else:  # a folder of them: one line
            print(f"note: {len(paths):,} files read as {title}: {paths[0]} … {paths[-1]}", file=sys.stderr)
    for note in summary.notes:
        print(f"note: {note}", file=sys.stderr)
    print(str(summary))
    for path, cols in summary.ignored_columns.items():
        print(
            f"note: {path}: columns not in the schema were not imported: {', '.join(cols)}", file=sys.stderr
        )
    for path in summary.rejects_paths:
        print(f"rejected rows (line, raw row, reasons) written to {path}", file=sys.stderr)
    for path, why in summary.skipped.items():
        print(f"skipped {path}: {why}", file=sys.stderr)
    if summary.rejected and summary.imported + summary.duplicates == 0:
        return EXIT_USAGE
    # a duplicate whose content differs from the stored event is listed with the rejects: the
    # same id telling two stories is for a person to look at, as a rejected row is
    return EXIT_REJECTED if summary.rejected or summary.skipped or summary.conflicts else EXIT_OK


def cmd_formats(args: argparse.Namespace) -> int:
    from audit_analytics.io.ingest import OWN_FORMATS
    from audit_analytics.io.sources import SOURCES

    if args.name:
        source = SOURCES.get(args.name)
        if source is None:
            if args.name in OWN_FORMATS:
                print(f"{args.name}: our own schema (README: Importing files)")
                return EXIT_OK
            print(
                f"error: unknown format {args.name!r}; formats: {', '.join(_import_formats())}",
                file=sys.stderr,
            )
            return EXIT_USAGE
        print(f"{source.name}: {source.title}")
        print(f"recognised by: {source.detected_by}")
        width = max(len(column) for column, _ in source.fields)
        for column, rule in source.fields:
            print(f"  {column:<{width}}  <- {rule}")
        if source.actions:
            print("actions (source -> type/action):")
            for name, (kind, action) in source.actions.items():
                print(f"  {name} -> {kind}/{action}")
        if source.caveats:
            print(f"caveats: {source.caveats}")
        return EXIT_OK
    print("our own schema: " + ", ".join(OWN_FORMATS) + " (by extension; .gz too)")
    for source in SOURCES.values():
        mapped = ", ".join(column for column, _ in source.fields)
        print(f"{source.name:<11} {source.title}\n{'':<11} maps: {mapped}")
    print("`audit-analytics formats NAME` shows one format's mapping; docs/sources.md has them all.")
    return EXIT_OK


def _with_archive(
    args: argparse.Namespace, store: Store, flt: Filter, *, now: datetime | None = None
) -> pl.DataFrame:
    """Database rows and archived rows that pass ``flt``, each id once."""
    from audit_analytics.io import archive
    from audit_analytics.io.retention import load_policy

    folder = args.archive or load_policy().archive
    return archive.merge(store.load(flt, now=now), archive.scan(folder, flt, now=now))


def _say_archived_beside(args: argparse.Namespace, flt: Filter, *, now: datetime) -> None:
    """On stderr, how many archived events the months and categories of ``flt`` hold when the
    archive is not searched: after a retention run "--period all" is not all time."""
    from audit_analytics.io import archive
    from audit_analytics.io.retention import PolicyError, load_policy

    if args.include_archive:
        return
    try:
        folder = args.archive or load_policy().archive
    except PolicyError:
        return
    held = archive.held_for(folder, flt, now=now)
    if held:
        print(
            f"note: retention moved {held:,} events of these months and categories to the archive "
            f"({folder}); they are not included: --include-archive searches them too",
            file=sys.stderr,
        )


def cmd_query(args: argparse.Namespace) -> int:
    flt = filter_from_args(args)
    store = open_store(args)
    now = datetime.now(UTC)  # relative periods pinned once for the count and every read
    merged = _with_archive(args, store, flt, now=now) if args.include_archive else None
    total = merged.height if merged is not None else store.count(flt, now=now)
    _say_archived_beside(args, flt, now=now)
    if args.count:
        print(total)
        return EXIT_OK
    order = Sort(args.sort, not args.ascending)
    if merged is None and not args.limit and not args.offset and args.format in ("csv", "jsonl"):
        # every row, a chunk at a time (keyset pages): memory holds one chunk however many
        for number, chunk in enumerate(store.stream(flt, order, now=now)):
            print_frame(chunk, args.format, tz=flt.tz, header=number == 0)
        return EXIT_OK
    limit = args.limit or max(total - args.offset, 0)
    if merged is not None:
        frame = polars_sort(merged, order).slice(args.offset, limit)
    else:
        frame = store.page(flt, order, offset=args.offset, limit=limit, now=now)
    # every format shows times in --tz (tabular's one format, with the zone's offset)
    if args.format == "table":
        sys.stdout.write(render_table(frame, tz=flt.tz))
        shown = frame.height
        print(
            f"{flt.describe(count=total)} — showing {args.offset + 1 if shown else 0}-{args.offset + shown}",
            file=sys.stderr,
        )
    else:
        print_frame(frame, args.format, tz=flt.tz)
    return EXIT_OK


def render_table(frame: pl.DataFrame, *, tz: str = "UTC", columns: Sequence[str] = TABLE_COLUMNS) -> str:
    """Events as a plain-text table (times in ``tz``); control characters in values are
    made visible, never run. See :func:`audit_analytics.io.tabular.to_table`."""
    return tabular.to_table(frame, tz=tz, columns=columns, limit=40, empty="(no events)\n")


def cmd_export(args: argparse.Namespace) -> int:
    from audit_analytics import integrity
    from audit_analytics.io.export import ExportFormat, manifest_for, record_export, write_csv, write_xlsx

    flt = filter_from_args(args)
    output = Path(args.output)
    # --format's choices are ExportFormat's values; the file's name must say the same, since
    # verify-export (and a spreadsheet program) goes by it
    named = output.suffix.lower().lstrip(".")
    if named not in ("csv", "xlsx") or (args.format and args.format != named):
        raise UsageError(
            f"--output {output}: name a .csv or .xlsx file"
            + (
                f" (--format {args.format}: {output.with_suffix('.' + args.format).name})"
                if args.format
                else ""
            )
        )
    fmt: ExportFormat = "csv" if named == "csv" else "xlsx"
    store = open_store(args)
    order = Sort(args.sort, not args.ascending)
    # relative periods pinned once: the count and every chunk read the same instants
    now = datetime.now(UTC)
    rows: pl.DataFrame | Iterator[pl.DataFrame]
    if args.include_archive:
        rows = polars_sort(_with_archive(args, store, flt, now=now), order)
        total = rows.height
    else:
        # read a chunk at a time (keyset pages), so an export of any size holds one chunk
        total = store.count(flt, now=now)
        rows = store.stream(flt, order, now=now)
    # the chain's head before the rows are read: a row written meanwhile changes the count,
    # which the writer then refuses
    position = integrity.head(store)
    who = actor()
    manifest = manifest_for(
        flt,
        rows=total,
        sort=order,
        include_archive=bool(args.include_archive),
        made_at=now,
        made_by=who,
        fmt=fmt,
        source=store.safe_url,
        chain=position,
        now=now,
    )
    if fmt == "csv":
        result = write_csv(rows, output, tz=flt.tz, manifest=manifest)
    else:
        result = write_xlsx(rows, output, tz=flt.tz, manifest=manifest)
    # the log keeps the export's digests: a manifest rewritten along with its file no longer
    # matches the log's own record of the export
    record_export(store, flt, manifest, result, target=output.name, via="cli")
    print(f"exported {result.rows:,} events to {output} ({fmt})")
    _say_archived_beside(args, flt, now=now)
    if result.manifest_path is not None:
        print(f"its manifest: {result.manifest_path} (check with: audit-analytics integrity verify-export)")
    return EXIT_OK


ACTIVITY_REPORTS: dict[str, str] = {
    "categories": "change",  # events, failures and failure rate per category against the previous period
    "events": "events",  # events per bucket and category
    "results": "mix",  # results per bucket, with the failure rate
    "actors": "top_actors",
    "targets": "top_targets",
    "changes": "changes",  # write actions per bucket and category
    "heatmap": "heat",  # events per weekday and hour (in --tz)
    "retention": "retention",  # the whole table per retention group
}
"""Report name on the command line -> the key of :func:`audit_analytics.analysis.review.activity_summary`."""


def cmd_activity(args: argparse.Namespace) -> int:
    from audit_analytics.analysis.review import activity_summary

    flt = filter_from_args(args)
    engine = security_cli.engine_for(open_store(args))
    if args.report == "retention":  # the whole table, counted where the events are
        print_frame(engine.retention_summary(), args.format, tz=flt.tz)
        return EXIT_OK
    summary = activity_summary(engine, flt, top=args.top)
    print_frame(summary[ACTIVITY_REPORTS[args.report]], args.format, tz=flt.tz)
    if args.format == "table":
        print(f"{flt.describe(count=summary['count'])} — {args.report}", file=sys.stderr)
    return EXIT_OK


COMMANDS = {
    "demo": cmd_demo,
    "import": cmd_import,
    "formats": cmd_formats,
    "query": cmd_query,
    "export": cmd_export,
    "activity": cmd_activity,
}


def _search_values_joined(argv: Sequence[str]) -> list[str]:
    """``--search -ip:10.0.0.0/8`` as ``--search=-ip:10.0.0.0/8``: argparse takes a value that
    starts with ``-`` for an option ("expected one argument"), and a search that starts with a
    negation is common.

    >>> _search_values_joined(["query", "--search", "-ip:10.0.0.0/8", "--count"])
    ['query', '--search=-ip:10.0.0.0/8', '--count']
    >>> _search_values_joined(["query", "--search", "--count"])  # an option: left to argparse
    ['query', '--search', '--count']
    """
    out: list[str] = []
    items = list(argv)
    i = 0
    while i < len(items):
        item = items[i]
        value = items[i + 1] if i + 1 < len(items) else None
        if item == "--search" and value is not None and value.startswith("-") and not value.startswith("--"):
            out.append(f"--search={value}")
            i += 2
            continue
        out.append(item)
        i += 1
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(_search_values_joined(sys.argv[1:] if argv is None else argv))
    if not args.command:
        parser.print_help()
        return EXIT_USAGE
    handler: Callable[[argparse.Namespace], int] | None = COMMANDS.get(args.command) or getattr(
        args, "handler", None
    )
    if handler is None:  # pragma: no cover - every sub-command has a handler
        parser.print_help()
        return EXIT_USAGE
    try:
        return handler(args)
    except BrokenPipeError:
        # the reader stopped reading (``| head``): not an error to report. What is left in the
        # buffer goes nowhere, so Python's own flush at exit does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except QueryError as exc:
        print(f"error: search {exc.query!r}: {exc}", file=sys.stderr)
    except (AuditAnalyticsError, ValueError, OSError) as exc:
        print(f"error: {plain(str(exc), limit=500)}", file=sys.stderr)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return EXIT_USAGE


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())

"""The ``audit-analytics`` command.

Every sub-command calls the same public functions as the app and the notebooks. Errors are
one line on stderr and a non-zero exit, never a traceback.

Exit codes: 0 success; 2 bad input or nothing could be read; 3 an import rejected rows;
4 ``security --fail-on-findings`` found something.
"""

from __future__ import annotations

import argparse
import csv
import getpass
import io
import json
import os
import sys
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl

from audit_analytics.errors import AuditAnalyticsError, QueryError
from audit_analytics.filters import PERIODS, Filter, Sort, polars_sort
from audit_analytics.schema import CATEGORY_CODES, COLUMNS, RESULTS, SORTABLE_COLUMNS
from audit_analytics.textsafe import plain

EXIT_OK, EXIT_USAGE, EXIT_REJECTED, EXIT_FINDINGS = 0, 2, 3, 4
TABLE_COLUMNS = ("time", "actor", "type", "action", "target", "result", "ip")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2 (argparse's own convention)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def _date(text: str) -> date | datetime:
    try:
        return date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD) or ISO date-time") from None


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must not be negative")
    return value


def _add_db(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--db", metavar="URL", help="SQLAlchemy URL (default: $AUDIT_DB_URL or sqlite:///data/audit.db)"
    )


def add_filter_arguments(p: argparse.ArgumentParser) -> None:
    """The filter flags shared by query, export and security."""
    _add_db(p)
    g = p.add_argument_group("filter")
    g.add_argument("--period", choices=list(PERIODS), default=None, help="today, 7d, 30d, all (default all)")
    g.add_argument("--from", dest="start", type=_date, metavar="DATE", help="first day (or instant) included")
    g.add_argument(
        "--to", dest="end", type=_date, metavar="DATE", help="last day included (or instant excluded)"
    )
    g.add_argument(
        "--type",
        dest="types",
        action="append",
        default=[],
        choices=CATEGORY_CODES,
        metavar="T",
        help=f"category, repeatable: {', '.join(CATEGORY_CODES)}",
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
    g.add_argument(
        "--tz", default="UTC", metavar="ZONE", help="time zone for days and shown times (default UTC)"
    )


def _add_archive(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--include-archive", action="store_true", help="also search the Parquet archive (retention)"
    )
    p.add_argument("--archive", metavar="DIR", help="the archive folder (default: the retention policy's)")


def filter_from_args(args: argparse.Namespace) -> Filter:
    period = args.period or ("custom" if (args.start or args.end) else "all")
    return Filter(
        period=period,
        start=args.start,
        end=args.end,
        types=tuple(args.types),
        users=tuple(args.users),
        results=tuple(args.results),
        query=args.search,
        tz=args.tz,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="audit-analytics",
        description="Explore, search, analyse and export a platform's audit log.",
        epilog="Exit codes: 0 ok, 2 bad input, 3 import rejected rows, 4 findings (with --fail-on-findings).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("demo", help="fill a database with deterministic demo events")
    _add_db(p)
    p.add_argument(
        "--events", type=_positive, default=50_000, metavar="N", help="how many events (default 50,000)"
    )
    p.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (default 0)")
    p.add_argument(
        "--if-empty", action="store_true", help="do nothing when the database already holds events"
    )

    p = sub.add_parser("import", help="import CSV, JSON Lines, JSON or Parquet files")
    _add_db(p)
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--rejects", metavar="PATH", help="where rejected rows go (default: FILE.rejects.jsonl)")

    p = sub.add_parser("query", help="print the events that match a filter")
    add_filter_arguments(p)
    p.add_argument("--sort", default="time", choices=SORTABLE_COLUMNS, help="sort column (default time)")
    p.add_argument("--ascending", action="store_true", help="oldest / A first (default newest first)")
    p.add_argument(
        "--limit", type=_positive, default=100, metavar="N", help="rows to print (default 100; 0 = all)"
    )
    p.add_argument("--offset", type=_positive, default=0, metavar="N")
    p.add_argument("--count", action="store_true", help="print only the number of matching events")
    p.add_argument("--format", choices=["table", "json", "jsonl", "csv"], default="table")
    _add_archive(p)

    p = sub.add_parser("export", help="write exactly the filtered events to xlsx or CSV")
    add_filter_arguments(p)
    p.add_argument("--sort", default="time", choices=SORTABLE_COLUMNS)
    p.add_argument("--ascending", action="store_true")
    p.add_argument(
        "--format", choices=["xlsx", "csv"], default=None, help="default: from --output's extension"
    )
    p.add_argument("--output", required=True, metavar="FILE")
    _add_archive(p)

    _add_security_parser(sub)
    from audit_analytics import admin_cli

    admin_cli.add_parsers(sub, add_filter_arguments)
    return parser


def _add_security_parser(sub) -> None:
    try:
        from audit_analytics import security_cli
    except ImportError:  # pragma: no cover - the security module is optional at this stage
        return
    security_cli.add_parser(sub, add_filter_arguments)


def _store(args):
    from audit_analytics.store import open_store

    return open_store(args.db)


def _actor() -> str:
    try:
        return os.environ.get("AUDIT_ACTOR") or getpass.getuser()
    except Exception:  # no login name in some containers
        return "cli"


# ---------------------------------------------------------------------------------------
# commands


def cmd_demo(args) -> int:
    from audit_analytics.demo import generate

    store = _store(args)
    if args.if_empty and store.count() > 0:
        print(f"demo: {store.safe_url} already holds {store.count():,} events")
        return EXIT_OK
    data = generate(args.events, seed=args.seed)
    result = store.append(data.events)
    print(
        f"demo: {result.inserted:,} events written to {store.safe_url} ({result.duplicates:,} already there)"
    )
    return EXIT_OK


def cmd_import(args) -> int:
    from audit_analytics.ingest import import_files

    store = _store(args)
    summary = import_files(store, args.files, rejects=args.rejects)
    print(str(summary))
    for path, cols in summary.ignored_columns.items():
        print(
            f"note: {path}: columns not in the schema were not imported: {', '.join(cols)}", file=sys.stderr
        )
    for path in summary.rejects_paths:
        print(f"rejected rows (line, raw row, reasons) written to {path}", file=sys.stderr)
    if summary.rejected and summary.imported + summary.duplicates == 0:
        return EXIT_USAGE
    return EXIT_REJECTED if summary.rejected else EXIT_OK


def _with_archive(args, store, flt: Filter) -> pl.DataFrame:
    """Database rows and archived rows that pass ``flt``, each id once."""
    from audit_analytics import archive
    from audit_analytics.retention import load_policy

    folder = args.archive or load_policy().archive
    return archive.merge(store.load(flt), archive.scan(folder, flt))


def cmd_query(args) -> int:
    flt = filter_from_args(args)
    store = _store(args)
    merged = _with_archive(args, store, flt) if args.include_archive else None
    total = merged.height if merged is not None else store.count(flt)
    if args.count:
        print(total)
        return EXIT_OK
    limit = args.limit or max(total - args.offset, 0)
    if merged is not None:
        frame = polars_sort(merged, Sort(args.sort, not args.ascending)).slice(args.offset, limit)
    else:
        frame = store.page(
            flt, sort=args.sort, descending=not args.ascending, offset=args.offset, limit=limit
        )
    out = sys.stdout
    if args.format == "table":
        out.write(render_table(frame, tz=flt.tz))
        shown = frame.height
        print(
            f"{flt.describe(count=total)} — showing {args.offset + 1 if shown else 0}-{args.offset + shown}",
            file=sys.stderr,
        )
    elif args.format == "csv":
        out.write(_csv_text(frame, terminal=out.isatty()))
    elif args.format == "jsonl":
        for row in _json_rows(frame):
            out.write(json.dumps(row, ensure_ascii=out.isatty()) + "\n")
    else:
        # on a terminal, escape everything that is not ASCII: a value cannot repaint the screen
        out.write(json.dumps(_json_rows(frame), ensure_ascii=out.isatty(), indent=2) + "\n")
    return EXIT_OK


def _json_rows(frame: pl.DataFrame) -> list[dict]:
    return [
        {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in row.items()}
        for row in frame.iter_rows(named=True)
    ]


def _csv_text(frame: pl.DataFrame, *, terminal: bool = False) -> str:
    from audit_analytics.export import neutralise

    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(COLUMNS)
    for row in frame.iter_rows():
        writer.writerow(
            [
                v.isoformat() if isinstance(v, datetime) else ("" if v is None else neutralise(str(v)))
                for v in row
            ]
        )
    return buf.getvalue()


def render_table(frame: pl.DataFrame, *, tz: str = "UTC", columns: Sequence[str] = TABLE_COLUMNS) -> str:
    """A plain-text table; control characters in values are made visible, never run."""
    if frame.height == 0:
        return "(no events)\n"
    shown = frame.select(
        pl.col("time").dt.convert_time_zone(tz).dt.strftime("%Y-%m-%d %H:%M:%S%z").alias("time"),
        *[pl.col(c).cast(pl.String) for c in columns if c != "time"],
    )
    rows = [[plain(v, limit=40) for v in row] for row in shown.iter_rows()]
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines.extend("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in rows)
    return "\n".join(lines) + "\n"


def cmd_export(args) -> int:
    from audit_analytics.export import ExportManifest, write_csv, write_xlsx

    flt = filter_from_args(args)
    output = Path(args.output)
    fmt = args.format or ("csv" if output.suffix.lower() == ".csv" else "xlsx")
    store = _store(args)
    rows = _with_archive(args, store, flt) if args.include_archive else store.load(flt)
    frame = polars_sort(rows, Sort(args.sort, not args.ascending))
    actor = _actor()
    manifest = ExportManifest(
        caption=flt.describe(count=frame.height),
        filters=flt.as_params() | {"sort": f"{args.sort} {'ascending' if args.ascending else 'descending'}"},
        tz=flt.tz,
        rows=frame.height,
        generated_at=datetime.now(UTC),
        generated_by=actor,
        format=fmt,
        source=store.safe_url,
    )
    if fmt == "csv":
        result = write_csv(frame, output, tz=flt.tz)
    else:
        result = write_xlsx(frame, output, tz=flt.tz, manifest=manifest)
    store.record(
        actor=actor,
        type="audit",
        action="export",
        target=output.name,
        params={"filter": flt.as_params(), "format": fmt, "count": frame.height, "via": "cli"},
        description=f"{actor} exported {frame.height:,} audit events to {fmt}",
    )
    print(f"exported {result.rows:,} events to {output} ({fmt})")
    return EXIT_OK


COMMANDS = {"demo": cmd_demo, "import": cmd_import, "query": cmd_query, "export": cmd_export}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return EXIT_USAGE
    handler = COMMANDS.get(args.command) or getattr(args, "handler", None)
    try:
        return handler(args)
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

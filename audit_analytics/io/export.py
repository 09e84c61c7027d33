"""Exports of exactly the current result: xlsx and CSV, with safe cells and a manifest.

The caller passes the frame it shows (filtered and sorted); the writers write every row of
it, in that order, and never cut rows off: xlsx continues on further sheets past Excel's row
limit. Text that a spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@``, tab, CR)
is neutralised in both formats. A file only appears at its final path once it is complete.

The xlsx writer emits the sheet XML itself, built column-wise by polars and streamed into
the zip, because per-cell writers (xlsxwriter, openpyxl, ``DataFrame.write_excel``) take
5-10 s for 100,000 rows; this one takes well under 2 s.

Examples
--------
>>> import tempfile
>>> from datetime import datetime, timezone
>>> from pathlib import Path
>>> import polars as pl
>>> frame = pl.DataFrame(
...     {
...         "time": [datetime(2026, 3, 1, 8, 15, tzinfo=timezone.utc)],
...         "actor": ["=HYPERLINK(\\"http://x\\")"],
...     }
... )
>>> folder = Path(tempfile.mkdtemp())
>>> write_csv(frame, folder / "out.csv", tz="Europe/Paris").rows
1
>>> (folder / "out.csv").read_text(encoding="utf-8-sig").splitlines()[1]
'2026-03-01T09:15:00+01:00,"\\'=HYPERLINK(""http://x"")"'
>>> write_xlsx(frame, folder / "out.xlsx", tz="Europe/Paris").sheets
('Events', 'About this export')
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from xml.sax.saxutils import escape as _xml_escape

import polars as pl

from audit_analytics.errors import ExportError
from audit_analytics.fileio import atomic_write
from audit_analytics.io import tabular
from audit_analytics.io.tabular import DANGEROUS_START, NEUTRALISED_PREFIXES, in_zone, neutralise

if TYPE_CHECKING:
    from audit_analytics.engines.store import Store
    from audit_analytics.filters import Filter, Sort
    from audit_analytics.integrity import Head

__all__ = [
    "ABOUT_SHEET",
    "EVENTS_SHEET",
    "MANIFEST_FORMAT",
    "MANIFEST_SUFFIX",
    "MAX_XLSX_COLUMNS",
    "MAX_XLSX_ROWS",
    "MAX_XLSX_CELL_CHARS",
    "NEUTRALISED_PREFIXES",
    "XLSX_TRUNCATION_MARKER",
    "ExportError",
    "ExportFormat",
    "ExportManifest",
    "ExportResult",
    "events_sha256",
    "export_filename",
    "manifest_for",
    "manifest_path",
    "neutralise",
    "record_export",
    "write_csv",
    "write_xlsx",
    "xlsx_cell_text",
    "xlsx_row_line",
    "xlsx_row_lines",
]

ExportFormat = Literal["csv", "xlsx"]

Rows = pl.DataFrame | pl.LazyFrame | Iterable[pl.DataFrame]
"""What a writer takes: a frame, or its chunks in order (frames with the same columns)."""

MAX_XLSX_ROWS = 1_048_575
"""Data rows per worksheet: Excel's 1,048,576 rows less the header row."""

MAX_XLSX_COLUMNS = 16_384
"""Columns per worksheet (A to XFD)."""

MAX_XLSX_CELL_CHARS = 32_767
"""Excel's limit on the characters in one cell. A longer cell makes Excel call the file
corrupt and "repair" it by cutting the text, so the writer shortens it visibly instead."""

XLSX_TRUNCATION_MARKER = " …[cut at Excel's 32,767-character cell limit; the CSV export has the full text]"

EVENTS_SHEET = "Events"
ABOUT_SHEET = "About this export"

MANIFEST_SUFFIX = ".manifest.json"
"""A CSV export's manifest is written beside it as ``FILE.manifest.json``."""

MANIFEST_FORMAT = "audit-analytics-export/1"
"""The ``manifest`` field of a CSV sidecar: names this layout of the manifest."""

ROWS_SHA256_CSV = "SHA-256 of the exact bytes of the CSV file"
ROWS_SHA256_XLSX = (
    "SHA-256 over one line per row of each Events sheet in order, header row included: the JSON "
    "list of the row's cell values as openpyxl reads them, as text (null for an empty cell), each "
    "line ended by a newline"
)
EVENTS_SHA256_DEFINITION = (
    "SHA-256 over the chain hash of each exported event (SHA-256 of its canonical JSON), in file "
    "order, each ended by a newline"
)
VERIFY_HINT = "audit-analytics integrity verify-export FILE [--db URL] [--archive DIR]"

# Progress is reported after each chunk; the page's progress bar wants at least one update
# per ~50,000 rows, and chunks this size keep polars' per-call overhead negligible.
_CHUNK_ROWS = 25_000

_HEADER_LABELS: dict[str, str] = {
    "id": "ID",
    "time": "Time",
    "actor": "Actor",
    "email": "Email",
    "type": "Type",
    "action": "Action",
    "target": "Target",
    "result": "Result",
    "ip": "IP",
    "request_id": "Request ID",
    "description": "Description",
    "params": "Params",
    "before": "Before",
    "after": "After",
    "error": "Error",
}


@dataclass(frozen=True, slots=True)
class ExportManifest:
    """What an export contains, written to its last sheet "About this export".

    ``rows``, ``tz`` and ``format`` may be left ``None``: the writer fills them in from what
    it actually wrote. If given, they must agree with the export, or it raises
    :class:`ExportError`, because a manifest that describes a different result is worse than
    none.

    ``chain`` is the hash chain's head when the rows were read
    (:func:`audit_analytics.integrity.head`), ``None`` when they did not come from a store.
    ``columns``, ``rows_sha256`` and ``events_sha256`` are always filled in by the writer
    from what it wrote (see :func:`write_csv`, :func:`write_xlsx` and :func:`events_sha256`);
    :func:`audit_analytics.io.evidence.verify_export` checks a file against them.

    Examples
    --------
    >>> from datetime import datetime, timezone
    >>> manifest = ExportManifest(
    ...     caption="1,204 events · auth · failed · last 7 days",
    ...     filters={"period": "last 7 days", "types": "auth", "query": ""},
    ...     tz="Europe/Paris",
    ...     rows=1204,
    ...     generated_at=datetime(2026, 3, 7, 10, 15, tzinfo=timezone.utc),
    ...     generated_by="alice",
    ...     source="sqlite:///data/audit.db",
    ... )
    >>> for key, value in manifest.as_rows()[:5]:
    ...     print(f"{key}: {value}")
    Caption: 1,204 events · auth · failed · last 7 days
    Filter: period: last 7 days
    Filter: types: auth
    Filter: query: (none)
    Time zone: Europe/Paris
    """

    caption: str
    filters: Mapping[str, str] = field(default_factory=dict)
    tz: str | None = None
    rows: int | None = None
    generated_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    generated_by: str = ""
    format: ExportFormat | None = None
    source: str = ""
    chain: Head | None = None
    columns: tuple[str, ...] | None = None
    rows_sha256: str | None = None
    events_sha256: str | None = None

    def as_rows(self) -> list[tuple[str, str]]:
        """The manifest as (label, value) pairs, in the order the "About" sheet shows them.

        Every filter is listed, an empty one as ``(none)``, so the reader sees it was not set.

        Examples
        --------
        >>> from datetime import datetime, timezone
        >>> at = datetime(2026, 3, 7, 11, 15, tzinfo=timezone.utc)
        >>> ExportManifest(caption="all events", rows=3, tz="UTC", generated_at=at).as_rows()[-5:]
        [('Rows', '3'), ('Generated at (UTC)', '2026-03-07T11:15:00Z'), ('Generated by', ''), ('Format', ''), ('Source', '')]
        """
        generated = self.generated_at
        # A naive time is taken to be UTC, the package's storage zone.
        generated = generated.replace(tzinfo=UTC) if generated.tzinfo is None else generated.astimezone(UTC)
        rows: list[tuple[str, str]] = [("Caption", self.caption)]
        rows += [
            (f"Filter: {key}", str(value) if value not in (None, "") else "(none)")
            for key, value in self.filters.items()
        ]
        rows += [
            ("Time zone", self.tz or ""),
            ("Rows", "" if self.rows is None else str(self.rows)),
            ("Generated at (UTC)", generated.strftime("%Y-%m-%dT%H:%M:%S") + "Z"),
            ("Generated by", self.generated_by),
            ("Format", self.format or ""),
            ("Source", self.source),
        ]
        return rows

    def proof_rows(self) -> list[tuple[str, str]]:
        """The rows that let :func:`audit_analytics.io.evidence.verify_export` check the file:
        the columns, the chain position at export time and the two digests (shown last on
        the "About" sheet).

        Examples
        --------
        >>> for key, value in ExportManifest(caption="", columns=("id",), rows_sha256="ab").proof_rows()[:2]:
        ...     print(f"{key}: {value}")
        Columns: ["id"]
        Chain batch: (none: the rows did not come from a database with a hash chain)
        """
        head = self.chain
        rows = [
            ("Columns", json.dumps(list(self.columns or ()), ensure_ascii=False)),
            ("Chain batch", str(head.batch) if head else NO_CHAIN),
            ("Chain events", str(head.events) if head else ""),
            ("Chain digest", head.digest if head else ""),
            ("Chain stored at", (head.stored_at or "") if head else ""),
            ("Rows SHA-256", self.rows_sha256 or ""),
            ("Rows SHA-256 covers", ROWS_SHA256_CSV if self.format == "csv" else ROWS_SHA256_XLSX),
            ("Events SHA-256", self.events_sha256 or NO_EVENTS_SHA256),
            ("Events SHA-256 covers", EVENTS_SHA256_DEFINITION),
            ("Check with", VERIFY_HINT),
        ]
        return rows

    def as_json(self, *, file: str) -> dict[str, Any]:
        """The manifest as a CSV export's sidecar ``FILE.manifest.json`` holds it.

        Examples
        --------
        >>> from datetime import datetime, timezone
        >>> at = datetime(2026, 3, 7, 11, 15, tzinfo=timezone.utc)
        >>> doc = ExportManifest(caption="all events", rows=3, tz="UTC", generated_at=at, format="csv").as_json(
        ...     file="a.csv"
        ... )
        >>> doc["manifest"], doc["file"], doc["rows"], doc["made_at"], doc["chain"]
        ('audit-analytics-export/1', 'a.csv', 3, '2026-03-07T11:15:00Z', None)
        """
        head = self.chain
        return {
            "manifest": MANIFEST_FORMAT,
            "format": self.format,
            "file": file,
            "caption": self.caption,
            "filters": {key: "" if value is None else str(value) for key, value in self.filters.items()},
            "rows": self.rows,
            "columns": list(self.columns or ()),
            "tz": self.tz,
            "made_at": _utc_stamp(self.generated_at),
            "made_by": self.generated_by,
            "database": self.source,
            "chain": None if head is None else head.as_dict(),
            "rows_sha256": self.rows_sha256,
            "rows_sha256_covers": ROWS_SHA256_CSV if self.format == "csv" else ROWS_SHA256_XLSX,
            "events_sha256": self.events_sha256,
            "events_sha256_covers": EVENTS_SHA256_DEFINITION,
            "check_with": VERIFY_HINT,
        }


NO_CHAIN = "(none: the rows did not come from a database with a hash chain)"
NO_EVENTS_SHA256 = "(none: the rows are not events of the log's schema)"


def _utc_stamp(when: datetime) -> str:
    # A naive time is taken to be UTC, the package's storage zone.
    when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S") + "Z"


def manifest_path(path: str | os.PathLike[str]) -> Path:
    """Where a CSV export's manifest is: ``FILE.manifest.json`` beside it.

    >>> manifest_path("out/events.csv").as_posix()
    'out/events.csv.manifest.json'
    """
    path = Path(path)
    return path.with_name(path.name + MANIFEST_SUFFIX)


@dataclass(frozen=True, slots=True)
class ExportResult:
    """What a writer wrote.

    ``sheets`` is empty for CSV. ``shortened_cells`` counts xlsx cells cut to
    :data:`MAX_XLSX_CELL_CHARS` (each ends with :data:`XLSX_TRUNCATION_MARKER`); the page
    should mention it when it is not zero. ``manifest`` is the manifest as written (with the
    columns and digests filled in); ``manifest_path`` is a CSV export's sidecar.
    """

    path: Path
    rows: int
    sheets: tuple[str, ...]
    bytes: int
    format: ExportFormat
    shortened_cells: int = 0
    # what was written about the file, not the file itself: left out of ==
    manifest: ExportManifest | None = field(default=None, compare=False)
    manifest_path: Path | None = field(default=None, compare=False)

    @property
    def rows_sha256(self) -> str | None:
        return self.manifest.rows_sha256 if self.manifest else None

    @property
    def events_sha256(self) -> str | None:
        return self.manifest.events_sha256 if self.manifest else None


def export_filename(
    fmt: ExportFormat, *, period_label: str, now: datetime, narrowed: Sequence[str] = ()
) -> str:
    """A file name that carries the exported period, and what narrowed it (``narrowed``: the
    types and results, ``search`` for a search: two exports of one period, all events and the
    failed logins, had one name).

    A period made only of dates names itself; a relative one ("Last 7 days") is stamped
    with ``now`` (pass it in the shown zone), because the same words mean different days
    tomorrow.

    Examples
    --------
    >>> from datetime import datetime
    >>> now = datetime(2026, 3, 7, 10, 15)
    >>> export_filename("xlsx", period_label="2026-03-01 to 2026-03-07", now=now)
    'audit-log_2026-03-01_to_2026-03-07.xlsx'
    >>> export_filename("csv", period_label="Last 7 days", now=now)
    'audit-log_last-7-days_20260307-1015.csv'
    >>> export_filename("csv", period_label="Last 30 days", now=now, narrowed=["auth", "failed", "search"])
    'audit-log_auth-failed-search_last-30-days_20260307-1015.csv'
    """
    if fmt not in ("csv", "xlsx"):
        raise ExportError(f"unknown export format {fmt!r}; expected 'csv' or 'xlsx'")
    # Only characters that are safe in file names on every OS and in a download header.
    what = re.sub(r"[^a-z0-9]+", "-", "-".join(narrowed).lower()).strip("-")[:40].strip("-")
    stem = f"audit-log_{what}" if what else "audit-log"
    label = period_label.strip().lower()
    dates = re.fullmatch(r"(\d{4}-\d{2}-\d{2})(?:\s*(?:to|–|—|\.\.|_to_)\s*(\d{4}-\d{2}-\d{2}))?", label)
    if dates:
        start, end = dates.groups()
        return f"{stem}_{start}_to_{end}.{fmt}" if end and end != start else f"{stem}_{start}.{fmt}"
    slug = re.sub(r"[^a-z0-9]+", "-", label).strip("-")[:60].strip("-") or "all"
    return f"{stem}_{slug}_{now.strftime('%Y%m%d-%H%M')}.{fmt}"


# --------------------------------------------------------------------------- CSV


def write_csv(
    frame: Rows,
    path: str | os.PathLike[str],
    *,
    tz: str = "UTC",
    columns: Sequence[str] | None = None,
    manifest: ExportManifest | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ExportResult:
    """Write every row of ``frame``, in order, to a CSV file Excel opens correctly, and its
    manifest beside it (``FILE.manifest.json``, see :func:`manifest_path`).

    UTF-8 with a BOM, a header row, times as ISO-8601 with the offset in ``tz``
    (``2026-03-01T09:15:00+01:00``, ``2026-03-01T09:15:00.123456+01:00``: the package's one
    time format, :data:`audit_analytics.io.tabular.TIME_FORMAT`), nulls as empty fields, lists
    joined with ``"; "``, and text that starts like a formula prefixed with ``'`` (see
    :func:`neutralise`). The cells are :func:`audit_analytics.io.tabular.csv_cells`.

    The manifest (:meth:`ExportManifest.as_json`) adds to what ``manifest`` says the row
    count, columns and zone, ``rows_sha256`` (the SHA-256 of the file's exact bytes) and
    ``events_sha256`` (see :func:`events_sha256`).

    Parameters
    ----------
    frame
        The rows to export (already filtered and sorted): a frame, or its chunks in order (an
        iterable of frames with the same columns, e.g. :meth:`Store.stream
        <audit_analytics.engines.store.Store.stream>`), which are written as they come, so
        memory holds one chunk whatever the export's size. The file is the same either way.
    path
        Destination. Written to a temporary file beside it first, then renamed.
    tz
        IANA zone the times are shown in.
    columns
        Columns to write, in this order; default all.
    manifest
        What the export is (caption, filters, who, when, the chain's head). Without it the
        sidecar still gives the rows, zone, columns and digests. If it gives ``rows`` and a
        different number was written (the log changed while it was read), nothing is left
        behind and :class:`ExportError` says so.
    progress
        Called as ``progress(done_rows, total_rows)`` after every chunk (``total_rows``: the
        manifest's ``rows``, else the rows so far). An exception it raises aborts the export.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import polars as pl
    >>> out = Path(tempfile.mkdtemp()) / "events.csv"
    >>> result = write_csv(pl.DataFrame({"actor": ["+1", "bob"]}), out)
    >>> result.rows, result.format, result.manifest_path.name
    (2, 'csv', 'events.csv.manifest.json')
    >>> out.read_bytes()
    b"\\xef\\xbb\\xbfactor\\n'+1\\nbob\\n"
    >>> chunks = [pl.DataFrame({"actor": ["+1"]}), pl.DataFrame({"actor": ["bob"]})]
    >>> write_csv(chunks, out).rows, out.read_bytes()
    (2, b"\\xef\\xbb\\xbfactor\\n'+1\\nbob\\n")
    """
    _check_zone(tz)
    target = Path(path)
    frame, expected = _known_total(frame, manifest)
    file_digest = hashlib.sha256()
    events = _EventsDigest()
    written = 0
    names: tuple[str, ...] = ()
    settled = manifest or ExportManifest(caption="")

    def write(tmp: Path) -> None:
        nonlocal written, names, settled
        # the events' digest of a chunk is computed while polars writes it (both mostly off the GIL)
        with (
            tmp.open("xb") as out,
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="events-sha256") as side,
        ):
            for number, chunk in enumerate(_frames(frame)):
                data = _select(chunk, columns).collect()
                try:
                    cells = tabular.csv_cells(data, tz=tz)
                except tabular.TabularError as error:
                    raise ExportError(str(error)) from None
                digesting = side.submit(events.update, chunk)
                buffer = io.BytesIO()
                first = number == 0
                cells.write_csv(buffer, include_bom=first, include_header=first, null_value="")
                block = buffer.getbuffer()
                out.write(block)
                file_digest.update(block)
                if first:
                    names = tuple(data.columns)
                written += cells.height
                digesting.result()
                if progress is not None:
                    progress(written, expected if expected is not None else written)
        settled = _settle_manifest(manifest, rows=written, tz=tz, fmt="csv")

    size = atomic_write(target, write)
    settled = replace(
        settled, columns=names, rows_sha256=file_digest.hexdigest(), events_sha256=events.hexdigest()
    )
    sidecar = manifest_path(target)
    atomic_write(sidecar, json.dumps(settled.as_json(file=target.name), ensure_ascii=False, indent=2) + "\n")
    return ExportResult(
        path=target,
        rows=written,
        sheets=(),
        bytes=size,
        format="csv",
        manifest=settled,
        manifest_path=sidecar,
    )


def events_sha256(frame: pl.DataFrame) -> str | None:
    """SHA-256 over the chain hash of each of ``frame``'s events (in its order), each hash
    (hex) ended by a newline; ``None`` when the frame is not events of the log's schema.

    The chain hash is :func:`audit_analytics.engines.chain.event_hashes`: the SHA-256 of the
    event's canonical JSON. So a checker can recompute this from the database's copy of the
    exported events, whatever zone and cell text the file shows.

    >>> events_sha256(pl.DataFrame({"n": [1]})) is None
    True
    """
    digest = _EventsDigest()
    digest.update(frame)
    return digest.hexdigest()


class _EventsDigest:
    """:func:`events_sha256` fed a frame's chunks in order: the same value as over the whole."""

    def __init__(self) -> None:
        self.digest: Any = hashlib.sha256()
        self.events = True

    def update(self, frame: pl.DataFrame) -> None:
        from audit_analytics.engines import chain
        from audit_analytics.schema import COLUMNS

        if not self.events:
            return
        if not set(COLUMNS) <= set(frame.columns):
            self.events = False
            return
        try:
            hashes = chain.event_hashes(frame.select(COLUMNS))
        except (pl.exceptions.PolarsError, ValueError):  # a column that does not cast to the schema
            self.events = False
            return
        for start in range(0, len(hashes), 10_000):
            self.digest.update("".join(h + "\n" for h in hashes[start : start + 10_000]).encode())

    def hexdigest(self) -> str | None:
        return str(self.digest.hexdigest()) if self.events else None


def _known_total(rows: Rows, manifest: ExportManifest | None) -> tuple[Rows, int | None]:
    """The rows (a lazy query collected, once, before any file is touched) and how many
    there are when that is known: a frame's height, else what the manifest says."""
    if isinstance(rows, pl.LazyFrame):
        rows = rows.collect()
    if isinstance(rows, pl.DataFrame):
        return rows, rows.height
    return rows, manifest.rows if manifest is not None else None


def _frames(rows: Rows) -> Iterator[pl.DataFrame]:
    """A writer's input as chunks: a frame is one chunk (a lazy query collected once, before
    any file is touched); an iterable must give at least one frame, for the columns."""
    if isinstance(rows, pl.DataFrame | pl.LazyFrame):
        yield rows.lazy().collect()
        return
    empty = True
    for chunk in rows:
        empty = False
        yield chunk
    if empty:
        raise ExportError("nothing to export: the rows came without a single frame to name their columns")


# --------------------------------------------------------------------------- xlsx


def write_xlsx(
    frame: Rows,
    path: str | os.PathLike[str],
    *,
    tz: str = "UTC",
    manifest: ExportManifest | None = None,
    progress: Callable[[int, int], None] | None = None,
    max_rows_per_sheet: int = MAX_XLSX_ROWS,
    columns: Sequence[str] | None = None,
) -> ExportResult:
    """Write every row of ``frame``, in order, to an xlsx workbook.

    Times become real date-time cells showing the time in ``tz`` (the header says the zone,
    e.g. ``Time (Europe/Paris)``). The header row is bold and frozen, with an autofilter.
    All text, JSON included, is written as text cells; text that starts like a formula also
    gets Excel's quote prefix, so it stays text when edited. Past ``max_rows_per_sheet`` the
    rows continue on "Events (2)", "Events (3)", ...; the last sheet, "About this export",
    lists the manifest, the sheets, the row count, the columns, the chain position the
    manifest names and two digests: "Rows SHA-256" over the Events sheets' cells (see
    :func:`xlsx_row_line`) and "Events SHA-256" (see :func:`events_sha256`).

    Parameters
    ----------
    frame
        The rows to export (already filtered and sorted): a frame, or its chunks in order
        (see :func:`write_csv`), gathered one sheet at a time, so memory holds at most one
        sheet's rows (and the column widths come from the first 10,000 rows, as for a frame).
    path
        Destination. Written to a temporary file beside it first, then renamed; on any
        error, nothing is left behind.
    tz
        IANA zone the times are shown in.
    manifest
        What the export is (caption, filters, who, when, the chain's head). Without it the
        "About" sheet still gives the zone, row count, time and digests. If it gives ``rows``
        and a different number was written, nothing is left behind (:class:`ExportError`).
    progress
        Called as ``progress(done_rows, total_rows)`` at the start, after every 25,000 rows
        and at the end (``total_rows``: the manifest's ``rows``, else the rows so far). An
        exception it raises aborts the export.
    max_rows_per_sheet
        Data rows per sheet; at most :data:`MAX_XLSX_ROWS`.
    columns
        Columns to write, in this order; default all.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import polars as pl
    >>> out = Path(tempfile.mkdtemp()) / "events.xlsx"
    >>> result = write_xlsx(pl.DataFrame({"n": range(7)}), out, max_rows_per_sheet=3)
    >>> result.rows, result.sheets
    (7, ('Events', 'Events (2)', 'Events (3)', 'About this export'))
    """
    _check_zone(tz)
    if not 1 <= max_rows_per_sheet <= MAX_XLSX_ROWS:
        raise ExportError(
            f"max_rows_per_sheet must be between 1 and {MAX_XLSX_ROWS:,}, not {max_rows_per_sheet:,}"
        )
    frame, expected = _known_total(frame, manifest)
    target = Path(path)
    shortened = 0
    heights: list[int] = []
    settled = manifest or ExportManifest(caption="")
    events = _EventsDigest()
    # rows_sha256 from the very cell values written, as openpyxl reads them back (see
    # xlsx_row_line); the file is never read back: at a million rows that takes minutes
    rows_digest = hashlib.sha256()

    def sheets(side: ThreadPoolExecutor) -> Iterator[pl.DataFrame]:
        """The rows one sheet at a time; the events' digest of each chunk is computed on
        ``side`` while the sheets are written. The first sheet waits for 10,000 rows (or
        the end), which the column widths are taken from."""
        held: list[pl.DataFrame] = []
        count = 0
        first = True
        digesting: Future[None] | None = None
        for chunk in _frames(frame):
            if digesting is not None:
                digesting.result()
            digesting = side.submit(events.update, chunk)
            data = _select(chunk, columns).collect()
            if held and data.schema != held[0].schema:
                data = data.cast(dict(held[0].schema))  # type: ignore[arg-type]  # e.g. String after Categorical
            held.append(data)
            count += data.height
            if count < (max(max_rows_per_sheet, 10_000) if first else max_rows_per_sheet):
                continue
            rows = pl.concat(held, how="vertical", rechunk=False)
            whole = count // max_rows_per_sheet * max_rows_per_sheet
            yield rows.slice(0, whole)  # whole sheets only: the rest starts the next one
            rest = rows.slice(whole)
            held, count, first = [rest], rest.height, False
        if digesting is not None:
            digesting.result()
        if count or first:
            yield pl.concat(held, how="vertical", rechunk=False)

    def write(tmp: Path) -> None:
        nonlocal shortened, settled
        done = 0
        if progress is not None:
            progress(0, expected or 0)
        specs: list[_ColumnSpec] = []
        widths: list[float] = []
        header_line = b""
        # Level 1: the sheet XML is very repetitive, so the file is barely larger than at the
        # default level 6, and compression is the single largest cost of the export.
        with (
            zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive,
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="xlsx-rows") as builder,
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="events-sha256") as side,
        ):
            for number, sheet in enumerate(sheets(side), start=1):
                if number == 1:
                    if sheet.width > MAX_XLSX_COLUMNS:
                        raise ExportError(
                            f"Excel sheets hold at most {MAX_XLSX_COLUMNS:,} columns; this frame has {sheet.width:,}"
                        )
                    specs = [
                        _ColumnSpec.build(index, name, dtype, tz)
                        for index, (name, dtype) in enumerate(sheet.schema.items())
                    ]
                    widths = _column_widths(sheet, specs)
                    header_line = (_header_line(specs) + "\n").encode()
                    settled = replace(settled, columns=tuple(sheet.columns))
                # the first sheet may hold more than a sheet's rows (the widths' 10,000)
                for part in range(0, max(sheet.height, 1), max_rows_per_sheet):
                    rows = sheet.slice(part, max_rows_per_sheet)
                    if part and not rows.height:
                        break
                    heights.append(rows.height)
                    index = len(heights)
                    # zip64 only when needed: some readers warn about it on ordinary files.
                    big = _estimated_xml_bytes(rows) >= _ZIP64_THRESHOLD
                    with archive.open(f"xl/worksheets/sheet{index}.xml", "w", force_zip64=big) as stream:
                        stream.write(_sheet_head(specs, widths, rows.height, selected=index == 1).encode())
                        rows_digest.update(header_line)
                        for xml, lines, count, cut in _sheet_rows(rows, specs, builder):
                            stream.write(xml)
                            rows_digest.update(lines)
                            shortened += cut
                            done += count
                            if progress is not None:
                                progress(done, expected if expected is not None else done)
                        stream.write(_sheet_tail(len(specs), rows.height).encode())
            columns_named = settled.columns
            settled = _settle_manifest(manifest, rows=done, tz=tz)
            settled = replace(
                settled,
                columns=columns_named,
                rows_sha256=rows_digest.hexdigest(),
                events_sha256=events.hexdigest(),
            )
            sheet_names = _sheet_names(len(heights))
            about_rows = _about_rows(settled, sheet_names, shortened)
            archive.writestr(f"xl/worksheets/sheet{len(heights) + 1}.xml", _about_sheet(about_rows))
            all_names = [*sheet_names, ABOUT_SHEET]
            archive.writestr("xl/workbook.xml", _workbook_xml(all_names, len(specs), sheet_names, heights))
            archive.writestr("xl/_rels/workbook.xml.rels", _workbook_rels(len(all_names)))
            archive.writestr("xl/styles.xml", _STYLES_XML)
            archive.writestr("[Content_Types].xml", _content_types(len(all_names)))
            archive.writestr("_rels/.rels", _ROOT_RELS)
            archive.writestr("docProps/core.xml", _core_xml(settled))
            archive.writestr("docProps/app.xml", _APP_XML)

    size = atomic_write(target, write)
    return ExportResult(
        path=target,
        rows=sum(heights),
        sheets=(*_sheet_names(len(heights)), ABOUT_SHEET),
        bytes=size,
        format="xlsx",
        shortened_cells=shortened,
        manifest=settled,
    )


def _sheet_names(count: int) -> list[str]:
    return [EVENTS_SHEET if n == 1 else f"{EVENTS_SHEET} ({n})" for n in range(1, count + 1)]


# --------------------------------------------------------------------------- rows_sha256 of an xlsx
#
# A line per row: the JSON list (compact, not ASCII-escaped) of the row's cells as openpyxl
# reads them back, each as text or null (xlsx_cell_text). The writer builds the same text in
# polars from the values it writes (tests/test_export_proof.py reads files back to prove it).


def xlsx_cell_text(value: object) -> str | None:
    """One cell's value, as openpyxl reads it, as the text :func:`xlsx_row_line` hashes.

    Text is itself (openpyxl leaves OOXML's ``_xHHHH_`` escapes as they are); an empty cell
    is ``None``; a date or time is ISO 8601 with microseconds; ``True`` is ``TRUE``; a float
    is its ``repr``.

    >>> from datetime import datetime
    >>> [xlsx_cell_text(v) for v in ("=1", None, datetime(2026, 3, 1, 9, 15), 2, 0.5, True)]
    ['=1', None, '2026-03-01T09:15:00.000000', '2', '0.5', 'TRUE']
    """
    if value is None:
        return None
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, datetime | time):
        return value.isoformat(timespec="microseconds")
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day).isoformat(timespec="microseconds")
    if isinstance(value, timedelta):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    return str(value)


def xlsx_row_line(cells: Sequence[object]) -> str:
    """One row of an Events sheet, as openpyxl reads it, as the line ``rows_sha256`` covers:
    the JSON list of :func:`xlsx_cell_text` of each cell (compact, not ASCII-escaped).

    >>> xlsx_row_line(["e1", None, 3])
    '["e1",null,"3"]'
    """
    return json.dumps([xlsx_cell_text(cell) for cell in cells], ensure_ascii=False, separators=(",", ":"))


def xlsx_row_lines(
    frame: pl.DataFrame | pl.LazyFrame, *, tz: str = "UTC", columns: Sequence[str] | None = None
) -> list[str]:
    """The line :func:`xlsx_row_line` gives for each row of ``frame`` once :func:`write_xlsx`
    has written it (times in ``tz``, long text shortened): what a checker compares a
    database's events with, row by row."""
    _check_zone(tz)
    data = _select(frame, columns).collect()
    specs = [
        _ColumnSpec.build(index, name, dtype, tz) for index, (name, dtype) in enumerate(data.schema.items())
    ]
    values, _ = _cell_values(data, specs)
    return _row_lines(values, specs).to_list()


def _header_line(specs: list[_ColumnSpec]) -> str:
    return json.dumps(
        [_ooxml_visible_py(spec.header) or None for spec in specs], ensure_ascii=False, separators=(",", ":")
    )


def _row_lines(values: pl.DataFrame, specs: list[_ColumnSpec]) -> pl.Series:
    """Each row's canonical line (see :func:`xlsx_row_line`) from the values the writer
    puts in its cells (``values``: one column per spec, from :func:`_cell_values`)."""
    if not specs:
        return pl.Series("line", ["[]"] * values.height, dtype=pl.String)
    texts = values
    for spec in specs:  # the few values polars cannot turn into openpyxl's reading: Python
        if spec.kind == "number" and spec.is_float:
            texts = texts.with_columns(_float_texts(texts.get_column(spec.name)))
        elif spec.kind in ("datetime", "date"):
            texts = texts.with_columns(_serial_texts(texts.get_column(spec.name)))
    # json.dumps(cells, ensure_ascii=False, separators=(",", ":")), built as text: cheaper in
    # polars than a list column's JSON encoding
    cells = [_json_cell(spec).fill_null(pl.lit("null")) for spec in specs]
    line = pl.concat_str([pl.lit("["), pl.concat_str(cells, separator=","), pl.lit("]")])
    return texts.select(line.alias("line")).to_series()


# JSON's escapes for what may remain in a cell's text once OOXML's _xHHHH_ escapes have
# replaced the other control characters (json.dumps writes exactly these)
_JSON_FROM = ["\\", '"', "\n", "\r", "\t"]
_JSON_TO = ["\\\\", '\\"', "\\n", "\\r", "\\t"]


def _json_cell(spec: _ColumnSpec) -> pl.Expr:
    """The cell as a JSON string (null for an empty cell), as :func:`xlsx_cell_text` reads it."""
    value = pl.col(spec.name)
    if spec.kind == "text":
        # openpyxl undoes the XML escapes, not OOXML's _xHHHH_ ones
        visible = value.str.replace_all(_OOXML_ESCAPE_LOOKALIKE, "_x005F_$1").str.replace_many(
            [*_CONTROL, *_JSON_FROM], [*_XML_TO[len(_XML_FROM) - len(_CONTROL) :], *_JSON_TO]
        )
        return pl.when(value.str.len_bytes() > 0).then(pl.concat_str([pl.lit('"'), visible, pl.lit('"')]))
    if spec.kind == "bool":
        return pl.when(value == "1").then(pl.lit('"TRUE"')).when(value == "0").then(pl.lit('"FALSE"'))
    # numbers, times (already converted): digits, signs, "e", ".", ":", "T", "#VALUE!", "NaN"
    return pl.concat_str([pl.lit('"'), value, pl.lit('"')])


def _float_texts(column: pl.Series) -> pl.Series:
    # NaN and infinities were written as text cells; other floats come back as Python floats
    special = ("NaN", "inf", "-inf")
    texts = [None if v is None else v if v in special else repr(float(v)) for v in column.to_list()]
    return pl.Series(column.name, texts, dtype=pl.String)


_SERIAL_EPOCH = datetime(1899, 12, 30)
_SERIAL_PLAIN = (61.0, 2_958_465.0)  # 1900-03-01 .. 9999-12-31: no openpyxl special case


def _serial_texts(column: pl.Series) -> pl.Series:
    """Excel serial dates as openpyxl reads them back (``from_excel``: whole days, the
    fraction rounded half-to-even to the millisecond), as :func:`xlsx_cell_text` text."""
    serial = pl.col(column.name).cast(pl.Float64)
    day = serial.floor()
    millis = ((serial - day) * 86_400.0 * 1_000.0).round(0, mode="half_to_even").cast(pl.Int64)
    moment = pl.lit(_SERIAL_EPOCH) + pl.duration(days=day.cast(pl.Int64), milliseconds=millis)
    plain = serial.is_between(*_SERIAL_PLAIN)
    frame = column.to_frame().select(
        pl.when(plain).then(moment.dt.to_string("%Y-%m-%dT%H:%M:%S%.6f")).alias(column.name),
        plain.alias("plain"),
    )
    texts = frame.get_column(column.name)
    odd = (~frame.get_column("plain") & column.is_not_null()).arg_true().to_list()
    if not odd:
        return texts
    # Before 1900-03-01 (Excel's leap-year bug, times of day) and past 9999: openpyxl's own rules.
    from openpyxl.utils.datetime import from_excel

    values = texts.to_list()
    raw = column.to_list()
    for index in odd:
        try:
            values[index] = xlsx_cell_text(from_excel(float(raw[index])))
        except (OverflowError, ValueError):
            values[index] = "#VALUE!"  # what openpyxl reads for a serial it cannot convert
    return pl.Series(column.name, values, dtype=pl.String)


# Cell styles (indices into cellXfs in _STYLES_XML).
_STYLE_HEADER = 1
_STYLE_DATETIME = 2
_STYLE_DATE = 3
_STYLE_QUOTED = 4
_STYLE_HEADER_QUOTED = 5
_STYLE_WRAP = 6

_Kind = Literal["text", "datetime", "date", "number", "bool"]


@dataclass(frozen=True, slots=True)
class _ColumnSpec:
    """How one column becomes cells: its letter, header and the polars expression per cell."""

    name: str
    letter: str
    header: str
    kind: _Kind
    value: pl.Expr  # text: the raw string; others: the <v> lexical form
    is_float: bool = False  # a number that openpyxl reads back as a float

    @classmethod
    def build(cls, index: int, name: str, dtype: pl.DataType, tz: str) -> _ColumnSpec:
        column = pl.col(name)
        header = _HEADER_LABELS.get(name, name)
        letter = _column_letter(index)
        if isinstance(dtype, pl.Datetime):
            local = in_zone(column, dtype, tz).dt.replace_time_zone(None)
            # Excel's serial date: days since 1899-12-30, fraction = time of day.
            serial = local.dt.epoch("us").cast(pl.Float64) / 86_400_000_000 + 25_569
            return cls(name, letter, f"{header} ({tz})", "datetime", serial.cast(pl.String))
        if dtype == pl.Date:
            serial = column.cast(pl.Int32).cast(pl.Int64) + 25_569
            return cls(name, letter, header, "date", serial.cast(pl.String))
        if dtype == pl.Boolean:
            return cls(name, letter, header, "bool", column.cast(pl.Int8).cast(pl.String))
        if dtype.is_numeric():
            if isinstance(dtype, pl.Decimal):
                column = column.cast(pl.Float64)
            is_float = dtype.is_float() or isinstance(dtype, pl.Decimal)
            return cls(name, letter, header, "number", column.cast(pl.String), is_float)
        if _is_text(dtype) or dtype == pl.Time or isinstance(dtype, pl.Duration):
            return cls(name, letter, header, "text", column.cast(pl.String))
        raise ExportError(
            f"column {name!r} has type {dtype}, which the xlsx export cannot write; cast it first"
        )


def _sheet_rows(
    sheet: pl.DataFrame, specs: list[_ColumnSpec], builder: ThreadPoolExecutor
) -> Iterator[tuple[memoryview, memoryview, int, int]]:
    """The sheet's <row> XML in chunks: (xml, the rows' canonical lines (see
    :func:`xlsx_row_line`), rows in it, cells shortened).

    The next chunk is built (polars) while the caller compresses this one (zlib); both
    release the GIL, so on two cores the two halves of the work overlap.
    """
    starts = range(0, sheet.height, _CHUNK_ROWS)

    def build(start: int) -> Future[tuple[memoryview, memoryview, int]]:
        return builder.submit(_rows_xml, sheet.slice(start, _CHUNK_ROWS), specs, first_row=2 + start)

    following = build(starts[0]) if starts else None
    for start in starts:
        current = following
        assert current is not None  # built for every start: the first above, the rest below
        following = build(start + _CHUNK_ROWS) if start + _CHUNK_ROWS < sheet.height else None
        xml, lines, cut = current.result()
        yield xml, lines, min(_CHUNK_ROWS, sheet.height - start), cut


def _rows_xml(
    chunk: pl.DataFrame, specs: list[_ColumnSpec], *, first_row: int
) -> tuple[memoryview, memoryview, int]:
    """``chunk`` as <row> elements, UTF-8, its rows' canonical lines (UTF-8, each ended by
    a newline) and how many cells were shortened."""
    buffer = io.BytesIO()
    row_number = pl.int_range(first_row, first_row + chunk.height, dtype=pl.Int64).cast(pl.String)
    values, shortened = _cell_values(chunk, specs)
    cells = [_cell_expr(spec, row_number) for spec in specs]
    lines = io.BytesIO()
    _row_lines(values, specs).to_frame().write_csv(
        lines, include_header=False, quote_style="never", line_terminator="\n"
    )
    rows = values.select(
        pl.concat_str([pl.lit('<row r="'), row_number, pl.lit('">'), *cells, pl.lit("</row>")])
    )
    # polars' CSV writer is its fastest way out of a string column: with no quoting and no
    # line terminator it writes the <row> strings verbatim, back to back.
    rows.write_csv(buffer, include_header=False, quote_style="never", line_terminator="")
    return buffer.getbuffer(), lines.getbuffer(), shortened


def _cell_values(chunk: pl.DataFrame, specs: list[_ColumnSpec]) -> tuple[pl.DataFrame, int]:
    """Each spec's value (text shortened to Excel's limit) and how many cells were cut."""
    shortened = 0
    values = chunk.select([spec.value.alias(spec.name) for spec in specs])
    for spec in specs:
        if spec.kind == "text":
            column, cut = _fit_cells(values.get_column(spec.name))
            shortened += cut
            if cut:
                values = values.with_columns(column)
    return values, shortened


def _cell_expr(spec: _ColumnSpec, row_number: pl.Expr) -> pl.Expr:
    value = pl.col(spec.name)
    ref = [pl.lit(f'<c r="{spec.letter}'), row_number]
    if spec.kind == "text":
        quoted = value.str.contains(DANGEROUS_START)
        style = pl.when(quoted).then(pl.lit(f' s="{_STYLE_QUOTED}"')).otherwise(pl.lit(""))
        cell = pl.concat_str(
            [
                *ref,
                pl.lit('" t="inlineStr"'),
                style,
                pl.lit('><is><t xml:space="preserve">'),
                _xml_text(value),
                pl.lit("</t></is></c>"),
            ]
        )
        # Null and "" both become an absent cell: Excel has no empty-string cell worth keeping.
        return pl.when(value.str.len_bytes() > 0).then(cell).otherwise(pl.lit(""))
    if spec.kind == "number":
        # NaN and infinities are not numbers to Excel; they go out as (quoted) text.
        number = pl.concat_str([*ref, pl.lit('"><v>'), value, pl.lit("</v></c>")])
        text = pl.concat_str(
            [*ref, pl.lit(f'" t="inlineStr" s="{_STYLE_QUOTED}"><is><t>'), value, pl.lit("</t></is></c>")]
        )
        cell = pl.when(value.str.contains("^-?(?:inf|NaN)$")).then(text).otherwise(number)
    elif spec.kind == "bool":
        cell = pl.concat_str([*ref, pl.lit('" t="b"><v>'), value, pl.lit("</v></c>")])
    else:
        style_id = _STYLE_DATETIME if spec.kind == "datetime" else _STYLE_DATE
        cell = pl.concat_str([*ref, pl.lit(f'" s="{style_id}"><v>'), value, pl.lit("</v></c>")])
    return cell.fill_null("")


# XML 1.0 forbids most control characters; OOXML spells them _xHHHH_ (as Excel does).
# CR is written as a character reference, because a literal CR is turned into LF by every
# XML parser. A literal "_xHHHH_" in the data is protected by escaping its underscore.
_CONTROL = [chr(c) for c in (*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20))] + ["\ufffe", "\uffff"]
_XML_FROM = ["&", "<", ">", "\r", *_CONTROL]
_XML_TO = ["&amp;", "&lt;", "&gt;", "&#13;", *[f"_x{ord(c):04X}_" for c in _CONTROL]]
_OOXML_ESCAPE_LOOKALIKE = r"_(x[0-9A-Fa-f]{4}_)"
_GROWABLE = "[" + re.escape("".join(["&", "<", ">", "\r", "_", *_CONTROL])) + "]"
# zipfile refuses to grow an entry past 2 GiB unless it was opened as zip64; keep a margin.
_ZIP64_THRESHOLD = 1_900_000_000


def _xml_text(value: pl.Expr) -> pl.Expr:
    return value.str.replace_all(_OOXML_ESCAPE_LOOKALIKE, "_x005F_$1").str.replace_many(_XML_FROM, _XML_TO)


def _ooxml_visible_py(text: str) -> str:
    text = re.sub(_OOXML_ESCAPE_LOOKALIKE, r"_x005F_\1", text)
    return "".join(f"_x{ord(ch):04X}_" if ch in _CONTROL else ch for ch in text)


def _xml_text_py(text: str) -> str:
    """The same escaping as :func:`_xml_text`, for the few cells written from Python."""
    text = re.sub(_OOXML_ESCAPE_LOOKALIKE, r"_x005F_\1", text)
    return "".join(_XML_TO[_XML_FROM.index(ch)] if ch in _XML_FROM else ch for ch in text)


def _fit_cells(column: pl.Series) -> tuple[pl.Series, int]:
    """Shorten cells beyond Excel's limit, visibly. Returns the column and how many were cut."""
    # UTF-8 bytes >= UTF-16 code units (what Excel counts), so this cheap test finds every
    # candidate; the exact count runs in Python only on those few.
    long = column.str.len_bytes() > MAX_XLSX_CELL_CHARS
    if not long.any():
        return column, 0
    values = column.to_list()
    cut = 0
    for index in long.arg_true().to_list():
        text = values[index]
        units = text.encode("utf-16-le")
        if len(units) // 2 <= MAX_XLSX_CELL_CHARS:
            continue
        keep = (MAX_XLSX_CELL_CHARS - len(XLSX_TRUNCATION_MARKER)) * 2
        # errors="ignore" drops half of a surrogate pair cut in the middle.
        values[index] = units[:keep].decode("utf-16-le", errors="ignore") + XLSX_TRUNCATION_MARKER
        cut += 1
    return pl.Series(column.name, values, dtype=pl.String), cut


def _text_cell(ref: str, text: str, *, bold: bool = False, wrap: bool = False) -> str:
    if not text:
        return ""
    dangerous = text.startswith(NEUTRALISED_PREFIXES)
    if bold:
        style = _STYLE_HEADER_QUOTED if dangerous else _STYLE_HEADER
    else:
        style = _STYLE_QUOTED if dangerous else (_STYLE_WRAP if wrap else 0)
    style_attr = f' s="{style}"' if style else ""
    return f'<c r="{ref}" t="inlineStr"{style_attr}><is><t xml:space="preserve">{_xml_text_py(text)}</t></is></c>'


def _sheet_head(specs: list[_ColumnSpec], widths: list[float], rows: int, *, selected: bool) -> str:
    last = specs[-1].letter if specs else "A"
    cols = "".join(
        f'<col min="{i}" max="{i}" width="{w:.1f}" customWidth="1"/>' for i, w in enumerate(widths, start=1)
    )
    header = "".join(_text_cell(f"{spec.letter}1", spec.header, bold=True) for spec in specs)
    return (
        _XML_DECL + f"<worksheet {_NS}>"
        f'<dimension ref="A1:{last}{rows + 1}"/>'
        f'<sheetViews><sheetView workbookViewId="0"{_TAB_SELECTED if selected else ""}>'
        '<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/>'
        '<selection pane="bottomLeft" activeCell="A2" sqref="A2"/></sheetView></sheetViews>'
        '<sheetFormatPr defaultRowHeight="15"/>' + (f"<cols>{cols}</cols>" if cols else "") + "<sheetData>"
        f'<row r="1">{header}</row>'
    )


_TAB_SELECTED = ' tabSelected="1"'


def _sheet_tail(column_count: int, rows: int) -> str:
    last = _column_letter(max(column_count, 1) - 1)
    return f'</sheetData><autoFilter ref="A1:{last}{rows + 1}"/></worksheet>'


def _about_rows(manifest: ExportManifest, sheet_names: list[str], shortened: int) -> list[tuple[str, str]]:
    rows = manifest.as_rows()
    rows.append(("Sheets", ", ".join(sheet_names)))
    if shortened:
        rows.append(
            (
                "Cells shortened",
                f"{shortened:,} cells were longer than Excel's {MAX_XLSX_CELL_CHARS:,}-character limit and end "
                "with a note; export CSV for the full text",
            )
        )
    return rows + manifest.proof_rows()


def _about_sheet(pairs: list[tuple[str, str]]) -> str:
    body = [f'<row r="1">{_text_cell("A1", "Field", bold=True)}{_text_cell("B1", "Value", bold=True)}</row>']
    for number, (key, value) in enumerate(pairs, start=2):
        body.append(
            f'<row r="{number}">{_text_cell(f"A{number}", key)}{_text_cell(f"B{number}", value, wrap=True)}</row>'
        )
    return (
        _XML_DECL + f"<worksheet {_NS}>"
        f'<dimension ref="A1:B{len(pairs) + 1}"/>'
        '<sheetViews><sheetView workbookViewId="0"/></sheetViews><sheetFormatPr defaultRowHeight="15"/>'
        '<cols><col min="1" max="1" width="24" customWidth="1"/><col min="2" max="2" width="90" customWidth="1"/></cols>'
        f"<sheetData>{''.join(body)}</sheetData></worksheet>"
    )


def _column_widths(data: pl.DataFrame, specs: list[_ColumnSpec]) -> list[float]:
    """Widths that show typical values: the 95th-percentile length, within [header, 60]."""
    widths = []
    sample = data.head(10_000)  # enough to judge typical lengths, cheap on a million rows
    for spec in specs:
        floor = max(len(spec.header) + 3, 8)  # room for the autofilter button
        if spec.kind == "datetime":
            widths.append(float(max(floor, 24)))  # 2026-12-01 23:59:59.600
            continue
        if spec.kind == "date":
            widths.append(float(max(floor, 12)))
            continue
        lengths = sample.select(spec.value.str.len_chars()).to_series()
        typical = lengths.quantile(0.95) if lengths.drop_nulls().len() else 0
        widths.append(float(min(max(floor, (typical or 0) + 2), 60)))
    return widths


def _estimated_xml_bytes(sheet: pl.DataFrame) -> int:
    """An upper bound on the sheet XML's size, to decide whether the zip entry needs zip64."""
    # Markup is at most ~80 bytes a cell and 25 a row (<c r="XFD1048576" t="inlineStr" s="4">...).
    markup = sheet.height * (max(sheet.width, 1) * 80 + 25)
    text = [pl.col(n).cast(pl.String) for n, d in sheet.schema.items() if _is_text(d)]
    if not text or not sheet.height:
        return markup
    sizes = sheet.select(pl.sum_horizontal(c.str.len_bytes().sum() for c in text)).item() or 0
    if markup + sizes * 7 < _ZIP64_THRESHOLD:
        return markup + sizes * 7  # cheap bound: no escape grows text more than 7-fold
    # Exact enough: each character that escaping may grow grows by at most 6 bytes.
    growable = sheet.select(pl.sum_horizontal(c.str.count_matches(_GROWABLE).sum() for c in text)).item() or 0
    return markup + sizes + growable * 6


def _workbook_xml(names: list[str], column_count: int, data_sheets: list[str], heights: list[int]) -> str:
    sheets = "".join(
        f'<sheet name="{_xml_escape(name)}" sheetId="{i}" r:id="rId{i}"/>'
        for i, name in enumerate(names, start=1)
    )
    last = _column_letter(max(column_count, 1) - 1)
    # Excel keeps each autofilter's range in a hidden defined name; without it some versions
    # drop the filter buttons.
    defined = []
    for index, (name, rows) in enumerate(zip(data_sheets, heights, strict=True)):
        quoted = "'" + name.replace("'", "''") + "'"
        defined.append(
            f'<definedName name="_xlnm._FilterDatabase" localSheetId="{index}" hidden="1">'
            f"{_xml_escape(quoted)}!$A$1:${last}${rows + 1}</definedName>"
        )
    return (
        _XML_DECL + f"<workbook {_NS}>"
        '<bookViews><workbookView activeTab="0"/></bookViews>'
        f"<sheets>{sheets}</sheets><definedNames>{''.join(defined)}</definedNames>"
        '<calcPr calcId="191029"/></workbook>'
    )


def _workbook_rels(count: int) -> str:
    rels = "".join(
        f'<Relationship Id="rId{i}" Type="{_REL}/worksheet" Target="worksheets/sheet{i}.xml"/>'
        for i in range(1, count + 1)
    )
    rels += f'<Relationship Id="rId{count + 1}" Type="{_REL}/styles" Target="styles.xml"/>'
    return _XML_DECL + f'<Relationships xmlns="{_PKG_REL}">{rels}</Relationships>'


def _content_types(count: int) -> str:
    sheets = "".join(
        f'<Override PartName="/xl/worksheets/sheet{i}.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
        for i in range(1, count + 1)
    )
    return (
        _XML_DECL + '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
        '<Override PartName="/xl/styles.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
        '<Override PartName="/docProps/core.xml" ContentType="application/vnd.openxmlformats-package.core-properties+xml"/>'
        '<Override PartName="/docProps/app.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.extended-properties+xml"/>'
        f"{sheets}</Types>"
    )


def _core_xml(manifest: ExportManifest) -> str:
    at = manifest.generated_at
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    stamp = at.strftime("%Y-%m-%dT%H:%M:%SZ")
    return (
        _XML_DECL
        + '<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms="http://purl.org/dc/terms/" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        f"<dc:title>{_xml_escape(_strip_controls(manifest.caption))}</dc:title>"
        f"<dc:creator>{_xml_escape(_strip_controls(manifest.generated_by))}</dc:creator>"
        f'<dcterms:created xsi:type="dcterms:W3CDTF">{stamp}</dcterms:created>'
        f'<dcterms:modified xsi:type="dcterms:W3CDTF">{stamp}</dcterms:modified>'
        "</cp:coreProperties>"
    )


def _strip_controls(text: str) -> str:
    return "".join(ch for ch in text if ch not in _CONTROL)


_XML_DECL = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
_NS = (
    'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
    'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"'
)
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG_REL = "http://schemas.openxmlformats.org/package/2006/relationships"
_ROOT_RELS = (
    _XML_DECL + f'<Relationships xmlns="{_PKG_REL}">'
    f'<Relationship Id="rId1" Type="{_REL}/officeDocument" Target="xl/workbook.xml"/>'
    '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/package/2006/relationships/metadata/core-properties" '
    'Target="docProps/core.xml"/>'
    f'<Relationship Id="rId3" Type="{_REL}/extended-properties" Target="docProps/app.xml"/>'
    "</Relationships>"
)
_APP_XML = (
    _XML_DECL
    + '<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/extended-properties">'
    "<Application>audit-analytics</Application></Properties>"
)
_STYLES_XML = (
    _XML_DECL + '<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
    '<numFmts count="2"><numFmt numFmtId="164" formatCode="yyyy-mm-dd hh:mm:ss.000"/>'
    '<numFmt numFmtId="165" formatCode="yyyy-mm-dd"/></numFmts>'
    '<fonts count="2"><font><sz val="11"/><name val="Calibri"/><family val="2"/></font>'
    '<font><b/><sz val="11"/><name val="Calibri"/><family val="2"/></font></fonts>'
    '<fills count="2"><fill><patternFill patternType="none"/></fill><fill><patternFill patternType="gray125"/></fill></fills>'
    '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="7">'
    '<xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/>'
    '<xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '<xf numFmtId="165" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '<xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0" quotePrefix="1"/>'
    '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1" quotePrefix="1"/>'
    '<xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0" applyAlignment="1">'
    '<alignment vertical="top" wrapText="1"/></xf>'
    "</cellXfs>"
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
    "</styleSheet>"
)


# --------------------------------------------------------------------------- shared


def _check_zone(tz: str) -> None:
    try:
        tabular.check_zone(tz)
    except tabular.TabularError as error:
        raise ExportError(str(error)) from None


def _select(frame: pl.DataFrame | pl.LazyFrame, columns: Sequence[str] | None) -> pl.LazyFrame:
    lazy = frame.lazy()
    if columns is None:
        return lazy
    available = lazy.collect_schema().names()
    missing = [name for name in columns if name not in available]
    if missing:
        raise ExportError(f"no such column(s) to export: {', '.join(missing)}")
    return lazy.select(columns)


def _is_text(dtype: pl.DataType) -> bool:
    return dtype == pl.String or isinstance(dtype, pl.Enum | pl.Categorical)


def _column_letter(index: int) -> str:
    """0 -> A, 25 -> Z, 26 -> AA."""
    letters = ""
    index += 1
    while index:
        index, remainder = divmod(index - 1, 26)
        letters = chr(65 + remainder) + letters
    return letters


def _settle_manifest(
    manifest: ExportManifest | None, *, rows: int, tz: str, fmt: ExportFormat = "xlsx"
) -> ExportManifest:
    manifest = manifest or ExportManifest(caption="")
    if manifest.rows is not None and manifest.rows != rows:
        raise ExportError(
            f"the manifest says {manifest.rows:,} rows but {rows:,} were written"
            " (rows read in chunks: the log changed while they were read; export again)"
        )
    if manifest.tz is not None and manifest.tz != tz:
        raise ExportError(f"the manifest says time zone {manifest.tz!r} but the export uses {tz!r}")
    if manifest.format not in (None, fmt):
        raise ExportError(f"the manifest says format {manifest.format!r} but this is an {fmt} export")
    # the digests describe the file as written: the writer computes them, never the caller
    return replace(manifest, rows=rows, tz=tz, format=fmt, columns=None, rows_sha256=None, events_sha256=None)


# ---------------------------------------------------------------------------------------
# one export, as the app and the command line make it


def manifest_for(
    flt: Filter,
    *,
    rows: int,
    sort: Sort,
    include_archive: bool,
    made_at: datetime,
    made_by: str,
    fmt: ExportFormat,
    source: str,
    chain: Head | None,
    now: datetime | None = None,
) -> ExportManifest:
    """The manifest of an export of ``flt``'s rows, the same from the app and the command
    line: the filter's values, the instants a relative period meant when the rows were read
    (``--period 30d`` exported on 8 December is 9 November to 8 December: without them the
    file could not be reproduced), the sort, and whether the archive was searched (the caption
    says so too: all time without the archive is fewer events)."""
    lo, hi = flt.bounds(now=now)
    return ExportManifest(
        caption=flt.describe(count=rows) + (" · including the archive" if include_archive else ""),
        filters=flt.as_params()
        | {
            "include archive": "yes" if include_archive else "no",
            "sort": f"{sort.column} {'descending' if sort.descending else 'ascending'}",
            "from (instant, UTC)": lo.isoformat() if lo else "",
            "to (instant, UTC, excluded)": hi.isoformat() if hi else "",
        },
        tz=flt.tz,
        rows=rows,
        generated_at=made_at,
        generated_by=made_by,
        format=fmt,
        source=source,
        chain=chain,
    )


def record_export(
    store: Store,
    flt: Filter,
    manifest: ExportManifest,
    written: ExportResult,
    *,
    target: str,
    via: str,
    ip: str | None = None,
) -> str:
    """Record an export as an ``audit``/``export`` event: who, the filter (and what it meant
    then), the count and the file's digests. ``integrity verify-export --db`` holds a manifest
    to this record, so a file and manifest rewritten together no longer pass. Returns its id."""
    filters = manifest.filters
    return store.record(
        actor=manifest.generated_by,
        type="audit",
        action="export",
        target=target,
        ip=ip,
        params={
            "filter": flt.as_params(),
            "include_archive": filters.get("include archive") == "yes",
            "from": filters.get("from (instant, UTC)", ""),
            "to": filters.get("to (instant, UTC, excluded)", ""),
            "format": written.format,
            "count": written.rows,
            "sort": filters.get("sort", ""),
            "via": via,
            "proof": {
                "rows_sha256": written.rows_sha256,
                "events_sha256": written.events_sha256,
                "chain": manifest.chain.as_dict() if manifest.chain is not None else None,
            },
        },
        description=f"{manifest.generated_by} exported {written.rows:,} audit events to {written.format}",
    )

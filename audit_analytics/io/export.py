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

import io
import os
import re
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal
from xml.sax.saxutils import escape as _xml_escape

import polars as pl

from audit_analytics.errors import ExportError
from audit_analytics.fileio import atomic_write
from audit_analytics.io import tabular
from audit_analytics.io.tabular import DANGEROUS_START, NEUTRALISED_PREFIXES, in_zone, neutralise

__all__ = [
    "MAX_XLSX_COLUMNS",
    "MAX_XLSX_ROWS",
    "MAX_XLSX_CELL_CHARS",
    "NEUTRALISED_PREFIXES",
    "XLSX_TRUNCATION_MARKER",
    "ExportError",
    "ExportFormat",
    "ExportManifest",
    "ExportResult",
    "export_filename",
    "neutralise",
    "write_csv",
    "write_xlsx",
]

ExportFormat = Literal["csv", "xlsx"]

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


@dataclass(frozen=True, slots=True)
class ExportResult:
    """What a writer wrote.

    ``sheets`` is empty for CSV. ``shortened_cells`` counts xlsx cells cut to
    :data:`MAX_XLSX_CELL_CHARS` (each ends with :data:`XLSX_TRUNCATION_MARKER`); the page
    should mention it when it is not zero.
    """

    path: Path
    rows: int
    sheets: tuple[str, ...]
    bytes: int
    format: ExportFormat
    shortened_cells: int = 0


def export_filename(fmt: ExportFormat, *, period_label: str, now: datetime) -> str:
    """A file name that carries the exported period.

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
    """
    if fmt not in ("csv", "xlsx"):
        raise ExportError(f"unknown export format {fmt!r}; expected 'csv' or 'xlsx'")
    label = period_label.strip().lower()
    dates = re.fullmatch(r"(\d{4}-\d{2}-\d{2})(?:\s*(?:to|–|—|\.\.|_to_)\s*(\d{4}-\d{2}-\d{2}))?", label)
    if dates:
        start, end = dates.groups()
        return f"audit-log_{start}_to_{end}.{fmt}" if end and end != start else f"audit-log_{start}.{fmt}"
    # Only characters that are safe in file names on every OS and in a download header.
    slug = re.sub(r"[^a-z0-9]+", "-", label).strip("-")[:60].strip("-") or "all"
    return f"audit-log_{slug}_{now.strftime('%Y%m%d-%H%M')}.{fmt}"


# --------------------------------------------------------------------------- CSV


def write_csv(
    frame: pl.DataFrame | pl.LazyFrame,
    path: str | os.PathLike[str],
    *,
    tz: str = "UTC",
    columns: Sequence[str] | None = None,
) -> ExportResult:
    """Write every row of ``frame``, in order, to a CSV file Excel opens correctly.

    UTF-8 with a BOM, a header row, times as ISO-8601 with the offset in ``tz``
    (``2026-03-01T09:15:00+01:00``, ``2026-03-01T09:15:00.123456+01:00``: the package's one
    time format, :data:`audit_analytics.io.tabular.TIME_FORMAT`), nulls as empty fields, lists
    joined with ``"; "``, and text that starts like a formula prefixed with ``'`` (see
    :func:`neutralise`). The cells are :func:`audit_analytics.io.tabular.csv_cells`.

    Parameters
    ----------
    frame
        The rows to export (already filtered and sorted).
    path
        Destination. Written to a temporary file beside it first, then renamed.
    tz
        IANA zone the times are shown in.
    columns
        Columns to write, in this order; default all.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import polars as pl
    >>> out = Path(tempfile.mkdtemp()) / "events.csv"
    >>> result = write_csv(pl.DataFrame({"actor": ["+1", "bob"]}), out)
    >>> result.rows, result.format
    (2, 'csv')
    >>> out.read_bytes()
    b"\\xef\\xbb\\xbfactor\\n'+1\\nbob\\n"
    """
    _check_zone(tz)
    data = _select(frame, columns)
    # Vectorised: one pass in polars, no Python per cell. Collected once, before any file
    # is touched, so a lazy query (a database scan) runs once.
    try:
        cells = tabular.csv_cells(data, tz=tz)
    except tabular.TabularError as error:
        raise ExportError(str(error)) from None
    target = Path(path)
    size = tabular.write_cells(cells, target, bom=True)
    return ExportResult(path=target, rows=cells.height, sheets=(), bytes=size, format="csv")


# --------------------------------------------------------------------------- xlsx


def write_xlsx(
    frame: pl.DataFrame | pl.LazyFrame,
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
    lists the manifest, the sheets and the row count.

    Parameters
    ----------
    frame
        The rows to export (already filtered and sorted).
    path
        Destination. Written to a temporary file beside it first, then renamed; on any
        error, nothing is left behind.
    tz
        IANA zone the times are shown in.
    manifest
        What the export is (caption, filters, who, when). Without it the "About" sheet
        still gives the zone, row count and time.
    progress
        Called as ``progress(done_rows, total_rows)`` at the start, after every 25,000 rows
        and at the end. An exception it raises aborts the export.
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
    data = _select(frame, columns).collect()
    if data.width > MAX_XLSX_COLUMNS:
        raise ExportError(
            f"Excel sheets hold at most {MAX_XLSX_COLUMNS:,} columns; this frame has {data.width:,}"
        )
    total = data.height
    manifest = _settle_manifest(manifest, rows=total, tz=tz)
    schema = data.schema
    specs = [_ColumnSpec.build(index, name, dtype, tz) for index, (name, dtype) in enumerate(schema.items())]
    sheet_count = max(1, -(-total // max_rows_per_sheet))
    sheet_names = [EVENTS_SHEET if n == 1 else f"{EVENTS_SHEET} ({n})" for n in range(1, sheet_count + 1)]
    widths = _column_widths(data, specs)
    target = Path(path)
    shortened = 0

    def write(tmp: Path) -> None:
        nonlocal shortened
        done = 0
        if progress is not None:
            progress(0, total)
        # Level 1: the sheet XML is very repetitive, so the file is barely larger than at the
        # default level 6, and compression is the single largest cost of the export.
        with (
            zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive,
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="xlsx-rows") as builder,
        ):
            for number in range(1, sheet_count + 1):
                sheet = data.slice((number - 1) * max_rows_per_sheet, max_rows_per_sheet)
                # zip64 only when needed: some readers warn about it on ordinary files.
                big = _estimated_xml_bytes(sheet) >= _ZIP64_THRESHOLD
                with archive.open(f"xl/worksheets/sheet{number}.xml", "w", force_zip64=big) as stream:
                    stream.write(_sheet_head(specs, widths, sheet.height, selected=number == 1).encode())
                    for xml, rows, cut in _sheet_rows(sheet, specs, builder):
                        stream.write(xml)
                        shortened += cut
                        done += rows
                        if progress is not None:
                            progress(done, total)
                    stream.write(_sheet_tail(len(specs), sheet.height).encode())
            about_rows = _about_rows(manifest, sheet_names, shortened)
            archive.writestr(f"xl/worksheets/sheet{sheet_count + 1}.xml", _about_sheet(about_rows))
            all_names = [*sheet_names, ABOUT_SHEET]
            archive.writestr(
                "xl/workbook.xml", _workbook_xml(all_names, len(specs), sheet_names, data, max_rows_per_sheet)
            )
            archive.writestr("xl/_rels/workbook.xml.rels", _workbook_rels(len(all_names)))
            archive.writestr("xl/styles.xml", _STYLES_XML)
            archive.writestr("[Content_Types].xml", _content_types(len(all_names)))
            archive.writestr("_rels/.rels", _ROOT_RELS)
            archive.writestr("docProps/core.xml", _core_xml(manifest))
            archive.writestr("docProps/app.xml", _APP_XML)

    size = atomic_write(target, write)
    return ExportResult(
        path=target,
        rows=total,
        sheets=(*sheet_names, ABOUT_SHEET),
        bytes=size,
        format="xlsx",
        shortened_cells=shortened,
    )


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
            return cls(name, letter, header, "number", column.cast(pl.String))
        if _is_text(dtype) or dtype == pl.Time or isinstance(dtype, pl.Duration):
            return cls(name, letter, header, "text", column.cast(pl.String))
        raise ExportError(
            f"column {name!r} has type {dtype}, which the xlsx export cannot write; cast it first"
        )


def _sheet_rows(
    sheet: pl.DataFrame, specs: list[_ColumnSpec], builder: ThreadPoolExecutor
) -> Iterator[tuple[memoryview, int, int]]:
    """The sheet's <row> XML in chunks: (xml, rows in it, cells shortened).

    The next chunk is built (polars) while the caller compresses this one (zlib); both
    release the GIL, so on two cores the two halves of the work overlap.
    """
    starts = range(0, sheet.height, _CHUNK_ROWS)

    def build(start: int) -> Future[tuple[memoryview, int]]:
        return builder.submit(_rows_xml, sheet.slice(start, _CHUNK_ROWS), specs, first_row=2 + start)

    following = build(starts[0]) if starts else None
    for start in starts:
        current = following
        assert current is not None  # built for every start: the first above, the rest below
        following = build(start + _CHUNK_ROWS) if start + _CHUNK_ROWS < sheet.height else None
        xml, cut = current.result()
        yield xml, min(_CHUNK_ROWS, sheet.height - start), cut


def _rows_xml(chunk: pl.DataFrame, specs: list[_ColumnSpec], *, first_row: int) -> tuple[memoryview, int]:
    """``chunk`` as <row> elements, UTF-8, and how many cells were shortened."""
    buffer = io.BytesIO()
    row_number = pl.int_range(first_row, first_row + chunk.height, dtype=pl.Int64).cast(pl.String)
    cells: list[pl.Expr] = []
    shortened = 0
    values = chunk.select([spec.value.alias(spec.name) for spec in specs])
    for spec in specs:
        if spec.kind == "text":
            column, cut = _fit_cells(values.get_column(spec.name))
            shortened += cut
            if cut:
                values = values.with_columns(column)
        cells.append(_cell_expr(spec, row_number))
    rows = values.select(
        pl.concat_str([pl.lit('<row r="'), row_number, pl.lit('">'), *cells, pl.lit("</row>")])
    )
    # polars' CSV writer is its fastest way out of a string column: with no quoting and no
    # line terminator it writes the <row> strings verbatim, back to back.
    rows.write_csv(buffer, include_header=False, quote_style="never", line_terminator="")
    return buffer.getbuffer(), shortened


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
    return rows


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
            widths.append(float(max(floor, 20)))
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


def _workbook_xml(
    names: list[str], column_count: int, data_sheets: list[str], data: pl.DataFrame, per_sheet: int
) -> str:
    sheets = "".join(
        f'<sheet name="{_xml_escape(name)}" sheetId="{i}" r:id="rId{i}"/>'
        for i, name in enumerate(names, start=1)
    )
    last = _column_letter(max(column_count, 1) - 1)
    # Excel keeps each autofilter's range in a hidden defined name; without it some versions
    # drop the filter buttons.
    defined = []
    for index, name in enumerate(data_sheets):
        rows = min(per_sheet, max(data.height - index * per_sheet, 0))
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
    '<numFmts count="2"><numFmt numFmtId="164" formatCode="yyyy-mm-dd hh:mm:ss"/>'
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


def _settle_manifest(manifest: ExportManifest | None, *, rows: int, tz: str) -> ExportManifest:
    manifest = manifest or ExportManifest(caption="")
    if manifest.rows is not None and manifest.rows != rows:
        raise ExportError(f"the manifest says {manifest.rows:,} rows but the frame has {rows:,}")
    if manifest.tz is not None and manifest.tz != tz:
        raise ExportError(f"the manifest says time zone {manifest.tz!r} but the export uses {tz!r}")
    if manifest.format not in (None, "xlsx"):
        raise ExportError(f"the manifest says format {manifest.format!r} but this is an xlsx export")
    return replace(manifest, rows=rows, tz=tz, format="xlsx")

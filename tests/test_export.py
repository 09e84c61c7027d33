"""Exports: exact rows, real times in the shown zone, safe cells, sheet splitting, atomic files.

Every test writes a real file into ``tmp_path`` and reads it back the way a user's tools would:
openpyxl for xlsx, the ``csv`` module for CSV.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from xml.etree import ElementTree
from zoneinfo import ZoneInfo

import openpyxl
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from audit_analytics.io import export
from audit_analytics.io.export import (
    MAX_XLSX_CELL_CHARS,
    NEUTRALISED_PREFIXES,
    XLSX_TRUNCATION_MARKER,
    ExportError,
    ExportManifest,
    ExportResult,
    export_filename,
    neutralise,
    write_csv,
    write_xlsx,
)
from audit_analytics.schema import JSON_COLUMNS, SCHEMA

T0 = datetime(2026, 3, 1, 8, 15, 0, 123000, tzinfo=UTC)


def events(n: int, **overrides: list) -> pl.DataFrame:
    """``n`` schema-shaped events, one minute apart, ids ``e0``, ``e1``, ..."""
    columns = {
        "id": [f"e{i}" for i in range(n)],
        "time": [T0 + timedelta(minutes=i) for i in range(n)],
        "actor": [f"user{i % 3}" for i in range(n)],
        "email": [f"user{i % 3}@example.com" if i % 4 else None for i in range(n)],
        "type": ["auth" if i % 2 else "secret" for i in range(n)],
        "action": ["login"] * n,
        "target": [f"srv-{i}" for i in range(n)],
        "result": ["failed" if i % 5 == 0 else "done" for i in range(n)],
        "ip": ["10.0.0.1"] * n,
        "request_id": [f"req-{i}" for i in range(n)],
        "description": [f"event number {i}" for i in range(n)],
        "params": [json.dumps({"n": i, "tags": ["a", "b"]}) for i in range(n)],
        "before": [None] * n,
        "after": ['{"enabled": true}'] * n,
        "error": [None if i % 5 else "denied" for i in range(n)],
    }
    columns.update(overrides)
    return pl.DataFrame(columns, schema=SCHEMA)


def read_sheet(path: Path, name: str = "Events") -> list[tuple]:
    workbook = openpyxl.load_workbook(path)
    return list(workbook[name].iter_rows(values_only=True))


def read_csv(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.reader(handle))


def about(path: Path) -> dict[str, str]:
    rows = read_sheet(path, "About this export")
    return {key: value for key, value in rows[1:]}


# --------------------------------------------------------------------------- xlsx layout


def test_xlsx_writes_every_row_in_order_with_bold_frozen_filtered_header(tmp_path: Path) -> None:
    frame = events(25).sort("target", descending=True)  # a caller's sort order, not the id order
    path = tmp_path / "out.xlsx"

    result = write_xlsx(frame, path, tz="Europe/Paris")

    workbook = openpyxl.load_workbook(path)
    sheet = workbook["Events"]
    assert result == ExportResult(
        path=path,
        rows=25,
        sheets=("Events", "About this export"),
        bytes=path.stat().st_size,
        format="xlsx",
    )
    assert workbook.sheetnames == ["Events", "About this export"]
    assert sheet.max_row == 26
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref == "A1:O26"
    assert all(cell.font.b for cell in sheet[1])
    assert [cell.value for cell in sheet[1]][:3] == ["ID", "Time (Europe/Paris)", "Actor"]
    assert [row[0].value for row in sheet.iter_rows(min_row=2)] == frame["id"].to_list()
    assert all(8 <= sheet.column_dimensions[letter].width <= 60 for letter in "ABCDEFGHIJKLMNO")


def test_xlsx_cells_read_back_as_the_frame(tmp_path: Path) -> None:
    frame = events(6)
    path = tmp_path / "out.xlsx"

    write_xlsx(frame, path)

    rows = read_sheet(path)[1:]
    result = pl.DataFrame(rows, schema=list(SCHEMA.names()), orient="row").with_columns(
        pl.col("time").dt.replace_time_zone("UTC").dt.cast_time_unit("us"), pl.col("before").cast(pl.String)
    )
    expected = frame.with_columns(pl.col("type", "result").cast(pl.String))
    assert_frame_equal(result, expected)


def test_xlsx_accepts_a_lazy_frame(tmp_path: Path) -> None:
    path = tmp_path / "out.xlsx"

    result = write_xlsx(events(4).lazy().filter(pl.col("result") == "done"), path)

    assert result.rows == 3
    assert len(read_sheet(path)) == 4


@pytest.mark.parametrize(
    ("utc", "tz", "expected"),
    [
        pytest.param(
            datetime(2026, 1, 15, 12, 0, tzinfo=UTC),
            "Europe/Paris",
            datetime(2026, 1, 15, 13, 0),
            id="winter",
        ),
        pytest.param(
            datetime(2026, 7, 15, 12, 0, tzinfo=UTC),
            "Europe/Paris",
            datetime(2026, 7, 15, 14, 0),
            id="summer-dst",
        ),
        pytest.param(
            datetime(2026, 3, 29, 1, 30, tzinfo=UTC),
            "Europe/Paris",
            datetime(2026, 3, 29, 3, 30),
            id="spring-forward-day",
        ),
        pytest.param(
            datetime(2026, 10, 25, 0, 30, tzinfo=UTC),
            "Europe/Paris",
            datetime(2026, 10, 25, 2, 30),
            id="fall-back-first",
        ),
        pytest.param(
            datetime(2026, 10, 25, 1, 30, tzinfo=UTC),
            "Europe/Paris",
            datetime(2026, 10, 25, 2, 30),
            id="fall-back-second",
        ),
        pytest.param(
            datetime(2026, 3, 1, 2, 30, tzinfo=UTC),
            "America/New_York",
            datetime(2026, 2, 28, 21, 30),
            id="previous-day",
        ),
        pytest.param(
            datetime(2026, 12, 31, 20, 0, tzinfo=UTC),
            "Asia/Tokyo",
            datetime(2027, 1, 1, 5, 0),
            id="next-year",
        ),
        pytest.param(
            datetime(2026, 3, 1, 23, 59, 59, 999000, tzinfo=UTC),
            "Asia/Kolkata",
            datetime(2026, 3, 2, 5, 29, 59, 999000),
            id="half-hour-zone-milliseconds",
        ),
        pytest.param(
            datetime(2026, 3, 1, 0, 0, tzinfo=UTC), "UTC", datetime(2026, 3, 1, 0, 0), id="utc-midnight"
        ),
    ],
)
def test_xlsx_times_are_datetime_cells_in_the_shown_zone(
    tmp_path: Path, utc: datetime, tz: str, expected: datetime
) -> None:
    path = tmp_path / "out.xlsx"

    write_xlsx(events(1, time=[utc]), path, tz=tz)

    cell = openpyxl.load_workbook(path)["Events"]["B2"]
    assert cell.value == expected
    assert cell.value == utc.astimezone(ZoneInfo(tz)).replace(tzinfo=None)
    assert cell.is_date
    # milliseconds shown: a spreadsheet rounds a time to the seconds it shows, so 23:59:59.6
    # read as 00:00:00 of the next day under "hh:mm:ss" (an event on the wrong day)
    assert cell.number_format == "yyyy-mm-dd hh:mm:ss.000"
    assert openpyxl.load_workbook(path)["Events"]["B1"].value == f"Time ({tz})"


@pytest.mark.parametrize(
    ("column", "dtype", "values", "expected"),
    [
        pytest.param("n", pl.Int64, [1, None, -2], [1, None, -2], id="int"),
        pytest.param("x", pl.Float64, [1.5, float("nan"), float("-inf")], [1.5, "NaN", "-inf"], id="float-non-finite"),
        pytest.param("ok", pl.Boolean, [True, None, False], [True, None, False], id="bool"),
        pytest.param("day", pl.Date, [date(2026, 3, 1), None, date(1999, 12, 31)],
                     [datetime(2026, 3, 1), None, datetime(1999, 12, 31)], id="date"),
        pytest.param("naive", pl.Datetime("ms"), [datetime(2026, 3, 1, 12)] * 3, [datetime(2026, 3, 1, 13)] * 3,
                     id="naive-datetime-is-utc"),
    ],
)  # fmt: skip
def test_xlsx_other_dtypes(
    tmp_path: Path, column: str, dtype: pl.DataType, values: list, expected: list
) -> None:
    path = tmp_path / "out.xlsx"

    write_xlsx(pl.DataFrame({column: values}, schema={column: dtype}), path, tz="Europe/Paris")

    assert [row[0] for row in read_sheet(path)[1:]] == expected


# --------------------------------------------------------------------------- hostile text

LONG = "x" * 40_000
HOSTILE = [
    pytest.param('=HYPERLINK("http://x")', True, id="hyperlink-formula"),
    pytest.param("+1", True, id="plus"),
    pytest.param("-2+3", True, id="minus"),
    pytest.param("@SUM(A1)", True, id="at"),
    pytest.param("\tX", True, id="tab"),
    pytest.param("\rY", True, id="carriage-return"),
    pytest.param("=cmd|' /C calc'!A0", True, id="dde"),
    pytest.param("<script>alert(1)</script> & </t></is>", False, id="markup"),
    pytest.param("naïve 日本語 😀 Ελληνικά", False, id="unicode"),
    pytest.param("abc\u202egnp.exe", False, id="rtl-override"),
    pytest.param("line one\nline two\r\nthree", False, id="newlines"),
    pytest.param("  padded  ", False, id="surrounding-spaces"),
    pytest.param(" =1+1", False, id="space-before-equals"),
    pytest.param("'already quoted", False, id="leading-apostrophe"),
]


@pytest.mark.parametrize(("value", "dangerous"), HOSTILE)
@pytest.mark.parametrize("column", ["actor", "target", "description", "params", "error"])
def test_hostile_text_comes_back_as_text(tmp_path: Path, column: str, value: str, dangerous: bool) -> None:
    frame = events(1, **{column: [value]})

    xlsx = write_xlsx(frame, tmp_path / "out.xlsx")
    write_csv(frame, tmp_path / "out.csv")

    cell = openpyxl.load_workbook(xlsx.path)["Events"].cell(row=2, column=frame.columns.index(column) + 1)
    assert cell.value == value
    assert cell.data_type == "s"
    assert cell.quotePrefix is dangerous
    header, row = read_csv(tmp_path / "out.csv")
    assert row[header.index(column)] == ("'" + value if dangerous else value)


@pytest.mark.parametrize(
    ("value", "xlsx_expected", "csv_expected"),
    [
        pytest.param("", None, "", id="empty"),
        pytest.param(None, None, "", id="null"),
    ],
)
def test_empty_and_null_text(
    tmp_path: Path, value: str | None, xlsx_expected: None, csv_expected: str
) -> None:
    frame = events(1, description=[value])

    write_xlsx(frame, tmp_path / "out.xlsx")
    write_csv(frame, tmp_path / "out.csv")

    assert read_sheet(tmp_path / "out.xlsx")[1][10] == xlsx_expected
    assert read_csv(tmp_path / "out.csv")[1][10] == csv_expected


@pytest.mark.parametrize(
    ("value", "kept_units"),
    [
        pytest.param("x" * 40_000, MAX_XLSX_CELL_CHARS, id="ascii-40k"),
        pytest.param("😀" * 20_000, MAX_XLSX_CELL_CHARS - 1, id="astral-counts-twice"),
    ],
)
def test_xlsx_shortens_overlong_cells_visibly_and_csv_keeps_them(
    tmp_path: Path, value: str, kept_units: int
) -> None:
    # Excel calls a file with a >32,767-character cell corrupt and cuts it on "repair"; the
    # export cuts it itself, says so in the cell, the result and the About sheet.
    frame = events(2, description=[value, "short"])

    result = write_xlsx(frame, tmp_path / "out.xlsx")
    write_csv(frame, tmp_path / "out.csv")

    cell = read_sheet(tmp_path / "out.xlsx")[1][10]
    assert cell.endswith(XLSX_TRUNCATION_MARKER)
    assert value.startswith(cell.removesuffix(XLSX_TRUNCATION_MARKER))
    assert len(cell.encode("utf-16-le")) // 2 == kept_units  # a surrogate pair is never split
    assert read_sheet(tmp_path / "out.xlsx")[2][10] == "short"
    assert result.shortened_cells == 1
    assert "1 cells were longer" in about(tmp_path / "out.xlsx")["Cells shortened"]
    assert read_csv(tmp_path / "out.csv")[1][10] == value


def test_xlsx_cell_at_the_limit_is_kept_whole(tmp_path: Path) -> None:
    value = "=" + "y" * (MAX_XLSX_CELL_CHARS - 1)

    result = write_xlsx(events(1, description=[value]), tmp_path / "out.xlsx")

    assert read_sheet(tmp_path / "out.xlsx")[1][10] == value
    assert result.shortened_cells == 0


@pytest.mark.parametrize(
    ("value", "in_xml"),
    [
        pytest.param("bell\x07", "bell_x0007_", id="control-char-as-ooxml-escape"),
        pytest.param("_x0041_", "_x005F_x0041_", id="escape-lookalike-protected"),
        pytest.param("\rY", "&#13;Y", id="cr-as-character-reference"),
    ],
)
def test_xlsx_xml_is_well_formed_and_escaped_as_excel_reads_it(
    tmp_path: Path, value: str, in_xml: str
) -> None:
    # openpyxl does not decode _xHHHH_ in cells (Excel does), so these are checked in the XML.
    path = tmp_path / "out.xlsx"

    write_xlsx(events(1, description=[value]), path)

    with zipfile.ZipFile(path) as archive:
        for name in archive.namelist():
            ElementTree.fromstring(archive.read(name))
        assert in_xml in archive.read("xl/worksheets/sheet1.xml").decode()


def test_json_columns_stay_text(tmp_path: Path) -> None:
    frame = events(3, before=['{"a": 1}', "[1, 2]", "-1"])

    write_xlsx(frame, tmp_path / "out.xlsx")
    write_csv(frame, tmp_path / "out.csv")

    workbook = openpyxl.load_workbook(tmp_path / "out.xlsx")
    for column in JSON_COLUMNS:
        index = frame.columns.index(column)
        cells = [row[index] for row in workbook["Events"].iter_rows(min_row=2)]
        assert [cell.value for cell in cells] == frame[column].to_list()
        assert all(cell.data_type == "s" for cell in cells if cell.value is not None)
    header, *rows = read_csv(tmp_path / "out.csv")
    assert [row[header.index("params")] for row in rows] == frame["params"].to_list()
    assert [row[header.index("before")] for row in rows] == ['{"a": 1}', "[1, 2]", "'-1"]


# --------------------------------------------------------------------------- sheets and manifest


@pytest.mark.parametrize(
    ("rows", "per_sheet", "expected_sheet_rows"),
    [
        pytest.param(7, 3, [3, 3, 1], id="7-over-3"),
        pytest.param(6, 3, [3, 3], id="exact-multiple"),
        pytest.param(3, 3, [3], id="exactly-one-sheet"),
        pytest.param(2, 1, [1, 1], id="one-row-per-sheet"),
        pytest.param(0, 3, [0], id="empty"),
    ],
)
def test_xlsx_continues_on_further_sheets_without_loss(
    tmp_path: Path, rows: int, per_sheet: int, expected_sheet_rows: list[int]
) -> None:
    frame = events(rows)
    path = tmp_path / "out.xlsx"

    result = write_xlsx(frame, path, max_rows_per_sheet=per_sheet)

    workbook = openpyxl.load_workbook(path)
    data_sheets = ["Events"] + [f"Events ({n})" for n in range(2, len(expected_sheet_rows) + 1)]
    assert workbook.sheetnames == [*data_sheets, "About this export"]
    assert result.sheets == tuple(workbook.sheetnames)
    ids = []
    for name, count in zip(data_sheets, expected_sheet_rows, strict=True):
        sheet = workbook[name]
        assert sheet.freeze_panes == "A2"
        assert sheet.auto_filter.ref == f"A1:O{count + 1}"
        assert sheet["A1"].value == "ID"
        ids += [row[0] for row in sheet.iter_rows(min_row=2, values_only=True)]
    assert ids == frame["id"].to_list()
    assert about(path)["Rows"] == str(rows)
    assert about(path)["Sheets"] == ", ".join(data_sheets)


PROOF_ROWS = (
    "Columns",
    "Chain batch",
    "Chain events",
    "Chain digest",
    "Chain stored at",
    "Rows SHA-256",
    "Rows SHA-256 covers",
    "Events SHA-256",
    "Events SHA-256 covers",
    "Check with",
)


def test_about_sheet_lists_the_manifest(tmp_path: Path) -> None:
    manifest = ExportManifest(
        caption="5 events · auth · failed · last 7 days",
        filters={"period": "last 7 days", "types": "auth", "query": "=cmd|' /C calc'!A0", "users": ""},
        generated_at=datetime(2026, 3, 7, 11, 15, tzinfo=ZoneInfo("Europe/Paris")),
        generated_by="alice",
        source="sqlite:///audit.db",
    )
    path = tmp_path / "out.xlsx"

    written = write_xlsx(events(5), path, tz="Europe/Paris", manifest=manifest)

    result = about(path)
    proof = {key: result.pop(key) for key in PROOF_ROWS}  # the proof (tests/test_export_proof.py)
    assert proof["Chain batch"].startswith("(none")  # a plain frame has no chain position
    assert proof["Rows SHA-256"] == written.rows_sha256
    assert result == {
        "Caption": "5 events · auth · failed · last 7 days",
        "Filter: period": "last 7 days",
        "Filter: types": "auth",
        "Filter: query": "=cmd|' /C calc'!A0",
        "Filter: users": "(none)",
        "Time zone": "Europe/Paris",
        "Rows": "5",
        "Generated at (UTC)": "2026-03-07T10:15:00Z",
        "Generated by": "alice",
        "Format": "xlsx",
        "Source": "sqlite:///audit.db",
        "Sheets": "Events",
    }
    query_cell = openpyxl.load_workbook(path)["About this export"]["B5"]
    assert (query_cell.value, query_cell.data_type, query_cell.quotePrefix) == (
        "=cmd|' /C calc'!A0",
        "s",
        True,
    )
    assert openpyxl.load_workbook(path).sheetnames[-1] == "About this export"


@pytest.mark.parametrize(
    ("manifest", "message"),
    [
        pytest.param(ExportManifest(caption="c", rows=4), "says 4 rows", id="rows"),
        pytest.param(ExportManifest(caption="c", tz="Asia/Tokyo"), "time zone", id="tz"),
        pytest.param(ExportManifest(caption="c", format="csv"), "format", id="format"),
    ],
)
def test_manifest_that_disagrees_with_the_export_is_refused(
    tmp_path: Path, manifest: ExportManifest, message: str
) -> None:
    with pytest.raises(ExportError, match=message):
        write_xlsx(events(5), tmp_path / "out.xlsx", tz="UTC", manifest=manifest)
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- progress and atomicity


def test_progress_reports_each_chunk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(export, "_CHUNK_ROWS", 4)
    calls: list[tuple[int, int]] = []

    write_xlsx(events(10), tmp_path / "out.xlsx", progress=lambda done, total: calls.append((done, total)))

    assert calls == [(0, 10), (4, 10), (8, 10), (10, 10)]


def test_progress_granularity_meets_the_page_bar() -> None:
    assert export._CHUNK_ROWS <= 50_000


def test_failed_xlsx_leaves_no_file_and_keeps_the_old_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(export, "_CHUNK_ROWS", 2)
    path = tmp_path / "out.xlsx"
    path.write_bytes(b"previous export")

    def fail_midway(done: int, total: int) -> None:
        if done >= 4:
            raise KeyboardInterrupt  # the user closed the page

    with pytest.raises(KeyboardInterrupt):
        write_xlsx(events(10), path, progress=fail_midway)

    assert [p.name for p in tmp_path.iterdir()] == ["out.xlsx"]
    assert path.read_bytes() == b"previous export"


def test_failed_csv_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def write_half_then_fail(self: pl.DataFrame, file: Path | io.BytesIO, **_: object) -> None:
        if isinstance(file, io.BytesIO):  # the writer's chunk buffer
            file.write(b"id,time\ne0,")
        else:
            Path(file).write_text("id,time\ne0,")
        raise OSError("disk full")

    monkeypatch.setattr(pl.DataFrame, "write_csv", write_half_then_fail)

    with pytest.raises(OSError, match="disk full"):
        write_csv(events(3), tmp_path / "out.csv")
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- CSV


def test_csv_has_bom_header_every_row_iso_times_and_empty_nulls(tmp_path: Path) -> None:
    frame = events(
        5, time=[datetime(2026, 3, 1, 8, 15, 0, 123456, tzinfo=UTC)] * 4 + [datetime(2026, 7, 1, tzinfo=UTC)]
    )
    path = tmp_path / "out.csv"

    result = write_csv(frame.reverse(), path, tz="Europe/Paris")

    assert path.read_bytes().startswith(b"\xef\xbb\xbfid,time,actor,")
    header, *rows = read_csv(path)
    assert header == list(SCHEMA.names())
    assert (result.rows, result.format, result.sheets, result.bytes) == (5, "csv", (), path.stat().st_size)
    assert [row[0] for row in rows] == ["e4", "e3", "e2", "e1", "e0"]
    assert rows[0][1] == "2026-07-01T02:00:00+02:00"  # whole seconds: no fraction
    assert rows[1][1] == "2026-03-01T09:15:00.123456+01:00"
    assert rows[-1][3] == ""  # null email
    assert rows[0][12] == ""  # null before


@pytest.mark.parametrize(
    ("tz", "expected"),
    [
        pytest.param("UTC", "2026-03-01T02:30:00+00:00", id="utc"),
        pytest.param("America/New_York", "2026-02-28T21:30:00-05:00", id="previous-day"),
        pytest.param("Asia/Kolkata", "2026-03-01T08:00:00+05:30", id="half-hour"),
    ],
)
def test_csv_times_carry_the_zone_offset(tmp_path: Path, tz: str, expected: str) -> None:
    path = tmp_path / "out.csv"

    write_csv(events(1, time=[datetime(2026, 3, 1, 2, 30, tzinfo=UTC)]), path, tz=tz)

    assert read_csv(path)[1][1] == expected


def test_csv_columns_selects_and_orders(tmp_path: Path) -> None:
    path = tmp_path / "out.csv"

    write_csv(events(2).lazy(), path, columns=["actor", "id"])

    assert read_csv(path) == [["actor", "id"], ["user0", "e0"], ["user1", "e1"]]


def test_csv_times_are_the_packages_one_format(tmp_path: Path) -> None:
    # the same text as the command line and the chart downloads: tabular.format_time
    from audit_analytics.io.tabular import format_time

    times = [
        datetime(2026, 3, 1, 8, 15, 0, 123000, tzinfo=UTC),
        datetime(2026, 3, 1, 8, 15, 0, 5, tzinfo=UTC),
    ]
    path = tmp_path / "out.csv"

    write_csv(events(2, time=times), path, tz="Asia/Tokyo", columns=["time"])

    assert read_csv(path)[1:] == [["2026-03-01T17:15:00.123+09:00"], ["2026-03-01T17:15:00.000005+09:00"]]
    assert [row[0] for row in read_csv(path)[1:]] == [format_time(t, "Asia/Tokyo") for t in times]


def test_csv_list_cells_are_joined_and_neutralised(tmp_path: Path) -> None:
    path = tmp_path / "out.csv"

    write_csv(pl.DataFrame({"n": [1, 2], "ids": [["=a", "b"], None]}), path)

    assert read_csv(path) == [["n", "ids"], ["1", "'=a; b"], ["2", ""]]


def test_csv_refuses_a_column_it_cannot_write_and_names_it(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="column 'raw' has type Binary"):
        write_csv(pl.DataFrame({"raw": [b"\x00"]}), tmp_path / "out.csv")
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- helpers and errors


@pytest.mark.parametrize(
    ("value", "expected"),
    [pytest.param(p + "x", "'" + p + "x", id=f"prefix-{ord(p)}") for p in NEUTRALISED_PREFIXES]
    + [
        pytest.param("alice", "alice", id="plain"),
        pytest.param("", "", id="empty"),
        pytest.param("a=b", "a=b", id="equals-inside"),
    ],
)
def test_neutralise(value: str, expected: str) -> None:
    assert neutralise(value) == expected


@pytest.mark.parametrize(
    ("fmt", "label", "expected"),
    [
        pytest.param(
            "xlsx", "2026-03-01 to 2026-03-07", "audit-log_2026-03-01_to_2026-03-07.xlsx", id="date-range"
        ),
        pytest.param(
            "csv", "2026-03-01 – 2026-03-07", "audit-log_2026-03-01_to_2026-03-07.csv", id="en-dash"
        ),
        pytest.param("csv", "2026-03-07", "audit-log_2026-03-07.csv", id="one-day"),
        pytest.param("csv", "Last 7 days", "audit-log_last-7-days_20260307-1015.csv", id="relative"),
        pytest.param("xlsx", "Today", "audit-log_today_20260307-1015.xlsx", id="today"),
        pytest.param(
            "csv", "../../etc/passwd", "audit-log_etc-passwd_20260307-1015.csv", id="no-path-escape"
        ),
        pytest.param("csv", "", "audit-log_all_20260307-1015.csv", id="empty-label"),
    ],
)
def test_export_filename(fmt: str, label: str, expected: str) -> None:
    assert export_filename(fmt, period_label=label, now=datetime(2026, 3, 7, 10, 15)) == expected


@pytest.mark.parametrize(
    ("call", "message"),
    [
        pytest.param(
            lambda p: write_xlsx(events(1), p, tz="Mars/Olympus"), "unknown time zone", id="xlsx-zone"
        ),
        pytest.param(lambda p: write_csv(events(1), p, tz="Nowhere"), "unknown time zone", id="csv-zone"),
        pytest.param(
            lambda p: write_xlsx(events(1), p, max_rows_per_sheet=0), "max_rows_per_sheet", id="zero-rows"
        ),
        pytest.param(
            lambda p: write_xlsx(events(1), p, max_rows_per_sheet=2_000_000),
            "max_rows_per_sheet",
            id="too-many-rows",
        ),
        pytest.param(lambda p: write_csv(events(1), p, columns=["nope"]), "nope", id="unknown-column"),
        pytest.param(
            lambda p: export_filename("pdf", period_label="x", now=datetime(2026, 1, 1)),
            "format",
            id="format",
        ),
    ],
)
def test_bad_requests_raise_export_error(tmp_path: Path, call, message: str) -> None:
    with pytest.raises(ExportError, match=message):
        call(tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_zip64_size_bound_is_an_upper_bound(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Below the bound the sheet is written without zip64 (which some readers warn about);
    # an underestimate would make zipfile fail on a sheet past 2 GiB.
    frame = events(len(HOSTILE), description=[p.values[0] for p in HOSTILE])
    monkeypatch.setattr(export, "_ZIP64_THRESHOLD", 0)  # force the precise branch
    path = tmp_path / "out.xlsx"

    write_xlsx(frame, path)

    with zipfile.ZipFile(path) as archive:
        actual = archive.getinfo("xl/worksheets/sheet1.xml").file_size
    assert export._estimated_xml_bytes(frame) >= actual


def test_xlsx_refuses_more_columns_than_excel_holds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(export, "MAX_XLSX_COLUMNS", 2)

    with pytest.raises(ExportError, match="at most 2 columns"):
        write_xlsx(pl.DataFrame({"a": [1], "b": [2], "c": [3]}), tmp_path / "out.xlsx")
    assert list(tmp_path.iterdir()) == []

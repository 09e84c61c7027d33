"""Exports carry proof: the manifest names the filter, the count, the chain position and two
digests, and ``verify_export`` catches an edited file, an edited log and a rewritten chain.

Hostile throughout: every export comes from a real database file (and one from a real
PostgreSQL server), every edit is made the way a person would make it (a CSV rewritten, a
workbook saved by openpyxl, an UPDATE in SQL), and each test asserts the problem that names
the edit, so nothing passes because a check was skipped.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Callable
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

import openpyxl
import polars as pl
import pytest

from audit_analytics.demo.generate import generate
from audit_analytics.engines import chain
from audit_analytics.engines.store import Store, open_store
from audit_analytics.errors import IntegrityError
from audit_analytics.filters import Filter, Sort
from audit_analytics.integrity import head
from audit_analytics.io import export
from audit_analytics.io.evidence import ExportCheck, verify_export
from audit_analytics.io.export import (
    ABOUT_SHEET,
    MAX_XLSX_CELL_CHARS,
    XLSX_TRUNCATION_MARKER,
    ExportManifest,
    manifest_for,
    manifest_path,
    record_export,
    write_csv,
    write_xlsx,
)
from audit_analytics.schema import COLUMNS

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
EVENTS = generate(1_000, seed=11, now=NOW).events
TZ = "Europe/Paris"


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = open_store(f"sqlite:///{tmp_path}/a.db")
    store.append(EVENTS)
    return store


EVERYTHING = Filter(period="all", query="-=cmd", tz=TZ)  # every event; a value a spreadsheet would run


def exported(
    store: Store,
    path: Path,
    *,
    frame: pl.DataFrame | None = None,
    flt: Filter = EVERYTHING,
    include_archive: bool = False,
    **options: Any,
) -> Path:
    """Export ``frame`` (default: the whole log, newest first) the way the app and the command
    line do: the manifest of :func:`manifest_for`, and the export recorded in the log."""
    if frame is None:
        frame = store.load().sort("time", "id", descending=True)
    manifest = manifest_for(
        flt,
        rows=frame.height,
        sort=Sort("time", True),
        include_archive=include_archive,
        made_at=datetime.now(UTC),
        made_by="alice",
        fmt="csv" if path.suffix == ".csv" else "xlsx",
        source=store.safe_url,
        chain=head(store),
    )
    writer = write_csv if path.suffix == ".csv" else write_xlsx
    written = writer(frame, path, tz=TZ, manifest=manifest, **options)
    record_export(store, flt, manifest, written, target=path.name, via="test")
    return path


def rows_exported(store: Store) -> pl.DataFrame:
    """The log's events as :func:`exported` wrote them (newest first), without the export's
    own record (an ``aa-`` id: the tool's events), which the log holds after the file."""
    events = store.load().filter(~pl.col("id").str.starts_with("aa-"))
    return events.sort("time", "id", descending=True)


def problems_naming(check: ExportCheck, text: str) -> list[str]:
    return [problem for problem in check.problems if text in problem]


# --------------------------------------------------------------------------- clean exports


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_fresh_export_verifies_against_the_file_and_the_log(
    store: Store, tmp_path: Path, suffix: str
) -> None:
    path = exported(store, tmp_path / f"out{suffix}")

    file_only = verify_export(path)
    with_log = verify_export(path, store=store)

    assert (file_only.ok, file_only.db_checked, file_only.checked_rows) == (True, False, 1_000)
    assert (with_log.ok, with_log.db_checked, with_log.checked_rows) == (True, True, 1_000), with_log.problems
    assert with_log.summary() == f"out{suffix}: OK: 1,000 rows match the manifest and the log"
    assert with_log.as_dict()["ok"] is True and with_log.as_dict()["problems"] == []


def test_csv_sidecar_names_the_export(store: Store, tmp_path: Path) -> None:
    position = head(store)
    path = exported(store, tmp_path / "out.csv")

    result = json.loads(manifest_path(path).read_text(encoding="utf-8"))

    frame = rows_exported(store)
    hashes = "".join(h + "\n" for h in chain.event_hashes(frame))
    assert manifest_path(path).name == "out.csv.manifest.json"
    assert result["manifest"] == "audit-analytics-export/1"
    assert (result["format"], result["file"], result["rows"], result["tz"]) == ("csv", "out.csv", 1_000, TZ)
    assert result["columns"] == list(COLUMNS)
    assert result["filters"] == EVERYTHING.as_params() | {
        "include archive": "no",
        "sort": "time descending",
        "from (instant, UTC)": "",
        "to (instant, UTC, excluded)": "",
    }
    assert (result["made_by"], result["database"]) == ("alice", store.safe_url)
    assert result["chain"] == {
        "batch": position.batch,
        "events": position.events,
        "digest": position.digest,
        "stored_at": position.stored_at,
    }
    assert result["rows_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert result["events_sha256"] == hashlib.sha256(hashes.encode()).hexdigest()


def test_xlsx_about_sheet_keeps_its_rows_and_adds_the_proof(store: Store, tmp_path: Path) -> None:
    position = head(store)
    path = exported(store, tmp_path / "out.xlsx")

    rows = dict(list(openpyxl.load_workbook(path)[ABOUT_SHEET].iter_rows(values_only=True))[1:])

    assert rows["Caption"] == EVERYTHING.describe(count=1_000) and rows["Rows"] == "1000"
    assert rows["Filter: query"] == "-=cmd"
    assert rows["Time zone"] == TZ and rows["Generated by"] == "alice" and rows["Sheets"] == "Events"
    assert json.loads(rows["Columns"]) == list(COLUMNS)
    assert (rows["Chain batch"], rows["Chain events"], rows["Chain digest"]) == (
        str(position.batch),
        str(position.events),
        position.digest,
    )
    assert len(rows["Rows SHA-256"]) == 64 and len(rows["Events SHA-256"]) == 64


def test_a_plain_frame_has_no_chain_position_and_still_verifies(tmp_path: Path) -> None:
    # a notebook's frame: no database, not events
    frame = pl.DataFrame({"actor": ["=1+1", "bob"], "n": [1, 2]})
    for name in ("nb.csv", "nb.xlsx"):
        writer = write_csv if name.endswith(".csv") else write_xlsx
        result = writer(frame, tmp_path / name)

        check = verify_export(tmp_path / name)

        assert result.manifest is not None and result.manifest.chain is None
        assert result.events_sha256 is None
        assert check.ok, check.problems
        assert any("names no chain position" in note for note in check.notes)


# --------------------------------------------------------------------------- edited files


def rewrite_csv(path: Path, edit: Callable[[list[list[str]]], None]) -> None:
    """Read the CSV as a spreadsheet user's tool would, change it, write it back."""
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig"), newline="")))
    edit(rows)
    out = io.StringIO(newline="")
    csv.writer(out, lineterminator="\n").writerows(rows)
    path.write_bytes(b"\xef\xbb\xbf" + out.getvalue().encode())


def set_cell(row: int, column: str, value: str) -> Callable[[list[list[str]]], None]:
    def edit(rows: list[list[str]]) -> None:
        rows[row][COLUMNS.index(column)] = value

    return edit


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        pytest.param(
            set_cell(5, "actor", "mallory"), "1 row differs between the file and the database", id="cell"
        ),
        pytest.param(set_cell(7, "time", "2026-01-01T00:00:00+01:00"), "1 row differs", id="time-cell"),
        pytest.param(
            lambda rows: rows.pop(3), "the file has 999 rows; the manifest says 1,000", id="row-deleted"
        ),
        pytest.param(lambda rows: rows.append(rows[1]), "the file has 1,001 rows", id="row-added"),
        pytest.param(
            lambda rows: rows.insert(1, rows.pop(2)), "events_sha256 does not match", id="rows-swapped"
        ),
    ],
)
def test_an_edited_csv_fails_verification(
    store: Store, tmp_path: Path, edit: Callable[[list[list[str]]], None], expected: str
) -> None:
    path = exported(store, tmp_path / "out.csv")
    rewrite_csv(path, edit)

    file_only = verify_export(path)
    with_log = verify_export(path, store=store)

    assert not file_only.ok
    assert problems_naming(file_only, "rows_sha256 does not match: the file's bytes changed")
    assert not with_log.ok
    assert problems_naming(with_log, expected), with_log.problems
    assert "ALTERED" in with_log.summary()


def test_an_edited_csv_cell_is_named_by_its_id_given_the_log(store: Store, tmp_path: Path) -> None:
    path = exported(store, tmp_path / "out.csv")
    event_id = rows_exported(store)["id"][4]
    rewrite_csv(path, set_cell(5, "request_id", "req-forged"))

    check = verify_export(path, store=store)

    assert problems_naming(check, f"ids {event_id}")


def test_a_forged_csv_manifest_is_caught_by_the_log(store: Store, tmp_path: Path) -> None:
    # the file is edited and its manifest rewritten to match: the file alone cannot tell,
    # the database can
    path = exported(store, tmp_path / "out.csv")
    event_id = rows_exported(store)["id"][0]
    rewrite_csv(path, set_cell(1, "actor", "mallory"))
    sidecar = manifest_path(path)
    doc = json.loads(sidecar.read_text(encoding="utf-8"))
    doc["rows_sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    sidecar.write_text(json.dumps(doc), encoding="utf-8")

    file_only = verify_export(path)
    with_log = verify_export(path, store=store)

    assert file_only.ok  # what a manifest kept beside the file can prove, and no more
    assert problems_naming(with_log, f"1 row differs between the file and the database: ids {event_id}")
    assert problems_naming(with_log, "no export event carrying this rows_sha256")


def edit_workbook(path: Path, change: Callable[[openpyxl.Workbook], None]) -> None:
    workbook = openpyxl.load_workbook(path)
    change(workbook)
    workbook.save(path)


def test_an_xlsx_saved_again_unchanged_still_verifies(store: Store, tmp_path: Path) -> None:
    # the digest covers the values a reader sees, not the bytes of one writer
    path = exported(store, tmp_path / "out.xlsx")
    before = path.read_bytes()

    edit_workbook(path, lambda workbook: None)

    assert path.read_bytes() != before
    check = verify_export(path, store=store)
    assert check.ok, check.problems


@pytest.mark.parametrize(
    ("cell", "value"),
    [
        pytest.param("C6", "mallory", id="text"),
        pytest.param("B6", datetime(2026, 1, 1), id="time"),
        pytest.param("F6", None, id="cleared"),
    ],
)
def test_an_edited_xlsx_cell_fails_verification(
    store: Store, tmp_path: Path, cell: str, value: object
) -> None:
    path = exported(store, tmp_path / "out.xlsx")
    event_id = rows_exported(store)["id"][4]  # row 6 = the 5th event

    def change(workbook: openpyxl.Workbook) -> None:
        workbook["Events"][cell].value = value

    edit_workbook(path, change)

    file_only = verify_export(path)
    with_log = verify_export(path, store=store)

    assert problems_naming(file_only, "rows_sha256 does not match: the Events sheets' cells changed")
    assert problems_naming(with_log, f"1 row differs between the file and the database: ids {event_id}")


def test_an_xlsx_with_a_value_outside_the_columns_fails(store: Store, tmp_path: Path) -> None:
    path = exported(store, tmp_path / "out.xlsx")

    def change(workbook: openpyxl.Workbook) -> None:
        workbook["Events"]["Q9"].value = "note"

    edit_workbook(path, change)

    check = verify_export(path)
    # rows_sha256 covers the exported columns; a cell beyond them is a problem of its own
    assert check.problems == ["1 rows have values beyond the exported columns: Events!9"]


def test_an_xlsx_with_a_row_deleted_fails(store: Store, tmp_path: Path) -> None:
    path = exported(store, tmp_path / "out.xlsx")

    edit_workbook(path, lambda workbook: workbook["Events"].delete_rows(10))

    check = verify_export(path)
    assert problems_naming(check, "rows_sha256 does not match")
    assert problems_naming(check, "the Events sheets hold 999 rows; the manifest says 1,000")


# --------------------------------------------------------------------------- edited log


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_an_event_edited_in_the_database_fails_the_log_check_only(
    store: Store, tmp_path: Path, suffix: str
) -> None:
    path = exported(store, tmp_path / f"out{suffix}")
    event_id = store.load().sort("time")["id"][10]
    with store.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE audit_events SET actor = 'x' WHERE id = ?", (event_id,))

    file_only = verify_export(path)
    with_log = verify_export(path, store=store)

    assert file_only.ok, file_only.problems
    assert problems_naming(with_log, f"1 row differs between the file and the database: ids {event_id}")
    assert problems_naming(
        with_log,
        f"changed in the database after they were stored (their chain hash no longer matches): ids {event_id}",
    )
    assert problems_naming(with_log, "events_sha256 does not match")


def test_an_edit_the_file_cannot_show_is_still_caught(store: Store, tmp_path: Path) -> None:
    # params is not exported here: the cells agree with the database, the events do not
    frame = store.load().sort("time")
    columns = [c for c in COLUMNS if c != "params"]
    path = tmp_path / "out.csv"
    write_csv(frame, path, columns=columns, manifest=ExportManifest(caption="", chain=head(store)))
    event_id = frame["id"][3]
    with store.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE audit_events SET params = '{}' WHERE id = ?", (event_id,))

    check = verify_export(path, store=store)

    assert not problems_naming(check, "between the file and the database")
    assert problems_naming(check, "events_sha256 does not match")
    assert problems_naming(check, f"chain hash no longer matches): ids {event_id}")


def test_an_event_deleted_from_the_database_is_named(store: Store, tmp_path: Path) -> None:
    path = exported(store, tmp_path / "out.xlsx")
    event_id = store.load().sort("time")["id"][0]
    with store.engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM audit_events WHERE id = ?", (event_id,))

    check = verify_export(path, store=store)

    assert problems_naming(check, f"1 exported events are not in the database: {event_id}")


def test_an_export_without_ids_cannot_pass_the_log_check(store: Store, tmp_path: Path, capsys) -> None:
    """Neither a pass nor tampering: the check asked for cannot be made, and says so (it was
    reported as ALTERED, exit 5, for an untouched file)."""
    from audit_analytics.cli.main import main

    path = tmp_path / "out.csv"
    write_csv(store.load(), path, columns=["time", "actor", "action"])

    assert verify_export(path).ok
    check = verify_export(path, store=store)
    assert not check.ok and check.problems == [] and not check.db_checked
    assert check.unchecked and check.unchecked.startswith("the export has no id column")
    assert check.summary().startswith("out.csv: NOT CHECKED against the log: the export has no id column")
    url = store.engine.url.render_as_string(hide_password=False)
    assert main(["integrity", "verify-export", str(path), "--db", url]) == 2
    out = capsys.readouterr().out
    assert "NOT CHECKED" in out and "ALTERED" not in out
    assert main(["integrity", "verify-export", str(path), "--file-only"]) == 0


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_a_chain_position_gone_from_the_database_is_reported(
    store: Store, tmp_path: Path, suffix: str
) -> None:
    position = head(store)
    path = exported(store, tmp_path / f"out{suffix}")
    with store.engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM audit_batches WHERE batch = ?", (position.batch,))

    check = verify_export(path, store=store)

    assert problems_naming(
        check, f"the chain position at export time (batch {position.batch}, digest {position.digest[:16]}"
    )
    assert problems_naming(check, "is not in the database")


def test_a_rebuilt_chain_is_reported(store: Store, tmp_path: Path) -> None:
    # the same events stored again elsewhere, in two batches: batch 1 has another digest
    path = exported(store, tmp_path / "out.csv")
    rebuilt = open_store(f"sqlite:///{tmp_path}/rebuilt.db")
    rebuilt.append(EVENTS.head(400))
    rebuilt.append(EVENTS.tail(600))

    check = verify_export(path, store=rebuilt)

    assert problems_naming(check, "batch 1 of the chain now has digest")


# --------------------------------------------------------------------------- unreadable


def test_missing_file_or_manifest_is_an_integrity_error(store: Store, tmp_path: Path) -> None:
    csv_path = exported(store, tmp_path / "out.csv")
    xlsx_path = exported(store, tmp_path / "out.xlsx")

    with pytest.raises(IntegrityError, match="nothere.csv: no such export file"):
        verify_export(tmp_path / "nothere.csv")

    manifest_path(csv_path).write_text("{not json", encoding="utf-8")
    with pytest.raises(IntegrityError, match=r"out.csv.manifest.json: cannot read the manifest"):
        verify_export(csv_path)

    manifest_path(csv_path).unlink()
    with pytest.raises(IntegrityError, match=r"out.csv.manifest.json: no manifest beside out.csv"):
        verify_export(csv_path, store=store)

    edit_workbook(xlsx_path, lambda workbook: workbook.remove(workbook[ABOUT_SHEET]))
    with pytest.raises(IntegrityError, match=r"out.xlsx: no 'About this export' sheet"):
        verify_export(xlsx_path, store=store)


def test_a_manifest_without_its_digest_is_an_integrity_error(store: Store, tmp_path: Path) -> None:
    path = exported(store, tmp_path / "out.xlsx")

    def change(workbook: openpyxl.Workbook) -> None:
        about = workbook[ABOUT_SHEET]
        for row in about.iter_rows():
            if row[0].value == "Rows SHA-256":
                row[1].value = "(none)"

    edit_workbook(path, change)

    with pytest.raises(IntegrityError, match=r"Rows SHA-256 is missing or not a SHA-256"):
        verify_export(path)


# --------------------------------------------------------------------------- the xlsx digest itself

HOSTILE_TEXT = [
    '=HYPERLINK("http://x")',
    "+1",
    "-2",
    "@SUM(A1)",
    "\tindented",
    "\rcarriage",
    "line\nbreak\r\nwindows",
    "bell\x07 and \x1f",
    "_x0041_ looks escaped",
    "&amp; <b> \"quoted\" 'single'",
    "  spaces  ",
    "ünïcödé 😀 \u2028 \u202e",
    "x" * 40_000,  # shortened by the writer
    "😀" * 20_000,  # shortened, never inside a surrogate pair
    "=" + "y" * (MAX_XLSX_CELL_CHARS - 1),  # exactly at the limit: kept whole
    "",
    None,
    "[1, 2]",
    "12345",
]


def hostile_frame() -> pl.DataFrame:
    n = len(HOSTILE_TEXT)
    times = [
        datetime(2026, 3, 1, 8, 15, 0, 123500, tzinfo=UTC),
        datetime(2026, 3, 1, 8, 15, 0, 999999, tzinfo=UTC),
        datetime(2026, 3, 29, 1, 30, tzinfo=UTC),  # the night Paris skips an hour
        datetime(1899, 12, 30, 12, 0, tzinfo=UTC),  # serial below 1: read back as a time
        datetime(1900, 2, 28, 23, 59, 59, 999999, tzinfo=UTC),  # Excel's leap-year bug
        datetime(1850, 6, 1, tzinfo=UTC),  # before Excel's epoch
        datetime(9999, 12, 31, 22, 0, tzinfo=UTC),
        None,
    ]
    return pl.DataFrame(
        {
            "id": [f"e{i}" for i in range(n)],
            "text": HOSTILE_TEXT,
            "time": [times[i % len(times)] for i in range(n)],
            "day": [
                date(1900, 1, 1) if i % 3 == 0 else date(2026, 2, 28) if i % 3 else None for i in range(n)
            ],
            "count": [None if i == 2 else i * 1_000_003 - 7 for i in range(n)],
            "ratio": [float("nan"), float("inf"), -0.0, 1e20, 0.1, None, 1 / 3] * (n // 7) + [2.5] * (n % 7),
            "flag": [None if i % 4 == 0 else i % 2 == 0 for i in range(n)],
            "clock": [time(8, 15, 0, 500) if i % 2 else None for i in range(n)],
        }
    ).with_columns(pl.col("time").dt.cast_time_unit("us"))


def expected_line(cells: tuple[object, ...]) -> str:
    """The rows_sha256 line, written out independently of the package: the JSON list of each
    cell as openpyxl reads it, as text (None as null, a float as repr, times ISO 8601)."""

    def text(value: object) -> str | None:
        if value is None:
            return None
        if isinstance(value, bool):
            return "TRUE" if value else "FALSE"
        if isinstance(value, datetime | time):
            return value.isoformat(timespec="microseconds")
        if isinstance(value, float):
            return repr(value)
        return str(value)

    return json.dumps([text(cell) for cell in cells], ensure_ascii=False, separators=(",", ":"))


def read_back_sha256(path: Path, sheets: list[str], width: int) -> str:
    workbook = openpyxl.load_workbook(path, read_only=True)
    digest = hashlib.sha256()
    for name in sheets:
        for row in workbook[name].iter_rows(values_only=True):
            cells = (tuple(row) + (None,) * width)[:width]
            digest.update((expected_line(cells) + "\n").encode())
    workbook.close()
    return digest.hexdigest()


# 9999-12-31 22:00 UTC is past Excel's last day in Kolkata: openpyxl warns and reads an error
@pytest.mark.filterwarnings("ignore:Cell .* is marked as a date:UserWarning")
@pytest.mark.parametrize("per_sheet", [1_000, 4], ids=["one-sheet", "four-sheets"])
@pytest.mark.parametrize("tz", ["UTC", "Europe/Paris", "Asia/Kolkata"])
def test_xlsx_rows_sha256_at_write_time_is_what_openpyxl_reads_back(
    tmp_path: Path, per_sheet: int, tz: str
) -> None:
    frame = hostile_frame()
    path = tmp_path / "hostile.xlsx"

    result = write_xlsx(frame, path, tz=tz, max_rows_per_sheet=per_sheet)

    data_sheets = [name for name in result.sheets if name != ABOUT_SHEET]
    assert result.shortened_cells == 2
    assert result.rows_sha256 == read_back_sha256(path, data_sheets, frame.width)
    check = verify_export(path)
    assert check.ok and check.checked_rows == frame.height, check.problems


def test_xlsx_row_lines_render_a_frame_as_openpyxl_reads_its_export(tmp_path: Path) -> None:
    # what the log check compares a database's events with
    frame = hostile_frame()
    path = tmp_path / "hostile.xlsx"
    write_xlsx(frame, path, tz="Europe/Paris")

    rows = list(openpyxl.load_workbook(path, read_only=True)["Events"].iter_rows(min_row=2, values_only=True))

    assert export.xlsx_row_lines(frame, tz="Europe/Paris") == [expected_line(row) for row in rows]


def test_a_shortened_cell_is_described_as_written(tmp_path: Path) -> None:
    frame = pl.DataFrame({"id": ["a"], "text": ["z" * 40_000]})
    path = tmp_path / "long.xlsx"

    result = write_xlsx(frame, path)

    cell = openpyxl.load_workbook(path)["Events"]["B2"].value
    assert cell.endswith(XLSX_TRUNCATION_MARKER)
    assert result.rows_sha256 == read_back_sha256(path, ["Events"], 2)
    lines = [
        json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n"
        for row in (["ID", "text"], ["a", cell])
    ]
    assert result.rows_sha256 == hashlib.sha256("".join(lines).encode()).hexdigest()


# --------------------------------------------------------------------------- command line and PostgreSQL


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_cli_export_carries_proof_and_the_log_records_it(tmp_path: Path, fmt: str) -> None:
    from audit_analytics.cli.main import main

    url = f"sqlite:///{tmp_path}/cli.db"
    open_store(url).append(EVENTS)
    path = tmp_path / f"out.{fmt}"

    assert main(["export", "--db", url, "--type", "auth", "--output", str(path)]) == 0

    store = open_store(url)
    check = verify_export(path, store=store)
    assert check.ok, check.problems
    recorded = store.load().filter(pl.col("id").str.starts_with("aa-")).row(0, named=True)
    proof = json.loads(recorded["params"])["proof"]
    assert any(f"the log records this export: event {recorded['id']}" in note for note in check.notes)
    assert proof["events_sha256"] and proof["chain"]["batch"] == 1
    if fmt == "csv":
        assert proof["rows_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.postgres
def test_the_log_check_on_postgresql(pg_store: Store, tmp_path: Path) -> None:
    pg_store.append(EVENTS)
    path = exported(pg_store, tmp_path / "out.csv")
    assert verify_export(path, store=pg_store).ok
    event_id = pg_store.load().sort("time")["id"][20]
    with pg_store.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE audit_events SET actor = 'x' WHERE id = %s", (event_id,))

    check = verify_export(path, store=pg_store)

    assert verify_export(path).ok
    assert problems_naming(check, f"1 row differs between the file and the database: ids {event_id}")
    assert problems_naming(check, "events_sha256 does not match")


def test_an_export_that_includes_the_archive_verifies_with_it(store: Store, tmp_path: Path, capsys) -> None:
    """``export --include-archive`` holds events retention archived and deleted: checked against
    the database alone they were "not in the database" and the fresh export ALTERED (exit 5).
    With the archive they are checked from it; an archived event edited there is named."""
    from audit_analytics.cli.main import main
    from audit_analytics.io import archive, retention

    folder = tmp_path / "archive"
    policy = retention.Policy(group_days={"security": 20, "operational": 20}, archive=str(folder))
    run = retention.apply(store, policy, actor="ann", now=NOW)
    assert run.archived > 100
    everything = archive.merge(store.load(), archive.scan(folder)).sort("time", "id", descending=True)
    path = exported(
        store,
        tmp_path / "with-archive.csv",
        frame=everything,
        flt=Filter(period="all", tz=TZ),
        include_archive=True,
    )
    assert json.loads(manifest_path(path).read_text())["caption"].endswith(" · including the archive")

    alone = verify_export(path, store=store)
    assert problems_naming(alone, f"{run.archived:,} exported events are not in the database")
    assert problems_naming(alone, "give it with --archive")
    check = verify_export(path, store=store, archive=folder)
    assert check.ok, check.problems
    assert check.archive_checked and check.checked_rows == everything.height
    url = str(store.engine.url)
    assert main(["integrity", "verify-export", str(path), "--db", url, "--archive", str(folder)]) == 0
    assert "OK: " in capsys.readouterr().out
    # type:permission reaches the user and organization partitions (the archive's scan left
    # them out: "permission" is not a category)
    archived = archive.scan(folder).collect()
    in_scope = archived.filter(pl.col("type").cast(pl.String).is_in(["user", "organization"])).height
    assert in_scope and archive.held_for(folder, Filter(types=("permission",))) == in_scope
    permission = archive.scan(folder, Filter(types=("permission",))).collect()
    assert permission.height == archived.filter(Filter(types=("permission",)).expr()).height > 0
    # without the archive, the command line says how many archived events it did not search
    assert main(["query", "--db", url, "--count", "--archive", str(folder)]) == 0
    out, err = capsys.readouterr()
    assert int(out) == store.count()
    assert f"note: retention moved {run.archived:,} events of these months and categories" in err
    assert main(["query", "--db", url, "--count", "--archive", str(folder), "--include-archive"]) == 0
    assert "retention moved" not in capsys.readouterr().err

    part = sorted(folder.glob("category=*/month=*/part-*.parquet"))[0]
    rows = pl.read_parquet(part)
    victim = rows["id"][0]
    edited = pl.when(pl.col("id") == victim).then(pl.lit("nothing happened")).otherwise(pl.col("description"))
    rows.with_columns(edited.alias("description")).write_parquet(part)
    after = verify_export(path, store=store, archive=folder)
    assert problems_naming(after, "differ") and problems_naming(after, victim)


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_two_exports_of_the_same_rows_are_told_apart_by_their_maker(
    tmp_path: Path, fmt: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two people exporting the same rows leave two export events with one digest; the check
    named the first (root's) for an auditor's file. It names the one by the manifest's maker."""
    from audit_analytics.cli.main import main

    url = f"sqlite:///{tmp_path}/cli.db"
    open_store(url).append(EVENTS)
    paths = {}
    for who in ("root", "walk-auditor"):
        monkeypatch.setenv("AUDIT_ACTOR", who)
        paths[who] = tmp_path / f"{who}.{fmt}"
        assert main(["export", "--db", url, "--type", "auth", "--output", str(paths[who])]) == 0
    store = open_store(url)
    exports = store.load().filter(pl.col("id").str.starts_with("aa-") & (pl.col("action") == "export"))
    by = dict(zip(exports["actor"], exports["id"], strict=True))
    for who, path in paths.items():
        check = verify_export(path, store=store)
        assert check.ok, check.problems
        note = next(n for n in check.notes if n.startswith("the log records this export"))
        assert f"event {by[who]} by {who} " in note and "2 recorded exports hold these rows" in note


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_a_manifest_edited_to_claim_another_filter_or_maker_is_caught_by_the_log(
    store: Store, tmp_path: Path, suffix: str
) -> None:
    """The rows are untouched; the manifest now says they are the failed events only, exported
    by the CEO. The digests still match the file, so only the log's record of the export (its
    filter and maker) can tell: verify-export said OK."""
    path = exported(store, tmp_path / f"out{suffix}")
    if suffix == ".csv":
        sidecar = manifest_path(path)
        doc = json.loads(sidecar.read_text(encoding="utf-8"))
        doc["filters"]["results"] = "failed"
        doc["made_by"] = "ceo"
        sidecar.write_text(json.dumps(doc), encoding="utf-8")
    else:

        def change(workbook: openpyxl.Workbook) -> None:
            about = workbook[ABOUT_SHEET]
            for row in about.iter_rows(min_row=2):
                if row[0].value == "Filter: results":
                    row[1].value = "failed"
                elif row[0].value == "Generated by":
                    row[1].value = "ceo"

        edit_workbook(path, change)

    check = verify_export(path, store=store)

    assert not check.ok
    differ = problems_naming(check, "the manifest does not say what the log recorded of this export")
    assert differ, check.problems
    assert "made by 'ceo', the log says 'alice'" in differ[0]
    assert "filter results 'failed', the log says '(none)'" in differ[0]


def test_a_row_removed_and_the_manifest_rewritten_to_match_is_caught_by_the_log(
    store: Store, tmp_path: Path
) -> None:
    path = exported(store, tmp_path / "out.csv")
    rewrite_csv(path, lambda rows: rows.pop(3))
    sidecar = manifest_path(path)
    doc = json.loads(sidecar.read_text(encoding="utf-8"))
    doc["rows"] = 999
    doc["rows_sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    doc["events_sha256"] = None  # what a forger cannot recompute without the chain, dropped
    sidecar.write_text(json.dumps(doc), encoding="utf-8")

    assert verify_export(path).ok  # the file agrees with its (rewritten) manifest
    check = verify_export(path, store=store)
    assert not check.ok
    assert problems_naming(check, "the log holds no export event carrying this rows_sha256"), check.problems


def test_a_changed_cell_is_named_by_its_place_column_and_both_values(store: Store, tmp_path: Path) -> None:
    """verify-export said "1 rows differ …: ids X" and no more: which line or cell, which
    column, what the file now says against the log."""
    csv_path = exported(store, tmp_path / "out.csv")
    original = rows_exported(store).row(4, named=True)
    rewrite_csv(csv_path, set_cell(5, "request_id", "req-forged"))
    fifth = store.load().sort("time", "id", descending=True).row(4, named=True)  # the csv's record first
    xlsx_path = exported(store, tmp_path / "out.xlsx")

    def change(workbook: openpyxl.Workbook) -> None:
        workbook["Events"]["C6"].value = "mallory"  # actor of the 5th event

    edit_workbook(xlsx_path, change)

    (in_csv,) = problems_naming(verify_export(csv_path, store=store), "1 row differs")
    assert f"ids {original['id']}; line 6, request_id: the file has 'req-forged', the log" in in_csv
    assert repr(original["request_id"] or "") in in_csv
    (in_xlsx,) = problems_naming(verify_export(xlsx_path, store=store), "1 row differs")
    assert (
        f"ids {fifth['id']}; Events!6, actor: the file has 'mallory', the log {fifth['actor']!r}" in in_xlsx
    )


def swap_rows(sheet: Any, a: int, b: int) -> None:
    for left, right in zip(sheet[a], sheet[b], strict=True):
        left.value, right.value = right.value, left.value


@pytest.mark.parametrize(
    "edit",
    [lambda ws: ws.delete_rows(10), lambda ws: swap_rows(ws, 8, 9)],
    ids=["row-deleted", "row-moved"],
)
def test_rows_removed_or_moved_in_the_file_are_not_blamed_on_the_database(
    store: Store, tmp_path: Path, edit: Callable[[Any], None]
) -> None:
    path = exported(store, tmp_path / "out.xlsx")
    edit_workbook(path, lambda workbook: edit(workbook["Events"]))

    check = verify_export(path, store=store)

    (digest,) = problems_naming(check, "events_sha256 does not match")
    assert "rows removed, added or moved in the file" in digest
    assert "the database's copy" not in digest

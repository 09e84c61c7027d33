"""Check an export against its manifest and, given the database, against the log.

Every export names what it is and carries two digests (see :mod:`audit_analytics.io.export`):
a CSV file in its sidecar ``FILE.manifest.json``, an xlsx workbook on its last sheet, "About
this export".

``rows_sha256``
    what the file holds, as a reader sees it. CSV: the SHA-256 of the file's exact bytes.
    xlsx: the SHA-256 over one line per row of each Events sheet in order, its header row
    first: the JSON list of the row's cell values as openpyxl reads them, as text
    (:func:`audit_analytics.io.export.xlsx_row_line`), each line ended by a newline.
``events_sha256``
    what the rows are, in the log's own terms: the SHA-256 over the chain hash (the SHA-256
    of the canonical JSON, :func:`audit_analytics.engines.chain.event_hashes`) of each
    exported event, in file order, each ended by a newline. Cells are shown in a zone and
    neutralised (a leading ``'``); the canonical events are not, so this is what the
    database is compared with.

:func:`verify_export` recomputes ``rows_sha256`` from the file. With a store it also reads
the exported events (by their ``id`` column) from the database, compares each with its row
in the file (rendered the way the writer renders it) and with its chain hash, recomputes
``events_sha256``, checks that the chain position the manifest names still exists with the
same digest, and holds the manifest to the log's own record of the export (who, the filter,
the count and the digests: :func:`audit_analytics.io.export.record_export`).

Examples
--------
>>> import tempfile
>>> from datetime import UTC, datetime
>>> from pathlib import Path
>>> from audit_analytics.demo.generate import generate
>>> from audit_analytics.engines.store import open_store
>>> from audit_analytics.filters import Filter, Sort
>>> from audit_analytics.integrity import head
>>> from audit_analytics.io.export import manifest_for, record_export, write_csv
>>> store = open_store("sqlite://")
>>> _ = store.append(generate(1_000, seed=1).events)
>>> out = Path(tempfile.mkdtemp()) / "events.csv"
>>> everything = Filter(period="all")
>>> manifest = manifest_for(everything, rows=1_000, sort=Sort("time", False), include_archive=False,
...                         made_at=datetime.now(UTC), made_by="ann", fmt="csv", source="demo", chain=head(store))
>>> written = write_csv(store.load(), out, manifest=manifest)
>>> _ = record_export(store, everything, manifest, written, target=out.name, via="notebook")
>>> verify_export(out, store=store).summary()
'events.csv: OK: 1,000 rows match the manifest and the log'
>>> _ = out.write_bytes(out.read_bytes().replace(b"done", b"DONE", 1))
>>> verify_export(out).problems[0][:60]
"rows_sha256 does not match: the file's bytes changed since i"
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import warnings
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
import sqlalchemy as sa

from audit_analytics.dates import instant
from audit_analytics.engines import chain
from audit_analytics.errors import IntegrityError
from audit_analytics.integrity import Head
from audit_analytics.io import archive as archive_io
from audit_analytics.io import tabular
from audit_analytics.io.export import (
    ABOUT_SHEET,
    MANIFEST_FORMAT,
    ExportFormat,
    manifest_path,
    xlsx_row_line,
    xlsx_row_lines,
)

if TYPE_CHECKING:
    from audit_analytics.engines.store import Store

__all__ = ["ExportCheck", "IntegrityError", "verify_export"]

NAMED_IDS = 20  # ids named in one problem (the count is always exact)
_FETCH_IDS = 500  # ids per query
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(slots=True)
class ExportCheck:
    """What :func:`verify_export` found.

    ``problems`` is every way the file or the log no longer matches the manifest (empty when
    all is well); ``notes`` says what was not or could not be checked and why, and what was
    found besides. ``checked_rows`` counts the file's rows that were read and hashed;
    ``db_checked`` is True when the rows were compared with a database, ``archive_checked``
    when events missing from it were looked up in the retention archive. ``unchecked`` says
    why a check asked for could not be made (an export without the id column, given a
    database): not a sign of tampering, and not a pass either.
    """

    path: Path
    format: ExportFormat
    rows: int
    checked_rows: int = 0
    db_checked: bool = False
    archive_checked: bool = False
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    unchecked: str | None = None

    @property
    def ok(self) -> bool:
        return not self.problems and self.unchecked is None

    def summary(self) -> str:
        """One line: the file, OK or how many problems, what was compared."""
        against = (
            "the manifest, the log and its archive"
            if self.archive_checked
            else "the manifest and the log"
            if self.db_checked
            else "the manifest (file only)"
        )
        if self.ok:
            return f"{self.path.name}: OK: {self.checked_rows:,} rows match {against}"
        if not self.problems:
            return f"{self.path.name}: NOT CHECKED against the log: {self.unchecked}"
        count = len(self.problems)
        return (
            f"{self.path.name}: ALTERED: {count} problem{'s' if count != 1 else ''} "
            f"checking {self.checked_rows:,} rows against {against}"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "format": self.format,
            "ok": self.ok,
            "rows": self.rows,
            "checked_rows": self.checked_rows,
            "db_checked": self.db_checked,
            "archive_checked": self.archive_checked,
            "problems": list(self.problems),
            "notes": list(self.notes),
            "unchecked": self.unchecked,
        }


@dataclass(frozen=True, slots=True)
class _Claim:
    """What the manifest says, whichever format carried it."""

    file: str
    rows: int
    columns: tuple[str, ...]
    tz: str
    chain: Head | None
    rows_sha256: str
    events_sha256: str | None
    sheets: tuple[str, ...] = ()
    made_by: str = ""
    made_at: datetime | None = None
    filters: tuple[tuple[str, str], ...] = ()
    """The filter the manifest says the rows passed, as text ("" for none)."""


@dataclass(slots=True)
class _FileRows:
    """The rows the file holds: their ids (when it has an id column) and, for the database
    comparison, each row as the writer would have rendered it."""

    ids: list[str | None]
    rendered: list[Any]
    places: list[str] = field(default_factory=list)
    """Where each row is in the file, as a reader finds it: ``line 7`` (CSV), ``Events!6``."""
    intact: bool = True
    """The rows are the manifest's (its digest and count match): a difference from the log is
    then the log's; otherwise the file's rows were removed, added or moved."""


def verify_export(
    path: str | Path, *, store: Store | None = None, archive: str | Path | None = None
) -> ExportCheck:
    """Check that an export still matches its manifest and, with ``store``, the log.

    Raises :class:`IntegrityError` (naming what and where) when the file or its manifest is
    missing or cannot be read; everything that can be compared and does not match is a
    problem in the result. See the module's docstring for what each digest covers.

    Parameters
    ----------
    path
        The exported ``.csv`` (its manifest is ``FILE.manifest.json`` beside it) or
        ``.xlsx`` file (its manifest is the "About this export" sheet).
    store
        The database the export came from; without it only the file is checked.
    archive
        The retention archive (``export --include-archive``): exported events that retention
        archived and deleted from the database are read from it and checked like the others
        (their chain hashes stay in the database). Without it they are reported missing.
    """
    path = Path(path)
    if not path.is_file():
        raise IntegrityError(f"{path}: no such export file")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        claim = _csv_claim(path)
        check = ExportCheck(path, "csv", claim.rows)
        rows = _check_csv(path, claim, check, keep=store is not None)
    elif suffix == ".xlsx":
        check, claim, rows = _check_xlsx(path, keep=store is not None)
    else:
        raise IntegrityError(f"{path}: not an export (expected a .csv or .xlsx file)")
    if claim.file and claim.file != path.name:
        check.notes.append(
            f"the manifest names the file {claim.file!r}; it has been renamed to {path.name!r}"
        )
    if claim.chain is None:
        check.notes.append(
            "the manifest names no chain position: the rows did not come from a chained database"
        )
    if store is not None:
        _check_against_log(store, claim, rows, check, archive=archive)
    return check


# ---------------------------------------------------------------------------------------
# CSV


def _csv_claim(path: Path) -> _Claim:
    sidecar = manifest_path(path)
    if not sidecar.is_file():
        raise IntegrityError(
            f"{sidecar}: no manifest beside {path.name} (a CSV export's manifest is FILE.manifest.json)"
        )
    try:
        doc = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IntegrityError(f"{sidecar}: cannot read the manifest: {exc}") from None
    if not isinstance(doc, dict) or doc.get("manifest") != MANIFEST_FORMAT:
        raise IntegrityError(f'{sidecar}: not an export manifest (expected "manifest": "{MANIFEST_FORMAT}")')
    if doc.get("format") != "csv":
        raise IntegrityError(
            f"{sidecar}: the manifest describes a {doc.get('format')!r} export, not a CSV file"
        )
    where = str(sidecar)
    chain_doc = doc.get("chain")
    if chain_doc is not None and not isinstance(chain_doc, dict):
        raise IntegrityError(f'{where}: "chain" is not an object')
    return _Claim(
        file=str(doc.get("file") or ""),
        rows=_int(doc.get("rows"), "rows", where),
        columns=_columns(doc.get("columns"), where),
        tz=_text(doc.get("tz"), "tz", where),
        chain=None if chain_doc is None else _head(chain_doc, where),
        rows_sha256=_digest(doc.get("rows_sha256"), "rows_sha256", where),
        events_sha256=None
        if doc.get("events_sha256") is None
        else _digest(doc.get("events_sha256"), "events_sha256", where),
        made_by=str(doc.get("made_by") or ""),
        made_at=instant(doc.get("made_at")),
        filters=tuple((str(k), "" if v is None else str(v)) for k, v in (doc.get("filters") or {}).items())
        if isinstance(doc.get("filters"), dict)
        else (),
    )


def _check_csv(path: Path, claim: _Claim, check: ExportCheck, *, keep: bool) -> _FileRows:
    data = path.read_bytes()
    actual = hashlib.sha256(data).hexdigest()
    if actual != claim.rows_sha256:
        check.problems.append(
            f"rows_sha256 does not match: the file's bytes changed since it was exported "
            f"(manifest {claim.rows_sha256[:16]}…, file {actual[:16]}…)"
        )
    numbers: list[int] = []
    table = _csv_rows(data, where=str(path), lines=numbers)
    header, body = (table[0], table[1:]) if table else ([], [])
    check.checked_rows = len(body)
    if len(body) != claim.rows:
        check.problems.append(f"the file has {len(body):,} rows; the manifest says {claim.rows:,}")
    expected_header = [tabular.neutralise(name) for name in claim.columns]
    if header != expected_header:
        check.problems.append(f"the file's header {header} is not the manifest's columns {expected_header}")
    ids: list[str | None] = []
    if "id" in claim.columns and header == expected_header:
        at = claim.columns.index("id")
        ids = [row[at] if at < len(row) else None for row in body]
    intact = actual == claim.rows_sha256 and len(body) == claim.rows
    return _FileRows(ids, body if keep else [], [f"line {n}" for n in numbers[1:]] if keep else [], intact)


def _csv_rows(data: bytes, *, where: str, lines: list[int] | None = None) -> list[list[str]]:
    """The CSV's rows as text cells (a missing value and an empty one are both ``""``); each
    row's first line number appended to ``lines`` when given (a cell may hold line breaks)."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise IntegrityError(f"{where}: not UTF-8 text: {exc}") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    rows = []
    read = 0  # lines read before the row
    for row in reader:
        if lines is not None:
            lines.append(read + 1)
        read = reader.line_num
        rows.append(row)
    return rows


def _csv_rendered(frame: pl.DataFrame, claim: _Claim) -> list[list[str]]:
    """The database's events as the CSV writer writes them, read back as the file is."""
    cells = tabular.csv_cells(frame.select(claim.columns), tz=claim.tz)
    buffer = io.BytesIO()
    tabular.write_cells(cells, buffer, bom=True)
    return _csv_rows(buffer.getvalue(), where="the database's rendering")[1:]


# ---------------------------------------------------------------------------------------
# xlsx


def _check_xlsx(path: Path, *, keep: bool) -> tuple[ExportCheck, _Claim, _FileRows]:
    with warnings.catch_warnings():
        # a date past 9999 in a cell: openpyxl warns and reads "#VALUE!", which the digest covers
        warnings.filterwarnings("ignore", "Cell .* is marked as a date", UserWarning)
        return _read_xlsx(path, keep=keep)


def _read_xlsx(path: Path, *, keep: bool) -> tuple[ExportCheck, _Claim, _FileRows]:
    import openpyxl

    try:
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise IntegrityError(f"{path}: cannot read the workbook: {exc}") from None
    try:
        if ABOUT_SHEET not in workbook.sheetnames:
            raise IntegrityError(f"{path}: no {ABOUT_SHEET!r} sheet, so no manifest to check against")
        about: dict[str, str] = {}
        for row in workbook[ABOUT_SHEET].iter_rows(min_row=2, values_only=True):
            if row and row[0] is not None:
                about[str(row[0])] = "" if len(row) < 2 or row[1] is None else str(row[1])
        claim = _xlsx_claim(about, where=f"{path} ({ABOUT_SHEET!r} sheet)")
        check = ExportCheck(path, "xlsx", claim.rows)
        expected_sheets = [*claim.sheets, ABOUT_SHEET]
        if list(workbook.sheetnames) != expected_sheets:
            check.problems.append(
                f"the workbook's sheets are {workbook.sheetnames}; the manifest lists {expected_sheets}"
            )
        digest = hashlib.sha256()
        width = len(claim.columns)
        at = claim.columns.index("id") if "id" in claim.columns else None
        ids: list[str | None] = []
        lines: list[str] = []
        places: list[str] = []
        stray: list[str] = []
        for name in claim.sheets:
            if name not in workbook.sheetnames:
                check.problems.append(f"the sheet {name!r} the manifest lists is missing")
                continue
            for number, row in enumerate(workbook[name].iter_rows(values_only=True), start=1):
                cells = list(row)
                if any(value is not None for value in cells[width:]):
                    stray.append(f"{name}!{number}")
                cells = (cells + [None] * width)[:width]
                line = xlsx_row_line(cells)
                digest.update((line + "\n").encode())
                if number == 1:
                    continue  # the header row: hashed, not a row of data
                check.checked_rows += 1
                if at is not None:
                    ids.append(None if cells[at] is None else str(cells[at]))
                if keep:
                    lines.append(line)
                    places.append(f"{name}!{number}")
    finally:
        workbook.close()
    actual = digest.hexdigest()
    if actual != claim.rows_sha256:
        check.problems.append(
            f"rows_sha256 does not match: the Events sheets' cells changed since the export "
            f"(manifest {claim.rows_sha256[:16]}…, file {actual[:16]}…)"
        )
    if check.checked_rows != claim.rows:
        check.problems.append(
            f"the Events sheets hold {check.checked_rows:,} rows; the manifest says {claim.rows:,}"
        )
    if stray:
        check.problems.append(f"{len(stray):,} rows have values beyond the exported columns: {_named(stray)}")
    intact = actual == claim.rows_sha256 and check.checked_rows == claim.rows
    return check, claim, _FileRows(ids, lines, places, intact)


def _xlsx_claim(about: Mapping[str, str], *, where: str) -> _Claim:
    if "Rows SHA-256" not in about:
        raise IntegrityError(
            f'{where}: no "Rows SHA-256" row: the export was made before exports carried proof'
        )
    batch = about.get("Chain batch", "")
    chain_head = None
    if batch.isdigit():
        chain_head = _head(
            {
                "batch": batch,
                "events": about.get("Chain events"),
                "digest": about.get("Chain digest"),
                "stored_at": about.get("Chain stored at") or None,
            },
            where,
        )
    events = about.get("Events SHA-256", "")
    try:
        columns = json.loads(about.get("Columns", ""))
    except json.JSONDecodeError:
        raise IntegrityError(f'{where}: "Columns" is not a JSON list of names') from None
    sheets = tuple(name.strip() for name in about.get("Sheets", "").split(",") if name.strip())
    if not sheets:
        raise IntegrityError(f'{where}: no "Sheets" row naming the Events sheets')
    return _Claim(
        file="",
        rows=_int(about.get("Rows"), "Rows", where),
        columns=_columns(columns, where),
        tz=_text(about.get("Time zone"), "Time zone", where),
        chain=chain_head,
        rows_sha256=_digest(about.get("Rows SHA-256"), "Rows SHA-256", where),
        events_sha256=events if _SHA256.fullmatch(events) else None,
        sheets=sheets,
        made_by=about.get("Generated by", ""),
        made_at=instant(about.get("Generated at (UTC)")),
        filters=tuple(
            (key.removeprefix("Filter: "), "" if value == "(none)" else value)
            for key, value in about.items()
            if key.startswith("Filter: ")
        ),
    )


# ---------------------------------------------------------------------------------------
# against the log


def _check_against_log(
    store: Store, claim: _Claim, rows: _FileRows, check: ExportCheck, *, archive: str | Path | None = None
) -> None:
    check.db_checked = True
    _check_chain_position(store, claim, check)
    if "id" not in claim.columns:
        check.db_checked = False
        check.unchecked = (
            f"the export has no id column, so its {check.rows:,} rows cannot be found in the log "
            "(export with the id column; --file-only checks the file against its manifest alone)"
        )
        return
    if claim.events_sha256 is None:
        check.notes.append("the manifest has no events_sha256: the rows were compared cell by cell only")
    file_ids = rows.ids
    blank = [str(n) for n, event_id in enumerate(file_ids, start=1) if not event_id]
    if blank:
        check.problems.append(
            f"{len(blank):,} rows have no id, so they cannot be found in the log: rows {_named(blank)}"
        )
    wanted = [event_id for event_id in file_ids if event_id]
    found = store.events_by_id(wanted)
    by_id = {event_id: index for index, event_id in enumerate(found.get_column("id").to_list())}
    missing = [event_id for event_id in wanted if event_id not in by_id]
    if missing and archive is not None:  # archived and deleted by retention: the archive's copy
        found = archive_io.merge(
            found,
            archive_io.scan(archive).join(
                pl.LazyFrame({"id": pl.Series(missing, dtype=pl.String)}).unique(), on="id", how="semi"
            ),
        )
        by_id = {event_id: index for index, event_id in enumerate(found.get_column("id").to_list())}
        missing = [event_id for event_id in wanted if event_id not in by_id]
        check.archive_checked = True
    if missing:
        where = "in the database or the archive" if archive is not None else "in the database"
        check.problems.append(
            f"{len(missing):,} exported events are not {where}{_archived_note(store, missing, archive)}: "
            f"{_named(missing)}"
        )
    present = [(n, event_id) for n, event_id in enumerate(file_ids) if event_id and event_id in by_id]
    ordered = found.select(pl.all().gather([by_id[event_id] for _, event_id in present]))
    # each row as the writer renders it, against the file's row
    rendered = (
        _csv_rendered(ordered, claim)
        if check.format == "csv"
        else xlsx_row_lines(ordered, tz=claim.tz, columns=list(claim.columns))
    )
    unlike = [
        (n, event_id, row)
        for (n, event_id), row in zip(present, rendered, strict=True)
        if rows.rendered[n] != row
    ]
    if unlike:
        differ = [event_id for _, event_id, _ in unlike]
        check.problems.append(
            f"{_rows(len(differ))} between the file and the database: ids {_named(differ)}; "
            + "; ".join(_where_unlike(claim, rows, n, row) for n, _, row in unlike[:NAMED_IDS])
        )
    # each event against its own chain hash: an edit in the database behind the chain's back
    hashes = chain.event_hashes(ordered) if ordered.height else []
    edited = _edited_since_stored(store, [event_id for _, event_id in present], hashes)
    if edited:
        check.problems.append(
            f"{len(edited):,} exported events were changed in the database after they were stored "
            f"(their chain hash no longer matches): ids {_named(edited)}"
        )
    if claim.events_sha256 is not None and not missing and not blank:
        digest = hashlib.sha256("".join(h + "\n" for h in hashes).encode()).hexdigest()
        if digest != claim.events_sha256:
            whose = (
                "the database's copy of the exported events is not what was exported"
                if rows.intact
                else "the file's rows are not the exported events in their order (rows removed, added or "
                "moved in the file)"
            )
            check.problems.append(
                f"events_sha256 does not match: {whose} (manifest {claim.events_sha256[:16]}…, "
                f"database {digest[:16]}…)"
            )
    _note_export_event(store, claim, check)


def _rows(n: int) -> str:
    return f"{n:,} row differs" if n == 1 else f"{n:,} rows differ"


def _where_unlike(claim: _Claim, rows: _FileRows, n: int, logged: Any) -> str:
    """Where one row of the file is not the log's, cell by cell: ``line 7, actor: the file has
    'mallory', the log 'alice'`` (the values as the file holds them, shortened)."""
    mine = rows.rendered[n]
    file_cells = mine if isinstance(mine, list) else json.loads(mine)
    log_cells = logged if isinstance(logged, list) else json.loads(logged)
    place = rows.places[n] if n < len(rows.places) else f"row {n + 1}"
    cells = []
    for column, (a, b) in enumerate(zip(file_cells, log_cells, strict=False)):
        if a != b:
            name = claim.columns[column] if column < len(claim.columns) else f"column {column + 1}"
            cells.append(f"{name}: the file has {_short(a)}, the log {_short(b)}")
    if len(file_cells) != len(log_cells):
        cells.append(f"{len(file_cells)} cells, the log {len(log_cells)}")
    return f"{place}, " + ", ".join(cells)


def _short(value: object, limit: int = 60) -> str:
    text = "" if value is None else str(value)
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


def _check_chain_position(store: Store, claim: _Claim, check: ExportCheck) -> None:
    position = claim.chain
    if position is None or position.batch == 0:
        return
    batches = store.batches
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(batches).where(batches.c.batch == position.batch)).first()
    if row is None:
        check.problems.append(
            f"the chain position at export time (batch {position.batch:,}, digest {position.digest[:16]}…) is not "
            "in the database: the chain was truncated or rebuilt since the export"
        )
        return
    batch = chain.Batch(*row)
    if batch.digest != position.digest:
        check.problems.append(
            f"batch {position.batch:,} of the chain now has digest {batch.digest[:16]}…; at export time it was "
            f"{position.digest[:16]}…: the chain was rewritten since the export"
        )
    elif batch.last_seq != position.events:
        check.problems.append(
            f"batch {position.batch:,} now ends at event {batch.last_seq:,}; at export time {position.events:,}"
        )


def _edited_since_stored(store: Store, ids: Sequence[str], hashes: Sequence[str]) -> list[str]:
    if not ids:
        return []
    with store.engine.begin() as conn:
        links = chain.links_of(conn, store.chain, ids)
    stored = dict(zip(links.get_column("id").to_list(), links.get_column("hash").to_list(), strict=True))
    return [event_id for event_id, now in zip(ids, hashes, strict=True) if stored.get(event_id, now) != now]


def _archived_note(store: Store, ids: Sequence[str], archive: str | Path | None = None) -> str:
    """`` (n archived by retention)`` when some of these ids were archived and deleted (and,
    without ``archive``, how to check them)."""
    c = store.chain.c
    archived = 0
    with store.engine.connect() as conn:
        for start in range(0, len(ids), _FETCH_IDS):
            chunk = list(ids[start : start + _FETCH_IDS])
            stmt = sa.select(sa.func.count()).where(c.id.in_(chunk), c.archived.is_not(None))
            archived += int(conn.execute(stmt).scalar_one())
    if not archived:
        return ""
    if archive is not None:
        return f" ({archived:,} of them archived and deleted by retention, and not in the archive {archive})"
    return (
        f" ({archived:,} of them archived and deleted by retention, so only the archive can check them: "
        "give it with --archive)"
    )


_EXPORT_EVENTS = 1_000
"""The most export events of one digest weighed against a manifest's maker and time."""


def _note_export_event(store: Store, claim: _Claim, check: ExportCheck) -> None:
    """Hold the manifest to the log's own record of the export: the app and the command line
    record every export (its maker, filter, row count and digests) as an ``audit``/``export``
    event. No event carrying the manifest's rows_sha256 is a problem (a file and manifest
    rewritten together: a row removed and the digests recomputed), and so is a manifest whose
    maker, filter or count is not what the event recorded (a manifest edited to say the rows
    are another filter's, or another person's). Two people exporting the same rows leave two
    events with one digest: the manifest's is the one by its maker at its time."""
    t = store.table
    stmt = (
        sa.select(t.c.id, t.c.time, t.c.actor, t.c.params)
        .where(
            t.c.type == "audit",  # on the (type, time) index: the app and command line record exports so
            t.c.action == "export",
            t.c.params.contains(claim.rows_sha256, autoescape=True),
        )
        .order_by(t.c.time, t.c.id)
        .limit(_EXPORT_EVENTS)
    )
    found = store.select_frame(stmt, ("id", "time", "actor", "params"))
    if found.height == 0:
        check.problems.append(
            "the log holds no export event carrying this rows_sha256: the app and the command line record "
            "every export, so the file and its manifest were changed together (or the export was made "
            "another way, or its record was archived by retention)"
        )
        return
    rows = found.to_dicts()
    made_at = claim.made_at

    def distance(row: dict[str, Any]) -> tuple[bool, float]:
        off = abs((row["time"] - made_at).total_seconds()) if made_at is not None else 0.0
        return (bool(claim.made_by) and row["actor"] != claim.made_by, off)

    best = min(rows, key=distance)
    text = (
        f"the log records this export: event {best['id']} by {best['actor']} "
        f"at {best['time']:%Y-%m-%d %H:%M:%S} UTC"
    )
    if len(rows) > 1:
        mine = [r for r in rows if r["actor"] == claim.made_by]
        how = (
            "the one by the manifest's maker at its time"
            if mine and made_at is not None
            else f"none by the manifest's maker {claim.made_by}; the nearest in time"
            if claim.made_by and not mine
            else "the nearest to the manifest's time"
        )
        text += f" ({len(rows):,} recorded exports hold these rows: {how})"
    check.notes.append(text)
    differ = _unlike_the_record(claim, best)
    if differ:
        check.problems.append(
            f"the manifest does not say what the log recorded of this export (event {best['id']}): "
            + "; ".join(differ)
        )


def _unlike_the_record(claim: _Claim, event: Mapping[str, Any]) -> list[str]:
    """What the manifest says otherwise than the export event: its maker, row count, filter
    values and events digest (each as "manifest X, log Y")."""
    try:
        params = json.loads(event.get("params") or "{}")
    except json.JSONDecodeError:
        params = {}
    params = params if isinstance(params, dict) else {}
    out = []
    if claim.made_by and event["actor"] != claim.made_by:
        out.append(f"made by {claim.made_by!r}, the log says {event['actor']!r}")
    count = params.get("count")
    if isinstance(count, int) and count != claim.rows:
        out.append(f"{claim.rows:,} rows, the log says {count:,}")
    said = dict(claim.filters)
    recorded = params.get("filter")
    for key, value in recorded.items() if isinstance(recorded, dict) else ():
        value = "" if value is None else str(value)
        if key in said and said[key] != value:
            out.append(f"filter {key} {said[key] or '(none)'!r}, the log says {value or '(none)'!r}")
    proof = params.get("proof")
    logged = proof.get("events_sha256") if isinstance(proof, dict) else None
    if logged and claim.events_sha256 and logged != claim.events_sha256:
        out.append(f"events_sha256 {claim.events_sha256[:16]}…, the log says {logged[:16]}…")
    return out


# ---------------------------------------------------------------------------------------
# reading a manifest's fields


def _named(items: Iterable[str]) -> str:
    items = list(items)
    shown = ", ".join(items[:NAMED_IDS])
    return shown + (f", … ({len(items) - NAMED_IDS:,} more)" if len(items) > NAMED_IDS else "")


def _int(value: object, name: str, where: str) -> int:
    if isinstance(value, bool):
        raise IntegrityError(f"{where}: {name} is not a whole number: {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    raise IntegrityError(f"{where}: {name} is missing or not a whole number: {value!r}")


def _text(value: object, name: str, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise IntegrityError(f"{where}: {name} is missing")
    return value


def _digest(value: object, name: str, where: str) -> str:
    if not isinstance(value, str) or not _SHA256.fullmatch(value):
        raise IntegrityError(f"{where}: {name} is missing or not a SHA-256 in hex: {value!r}")
    return value


def _columns(value: object, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(name, str) for name in value) or not value:
        raise IntegrityError(f"{where}: the columns are missing or not a list of names")
    return tuple(value)


def _head(doc: Mapping[str, object], where: str) -> Head:
    stored_at = doc.get("stored_at")
    return Head(
        batch=_int(doc.get("batch"), "chain batch", where),
        events=_int(doc.get("events"), "chain events", where),
        digest=_digest(doc.get("digest"), "chain digest", where),
        stored_at=stored_at if isinstance(stored_at, str) else None,
    )

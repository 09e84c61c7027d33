"""Files -> validated events + rejects. Nothing is silently dropped.

Reads CSV, JSON Lines, a JSON array and Parquet. Column names may use common aliases
(:data:`ALIASES`). Every row is validated; a row that fails is kept as a :class:`Reject`
with its line number, the raw row and every reason. ``imported + rejected + duplicates ==
rows read`` always holds for :func:`import_files`.

Examples
--------
>>> import tempfile, pathlib
>>> p = pathlib.Path(tempfile.mkdtemp()) / "a.jsonl"
>>> _ = p.write_text('{"time": "2026-01-01T10:00:00Z", "user": "ann", "category": "auth", '
...                  '"action": "login", "resource": "web", "status": "failed"}\\n'
...                  '{"time": "yesterday", "type": "auth", "action": "login", "result": "done"}\\n')
>>> loaded = load_file(p)
>>> loaded.events.height, len(loaded.rejects)
(1, 1)
>>> loaded.rejects[0].line, loaded.rejects[0].reasons
(2, ("time: 'yesterday' is not ISO-8601 or epoch seconds/milliseconds",))
"""

from __future__ import annotations

import csv
import hashlib
import io
import ipaddress
import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import polars as pl

from audit_analytics.errors import IngestError
from audit_analytics.schema import CATEGORY_CODES, COLUMNS, JSON_COLUMNS, REQUIRED_COLUMNS, RESULTS, SCHEMA

__all__ = ["ALIASES", "Reject", "LoadedFile", "ImportSummary", "load_file", "import_files", "FORMATS"]

Format = Literal["csv", "jsonl", "json", "parquet"]
FORMATS: dict[str, Format] = {
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".parquet": "parquet",
    ".pq": "parquet",
}

ALIASES: dict[str, str] = {
    "timestamp": "time",
    "ts": "time",
    "datetime": "time",
    "created_at": "time",
    "user": "actor",
    "username": "actor",
    "user_name": "actor",
    "category": "type",
    "status": "result",
    "source_ip": "ip",
    "client_ip": "ip",
    "ip_address": "ip",
    "resource": "target",
    "request": "request_id",
    "requestid": "request_id",
    "message": "description",
    "user_email": "email",
}
"""Accepted alternative column names -> the schema's column."""

# a field bigger than this is refused rather than stored (an audit field is not a blob store)
MAX_FIELD_CHARS = 1_000_000
_BINARY_MAGIC = {
    b"PK\x03\x04": "a zip archive",
    b"\x1f\x8b": "a gzip file",
    b"%PDF": "a PDF",
    b"PAR1": "Parquet",
}


@dataclass(frozen=True, slots=True)
class Reject:
    """A row that was not imported: where it was, what it held, and every reason."""

    line: int
    raw: str
    reasons: tuple[str, ...]

    def as_json(self, source: str) -> str:
        return json.dumps(
            {"file": source, "line": self.line, "reasons": list(self.reasons), "raw": self.raw},
            ensure_ascii=False,
        )


@dataclass(frozen=True)
class LoadedFile:
    """A file read and validated: the good rows as an event frame, and the rejects."""

    path: Path
    format: Format
    rows_read: int
    events: pl.DataFrame
    rejects: tuple[Reject, ...]
    ignored_columns: tuple[str, ...] = ()
    # the source line of each event row, parallel to ``events``
    lines: tuple[int, ...] = ()


@dataclass
class ImportSummary:
    """The outcome of importing files into a store."""

    rows_read: int = 0
    imported: int = 0
    rejected: int = 0
    duplicates: int = 0
    files: list[str] = field(default_factory=list)
    rejects_paths: list[str] = field(default_factory=list)
    ignored_columns: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def balanced(self) -> bool:
        return self.imported + self.rejected + self.duplicates == self.rows_read

    def __str__(self) -> str:
        text = f"imported {self.imported:,}, rejected {self.rejected:,}, duplicates {self.duplicates:,}"
        return text + f" (of {self.rows_read:,} rows read)"


# ---------------------------------------------------------------------------------------
# reading raw rows


def _detect_format(path: Path, fmt: str | None) -> Format:
    if fmt:
        if fmt not in ("csv", "jsonl", "json", "parquet"):
            raise IngestError(path, f"unknown format {fmt!r}; formats: csv, jsonl, json, parquet")
        return fmt  # type: ignore[return-value]
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise IngestError(
            path,
            f"cannot tell the format from {suffix or 'no extension'!r}; use .csv, .jsonl, .json or .parquet",
        )
    return FORMATS[suffix]


def _read_text(path: Path, fmt: Format) -> str:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise IngestError(path, "no such file") from None
    except IsADirectoryError:
        raise IngestError(path, "is a directory, not a file") from None
    except OSError as exc:
        raise IngestError(path, f"cannot be read: {exc.strerror or exc}") from None
    if not data.strip():
        raise IngestError(path, "the file is empty")
    for magic, what in _BINARY_MAGIC.items():
        if data.startswith(magic):
            raise IngestError(path, f"looks like {what}, not {fmt.upper()} text")
    if b"\x00" in data[:65536]:
        raise IngestError(path, f"holds NUL bytes (binary data), not {fmt.upper()} text")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise IngestError(
            path, f"is not UTF-8 text (invalid byte 0x{data[exc.start]:02x} on line {line}); save it as UTF-8"
        ) from None
    return text


def _canonical_key(name: object) -> str:
    key = str(name).strip().lower()
    return ALIASES.get(key, key)


def _raw_rows(
    path: Path, fmt: Format
) -> tuple[list[tuple[int, str, dict[str, Any] | None, str | None]], list[str]]:
    """-> ([(line, raw text, mapping or None, parse problem or None)], header columns)."""
    if fmt == "parquet":
        return _parquet_rows(path)
    text = _read_text(path, fmt)
    if fmt == "csv":
        return _csv_rows(path, text)
    if fmt == "jsonl":
        return _jsonl_rows(text), []
    return _json_array_rows(path, text), []


def _csv_rows(path: Path, text: str):
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except csv.Error as exc:
        raise IngestError(path, f"the CSV header cannot be read: {exc}") from None
    names = [h.strip() for h in header]
    if len(names) < 2:
        raise IngestError(
            path,
            f"the header has {len(names)} column ({names[0][:60]!r}); expected comma-separated names such as time,actor,type,action,target,result",
        )
    keys = [_canonical_key(n) for n in names]
    missing = [c for c in REQUIRED_COLUMNS if c not in keys]
    if missing:
        raise IngestError(
            path, f"no column for {', '.join(missing)} in the header (columns: {', '.join(names[:20])})"
        )
    out = []
    prev_line = 1
    while True:
        try:
            values = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            out.append((prev_line + 1, "", None, f"unreadable CSV row: {exc}"))
            break
        line = prev_line + 1
        prev_line = reader.line_num
        raw = _csv_raw(values)
        if not any(v.strip() for v in values):
            out.append((line, raw, None, "empty row"))
            continue
        if len(values) != len(keys):
            out.append(
                (line, raw, None, f"expected {len(keys)} fields as in the header, found {len(values)}")
            )
            continue
        out.append((line, raw, dict(zip(keys, values, strict=True)), None))
    return out, keys


def _csv_raw(values: list[str]) -> str:
    buf = io.StringIO()
    csv.writer(buf).writerow(values)
    return buf.getvalue().rstrip("\r\n")


def _jsonl_rows(text: str):
    out = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            out.append((number, line, None, f"not valid JSON ({exc.msg} at column {exc.colno})"))
            continue
        if not isinstance(obj, dict):
            out.append((number, line, None, f"a JSON {type(obj).__name__} where an object was expected"))
            continue
        out.append((number, line, {_canonical_key(k): v for k, v in obj.items()}, None))
    return out


def _json_array_rows(path: Path, text: str):
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise IngestError(
            path, f"is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
        ) from None
    if isinstance(data, dict):
        for key in ("events", "items", "data", "records"):
            if isinstance(data.get(key), list):
                data = data[key]
                break
    if not isinstance(data, list):
        raise IngestError(path, "expected a JSON array of event objects (or JSON Lines in a .jsonl file)")
    out = []
    for number, obj in enumerate(data, start=1):
        raw = json.dumps(obj, ensure_ascii=False)
        if not isinstance(obj, dict):
            out.append((number, raw, None, f"a JSON {type(obj).__name__} where an object was expected"))
        else:
            out.append((number, raw, {_canonical_key(k): v for k, v in obj.items()}, None))
    return out


def _parquet_rows(path: Path):
    try:
        frame = pl.read_parquet(path)
    except FileNotFoundError:
        raise IngestError(path, "no such file") from None
    except Exception as exc:
        raise IngestError(path, f"is not a readable Parquet file: {str(exc).splitlines()[0]}") from None
    frame = frame.rename({c: _canonical_key(c) for c in frame.columns}, strict=False)
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise IngestError(
            path, f"no column for {', '.join(missing)} (columns: {', '.join(frame.columns[:20])})"
        )
    out = []
    for number, row in enumerate(frame.iter_rows(named=True), start=1):
        out.append((number, json.dumps(row, default=str, ensure_ascii=False), row, None))
    return out, list(frame.columns)


# ---------------------------------------------------------------------------------------
# validating one row


def parse_time(value: Any) -> datetime:
    """ISO-8601 (no offset means UTC) or epoch seconds / milliseconds -> aware UTC datetime.

    >>> parse_time("2026-01-02T03:04:05+01:00").isoformat()
    '2026-01-02T02:04:05+00:00'
    >>> parse_time(1767225600000).isoformat()
    '2026-01-01T00:00:00+00:00'
    """
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)
    if isinstance(value, bool):
        raise ValueError("a boolean is not a time")
    if isinstance(value, int | float):
        return _from_epoch(float(value))
    text = str(value).strip()
    if not text:
        raise ValueError("empty")
    try:
        number = float(text)
    except ValueError:
        number = None
    if number is not None and text.lstrip("-").replace(".", "", 1).isdigit():
        return _from_epoch(number)
    try:
        parsed = datetime.fromisoformat(text.replace(" UTC", "Z"))
    except ValueError:
        raise ValueError(f"{text[:60]!r} is not ISO-8601 or epoch seconds/milliseconds") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _from_epoch(number: float) -> datetime:
    if not math.isfinite(number):
        raise ValueError("not a finite number")
    # 1e11 seconds is the year 5138; anything larger is milliseconds
    seconds = number / 1000 if abs(number) >= 1e11 else number
    try:
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError):
        raise ValueError(f"epoch {number:g} is out of range") from None


def _as_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    if isinstance(value, datetime):
        return value.isoformat()
    text = str(value)
    return text if text.strip() else None


def validate_row(mapping: dict[str, Any]) -> tuple[dict[str, Any] | None, list[str]]:
    """One raw mapping (canonical keys) -> (event dict, []) or (None, reasons)."""
    reasons: list[str] = []
    row: dict[str, Any] = {c: None for c in COLUMNS}
    for column in COLUMNS:
        if column == "time" or column not in mapping:
            continue
        value = mapping[column]
        if column in JSON_COLUMNS and isinstance(value, dict | list):
            row[column] = json.dumps(value, ensure_ascii=False, sort_keys=True)
            continue
        text = _as_text(value)
        if text is not None and len(text) > MAX_FIELD_CHARS:
            reasons.append(f"{column}: {len(text):,} characters, more than the {MAX_FIELD_CHARS:,} allowed")
            continue
        if text is not None and "\x00" in text:
            reasons.append(f"{column}: holds a NUL character")
            continue
        row[column] = text
    for column in REQUIRED_COLUMNS:
        if column == "time":
            if _as_text(mapping.get("time")) is None:
                reasons.append("time: missing")
        elif row[column] is None:
            reasons.append(f"{column}: missing")
    if _as_text(mapping.get("time")) is not None:
        try:
            row["time"] = parse_time(mapping["time"])
        except ValueError as exc:
            reasons.append(f"time: {exc}")
    if row["type"] is not None:
        code = row["type"].strip().lower()
        if code in CATEGORY_CODES:
            row["type"] = code
        else:
            reasons.append(f"type: {row['type'][:40]!r} is not one of {', '.join(CATEGORY_CODES)}")
    if row["result"] is not None:
        code = row["result"].strip().lower()
        if code in RESULTS:
            row["result"] = code
        else:
            reasons.append(f"result: {row['result'][:40]!r} is not one of {', '.join(RESULTS)}")
    if row["ip"] is not None:
        try:
            row["ip"] = str(ipaddress.ip_address(row["ip"].strip()))
        except ValueError:
            reasons.append(f"ip: {row['ip'][:60]!r} is not an IPv4 or IPv6 address")
    for column in JSON_COLUMNS:
        if row[column] is not None:
            try:
                json.loads(row[column])
            except json.JSONDecodeError as exc:
                reasons.append(f"{column}: not valid JSON ({exc.msg} at character {exc.pos + 1})")
    if reasons:
        return None, reasons
    if row["id"] is None:
        row["id"] = derive_id(row)
    return row, []


def derive_id(row: dict[str, Any]) -> str:
    """A stable id from the row's content, so re-importing the same row adds nothing.

    >>> derive_id({"time": None, "actor": "a"}) == derive_id({"actor": "a", "time": None})
    True
    """
    material = json.dumps(
        {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in sorted(row.items()) if k != "id"},
        sort_keys=True,
        ensure_ascii=False,
    )
    return "h-" + hashlib.sha256(material.encode()).hexdigest()[:32]


# ---------------------------------------------------------------------------------------
# public entry points


def load_file(path: str | Path, *, format: Format | None = None) -> LoadedFile:
    """Read and validate one file.

    Raises
    ------
    IngestError
        When the file cannot be read at all (missing, empty, binary, not UTF-8, a JSON array
        that does not parse, a CSV header without the required columns).
    """
    path = Path(path)
    fmt = _detect_format(path, format)
    raw_rows, header = _raw_rows(path, fmt)
    known = set(COLUMNS)
    ignored = tuple(sorted({k for k in header if k not in known}))
    events: list[dict[str, Any]] = []
    lines: list[int] = []
    rejects: list[Reject] = []
    extra_keys: set[str] = set()
    for line, raw, mapping, problem in raw_rows:
        if problem is not None or mapping is None:
            rejects.append(Reject(line, raw, (problem or "unreadable row",)))
            continue
        extra_keys.update(k for k in mapping if k not in known)
        row, reasons = validate_row(mapping)
        if row is None:
            rejects.append(Reject(line, raw, tuple(reasons)))
        else:
            events.append(row)
            lines.append(line)
    if not header:
        ignored = tuple(sorted(extra_keys))
    frame = pl.DataFrame(events, schema=SCHEMA) if events else pl.DataFrame(schema=SCHEMA)
    return LoadedFile(path, fmt, len(raw_rows), frame, tuple(rejects), ignored, tuple(lines))


def write_rejects(rejects: Iterable[Reject], path: Path, *, source: str) -> None:
    """Rejects as JSON Lines: file, line, reasons, raw."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        for reject in rejects:
            out.write(reject.as_json(source) + "\n")


def rejects_path_for(path: Path) -> Path:
    return path.with_name(path.name + ".rejects.jsonl")


def import_files(
    store,
    paths: Iterable[str | Path],
    *,
    rejects: str | Path | None = None,
) -> ImportSummary:
    """Load, validate and append files to ``store``; write rejects next to each input (or to
    ``rejects``). Every file is read before anything is written, so an unreadable file
    leaves the database untouched.
    """
    loaded = [load_file(p) for p in _expand(paths)]
    summary = ImportSummary()
    all_rejects: list[tuple[str, Reject]] = []
    for item in loaded:
        result = store.append(item.events)
        summary.files.append(str(item.path))
        summary.rows_read += item.rows_read
        summary.imported += result.inserted
        summary.duplicates += result.duplicates
        summary.rejected += len(item.rejects)
        if item.ignored_columns:
            summary.ignored_columns[str(item.path)] = item.ignored_columns
        if item.rejects:
            if rejects is None:
                target = rejects_path_for(item.path)
                write_rejects(item.rejects, target, source=str(item.path))
                summary.rejects_paths.append(str(target))
            else:
                all_rejects.extend((str(item.path), r) for r in item.rejects)
    if rejects is not None and all_rejects:
        target = Path(rejects)
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("w", encoding="utf-8") as out:
            for source, reject in all_rejects:
                out.write(reject.as_json(source) + "\n")
        summary.rejects_paths.append(str(target))
    if not summary.balanced:  # the contract: nothing is lost in the count
        raise RuntimeError(f"import counts do not add up: {summary}")
    return summary


def _expand(paths: Iterable[str | Path]) -> Iterator[Path]:
    for p in paths:
        yield Path(p)

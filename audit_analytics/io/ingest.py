"""Files -> validated events + rejects. Nothing is silently dropped.

Reads CSV, JSON Lines, a JSON array and Parquet. Column names may use common aliases
(:data:`ALIASES`). Every row is validated; a row that fails is kept as a :class:`Reject`
with its line number, the raw row and every reason. ``imported + rejected + duplicates ==
rows read`` always holds for :func:`import_files`.

Files are streamed, never read whole (except a JSON array, which is capped at
:data:`MAX_JSON_ARRAY_BYTES`; use JSON Lines for bigger files): :func:`import_files` first
streams every file once to check it can be read at all (so an unreadable file writes
nothing), then streams them again in batches of :data:`BATCH_ROWS` rows into **one**
transaction. Memory is bounded by the batch, not the file.

What counts as a file error and what as a row error:

* file error (:class:`~audit_analytics.errors.IngestError`, nothing written): missing,
  empty, binary (zip, gzip, PDF, UTF-16, NUL bytes on the first line), a CSV header without
  the required columns or with one column (wrong delimiter), a JSON array that does not
  parse, a file whose non-ASCII lines are mostly not UTF-8 (it is in another encoding:
  re-save it as UTF-8), a Parquet file that cannot be read.
* row rejection (line number + reasons in the rejects file): a line that is not UTF-8 in an
  otherwise UTF-8 file (mixed encodings), a NUL byte, a line longer than
  :data:`MAX_LINE_BYTES` (skipped unread), ragged CSV rows, invalid JSON, a field longer than
  :data:`MAX_FIELD_CHARS`, an id longer than :data:`MAX_ID_CHARS`, text that is not valid
  Unicode (a lone surrogate), a time before 1970 or more than a day in the future, and
  every value check of :func:`validate_row`.
* duplicate: an id already stored (or seen earlier in the same import) adds nothing and is
  counted as a duplicate. When its content differs from the stored event it is also listed
  in the rejects file with ``"kind": "conflict"`` and counted in
  :attr:`ImportSummary.conflicts` (a subset of the duplicates, so the balance still holds).

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

import contextlib
import csv
import dataclasses
import gzip
import hashlib
import io
import itertools
import json
import math
import os
import random
import re
import shutil
import sys
import tempfile
import time
import zlib
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal

import polars as pl
import sqlalchemy as sa

from audit_analytics.engines import chain
from audit_analytics.errors import IngestError, StoreError, UnrecognisedFile
from audit_analytics.io import sources
from audit_analytics.schema import (
    CATEGORY_CODES,
    COLUMNS,
    JSON_COLUMNS,
    REQUIRED_COLUMNS,
    RESULTS,
    SCHEMA,
    canonical_ip,
)

if TYPE_CHECKING:
    import _csv

    import pyarrow.parquet as pq

    from audit_analytics.engines.store import Store

__all__ = [
    "ALIASES",
    "BATCH_ROWS",
    "FORMATS",
    "ImportSummary",
    "OWN_FORMATS",
    "LoadedFile",
    "Reject",
    "check_file",
    "import_files",
    "iter_batches",
    "load_file",
]

Format = Literal["csv", "jsonl", "json", "parquet"]
OWN_FORMATS: tuple[Format, ...] = ("csv", "jsonl", "json", "parquet")
"""Our own schema's formats; every other ``--format`` name is a source of :data:`sources.SOURCES`."""
STDIN = "-"
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

BATCH_ROWS = 20_000
"""Rows validated and written at a time: the unit that bounds memory."""
LINE_BATCH_ROWS = 50_000
"""The same for a source's file of one record per line, mapped as columns: a few hundred MB
at most, and a store writes fewer, bigger parts (chDB: 0.15 s less per batch written)."""

# a field bigger than this is refused rather than stored (an audit field is not a blob store)
MAX_FIELD_CHARS = 1_000_000
MAX_ID_CHARS = 200  # the id column's width in the database
MAX_LINE_BYTES = 16 * 1024 * 1024
"""A JSON Lines line (or a CSV line) longer than this is rejected without being held in memory."""
MAX_JSON_ARRAY_BYTES = 256 * 1024 * 1024
"""A JSON array must be parsed whole; bigger files should be JSON Lines, which streams."""
MAX_RAW_CHARS = 65_536  # the raw row kept in the rejects file is cut here
MAX_LISTED_COLUMNS = 50  # ignored column names listed (a header of 100,000 junk columns is summarised)
FUTURE_SLACK = timedelta(days=1)
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)

_BINARY_MAGIC = {
    b"PK\x03\x04": "a zip archive",
    b"\x1f\x8b": "a gzip file",
    b"%PDF": "a PDF",
    b"PAR1": "Parquet",
    b"\xff\xfe": "UTF-16 text",
    b"\xfe\xff": "UTF-16 text",
}
_UTF8_BOM = b"\xef\xbb\xbf"
_SURROGATE = re.compile("[\ud800-\udfff]")
_IPV4 = sources.IPV4  # a dotted-quad IPv4 address as ``ipaddress`` would print it
_KNOWN = frozenset(COLUMNS)


@dataclass(frozen=True, slots=True)
class Reject:
    """A row that was not imported: where it was, what it held, and every reason.

    ``kind`` is ``"rejected"``, or ``"conflict"`` for a duplicate id whose content differs
    from the stored event (counted as a duplicate, listed so it is not lost from sight).
    """

    line: int
    raw: str
    reasons: tuple[str, ...]
    kind: Literal["rejected", "conflict"] = "rejected"

    def as_json(self, source: str) -> str:
        record: dict[str, Any] = {"file": source, "line": self.line, "reasons": list(self.reasons)}
        record["raw"] = self.raw
        if self.kind != "rejected":
            record["kind"] = self.kind
        return json.dumps(record, ensure_ascii=False)


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
class Batch:
    """Up to :data:`BATCH_ROWS` rows of one file, validated."""

    events: pl.DataFrame
    lines: list[int]
    rejects: list[Reject]
    rows_read: int
    distinct: pl.DataFrame | None = None
    """``events`` once per id, in id order (:func:`_distinct`), when prepared ahead (:func:`_ahead`)."""
    hashes: list[str] | None = None
    """The hash chain's hash of each row of ``distinct`` (:func:`audit_analytics.engines.chain.event_hashes`)."""


@dataclass
class ImportSummary:
    """The outcome of importing files into a store."""

    rows_read: int = 0
    imported: int = 0
    rejected: int = 0
    duplicates: int = 0
    conflicts: int = 0  # duplicates whose content differs from the stored event (a subset)
    files: list[str] = field(default_factory=list)
    rejects_paths: list[str] = field(default_factory=list)
    ignored_columns: dict[str, tuple[str, ...]] = field(default_factory=dict)
    formats: dict[str, str] = field(default_factory=dict)  # file -> the format it was read as
    notes: list[str] = field(default_factory=list)  # what the reading assumed (a syslog year)
    skipped: dict[str, str] = field(default_factory=dict)  # file -> why it could not be read

    @property
    def balanced(self) -> bool:
        return self.imported + self.rejected + self.duplicates == self.rows_read

    def __str__(self) -> str:
        text = f"imported {self.imported:,}, rejected {self.rejected:,}, duplicates {self.duplicates:,}"
        if self.conflicts:
            text += f" ({self.conflicts:,} with conflicting content, listed in the rejects file)"
        return text + f" (of {self.rows_read:,} rows read)"


# ---------------------------------------------------------------------------------------
# the first pass: can the file be read at all?


@dataclass(frozen=True)
class CheckedFile:
    """A file that passed :func:`check_file`: its format and (CSV) header keys, or the source
    format (:mod:`audit_analytics.io.sources`) its records are mapped from.

    ``origin`` is what the file is called in summaries and rejects (``stdin`` for ``-``).
    """

    path: Path
    format: Format
    header: tuple[str, ...] = ()
    source: str | None = None
    origin: Path | None = None
    context: sources.Context | None = None

    @property
    def named(self) -> Path:
        return self.origin or self.path

    @property
    def format_name(self) -> str:
        return self.source or self.format


def _gzipped(path: Path) -> bool:
    return path.name.lower().endswith(".gz")


def _inner_suffix(path: Path) -> str:
    name = path.name.lower()
    return Path(name[:-3]).suffix if name.endswith(".gz") else path.suffix.lower()


def _formats_listed() -> str:
    return ", ".join((*OWN_FORMATS, *sources.SOURCES))


def _detect_format(path: Path, fmt: str | None) -> Format:
    if fmt:
        for own in OWN_FORMATS:
            if fmt == own:
                return own
        raise IngestError(path, f"unknown format {fmt!r}; formats: {_formats_listed()}")
    suffix = _inner_suffix(path)
    if suffix not in FORMATS:
        raise UnrecognisedFile(
            path,
            f"cannot tell the format from {suffix or 'no extension'!r} and the content is none of the "
            f"source formats ({', '.join(sources.SOURCES)}); use .csv, .jsonl, .json or .parquet, or --format",
        )
    return FORMATS[suffix]


@contextlib.contextmanager
def _open(path: Path) -> Iterator[IO[bytes]]:
    """The file's bytes; a ``.gz`` file's decompressed bytes, streamed."""
    try:
        fh = path.open("rb")
    except FileNotFoundError:
        raise IngestError(path, "no such file") from None
    except IsADirectoryError:
        raise IngestError(path, "is a directory, not a file") from None
    except OSError as exc:
        raise IngestError(path, f"cannot be read: {exc.strerror or exc}") from None
    with fh:
        if not _gzipped(path):
            yield fh
            return
        with gzip.GzipFile(fileobj=fh, mode="rb") as unzipped:
            try:
                yield unzipped  # type: ignore[misc]
            except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
                raise IngestError(
                    path, f"is not a readable gzip file ({exc or type(exc).__name__})"
                ) from None


def _head(path: Path) -> bytes:
    with _open(path) as fh:
        return fh.read(sources.SNIFF_BYTES)


def _sniff_source(path: Path, head: bytes) -> str | None:
    """The source format of the file's content (``head``: its first bytes, :func:`_head`), or
    None (then it is one of ours)."""
    if _inner_suffix(path) in (".parquet", ".pq") or head[:4] == b"PAR1":
        return None
    return sources.detect(head)


def _context(path: Path, origin: Path | None, year: int | None) -> sources.Context:
    if year is not None:
        return sources.Context(str(origin or path), year=year, year_from="--year")
    if origin is not None and origin.name == "stdin":
        # the clock stands for the file's time: a December line read in January is from the
        # year before, as it is for a file (a line more than a day ahead of it)
        now = datetime.now(UTC)
        return sources.Context(
            str(origin), year=now.year, year_from="the clock (standard input)", modified=now
        )
    modified = datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)
    return sources.Context(
        str(path), year=modified.year, year_from="the file's modification time", modified=modified
    )


def _lines(fh: IO[bytes]) -> Iterator[tuple[int, bytes | None]]:
    """(line number, bytes without the newline) per ``\\n``-terminated line; ``None`` for a
    line longer than :data:`MAX_LINE_BYTES`, which is skipped without being held."""
    number = 0
    while True:
        chunk = fh.readline(MAX_LINE_BYTES + 1)
        if not chunk:
            return
        number += 1
        if number == 1 and chunk.startswith(_UTF8_BOM):
            chunk = chunk[len(_UTF8_BOM) :]
        if len(chunk) > MAX_LINE_BYTES and not chunk.endswith(b"\n"):
            while True:  # skip the rest of the line in bounded pieces
                more = fh.readline(1 << 20)
                if not more or more.endswith(b"\n"):
                    break
            yield number, None
            continue
        yield number, chunk.rstrip(b"\n").rstrip(b"\r")


def _bad_utf8(line: bytes) -> str | None:
    """Why ``line`` is not UTF-8, or None."""
    try:
        line.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"not UTF-8 text (invalid byte 0x{line[exc.start]:02x} at byte {exc.start + 1})"
    return None


def _check_text(path: Path, fmt: Format) -> None:
    """Stream a text file once: not empty, not binary, and UTF-8 (a stray bad line is a row
    error later; a file that is mostly another encoding is a file error now)."""
    with _open(path) as fh:
        head = fh.read(8)
        if not head:
            raise IngestError(path, "the file is empty")
        for magic, what in _BINARY_MAGIC.items():
            if head.startswith(magic):
                raise IngestError(path, f"looks like {what}, not {fmt.upper()} text")
        fh.seek(0)
        anything = False
        good_non_ascii = bad = 0
        first_bad: tuple[int, bytes, int] | None = None
        for number, line in _lines(fh):
            if line is None:
                anything = True
                continue
            if number == 1 and b"\x00" in line:
                raise IngestError(path, f"holds NUL bytes (binary data), not {fmt.upper()} text")
            if not anything and line.strip():
                anything = True
            if line.isascii():
                continue
            try:
                line.decode("utf-8")
                good_non_ascii += 1
            except UnicodeDecodeError as exc:
                bad += 1
                if first_bad is None:
                    first_bad = (number, line, exc.start)
    if not anything:
        raise IngestError(path, "the file is empty")
    if first_bad is not None and (bad > good_non_ascii or fmt == "json"):
        number, line, start = first_bad
        raise IngestError(
            path,
            f"is not UTF-8 text (invalid byte 0x{line[start]:02x} on line {number}); save it as UTF-8"
            + (f" ({bad:,} lines are not UTF-8)" if bad > 1 else ""),
        )


def check_file(
    path: str | Path, *, format: str | None = None, year: int | None = None, origin: Path | None = None
) -> CheckedFile:
    """Stream ``path`` once and raise :class:`IngestError` when it cannot be read at all.

    The format is ``format`` when given (one of :data:`OWN_FORMATS` or a source's name),
    else the source whose records the file starts with (:func:`audit_analytics.io.sources.detect`),
    else ours by the extension (``.gz`` is decompressed as it streams). Memory stays bounded
    (one line at a time), except for a JSON array, which is parsed whole and so is capped at
    :data:`MAX_JSON_ARRAY_BYTES`.
    """
    path = Path(path)
    try:
        return _check(path, format, year, origin)
    except IngestError as exc:
        if origin is None or exc.path == str(origin):
            raise
        raise IngestError(origin, exc.problem) from None


def _check(path: Path, format: str | None, year: int | None, origin: Path | None) -> CheckedFile:
    named = origin or path
    source = format if format in sources.SOURCES else None
    if format is None:
        head = _head(path)  # read once: for the test of emptiness, the source and stdin's shape
        if len(head) < sources.SNIFF_BYTES and not head.strip():  # whatever its extension
            raise IngestError(named, "the file is empty")
        source = _sniff_source(path, head)
        if source is None and origin is not None:  # standard input has no extension to go by
            first = head.lstrip()[:1]
            format = "jsonl" if first == b"{" else "json" if first == b"[" else "csv"
    if source is not None:
        _check_text(path, source)  # type: ignore[arg-type]
        own: Format = "csv" if sources.SOURCES[source].shape == "csv" else "jsonl"
        return CheckedFile(path, own, source=source, origin=origin, context=_context(path, origin, year))
    if _gzipped(path) and _inner_suffix(path) in (".parquet", ".pq"):
        raise IngestError(named, "a gzip-compressed Parquet file: decompress it first")
    fmt = _detect_format(named, format)
    if fmt == "parquet":
        return CheckedFile(path, fmt, tuple(_parquet_check(path)), origin=origin)
    _check_text(path, fmt)
    if fmt == "csv":
        return CheckedFile(path, fmt, tuple(_csv_header(path)), origin=origin)
    if fmt == "json":
        size = path.stat().st_size
        if size > MAX_JSON_ARRAY_BYTES:
            raise IngestError(
                path,
                f"is a {size / 2**20:,.0f} MiB JSON array; arrays over {MAX_JSON_ARRAY_BYTES // 2**20} MiB "
                "must be parsed whole, so write JSON Lines (.jsonl, one event per line), which streams",
            )
        _json_array(path)
    return CheckedFile(path, fmt, origin=origin)


def _canonical_key(name: object) -> str:
    key = str(name).strip().lower()
    return ALIASES.get(key, key)


def _listed(names: Iterable[str], overflow: bool = False) -> tuple[str, ...]:
    names = sorted(names)
    if len(names) > MAX_LISTED_COLUMNS or overflow:
        more = f"{len(names) - MAX_LISTED_COLUMNS:,}" if not overflow else "many"
        return (*names[:MAX_LISTED_COLUMNS], f"… and {more} more")
    return tuple(names)


def _cut(raw: str) -> str:
    if len(raw) <= MAX_RAW_CHARS:
        return raw
    return raw[:MAX_RAW_CHARS] + f"…[cut: {len(raw):,} characters]"


def _printable_raw(line: bytes) -> str:
    return _cut(line[: MAX_RAW_CHARS * 4].decode("utf-8", "backslashreplace"))


# ---------------------------------------------------------------------------------------
# reading raw rows: (line, raw text, mapping or None, problem or None)

# raw is the line's text (a CSV row's values), kept only long enough to write a reject
RawRow = tuple[int, str | list[str], dict[str, Any] | None, str | None]


def _decoded_lines(fh: IO[bytes], problems: dict[int, str]) -> Iterator[str]:
    """Text lines for csv.reader; a line that is not UTF-8, holds NUL or is too long is
    noted in ``problems`` (by line number) so its record is rejected."""
    for number, line in _lines(fh):
        if line is None:
            problems[number] = f"line {number} is longer than {MAX_LINE_BYTES // 2**20} MiB; not read"
            yield "\n"
            continue
        if b"\x00" in line:
            problems[number] = "holds a NUL byte"
        elif not line.isascii():
            why = _bad_utf8(line)
            if why:
                problems[number] = why
        yield line.decode("utf-8", "surrogateescape") + "\n"


def _csv_reader(fh: IO[bytes], problems: dict[int, str]) -> _csv.Reader:
    # the default field limit (128 KiB) would end the file at a long field; a long field is
    # a row rejection (MAX_FIELD_CHARS), and a line over MAX_LINE_BYTES is never read
    if csv.field_size_limit() < MAX_LINE_BYTES:
        csv.field_size_limit(MAX_LINE_BYTES)
    return csv.reader(_decoded_lines(fh, problems))


def _csv_header(path: Path) -> list[str]:
    with _open(path) as fh:
        reader = _csv_reader(fh, {})
        try:
            header = next(reader)
        except (csv.Error, StopIteration) as exc:
            raise IngestError(path, f"the CSV header cannot be read: {exc}") from None
    names = [h.strip() for h in header]
    if len(names) < 2:
        raise IngestError(
            path,
            f"the header has {len(names)} column ({names[0][:60]!r}); expected comma-separated names "
            "such as time,actor,type,action,target,result",
        )
    keys = [_canonical_key(n) for n in names]
    missing = [c for c in REQUIRED_COLUMNS if c not in keys]
    if missing:
        shown = ", ".join(n[:40] for n in names[:20]) + (
            f", … ({len(names):,} in all)" if len(names) > 20 else ""
        )
        raise IngestError(path, f"no column for {', '.join(missing)} in the header (columns: {shown})")
    return keys


def _csv_rows(path: Path, keys: tuple[str, ...]) -> Iterator[RawRow]:
    # only the schema's columns are kept per row: 100,000 junk columns cost nothing per row
    wanted = [(i, k) for i, k in enumerate(keys) if k in _KNOWN]
    problems: dict[int, str] = {}
    with _open(path) as fh:
        reader = _csv_reader(fh, problems)
        next(reader)  # the header, checked by check_file
        prev_line = reader.line_num
        while True:
            try:
                values = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                line = prev_line + 1
                prev_line = reader.line_num
                yield (line, "", None, f"unreadable CSV row: {exc}")
                continue
            line = prev_line + 1
            span = range(line, reader.line_num + 1)
            prev_line = reader.line_num
            bad = [problems.pop(n) for n in span if n in problems]
            if bad:
                raw = _csv_raw(values).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
                yield (line, _cut(raw), None, "; ".join(bad))
                continue
            if not any(v.strip() for v in values):
                yield (line, _csv_raw(values), None, "empty row")
                continue
            if len(values) != len(keys):
                why = f"expected {len(keys)} fields as in the header, found {len(values)}"
                if len(span) > 1:
                    why += (
                        f" (a quoted field runs from line {line} to {span[-1]}: is a closing quote missing?)"
                    )
                yield (line, _cut(_csv_raw(values)), None, why)
                continue
            yield (line, values, {k: values[i] for i, k in wanted}, None)


def _csv_raw(values: list[str]) -> str:
    buf = io.StringIO()
    csv.writer(buf).writerow(values)
    return buf.getvalue().rstrip("\r\n")


def _jsonl_rows(path: Path) -> Iterator[RawRow]:
    with _open(path) as fh:
        for number, line in _lines(fh):
            if line is None:
                yield (number, "", None, f"the line is longer than {MAX_LINE_BYTES // 2**20} MiB; not read")
                continue
            if not line.strip():
                continue
            if b"\x00" in line:
                yield (number, _printable_raw(line.replace(b"\x00", b"\\0")), None, "holds a NUL byte")
                continue
            try:
                text = line.decode("utf-8")
            except UnicodeDecodeError:
                yield (number, _printable_raw(line), None, _bad_utf8(line))
                continue
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as exc:
                yield (
                    number,
                    _cut(text),
                    None,
                    f"not valid JSON ({sources.json_message(exc)} at column {exc.colno})",
                )
                continue
            except (RecursionError, ValueError) as exc:  # nesting too deep, a 5,000-digit number
                yield (number, _cut(text), None, f"not readable JSON ({type(exc).__name__}: {str(exc)[:80]})")
                continue
            if not isinstance(obj, dict):
                yield (number, _cut(text), None, f"a JSON {type(obj).__name__} where an object was expected")
                continue
            yield (number, text, {_canonical_key(k): v for k, v in obj.items()}, None)


def _json_array(path: Path) -> list[Any]:
    with _open(path) as fh:
        data = fh.read()
    try:
        parsed = json.loads(data.decode("utf-8-sig"))
    except json.JSONDecodeError as exc:
        raise IngestError(
            path, f"is not valid JSON: {sources.json_message(exc)} at line {exc.lineno}, column {exc.colno}"
        ) from None
    except (RecursionError, ValueError) as exc:
        raise IngestError(path, f"is not readable JSON: {type(exc).__name__}: {str(exc)[:80]}") from None
    if isinstance(parsed, dict):
        for key in ("events", "items", "data", "records"):
            if isinstance(parsed.get(key), list):
                parsed = parsed[key]
                break
    if not isinstance(parsed, list):
        raise IngestError(path, "expected a JSON array of event objects (or JSON Lines in a .jsonl file)")
    return parsed


def _json_array_rows(path: Path) -> Iterator[RawRow]:
    data = _json_array(path)
    for number, obj in enumerate(data, start=1):
        raw = json.dumps(obj, ensure_ascii=False)
        if not isinstance(obj, dict):
            yield (number, _cut(raw), None, f"a JSON {type(obj).__name__} where an object was expected")
        else:
            yield (number, raw, {_canonical_key(k): v for k, v in obj.items()}, None)


def _parquet_file(path: Path) -> pq.ParquetFile:
    import pyarrow.parquet as pq

    try:
        if path.is_dir():
            raise IngestError(path, "is a directory, not a file")
        if path.exists() and path.stat().st_size == 0:
            raise IngestError(path, "the file is empty")
        return pq.ParquetFile(path)
    except FileNotFoundError:
        raise IngestError(path, "no such file") from None
    except IngestError:
        raise
    except Exception as exc:
        raise IngestError(path, f"is not a readable Parquet file: {str(exc).splitlines()[0]}") from None


def _parquet_check(path: Path) -> list[str]:
    pf = _parquet_file(path)
    columns = [_canonical_key(c) for c in pf.schema_arrow.names]
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise IngestError(path, f"no column for {', '.join(missing)} (columns: {', '.join(columns[:20])})")
    try:  # decode every page once, a batch at a time, so a corrupt page is a file error now
        for _ in pf.iter_batches(batch_size=BATCH_ROWS):
            pass
    except Exception as exc:
        raise IngestError(path, f"is not a readable Parquet file: {str(exc).splitlines()[0]}") from None
    return columns


def _parquet_rows(path: Path) -> Iterator[RawRow]:
    pf = _parquet_file(path)
    names = [_canonical_key(c) for c in pf.schema_arrow.names]
    number = 0
    try:
        for batch in pf.iter_batches(batch_size=BATCH_ROWS):
            for values in zip(*(col.to_pylist() for col in batch.columns), strict=True):
                number += 1
                row = dict(zip(names, values, strict=True))
                yield (number, "", row, None)
    except IngestError:
        raise
    except Exception as exc:
        raise IngestError(path, f"is not a readable Parquet file: {str(exc).splitlines()[0]}") from None


def _source_rows(checked: CheckedFile) -> Iterator[RawRow]:
    source = sources.SOURCES[checked.source or ""]
    context = checked.context or sources.Context(str(checked.named))
    with _open(checked.path) as fh:
        yield from source.read(_lines(fh), context)


def _raw_rows(checked: CheckedFile) -> Iterator[RawRow]:
    if checked.source is not None:
        return _source_rows(checked)
    if checked.format == "parquet":
        return _parquet_rows(checked.path)
    if checked.format == "csv":
        return _csv_rows(checked.path, checked.header)
    if checked.format == "jsonl":
        return _jsonl_rows(checked.path)
    return _json_array_rows(checked.path)


def _raw_for_reject(raw: str | list[str], mapping: dict[str, Any] | None) -> str:
    if isinstance(raw, list):
        return _cut(_csv_raw(raw))
    if raw or mapping is None:
        return _cut(raw)
    return _cut(json.dumps(mapping, default=str, ensure_ascii=False))


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
    if len(text) > 64:
        raise ValueError(f"{text[:60]!r}… is not ISO-8601 or epoch seconds/milliseconds")
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
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{text[:60]!r} is out of range") from None


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


def validate_row(
    mapping: dict[str, Any], *, now: datetime | None = None
) -> tuple[dict[str, Any] | None, list[str]]:
    """One raw mapping (canonical keys) -> (event dict, []) or (None, reasons).

    ``now`` bounds the time: later than ``now`` plus a day is rejected (default: the clock).
    """
    reasons: list[str] = []
    row: dict[str, Any] = {c: None for c in COLUMNS}
    serialised: set[str] = set()  # JSON columns written here from objects: valid JSON already
    for column in COLUMNS:
        if column == "time" or column not in mapping:
            continue
        value = mapping[column]
        text: str | None
        if column in JSON_COLUMNS and isinstance(value, dict | list):
            try:
                text = json.dumps(value, ensure_ascii=False, sort_keys=True)
            except (TypeError, ValueError, RecursionError) as exc:
                reasons.append(f"{column}: cannot be stored as JSON ({type(exc).__name__})")
                continue
            serialised.add(column)
        else:
            text = _as_text(value)
        if text is None:
            continue
        if len(text) > MAX_FIELD_CHARS:
            reasons.append(f"{column}: {len(text):,} characters, more than the {MAX_FIELD_CHARS:,} allowed")
            continue
        if "\x00" in text:
            reasons.append(f"{column}: holds a NUL character")
            continue
        if _SURROGATE.search(text):
            reasons.append(f"{column}: holds a lone surrogate (not valid Unicode)")
            continue
        row[column] = text
    for column in REQUIRED_COLUMNS:
        if column == "time":
            if _as_text(mapping.get("time")) is None:
                reasons.append("time: missing")
        elif row[column] is None:
            reasons.append(f"{column}: missing")
    if row["id"] is not None and len(row["id"]) > MAX_ID_CHARS:
        reasons.append(f"id: {len(row['id']):,} characters, more than the {MAX_ID_CHARS} allowed")
    if _as_text(mapping.get("time")) is not None:
        try:
            when = parse_time(mapping["time"])
        except ValueError as exc:
            reasons.append(f"time: {exc}")
        else:
            latest = (now or datetime.now(UTC)) + FUTURE_SLACK
            if when < EARLIEST:
                reasons.append(f"time: {when.isoformat()} is before 1970")
            elif when > latest:
                reasons.append(f"time: {when.isoformat()} is more than a day in the future")
            else:
                row["time"] = when
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
    if row["action"] is not None:  # as type and result: "LOGIN" and "login " are a login
        row["action"] = row["action"].strip().lower()
    if row["ip"] is not None:
        plain_v4 = row["ip"].strip()
        if _IPV4.fullmatch(plain_v4):  # already canonical (no leading zeros): skip ipaddress
            row["ip"] = plain_v4
        else:
            try:
                row["ip"] = canonical_ip(plain_v4)
            except ValueError:
                reasons.append(f"ip: {row['ip'][:60]!r} is not an IPv4 or IPv6 address")
    for column in JSON_COLUMNS:
        if row[column] is not None and column not in serialised:
            try:
                json.loads(row[column])
            except json.JSONDecodeError as exc:
                reasons.append(
                    f"{column}: not valid JSON ({sources.json_message(exc)} at character {exc.pos + 1})"
                )
            except (RecursionError, ValueError) as exc:
                reasons.append(f"{column}: not readable JSON ({type(exc).__name__})")
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
# streaming: file -> batches


class _Reading:
    """The columns a file held that the schema does not (filled in while it streams)."""

    def __init__(self, checked: CheckedFile) -> None:
        self.checked = checked
        self.extra: set[str] = {k for k in checked.header if k not in _KNOWN}
        self.overflow = False

    def note(self, mapping: dict[str, Any]) -> None:
        if len(mapping) <= len(_KNOWN) and all(k in _KNOWN for k in mapping):
            return
        for k in mapping:
            if k not in _KNOWN and k not in self.extra:
                if len(self.extra) < 10 * MAX_LISTED_COLUMNS:
                    self.extra.add(k)
                else:
                    self.overflow = True

    @property
    def ignored(self) -> tuple[str, ...]:
        return _listed(self.extra, self.overflow)


def _batches(
    checked: CheckedFile, reading: _Reading, *, batch_rows: int | None, now: datetime
) -> Iterator[Batch]:
    source = sources.SOURCES.get(checked.source or "")
    if source is not None and source.lines is not None:
        yield from _line_batches(checked, source, source.lines, reading, batch_rows=batch_rows, now=now)
    else:
        yield from _validated(
            _raw_rows(checked), checked, reading, batch_rows=batch_rows or BATCH_ROWS, now=now
        )


def _validated(
    rows: Iterable[RawRow], checked: CheckedFile, reading: _Reading, *, batch_rows: int, now: datetime
) -> Iterator[Batch]:
    events: list[dict[str, Any]] = []
    lines: list[int] = []
    rejects: list[Reject] = []
    read = 0
    for raw_row in rows:
        read += 1
        if checked.format != "csv" and raw_row[2] is not None:
            reading.note(raw_row[2])
        _take(raw_row, events, lines, rejects, now)
        if read >= batch_rows:
            yield Batch(_frame(events), lines, rejects, read)
            events, lines, rejects, read = [], [], [], 0
    if read:
        yield Batch(_frame(events), lines, rejects, read)


def _take(
    raw_row: RawRow, events: list[dict[str, Any]], lines: list[int], rejects: list[Reject], now: datetime
) -> None:
    """Validate one read row into ``events`` and ``lines``, or ``rejects``."""
    line, raw, mapping, problem = raw_row
    if problem is not None or mapping is None:
        rejects.append(Reject(line, _raw_for_reject(raw, mapping), (problem or "unreadable row",)))
        return
    row, reasons = validate_row(mapping, now=now)
    if row is None:
        rejects.append(Reject(line, _raw_for_reject(raw, mapping), tuple(reasons)))
    else:
        events.append(row)
        lines.append(line)


# ---------------------------------------------------------------------------------------
# one record per line, a batch at a time: the fast path of a source's big file

_PIECE = 4_096  # lines per piece of the column a batch is decoded from
_SMALLEST_PART = 8  # a batch that does not decode is halved down to parts of this many lines
# a longer line goes row by row: the record path stores its record re-serialised, which can
# be up to twice as long as the line, and must refuse what is too long as it would
_LONGEST_LINE = MAX_FIELD_CHARS // 3
_NOT_BLANK = "[^" + "".join(f"\\x{{{ord(c):x}}}" for c in sources.PY_SPACE) + "]"  # what strip leaves
_ISO_UTC = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$"


def _line_batches(
    checked: CheckedFile,
    source: sources.Source,
    mapper: sources.LineMapper,
    reading: _Reading,
    *,
    batch_rows: int | None,
    now: datetime,
) -> Iterator[Batch]:
    """Batches of a source's file read ``batch_rows`` lines at a time by its
    :class:`~audit_analytics.io.sources.LineMapper` when the file is one record per line,
    else by the source's record reader, as any file. The rows are what the record reader
    and :func:`validate_row` give for the same lines (tests/test_sources_batch.py)."""
    context = checked.context or sources.Context(str(checked.named))
    with _open(checked.path) as fh:
        numbered = _lines(fh)
        head: list[tuple[int, bytes | None]] = []
        for number, line in numbered:
            head.append((number, line))
            if line is None or line.strip():
                break
        first = head[-1][1] if head else None
        everything = itertools.chain(head, numbered)
        if first is None or not mapper.starts(first.decode("utf-8", "replace")):
            yield from _validated(
                source.read(everything, context),
                checked,
                reading,
                batch_rows=batch_rows or BATCH_ROWS,
                now=now,
            )
            return
        rows = batch_rows or LINE_BATCH_ROWS
        while batch := _line_batch(itertools.islice(everything, rows), mapper, context, now):
            yield batch


def _line_batch(
    numbered: Iterator[tuple[int, bytes | None]],
    mapper: sources.LineMapper,
    context: sources.Context,
    now: datetime,
) -> Batch | None:
    """One batch of lines (None when there are none): those the mapper takes are mapped and
    validated as columns; the rest (a line that does not decode, is not UTF-8 or holds NUL, a
    record the mapper leaves to the record reader, a row that needs :func:`validate_row`'s
    word) go row by row."""
    aside: dict[int, bytes | None] = {}  # lines for the record reader as they were read
    numbers: list[pl.Series] = []
    texts: list[pl.Series] = []
    any_line = False
    # a piece at a time, so the batch's bytes are never all held at once; and polars decodes
    # the pieces of a column in parallel, a few thousand lines at a time staying in the CPU's
    # cache (one piece of 100,000 lines decoded 3-4x slower here)
    while part := list(itertools.islice(numbered, _PIECE)):
        any_line = True
        plain: list[tuple[int, bytes]] = []
        for number, line in part:
            if line is not None and len(line) <= _LONGEST_LINE and b"\x00" not in line:
                if line.strip():  # a blank line holds no record
                    plain.append((number, line))
            else:
                aside[number] = line
        if not plain:
            continue
        text = pl.Series("_text", [b for _, b in plain], dtype=pl.Binary).cast(pl.String, strict=False)
        for i in text.is_null().arg_true().to_list():  # not UTF-8
            aside[plain[i][0]] = plain[i][1]
        numbers.append(pl.Series("_line", [n for n, _ in plain], dtype=pl.Int64))
        texts.append(text)
    if not any_line:
        return None
    lines = pl.DataFrame(
        {
            "_line": pl.concat(numbers or [pl.Series("_line", [], pl.Int64)], rechunk=False),
            "_text": pl.concat(texts or [pl.Series("_text", [], pl.String)], rechunk=False),
        }
    ).filter(pl.col("_text").is_not_null())
    mapped = _mapped_lines(lines, mapper)
    chosen = mapped.filter("batch").drop("batch")
    if "time" not in chosen.columns:  # no line decoded
        chosen = pl.DataFrame(schema={"_line": pl.Int64, "_text": pl.String, "time": pl.String})
    good, unsure = _sure(chosen, now)
    events: list[dict[str, Any]] = []
    taken: list[int] = good["_line"].to_list()
    rejects: list[Reject] = []
    for row in unsure.iter_rows(named=True):
        number, text = row.pop("_line"), row.pop("_text")
        _take((number, text, row, None), events, taken, rejects, now)
    read = good.height + unsure.height
    left = mapped.filter(~pl.col("batch")).select("_line", "_text")
    aside.update((n, t.encode()) for n, t in left.iter_rows())
    for raw_row in mapper.read(iter(sorted(aside.items(), key=lambda item: item[0])), context):
        read += 1
        _take(raw_row, events, taken, rejects, now)
    frame = pl.concat([good.drop("_line"), _frame(events)]) if events else good.drop("_line")
    if events:  # in the file's order, as the record path gives them (and chains them)
        order = pl.Series(taken).arg_sort()
        frame, taken = frame[order], [taken[i] for i in order.to_list()]
    rejects.sort(key=lambda reject: reject.line)
    return Batch(frame, taken, rejects, read)


def _mapped_lines(lines: pl.DataFrame, mapper: sources.LineMapper) -> pl.DataFrame:
    """``mapper.map`` of the lines with ``_line`` and ``_text`` beside; a part that does not
    decode is halved until the lines that do not are found (they get ``batch`` false)."""
    try:
        out: pl.DataFrame = mapper.map(lines["_text"])
    except pl.exceptions.PolarsError:
        if lines.height <= _SMALLEST_PART:
            return lines.with_columns(pl.lit(False).alias("batch"))
        half = lines.height // 2
        return pl.concat(
            [_mapped_lines(lines.slice(0, half), mapper), _mapped_lines(lines.slice(half), mapper)],
            how="diagonal_relaxed",
        )
    return pl.concat([lines, out], how="horizontal")


def _sure(frame: pl.DataFrame, now: datetime) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(rows :func:`validate_row` would accept as they are, converted to the schema; the
    others, for it to judge). A mapper's rows: JSON columns hold JSON."""
    frame = frame.with_columns(pl.lit(None, pl.String).alias(c) for c in COLUMNS if c not in frame.columns)
    texts = [c for c in COLUMNS if c != "time"]
    frame = frame.with_columns(
        pl.when(pl.col(c).str.contains(_NOT_BLANK)).then(pl.col(c)).alias(c) for c in texts
    )
    when = (
        pl.when(pl.col("time").str.contains(_ISO_UTC))
        .then(
            pl.col("time").str.to_datetime(
                "%Y-%m-%dT%H:%M:%S%.fZ", time_unit="us", time_zone="UTC", strict=False
            )
        )
        .alias("_when")
    )
    frame = frame.with_columns(when)
    fits = [
        pl.col(c).is_null()
        | ((pl.col(c).str.len_chars() <= MAX_FIELD_CHARS) & ~pl.col(c).str.contains("\x00", literal=True))
        for c in texts
    ]
    ok = pl.all_horizontal(
        pl.col("_when").is_between(EARLIEST, now + FUTURE_SLACK).fill_null(False),
        pl.col("id").str.len_chars().is_between(1, MAX_ID_CHARS).fill_null(False),
        pl.col("type").is_in(list(CATEGORY_CODES)).fill_null(False),
        pl.col("result").is_in(list(RESULTS)).fill_null(False),
        (pl.col("action") == pl.col("action").str.strip_chars().str.to_lowercase()).fill_null(False),
        pl.col("ip").is_null() | pl.col("ip").str.contains(f"^{_IPV4.pattern}$"),
        *fits,
    )
    frame = frame.with_columns(ok.alias("_ok"))
    good = frame.filter("_ok").with_columns(pl.col("_when").alias("time"))
    good = good.select(
        *(pl.col(c).cast(SCHEMA[c]) for c in COLUMNS),
        "_line",
    )
    return good, frame.filter(~pl.col("_ok")).drop("_ok", "_when")


def _frame(events: list[dict[str, Any]]) -> pl.DataFrame:
    return pl.DataFrame(events, schema=SCHEMA) if events else pl.DataFrame(schema=SCHEMA)


def iter_batches(
    path: str | Path,
    *,
    format: str | None = None,
    batch_rows: int | None = None,
    now: datetime | None = None,
) -> Iterator[Batch]:
    """Check ``path`` (raising :class:`IngestError` when it cannot be read at all), then yield
    it as validated batches of at most ``batch_rows`` rows read (default :data:`BATCH_ROWS`,
    or :data:`LINE_BATCH_ROWS` for a source's file of one record per line).

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "b.jsonl"
    >>> row = '{"time": "2026-01-01", "type": "auth", "action": "login", "result": "done"}\\n'
    >>> _ = p.write_text(row * 5)
    >>> [b.rows_read for b in iter_batches(p, batch_rows=2)]
    [2, 2, 1]
    """
    checked = check_file(path, format=format)
    yield from _batches(checked, _Reading(checked), batch_rows=batch_rows, now=now or datetime.now(UTC))


# ---------------------------------------------------------------------------------------
# public entry points


def load_file(
    path: str | Path, *, format: str | None = None, now: datetime | None = None, year: int | None = None
) -> LoadedFile:
    """Read and validate one file, all of it in memory (use :func:`import_files` for big files).

    Raises
    ------
    IngestError
        When the file cannot be read at all (missing, empty, binary, not UTF-8, a JSON array
        that does not parse, a CSV header without the required columns).
    """
    checked = check_file(path, format=format, year=year)
    reading = _Reading(checked)
    frames: list[pl.DataFrame] = []
    lines: list[int] = []
    rejects: list[Reject] = []
    rows_read = 0
    for batch in _batches(checked, reading, batch_rows=None, now=now or datetime.now(UTC)):
        frames.append(batch.events)
        lines.extend(batch.lines)
        rejects.extend(batch.rejects)
        rows_read += batch.rows_read
    frame = pl.concat(frames) if frames else pl.DataFrame(schema=SCHEMA)
    return LoadedFile(
        checked.path, checked.format, rows_read, frame, tuple(rejects), reading.ignored, tuple(lines)
    )


def rejects_path_for(path: Path) -> Path:
    return path.with_name(path.name + ".rejects.jsonl")


class _RejectsFiles:
    """Rejects files written as the import streams, under a temporary name; they take their
    final names only when the transaction commits."""

    def __init__(self, single: Path | None) -> None:
        self.single = single
        self.open: dict[Path, IO[str]] = {}

    def write(self, source: Path, rejects: list[Reject]) -> None:
        if not rejects:
            return
        target = self.single or rejects_path_for(source)
        out = self.open.get(target)
        if out is None:
            target.parent.mkdir(parents=True, exist_ok=True)
            out = self.open[target] = open(  # noqa: SIM115 - closed in close()
                _partial(target), "w", encoding="utf-8", errors="backslashreplace"
            )
        for reject in rejects:
            out.write(reject.as_json(str(source)) + "\n")

    def close(self, *, keep: bool) -> list[str]:
        done = []
        for target, out in self.open.items():
            out.close()
            if keep:
                os.replace(_partial(target), target)
                done.append(str(target))
            else:
                with contextlib.suppress(FileNotFoundError):
                    _partial(target).unlink()
        self.open.clear()
        return done


def _partial(target: Path) -> Path:
    return target.with_name(target.name + ".partial")


class _Writer:
    """Appends batches on one connection, inside the caller's transaction, idempotently by
    id (:meth:`~audit_analytics.engines.store.Store.insert_new`), and chains the rows
    inserted as one batch of the hash chain (:meth:`finish` writes it)."""

    def __init__(self, store: Store, conn: sa.Connection, *, source: str) -> None:
        self.store = store
        self.conn = conn
        self.chained = chain.ChainWriter(conn, store.chain, store.batches, source=source)

    def append(self, batch: Batch) -> set[str]:
        """Offer the batch's rows and chain those inserted; -> the ids that were inserted.
        Its distinct rows and their hashes are taken as prepared (:func:`_ahead`), else made."""
        if batch.events.height == 0:
            return set()
        unique = batch.distinct if batch.distinct is not None else _distinct(batch.events)
        # chunk_size 0: through the staging table however small the batch (one statement)
        inserted = set(self.store.insert_new(self.conn, unique, chunk_size=0))
        if len(inserted) == unique.height:  # usually every row is new: no filter to build
            self.chained.add(unique, hashes=batch.hashes)
        elif inserted:
            kept = unique["id"].is_in(list(inserted))
            hashes = batch.hashes and [h for h, keep in zip(batch.hashes, kept, strict=True) if keep]
            self.chained.add(unique.filter(kept), hashes=hashes)
        return inserted

    def finish(self) -> None:
        """Write the import's batch of the hash chain (before the commit)."""
        self.chained.finish()

    def conflicts(self, frame: pl.DataFrame, lines: list[int], inserted: set[str]) -> list[Reject]:
        """Rows of ``frame`` that were not inserted and differ from the stored event."""
        if frame.height == len(inserted):
            return []
        # a row was inserted when it is the first of its id in the batch and its id came back
        was_inserted = frame["id"].is_first_distinct() & frame["id"].is_in(list(inserted))
        offered = frame.with_columns(pl.Series("_line", lines, dtype=pl.Int64)).filter(~was_inserted)
        found = self.store.events_by_id(offered["id"].unique().to_list(), conn=self.conn)
        stored = {
            row["id"]: row
            for row in found.with_columns(pl.col("type", "result").cast(pl.String)).iter_rows(named=True)
        }
        out = []
        for row in offered.with_columns(pl.col("type", "result").cast(pl.String)).iter_rows(named=True):
            old = stored.get(row["id"])
            if old is None:  # pragma: no cover - not inserted means it is stored
                continue
            differ = [c for c in COLUMNS if c != "id" and not _same(c, row[c], old[c])]
            if differ:
                line = row.pop("_line")
                text = json.dumps(
                    {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in row.items()},
                    ensure_ascii=False,
                )
                out.append(
                    Reject(
                        line,
                        _cut(text),
                        (
                            f"id {row['id'][:80]!r} is already stored with a different "
                            f"{', '.join(differ)}; the stored event was kept",
                        ),
                        kind="conflict",
                    )
                )
        return out


def _norm(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


def _same(column: str, new: Any, old: Any) -> bool:
    """Whether an offered value is the stored one; JSON columns by their value, so the
    same record written with other spacing or key order (an import of this version and of
    an earlier one) is no conflict."""
    if _norm(new) == _norm(old):
        return True
    if column not in JSON_COLUMNS or new is None or old is None:
        return False
    try:
        return bool(json.loads(new) == json.loads(old))
    except (ValueError, RecursionError):
        return False


def _retryable(exc: BaseException) -> bool:
    """A deadlock or serialization failure between concurrent imports: run it again. (The
    staging path talks to the driver directly, so its errors arrive unwrapped as well.)"""
    code = getattr(exc, "sqlstate", None) or getattr(getattr(exc, "orig", None), "sqlstate", None)
    return code in ("40P01", "40001")


def _is_driver_error(store: Store, exc: BaseException) -> bool:
    dbapi = getattr(store.engine.dialect, "loaded_dbapi", None)
    return dbapi is not None and isinstance(exc, dbapi.Error)


def import_files(
    store: Store,
    paths: str | Path | Iterable[str | Path],
    *,
    rejects: str | Path | None = None,
    batch_rows: int | None = None,
    now: datetime | None = None,
    attempts: int = 5,
    format: str | None = None,
    year: int | None = None,
) -> ImportSummary:
    """Validate and append files to ``store`` in one transaction; write rejects next to each
    input (or to ``rejects``).

    Every file is first streamed once to check it can be read at all, so an unreadable file
    leaves the database untouched; then all files are streamed in batches of ``batch_rows``
    into one transaction, so a failure part-way (the database going away, a file changing
    under us) writes nothing either. Memory is bounded by the batch. A deadlock with a
    concurrent import is retried (up to ``attempts`` times) from the start.

    A folder stands for every file under it. Of several files, one that cannot be read at
    all (of no format the import knows, a README beside the logs; empty; a CSV without the
    columns; a ``.gz`` cut short) is skipped and listed with its reason in the summary's
    ``skipped``, and the others are imported; when none can be read, the first one's
    :class:`IngestError` is raised (:class:`UnrecognisedFile` when none is of a known
    format). A single file that cannot be read raises its error.

    ``paths``: one file or folder, or several. ``format`` forces one format for every file
    (else each is recognised by its content); ``year`` is the year of syslog lines, which have
    none. ``-`` reads standard input (copied to a temporary file as it arrives, since the
    import reads every file twice). Returns an :class:`ImportSummary`: the files read and
    skipped, the events imported, the rejects and where they were written.
    """
    # one path given alone is one path (a string is also an iterable, of its characters)
    paths = [paths] if isinstance(paths, str | os.PathLike) else list(paths)
    if sum(str(p) == STDIN for p in paths) > 1:
        raise IngestError(STDIN, "standard input is named more than once; it can be read once")
    with tempfile.TemporaryDirectory(prefix="aa-import-") as spool:
        checked: list[CheckedFile] = []
        skipped: list[IngestError] = []
        inputs = list(_expand(paths, Path(spool)))
        for p, origin in inputs:
            try:
                checked.append(check_file(p, format=format, year=year, origin=origin))
            except UnrecognisedFile as exc:
                skipped.append(exc)
            except IngestError as exc:
                if len(inputs) == 1:
                    raise
                skipped.append(exc)
        if skipped and not checked:
            first = skipped[0]
            if len(skipped) == 1:
                raise first
            unknown = all(isinstance(exc, UnrecognisedFile) for exc in skipped)
            others = (
                f"{len(skipped) - 1:,} other file(s) {'neither' if unknown else 'could not be read either'}"
            )
            raise (UnrecognisedFile if unknown else IngestError)(
                first.path, f"{first.problem} (and {others})"
            )
        summary = _import_checked(
            store, checked, rejects=rejects, batch_rows=batch_rows, now=now, attempts=attempts
        )
        summary.skipped = {exc.path: exc.problem for exc in skipped}
        return summary


def _import_checked(
    store: Store,
    checked: list[CheckedFile],
    *,
    rejects: str | Path | None,
    batch_rows: int | None,
    now: datetime | None,
    attempts: int,
) -> ImportSummary:
    now = now or datetime.now(UTC)
    for attempt in range(1, attempts + 1):
        files = _RejectsFiles(Path(rejects) if rejects is not None else None)
        committed = False
        try:
            with store.engine.begin() as conn:
                summary = _import_in(conn, store, checked, files, batch_rows=batch_rows, now=now)
            committed = True
        except Exception as exc:
            if _retryable(exc) and attempt < attempts:
                time.sleep(random.uniform(0.05, 0.2) * attempt)  # let the other import finish first
                continue
            if isinstance(exc, sa.exc.SQLAlchemyError) or _is_driver_error(store, exc):
                raise StoreError(f"could not import into {store.safe_url}: {_short(exc)}") from exc
            raise
        finally:
            written = files.close(keep=committed)
        summary.rejects_paths = written
        if not summary.balanced:  # the contract: nothing is lost in the count
            raise RuntimeError(f"import counts do not add up: {summary}")
        return summary
    raise AssertionError("unreachable")  # pragma: no cover


def _import_in(
    conn: sa.Connection,
    store: Store,
    checked: list[CheckedFile],
    files: _RejectsFiles,
    *,
    batch_rows: int | None,
    now: datetime,
) -> ImportSummary:
    summary = ImportSummary()
    names = ", ".join(item.named.name for item in checked)
    writer = _Writer(store, conn, source=f"import {names}"[:500])
    for item in checked:
        reading = _Reading(item)
        summary.files.append(str(item.named))
        summary.formats[str(item.named)] = item.format_name
        for batch in _ahead(_batches(item, reading, batch_rows=batch_rows, now=now)):
            inserted = writer.append(batch)
            conflicts = writer.conflicts(batch.events, batch.lines, inserted)
            summary.rows_read += batch.rows_read
            summary.imported += len(inserted)
            summary.duplicates += batch.events.height - len(inserted)
            summary.rejected += len(batch.rejects)
            summary.conflicts += len(conflicts)
            files.write(item.named, batch.rejects + conflicts)
        if reading.ignored:
            summary.ignored_columns[str(item.named)] = reading.ignored
        if item.context is not None:
            summary.notes.extend(f"{item.named}: {note}" for note in item.context.notes)
            item.context.notes.clear()  # a retried attempt says it once
    writer.finish()
    return summary


def _distinct(events: pl.DataFrame) -> pl.DataFrame:
    """A batch's events once per id (the first), in id order: what is offered to the store."""
    return events.unique(subset="id", keep="first", maintain_order=True).sort("id")


def _prepared(batches: Iterator[Batch], end: Batch) -> Batch:
    """The next batch, with its distinct rows and their hash chain hashes (:class:`Batch`)."""
    batch = next(batches, end)
    if batch is end or batch.events.height == 0:
        return batch
    distinct = _distinct(batch.events)
    return dataclasses.replace(batch, distinct=distinct, hashes=chain.event_hashes(distinct))


def _ahead(batches: Iterator[Batch]) -> Iterator[Batch]:
    """``batches`` with the next one read, validated and hashed for the chain in a thread
    while the caller writes this one (polars and the stores let go of the GIL: the two
    overlap). The writer was the slower side: hashing there took 17% of an import into chDB."""
    end = Batch(pl.DataFrame(), [], [], 0)
    try:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="import-read") as side:
            coming = side.submit(_prepared, batches, end)
            while (batch := coming.result()) is not end:
                coming = side.submit(_prepared, batches, end)
                yield batch
    finally:  # the thread has finished with the batches (the pool waited for it)
        close = getattr(batches, "close", None)
        if close is not None:
            close()


def _short(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc)
    return text.splitlines()[0] if text else type(exc).__name__


def _expand(paths: Iterable[str | Path], spool: Path) -> Iterator[tuple[Path, Path | None]]:
    """(path to read, what to call it): ``-`` is standard input, copied to ``spool`` in
    pieces (named ``stdin.gz`` when it is gzip-compressed); a folder is every file under it,
    in name order, hidden ones left out (a synced CloudTrail bucket, a folder of logs)."""
    for p in paths:
        if str(p) != STDIN and Path(p).is_dir():
            folder = Path(p)
            for found in sorted(folder.rglob("*")):
                hidden = any(part.startswith(".") for part in found.relative_to(folder).parts)
                if found.is_file() and not hidden:
                    yield found, None
            continue
        if str(p) != STDIN:
            yield Path(p), None
            continue
        stream = sys.stdin.buffer
        first = stream.read(2)
        target = spool / ("stdin.gz" if first == b"\x1f\x8b" else "stdin")
        with target.open("wb") as out:
            out.write(first)
            shutil.copyfileobj(stream, out, 1 << 20)
        yield target, Path("stdin")

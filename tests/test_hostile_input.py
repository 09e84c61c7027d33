"""Hostile and broken input: the corpus in tests/hostile/, big files made at run time, and
hypothesis. Every input gets a clear, bounded file error or per-row rejections; the database
is never half-written; search text never reaches SQL as text; hostile values show as plain
text in the CLI and come back from exports as the same text, never as a formula.

The corpus (one small file per kind of trouble) is read by :data:`FILE_ERRORS` (the whole
file is refused) and :data:`ROW_OUTCOMES` (the file imports, bad rows are rejected with a
reason and a line number). ``tests/hostile/display.jsonl`` holds values that import fine but
are hostile to whoever shows or exports them.
"""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
import unicodedata
from datetime import UTC, datetime, timedelta
from pathlib import Path

import openpyxl
import polars as pl
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.dialects import postgresql

from audit_analytics.cli.main import main as cli_main
from audit_analytics.engines.store import open_store
from audit_analytics.errors import IngestError, QueryError, StoreError
from audit_analytics.filters import Filter, sql_where
from audit_analytics.io import ingest
from audit_analytics.io.export import write_csv, write_xlsx
from audit_analytics.io.ingest import MAX_FIELD_CHARS, import_files, load_file
from audit_analytics.query import parse

HOSTILE = Path(__file__).parent / "hostile"
NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)
HEADER = "time,actor,type,action,target,result\n"
GOOD_ROW = {
    "time": "2026-01-02T03:04:05Z",
    "actor": "ann",
    "type": "auth",
    "action": "login",
    "result": "done",
}

# file -> the message its IngestError carries (alone: nothing is written; beside another
# file: skipped and named with it, the other imported)
FILE_ERRORS = {
    "truncated.json": "is not valid JSON: Unterminated string starting at line 1,",  # not "at at"
    "semicolon.csv": "the header has 1 column",
    "latin1.csv": "is not UTF-8 text (invalid byte 0xeb on line 2); save it as UTF-8",
    "utf16.csv": "looks like UTF-16 text",
    "nul_header.csv": "holds NUL bytes (binary data)",
    "empty.jsonl": "the file is empty",
    "blank.csv": "the file is empty",
    "zip_renamed.csv": "looks like a zip archive, not CSV text",
    "gzip_renamed.jsonl": "looks like a gzip file",
    "scalar.json": "expected a JSON array",
    "no_required_columns.csv": "no column for time, type, action, result",
    "deep.json": "is not readable JSON: RecursionError",
}

# file -> (rows read, imported, duplicates, {line: a piece of the reason}, conflicts)
ROW_OUTCOMES = {
    "truncated.jsonl": (2, 1, 0, {2: "not valid JSON (Unterminated string starting at column"}, 0),
    "ragged.csv": (
        4,
        1,
        0,
        {
            3: "expected 6 fields as in the header, found 3",
            4: "found 7",
            5: "a quoted field runs from line 5 to 6: is a closing quote missing?",
        },
        0,
    ),
    "mixed_encoding.jsonl": (
        5,
        3,
        0,
        {3: "not UTF-8 text (invalid byte 0xe9 at byte 61)", 5: "invalid byte 0xff"},
        0,
    ),
    "mixed_encoding.csv": (4, 3, 0, {3: "not UTF-8 text (invalid byte 0xe9"}, 0),
    "nul_bytes.jsonl": (3, 1, 0, {2: "holds a NUL byte", 3: "actor: holds a NUL character"}, 0),
    "nul_bytes.csv": (2, 1, 0, {3: "holds a NUL byte"}, 0),
    "times.jsonl": (
        13,
        1,
        0,
        {
            2: "is before 1970",
            3: "is out of range",
            4: "is out of range",
            5: "is more than a day in the future",
            6: "is before 1970",
            7: "epoch 1e+30 is out of range",
            8: "'NaN' is not ISO-8601",
            9: "'inf' is not ISO-8601",
            10: "a boolean is not a time",
            11: "is not ISO-8601",
            12: "'next tuesday' is not ISO-8601",
            13: "is not ISO-8601",
        },
        0,
    ),
    "duplicates.jsonl": (5, 2, 3, {}, 2),
    "unicode_edge.jsonl": (
        9,
        1,
        0,
        {
            2: "actor: holds a lone surrogate",
            3: "id: 300 characters, more than the 200 allowed",
            4: "not readable JSON (RecursionError",
            5: "params: not readable JSON (RecursionError)",
            6: "a JSON list where an object was expected",
            7: "a JSON str where",
            8: "a JSON NoneType where",
            9: "ip: '1.2.3.4/33' is not an IPv4 or IPv6 address",
        },
        0,
    ),
    "bom_crlf.csv": (2, 2, 0, {}, 0),
    "display.jsonl": (10, 10, 0, {}, 0),
}


def test_every_corpus_file_is_covered():
    assert sorted(p.name for p in HOSTILE.iterdir()) == sorted([*FILE_ERRORS, *ROW_OUTCOMES])


def write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.mark.timeout(60)  # a hang guard (a file read forever), not a speed check
@pytest.mark.parametrize("name", FILE_ERRORS, ids=FILE_ERRORS)
def test_unreadable_file_is_one_clear_error_and_writes_nothing(tmp_path, sqlite_store, name):
    with pytest.raises(IngestError) as info:
        import_files(sqlite_store, [HOSTILE / name])
    assert str(HOSTILE / name) in str(info.value)
    assert FILE_ERRORS[name] in str(info.value)
    assert len(str(info.value)) < 400  # bounded: a message, not a dump of the file
    assert sqlite_store.count() == 0
    # beside a good file it is skipped with the same reason, and the good one is imported
    good = write_jsonl(tmp_path / "good.jsonl", [GOOD_ROW | {"id": "g1"}])
    summary = import_files(sqlite_store, [good, HOSTILE / name])
    assert summary.imported == 1 and sqlite_store.count() == 1
    assert list(summary.skipped) == [str(HOSTILE / name)]
    assert FILE_ERRORS[name] in summary.skipped[str(HOSTILE / name)]


@pytest.mark.parametrize("name", ROW_OUTCOMES, ids=ROW_OUTCOMES)
def test_bad_rows_are_rejected_with_line_and_reason(tmp_path, sqlite_store, name):
    read, imported, duplicates, reasons, conflicts = ROW_OUTCOMES[name]
    rejects = tmp_path / "rejects.jsonl"
    summary = import_files(sqlite_store, [HOSTILE / name], rejects=rejects, now=NOW)
    assert (summary.rows_read, summary.imported, summary.duplicates) == (read, imported, duplicates)
    assert summary.rejected == len(reasons)
    assert summary.conflicts == conflicts
    assert summary.balanced
    assert sqlite_store.count() == imported
    lines = (
        [json.loads(x) for x in rejects.read_text(encoding="utf-8").splitlines()] if rejects.exists() else []
    )
    rejected = {r["line"]: " ".join(r["reasons"]) for r in lines if r.get("kind") is None}
    assert sorted(rejected) == sorted(reasons)
    for line, piece in reasons.items():
        assert piece in rejected[line], (line, rejected[line])
    assert len([r for r in lines if r.get("kind") == "conflict"]) == conflicts


def test_conflicting_duplicates_are_listed_distinctly(tmp_path, sqlite_store):
    rejects = tmp_path / "r.jsonl"
    first = import_files(sqlite_store, [HOSTILE / "duplicates.jsonl"], rejects=rejects, now=NOW)
    conflicts = [json.loads(x) for x in rejects.read_text().splitlines()]
    assert [(c["line"], c["kind"]) for c in conflicts] == [(3, "conflict"), (5, "conflict")]
    assert "already stored with a different actor, target" in conflicts[0]["reasons"][0]
    assert "different time" in conflicts[1]["reasons"][0]
    assert "conflicting content" in str(first)
    stored = sqlite_store.get("dup-1")
    assert stored["actor"] == "ann"  # the first one stays; the conflicting copy changed nothing
    # a re-import: every row is a duplicate, the two that differ are still called out
    again = import_files(sqlite_store, [HOSTILE / "duplicates.jsonl"], rejects=rejects, now=NOW)
    assert (again.imported, again.duplicates, again.conflicts, again.balanced) == (0, 5, 2, True)
    # the command says so by its exit code too (3, as for rejected rows; it was 0)
    from audit_analytics.cli.main import main

    db = str(sqlite_store.engine.url)
    assert main(["import", "--db", db, "--rejects", str(rejects), str(HOSTILE / "duplicates.jsonl")]) == 3


# ---------------------------------------------------------------------------------------
# big hostile files, made at run time


def test_ten_megabyte_field_is_a_row_rejection(tmp_path, sqlite_store):
    big = "A" * 10_000_000
    jsonl = write_jsonl(
        tmp_path / "big.jsonl", [GOOD_ROW | {"id": "ok"}, GOOD_ROW | {"id": "big", "target": big}]
    )
    csv_path = tmp_path / "big.csv"
    csv_path.write_text(
        HEADER + "2026-01-01T00:00:00Z,ann,auth,login,web,done\n" + f"2026-01-01,ann,auth,login,{big},done\n"
    )
    summary = import_files(sqlite_store, [jsonl, csv_path], now=NOW)
    assert (summary.imported, summary.rejected, summary.balanced) == (2, 2, True)
    for path in (jsonl, csv_path):
        (reject,) = [json.loads(x) for x in ingest.rejects_path_for(path).read_text().splitlines()]
        assert reject["reasons"] == [
            f"target: 10,000,000 characters, more than the {MAX_FIELD_CHARS:,} allowed"
        ]
        assert len(reject["raw"]) < 70_000  # the rejects file keeps a bounded piece of the row


def test_line_longer_than_the_limit_is_skipped_unread(tmp_path, sqlite_store, monkeypatch):
    monkeypatch.setattr(ingest, "MAX_LINE_BYTES", 1_000_000)
    path = tmp_path / "long.jsonl"
    with path.open("w") as out:
        out.write(json.dumps(GOOD_ROW | {"id": "a"}) + "\n")
        out.write('{"id": "b", "target": "' + "x" * 3_000_000 + '"}\n')
        out.write(json.dumps(GOOD_ROW | {"id": "c"}) + "\n")
    summary = import_files(sqlite_store, [path], now=NOW)
    assert (summary.rows_read, summary.imported, summary.rejected) == (3, 2, 1)
    (reject,) = [json.loads(x) for x in ingest.rejects_path_for(path).read_text().splitlines()]
    assert reject["line"] == 2 and "longer than" in reject["reasons"][0]


def test_hundred_thousand_junk_columns(tmp_path, sqlite_store):
    junk = [f"junk{i}" for i in range(100_000)]
    with_required = tmp_path / "wide.csv"
    with_required.write_text(
        ",".join(["time", "actor", "type", "action", "target", "result", *junk])
        + "\n"
        + ",".join(["2026-01-01T00:00:00Z", "ann", "auth", "login", "web", "done", *("x" * len(junk))])
        + "\n"
    )
    only_junk = tmp_path / "junk.csv"
    only_junk.write_text(",".join(junk) + "\n" + ",".join("1" * len(junk)) + "\n")
    wide_jsonl = write_jsonl(tmp_path / "wide.jsonl", [GOOD_ROW | {"id": "w"} | dict.fromkeys(junk, 1)])
    with pytest.raises(IngestError, match=r"no column for time.*\(100,000 in all\)") as info:
        import_files(sqlite_store, [only_junk])
    assert len(str(info.value)) < 600
    summary = import_files(sqlite_store, [with_required, wide_jsonl], now=NOW)
    assert (summary.imported, summary.rejected) == (2, 0)
    for path in (with_required, wide_jsonl):
        listed = summary.ignored_columns[str(path)]
        assert len(listed) == ingest.MAX_LISTED_COLUMNS + 1 and listed[-1].startswith("… and ")


def test_a_failure_part_way_writes_nothing(tmp_path, sqlite_store, monkeypatch):
    path = write_jsonl(
        tmp_path / "many.jsonl",
        [GOOD_ROW | {"id": f"m{i}", "time": f"2026-01-01T00:{i // 60:02d}:{i % 60:02d}Z"} for i in range(500)]
        + [{"bad": True}],
    )
    calls = {"n": 0}
    real = ingest._Writer.append

    def flaky(self, frame):
        calls["n"] += 1
        if calls["n"] == 3:
            raise sa.exc.OperationalError("INSERT", {}, Exception("the database went away"))
        return real(self, frame)

    monkeypatch.setattr(ingest._Writer, "append", flaky)
    with pytest.raises(StoreError, match="the database went away"):
        import_files(sqlite_store, [path], batch_rows=100)
    assert calls["n"] == 3  # two batches were written in the transaction, then rolled back
    assert sqlite_store.count() == 0
    assert not ingest.rejects_path_for(path).exists()
    assert not list(tmp_path.glob("*.partial"))


STREAM_SCRIPT = """
import json, re, sys, time
from audit_analytics.io.ingest import import_files
from audit_analytics.engines.store import open_store
path, db = sys.argv[1], sys.argv[2]
store = open_store("sqlite:///" + db)
t = time.perf_counter()
s = import_files(store, [path])
print(json.dumps({"rows": s.rows_read, "imported": s.imported, "balanced": s.balanced,
                  "seconds": time.perf_counter() - t,
                  # VmHWM, not ru_maxrss: Linux carries the parent's ru_maxrss across fork+exec
                  "peak_rss_mb": int(re.search(r"VmHWM:\\s+(\\d+)", open("/proc/self/status").read())[1]) / 1024}))
"""


def make_jsonl(path: Path, n: int) -> Path:
    """``n`` valid events, written with polars (fast), ids ``s0000000``…"""
    pl.DataFrame(
        {
            "id": [f"s{i:07d}" for i in range(n)],
            "time": [f"2026-01-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:00Z" for i in range(n)],
            "actor": [f"user{i % 500}" for i in range(n)],
            "type": ["auth"] * n,
            "action": ["login"] * n,
            "target": [f"host-{i % 97}" for i in range(n)],
            "result": ["failed" if i % 7 == 0 else "done" for i in range(n)],
            "ip": [f"10.{i % 250}.{i % 200}.{i % 100}" for i in range(n)],
            "description": [
                f"user{i % 500} signed in to host-{i % 97} with a reasonably long text" for i in range(n)
            ],
        }
    ).write_ndjson(path)
    return path


@pytest.mark.slow
def test_import_streams_in_bounded_memory(tmp_path):
    """Peak RSS of importing 60,000 rows and 240,000 rows differs by far less than the
    extra rows would take in memory: the file is streamed, not held."""
    peaks = {}
    for n in (60_000, 240_000):
        src = make_jsonl(tmp_path / f"e{n}.jsonl", n)
        out = subprocess.run(
            [sys.executable, "-c", STREAM_SCRIPT, str(src), str(tmp_path / f"e{n}.db")],
            check=True,
            capture_output=True,
            text=True,
            timeout=300,
        )
        result = json.loads(out.stdout)
        assert (result["rows"], result["imported"], result["balanced"]) == (n, n, True)
        peaks[n] = result["peak_rss_mb"]
    file_mb = (tmp_path / "e240000.jsonl").stat().st_size / 2**20
    # 180,000 more rows (~50 MB of JSON, ~200 MB as Python dicts) may add little
    assert peaks[240_000] - peaks[60_000] < max(0.5 * file_mb, 30), peaks


# ---------------------------------------------------------------------------------------
# hypothesis: whatever the bytes, a file error or balanced rejections


FIELDS = st.sampled_from(["id", "time", "actor", "type", "action", "result", "ip", "params", "target", "x"])
VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    st.text(max_size=30),
    st.sampled_from(["auth", "login", "done", "2026-01-01T00:00:00Z", "1.2.3.4", "{}", "[", "\x00"]),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.dictionaries(FIELDS, VALUES, max_size=8), max_size=8), junk=st.binary(max_size=60))
def test_random_jsonl_never_crashes(tmp_path, rows, junk):
    path = tmp_path / "fuzz.jsonl"
    path.write_bytes(b"".join(json.dumps(r).encode() + b"\n" for r in rows) + junk)
    try:
        loaded = load_file(path, now=NOW)
    except IngestError:
        return
    assert loaded.events.height + len(loaded.rejects) == loaded.rows_read
    for reject in loaded.rejects:
        assert reject.reasons and reject.line >= 1
        json.loads(reject.as_json("fuzz"))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=300))
def test_random_csv_bytes_never_crash(tmp_path, data):
    path = tmp_path / "fuzz.csv"
    path.write_bytes(HEADER.encode() + data)
    try:
        loaded = load_file(path, now=NOW)
    except IngestError:
        return
    assert loaded.events.height + len(loaded.rejects) == loaded.rows_read


# ---------------------------------------------------------------------------------------
# search: a query error or bound parameters, fast

TABLE = open_store("sqlite://").table
QUERY_TEXT = st.one_of(
    st.text(max_size=80),
    st.lists(
        st.sampled_from(
            [
                "user:",
                "actor:",
                "ip:",
                "after:",
                "before:",
                "type:",
                "result:",
                "-",
                '"',
                "*",
                "%",
                "_",
                "'",
                ";",
                "--",
                "DROP TABLE audit_events",
                "' OR 1=1 --",
                "' or 1=1 --",  # lower case: words, so it reaches the SQL compiler
                "\\",
                "10.0.0.0/8",
                "2026-01-01",
                " ",
                "é",
                "\x00",
                "\u202e",
            ]
        ),
        max_size=12,
    ).map("".join),
)


# parsing and compiling one search takes about a millisecond; the deadline (Hypothesis replays
# a slow example before it reports it) catches a runaway parser, not a busy machine
@settings(max_examples=400, deadline=timedelta(seconds=1))
@given(text=QUERY_TEXT)
def test_search_text_is_a_query_error_or_bound_parameters(text):
    try:
        parse(text)
    except QueryError as exc:
        assert exc.position >= 1
        return
    flt = Filter(query=text)
    try:
        where = sql_where(flt, TABLE, distinct_ips=lambda: ["10.1.2.3", "192.168.0.1"])
    except QueryError:
        return
    sql = str(where.compile(dialect=postgresql.dialect())).lower()
    for term in parse(text).terms:
        value = (getattr(term, "text", None) or getattr(term, "value", "")).lower()
        # a value may show up in the SQL text only by coinciding with the fixed vocabulary
        # (column names, keywords), never because it was written into it
        if len(value) >= 3:
            assert value not in sql or value in SQL_VOCABULARY, (text, sql)
    assert "drop table" not in sql and "1=1" not in sql


def _vocabulary() -> str:
    """Every SQL word the filter compiler can emit, from a filter that uses every feature."""
    flt = Filter(
        period="7d",
        types=("auth",),
        users=("u",),
        results=("done",),
        query="w -x user:a action:b resource:c* type:auth result:done ip:1.2.3.4 ip:10.0.0.0/8 "
        'request_id:r after:2026-01-01 before:2026-02-01 -user:z "p q"',
    )
    where = sql_where(flt, TABLE, distinct_ips=lambda: ["10.1.2.3"])
    return str(where.compile(dialect=postgresql.dialect())).lower()


SQL_VOCABULARY = _vocabulary()


# ---------------------------------------------------------------------------------------
# display in the CLI, and exports


@pytest.fixture(scope="module")
def display_db(tmp_path_factory):
    db = tmp_path_factory.mktemp("display") / "audit.db"
    store = open_store(f"sqlite:///{db}")
    summary = import_files(store, [HOSTILE / "display.jsonl"], now=NOW)
    assert summary.imported == 10
    frame = store.load()
    store.engine.dispose()
    return f"sqlite:///{db}", frame


def _invisible(text: str) -> list[str]:
    return [f"U+{ord(c):04X}" for c in text if c != "\n" and unicodedata.category(c) in ("Cc", "Cf")]


def test_cli_query_table_shows_control_and_bidi_characters_as_escapes(display_db, capsys):
    url, _ = display_db
    assert cli_main(["query", "--db", url, "--limit", "0"]) == 0
    out = capsys.readouterr()
    assert _invisible(out.out) == [] and _invisible(out.err) == []
    assert "\\x1b[2J" in out.out and "\\u202e" in out.out  # visible, not run


def ooxml_unescape(text: str) -> str:
    """What Excel shows for a cell: XML 1.0 cannot hold most control characters, so OOXML
    spells them ``_xHHHH_`` (and a literal ``_xHHHH_`` as ``_x005F_xHHHH_``). openpyxl hands
    the spelling back as it is; Excel decodes it, as this does."""
    return re.sub(r"_x([0-9A-Fa-f]{4})_", lambda m: chr(int(m[1], 16)), text)


def test_export_round_trips_every_hostile_value(display_db, tmp_path):
    _, frame = display_db
    xlsx = write_xlsx(frame, tmp_path / "e.xlsx", tz="UTC")
    write_csv(frame, tmp_path / "e.csv", tz="UTC")
    assert xlsx.shortened_cells == 0
    book = openpyxl.load_workbook(tmp_path / "e.xlsx")
    sheet = book["Events"]
    header = [c.value for c in sheet[1]]
    rows = list(sheet.iter_rows(min_row=2))
    text = open(tmp_path / "e.csv", encoding="utf-8-sig", newline="").read()
    csv_rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == len(csv_rows) == frame.height
    labels = dict(zip(frame.columns, header, strict=True))
    checked = 0
    for row, cells, csv_row in zip(frame.iter_rows(named=True), rows, csv_rows, strict=True):
        by_label = {h: c for h, c in zip(header, cells, strict=True)}
        for column in ("actor", "email", "target", "description", "params", "error"):
            value = row[column]
            cell = by_label[labels[column]]
            assert cell.data_type != "f", (column, value)  # never a formula
            assert ooxml_unescape(cell.value or "") == (value or ""), (column, value, cell.value)
            written = csv_row[labels[column]] if labels[column] in csv_row else csv_row[column]
            if value and value.startswith(("=", "+", "-", "@", "\t", "\r")):
                assert written == "'" + value
                written = written[1:]
            assert written == (value or "")
            checked += 1
    assert checked == 60

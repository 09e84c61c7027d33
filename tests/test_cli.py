"""The audit-analytics command: every sub-command, exit codes, one-line errors."""

from __future__ import annotations

import ast
import csv
import importlib.util
import io
import json
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import openpyxl
import pytest

from audit_analytics.cli.common import parse_date
from audit_analytics.cli.main import main
from audit_analytics.engines.store import open_store


@pytest.fixture
def db(tmp_path):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    assert main(["demo", "--db", url, "--events", "2000", "--seed", "3"]) == 0
    return url


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_demo_is_idempotent_and_if_empty_skips(db, capsys):
    capsys.readouterr()
    code, out, _ = run(capsys, "demo", "--db", db, "--events", "2000", "--seed", "3")
    assert code == 0 and "0 events written" in out and "2,000 already there" in out
    code, out, _ = run(capsys, "demo", "--db", db, "--if-empty")
    assert code == 0 and "already holds 2,000 events" in out


def test_query_count_matches_store(db, capsys):
    store = open_store(db)
    rows = store.load().to_dicts()
    expected = sum(1 for r in rows if r["type"] == "auth" and r["result"] == "failed")
    code, out, _ = run(capsys, "query", "--db", db, "--type", "auth", "--result", "failed", "--count")
    assert (code, out.strip()) == (0, str(expected))


@pytest.mark.parametrize("fmt", ["table", "json", "jsonl", "csv"])
def test_query_formats(db, capsys, fmt):
    code, out, err = run(
        capsys, "query", "--db", db, "--search", "type:auth", "--limit", "5", "--format", fmt
    )
    assert code == 0
    if fmt == "table":
        lines = out.strip().splitlines()
        assert lines[0].split()[:3] == ["time", "actor", "type"] and len(lines) == 7
        assert "events" in err and "matching type:auth" in err
    elif fmt == "json":
        data = json.loads(out)
        assert len(data) == 5 and {d["type"] for d in data} == {"auth"}
        assert [d["time"] for d in data] == sorted((d["time"] for d in data), reverse=True)
    elif fmt == "jsonl":
        assert len(out.strip().splitlines()) == 5
    else:
        rows = list(csv.DictReader(io.StringIO(out)))
        assert len(rows) == 5 and rows[0]["type"] == "auth"


def test_query_sort_and_offset(db, capsys):
    code, out, _ = run(
        capsys, "query", "--db", db, "--sort", "actor", "--ascending", "--limit", "0", "--format", "json"
    )
    actors = [d["actor"] for d in json.loads(out) if d["actor"] is not None]
    assert actors == sorted(actors, key=str.lower)
    _, page2, _ = run(capsys, "query", "--db", db, "--limit", "3", "--offset", "3", "--format", "json")
    _, first6, _ = run(capsys, "query", "--db", db, "--limit", "6", "--format", "json")
    assert [d["id"] for d in json.loads(page2)] == [d["id"] for d in json.loads(first6)][3:]


@pytest.mark.parametrize("fmt", ["xlsx", "csv"])
def test_export_writes_exactly_the_filtered_rows_and_records_it(db, capsys, tmp_path, fmt):
    out_path = tmp_path / f"out.{fmt}"
    code, out, _ = run(capsys, "export", "--db", db, "--type", "auth", "--output", str(out_path))
    assert code == 0
    store = open_store(db)
    expected = sum(1 for r in store.load().to_dicts() if r["type"] == "auth")
    assert f"exported {expected:,} events" in out
    if fmt == "xlsx":
        wb = openpyxl.load_workbook(out_path, read_only=True)
        assert sum(1 for _ in wb.worksheets[0].iter_rows(min_row=2)) == expected
        assert wb.sheetnames[-1] == "About this export"
    else:
        assert len(list(csv.DictReader(io.StringIO(out_path.read_text(encoding="utf-8-sig"))))) == expected
    recorded = [r for r in store.load().to_dicts() if r["id"].startswith("aa-")]
    assert len(recorded) == 1 and recorded[0]["type"] == "audit" and recorded[0]["action"] == "export"
    assert json.loads(recorded[0]["params"])["count"] == expected


def test_a_relative_period_export_says_what_the_period_meant(db, capsys, tmp_path):
    """``--period 30d`` exported today is the 30 days up to today: the manifest and the log's
    record name the instants (they said only "30d", so the file could not be reproduced)."""
    out_path = tmp_path / "month.csv"
    code, _, _ = run(capsys, "export", "--db", db, "--period", "30d", "--output", str(out_path))
    assert code == 0
    filters = json.loads((tmp_path / "month.csv.manifest.json").read_text())["filters"]
    lo = datetime.fromisoformat(filters["from (instant, UTC)"])
    hi = datetime.fromisoformat(filters["to (instant, UTC, excluded)"])
    assert hi - lo == timedelta(days=30) and lo < datetime.now(UTC) < hi
    assert filters["include archive"] == "no" and filters["sort"] == "time descending"
    store = open_store(db)
    recorded = [r for r in store.load().to_dicts() if r["id"].startswith("aa-")][-1]
    params = json.loads(recorded["params"])
    assert (params["from"], params["to"]) == (lo.isoformat(), hi.isoformat())
    assert params["via"] == "cli" and params["include_archive"] is False


def test_import_exit_codes(tmp_path, capsys):
    db = f"sqlite:///{tmp_path / 'i.db'}"
    good = tmp_path / "good.jsonl"
    good.write_text(
        json.dumps({"time": "2026-01-01T00:00:00Z", "type": "auth", "action": "login", "result": "done"})
        + "\n"
    )
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text(
        good.read_text() + '{"time": "x", "type": "auth", "action": "login", "result": "done"}\n'
    )
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"time": "x"}\n')
    code, out, _ = run(capsys, "import", "--db", db, str(good))
    assert (code, out.strip()) == (0, "imported 1, rejected 0, duplicates 0 (of 1 rows read)")
    code, out, err = run(capsys, "import", "--db", db, str(mixed))
    assert code == 3 and out.strip() == "imported 0, rejected 1, duplicates 1 (of 2 rows read)"
    assert "mixed.jsonl.rejects.jsonl" in err
    code, _, _ = run(capsys, "import", "--db", db, str(bad))
    assert code == 2
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    code, out, err = run(capsys, "import", "--db", db, str(empty))
    assert code == 2 and err.startswith("error: ") and "empty.csv: the file is empty" in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["query", "--search", "usr:x"], "unknown qualifier"),
        (["query", "--tz", "Mars/Olympus"], "unknown time zone"),
        (["query", "--db", "nonsense://"], "error:"),
        (["query", "--from", "tomorrow"], "is not a date"),
        (["query", "--type", "printer"], "invalid choice"),
        (["bogus"], "invalid choice"),
    ],
)
def test_errors_are_one_line_never_a_traceback(db, capsys, argv, message):
    argv = list(argv)
    if "--db" not in argv and argv[0] != "bogus":
        argv += ["--db", db]
    with pytest.raises(SystemExit) if message == "invalid choice" or "is not a date" in message else _noop():
        code = main(argv)
        assert code == 2
    _, err = capsys.readouterr()
    assert message in err and "Traceback" not in err


class _noop:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_hostile_values_are_shown_as_plain_text(tmp_path, capsys):
    db = f"sqlite:///{tmp_path / 'h.db'}"
    f = tmp_path / "h.jsonl"
    f.write_text(
        json.dumps(
            {
                "time": "2026-01-01T00:00:00Z",
                "type": "auth",
                "action": "login",
                "result": "done",
                "actor": "evil\x1b[2J\u202eroot",
                "target": "x",
            }
        )
        + "\n"
    )
    assert main(["import", "--db", db, str(f)]) == 0
    capsys.readouterr()
    code, out, _ = run(capsys, "query", "--db", db)
    assert "\x1b" not in out and "\u202e" not in out and "evil\\x1b[2J\\u202eroot" in out


def test_an_export_s_file_name_says_its_format(db, capsys, tmp_path):
    """``--output events.txt`` wrote an xlsx workbook there, which verify-export then refused
    as "not an export"; a name and a --format that disagree were written too."""
    for name, fmt in (("events.txt", None), ("events", None), ("events.csv", "xlsx")):
        argv = ["export", "--db", db, "--output", str(tmp_path / name)] + (["--format", fmt] if fmt else [])
        code, _, err = run(capsys, *argv)
        assert code == 2 and "name a .csv or .xlsx file" in err, (name, err)
        assert not (tmp_path / name).exists()
    assert "(--format xlsx: events.xlsx)" in err
    assert run(capsys, "export", "--db", db, "--output", str(tmp_path / "e.CSV"), "--format", "csv")[0] == 0


def test_entry_point_help():
    exe = Path(sys.executable).with_name("audit-analytics")
    result = subprocess.run([str(exe), "--help"], capture_output=True, text=True, check=False)
    assert result.returncode == 0
    for command in ("demo", "import", "query", "export"):
        assert command in result.stdout


def test_a_from_after_the_to_is_refused_not_answered_with_nothing(db, capsys):
    code, out, err = run(capsys, "query", "--db", db, "--from", "2024-08-02", "--to", "2024-08-01", "--count")
    assert code == 2 and out == ""
    assert "--from 2024-08-02 is not before --to 2024-08-01" in err
    code, _, err = run(capsys, "security", "by-ip", "--db", db, "--from", "2024-08-02", "--to", "2024-08-01")
    assert code == 2 and "is not before --to" in err
    # one day (--to includes its day), and an instant after the day's start, are not refused
    assert run(capsys, "query", "--db", db, "--from", "2024-08-01", "--to", "2024-08-01", "--count")[0] == 0
    assert (
        run(capsys, "query", "--db", db, "--from", "2024-08-01", "--to", "2024-08-01T10:00", "--count")[0]
        == 0
    )


def test_activity_top_must_be_at_least_one(db, capsys):
    with pytest.raises(SystemExit) as info:  # argparse's one-line error, not the report's
        main(["activity", "actors", "--db", db, "--top", "0"])
    assert info.value.code == 2
    assert "--top: '0' must be at least 1" in capsys.readouterr().err


def test_a_reader_that_stops_reading_is_no_error():
    """``audit-analytics formats syslog | head -1`` printed "error: [Errno 32] Broken pipe"
    and exited 2. The reader here closes the pipe before the command writes."""
    exe = Path(sys.executable).with_name("audit-analytics")
    proc = subprocess.Popen([str(exe), "formats", "syslog"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141, err
    assert err == ""


# ---------------------------------------------------------------------------------------
# times in --tz, in every format (regression: csv and json printed UTC)

TOKYO = ZoneInfo("Asia/Tokyo")


def _stored_times(db: str) -> dict[str, datetime]:
    return dict(open_store(db).load().select("id", "time").iter_rows())


def _query_times(capsys, db: str, fmt: str) -> dict[str, str]:
    code, out, err = run(capsys, "query", "--db", db, "--tz", "Asia/Tokyo", "--limit", "20", "--format", fmt)
    assert code == 0, err
    if fmt == "csv":
        return {r["id"]: r["time"] for r in csv.DictReader(io.StringIO(out))}
    if fmt == "json":
        return {r["id"]: r["time"] for r in json.loads(out)}
    return {r["id"]: r["time"] for r in map(json.loads, out.splitlines())}


@pytest.mark.parametrize("fmt", ["csv", "json", "jsonl"])
def test_query_shows_times_in_tz_in_every_format(db, capsys, fmt):
    stored = _stored_times(db)
    shown = _query_times(capsys, db, fmt)
    assert len(shown) == 20
    for event_id, text in shown.items():
        parsed = datetime.fromisoformat(text)
        assert text.endswith("+09:00"), text
        assert parsed == stored[event_id]  # the same instant as stored
        # Tokyo's wall clock, not UTC's
        assert parsed.replace(tzinfo=None) == stored[event_id].astimezone(TOKYO).replace(tzinfo=None)


def test_every_output_spells_a_time_the_same_way(db, capsys, tmp_path):
    by_format = {fmt: _query_times(capsys, db, fmt) for fmt in ("csv", "json", "jsonl")}
    assert by_format["csv"] == by_format["json"] == by_format["jsonl"]
    _, table, _ = run(capsys, "query", "--db", db, "--tz", "Asia/Tokyo", "--limit", "20")
    table_times = [line.split()[0] for line in table.splitlines()[2:]]
    assert table_times == list(by_format["json"].values())  # same order: newest first
    out = tmp_path / "e.csv"
    assert main(["export", "--db", db, "--tz", "Asia/Tokyo", "--output", str(out)]) == 0
    exported = {r["id"]: r["time"] for r in csv.DictReader(io.StringIO(out.read_text(encoding="utf-8-sig")))}
    assert all(exported[i] == t for i, t in by_format["csv"].items())


def test_query_csv_neutralises_formulas_and_json_keeps_them(tmp_path, capsys):
    db = f"sqlite:///{tmp_path / 'f.db'}"
    f = tmp_path / "f.jsonl"
    hostile = "=cmd|' /C calc'!A0"
    f.write_text(
        json.dumps(
            {
                "time": "2026-01-01T00:00:00Z",
                "type": "auth",
                "action": "login",
                "result": "done",
                "actor": hostile,
                "target": "@x",
            }
        )
        + "\n"
    )
    assert main(["import", "--db", db, str(f)]) == 0
    capsys.readouterr()
    _, out, _ = run(capsys, "query", "--db", db, "--format", "csv")
    (row,) = csv.DictReader(io.StringIO(out))
    assert (row["actor"], row["target"]) == ("'" + hostile, "'@x")
    assert row["time"] == "2026-01-01T00:00:00+00:00"
    _, out, _ = run(capsys, "query", "--db", db, "--format", "json")
    assert (json.loads(out)[0]["actor"], json.loads(out)[0]["target"]) == (hostile, "@x")


# ---------------------------------------------------------------------------------------
# the shared helpers


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-03-01", date(2026, 3, 1)),
        ("20260301", date(2026, 3, 1)),  # a day, so --to includes all of it
        ("2026-03-01T08:30", datetime(2026, 3, 1, 8, 30)),
        ("2026-03-01T08:30:00+09:00", datetime(2026, 3, 1, 8, 30, tzinfo=TOKYO)),
    ],
)
def test_parse_date(text, expected):
    value = parse_date(text)
    assert value == expected and type(value) is type(expected)


def test_a_bad_date_names_the_flag(db, capsys):
    with pytest.raises(SystemExit) as info:
        main(["query", "--db", db, "--to", "2026-02-30"])
    err = capsys.readouterr().err
    assert info.value.code == 2
    assert "argument --to: '2026-02-30' is not a date (YYYY-MM-DD) or ISO date-time" in err


def test_to_a_day_in_basic_form_includes_the_whole_day(db, capsys):
    day = min(_stored_times(db).values()).astimezone(UTC).date()
    counts = [
        run(capsys, "query", "--db", db, "--from", text, "--to", text, "--count")[1]
        for text in (day.isoformat(), day.strftime("%Y%m%d"))
    ]
    assert counts[0] == counts[1] and int(counts[0]) > 0


def _imported_modules(module: str) -> set[str]:
    tree = ast.parse(Path(importlib.util.find_spec(module).origin).read_text())
    found = set()
    for node in ast.walk(tree):  # imports inside functions count too
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


@pytest.mark.parametrize("module", ["cli.security", "cli.admin", "cli.common", "io.tabular"])
def test_no_cli_module_imports_the_main_cli(module):
    imported = _imported_modules(f"audit_analytics.{module}")
    assert "audit_analytics.cli.main" not in imported
    if module in ("cli.common", "io.tabular"):
        others = ("cli.security", "cli.admin", "io.export")
        assert not imported & {f"audit_analytics.{m}" for m in others}


READING_COMMANDS = [
    ["query", "--count"],
    ["export", "--output", "out.csv"],
    ["activity", "categories"],
    ["security", "brute-force", "--fail-on-findings"],
    ["integrity", "verify"],
    ["integrity", "checkpoint"],
    ["retention", "plan"],
]


@pytest.mark.parametrize("argv", READING_COMMANDS, ids=lambda argv: " ".join(argv[:2]))
@pytest.mark.parametrize("where", ["missing-file", "missing-chdb-folder", "other-program"])
def test_a_reading_command_refuses_a_database_that_is_not_there(tmp_path, capsys, monkeypatch, argv, where):
    """A mistyped --db (or AUDIT_DB_URL) in a scheduled check: the command fails and names the
    path (it created an empty database there, found nothing, and exited 0: `integrity verify`
    said "verified", `security … --fail-on-findings` passed)."""
    monkeypatch.chdir(tmp_path)
    if where == "missing-file":
        target = tmp_path / "mistyped" / "audit.db"
        url = f"sqlite:///{target}"
    elif where == "missing-chdb-folder":
        target = tmp_path / "no-such-folder"
        url = f"chdb://{target}"
    else:  # another program's SQLite file: no tables of ours are added to it
        import sqlite3

        target = tmp_path / "other.db"
        with sqlite3.connect(target) as other:
            other.execute("CREATE TABLE notes (body TEXT)")
        url = f"sqlite:///{target}"
    code, out, err = run(capsys, *argv, "--db", url)
    assert code == 2, (out, err)
    assert str(target) in err
    assert ("no audit database at" if where != "other-program" else "holds no audit table") in err
    if where == "other-program":
        import sqlite3

        with sqlite3.connect(target) as other:
            tables = {
                name for (name,) in other.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            }
        assert tables == {"notes"}
    else:
        assert not target.exists()
    assert not (tmp_path / "out.csv").exists()


def test_the_writing_commands_still_create_the_database(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'new' / 'audit.db'}"
    log = tmp_path / "auth.log"
    log.write_text("Dec  1 10:00:00 host sshd[1]: Failed password for root from 203.0.113.9 port 22 ssh2\n")
    code, out, err = run(capsys, "import", str(log), "--db", url, "--year", "2026")
    assert code == 0, err
    code, out, _ = run(capsys, "query", "--count", "--db", url, "--period", "all")
    assert (code, out.strip()) == (0, "1")


def test_a_search_that_starts_with_a_negation_is_taken_as_the_search(db, capsys):
    """`--search "-ip:10.0.0.0/8"` is a search, not an unknown option (argparse said
    "expected one argument"; only `--search=-ip:…` worked)."""
    code, joined, err = run(
        capsys, "query", "--db", db, "--period", "all", "--search=-ip:10.0.0.0/8", "--count"
    )
    assert code == 0, err
    code, spaced, err = run(
        capsys, "query", "--db", db, "--period", "all", "--search", "-ip:10.0.0.0/8", "--count"
    )
    assert code == 0, err
    code, every, _ = run(capsys, "query", "--db", db, "--period", "all", "--count")
    assert spaced == joined and 0 < int(spaced) < int(every)

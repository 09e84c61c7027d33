"""The audit-analytics command: every sub-command, exit codes, one-line errors."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import openpyxl
import pytest

from audit_analytics.cli import main
from audit_analytics.store import open_store


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


def test_entry_point_help():
    exe = Path(sys.executable).with_name("audit-analytics")
    result = subprocess.run([str(exe), "--help"], capture_output=True, text=True, check=False)
    assert result.returncode == 0
    for command in ("demo", "import", "query", "export"):
        assert command in result.stdout

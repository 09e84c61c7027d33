"""Ingest: every format, every alias, every rejection reason, unreadable files, re-imports."""

from __future__ import annotations

import gzip
import json
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from audit_analytics.errors import IngestError
from audit_analytics.io.ingest import ALIASES, import_files, load_file, parse_time
from audit_analytics.schema import SCHEMA

GOOD = {
    "id": "e1",
    "time": "2026-01-02T03:04:05Z",
    "actor": "alice",
    "email": "alice@corp.com",
    "type": "auth",
    "action": "login",
    "target": "web",
    "result": "done",
    "ip": "10.0.0.1",
    "request_id": "r1",
    "description": "alice signed in",
    "params": '{"method": "password"}',
    "before": "",
    "after": "",
    "error": "",
}


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def write_csv(path, rows, header=None):
    import csv

    header = header or list(rows[0])
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=header)
        w.writeheader()
        w.writerows(rows)
    return path


@pytest.mark.parametrize("fmt", ["jsonl", "json", "csv", "parquet"])
def test_each_format_reads_the_same_event(tmp_path, fmt):
    path = tmp_path / f"events.{fmt}"
    if fmt == "jsonl":
        write_jsonl(path, [GOOD])
    elif fmt == "json":
        path.write_text(json.dumps([GOOD]))
    elif fmt == "csv":
        write_csv(path, [GOOD])
    else:
        pl.DataFrame([GOOD]).write_parquet(path)
    loaded = load_file(path)
    assert loaded.rejects == ()
    assert loaded.events.schema == SCHEMA
    row = loaded.events.row(0, named=True)
    assert row["time"] == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert row["actor"] == "alice" and row["ip"] == "10.0.0.1"
    assert row["before"] is None and row["error"] is None  # empty strings become nulls
    assert json.loads(row["params"]) == {"method": "password"}


@pytest.mark.parametrize(("alias", "column"), sorted(ALIASES.items()), ids=sorted(ALIASES))
def test_aliases(tmp_path, alias, column):
    row = {k: v for k, v in GOOD.items() if k != column}
    row[alias] = GOOD[column]
    loaded = load_file(write_jsonl(tmp_path / "a.jsonl", [row]))
    assert loaded.rejects == ()
    value = loaded.events[column][0]
    expected = parse_time(GOOD[column]) if column == "time" else GOOD[column]
    assert (str(value) if column in ("type", "result") else value) == expected


TIME_CASES = [
    ("2026-01-02T03:04:05Z", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
    ("2026-01-02T03:04:05", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),  # no offset means UTC
    ("2026-01-02T04:04:05+01:00", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
    ("2026-01-02 03:04:05.123456", datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)),
    ("1767323045", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),  # epoch seconds
    ("1767323045123", datetime(2026, 1, 2, 3, 4, 5, 123000, tzinfo=UTC)),  # epoch milliseconds
    (1767323045, datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
    ("2026-01-02", datetime(2026, 1, 2, tzinfo=UTC)),
]


@pytest.mark.parametrize(("value", "expected"), TIME_CASES, ids=[str(c[0]) for c in TIME_CASES])
def test_time_forms(value, expected):
    assert parse_time(value) == expected


REJECT_CASES = [
    ({"time": None}, "time: missing"),
    ({"time": "yesterday"}, "time: 'yesterday' is not ISO-8601"),
    ({"time": "1e400"}, "time:"),
    ({"type": None}, "type: missing"),
    ({"type": "printer"}, "type: 'printer' is not one of device"),
    ({"action": ""}, "action: missing"),
    ({"result": None}, "result: missing"),
    ({"result": "ok-ish"}, "result: 'ok-ish' is not one of done"),
    ({"ip": "999.1.1.1"}, "ip: '999.1.1.1' is not an IPv4 or IPv6 address"),
    ({"ip": "localhost"}, "ip: 'localhost' is not"),
    ({"params": "{bad"}, "params: not valid JSON"),
    ({"before": "[1,"}, "before: not valid JSON"),
    ({"after": "nope"}, "after: not valid JSON"),
    ({"actor": "a\x00b"}, "actor: holds a NUL character"),
]


@pytest.mark.parametrize(("change", "reason"), REJECT_CASES, ids=[c[1][:40] for c in REJECT_CASES])
def test_each_rejection_reason(tmp_path, change, reason):
    bad = GOOD | {"id": "bad"} | change
    path = write_jsonl(tmp_path / "in.jsonl", [GOOD, bad])
    loaded = load_file(path)
    assert loaded.events["id"].to_list() == ["e1"]
    (reject,) = loaded.rejects
    assert reject.line == 2
    assert any(reason in r for r in reject.reasons), reject.reasons
    assert json.loads(reject.raw)["id"] == "bad"


def test_every_reason_is_listed(tmp_path):
    bad = GOOD | {"type": "x", "result": "y", "ip": "z", "params": "{"}
    (reject,) = load_file(write_jsonl(tmp_path / "in.jsonl", [bad])).rejects
    assert [r.split(":")[0] for r in reject.reasons] == ["type", "result", "ip", "params"]


def test_case_insensitive_codes(tmp_path):
    loaded = load_file(write_jsonl(tmp_path / "in.jsonl", [GOOD | {"type": "AUTH", "result": "Failed"}]))
    assert (str(loaded.events["type"][0]), str(loaded.events["result"][0])) == ("auth", "failed")


def test_an_action_in_another_case_is_the_same_action(tmp_path, sqlite_store, capsys):
    """``LOGIN``, ``Login`` and ``login `` were stored as written: a search for
    ``action:login`` found them but the security review, which reads ``action == "login"``,
    left their failures out."""
    from audit_analytics.cli.main import main

    path = tmp_path / "mixed.csv"
    path.write_text(
        "time,actor,type,action,result,ip\n"
        "2026-01-02T03:00:00Z,ann,auth,login,failed,10.0.0.1\n"
        "2026-01-02T03:00:01Z,bob,auth,LOGIN,failed,10.0.0.3\n"
        "2026-01-02T03:00:02Z,bob,auth,Login,failed,10.0.0.3\n"
        '2026-01-02T03:00:03Z,bob,auth,"login ",failed,10.0.0.3\n'
        '2026-01-02T03:00:04Z,bob,auth," ",failed,10.0.0.3\n'
    )
    summary = import_files(sqlite_store, [path])
    assert (summary.imported, summary.rejected) == (4, 1)  # a blank action is still missing
    assert sqlite_store.load()["action"].to_list() == ["login"] * 4
    url = str(sqlite_store.engine.url)
    assert main(["security", "by-ip", "--db", url, "--period", "all", "--format", "json"]) == 0
    by_ip = {row["ip"]: row["failures"] for row in json.loads(capsys.readouterr().out)}
    assert by_ip == {"10.0.0.3": 3, "10.0.0.1": 1}


def test_missing_id_is_derived_deterministically(tmp_path):
    row = {k: v for k, v in GOOD.items() if k != "id"}
    a = load_file(write_jsonl(tmp_path / "a.jsonl", [row])).events["id"][0]
    b = load_file(write_jsonl(tmp_path / "b.jsonl", [row])).events["id"][0]
    c = load_file(write_jsonl(tmp_path / "c.jsonl", [row | {"actor": "bob"}])).events["id"][0]
    assert a == b != c


def test_csv_ragged_rows_and_line_numbers(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text(
        "time,actor,type,action,target,result\n"
        "2026-01-01T00:00:00Z,a,auth,login,web,done\n"
        '2026-01-01T00:00:01Z,"multi\nline",auth,login,web,done\n'
        "2026-01-01T00:00:02Z,b,auth\n"
        "2026-01-01T00:00:03Z,c,auth,login,web,done,extra\n"
        "2026-01-01T00:00:04Z,d,auth,login,web,nope\n"
    )
    loaded = load_file(path)
    assert loaded.events["actor"].to_list() == ["a", "multi\nline"]
    assert [(r.line, r.reasons[0][:22]) for r in loaded.rejects] == [
        (5, "expected 6 fields as i"),
        (6, "expected 6 fields as i"),
        (7, "result: 'nope' is not "),
    ]


UNREADABLE = {
    "empty": (b"", "the file is empty"),
    "blank": (b"\n  \n", "the file is empty"),
    "binary": (b"\x00\x01\x02garbage", "NUL bytes"),
    "latin1": (
        "time,actor,type,action,target,result\n2026-01-01,Zoë,auth,login,w,done\n".encode("latin-1"),
        "is not UTF-8 text (invalid byte 0xeb on line 2)",
    ),
    "truncated-json": (b'[{"time": "2026-01-01", "type": "auth"', "is not valid JSON"),
    "json-scalar": (b"42", "expected a JSON array"),
    "wrong-delimiter": (
        b"time;actor;type;action;target;result\n2026;a;auth;login;w;done\n",
        "the header has 1 column",
    ),
    "no-required-columns": (b"when,who\n1,2\n", "no column for time, type, action, result"),
}


@pytest.mark.parametrize("name", UNREADABLE, ids=UNREADABLE)
def test_unreadable_files_get_one_clear_error(tmp_path, sqlite_store, name):
    content, message = UNREADABLE[name]
    suffix = ".json" if name.endswith("json") or name == "json-scalar" else ".csv"
    path = tmp_path / f"{name}{suffix}"
    path.write_bytes(content)
    with pytest.raises(IngestError) as info:
        import_files(sqlite_store, [path])
    assert str(path) in str(info.value)
    assert message in str(info.value)
    assert sqlite_store.count() == 0  # nothing written
    # beside a good file: skipped with the same reason, the good one imported
    good = write_jsonl(tmp_path / "good.jsonl", [GOOD])
    summary = import_files(sqlite_store, [good, path])
    assert message in summary.skipped[str(path)] and sqlite_store.count() == 1


def test_zip_renamed_to_csv(tmp_path):
    path = tmp_path / "events.csv"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("a.csv", "x")
    with pytest.raises(IngestError, match="looks like a zip archive"):
        load_file(path)


def test_gzip_renamed(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_bytes(gzip.compress(b'{"a": 1}\n'))
    with pytest.raises(IngestError, match="gzip"):
        load_file(path)


@pytest.mark.parametrize("name", ["missing.jsonl", "events.txt"])
def test_missing_or_unknown_files(tmp_path, name):
    path = tmp_path / name
    if name.endswith(".txt"):
        path.write_text("x")
    with pytest.raises(IngestError) as info:
        load_file(path)
    assert str(path) in str(info.value)


def test_import_balances_and_reimport_adds_nothing(tmp_path, sqlite_store):
    rows = [GOOD | {"id": f"e{i}", "time": f"2026-01-02T03:04:{i:02d}Z"} for i in range(20)]
    rows.append(GOOD | {"id": "bad", "type": "printer"})
    rows.append(rows[0])  # a duplicate inside the file
    path = write_jsonl(tmp_path / "batch.jsonl", rows)
    first = import_files(sqlite_store, [path])
    assert (first.rows_read, first.imported, first.rejected, first.duplicates) == (22, 20, 1, 1)
    assert first.balanced
    rejects = [json.loads(line) for line in (tmp_path / "batch.jsonl.rejects.jsonl").read_text().splitlines()]
    assert rejects == [
        {"file": str(path), "line": 21, "reasons": [rejects[0]["reasons"][0]], "raw": json.dumps(rows[20])}
    ]
    assert "printer" in rejects[0]["reasons"][0]
    second = import_files(sqlite_store, [path], rejects=tmp_path / "elsewhere" / "r.jsonl")
    assert (second.imported, second.rejected, second.duplicates) == (0, 1, 21)
    assert (tmp_path / "elsewhere" / "r.jsonl").exists()
    assert sqlite_store.count() == 20


def test_extra_columns_are_reported_not_silently_kept(tmp_path):
    loaded = load_file(write_jsonl(tmp_path / "x.jsonl", [GOOD | {"colour": "blue"}]))
    assert loaded.ignored_columns == ("colour",)


def test_nested_json_values_are_stored_as_text(tmp_path):
    loaded = load_file(
        write_jsonl(tmp_path / "x.jsonl", [GOOD | {"params": {"a": [1, 2]}, "after": {"role": "admin"}}])
    )
    assert json.loads(loaded.events["params"][0]) == {"a": [1, 2]}
    assert json.loads(loaded.events["after"][0]) == {"role": "admin"}


TIME_BOUNDS = [
    ("1970-01-01T00:00:00Z", None),
    ("1969-12-31T23:59:59.999999Z", "is before 1970"),
    ("2026-11-26T12:00:00Z", None),  # exactly a day after `now`
    ("2026-11-26T12:00:00.000001Z", "is more than a day in the future"),
]


@pytest.mark.parametrize(("value", "reason"), TIME_BOUNDS, ids=[v for v, _ in TIME_BOUNDS])
def test_time_bounds(tmp_path, value, reason):
    now = datetime(2026, 11, 25, 12, tzinfo=UTC)
    loaded = load_file(write_jsonl(tmp_path / "t.jsonl", [GOOD | {"time": value}]), now=now)
    if reason is None:
        assert loaded.events.height == 1
    else:
        (reject,) = loaded.rejects
        assert reason in reject.reasons[0]


def test_import_streams_in_batches_into_one_transaction(tmp_path, sqlite_store):
    rows = [GOOD | {"id": f"b{i}", "time": f"2026-01-02T03:{i // 60:02d}:{i % 60:02d}Z"} for i in range(250)]
    rows.insert(100, GOOD | {"id": "bad", "type": "printer"})
    path = write_jsonl(tmp_path / "b.jsonl", rows + rows[:10])
    summary = import_files(sqlite_store, [path], batch_rows=40)
    assert (summary.rows_read, summary.imported, summary.rejected, summary.duplicates) == (261, 250, 1, 10)
    assert summary.balanced and sqlite_store.count() == 250
    (reject,) = [json.loads(x) for x in (tmp_path / "b.jsonl.rejects.jsonl").read_text().splitlines()]
    assert reject["line"] == 101


def test_a_folder_imports_its_logs_and_skips_what_is_no_log(tmp_path, sqlite_store, capsys):
    """`import DIR` reads every file under it (not hidden ones); a file of no known format
    beside the logs (a README) is skipped and named, and the command exits 3 (not all read)."""
    from audit_analytics.cli.main import main

    folder = tmp_path / "logs"
    (folder / "2026" / "01").mkdir(parents=True)
    write_jsonl(folder / "a.jsonl", [GOOD | {"id": "e1"}])
    write_jsonl(folder / "2026" / "01" / "b.jsonl", [GOOD | {"id": "e2"}, GOOD | {"id": "e3"}])
    (folder / "SOURCE.md").write_text("# where these logs come from\n")
    (folder / ".sync").mkdir()
    write_jsonl(folder / ".sync" / "state.jsonl", [GOOD | {"id": "hidden"}])

    summary = import_files(sqlite_store, [folder])

    assert summary.imported == 3 and sqlite_store.count() == 3
    assert list(summary.skipped) == [str(folder / "SOURCE.md")]
    assert "cannot tell the format" in summary.skipped[str(folder / "SOURCE.md")]
    assert len(summary.files) == 2

    url = str(sqlite_store.engine.url)
    code = main(["import", "--db", url, str(folder)])
    err = capsys.readouterr().err
    assert code == 3
    assert f"skipped {folder / 'SOURCE.md'}: cannot tell the format" in err


def test_files_of_no_known_format_alone_are_refused_and_nothing_is_written(tmp_path, sqlite_store):
    (tmp_path / "notes.md").write_text("x")
    (tmp_path / "more.txt").write_text("y")
    with pytest.raises(
        IngestError, match=r"notes\.md: cannot tell the format .*\(and 1 other file\(s\) neither\)"
    ):
        import_files(sqlite_store, [tmp_path / "notes.md", tmp_path / "more.txt"])
    assert sqlite_store.count() == 0


def test_a_file_that_cannot_be_read_among_others_is_skipped_and_named(tmp_path, sqlite_store, capsys):
    """One broken file in a folder (a ``.gz`` cut short while it was written, an empty one)
    no longer stops the import of every other: it is skipped and named with its reason, the
    rest is imported, and the command exits 3; importing it again once mended adds the rest.
    Alone, it is an error and nothing is written."""
    from audit_analytics.cli.main import main

    folder = tmp_path / "logs"
    folder.mkdir()
    write_jsonl(folder / "a.jsonl", [GOOD | {"id": "e1"}])
    (folder / "b.jsonl").write_text("")
    whole = gzip.compress(b"".join(json.dumps(GOOD | {"id": f"c{i}"}).encode() + b"\n" for i in range(50)))
    (folder / "c.jsonl.gz").write_bytes(whole[: len(whole) // 2])
    url = str(sqlite_store.engine.url)

    code = main(["import", "--db", url, str(folder)])
    out, err = capsys.readouterr()
    assert code == 3, err
    assert "imported 1, rejected 0" in out and sqlite_store.count() == 1
    assert f"skipped {folder / 'b.jsonl'}: the file is empty" in err
    assert f"skipped {folder / 'c.jsonl.gz'}: " in err and "gzip" in err

    (folder / "c.jsonl.gz").write_bytes(whole)  # mended: the rest arrives, nothing twice
    summary = import_files(sqlite_store, [folder])
    assert (summary.imported, summary.duplicates) == (50, 1) and sqlite_store.count() == 51

    with pytest.raises(IngestError, match="the file is empty"):  # alone: an error, exit 2
        import_files(sqlite_store, [folder / "b.jsonl"])
    (folder / "d.log").write_text("\n  \n")  # empty whatever its extension (was "cannot tell the format")
    with pytest.raises(IngestError, match="d.log: the file is empty"):
        import_files(sqlite_store, [folder / "d.log"])
    assert main(["import", "--db", url, str(folder / "b.jsonl"), str(tmp_path / "nothing-here.md")]) == 2
    assert "could not be read either" in capsys.readouterr().err


@pytest.mark.parametrize("as_path", [False, True], ids=["str", "Path"])
def test_one_path_given_alone_is_one_file(tmp_path, sqlite_store, monkeypatch, as_path):
    """``import_files(store, "a.jsonl")``, as ``load_file`` takes one path: that file alone (a
    string was read as its characters, ``"."`` among them, and the whole working folder was
    imported, the store's own database file tried too)."""
    monkeypatch.chdir(tmp_path)
    write_jsonl(tmp_path / "a.jsonl", [GOOD])
    write_jsonl(tmp_path / "b.jsonl", [GOOD | {"id": "other", "actor": "bob"}])
    (tmp_path / "notes.txt").write_text("not a log\n")
    summary = import_files(sqlite_store, Path("a.jsonl") if as_path else "a.jsonl")
    assert summary.files == ["a.jsonl"] and summary.skipped == {}
    assert (summary.imported, sqlite_store.count()) == (1, 1)

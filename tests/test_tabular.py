"""The one tabular writer: formula-safe CSV, JSON and plain-text tables, times in one
ISO-8601 format with the zone's offset."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl
import pytest

from audit_analytics.io import export, tabular
from audit_analytics.io.tabular import (
    NEUTRALISED_PREFIXES,
    TabularError,
    csv_cells,
    format_time,
    neutralise,
    neutralise_expr,
    time_text,
    to_csv,
    to_json,
    to_table,
    write_csv,
)

HOSTILE = [
    "=cmd|' /C calc'!A0",
    "+1",
    "-2+3",
    "@SUM(A1)",
    "\tTAB",
    "\rCR",
    "'=already",
    "a=b",
    "",
    "plain",
    "\u202eevil",
]


def read_csv(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


# --------------------------------------------------------------------------- neutralising


@pytest.mark.parametrize("prefix", NEUTRALISED_PREFIXES, ids=repr)
def test_every_formula_prefix_is_neutralised_once(prefix):
    value = prefix + "x"
    assert neutralise(value) == "'" + value
    assert neutralise(neutralise(value)) == "'" + value  # idempotent


def test_export_re_exports_the_same_neutralise():
    assert export.neutralise is tabular.neutralise
    assert export.NEUTRALISED_PREFIXES == ("=", "+", "-", "@", "\t", "\r")


def test_the_vectorised_neutralise_agrees_with_the_python_one():
    frame = pl.DataFrame({"v": [*HOSTILE, None]})
    got = frame.select(neutralise_expr(pl.col("v")))
    assert got.columns == ["v"]  # the column keeps its name
    assert got["v"].to_list() == [neutralise(v) for v in HOSTILE] + [None]


# --------------------------------------------------------------------------- times

INSTANTS = [
    datetime(2026, 3, 1, 8, 15, tzinfo=UTC),
    datetime(2026, 3, 1, 8, 15, 0, 123000, tzinfo=UTC),
    datetime(2026, 3, 1, 8, 15, 0, 123456, tzinfo=UTC),
    datetime(2026, 3, 1, 8, 15, 0, 100, tzinfo=UTC),
    datetime(2025, 10, 26, 0, 30, tzinfo=UTC),  # Europe/Paris: the hour that repeats
    datetime(2025, 3, 30, 1, 0, tzinfo=UTC),  # Europe/Paris: just after the skipped hour
    datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
]
ZONES = ["UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe", "Asia/Tokyo"]


@pytest.mark.parametrize("tz", ZONES)
def test_python_and_polars_spell_every_instant_the_same(tz):
    column = pl.Series("t", INSTANTS, dtype=pl.Datetime("us", "UTC"))
    vectorised = pl.DataFrame([column]).select(time_text(pl.col("t"), column.dtype, tz))["t"].to_list()
    assert vectorised == [format_time(t, tz) for t in INSTANTS]
    for text, instant in zip(vectorised, INSTANTS, strict=True):
        parsed = datetime.fromisoformat(text)
        assert parsed == instant  # the same instant, exactly
        assert parsed.utcoffset() == instant.astimezone(ZoneInfo(tz)).utcoffset()


@pytest.mark.parametrize(
    ("instant", "tz", "expected"),
    [
        (datetime(2026, 3, 1, 8, 15, tzinfo=UTC), "Europe/Paris", "2026-03-01T09:15:00+01:00"),
        (datetime(2026, 7, 1, 8, 15, tzinfo=UTC), "Europe/Paris", "2026-07-01T10:15:00+02:00"),
        (datetime(2026, 3, 1, 2, 30, tzinfo=UTC), "America/New_York", "2026-02-28T21:30:00-05:00"),
        (datetime(2026, 3, 1, 8, 15, 0, 120000, tzinfo=UTC), "Asia/Kolkata", "2026-03-01T13:45:00.120+05:30"),
        (datetime(2026, 3, 1, 8, 15, 0, 123456, tzinfo=UTC), "UTC", "2026-03-01T08:15:00.123456+00:00"),
        (datetime(2026, 3, 1, 8, 15), "Asia/Tokyo", "2026-03-01T17:15:00+09:00"),  # naive = UTC
    ],
)
def test_the_one_time_format(instant, tz, expected):
    assert format_time(instant, tz) == expected


def test_nanoseconds_are_kept():
    frame = pl.DataFrame({"t": [datetime(2026, 1, 1, tzinfo=UTC)]}).with_columns(
        pl.col("t").cast(pl.Datetime("ns", "UTC")) + pl.duration(nanoseconds=123456789)
    )
    assert read_csv(to_csv(frame, tz="UTC"))[1] == ["2026-01-01T00:00:00.123456789+00:00"]


def test_tz_none_keeps_each_columns_own_zone_and_naive_is_utc():
    frame = pl.DataFrame(
        {
            "paris": [datetime(2026, 3, 1, 8, tzinfo=UTC)],
            "naive": [datetime(2026, 3, 1, 8)],
        }
    ).with_columns(pl.col("paris").dt.convert_time_zone("Europe/Paris"))
    assert read_csv(to_csv(frame, tz=None))[1] == ["2026-03-01T09:00:00+01:00", "2026-03-01T08:00:00+00:00"]
    assert read_csv(to_csv(frame, tz="Asia/Tokyo"))[1] == ["2026-03-01T17:00:00+09:00"] * 2


@pytest.mark.parametrize(
    "call",
    [
        lambda f: to_csv(f, tz="Mars/Olympus"),
        lambda f: to_json(f, tz="Mars/Olympus"),
        lambda f: to_table(f, tz="Mars/Olympus"),
        lambda f: format_time(datetime(2026, 1, 1), "Mars/Olympus"),
    ],
    ids=["csv", "json", "table", "format_time"],
)
def test_an_unknown_zone_is_named(call):
    with pytest.raises(TabularError, match="unknown time zone 'Mars/Olympus'"):
        call(pl.DataFrame({"a": [1]}))


# --------------------------------------------------------------------------- CSV


def mixed() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "time": [datetime(2026, 3, 1, 8, 15, tzinfo=UTC), None],
            "actor": ['=HYPERLINK("http://x")', None],
            "type": pl.Series(["auth", "user"], dtype=pl.Enum(["auth", "user"])),
            "n": [1234, None],
            "rate": [0.25, None],
            "ok": [True, False],
            "day": [date(2026, 3, 1), None],
            "age": [timedelta(hours=1, minutes=30), None],
            "tags": [["-rm", "b"], []],
            "extra": [{"k": "@v"}, None],
        }
    )


def test_csv_cells_of_every_kind():
    header, first, second = read_csv(to_csv(mixed(), tz="Europe/Paris"))
    assert header == ["time", "actor", "type", "n", "rate", "ok", "day", "age", "tags", "extra"]
    assert first == [
        "2026-03-01T09:15:00+01:00",
        '\'=HYPERLINK("http://x")',
        "auth",
        "1234",
        "0.25",
        "true",
        "2026-03-01",
        "PT1H30M",
        "'-rm; b",  # a list is one cell, neutralised as a whole
        '{"k":"@v"}',  # a struct is its JSON text
    ]
    assert second == ["", "", "user", "", "", "false", "", "", "", ""]  # nulls are empty


@pytest.mark.parametrize("value", HOSTILE, ids=repr)
def test_csv_reads_back_every_hostile_value(value):
    cell = read_csv(to_csv(pl.DataFrame({"v": [value]})))[1][0]
    if value.startswith(NEUTRALISED_PREFIXES):
        assert cell == "'" + value
    else:
        assert cell == value


def test_csv_header_cells_are_neutralised_too():
    frame = pl.DataFrame({"=evil()": [1], "ok": [2]})
    assert read_csv(to_csv(frame))[0] == ["'=evil()", "ok"]
    with pytest.raises(TabularError, match="clash once neutralised"):
        to_csv(pl.DataFrame({"=a": [1], "'=a": [2]}))


def test_csv_bom_is_optional():
    frame = pl.DataFrame({"a": ["x"]})
    assert to_csv(frame).startswith(b"\xef\xbb\xbfa\n")
    assert to_csv(frame, bom=False) == b"a\nx\n"


def test_the_csv_cells_are_vectorised(monkeypatch):
    # no Python function runs per cell: tabular.neutralise sees the header, never a row
    calls: list[str] = []
    real = tabular.neutralise

    def counted(value: str) -> str:
        calls.append(value)
        return real(value)

    monkeypatch.setattr(tabular, "neutralise", counted)
    frame = pl.DataFrame({"a": ["=x"] * 1000, "b": ["y"] * 1000})
    assert csv_cells(frame)["a"].unique().to_list() == ["'=x"]
    assert calls == ["a", "b"]


def test_write_csv_to_a_path_a_text_stream_and_a_binary_stream_agree(tmp_path: Path):
    frame = mixed()
    expected = to_csv(frame, tz="Asia/Tokyo")
    path = tmp_path / "out.csv"
    assert write_csv(frame, path, tz="Asia/Tokyo") == len(expected) == path.stat().st_size
    assert path.read_bytes() == expected
    text, binary = io.StringIO(), io.BytesIO()
    assert write_csv(frame, text, tz="Asia/Tokyo") == len(expected)
    assert write_csv(frame, binary, tz="Asia/Tokyo") == len(expected)
    assert text.getvalue().encode("utf-8") == binary.getvalue() == expected
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]  # no temporary file left


def test_a_failed_csv_write_keeps_the_old_file(tmp_path: Path, monkeypatch):
    path = tmp_path / "out.csv"
    path.write_text("previous")

    def half_then_fail(self, file, **_):
        Path(file).write_text("half")
        raise OSError("disk full")

    monkeypatch.setattr(pl.DataFrame, "write_csv", half_then_fail)
    with pytest.raises(OSError, match="disk full"):
        write_csv(pl.DataFrame({"a": [1]}), path)
    assert path.read_text() == "previous"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


def test_a_type_that_cannot_be_text_names_its_column():
    frame = pl.DataFrame({"ok": [1], "blob": [b"\x00\x01"]})
    with pytest.raises(TabularError, match="column 'blob' has type Binary"):
        to_csv(frame)


# --------------------------------------------------------------------------- JSON


def test_json_array_and_lines():
    frame = mixed()
    records = json.loads(to_json(frame, tz="Asia/Kolkata"))
    assert records[0] == {
        "time": "2026-03-01T13:45:00+05:30",
        "actor": '=HYPERLINK("http://x")',  # JSON is data: kept as it is
        "type": "auth",
        "n": 1234,
        "rate": 0.25,
        "ok": True,
        "day": "2026-03-01",
        "age": "PT1H30M",
        "tags": ["-rm", "b"],
        "extra": {"k": "@v"},
    }
    assert records[1]["time"] is None and records[1]["tags"] == []
    lines = to_json(frame, tz="Asia/Kolkata", lines=True).splitlines()
    assert [json.loads(line) for line in lines] == records
    assert to_json(frame.head(0), lines=True) == ""
    assert to_json(frame.head(0)) == "[]\n"


def test_json_lists_of_times_use_the_one_format():
    frame = pl.DataFrame(
        {"seen": [[datetime(2026, 3, 1, 8, tzinfo=UTC), datetime(2026, 3, 1, 9, tzinfo=UTC)]]}
    )
    assert json.loads(to_json(frame, tz="Europe/Paris"))[0]["seen"] == [
        "2026-03-01T09:00:00+01:00",
        "2026-03-01T10:00:00+01:00",
    ]


def test_json_ensure_ascii_escapes_everything_outside_ascii():
    frame = pl.DataFrame({"a": ["\u202eé"]})
    assert to_json(frame, lines=True, ensure_ascii=True) == '{"a": "\\u202e\\u00e9"}\n'
    assert to_json(frame, lines=True) == '{"a": "\u202eé"}\n'


# --------------------------------------------------------------------------- tables


def test_table_layout():
    frame = pl.DataFrame(
        {
            "time": [datetime(2026, 3, 1, 8, 15, tzinfo=UTC), None],
            "who": ["evil\x1b[2J\u202eroot", "bob"],
            "count": [1234567, 3],
            "tags": [["a", "b"], None],
        }
    )
    text = to_table(frame, tz="Asia/Tokyo", headers={"who": "actor"}, null="-")
    assert text.splitlines() == [
        "time                       actor                  count      tags",
        "-------------------------  ---------------------  ---------  ----",
        "2026-03-01T17:15:00+09:00  evil\\x1b[2J\\u202eroot  1,234,567  a, b",
        "-                          bob                    3          -",
    ]


def test_table_columns_limit_and_empty():
    frame = pl.DataFrame({"a": ["x" * 100], "b": [1]})
    assert to_table(frame, columns=["b", "a"], limit=10).splitlines()[2] == "1  xxxxxxxxx…"
    assert to_table(frame.head(0), empty="(nothing)\n") == "(nothing)\n"
    assert to_table(frame.head(0)).splitlines() == ["a  b", "-  -"]  # no empty text: the header
    with pytest.raises(TabularError, match=r"no such column\(s\) for the table: nope"):
        to_table(frame, columns=["a", "nope"])


def test_a_table_shows_fractions_as_a_reader_reads_them():
    """`activity results` printed a failure rate as 0.027301092043681748; the table shows it to a
    reader's precision, whole floats as whole numbers, and the CSV keeps every digit."""

    frame = pl.DataFrame({"rate": [0.027301092043681748, 2.0, 12345.678, None]})
    lines = tabular.to_table(frame).splitlines()
    assert [line.strip() for line in lines[2:]] == ["0.0273", "2", "12,345.68", ""]
    out = io.StringIO()
    tabular.write_csv(frame, out, bom=False)
    assert "0.027301092043681748" in out.getvalue()

"""Exports of any size, a chunk at a time: Store.stream (keyset pages, in any sort order, on
SQLite, PostgreSQL and chDB: the same rows in the same order as one page of everything), the
writers fed chunks (the same file as from the whole frame), and the CLI's and the app's
exports reading that way."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta

import openpyxl
import polars as pl
import pytest
from conftest import STORE_FIXTURES

from audit_analytics.cli.main import main
from audit_analytics.demo.generate import generate
from audit_analytics.engines.store import Store, open_store
from audit_analytics.errors import ExportError
from audit_analytics.filters import Filter, Sort
from audit_analytics.io.export import MAX_XLSX_ROWS, ExportManifest, write_csv, write_xlsx
from audit_analytics.schema import SORTABLE_COLUMNS

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def awkward_events() -> pl.DataFrame:
    """Demo events plus the rows keyset paging gets wrong: equal times, actors equal but for
    case, missing actors and targets, non-ASCII names."""
    events = generate(1_500, seed=4, now=NOW).events
    same = NOW - timedelta(hours=3)
    extra = events.head(24).with_columns(
        pl.Series("id", [f"zz-{i:02d}" for i in range(24)]),
        pl.lit(same).alias("time"),
        pl.Series("actor", ["Alice", "alice", "ALICE", None, "Émile", "émile"] * 4, dtype=pl.String),
        pl.Series("target", [None, "b", "B", "a"] * 6, dtype=pl.String),
    )
    return pl.concat([events, extra.select(events.columns)])


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres), "chdb"])
def store(request):
    return request.getfixturevalue(STORE_FIXTURES.get(request.param, "pg_store"))


@pytest.mark.parametrize("column", SORTABLE_COLUMNS)
@pytest.mark.parametrize("descending", [True, False], ids=["desc", "asc"])
def test_chunks_are_the_sorted_result_whatever_the_sort(store, column, descending):
    store.append(awkward_events())
    sort = Sort(column, descending)
    flt = Filter(period="all")
    whole = store.page(flt, sort, limit=10_000)

    chunks = list(store.stream(flt, sort, rows=97))

    assert [c.height for c in chunks[:-1]] == [97] * (len(chunks) - 1)
    streamed = pl.concat(chunks)
    assert streamed.height == store.count(flt) == whole.height
    assert streamed["id"].to_list() == whole["id"].to_list()
    assert streamed.equals(whole)


def test_a_filter_streams_only_its_rows_with_now_pinned(store):
    store.append(awkward_events())
    flt = Filter(period="7d", types=("auth",), results=("failed",))
    expected = store.page(flt, Sort("time", True), limit=10_000, now=NOW)
    assert expected.height > 0

    streamed = pl.concat(list(store.stream(flt, now=NOW, rows=10)))

    assert streamed["id"].to_list() == expected["id"].to_list()


def test_an_empty_result_gives_one_empty_chunk_with_the_columns(store):
    store.append(awkward_events())
    chunks = list(store.stream(Filter(query="no-such-word-anywhere"), rows=5))
    assert [c.height for c in chunks] == [0]
    assert chunks[0].columns == store.page(limit=1).columns


def test_a_result_of_exactly_whole_chunks_ends_without_an_empty_chunk(store):
    events = awkward_events().head(40)
    store.append(events)
    assert [c.height for c in store.stream(Filter(period="all"), rows=10)] == [10, 10, 10, 10]


def test_rows_must_be_positive(sqlite_store):
    with pytest.raises(ValueError, match="at least 1"):
        next(sqlite_store.stream(rows=0))


# --------------------------------------------------------------------------- the writers


def demo_frame() -> pl.DataFrame:
    return awkward_events().sort(["time", "id"], descending=True)


def pieces(frame: pl.DataFrame, size: int) -> list[pl.DataFrame]:
    return [frame.slice(start, size) for start in range(0, frame.height, size)]


def test_a_csv_written_from_chunks_is_the_csv_of_the_whole_frame(tmp_path):
    frame = demo_frame()
    whole = write_csv(frame, tmp_path / "whole.csv", tz="Europe/Paris")
    seen: list[tuple[int, int]] = []

    chunked = write_csv(
        pieces(frame, 113),
        tmp_path / "chunked.csv",
        tz="Europe/Paris",
        progress=lambda done, total: seen.append((done, total)),
    )

    assert (tmp_path / "chunked.csv").read_bytes() == (tmp_path / "whole.csv").read_bytes()
    assert chunked.rows == whole.rows == frame.height
    assert chunked.rows_sha256 == whole.rows_sha256
    assert chunked.events_sha256 == whole.events_sha256 is not None
    assert chunked.manifest is not None and chunked.manifest.columns == tuple(frame.columns)
    assert seen[-1] == (frame.height, frame.height) and len(seen) == len(pieces(frame, 113))


@pytest.mark.parametrize("per_sheet", [MAX_XLSX_ROWS, 500], ids=["one-sheet", "sheets-of-500"])
def test_an_xlsx_written_from_chunks_holds_the_same_cells_and_digests(tmp_path, per_sheet):
    frame = demo_frame()
    # one manifest for both, so the About sheets' "Generated at" agree too
    about = ExportManifest(caption="all", generated_at=NOW)
    whole = write_xlsx(frame, tmp_path / "whole.xlsx", max_rows_per_sheet=per_sheet, manifest=about)

    chunked = write_xlsx(
        pieces(frame, 113), tmp_path / "chunked.xlsx", max_rows_per_sheet=per_sheet, manifest=about
    )

    assert chunked.sheets == whole.sheets
    assert chunked.rows == whole.rows == frame.height
    assert chunked.rows_sha256 == whole.rows_sha256
    assert chunked.events_sha256 == whole.events_sha256 is not None
    books = [
        openpyxl.load_workbook(tmp_path / name, read_only=True) for name in ("whole.xlsx", "chunked.xlsx")
    ]
    for a, b in zip(*(book.worksheets for book in books), strict=True):
        assert list(a.iter_rows(values_only=True)) == list(b.iter_rows(values_only=True))
    ids = [
        row[0] for sheet in books[1].worksheets[:-1] for row in sheet.iter_rows(min_row=2, values_only=True)
    ]
    assert ids == frame["id"].to_list()


@pytest.mark.parametrize("writer", [write_csv, write_xlsx], ids=["csv", "xlsx"])
def test_a_count_that_changed_while_reading_leaves_no_file(tmp_path, writer):
    frame = demo_frame()
    manifest = ExportManifest(caption="counted first", rows=frame.height - 1)

    with pytest.raises(ExportError, match="the log changed while they were read"):
        writer(pieces(frame, 400), tmp_path / "out.bin", manifest=manifest)

    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("writer", [write_csv, write_xlsx], ids=["csv", "xlsx"])
def test_no_chunk_at_all_is_refused(tmp_path, writer):
    with pytest.raises(ExportError, match="without a single frame"):
        writer(iter(()), tmp_path / "out.bin")
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- the callers


def test_the_cli_export_reads_the_store_a_chunk_at_a_time(tmp_path, monkeypatch, capsys):
    """`export` never loads the result whole: it walks Store.stream (here in chunks of 250),
    and its file is byte for byte the file written from the whole sorted result."""
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    store = open_store(url)
    store.append(awkward_events())
    whole = store.page(Filter(period="all"), Sort("actor", False), limit=10_000)
    write_csv(whole, tmp_path / "expected.csv")
    chunks: list[int] = []
    walk = Store.stream

    def small_chunks(self, *args, **kwargs):
        for chunk in walk(self, *args, **{**kwargs, "rows": 250}):
            chunks.append(chunk.height)
            yield chunk

    def no_whole_load(*_args, **_kwargs):
        raise AssertionError("the export loaded the whole result")

    monkeypatch.setattr(Store, "stream", small_chunks)
    monkeypatch.setattr(Store, "load", no_whole_load)

    code = main(
        ["export", "--db", url, "--sort", "actor", "--ascending", "--output", str(tmp_path / "out.csv")]
    )

    assert code == 0, capsys.readouterr().err
    assert (tmp_path / "out.csv").read_bytes() == (tmp_path / "expected.csv").read_bytes()
    assert sum(chunks) == whole.height and len(chunks) == -(-whole.height // 250)


@pytest.mark.parametrize("mode", ["memory", "pushdown"])
def test_the_app_export_reads_its_engine_a_chunk_at_a_time(tmp_path, monkeypatch, mode):
    """The Audit Log's export writes exactly the selection, in order, from the engine's
    chunks, whichever engine the app runs (memory: slices with their details fetched;
    pushdown: keyset pages from the database)."""
    from audit_analytics.engines.shared import SharedData
    from audit_analytics.engines.sql import open_engine
    from audit_analytics.ui.explorer import prepare_export
    from audit_analytics.view import View

    url = f"sqlite:///{tmp_path / 'audit.db'}"
    monkeypatch.setenv("AUDIT_DB_URL", url)  # where the export's audit event is recorded
    store = open_store(url)
    store.append(awkward_events())
    index = open_engine(store, mode=mode)
    sizes: list[int] = []
    walk = index.chunks

    def small_chunks(selection, rows=0):
        for chunk in walk(selection, rows=300):
            sizes.append(chunk.height)
            yield chunk

    index.chunks = small_chunks  # type: ignore[method-assign]
    shared = SharedData.__new__(SharedData)
    shared.index = index
    view = View(filter=Filter(period="all", types=("auth", "user")), sort=Sort("time", True))
    expected = store.page(view.filter, view.sort, limit=10_000)

    name, data, rows, sidecar = prepare_export(shared, view, "csv", actor="tester", now=NOW)

    assert rows == expected.height and sum(sizes) == rows and len(sizes) > 1
    got = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    assert [r["id"] for r in got] == expected["id"].to_list()
    assert sidecar is not None and json.loads(sidecar)["rows"] == rows
    recorded = store.page(Filter(period="all", users=("tester",)), limit=5)
    assert recorded["action"].to_list() == ["export"] and recorded["target"].to_list() == [name]


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_the_cli_query_prints_every_row_a_chunk_at_a_time(tmp_path, monkeypatch, capsys, fmt):
    """`query --format csv|jsonl --limit 0` (every row) walks Store.stream; the output is
    what a query of one page as large as the result prints (one header row for CSV)."""
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    open_store(url).append(awkward_events())
    args = ["query", "--db", url, "--period", "all", "--type", "auth", "--type", "user", "--format", fmt]
    assert main([*args, "--limit", "100000"]) == 0
    expected = capsys.readouterr().out
    chunks: list[int] = []
    walk = Store.stream

    def small_chunks(self, *a, **kw):
        for chunk in walk(self, *a, **{**kw, "rows": 200}):
            chunks.append(chunk.height)
            yield chunk

    monkeypatch.setattr(Store, "stream", small_chunks)

    assert main([*args, "--limit", "0"]) == 0

    assert capsys.readouterr().out == expected
    assert len(chunks) > 2 and sum(chunks) == len(expected.splitlines()) - (fmt == "csv")

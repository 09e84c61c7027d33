"""Faults: the database unreachable at start or gone mid-session, a corrupt or missing
archive file, an export interrupted part-way. The app, the CLI and the files stay sound.

The database faults use a PostgreSQL server of their own (started and stopped here), so
stopping it cannot hurt the other tests that share conftest's server.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import polars as pl
import pytest
from conftest import _free_port, _pg_bindir, need
from pg_support import ThrowawayPostgres
from streamlit.testing.v1 import AppTest

from audit_analytics.cli.main import main as cli_main
from audit_analytics.demo.generate import generate
from audit_analytics.engines.store import open_store
from audit_analytics.errors import StoreError
from audit_analytics.io import archive
from audit_analytics.io.export import write_csv, write_xlsx

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")


class RestartablePostgres(ThrowawayPostgres):
    """A server a test may stop (at once, as a crash would) and start again."""

    def stop(self, mode: str = "immediate") -> None:
        super().stop(mode)


@pytest.fixture
def pg():
    need(_pg_bindir() is not None, "PostgreSQL is not installed (apt-get install postgresql)")
    server = RestartablePostgres(prefix="aa-pg-faults-")
    server.start()
    try:
        yield server
    finally:
        server.close(mode="immediate")


def fill(url: str, n: int = 2_000) -> None:
    store = open_store(url)
    try:
        store.append(generate(n, seed=11).events)
    finally:
        store.engine.dispose()


def app_for(url: str, monkeypatch, as_role, mode: str = "memory") -> AppTest:
    monkeypatch.setenv("AUDIT_DB_URL", url)
    monkeypatch.setenv("AUDIT_ENGINE", mode)
    at = AppTest.from_file(APP, default_timeout=60)
    return as_role(at, "auditor")


def texts(elements) -> list[str]:
    return [e.value if isinstance(e.value, str) else str(e.value) for e in elements]


@pytest.mark.postgres
def test_database_unreachable_at_start_then_back(pg, monkeypatch, as_role):
    fill(pg.url)
    pg.stop()
    at = app_for(pg.url, monkeypatch, as_role).run()
    assert not at.exception
    assert any("The audit database cannot be reached" in t for t in texts(at.error)), texts(at.error)
    assert "Traceback" not in " ".join(texts(at.error))
    retry = at.button(key="retry_store")
    assert retry.label == "Retry"
    # still down: a retry says the same, calmly
    retry.click().run()
    assert not at.exception and at.button(key="retry_store")
    pg.start()
    at.button(key="retry_store").click().run()
    assert not at.exception and not at.error
    assert [t.value for t in at.title] == ["Audit Log"]
    assert at.dataframe, "the events table is drawn once the database is back"


@pytest.mark.postgres
@pytest.mark.parametrize(
    "mode",
    [
        "memory",
        "pushdown",
    ],
)
def test_database_gone_mid_session_keeps_the_last_frame_marked_stale(pg, monkeypatch, as_role, mode):
    from audit_analytics.ui import data

    fill(pg.url)
    from audit_analytics.engines import shared as shared_module

    monkeypatch.setattr(shared_module, "FRESHNESS_SECONDS", 0.0)  # check the database on every rerun
    at = app_for(pg.url, monkeypatch, as_role, mode).run()
    assert not at.exception and not at.warning
    caption_before = [c.value for c in at.caption]
    assert at.dataframe
    pg.stop()
    at.run()
    assert not at.exception
    if mode == "memory":
        assert not at.error
        assert any("may be stale" in t for t in texts(at.warning)), texts(at.warning)
        assert [c.value for c in at.caption][:1] == caption_before[:1]  # the same result is still shown
        assert at.dataframe
        # an event's detail still comes from memory; its params/before/after say why they are missing
        from audit_analytics.ui.explorer import event_by_id

        shared = data.current_shared()
        event_id = shared.index.frame["id"][-1]
        event = event_by_id(shared, event_id)
        assert event["id"] == event_id and event["actor"] == shared.index.frame["actor"][-1]
        assert "could not read" in event["_details_error"], event
    else:  # pushdown reads every view from the database: a clear message and a retry instead
        assert any("not answering" in t for t in texts(at.error)), texts(at.error)
        assert any(b.label == "Retry" for b in at.button)
    pg.start()
    at.run()  # the next action after the database is back reloads
    assert not at.exception and not at.error and not at.warning
    assert at.dataframe


# ---------------------------------------------------------------------------------------
# the archive


@pytest.fixture
def archive_root(tmp_path):
    root = tmp_path / "archive"
    events = generate(3_000, seed=4).events
    archive.write_partitions(root, events, run_id="r1")
    return root, events


def _corrupt(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # a torn write: the footer is gone


def test_corrupt_archive_file_is_named_and_the_rest_still_works(archive_root):
    root, events = archive_root
    files = sorted(root.glob("category=*/month=*/*.parquet"))
    bad = files[0]
    bad_category = bad.parent.parent.name.split("=")[1]
    _corrupt(bad)
    with pytest.raises(archive.ArchiveError, match=str(bad)) as info:
        archive.scan(root).collect()
    assert "not a readable Parquet file" in str(info.value)
    assert archive.check(root) == {bad: archive.check(root)[bad]}
    # the other partitions still read, with a filter that avoids it or when asked to skip it
    others = [t for t in events["type"].cast(pl.String).unique().to_list() if t != bad_category]
    from audit_analytics.filters import Filter

    kept = archive.scan(root, Filter(types=tuple(others[:3]))).collect()
    assert kept.height == events.filter(pl.col("type").cast(pl.String).is_in(others[:3])).height
    skipped = archive.scan(root, on_unreadable="skip").collect()
    assert skipped.height == events.height - _rows_in(bad, events)


def _rows_in(path: Path, events: pl.DataFrame) -> int:
    category = path.parent.parent.name.split("=")[1]
    month = path.parent.name.split("=")[1]
    return events.filter(
        (pl.col("type").cast(pl.String) == category)
        & (pl.col("time").dt.convert_time_zone("UTC").dt.strftime("%Y-%m") == month)
    ).height


def test_missing_archive_file_is_named(archive_root):
    root, _ = archive_root
    gone = sorted(root.glob("category=*/month=*/*.parquet"))[-1]
    gone.unlink()
    with pytest.raises(archive.ArchiveError, match=f"{gone} is missing"):
        archive.scan(root).collect()
    assert list(archive.check(root)) == [gone]


def test_cli_names_the_bad_archive_file_and_still_answers_without_it(archive_root, tmp_path, capsys):
    root, _ = archive_root
    bad = sorted(root.glob("category=*/month=*/*.parquet"))[0]
    _corrupt(bad)
    db = f"sqlite:///{tmp_path / 'audit.db'}"
    fill(db, 1_000)
    code = cli_main(["query", "--db", db, "--count", "--include-archive", "--archive", str(root)])
    err = capsys.readouterr().err
    assert code == 2 and str(bad) in err and "Traceback" not in err
    assert cli_main(["query", "--db", db, "--count"]) == 0
    assert capsys.readouterr().out.strip() == "1000"


def test_corrupt_page_inside_a_readable_file_is_named_by_merge(archive_root, monkeypatch):
    """A file whose footer reads but whose data does not: merge() names it."""
    root, events = archive_root
    lazy = archive.scan(root)
    victim = lazy._aa_files[0]
    victim.write_bytes(b"PAR1" + b"\x00" * 64 + b"PAR1")  # replaced after the scan was planned
    with pytest.raises(archive.ArchiveError, match=str(victim)):
        archive.merge(events.head(0), lazy)


# ---------------------------------------------------------------------------------------
# exports interrupted part-way


class Interrupted(Exception):
    pass


def test_xlsx_export_interrupted_by_progress_leaves_nothing(tmp_path):
    frame = generate(60_000, seed=2).events
    target = tmp_path / "out.xlsx"
    target.write_bytes(b"the previous export")
    calls = []

    def progress(done, total):
        calls.append(done)
        if done > 0:
            raise Interrupted

    with pytest.raises(Interrupted):
        write_xlsx(frame, target, progress=progress)
    assert calls[-1] > 0
    assert target.read_bytes() == b"the previous export"  # untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.xlsx"]  # no temp file left


KILL_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    import polars as pl
    from audit_analytics.io import export
    from audit_analytics.demo.generate import generate
    fmt, target = sys.argv[1], sys.argv[2]
    frame = generate(60_000, seed=2).events
    if fmt == "csv":
        real = pl.DataFrame.write_csv
        def half_then_die(self, file, **kw):
            real(self.head(self.height // 2), file, **kw)
            os.kill(os.getpid(), signal.SIGKILL)
        pl.DataFrame.write_csv = half_then_die
        export.write_csv(frame, target)
    else:
        def die(done, total):
            if done > 0:
                os.kill(os.getpid(), signal.SIGKILL)
        export.write_xlsx(frame, target, progress=die)
    """
)


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_export_killed_mid_write_leaves_no_file_that_looks_complete(tmp_path, fmt):
    target = tmp_path / f"out.{fmt}"
    proc = subprocess.run(
        [sys.executable, "-c", KILL_SCRIPT, fmt, str(target)], capture_output=True, timeout=300, cwd=ROOT
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    assert not target.exists()
    leftovers = list(tmp_path.iterdir())
    # a kill cannot clean up; what is left is a hidden temporary, never the export's name
    assert all(p.name.startswith(f".out.{fmt}.") and p.name.endswith(".tmp") for p in leftovers), leftovers


def test_interrupted_csv_export_keeps_the_previous_file(tmp_path, monkeypatch):
    frame = generate(1_000, seed=2).events
    target = tmp_path / "out.csv"
    write_csv(frame.head(10), target)
    before = target.read_bytes()
    manifest = target.with_name("out.csv.manifest.json")
    proof = manifest.read_bytes()

    def boom(self, file, **kw):
        if hasattr(file, "write"):  # the writer's chunk buffer
            file.write(b"half")
        else:
            Path(file).write_text("half")
        raise KeyboardInterrupt

    monkeypatch.setattr(pl.DataFrame, "write_csv", boom)
    with pytest.raises(KeyboardInterrupt):
        write_csv(frame, target)
    assert target.read_bytes() == before
    assert manifest.read_bytes() == proof  # the earlier file keeps the manifest that proves it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv", "out.csv.manifest.json"]


def test_store_error_for_an_unreachable_url_is_one_line():
    port = _free_port()  # nothing listens there
    with pytest.raises(StoreError) as info:
        open_store(f"postgresql://audit@127.0.0.1:{port}/audit", connect_args={"connect_timeout": 3})
    assert "\n" not in str(info.value) and str(port) in str(info.value)

"""The index snapshot (engines/snapshot.py): a restored index answers exactly as a loaded one;
a stale, damaged or foreign snapshot is never used, and says why; two writers never leave a
mix of two snapshots."""

from __future__ import annotations

import json
import logging
import threading
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
import sqlalchemy as sa
from polars.testing import assert_frame_equal

from audit_analytics.demo.generate import generate
from audit_analytics.engines import shared as shared_module
from audit_analytics.engines.memory import EventIndex
from audit_analytics.engines.shared import SharedData
from audit_analytics.engines.snapshot import Snapshots
from audit_analytics.engines.sql import open_engine
from audit_analytics.engines.store import open_store
from audit_analytics.filters import Filter, Sort
from audit_analytics.io.retention import Policy
from audit_analytics.io.retention import apply as retention_apply

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
EVENTS = generate(4_000, seed=21, now=NOW, days=200).events
FILTERS = [
    Filter(period="all"),
    Filter(period="all", types=("auth",), results=("failed",)),
    Filter(period="all", query="admin"),
    Filter(period="all", query="user:svc-* -result:done"),
    Filter(period="all", query='ip:10.0.0.0/8 "password"'),
    Filter(period="all", users=("alice",)),
    Filter(start=NOW - timedelta(days=30), end=NOW),
]


@pytest.fixture
def store(tmp_path):
    s = open_store(f"sqlite:///{tmp_path / 'audit.db'}")
    s.append(EVENTS)
    yield s
    s.engine.dispose()


def saved(store) -> tuple[Snapshots, EventIndex]:
    snaps = Snapshots.for_store(store)
    assert snaps is not None
    index = open_engine(store, mode="memory")
    assert isinstance(index, EventIndex)
    snaps.save(index, snaps.mark(store))
    return snaps, index


def meta(snaps: Snapshots) -> dict:
    return json.loads(snaps.meta.read_text())


def test_a_restored_index_answers_exactly_as_a_loaded_one(store):
    snaps, loaded = saved(store)
    restored = snaps.restore(store)
    assert restored is not None and restored is not loaded
    assert_frame_equal(restored.materialised(), loaded.materialised())
    for flt in FILTERS:
        for sort in (Sort("time", True), Sort("actor", False)):
            assert restored.count(flt, now=NOW) == loaded.count(flt, now=NOW)
            assert_frame_equal(
                restored.page(flt, sort, limit=50, now=NOW), loaded.page(flt, sort, limit=50, now=NOW)
            )
    victim = EVENTS["id"][123]
    assert restored.get(victim) == loaded.get(victim)  # detail columns fetched from the store


def test_events_stored_since_are_taken_in(store):
    snaps, loaded = saved(store)
    added = [store.record(actor="ada", type="auth", action="login") for _ in range(3)]
    restored = snaps.restore(store)
    assert restored is not None and restored.height == loaded.height + 3
    assert restored.page(Filter(period="all"), limit=3)["id"].to_list() == list(reversed(added))


def test_a_table_changed_other_than_at_its_end_is_loaded_again(store, tmp_path, caplog):
    snaps, _ = saved(store)
    retention_apply(store, Policy(archive=str(tmp_path / "archive")), actor="admin", now=NOW)
    with caplog.at_level(logging.WARNING):
        assert snaps.restore(store) is None
    assert "changed other than at its end" in caplog.text


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        ("flip", "damaged (CRC-32 differs)"),
        ("truncate", "another size"),
        ("delete", "missing"),
        ("json", "cannot be read"),
        ("version", "another version"),
        ("database", "belongs to"),
        ("rewritten", "not the one it was taken at"),
    ],
)
def test_a_damaged_stale_or_foreign_snapshot_is_never_used(store, caplog, damage, reason):
    snaps, _ = saved(store)
    data = snaps.folder / meta(snaps)["file"]
    if damage == "flip":
        raw = bytearray(data.read_bytes())
        raw[len(raw) // 2] ^= 0xFF
        data.write_bytes(bytes(raw))
    elif damage == "truncate":
        data.write_bytes(data.read_bytes()[:-100])
    elif damage == "delete":
        data.unlink()
    elif damage == "json":
        snaps.meta.write_text("{not json")
    elif damage == "version":
        snaps.meta.write_text(json.dumps(meta(snaps) | {"layout_id": "older"}))
    elif damage == "database":
        snaps.meta.write_text(json.dumps(meta(snaps) | {"database": "sqlite:///elsewhere.db"}))
    elif damage == "rewritten":
        with store.engine.begin() as conn:
            conn.execute(sa.text("UPDATE audit_batches SET digest = 'x' WHERE batch = 1"))
    with caplog.at_level(logging.WARNING):
        assert snaps.restore(store) is None
    assert reason in caplog.text


def test_snapshots_can_be_turned_off_and_moved(store, tmp_path, monkeypatch):
    monkeypatch.setenv("AUDIT_SNAPSHOT", "off")
    assert Snapshots.for_store(store) is None
    monkeypatch.delenv("AUDIT_SNAPSHOT")
    monkeypatch.setenv("AUDIT_SNAPSHOT_DIR", str(tmp_path / "elsewhere"))
    snaps, _ = saved(store)
    assert snaps.meta.parent == tmp_path / "elsewhere" and snaps.restore(store) is not None
    assert Snapshots.for_store(open_store("sqlite://")) is None  # an in-memory database: none


def test_two_writers_never_leave_a_mix(store):
    snaps, index = saved(store)
    bigger = index.extended(
        generate(1_000, seed=5, now=NOW + timedelta(days=30), days=7).events.select(index.columns)
    )
    assert bigger is not None
    errors: list[BaseException] = []

    def write(which: EventIndex) -> None:
        try:
            for _ in range(5):
                Snapshots.for_store(store).save(which, snaps.mark(store))  # type: ignore[union-attr]
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(i,)) for i in (index, bigger, index, bigger)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    written = meta(snaps)
    rows = pl.read_ipc(snaps.folder / written["file"])
    assert rows.height == written["height"]  # the description names its own data file
    # whichever won, it reads back whole (the bigger one is not of this table: refused as such)
    restored = snaps.restore(store)
    assert restored is None or restored.height == index.height


def test_the_app_restores_instead_of_loading(store, monkeypatch, caplog):
    first = SharedData(snapshots=Snapshots.for_store(store))
    first.refresh(store)
    for thread in threading.enumerate():
        if thread.name == "audit-snapshot":
            thread.join()
    assert first.snapshots is not None and first.snapshots.meta.is_file()

    def no_load(*args, **kwargs):
        raise AssertionError("the table was loaded although a current snapshot exists")

    monkeypatch.setattr(shared_module, "open_engine", no_load)
    store.record(actor="ada", type="auth", action="login")
    second = SharedData(snapshots=Snapshots.for_store(store))
    with caplog.at_level(logging.WARNING):
        second.refresh(store)
    assert second.index.height == EVENTS.height + 1 and second.version == 1
    assert "restored" in caplog.text


def test_memory_mode_above_the_limit_still_grows(store, monkeypatch):
    """AUDIT_ENGINE=memory holds a table larger than AUDIT_MEMORY_LIMIT: new events are
    taken in as growth (a restart restores the snapshot); in auto mode such a table is pushed
    down instead, so growing it in memory is refused."""
    snaps, _ = saved(store)
    store.record(actor="ada", type="auth", action="login")
    monkeypatch.setenv("AUDIT_MEMORY_LIMIT", "100")
    monkeypatch.setenv("AUDIT_ENGINE", "memory")
    restored = snaps.restore(store)
    assert restored is not None and restored.height == EVENTS.height + 1
    monkeypatch.setenv("AUDIT_ENGINE", "auto")
    assert snaps.restore(store) is None

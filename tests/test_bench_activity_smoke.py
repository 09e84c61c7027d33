"""The Activity summary's benchmark (bench/bench_activity_summary.py) runs at a tiny size so it
never breaks: 2,000 demo events in a SQLite file, every engine (memory, SQLite and chDB
counting), every period, one run. It checks no timings; the real run is
``bench/bench_activity_summary.py --db …/pages-1000000.db``."""

from __future__ import annotations

import importlib.util
import json

from conftest import bench_module, need

from audit_analytics.demo.generate import generate
from audit_analytics.engines.store import open_store


def test_every_engine_and_period_is_timed(tmp_path):
    need(importlib.util.find_spec("chdb") is not None, "chdb is not installed (pip install chdb)")
    db = tmp_path / "events.db"
    store = open_store(f"sqlite:///{db}")
    store.append(generate(2_000, seed=3).events)
    store.engine.dispose()
    output = tmp_path / "activity.json"
    bench_module("bench_activity_summary").main(
        ["--db", str(db), "--engines", "memory,sqlite,chdb", "--repeat", "1", "--out", str(output)]
    )
    result = json.loads(output.read_text())
    assert result["rows"] == 2_000
    assert sorted(result["seconds"]) == sorted(
        f"{e} {p}" for e in ("memory", "sqlite", "chdb") for p in ("7d", "30d", "all")
    )
    assert all(0 < t["min"] <= t["median"] <= t["max"] for t in result["seconds"].values())
    assert (tmp_path / "events.chdb").is_dir()  # the events copied once into chDB

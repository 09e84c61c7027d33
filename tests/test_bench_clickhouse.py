"""The ClickHouse benchmark (bench/bench_clickhouse.py) runs at a tiny size so it keeps working.

``--quick``: 3,000 demo events as the base (chDB, memory, PostgreSQL) and 9,000 in the "big"
chDB folder (built by ClickHouse from the base), two timed runs a step, the Audit Log page
through AppTest on each store. Checks that every step of every store has positive timings
and that the three base-size stores agree; no timing is judged (the real run is at 10M and
100M). The bench runs as a child process, as its stores do.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

from conftest import need
from pg_support import pg_bindir

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "bench" / "bench_clickhouse.py"
STORES = ("chdb-big", "chdb-base", "memory-base", "postgres-base")
STEPS = (
    "newest_page_count",
    "filter_count_page",
    "search_count_page",
    "qualified_count",
    "failures_by_ip",
    "failures_by_account",
    "failures_by_hour",
    "brute_force",
    "app_first_run",
    "app_filter_change",
    "app_search_change",
)


def test_clickhouse_bench_at_a_tiny_size(tmp_path):
    need(importlib.util.find_spec("chdb") is not None, "chdb is not installed (pip install chdb)")
    need(pg_bindir() is not None, "PostgreSQL is not installed (apt-get install postgresql)")
    output = tmp_path / "clickhouse.json"
    done = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--quick",
            "--cache-dir",
            str(tmp_path / "cache"),
            "--output",
            str(output),
        ],
        cwd=tmp_path,  # the app writes nothing into the checkout
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(output.read_text())
    assert result["rows"] == {"big": 9_000, "base": 3_000}
    for store in STORES:
        steps = result["stores"][store]["steps"]
        for step in STEPS:
            assert step in steps, (store, step, steps.get(step))
            assert steps[step]["median_s"] > 0 and steps[step]["min_s"] > 0, (store, step)
    assert result["stores"]["chdb-big"]["steps"]["newest_page_count"]["answers"][0]["count"] == 9_000
    assert result["stores"]["chdb-base"]["steps"]["newest_page_count"]["answers"][0]["count"] == 3_000
    assert result["stores"]["chdb-big"]["steps"]["search_count_page"]["scan"]["rows_read"] > 0
    assert all(v["agree"] and len(v["stores"]) == 3 for v in result["agreement"].values()), result[
        "agreement"
    ]
    assert output.with_suffix(".md").read_text().startswith("# ClickHouse")

"""The hash chain's benchmark (bench/bench_integrity.py) runs at a tiny size so it never breaks.

2,000 demo events, one run, without the pre-chain baseline (``--baseline-path`` is optional):
the import with the chain is timed, every part of the breakdown is reported, verify passes on
the imported database, and the report is written. It checks no timings; the real run is
``bench/bench_integrity.py --events 1000000 --repeat 3 --baseline-path …``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import bench_module

ROOT = Path(__file__).resolve().parents[1]
EVENTS = 2_000
PARTS = ("select_rows", "canonical", "sha256", "insert_rows", "add_rest", "finish_commit", "total")


def _bench():
    return bench_module("bench_integrity")


@pytest.mark.slow
def test_import_breakdown_and_verify_are_reported(tmp_path):
    bench = _bench()
    output = tmp_path / "integrity.json"
    code = bench.main(
        [
            *("--events", str(EVENTS), "--repeat", "1"),
            *("--cache-dir", str(tmp_path / "cache"), "--output", str(output), "--quiet"),
        ]
    )
    assert code == 0
    result = json.loads(output.read_text())
    assert result["events"] == EVENTS and result["baseline"] is None
    assert result["data"]["format"] == "jsonl" and result["data"]["file_mb"] > 0

    sqlite = result["sqlite"]
    with_chain = sqlite["with_chain"]
    assert sqlite["without_chain"] is None and "cost_pct" not in sqlite  # no baseline, no comparison
    assert (with_chain["rows_read"], with_chain["imported"], with_chain["rejected"]) == (EVENTS, EVENTS, 0)
    assert with_chain["balanced"] and with_chain["n"] == 1
    assert with_chain["module"] == str(ROOT / "audit_analytics")  # this checkout's code ran
    assert 0 < with_chain["min_s"] <= with_chain["median_s"] <= with_chain["max_s"]
    assert 0 < with_chain["cpu"]["median_s"]
    assert with_chain["db_mb"] > 0 and with_chain["peak_rss_mb"] > 0
    assert sqlite["chain_tables_mb"] is None or sqlite["chain_tables_mb"]["audit_chain"] > 0

    parts = result["breakdown"]["parts"]
    assert set(parts) == set(PARTS) and result["breakdown"]["events"] == EVENTS
    assert all(parts[p]["median_s"] >= 0 for p in PARTS if p not in ("sha256", "add_rest"))
    assert parts["canonical"]["median_s"] > 0 and parts["insert_rows"]["median_s"] > 0
    assert parts["total"]["median_s"] >= parts["canonical"]["median_s"] + parts["insert_rows"]["median_s"]

    verify = result["verify"]
    assert verify["ok"] and verify["events"] == EVENTS and verify["batches"] == 1
    assert verify["checkpoint_events"] == EVENTS and verify["median_s"] > 0

    markdown = output.with_suffix(".md").read_text()
    assert "| with the chain |" in markdown and "integrity.verify(store)" in markdown
    assert "No `--baseline-path`" in markdown

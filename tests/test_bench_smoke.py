"""The scale benchmark runs at a small size so it never breaks, and the engines agree.

This checks answers, not timings: ours (EventIndex, security, export, Store.load) and the
pandas and DuckDB peers must give the same counts, first pages, failures-by-IP tables and
brute-force IPs on the same demo data. The full run is ``bench/bench_scale.py`` (bench/README.md).
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import need

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "bench" / "bench_scale.py"
ROWS = 20_000
ENGINES = ("ours", "pandas", "duckdb")
STEPS = (
    "load_parquet",
    "load_sqlite",
    "index_build",
    "filter",
    "search",
    "qualified",
    "first_page",
    "explore",
    "failures_by_ip",
    "failures_by_account",
    "failures_by_hour",
    "brute_force",
    "export_csv",
    "export_xlsx",
)
ANSWERED = ("filter", "search", "qualified", "first_page", "explore", "failures_by_ip", "brute_force")


def run_bench(script: Path, *args) -> None:
    """Run a benchmark script as the README says, in a process of its own; it must succeed."""
    done = subprocess.run(
        [sys.executable, str(script), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


@pytest.fixture(scope="module")
def entry(tmp_path_factory) -> dict:
    need(
        importlib.util.find_spec("duckdb") is not None,
        "the benchmark's DuckDB peer needs duckdb (pip install -e '.[test]')",
    )
    folder = tmp_path_factory.mktemp("bench")
    output = folder / "scale.json"
    run_bench(
        SCRIPT,
        *("--rows", ROWS, "--repeat", 1, "--budget", 1, "--export-rows", 1000, "--quick"),
        *("--cache-dir", folder / "cache", "--output", output),
    )
    assert output.with_suffix(".md").exists()
    return json.loads(output.read_text())[str(ROWS)]


def _answers(entry: dict, engine: str, step: str) -> dict:
    return {a["variant"]: a["answer"] for a in entry["engines"][engine]["answers"][step]}


def test_every_engine_reports_every_step(entry):
    assert set(entry["engines"]) == set(ENGINES)
    for engine in ENGINES:
        result = entry["engines"][engine]
        assert result["peak_rss_bytes"] > 0
        for step in STEPS:
            stats = result["steps"][step]
            if "skipped" in stats:  # index_build for the peers, xlsx for DuckDB: with a reason
                assert stats["skipped"]
                assert (engine, step) in {
                    ("pandas", "index_build"),
                    ("duckdb", "index_build"),
                    ("duckdb", "export_xlsx"),
                }
            else:
                assert stats["n"] >= 1 and 0 <= stats["min_s"] <= stats["median_s"] <= stats["max_s"]
    assert entry["engines"]["ours"]["steps"]["index_build"]["n"] >= 1


@pytest.mark.parametrize("step", ANSWERED)
def test_ours_and_peers_agree(entry, step):
    ours = _answers(entry, "ours", step)
    assert ours, f"no answers for {step}"
    for peer in ("pandas", "duckdb"):
        assert _answers(entry, peer, step) == ours, f"{peer} and ours differ on {step}"
    assert entry["agreement"][step]["agree"]


def test_answers_are_not_trivial(entry):
    """Agreement on empty results would prove little: the workload finds things."""
    ours = entry["engines"]["ours"]
    assert all(a["answer"] > 0 for a in ours["answers"]["search"])
    assert all(a["answer"] > 0 for a in ours["answers"]["qualified"])
    page = ours["answers"]["first_page"][0]["answer"]
    assert page["total"] == ROWS and len(page["ids"]) == 100
    assert any(a["answer"]["total"] > 0 for a in ours["answers"]["explore"])
    assert ours["answers"]["failures_by_ip"][0]["answer"]
    assert ours["answers"]["brute_force"][0]["answer"], "the demo's brute-force story is found"
    for step in ("load_parquet", "load_sqlite"):
        for engine in ENGINES:
            assert all(a["answer"] == ROWS for a in entry["engines"][engine]["answers"][step])


def test_every_engine_agrees_everywhere(entry):
    assert all(a["agree"] for a in entry["agreement"].values()), entry["agreement"]


@pytest.mark.postgres
def test_the_postgres_pushdown_step_answers_the_newest_page_and_count(pg_store, postgres_url):
    """bench_scale's PostgreSQL pushdown step (run with --postgres) gives the table's newest
    100 events and its count, as the in-memory engine does."""
    sys.path.insert(0, str(ROOT / "bench"))
    import bench_scale

    from audit_analytics.demo.generate import generate
    from audit_analytics.engines.sql import open_engine
    from audit_analytics.filters import Filter

    pg_store.append(generate(3_000, seed=4).events)
    page, count = bench_scale.make_engine("ours").pushdown_first_page(postgres_url)
    memory = open_engine(pg_store, mode="memory")
    assert count == 3_000 == memory.count(Filter())
    assert page["id"].to_list() == memory.page(Filter(), limit=100)["id"].to_list()


def test_the_parquet_load_trade_off_runs_and_every_variant_loads_the_same_events(tmp_path):
    """bench_parquet_load.py: each choice of categorical columns loads the same events."""
    sys.path.insert(0, str(ROOT / "bench"))
    import bench_scale

    rows = 3_000
    bench_scale.prepare(rows, tmp_path, sqlite=False)
    output = tmp_path / "parquet-load.json"
    run_bench(
        ROOT / "bench" / "bench_parquet_load.py",
        *("--rows", rows, "--repeat", 1, "--cache-dir", tmp_path, "--output", output),
    )
    result = json.loads(output.read_text())
    variants = result["variants"]
    assert set(variants) == set(__import__("bench_parquet_load").VARIANTS)
    assert {v["rows"] for v in variants.values()} == {rows}
    assert all(v["same_events_as_the_app"] for v in variants.values())
    assert all(v["median_s"] > 0 and v["peak_rss_load_and_index_gb"] > 0 for v in variants.values())
    assert result["pandas"]["median_s"] > 0

"""The source-import benchmark (bench/bench_sources.py) runs at a tiny size so it never breaks.

2,000 synthetic CloudTrail records, one run, with the profile: every record is read as
CloudTrail and imported, the report has its figures. It checks no timings; the real run is
``bench/bench_sources.py`` (1,000,000 records, 3 runs).
"""

from __future__ import annotations

import json

from conftest import bench_module


def test_the_benchmark_imports_every_synthetic_record_as_cloudtrail(tmp_path):
    bench = bench_module("bench_sources")
    output = tmp_path / "sources.json"
    report = bench.main(["--records", "2000", "--repeat", "1", "--profile", "--output", str(output)])
    assert json.loads(output.read_text()) == json.loads(json.dumps(report))
    (run,) = report["runs"]
    assert run["imported"] == 2000 and run["rejected"] == 0
    assert list(run["formats"].values()) == ["cloudtrail"]
    rates = report["records_per_s"]
    assert 0 < rates["min"] <= rates["median"] <= rates["max"]
    assert any("map_lines" in row["function"] for row in report["profile"])  # read as columns


def test_synthetic_records_look_like_cloudtrail_with_denied_calls(tmp_path):
    bench = bench_module("bench_sources")
    path = tmp_path / "ct.jsonl"
    bench.write_records(path, 1000)
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(records) == 1000
    assert {"eventTime", "eventSource", "eventName", "eventID", "userIdentity"} <= set(records[0])
    denied = sum(1 for r in records if r.get("errorCode") == "AccessDenied")
    assert 100 <= denied <= 250  # about 17%
    assert len({r["eventID"] for r in records}) == 1000


def test_the_write_ceiling_inserts_every_row_into_the_indexed_table(tmp_path):
    bench = bench_module("bench_sources")
    ceiling = bench.write_ceiling(tmp_path, n=500)
    assert ceiling["rows"] == 500 and ceiling["rows_per_s"] > 0
    assert "ix_audit_events_time" in ceiling["indexes"]


def test_the_stages_store_and_chain_every_record_with_and_without_params(tmp_path):
    bench = bench_module("bench_sources")
    data = tmp_path / "ct.jsonl"
    bench.write_records(data, 1500)
    out = bench.stages(data, tmp_path, "sqlite")
    assert out["batches"] >= 1 and out["read_map_validate_s"] > 0
    for label in ("with_params", "without_params"):
        assert out[label]["store_s"] > 0 and out[label]["chain_s"] > 0, out
    assert not list(tmp_path.glob("stages-*")), "the stores are removed"

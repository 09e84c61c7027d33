"""The cold-start benchmark (bench/bench_coldstart.py) runs on a tiny database so it never
breaks: a cold start writes a snapshot, the warm start restores it (the app's log says so),
and the report is written. It checks no timings; the real run is at 1,000,000 events."""

from __future__ import annotations

import json
import re

import pytest
from browser_support import require_chromium
from conftest import bench_module


def _bench():
    return bench_module("bench_coldstart")


@pytest.mark.browser
def test_a_cold_start_writes_the_snapshot_a_warm_start_restores(tmp_path):
    require_chromium()
    output = tmp_path / "coldstart.json"
    code = _bench().main(
        [
            "--rows",
            "2000",
            "--repeat",
            "1",
            "--cache-dir",
            str(tmp_path),
            "--output",
            str(output),
            "--timeout",
            "120",
        ]
    )
    result = json.loads(output.read_text())
    assert code == 0
    (size,) = result["sizes"]
    cold, warm = size["runs"]
    assert (cold["variant"], warm["variant"]) == ("cold", "warm")
    for run in (cold, warm):
        assert run["errors"] == "" and run["first_data_s"] > run["form_s"] > run["server_up_s"] > 0
        assert re.match(r"^[\d,]+ events · last 7 days", run["caption"])  # the table was drawn
    assert any("wrote the snapshot" in note for note in cold["server_notes"])
    assert not any("restored" in note for note in cold["server_notes"])
    assert any("restored" in note and "from the snapshot" in note for note in warm["server_notes"])
    assert size["snapshot_mb"] > 0
    assert "| 2,000 | warm |" in output.with_suffix(".md").read_text()
    # the floor: the same steps on a Streamlit app of a few lines, drawn to its table
    (floor,) = result["floor"]["runs"]
    assert floor["first_data_s"] > floor["form_s"] > floor["server_up_s"] > 0
    assert "| (none) | Streamlit alone |" in output.with_suffix(".md").read_text()

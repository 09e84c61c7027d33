"""The capacity benchmark (bench/bench_capacity.py) runs at a tiny size so it keeps working.

Two websocket sessions (Streamlit's protocol from Python, no browser) sign in on 2,000 demo
events and do two interactions each on the Audit Log, with the app pinned to one core when
there are two: every interaction is timed by the server's own clock, nothing failed, and the
report is written. It checks no timings; the real run is ``bench/bench_capacity.py`` at
1,000,000 events. The bench runs in a child process (it pins the process that drives it).
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

from conftest import need

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "bench" / "bench_capacity.py"


def test_capacity_bench_at_a_tiny_size(tmp_path):
    for module in ("websockets", "psutil"):
        need(
            importlib.util.find_spec(module) is not None,
            f"{module} is not installed (pip install -e '.[test]')",
        )
    output = tmp_path / "capacity.json"
    done = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--rows",
            "2000",
            "--sessions",
            "2",
            "--think",
            "0.3",
            "--warmup",
            "0",
            "--duration",
            "30",
            "--interactions",
            "2",
            "--repeat",
            "",
            "--profile",
            "never",
            "--cache-dir",
            str(tmp_path / "cache"),
            "--output",
            str(output),
            "--quiet",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=150,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(output.read_text())
    (step,) = result["steps"]
    assert step["sessions"] == 2 and step["signed_in"] == 2
    assert step["errors"] == [] and step["server_tracebacks"] == 0
    assert step["interactions"] == 4 and step["interactions_timed_by_server"] == 4
    assert 0 < step["server"]["p50_s"] <= step["server"]["p95_s"] <= step["server"]["max_s"]
    assert step["client"]["max_s"] > 0 and step["app_cpu_s"] > 0
    assert step["script_runs"] >= step["requests"] >= 2 + 2 + 4  # page load, sign-in, interactions
    assert "| 2 | run 1 | 4 |" in output.with_suffix(".md").read_text()

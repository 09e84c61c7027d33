"""The pages benchmark (bench/bench_pages.py) runs on a tiny database so it never breaks.

One repetition of every step in Chromium on 2,000 demo events: every step is timed in the page,
split into the server's part (from the app's run log) and the browser's, no page shows an error, and the report is written. It
checks no timings; the real run is ``bench/bench_pages.py`` at 1,000,000 events.
"""

from __future__ import annotations

import json

import pytest
from browser_support import require_chromium
from conftest import bench_module


def _bench():
    return bench_module("bench_pages")


@pytest.mark.browser
def test_every_step_is_timed_and_split(tmp_path):
    require_chromium()
    bench = _bench()
    output = tmp_path / "pages.json"
    code = bench.main(
        [
            "--rows",
            "2000",
            "--repeat",
            "1",
            "--think",
            "0.1",
            "--cache-dir",
            str(tmp_path),
            "--output",
            str(output),
            "--quiet",
        ]
    )
    result = json.loads(output.read_text())
    assert code == 0 and result["errors"] == []
    names = [*bench.SIGN_IN_STEPS, *(name for name, *_ in bench.STEPS if name)]
    assert list(result["summary"]) == names
    for name in names:
        (run,) = result["steps"][name]
        assert run["total_s"] > 0 and run["server_s"] > 0 and run["runs"] >= 1, (name, run)
        assert run["server_s"] + run["browser_s"] == pytest.approx(run["total_s"], abs=2e-3)
        # timed in the page from the click event, inside the driver's own window around it; the
        # server's part from its run log
        assert run["server_from"] == "run log" and run["server_s"] <= run["total_s"], (name, run)
        assert run["total_s"] <= run["driver_s"] + 0.005, (name, run)
    assert result["summary"]["Activity"]["charts"] > 0  # the charts were drawn, not only the page
    md = output.with_suffix(".md").read_text()
    assert "| Activity |" in md and result["think_s"] == 0.1 and "0.1 s of reading after each step" in md
    # the sign-in click waits for a loaded sign-in screen, whose own time is reported apart
    for name in bench.SIGN_IN_STEPS:
        run = result["steps"][name][0]
        assert 0 < run["form_s"] <= run["screen_s"], (name, run)
    assert result["sign_in_at_once"] is False and "the screen itself took" in md

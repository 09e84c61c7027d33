"""The scorecard benchmark (bench/bench_scorecard.py) runs at a tiny size so it never breaks.

Two seeds of 3,000 demo events: every detection gets a row per seed and a verdict, and the
report is written. It checks the report's shape, not the goals (tests/test_scorecard.py does);
the real run is ``bench/bench_scorecard.py`` (5 seeds x 50k, 200k and 1M events).
"""

from __future__ import annotations

from conftest import bench_module

from audit_analytics.analysis.security import DETECTIONS


def test_scorecard_report_has_a_row_per_detection_and_seed(tmp_path):
    bench = bench_module("bench_scorecard")
    output = tmp_path / "scorecard.md"
    code = bench.main(
        [
            "--sizes",
            "3000",
            "--seeds",
            "11001",
            "11002",
            "--workdir",
            str(tmp_path),
            "--output",
            str(output),
            "--quiet",
        ]
    )
    assert code in (0, 1)  # 1: a goal is missed, which the report says
    report = output.read_text()
    assert report.startswith("# Detection scorecard")
    for rule in DETECTIONS:
        verdicts = [line for line in report.splitlines() if line.startswith(f"| {rule} | 3,000 | ")]
        assert len(verdicts) == 1 + 2, rule  # the verdict and one row per seed
        assert "meets" in verdicts[0] or "misses" in verdicts[0]
    assert ("**misses**" in report) is (code == 1)
    assert list(tmp_path.glob("*/scorecard.db")) == []  # the stores were temporary

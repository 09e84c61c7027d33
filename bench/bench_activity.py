"""Benchmark the activity aggregates of ``audit_analytics.analysis.activity``.

Usage::

    python bench/bench_activity.py --rows 1000000
    python bench/bench_activity.py --rows 1000000 10000000 --tz Europe/Paris

Generates events with ``audit_analytics.demo.generate.generate`` (90 days; 10M rows take about 40 s
and 7.5 GB), times every aggregate (one warm-up, then ``--repeat`` runs: median, min and max
in seconds) and merges the results into ``bench/results/activity.json`` by row count.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
from timing import timed  # bench/timing.py (this script's folder is on sys.path)

from audit_analytics.analysis import activity
from audit_analytics.demo.generate import generate

RESULTS = Path(__file__).parent / "results" / "activity.json"
NOW = datetime(2025, 11, 3, 12, 0, tzinfo=UTC)  # the 90 days before it cross the October DST change


def aggregates(events: pl.DataFrame, tz: str) -> dict[str, Callable[[], object]]:
    """Each aggregate as the page calls it, on the whole 90-day frame."""
    middle = events["time"].min() + (events["time"].max() - events["time"].min()) / 2
    current = events.lazy().filter(pl.col("time") >= middle)
    previous = events.lazy().filter(pl.col("time") < middle)
    return {
        "events_over_time_1h": lambda: activity.events_over_time(events, every="1h", tz=tz),
        "events_over_time_1d": lambda: activity.events_over_time(events, every="1d", tz=tz),
        "events_over_time_1w": lambda: activity.events_over_time(events, every="1w", tz=tz),
        "result_mix_1d": lambda: activity.result_mix(events, every="1d", tz=tz),
        "changes_over_time_1d": lambda: activity.changes_over_time(events, every="1d", tz=tz),
        "weekday_hour": lambda: activity.weekday_hour(events, tz=tz),
        "top_actors_10": lambda: activity.top_actors(events, 10),
        "top_targets_10": lambda: activity.top_targets(events, 10),
        "failure_rate_change": lambda: activity.failure_rate_change(current, previous),
        "retention_summary": lambda: activity.retention_summary(events),
    }


def run(rows: int, *, repeat: int, tz: str) -> dict:
    start = time.perf_counter()
    events = generate(rows, seed=1, now=NOW).events
    generated = time.perf_counter() - start
    print(
        f"{rows:,} events generated in {generated:.1f} s ({events.estimated_size('gb'):.1f} GB)", flush=True
    )
    out = {"rows": rows, "tz": tz, "repeat": repeat, "generate_seconds": round(generated, 2), "seconds": {}}
    for name, function in aggregates(events, tz).items():
        result = timed(function, repeat)
        out["seconds"][name] = {k: round(v, 4) for k, v in result.items()}
        print(
            f"  {name:24} median {result['median']:.3f} s  (min {result['min']:.3f}, max {result['max']:.3f})",
            flush=True,
        )
    out["all_aggregates_median_total"] = round(sum(v["median"] for v in out["seconds"].values()), 3)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--tz", default="Europe/Paris", help="zone of the buckets (a DST zone by default)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    saved = json.loads(args.out.read_text()) if args.out.is_file() else {}
    runs = saved.get("runs", {})
    for rows in args.rows:
        runs[str(rows)] = run(rows, repeat=args.repeat, tz=args.tz)
    saved = {
        "benchmark": "audit_analytics.analysis.activity aggregates on demo.generate events (90 days)",
        "machine": {
            "python": platform.python_version(),
            "polars": pl.__version__,
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "threads": pl.thread_pool_size(),
        },
        "updated": datetime.now(UTC).isoformat(timespec="seconds"),
        "runs": dict(sorted(runs.items(), key=lambda kv: int(kv[0]))),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(saved, indent=2) + "\n")
    print(f"results -> {args.out}")


if __name__ == "__main__":
    main()

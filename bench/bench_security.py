"""Benchmark the login-failure aggregates and detections of ``audit_analytics.analysis.security``.

Usage::

    python bench/bench_security.py --rows 1000000
    python bench/bench_security.py --rows 10000000

Synthesises events (``audit_analytics.demo.generate.generate`` when it exists, else a vectorised
synthetic auth-heavy log below), times each function (one warm-up, then ``--repeat`` runs:
median, min, max in seconds) and writes ``bench/results/security.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
from timing import timed  # bench/timing.py (this script's folder is on sys.path)

from audit_analytics import schema
from audit_analytics.analysis import security

RESULTS = Path(__file__).parent / "results" / "security.json"
START = datetime(2025, 1, 1, tzinfo=UTC)


def synthetic_events(rows: int, *, seed: int = 7, days: int = 30) -> pl.DataFrame:
    """An event frame of ``rows`` events over ``days`` days, ~40% logins, ~10% failed logins.

    Ordinary users log in from a few thousand IPs; 200 attacker IPs guess passwords in bursts,
    so the detections have real work (and findings) at every size.
    """
    rng = np.random.default_rng(seed)
    span = days * 86_400 * 1_000_000
    times = np.sort(rng.integers(0, span, rows))
    kind = rng.random(rows)
    is_login = kind < 0.40
    attack = kind < 0.05  # attacker failures: bursty IPs, many accounts
    failed = attack | (is_login & (rng.random(rows) < 0.12))
    types = np.where(is_login, "auth", rng.choice(np.array(schema.CATEGORY_CODES), rows))
    actions = np.where(
        is_login, "login", rng.choice(np.array(["create", "update", "delete", "read", "export"]), rows)
    )
    results = np.where(failed, "failed", np.where(rng.random(rows) < 0.02, "pending", "done"))
    user = rng.integers(0, 5_000, rows)
    attacker = rng.integers(0, 200, rows)
    ip_host = np.where(attack, 10_000 + attacker, user % 3_000)
    # Attackers cluster their attempts in time: pull their times to the start of 10-minute slots.
    times = np.where(attack, times - times % 600_000_000 + (times % 60_000_000), times)
    frame = pl.DataFrame(
        {
            "n": np.arange(rows),
            "time": times,
            "user": np.where(attack, rng.integers(0, 50_000, rows), user),
            "ip_host": ip_host,
            "type": types,
            "action": actions,
            "result": results,
        }
    )
    events = frame.select(
        pl.format("e{}", pl.col("n")).alias("id"),
        (pl.lit(START).cast(pl.Datetime("us", "UTC")) + pl.duration(microseconds=pl.col("time"))).alias(
            "time"
        ),
        pl.format("user{}", pl.col("user")).alias("actor"),
        pl.col("type"),
        pl.col("action"),
        pl.format("res-{}", pl.col("n") % 1000).alias("target"),
        pl.col("result"),
        pl.format(
            "{}.{}.{}.{}",
            pl.col("ip_host") // 65_536 + 10,
            pl.col("ip_host") // 256 % 256,
            pl.col("ip_host") % 256,
            pl.col("ip_host") % 7 + 1,
        ).alias("ip"),
        pl.when(pl.col("result") == "pending").then(pl.format("req-{}", pl.col("n"))).alias("request_id"),
    )
    return schema.conform(events.sort("time"))


def demo_events(rows: int) -> pl.DataFrame | None:
    try:
        from audit_analytics.demo import generate as demo  # type: ignore[attr-defined]
    except ImportError:
        return None
    return demo.generate(rows, seed=7).events


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--source", choices=["auto", "demo", "synthetic"], default="auto")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    events = None if args.source == "synthetic" else demo_events(args.rows)
    source = "demo" if events is not None else "synthetic"
    if events is None:
        if args.source == "demo":
            parser.error("audit_analytics.demo.generate is not available")
        events = synthetic_events(args.rows)
    failures = events.filter(security.is_login_failure()).height
    now = events["time"].max() + timedelta(hours=2)

    cases: dict[str, Callable[[], object]] = {
        "failures_by_ip": lambda: security.failures_by_ip(events, top=10),
        "failures_by_account": lambda: security.failures_by_account(events, top=10),
        "failures_by_hour": lambda: security.failures_by_hour(events, tz="Europe/Berlin"),
        "failures_by_hour_of_day": lambda: security.failures_by_hour_of_day(events, tz="UTC"),
        "failures_over_time": lambda: security.failures_over_time(events, every="1h"),
        "failure_summary": lambda: security.failure_summary(events),
        "brute_force": lambda: security.brute_force(events),
        "password_spray": lambda: security.password_spray(events),
        "account_under_attack": lambda: security.account_under_attack(events),
        "success_after_failures": lambda: security.success_after_failures(events),
        "off_hours": lambda: security.off_hours(events, org_tz="Europe/Berlin"),
        "permission_changes": lambda: security.permission_changes(events),
        "stuck_operations": lambda: security.stuck_operations(events, now=now),
        "backtest_brute_force": lambda: security.backtest(events, "brute_force"),
    }
    timings = {}
    for name, function in cases.items():
        timings[name] = timed(function, args.repeat)
        print(f"{name:<26} median {timings[name]['median']:.4f}s  min {timings[name]['min']:.4f}s")
    findings = {
        "brute_force": security.brute_force(events).height,
        "password_spray": security.password_spray(events).height,
    }
    report = {
        "rows": events.height,
        "login_failures": failures,
        "source": source,
        "repeat": args.repeat,
        "findings": findings,
        "polars": pl.__version__,
        "python": platform.python_version(),
        "cpus": pl.thread_pool_size(),
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "seconds": timings,
    }
    # Keep the results of other runs: one file, one entry per source and row count.
    previous = json.loads(args.output.read_text()) if args.output.exists() else {}
    previous[f"{source}-{events.height}"] = report
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(previous, indent=2) + "\n")
    print(f"{events.height} rows ({failures} login failures, {source}); wrote {args.output}")
    return report


if __name__ == "__main__":
    main()

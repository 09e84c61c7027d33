"""Retention on ClickHouse (chDB): what a run costs, and what the delete inside it costs.

    .venv/bin/python bench/bench_ch_retention.py [--events 1000000] [--repeat 3]

Each repetition builds a fresh chDB folder of ``--events`` demo events over 180 days (the
store's own append, in chunks of 200,000), then runs ``retention.apply`` with a policy that
keeps 60 days of the operational group and 120 days of the security group, so about half of
the events expire, whole months of each group and parts of the months at the two cut-offs.
It times the whole run (plan, archive, verify the archive, delete, mark the chain) and, inside
it, ``ClickHouseStore.delete_ids``, and counts the events left and the parts ClickHouse keeps.

The package is the one on ``sys.path`` (``PYTHONPATH=/path/to/a/checkout`` times another
version: that is how the "before" figures were taken). Results: ``--output`` (JSON) and a
table on standard output.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path


def one_run(events: int, folder: Path) -> dict[str, float | int]:
    from audit_analytics.demo.generate import generate
    from audit_analytics.engines import clickhouse
    from audit_analytics.engines.store import open_store
    from audit_analytics.io import retention

    now = datetime(2026, 11, 30, tzinfo=UTC)
    store = open_store(f"chdb://{folder / 'ch'}")
    built = time.perf_counter()
    chunk = 200_000
    for number, start in enumerate(range(0, events, chunk)):
        size = min(chunk, events - start)
        # each chunk a distinct seed: distinct ids; all over the same 180 days
        store.append(generate(max(size, 1_000), seed=100 + number, now=now, days=180).events.head(size))
    build_s = time.perf_counter() - built
    before = store.count()
    spent = {"delete_s": 0.0}
    real_delete = clickhouse.ClickHouseStore.delete_ids

    def timed_delete(self, conn, ids):  # type: ignore[no-untyped-def]
        started = time.perf_counter()
        try:
            return real_delete(self, conn, ids)
        finally:
            spent["delete_s"] += time.perf_counter() - started

    clickhouse.ClickHouseStore.delete_ids = timed_delete  # type: ignore[method-assign]
    try:
        policy = retention.Policy(
            group_days={"security": 120, "operational": 60}, archive=str(folder / "archive")
        )
        started = time.perf_counter()
        result = retention.apply(store, policy, actor="bench", now=now + timedelta(hours=1))
        run_s = time.perf_counter() - started
    finally:
        clickhouse.ClickHouseStore.delete_ids = real_delete  # type: ignore[method-assign]
    after = store.count()
    parts = (
        store._query(
            "SELECT count() FROM system.parts WHERE database = 'audit' AND table = 'audit_events' AND active"
        )
        .column(0)[0]
        .as_py()
    )
    store.close()
    return {
        "events": before,
        "deleted": result.deleted,
        "left": after,
        "build_s": round(build_s, 2),
        "run_s": round(run_s, 2),
        "delete_s": round(spent["delete_s"], 2),
        "active_parts": int(parts),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--label", default="")
    parser.add_argument("--output", default="")
    args = parser.parse_args()
    import audit_analytics

    runs = []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory(prefix="aa-ch-retention-", dir=os.environ.get("TMPDIR")) as tmp:
            load = os.getloadavg()[0]
            run = one_run(args.events, Path(tmp))
            run["load_before"] = round(load, 2)
            runs.append(run)
            print(json.dumps(run), flush=True)
    summary = {
        key: {
            "median": statistics.median(r[key] for r in runs),
            "min": min(r[key] for r in runs),
            "max": max(r[key] for r in runs),
        }
        for key in ("run_s", "delete_s", "deleted", "active_parts")
    }
    result = {
        "label": args.label,
        "package": str(Path(audit_analytics.__file__).parent),
        "events": args.events,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "runs": runs,
        "summary": summary,
    }
    if args.output:
        Path(args.output).write_text(json.dumps(result, indent=2) + "\n")
    for key, figures in summary.items():
        print(f"{key}: {figures['median']} ({figures['min']} - {figures['max']})")


if __name__ == "__main__":
    main()

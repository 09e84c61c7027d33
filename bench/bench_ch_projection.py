"""The failed-login projection on a large ClickHouse table: the security aggregates before
and after it, on the same folder, in one process.

    .venv/bin/python bench/bench_ch_projection.py --folder /work/tmp/proj/big [--repeat 3]

``--folder`` is a chDB folder made without the projection (e.g. a copy of the 100M-event
folder ``bench_clickhouse.py`` builds, or one made before the projection existed); **it is
changed**: the projection is added and materialised. The aggregates are the app's, through
:func:`~audit_analytics.engines.sql.open_engine` in pushdown mode, over all time: failures by
IP, by account, by hour, and brute-force windows; each one warm-up run, then ``--repeat``
timed runs. Also: the time to materialise the projection and the folder's size before and
after. Results: ``--output`` (JSON; default ``bench/results/ch-projection.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--folder", required=True)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--output", default=str(ROOT / "bench" / "results" / "ch-projection.json"))
    args = parser.parse_args()

    from audit_analytics.analysis.security import thresholds_of
    from audit_analytics.engines.clickhouse import FAILURES_PROJECTION
    from audit_analytics.engines.sql import open_engine
    from audit_analytics.engines.store import open_store
    from audit_analytics.filters import Filter

    store = open_store(f"chdb://{args.folder}")
    engine = open_engine(store, mode="pushdown")
    flt = Filter(period="all")
    steps = {
        "failures_by_ip": lambda: engine.failures_by_ip(flt, top=10),
        "failures_by_account": lambda: engine.failures_by_account(flt, top=10),
        "failures_by_hour": lambda: engine.failures_by_hour(flt),
        "brute_force": lambda: engine.detect("brute_force", flt, thresholds_of("brute_force")),
    }

    def disk() -> int:
        return int(
            subprocess.run(["du", "-sb", args.folder], capture_output=True, text=True).stdout.split()[0]
        )

    def timed(label: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, call in steps.items():
            first = call()  # warm-up
            times = []
            for _ in range(args.repeat):
                started = time.perf_counter()
                again = call()
                times.append(time.perf_counter() - started)
                assert again.equals(first), f"{name} answered differently"
            out[name] = {
                "median": statistics.median(times),
                "min": min(times),
                "max": max(times),
                "rows": first.height,
                "load": os.getloadavg()[0],
            }
            print(label, name, out[name], flush=True)
        return out

    events = store.count()
    result: dict[str, Any] = {"at": datetime.now(UTC).isoformat(timespec="seconds"), "events": events}
    result["before"] = {"disk_bytes": disk(), "steps": timed("before")}
    started = time.perf_counter()
    store._command(
        f"ALTER TABLE audit.audit_events ADD PROJECTION IF NOT EXISTS {FAILURES_PROJECTION.removeprefix('PROJECTION ')}"
    )
    store._command(
        "ALTER TABLE audit.audit_events MATERIALIZE PROJECTION failures SETTINGS mutations_sync = 1"
    )
    result["materialize_s"] = time.perf_counter() - started
    result["after"] = {"disk_bytes": disk(), "steps": timed("after")}
    for name in steps:  # the same answers with the projection as without
        result["after"]["steps"][name]["same_rows"] = (
            result["after"]["steps"][name]["rows"] == result["before"]["steps"][name]["rows"]
        )
    store.close()
    Path(args.output).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()

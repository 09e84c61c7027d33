"""Explorer responsiveness at scale: a page rerun after a filter, search and page change.

    python bench/bench_explorer.py [--rows 1000000] [--repeat 7]

Builds (once, cached under bench/.cache) an SQLite database of demo events, drives the real
Audit Log page through Streamlit's AppTest, and reports the median, min and max wall time of a
rerun after each kind of change, and the rows and bytes of table data sent per rerun.
Results go to bench/results/explorer.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def build_db(rows: int) -> str:
    from audit_analytics.demo.generate import generate
    from audit_analytics.engines.store import open_store

    cache = ROOT / "bench" / ".cache"
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"explorer-{rows}.db"
    url = f"sqlite:///{path}"
    store = open_store(url)
    if store.count() != rows:
        started = time.perf_counter()
        store.append(generate(rows, seed=42).events)
        print(f"built {path.name}: {rows:,} events in {time.perf_counter() - started:.1f} s", flush=True)
    store.engine.dispose()
    return url


def table_payload(at) -> tuple[int, int]:
    """(rows, bytes) of the events table's data in the last run's messages."""
    if not at.dataframe:  # an empty result draws no table
        return 0, 0
    df = at.dataframe[0]
    return len(df.value), df.proto.arrow_data.ByteSize()


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args(argv)
    url = build_db(args.rows)
    os.environ["AUDIT_DB_URL"] = url
    from streamlit.testing.v1 import AppTest

    # signed in as the tests sign in (the page shows nothing but the sign-in form otherwise)
    users = Path(tempfile.mkdtemp(prefix="aa-bench-explorer-")) / "users.toml"
    users.write_text('[users.tester]\nrole = "auditor"\npassword_hash = "$argon2id$unused"\n')
    os.environ["AUDIT_USERS_FILE"] = str(users)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    at.session_state["aa_user"] = "tester"
    first = timed(at.run)
    assert not at.exception, at.exception
    print(f"first run (loads {args.rows:,} events once per process): {first:.2f} s", flush=True)

    types = [["auth"], ["service", "infra"], ["backup"], []]
    searches = ["action:update", "root", "ip:10.0.0.0/8", "user:svc-ci", "-result:done failed", ""]
    samples: dict[str, list[float]] = {"filter change": [], "search change": [], "page change": []}
    payloads: list[tuple[int, int]] = []
    for i in range(args.repeat + 1):  # the first round warms the caches up
        at.multiselect(key="f_types").set_value(types[i % len(types)])
        at.radio(key="f_period").set_value("all" if i % 2 else "30d")
        t_filter = timed(lambda: at.button(key="FormSubmitter:filter-panel-Apply").click().run())
        payloads.append(table_payload(at))
        search = searches[i % len(searches)]
        t_search = timed(lambda: at.text_input(key="f_search").input(search).run())  # noqa: B023
        payloads.append(table_payload(at))
        buttons = [b for b in at.button if b.key == "next_page" and not b.disabled]
        t_page = timed(lambda: buttons[0].click().run()) if buttons else None  # noqa: B023
        payloads.append(table_payload(at))
        assert not at.exception, at.exception
        if i == 0:
            continue
        samples["filter change"].append(t_filter)
        samples["search change"].append(t_search)
        if t_page is not None:
            samples["page change"].append(t_page)

    result = {
        "rows": args.rows,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "load": os.getloadavg()},
        "first_run_s": round(first, 3),
        "reruns": {
            name: {
                "median_s": round(statistics.median(v), 4),
                "min_s": round(min(v), 4),
                "max_s": round(max(v), 4),
                "n": len(v),
            }
            for name, v in samples.items()
            if v
        },
        "table_rows_sent_max": max(p[0] for p in payloads),
        "table_bytes_sent_max": max(p[1] for p in payloads),
    }
    print(f"{'change':<15}{'median':>10}{'min':>10}{'max':>10}")
    for name, r in result["reruns"].items():
        print(f"{name:<15}{r['median_s']:>10.3f}{r['min_s']:>10.3f}{r['max_s']:>10.3f}")
    print(
        f"table data per rerun: at most {result['table_rows_sent_max']} rows, {result['table_bytes_sent_max']:,} bytes"
    )
    out = ROOT / "bench" / "results" / "explorer.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

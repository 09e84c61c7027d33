"""Benchmark the Activity page's whole summary (``review.activity_summary``) per engine.

Usage::

    python bench/bench_activity_summary.py --db /work/tmp/bench-pages/pages-1000000.db
    python bench/bench_activity_summary.py --db FILE --engines memory,sqlite,chdb --out result.json

Times every figure of the Activity page for a period (``7d``, ``30d``, ``all``) as the page
computes it, on one database: ``memory`` (the events held, the app's default below
``AUDIT_MEMORY_LIMIT``), ``sqlite`` (the same SQLite file counted in the database, as above the
limit), ``chdb`` (the events copied once into a chDB folder next to the file, counted there).
One warm-up, then ``--repeat`` runs: median, min and max seconds. Loading the events into
memory is not timed (the app holds them before a page runs).
"""

from __future__ import annotations

import argparse
import json
import platform
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
from timing import timed  # bench/timing.py (this script's folder is on sys.path)

from audit_analytics.analysis.review import activity_summary
from audit_analytics.engines.sql import open_engine
from audit_analytics.engines.store import open_store
from audit_analytics.filters import Filter

PERIODS = ("7d", "30d", "all")


def engines(db: Path, names: list[str]):
    sqlite = open_store(f"sqlite:///{db}")
    for name in names:
        if name == "memory":
            yield name, open_engine(sqlite, mode="memory")
        elif name == "sqlite":
            yield name, open_engine(sqlite, mode="pushdown", limit=0)
        elif name == "chdb":
            folder = db.with_suffix(".chdb")
            store = open_store(f"chdb://{folder}")
            try:
                if store.count() != sqlite.count():
                    store.append(sqlite.load())
                yield name, open_engine(store, mode="pushdown", limit=0)
            finally:
                store.close()  # chDB serves one folder a process
        else:
            raise SystemExit(f"unknown engine {name!r}: memory, sqlite or chdb")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, required=True, help="a SQLite file of events")
    parser.add_argument("--engines", default="memory,sqlite,chdb")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--tz", default="Europe/Paris")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)

    out: dict = {
        "benchmark": "review.activity_summary per engine and period",
        "db": str(args.db),
        "machine": {
            "python": platform.python_version(),
            "polars": pl.__version__,
            "threads": pl.thread_pool_size(),
        },
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "seconds": {},
    }
    for name, engine in engines(args.db, args.engines.split(",")):
        now = engine.newest_time()
        out["rows"] = engine.height
        for period in PERIODS:
            flt = Filter(period=period, tz=args.tz)
            result = timed(lambda: activity_summary(engine, flt, now=now), args.repeat)  # noqa: B023
            out["seconds"][f"{name} {period}"] = {k: round(v, 4) for k, v in result.items()}
            print(
                f"{name:7} {period:4} median {result['median']:.3f} s (min {result['min']:.3f}, max {result['max']:.3f})",
                flush=True,
            )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(out, indent=2) + "\n")
        print(f"results -> {args.out}")


if __name__ == "__main__":
    main()

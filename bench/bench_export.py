"""Time the exports on a realistic event frame and compare with polars' own ``write_excel``.

Usage::

    .venv/bin/python bench/bench_export.py [--rows 100000] [--repeat 5]

Writes the numbers to ``bench/results/export.json``. The targets: xlsx of 100,000 rows in
at most 2 s, CSV in at most 0.2 s.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl

from audit_analytics.io.export import ExportManifest, write_csv, write_xlsx
from audit_analytics.schema import CATEGORY_CODES, RESULTS, SCHEMA, conform

RESULTS_PATH = Path(__file__).parent / "results" / "export.json"
TZ = "Europe/Paris"


def build_frame(rows: int, *, seed: int = 7) -> tuple[pl.DataFrame, str]:
    """The demo data when ``audit_analytics.demo.generate.generate`` exists, else random events."""
    try:
        from audit_analytics.demo.generate import generate  # written concurrently; may not exist yet
    except ImportError:
        generate = None
    if generate is not None:
        try:
            generated = generate(rows)
            # generate returns DemoData(events, stories); accept a bare frame too.
            frame = getattr(generated, "events", generated)
            return conform(frame).head(rows), "audit_analytics.demo.generate.generate"
        except Exception as error:  # noqa: BLE001 - the bench must still run on random data
            print(f"demo.generate failed ({error!r}); using random data")
    return _random_frame(rows, seed=seed), "random"


def _random_frame(rows: int, *, seed: int) -> pl.DataFrame:
    rng = random.Random(seed)
    users = [f"user{n:03d}" for n in range(300)] + ["root", "admin", "svc-backup", "=cmd|' /C calc'!A0"]
    actions = [
        "create",
        "update",
        "delete",
        "login",
        "logout",
        "password_change",
        "deploy",
        "rollback",
        "export",
    ]
    start = datetime(2026, 1, 1, tzinfo=UTC)
    times, actors, emails, types, acts, targets, results, ips, requests = ([] for _ in range(9))
    descriptions, params, befores, afters, errors = ([] for _ in range(5))
    for n in range(rows):
        actor = rng.choice(users)
        action = rng.choice(actions)
        kind = rng.choice(CATEGORY_CODES)
        result = rng.choices(RESULTS, weights=(85, 10, 3, 2))[0]
        target = f"{kind}-{rng.randrange(5000):04d}"
        times.append(start + timedelta(seconds=n * 30 + rng.random()))
        actors.append(actor)
        emails.append(f"{actor}@example.com" if rng.random() < 0.9 else None)
        types.append(kind)
        acts.append(action)
        targets.append(target)
        results.append(result)
        ips.append(
            f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}"
            if rng.random() < 0.95
            else None
        )
        requests.append(f"req-{rng.getrandbits(64):016x}")
        descriptions.append(
            f"{actor} ran {action} on {target} from the {rng.choice(['web', 'api', 'cli'])} console"
        )
        params.append(json.dumps({"name": target, "size": rng.randrange(1, 64), "region": "eu-west-1"}))
        befores.append(
            json.dumps({"replicas": rng.randrange(1, 9), "tags": ["a", "b"]}) if action != "create" else None
        )
        afters.append(
            json.dumps({"replicas": rng.randrange(1, 9), "tags": ["a", "b", "c"]})
            if action != "delete"
            else None
        )
        errors.append("permission denied: role viewer cannot " + action if result == "failed" else None)
    return pl.DataFrame(
        {
            "id": [f"evt-{n:010d}" for n in range(rows)],
            "time": times,
            "actor": actors,
            "email": emails,
            "type": types,
            "action": acts,
            "target": targets,
            "result": results,
            "ip": ips,
            "request_id": requests,
            "description": descriptions,
            "params": params,
            "before": befores,
            "after": afters,
            "error": errors,
        },
        schema=SCHEMA,
    )


def _time(fn, repeat: int) -> dict[str, float]:
    fn()  # warm-up: imports, polars thread pool, page cache
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - started)
    return {"median_s": statistics.median(runs), "min_s": min(runs), "max_s": max(runs), "runs": repeat}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--skip-polars", action="store_true", help="skip the slow polars write_excel comparison"
    )
    args = parser.parse_args(argv)

    frame, source = build_frame(args.rows)
    manifest = ExportManifest(
        caption=f"{frame.height:,} events", filters={"period": "all time"}, source="bench"
    )
    results: dict = {
        "rows": frame.height,
        "columns": frame.width,
        "data": source,
        "tz": TZ,
        "polars": pl.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        # Other work on the machine inflates the medians; the min is the uncontended figure.
        "load_average_1m_before": os.getloadavg()[0],
    }
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder)
        results["write_xlsx"] = _time(
            lambda: write_xlsx(frame, out / "e.xlsx", tz=TZ, manifest=manifest), args.repeat
        )
        results["write_xlsx"]["bytes"] = (out / "e.xlsx").stat().st_size
        results["write_csv"] = _time(lambda: write_csv(frame, out / "e.csv", tz=TZ), args.repeat)
        results["write_csv"]["bytes"] = (out / "e.csv").stat().st_size
        if not args.skip_polars:
            started = time.perf_counter()
            frame.with_columns(pl.col("time").dt.replace_time_zone(None)).write_excel(out / "p.xlsx")
            results["polars_write_excel_once_s"] = time.perf_counter() - started
    RESULTS_PATH.parent.mkdir(parents=True, exist_ok=True)
    RESULTS_PATH.write_text(json.dumps(results, indent=2) + "\n")
    for name in ("write_xlsx", "write_csv"):
        r = results[name]
        print(
            f"{name}: median {r['median_s']:.3f} s (min {r['min_s']:.3f}, max {r['max_s']:.3f}), {r['bytes']:,} bytes"
        )
    if "polars_write_excel_once_s" in results:
        print(f"polars write_excel (once): {results['polars_write_excel_once_s']:.3f} s")
    print(f"-> {RESULTS_PATH}")
    return results


if __name__ == "__main__":
    main()

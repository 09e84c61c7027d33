"""The Parquet load's trade-off: which text columns arrive as codes, against time and peak memory.

    .venv/bin/python bench/bench_parquet_load.py [--rows 10000000] [--repeat 5]

The app's in-memory load (``schema.conform(..., categorical=CODE_ONLY_COLUMNS)``) reads
email and description as categoricals so that their text is never whole in memory. This
measures what that costs: for each choice of categorical columns, in a process of its own,
the median (min-max) time of the load alone, then the peak RSS of one load plus the
``EventIndex`` build, and pandas' ``read_parquet`` of the same file for the ratio. It reads
the cached demo Parquet file that bench_scale.py builds (``bench/.cache/demo-N*.parquet``).
Results: ``bench/results/parquet-load.json``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from timing import timed  # noqa: E402 - bench/timing.py (this script's folder is on sys.path)

VARIANTS = {
    "email and description as codes (the app)": ("email", "description"),
    "email as codes": ("email",),
    "description as codes": ("description",),
    "all text as text": (),
}


PEAK_SCRIPT = """
import json, re, sys
import polars as pl
from audit_analytics.engines.memory import EventIndex
from audit_analytics.schema import SUMMARY_COLUMNS, conform
lazy = pl.scan_parquet(sys.argv[1]).select(SUMMARY_COLUMNS)
frame = conform(lazy, columns=SUMMARY_COLUMNS, categorical=tuple(json.loads(sys.argv[2])))
index = EventIndex(frame)
del frame
print(int(re.search(r"VmHWM:\\s+(\\d+)", open("/proc/self/status").read())[1]) * 1024 / 1e9)
"""
"""One load and the index build in a fresh process; prints its peak RSS (VmHWM) in GB.
(``ru_maxrss`` would not do: a child forked from a process holding a frame reports that
process's size.)"""


def peak_of_one_load(path: str, categorical) -> float:
    done = subprocess.run(
        [sys.executable, "-c", PEAK_SCRIPT, path, json.dumps(list(categorical))],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    return float(done.stdout.strip())


def _timed(fn, repeat: int) -> dict:
    return {f"{k}_s": v for k, v in timed(fn, repeat).items()}  # median_s, min_s, max_s


def child(path: str, engine: str, categorical: list[str], repeat: int) -> dict:
    """One variant in this (fresh) process: load timings, then one load + index for the peak."""
    if engine == "pandas":
        import pandas as pd

        return _timed(lambda: pd.read_parquet(path), repeat)
    import polars as pl

    from audit_analytics.schema import SUMMARY_COLUMNS, conform

    def load():
        lazy = pl.scan_parquet(path).select(SUMMARY_COLUMNS)
        return conform(lazy, columns=SUMMARY_COLUMNS, categorical=tuple(categorical))

    out = _timed(load, repeat)
    frame = load()  # the same events whatever arrives as codes: a digest of the text, as text
    text = frame.select(pl.all().cast(pl.String))
    out["rows"] = frame.height
    out["digest"] = int(text.hash_rows().sum())
    del frame, text
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--cache-dir", default=str(ROOT / "bench" / ".cache"))
    parser.add_argument("--output", default=str(ROOT / "bench" / "results" / "parquet-load.json"))
    parser.add_argument("--child", nargs=3, metavar=("PATH", "ENGINE", "CATEGORICAL"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        path, engine, categorical = args.child
        print(json.dumps(child(path, engine, json.loads(categorical), args.repeat)))
        return 0

    sys.path.insert(0, str(ROOT / "bench"))
    from bench_scale import parquet_for

    path = parquet_for(args.rows, Path(args.cache_dir))
    if not path.exists():
        raise SystemExit(f"{path} is missing: run bench/bench_scale.py --rows {args.rows} first")

    def run(engine: str, categorical) -> dict:
        done = subprocess.run(
            [
                sys.executable,
                __file__,
                "--repeat",
                str(args.repeat),
                "--child",
                str(path),
                engine,
                json.dumps(list(categorical)),
            ],
            check=True,
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        return json.loads(done.stdout.strip().splitlines()[-1])

    results = {"rows": args.rows, "file": path.name, "pandas": run("pandas", ())}
    pandas_s = results["pandas"]["median_s"]
    print(f"pandas read_parquet (all columns): {pandas_s:.3f} s", flush=True)
    results["variants"] = {}
    for label, categorical in VARIANTS.items():
        r = run("ours", categorical) | {"categorical": list(categorical)}
        r["peak_rss_load_and_index_gb"] = peak_of_one_load(str(path), categorical)
        r["pandas_over_ours"] = pandas_s / r["median_s"]
        first = next(iter(results["variants"].values()), r)  # the app's choice comes first
        r["same_events_as_the_app"] = (r["rows"], r["digest"]) == (first["rows"], first["digest"])
        results["variants"][label] = r
        print(
            f"{label:45s} {r['median_s']:.3f} s ({r['min_s']:.3f}-{r['max_s']:.3f}) "
            f"= {r['pandas_over_ours']:.1f}x pandas; peak load+index {r['peak_rss_load_and_index_gb']:.2f} GB",
            flush=True,
        )
    Path(args.output).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

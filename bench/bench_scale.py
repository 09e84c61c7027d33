"""audit_analytics against plain pandas and DuckDB at scale, on the same data and machine.

Usage::

    .venv/bin/python bench/bench_scale.py                      # 1M and 10M events
    .venv/bin/python bench/bench_scale.py --rows 1000000 --postgres
    .venv/bin/python bench/bench_scale.py --rows 20000 --repeat 1 --cache-dir /tmp/x --output /tmp/x/scale.json

For each size the parent process prepares the data once (demo Parquet and an SQLite file,
cached under ``bench/.cache``; a throwaway PostgreSQL server with ``--postgres``), writes
the workload (the concrete filters, words and queries of every run) to a JSON spec, and then
runs each engine's suite in its own child process::

    bench_scale.py --engine ours|pandas|duckdb --phase main|sqlite|postgres|notebook --spec S --result R

so that each engine's peak RSS (VmHWM) is its own. ``main`` loads the Parquet file and
runs steps 2-8; ``sqlite`` and ``postgres`` time loading the whole table; ``notebook`` times
the free-text search as a notebook or API user runs it: ``Filter(query=word).apply(frame)``
on a plain polars frame read from the Parquet file (no index), against the peers' own search
of their own table. ``--steps`` runs only some steps (the phases they need). Every step runs once
to warm up and then ``--repeat`` times (a step whose runs add up to more than ``--budget``
seconds stops after 3), with EventIndex's selection cache cleared before each run and the
filter, word or query varied between runs. Each run's answer (counts, first-page ids,
failure tables, brute-force IPs) is kept, and the parent checks that all engines agree.

Results: ``bench/results/scale.json`` (one entry per size; timings, answers, peak memory,
load averages) and ``bench/results/scale.md`` (the tables). See ``bench/README.md``.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import itertools
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(ROOT / "tests"))

ENGINES = ("ours", "pandas", "duckdb")
TZ = "Europe/Paris"
SEED = 42
PAGE = 100
BRUTE_THRESHOLD, BRUTE_WINDOW_S = 8, 120

MAIN_STEPS = (
    "load_parquet",
    "index_build",
    "filter",
    "search",
    "qualified",
    "first_page",
    "explore",
    "failures_by_ip",
    "failures_by_account",
    "failures_by_hour",
    "brute_force",
    "export_csv",
    "export_xlsx",
)
LOAD_STEPS = {"sqlite": "load_sqlite", "postgres": "load_postgres"}
# Filter(query=...).apply(frame) on a polars frame, as notebooks and API users search; the
# peers answer with their own free-text search of their own table (DuckDB: ILIKE)
NOTEBOOK_STEP = "notebook_search"
# steps that always run in the main phase: the other steps need their data
MAIN_PREREQUISITES = ("load_parquet", "index_build")
# ours, after the PostgreSQL load: the pushdown engine on the same table (no peer does this)
PUSHDOWN_STEP = "pushdown_postgres"
STEP_LABELS = {
    "load_parquet": "load Parquet",
    "index_build": "EventIndex build",
    "load_sqlite": "load SQLite table",
    "load_postgres": "load PostgreSQL table",
    PUSHDOWN_STEP: "PostgreSQL pushdown: first page + count",
    "filter": "filter: period+types+result",
    "search": "free-text search (1 word)",
    "qualified": "qualified search",
    "first_page": "first page (100 newest) + count",
    "explore": "filter+search+page+count",
    "failures_by_ip": "failures by IP",
    "failures_by_account": "failures by account",
    "failures_by_hour": "failures by hour",
    "brute_force": "brute force (8 in 120 s per IP)",
    "export_csv": "export CSV",
    "export_xlsx": "export xlsx",
    NOTEBOOK_STEP: "notebook: Filter(query).apply(frame), 1 word",
}
# Goals at 10M (seconds, on ours' median)
TIME_GOALS = {
    "search": 0.35,
    "filter": 0.06,
    "first_page": 0.05,
    "failures_by_ip": 0.1,
    "failures_by_account": 0.1,
    "failures_by_hour": 0.1,
    "brute_force": 0.15,
    "explore": 0.5,
    "export_xlsx": 2.0,
    "export_csv": 0.2,
    PUSHDOWN_STEP: 1.0,
}
PEAK_GOAL_BYTES = 2.5e9
PANDAS_FACTOR_GOAL = 5.0

TYPE_SETS = (
    ("auth", "user", "secret"),
    ("backup", "db_backup"),
    ("service", "infra"),
    ("auth",),
    ("database", "backup", "secret"),
    ("user", "organization", "audit"),
)
RESULT_SETS = (
    ("failed",),
    ("failed", "pending"),
    ("failed",),
    ("failed",),
    ("failed", "processing"),
    ("failed",),
)
WORDS = ("tokyo", "Payments", "svc-ci", "10.20.7", "YUBIKEY", "rollback")
EXPLORE = (
    (("vpn",), "tokyo"),
    (("backup", "db_backup"), "payments"),
    (("service", "infra"), "svc-ci"),
    (("auth",), "10.20.7"),
    (("device",), "yubikey"),
    (("service",), "Rollback"),
)


# ======================================================================== our engine


class OursEngine:
    """The package as the app uses it: Store.load / Parquet, EventIndex, security, export."""

    name = "ours"

    def __init__(self) -> None:
        self.frame = None
        self.index = None
        self.export_frame = None
        self.details = None

    def load_parquet(self, path: str):
        import polars as pl

        from audit_analytics.engines.memory import CODE_ONLY_COLUMNS
        from audit_analytics.schema import DETAIL_COLUMNS, SUMMARY_COLUMNS, conform

        self.frame = self.index = None
        # as the app holds it: the bulky JSON columns stay in the file, fetched by id for
        # exports; the columns the index keeps as codes only are read as codes (streamed)
        self.frame = conform(
            pl.scan_parquet(path).select(SUMMARY_COLUMNS),
            columns=SUMMARY_COLUMNS,
            categorical=CODE_ONLY_COLUMNS,
        )

        def details(ids, *, between=None):
            lazy = pl.scan_parquet(path)
            if between is not None:  # the file is in time order: row groups outside are skipped
                lazy = lazy.filter(pl.col("time").is_between(*between))
            wanted = pl.LazyFrame({"id": pl.Series(ids, dtype=pl.String)})
            return lazy.join(wanted, on="id", how="semi").select("id", *DETAIL_COLUMNS).collect()

        self.details = details
        return self.frame

    def _load_store(self, url: str):
        from audit_analytics.engines.memory import CODE_ONLY_COLUMNS
        from audit_analytics.engines.store import open_store
        from audit_analytics.schema import SUMMARY_COLUMNS

        self.frame = self.index = None
        store = open_store(url)
        try:
            # as the app loads it (engines.open_engine): the code-only columns as codes
            self.frame = store.load(columns=SUMMARY_COLUMNS, categorical=CODE_ONLY_COLUMNS)
        finally:
            store.engine.dispose()
        self.details = store.details
        return self.frame

    def load_sqlite(self, path: str):
        return self._load_store(f"sqlite:///{path}")

    def pushdown_first_page(self, url: str):
        """The newest 100 events and the total count, answered by PostgreSQL (SqlIndex)."""
        from audit_analytics.engines.sql import SqlIndex
        from audit_analytics.engines.store import open_store

        if getattr(self, "_pushdown", None) is None:
            self._pushdown = SqlIndex(open_store(url))
        index = self._pushdown
        index._cache.clear()  # every run asks the database again
        flt = self._filter()
        return index.page(flt, limit=PAGE), index.count(flt)

    def load_postgres(self, url: str):
        return self._load_store(url)

    def height(self) -> int:
        return self.index.height if self.frame is None else self.frame.height

    def release_loaded(self) -> None:
        """As in the app (engines.open_engine): once the index is built nothing else holds the
        loaded frame, so the text of the columns the index keeps as codes is freed."""
        self.frame = None

    def build_index(self):
        from audit_analytics.engines.memory import EventIndex

        self.index = None
        self.index = EventIndex(self.frame, details=self.details)
        return self.index

    def clear(self) -> None:
        if self.index is not None:
            self.index._cache.clear()

    @staticmethod
    def _filter(f: dict | None = None, query: str = ""):
        from audit_analytics.filters import Filter

        if f is None:
            return Filter(query=query)
        return Filter(
            period="custom",
            start=datetime.fromisoformat(f["lo"]),
            end=datetime.fromisoformat(f["hi"]),
            types=tuple(f["types"]),
            results=tuple(f["results"]),
            query=query,
        )

    def load_notebook(self, path: str):
        """A plain polars frame, every column as text, as ``pl.read_parquet`` gives it."""
        import polars as pl

        self.frame = self.index = None
        self.frame = pl.read_parquet(path)
        return self.frame

    def notebook_search(self, word: str):
        return self._filter(query=word).apply(self.frame)

    def filter_count(self, f: dict) -> int:
        return self.index.count(self._filter(f))

    def search_count(self, word: str) -> int:
        return self.index.count(self._filter(query=word))

    def qualified_count(self, q: dict) -> int:
        return self.index.count(self._filter(query=q["query"]))

    def first_page(self, limit: int = PAGE):
        flt = self._filter()
        return self.index.page(flt, limit=limit), self.index.count(flt)

    def explore(self, f: dict, word: str, limit: int = PAGE):
        flt = self._filter(f, query=word)
        return self.index.page(flt, limit=limit), self.index.count(flt)

    def failures_by_ip(self):
        from audit_analytics.analysis import security

        return security.failures_by_ip(self.index.frame)

    def failures_by_account(self):
        from audit_analytics.analysis import security

        return security.failures_by_account(self.index.frame)

    def failures_by_hour(self, tz: str):
        from audit_analytics.analysis import security

        return security.failures_by_hour(self.index.frame, tz=tz)

    def brute_force(self, threshold: int, window_s: int):
        from audit_analytics.analysis import security

        return security.brute_force(self.index.frame, threshold=threshold, window=timedelta(seconds=window_s))

    def prepare_export(self, rows: int) -> int:
        self.export_frame = self.index.page(self._filter(), limit=rows)
        return self.export_frame.height

    def write_csv(self, path: Path, tz: str):
        from audit_analytics.io.export import write_csv

        # the detail columns are fetched from the source by id as part of the export, as in the app
        return write_csv(self.index.with_details(self.export_frame), path, tz=tz)

    def write_xlsx(self, path: Path, tz: str):
        from audit_analytics.io.export import ExportManifest, write_xlsx

        manifest = ExportManifest(caption=f"{self.export_frame.height:,} newest events", source="bench")
        return write_xlsx(self.index.with_details(self.export_frame), path, tz=tz, manifest=manifest)


def make_engine(name: str):
    if name == "ours":
        return OursEngine()
    from peers import DuckDBEngine, PandasEngine

    return {"pandas": PandasEngine, "duckdb": DuckDBEngine}[name]()


# ======================================================================== answers
# Plain values from each engine's result, computed outside the timed region.


def _page_answer(engine: str, result) -> dict:
    page, total = result
    if engine == "ours":
        ids = page["id"].to_list()
    elif engine == "pandas":
        ids = page["id"].tolist()
    else:
        ids = page.column("id").to_pylist()
    return {"total": int(total), "ids": ids}


def _table_answer(engine: str, result) -> list:
    """failures_by_ip/account: [key, failures, distinct other, first µs, last µs] per row."""
    if engine == "ours":
        import polars as pl

        rows = result.with_columns(pl.col("first", "last").dt.epoch("us")).rows()
    elif engine == "pandas":
        rows = [
            (k, n, o, a.value // 1000, b.value // 1000) for k, n, o, a, b in result.itertuples(index=False)
        ]
    else:
        rows = result
    return [[str(k), int(n), int(o), int(a), int(b)] for k, n, o, a, b in rows]


def _hours_answer(engine: str, result) -> list:
    if engine == "ours":
        return [int(v) for v in result["failures"].to_list()]
    if engine == "pandas":
        return [int(v) for v in result.tolist()]
    return [int(r[2]) for r in result]


def _brute_answer(engine: str, result) -> list:
    """[ip, largest number of failures in one window] for each IP with a finding."""
    if engine == "ours":
        import polars as pl

        rows = result.group_by("key").agg(pl.col("max_in_window").max()).sort("key").rows()
    elif engine == "pandas":
        rows = sorted(result.items())
    else:
        rows = result
    return [[str(k), int(v)] for k, v in rows]


# ======================================================================== timing


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _peak_bytes() -> int:
    """This process's peak RSS (VmHWM). Not ``ru_maxrss``: a child keeps the maxrss of the
    process it was forked from, so a small engine would report the parent's peak."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # elsewhere: KiB on Linux


DIGEST_ABOVE = 10_000  # characters of JSON; smaller answers are kept as they are


def digest(answer):
    """A large answer as its size and SHA-256 (of its canonical JSON): enough to tell whether
    two engines agree without keeping every engine's rows in the results file. Small answers
    (counts, a page's ids) are kept as they are."""
    text = json.dumps(answer, sort_keys=True, default=str)
    if len(text) <= DIGEST_ABOVE:
        return answer
    items = len(answer) if isinstance(answer, list | dict) else 1
    return {"items": items, "sha256": hashlib.sha256(text.encode()).hexdigest()}


def measure(run, variants: list, *, repeat: int, budget: float, setup=None, answer=None) -> tuple[dict, list]:
    """One warm-up run, then ``repeat`` timed runs (at least 3 when over ``budget`` seconds)."""
    times: list[float] = []
    answers: list = []
    warmup = None
    for i in range(repeat + 1):
        variant = variants[i % len(variants)]
        if setup is not None:
            setup()
        gc.collect()
        started = time.perf_counter()
        raw = run(variant)
        elapsed = time.perf_counter() - started
        answers.append({"variant": i % len(variants), "answer": digest(answer(raw)) if answer else None})
        raw = None  # noqa: F841 - free the result before the next run
        if i == 0:
            warmup = elapsed
        else:
            times.append(elapsed)
        if len(times) >= 3 and sum(times) > budget:
            break
    stats = {
        "median_s": statistics.median(times),
        "min_s": min(times),
        "max_s": max(times),
        "n": len(times),
        "warmup_s": warmup,
        "runs_s": times,
    }
    return stats, answers


def run_child(engine_name: str, phases: list[str], spec: dict) -> dict:
    """One engine's phases in this (child) process (normally one phase per process)."""
    engine = make_engine(engine_name)
    steps: dict = {}
    answers: dict = {}
    out = {"engine": engine_name, "phases": phases, "rows": spec["rows"], "load_before": os.getloadavg()}
    for phase in phases:
        _run_phase(engine, engine_name, phase, spec, steps, answers, out)
        out[f"{phase}_peak_rss_bytes"] = _peak_bytes()
    out["steps"] = steps
    out["answers"] = answers
    out["peak_rss_bytes"] = _peak_bytes()
    out["load_after"] = os.getloadavg()
    return out


def _run_phase(
    engine, engine_name: str, phase: str, spec: dict, steps: dict, answers: dict, out: dict
) -> None:
    repeat, budget = spec["repeat"], spec["budget_s"]
    wanted = spec.get("steps")  # None: every step

    def record(step, run, variants, *, setup=None, answer=None):
        if wanted is not None and step not in wanted and step not in MAIN_PREREQUISITES:
            return
        stats, ans = measure(run, variants, repeat=repeat, budget=budget, setup=setup, answer=answer)
        steps[step] = stats
        answers[step] = ans
        print(
            f"  [{engine_name:>6}] {step:<20} median {stats['median_s']:9.4f} s  "
            f"min {stats['min_s']:.4f}  max {stats['max_s']:.4f}  n={stats['n']}",
            flush=True,
        )

    def skip(step, reason):
        if wanted is not None and step not in wanted and step not in MAIN_PREREQUISITES:
            return
        steps[step] = {"skipped": reason}
        answers[step] = []

    if phase == "notebook":
        # not timed: the frame (or table) the search runs on, as the user already holds it
        if engine_name == "ours":
            engine.load_notebook(spec["parquet"])
        else:
            engine.load_parquet(spec["parquet"])
        out["rss_after_load_bytes"] = _rss_bytes()
        search = engine.notebook_search if engine_name == "ours" else engine.search_count
        answer = (lambda r: r.height) if engine_name == "ours" else int
        record(NOTEBOOK_STEP, search, spec["words"], answer=answer)
    elif phase in LOAD_STEPS:
        source = spec["sqlite"] if phase == "sqlite" else spec["postgres"]
        loader = engine.load_sqlite if phase == "sqlite" else engine.load_postgres
        record(LOAD_STEPS[phase], lambda _: loader(source), [None], answer=lambda _: engine.height())
        if engine_name == "duckdb":
            steps[LOAD_STEPS[phase]]["note"] = (
                "via connectorx -> Arrow -> CREATE TABLE (scanner extension offline)"
            )
        if engine_name == "ours" and phase == "postgres":
            # the table's newest page and its count, in the database with the store's indexes
            record(PUSHDOWN_STEP, lambda _: engine.pushdown_first_page(source), [None])
    else:
        record(
            "load_parquet",
            lambda _: engine.load_parquet(spec["parquet"]),
            [None],
            answer=lambda _: engine.height(),
        )
        if engine_name == "ours":
            record("index_build", lambda _: engine.build_index(), [None], answer=lambda _: engine.height())
            engine.release_loaded()
        else:
            skip(
                "index_build", "no separate build: DuckDB's table is made by its load; pandas keeps the frame"
            )
        out["rss_after_load_bytes"] = _rss_bytes()
        clear = getattr(engine, "clear", None)
        record("filter", engine.filter_count, spec["filters"], setup=clear, answer=int)
        record("search", engine.search_count, spec["words"], setup=clear, answer=int)
        record("qualified", engine.qualified_count, spec["qualified"], setup=clear, answer=int)
        record(
            "first_page",
            lambda _: engine.first_page(PAGE),
            [None],
            setup=clear,
            answer=lambda r: _page_answer(engine_name, r),
        )
        record(
            "explore",
            lambda v: engine.explore(v["filter"], v["word"], PAGE),
            spec["explore"],
            setup=clear,
            answer=lambda r: _page_answer(engine_name, r),
        )
        table = lambda r: _table_answer(engine_name, r)  # noqa: E731
        record("failures_by_ip", lambda _: engine.failures_by_ip(), [None], answer=table)
        record("failures_by_account", lambda _: engine.failures_by_account(), [None], answer=table)
        record(
            "failures_by_hour",
            lambda _: engine.failures_by_hour(spec["tz"]),
            [None],
            answer=lambda r: _hours_answer(engine_name, r),
        )
        record(
            "brute_force",
            lambda _: engine.brute_force(BRUTE_THRESHOLD, BRUTE_WINDOW_S),
            [None],
            answer=lambda r: _brute_answer(engine_name, r),
        )
        if wanted is not None and not {"export_csv", "export_xlsx"} & set(wanted):
            return
        out["export_rows"] = engine.prepare_export(spec["export_rows"])
        with tempfile.TemporaryDirectory(prefix="aa-bench-") as folder:
            # every run writes a new file, as every export does (replacing the last run's
            # file made each run pay for freeing its blocks: 20 ms on ext4 for 30 MB)
            runs = itertools.count()
            csv_path, xlsx_path = Path(folder) / "e.csv", Path(folder) / "e.xlsx"

            def new_csv() -> Path:
                return csv_path.with_name(f"e{next(runs)}.csv")

            record("export_csv", lambda _: engine.write_csv(new_csv(), spec["tz"]), [None])
            if "export_csv" in steps:
                steps["export_csv"]["bytes"] = max(f.stat().st_size for f in Path(folder).glob("e*.csv"))
            if engine.write_xlsx is None:
                skip(
                    "export_xlsx",
                    "DuckDB writes xlsx only through its excel extension (not installable offline)",
                )
            else:
                record("export_xlsx", lambda _: engine.write_xlsx(xlsx_path, spec["tz"]), [None])
                if "export_xlsx" in steps:
                    steps["export_xlsx"]["bytes"] = xlsx_path.stat().st_size


# ======================================================================== data


def _source_marker(parquet: Path) -> str:
    st = parquet.stat()
    return f"{parquet.name} {st.st_size} {st.st_mtime_ns}"


def ordered_parquet(rows: int, cache: Path) -> Path:
    return cache / f"demo-{rows}-ordered.parquet"


def parquet_for(rows: int, cache: Path) -> Path:
    """The Parquet file the engines read: the demo file, or its (time, id)-ordered copy."""
    ordered = ordered_parquet(rows, cache)
    return ordered if ordered.exists() else cache / f"demo-{rows}.parquet"


def prepare(rows: int, cache: Path, *, sqlite: bool) -> tuple[Path, Path | None]:
    """The demo Parquet file (and SQLite file) for ``rows`` events, built once and cached."""
    import polars as pl

    cache.mkdir(parents=True, exist_ok=True)
    parquet = cache / f"demo-{rows}.parquet"
    if not parquet.exists():
        from audit_analytics.demo.generate import generate

        started = time.perf_counter()
        frame = generate(rows, seed=SEED).events.sort("time", "id")
        tmp = parquet.with_suffix(".tmp")
        frame.write_parquet(tmp)
        tmp.rename(parquet)
        del frame
        print(f"generated {parquet.name} in {time.perf_counter() - started:.1f} s", flush=True)
    ordered = ordered_parquet(rows, cache)
    if not ordered.exists():
        # The engines read the rows in (time, id) order, as Store.load returns them; a file
        # sorted by time alone (ties by id unordered) would make EventIndex sort a copy.
        from audit_analytics.engines.memory import in_time_order  # EventIndex's own check

        lf = pl.scan_parquet(parquet)
        if not in_time_order(lf.select("time", "id").collect()):
            lf.sort("time", "id").sink_parquet(ordered.with_suffix(".tmp"))
            ordered.with_suffix(".tmp").rename(ordered)
            print(f"wrote {ordered.name}: {parquet.name} in (time, id) order", flush=True)
    if not sqlite:
        return parquet, None
    db = cache / f"scale-{rows}.db"
    marker = db.with_suffix(".db.source")
    if not (db.exists() and marker.exists() and marker.read_text() == _source_marker(parquet)):
        from audit_analytics.engines.store import open_store

        started = time.perf_counter()
        db.unlink(missing_ok=True)
        store = open_store(f"sqlite:///{db}")
        for batch in pl.scan_parquet(parquet).collect().iter_slices(1_000_000):
            store.append(batch)
        count = store.count()
        store.engine.dispose()
        if count != rows:
            raise RuntimeError(f"{db} holds {count} rows, expected {rows}")
        marker.write_text(_source_marker(parquet))
        print(f"built {db.name} in {time.perf_counter() - started:.1f} s", flush=True)
    return parquet, db


def fill_postgres(url: str, parquet: Path) -> None:
    import polars as pl
    import sqlalchemy as sa

    from audit_analytics.engines.store import open_store

    started = time.perf_counter()
    store = open_store(url)
    with store.engine.begin() as conn:
        conn.execute(sa.text("TRUNCATE audit_events, audit_chain, audit_batches"))
    for batch in pl.scan_parquet(parquet).collect().iter_slices(1_000_000):
        store.append(batch)
    with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM ANALYZE audit_events"))
    store.engine.dispose()
    print(f"filled PostgreSQL in {time.perf_counter() - started:.1f} s", flush=True)


def workload(parquet: Path, rows: int, *, repeat: int, budget: float, export_rows: int) -> dict:
    """The concrete filters, words and queries of every run (varied between runs)."""
    import polars as pl

    lf = pl.scan_parquet(parquet)
    newest = lf.select(pl.col("time").max()).collect().item()
    last_day = newest.astimezone(UTC).date()

    def midnight(d: date) -> datetime:
        return datetime(d.year, d.month, d.day, tzinfo=UTC)

    filters = []
    for k, (types, results) in enumerate(zip(TYPE_SETS, RESULT_SETS, strict=True)):
        hi = midnight(last_day + timedelta(days=1 - k))
        filters.append(
            {
                "lo": (hi - timedelta(days=30)).isoformat(),
                "hi": hi.isoformat(),
                "types": types,
                "results": results,
            }
        )
    # qualified: people who delete backups, by name or by email, with a wildcard resource
    deleters = (
        lf.filter((pl.col("action") == "delete") & pl.col("target").str.starts_with("bkp-"))
        .group_by("actor", "email")
        .len()
        .sort(["len", "actor"], descending=[True, False])
        .head(6)
        .collect()
        .rows()
    )
    qualified = []
    for i, (actor, email, _) in enumerate(deleters):
        user = actor if i % 2 == 0 or not email else email.title()
        resource_ = "bkp-*" if i % 3 != 2 else "BKP-*-daily"
        action = "delete" if i % 2 == 0 else "DELETE"
        qualified.append(
            {
                "query": f"user:{user} action:{action} resource:{resource_}",
                "user": user,
                "action": action,
                "resource": resource_,
            }
        )
    explore = []
    for k, (types, word) in enumerate(EXPLORE):
        hi = midnight(last_day + timedelta(days=1 - k))
        f = {"lo": (hi - timedelta(days=30)).isoformat(), "hi": hi.isoformat(), "types": types, "results": ()}
        explore.append({"filter": f, "word": word})
    return {
        "rows": rows,
        "parquet": str(parquet),
        "tz": TZ,
        "repeat": repeat,
        "budget_s": budget,
        "export_rows": min(export_rows, rows),
        "filters": filters,
        "words": list(WORDS),
        "qualified": qualified,
        "explore": explore,
    }


# ======================================================================== PostgreSQL


# ======================================================================== parent


def _spawn(args: list[str]) -> None:
    subprocess.run([sys.executable, str(Path(__file__).resolve()), *args], check=True)


def _child(engine: str, phases: list[str], spec_path: Path, folder: Path) -> dict:
    result = folder / f"{engine}-{'-'.join(phases)}.json"
    _spawn(
        ["--engine", engine, "--phase", ",".join(phases), "--spec", str(spec_path), "--result", str(result)]
    )
    return json.loads(result.read_text())


def check_agreement(engines: dict) -> dict:
    """For each step: do all engines give the same answer for each variant?"""
    out = {}
    steps = {s for e in engines.values() for s, a in e["answers"].items() if a and a[0]["answer"] is not None}
    for step in sorted(steps):
        by_engine = {
            name: {a["variant"]: a["answer"] for a in e["answers"].get(step, [])}
            for name, e in engines.items()
        }
        by_engine = {n: v for n, v in by_engine.items() if v}
        problems = []
        for name, answers in by_engine.items():
            for other, theirs in by_engine.items():
                if other <= name:
                    continue
                for variant in sorted(set(answers) & set(theirs)):
                    if answers[variant] != theirs[variant]:
                        problems.append(f"{name} != {other} on variant {variant}")
        out[step] = {"agree": not problems, "engines": sorted(by_engine), "problems": problems}
    return out


def _cell(stats: dict | None) -> str:
    if not stats:
        return "-"
    if "skipped" in stats:
        return "n/a"
    return f"{stats['median_s']:.4f} ({stats['min_s']:.4f}-{stats['max_s']:.4f})"


def _ratio(peer: dict | None, ours: dict | None, key: str = "median_s") -> float | None:
    if not peer or not ours or "skipped" in peer or "skipped" in ours:
        return None
    return peer[key] / ours[key] if ours[key] > 0 else None


def summarise(entry: dict) -> dict:
    """Ratios and goals (the goals are stated for 10M events; other sizes are for reference).

    A goal is judged on medians; ``met_on_min`` judges it on the fastest runs as well, the
    better estimate of the machine's speed when other work loads it."""
    engines = entry["engines"]
    steps = {}
    for e in engines.values():
        for s in e["steps"]:
            steps.setdefault(s, None)
    ours = engines.get("ours", {}).get("steps", {})
    ratios, ratios_min = {}, {}
    for step in steps:
        peers = [p for p in engines if p != "ours"]
        ratios[step] = {p: _ratio(engines[p]["steps"].get(step), ours.get(step)) for p in peers}
        ratios_min[step] = {p: _ratio(engines[p]["steps"].get(step), ours.get(step), "min_s") for p in peers}
    goals = []
    for step, limit in TIME_GOALS.items():
        if step in ours and "skipped" not in ours[step]:
            med, low = ours[step]["median_s"], ours[step]["min_s"]
            goals.append(
                {
                    "goal": f"{step} <= {limit} s",
                    "value": med,
                    "met": med <= limit,
                    "value_min": low,
                    "met_on_min": low <= limit,
                }
            )
    peak = engines.get("ours", {}).get("peak_rss_bytes")
    if peak is not None:
        met = peak <= PEAK_GOAL_BYTES
        goals.append(
            {"goal": "peak memory <= 2.5 GB", "value": peak, "met": met, "value_min": peak, "met_on_min": met}
        )
    for step, r in ratios.items():
        if step == "index_build":
            continue
        for peer, factor, text in (
            ("pandas", PANDAS_FACTOR_GOAL, ">= 5x faster than pandas"),
            ("duckdb", 1.0, "no slower than DuckDB"),
        ):
            if r.get(peer) is not None:
                low = ratios_min[step][peer]
                goals.append(
                    {
                        "goal": f"{step}: {text}",
                        "value": r[peer],
                        "met": r[peer] >= factor,
                        "value_min": low,
                        "met_on_min": low is not None and low >= factor,
                    }
                )
    return {"ratios": ratios, "ratios_of_min": ratios_min, "goals": goals}


def render(entry: dict) -> str:
    engines = entry["engines"]
    names = [n for n in ENGINES if n in engines]
    rows = entry["rows"]
    lines = [f"## {rows:,} events", ""]
    lines.append(
        f"load average before/after: {', '.join(f'{x:.1f}' for x in entry['load_before'])} / "
        f"{', '.join(f'{x:.1f}' for x in entry['load_after'])} ({entry['machine']['cpus']} CPUs)"
    )
    for rerun in entry.get("reruns", []):
        what = "the SQLite/PostgreSQL loads" if rerun.get("loads_only") else "its steps"
        lines.append(
            f"re-run of {', '.join(rerun['engines'])} ({what}) at {rerun['when']}, load average before/after: "
            f"{', '.join(f'{x:.1f}' for x in rerun['load_before'])} / "
            f"{', '.join(f'{x:.1f}' for x in rerun['load_after'])}"
        )
    lines.append("")
    head = "| step | " + " | ".join(f"{n} median (min-max) s" for n in names)
    head += "".join(f" | {p}/ours" for p in names if p != "ours") + " |"
    lines += [head, "|" + "---|" * (1 + len(names) + len(names) - 1)]
    order = [*MAIN_STEPS[:1], "load_sqlite", "load_postgres", PUSHDOWN_STEP, *MAIN_STEPS[1:], NOTEBOOK_STEP]
    for step in order:
        if not any(step in engines[n]["steps"] for n in names):
            continue
        cells = [_cell(engines[n]["steps"].get(step)) for n in names]
        ratios = []
        for p in names:
            if p == "ours":
                continue
            r = entry["summary"]["ratios"].get(step, {}).get(p)
            ratios.append("-" if r is None else f"{r:.1f}x")
        lines.append(
            f"| {STEP_LABELS[step]} | "
            + " | ".join(cells)
            + (" | " + " | ".join(ratios) if ratios else "")
            + " |"
        )
    lines.append("")
    if all("peak_rss_bytes" in engines[n] for n in names):
        lines.append(
            "peak RSS (Parquet load + all steps, own process): "
            + ", ".join(f"{n} {engines[n]['peak_rss_bytes'] / 1e9:.2f} GB" for n in names)
        )
        lines.append(
            "resident after load (+ index): "
            + ", ".join(f"{n} {engines[n]['rss_after_load_bytes'] / 1e9:.2f} GB" for n in names)
        )
    for phase in () if entry.get("quick") else ("sqlite", "postgres", "notebook"):
        key = f"{phase}_peak_rss_bytes"
        if any(key in engines[n] for n in names):
            lines.append(
                f"peak RSS of the {phase} {'search' if phase == 'notebook' else 'load'} (own process): "
                + ", ".join(f"{n} {engines[n][key] / 1e9:.2f} GB" for n in names if key in engines[n])
            )
    bad = [s for s, a in entry["agreement"].items() if not a["agree"]]
    lines.append(
        "agreement: " + ("all engines give the same answers" if not bad else "DIFFER on " + ", ".join(bad))
    )
    lines.append("")
    if rows != 10_000_000:
        lines.append(f"The goals are stated for 10,000,000 events; at {rows:,} they are for reference.")
        lines.append("")
    lines.append("| goal | median | met | min (fastest runs) | met on min |")
    lines.append("|---|---|---|---|---|")

    def fmt(goal: str, v: float | None) -> str:
        if v is None:
            return "-"
        if "memory" in goal:
            return f"{v / 1e9:.2f} GB"
        if "faster" in goal or "slower" in goal:
            return f"{v:.1f}x"
        return f"{v:.4f} s"

    for g in entry["summary"]["goals"]:
        lines.append(
            f"| {g['goal']} | {fmt(g['goal'], g['value'])} | {'met' if g['met'] else 'NOT met'} | "
            f"{fmt(g['goal'], g.get('value_min'))} | {'met' if g.get('met_on_min') else 'NOT met'} |"
        )
    lines.append("")
    return "\n".join(lines)


def write_markdown(output: Path) -> None:
    """``scale.md`` beside ``scale.json``: the tables of every size in it."""
    entries = json.loads(output.read_text())
    for entry in entries.values():
        entry["summary"] = summarise(entry)  # recomputed, so older entries get today's format
    sections = [render(entries[k]) for k in sorted(entries, key=int)]
    output.with_suffix(".md").write_text(
        "# audit_analytics vs pandas vs DuckDB\n\n"
        "Medians of the timed runs (min-max) in seconds; peer/ours > 1 means ours is faster. "
        "Written by bench/bench_scale.py (see bench/README.md).\n\n" + "\n".join(sections)
    )


def run_size(rows: int, args, pg_url: str | None) -> dict:
    cache = Path(args.cache_dir)
    print(f"== {rows:,} events", flush=True)
    if rows <= 2_000_000:
        prepare(rows, cache, sqlite=not args.no_sqlite)
    else:  # a child, so that this process stays small while the engines run
        _spawn(
            ["--phase", "prepare", "--rows", str(rows), "--cache-dir", str(cache)]
            + (["--no-sqlite"] if args.no_sqlite else [])
        )
    parquet = parquet_for(rows, cache)
    spec = workload(parquet, rows, repeat=args.repeat, budget=args.budget, export_rows=args.export_rows)
    spec["sqlite"] = None if args.no_sqlite else str(cache / f"scale-{rows}.db")
    spec["postgres"] = pg_url
    spec["steps"] = args.steps
    if pg_url:
        _spawn(["--phase", "fill-postgres", "--postgres-url", pg_url, "--parquet", str(parquet)])
    load_before = os.getloadavg()
    engines: dict = {}
    with tempfile.TemporaryDirectory(prefix="aa-bench-") as folder:
        folder_path = Path(folder)
        spec_path = folder_path / "spec.json"
        spec_path.write_text(json.dumps(spec))
        loads = ([] if args.no_sqlite else ["sqlite"]) + (["postgres"] if pg_url else [])
        main_phase = args.steps is None or bool(set(args.steps) & (set(MAIN_STEPS) - set(MAIN_PREREQUISITES)))
        if args.steps is not None:
            loads = [
                p
                for p in loads
                if LOAD_STEPS[p] in args.steps or (p == "postgres" and PUSHDOWN_STEP in args.steps)
            ]
        if not args.loads_only and (args.steps is None or NOTEBOOK_STEP in args.steps):
            loads.append("notebook")  # its own process: the frame it holds is not the index
        for engine in args.engines:
            if args.loads_only or (not main_phase and not args.quick):
                engines[engine] = {"steps": {}, "answers": {}}
                continue
            if args.quick:  # everything in this process: fast, but the peaks are not separate
                phases = (["main"] if main_phase else []) + loads
                engines[engine] = json.loads(json.dumps(run_child(engine, phases, spec)))
            else:
                engines[engine] = _child(engine, ["main"], spec_path, folder_path)
            if main_phase:
                engines[engine]["peak_rss_bytes"] = engines[engine]["main_peak_rss_bytes"]
        for phase in [] if args.quick else loads:
            for engine in args.engines:
                res = _child(engine, [phase], spec_path, folder_path)
                engines[engine]["steps"].update(res["steps"])
                engines[engine]["answers"].update(res["answers"])
                engines[engine][f"{phase}_peak_rss_bytes"] = res["peak_rss_bytes"]
                engines[engine].setdefault("load_averages", []).append(
                    {"phase": phase, "before": res["load_before"], "after": res["load_after"]}
                )
    entry = {
        "rows": rows,
        "quick": bool(args.quick),
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "load_before": load_before,
        "load_after": os.getloadavg(),
        "spec": {k: v for k, v in spec.items() if k not in ("parquet", "sqlite", "postgres")},
        "engines": engines,
    }
    entry["agreement"] = check_agreement(engines)
    entry["summary"] = summarise(entry)
    return entry


def machine() -> dict:
    from importlib.metadata import version

    return {
        "cpus": os.cpu_count(),
        "memory_bytes": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"),
        "python": platform.python_version(),
        **{name: version(name) for name in ("polars", "pandas", "duckdb", "pyarrow", "connectorx")},
        "platform": platform.platform(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, action="append", help="events (repeatable); default 1M and 10M")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs after the warm-up")
    parser.add_argument(
        "--budget", type=float, default=60.0, help="seconds per step before stopping at 3 runs"
    )
    parser.add_argument("--engines", default=",".join(ENGINES))
    parser.add_argument(
        "--postgres", action="store_true", help="also load from a throwaway PostgreSQL server"
    )
    parser.add_argument("--no-sqlite", action="store_true", help="skip the SQLite load")
    parser.add_argument("--loads-only", action="store_true", help="only the SQLite/PostgreSQL loads")
    parser.add_argument("--export-rows", type=int, default=100_000)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="run the engines in this process (smoke test; peaks not separate)",
    )
    parser.add_argument(
        "--steps",
        help=f"only these steps, comma-separated (e.g. {NOTEBOOK_STEP}); the Parquet load and index "
        "build run anyway when a main step needs them",
    )
    parser.add_argument("--render-only", action="store_true", help="rewrite scale.md from --output")
    parser.add_argument("--cache-dir", default=str(BENCH / ".cache"))
    parser.add_argument("--output", default=str(BENCH / "results" / "scale.json"))
    # child modes
    parser.add_argument("--engine", choices=ENGINES)
    parser.add_argument(
        "--phase", help="child: main, sqlite, postgres (comma-separated), prepare, fill-postgres"
    )
    parser.add_argument("--spec")
    parser.add_argument("--result")
    parser.add_argument("--postgres-url")
    parser.add_argument("--parquet")
    args = parser.parse_args(argv)

    if args.phase == "prepare":
        prepare(args.rows[0], Path(args.cache_dir), sqlite=not args.no_sqlite)
        return 0
    if args.phase == "fill-postgres":
        fill_postgres(args.postgres_url, Path(args.parquet))
        return 0
    if args.engine:
        spec = json.loads(Path(args.spec).read_text())
        result = run_child(args.engine, (args.phase or "main").split(","), spec)
        Path(args.result).write_text(json.dumps(result))
        return 0

    if args.render_only:
        write_markdown(Path(args.output))
        return 0
    args.engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    if args.steps is not None:
        args.steps = [s.strip() for s in args.steps.split(",") if s.strip()]
        unknown = sorted(set(args.steps) - set(STEP_LABELS))
        if unknown:
            parser.error(f"unknown step {unknown[0]!r}; steps: {', '.join(STEP_LABELS)}")
    sizes = args.rows or [1_000_000, 10_000_000]
    output = Path(args.output)
    server = None
    pg_url = None
    try:
        if args.postgres:
            from pg_support import ThrowawayPostgres  # tests/pg_support.py, as the tests start it

            server = ThrowawayPostgres(
                settings="-c synchronous_commit=off -c shared_buffers=512MB", prefix="aa-bench-pg-"
            )
            pg_url = server.start()
        for rows in sizes:
            entry = run_size(rows, args, pg_url)
            previous = json.loads(output.read_text()) if output.exists() else {}
            earlier = previous.get(str(rows))
            partial = args.loads_only or args.steps is not None
            if earlier and (partial or set(entry["engines"]) != set(earlier["engines"])):
                # a re-run of some engines (or of the loads, or of some steps): merge into the earlier entry, say so
                for name, result in entry["engines"].items():
                    if not result["steps"]:
                        continue
                    old = earlier["engines"].get(name, {})
                    merged = {**old, **result}
                    merged["steps"] = {**old.get("steps", {}), **result["steps"]}
                    merged["answers"] = {**old.get("answers", {}), **result["answers"]}
                    earlier["engines"][name] = merged
                earlier.setdefault("reruns", []).append(
                    {
                        "engines": sorted(entry["engines"]),
                        "when": entry["when"],
                        "load_before": entry["load_before"],
                        "load_after": entry["load_after"],
                        "loads_only": bool(args.loads_only),
                        "steps": args.steps,
                    }
                )
                earlier["agreement"] = check_agreement(earlier["engines"])
                earlier["summary"] = summarise(earlier)
                entry = earlier
            previous[str(rows)] = entry
            output.parent.mkdir(parents=True, exist_ok=True)
            output.write_text(json.dumps(previous, indent=1) + "\n")
            print(render(entry), flush=True)
            write_markdown(output)
        print(f"-> {output}")
    finally:
        if server is not None:
            server.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

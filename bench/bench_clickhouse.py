"""ClickHouse (chDB) as a store at 100,000,000 events, beside chDB, memory and PostgreSQL at 10M.

    .venv/bin/python bench/bench_clickhouse.py --base-sqlite /work/tmp/bench-pages/pages-10000000.db \\
        --cache-dir /work/tmp/ch-bench [--rows 100000000] [--repeat 5] [--skip-100m] [--quick]

Issue 16's benchmark. The data: a base of demo events (an SQLite file written by the store,
``--base-sqlite``; generated with ``generate(seed=42)`` when not given) is read into a chDB
folder by ClickHouse itself (``INSERT … SELECT … FROM sqlite(…)``), so no event is held in
Python. The big folder is a copy of that folder in which ClickHouse replicates the base
``rows / base - 1`` times (``INSERT INTO audit_events SELECT … FROM audit_events``), copy ``k``
with ids ``<id>-r<k>`` (request ids likewise) and times shifted back by ``k`` times the base's
span, so the table covers a long history with the demo's mix (stories included, once a
copy). Rows inserted by SQL bypass the hash chain (no chain rows exist for them): fine here,
nothing verifies it.

Each store runs in its own child process, so its peak RSS (VmHWM) is its own; chDB runs in
that process, so ClickHouse's memory counts. Steps (medians and min-max of ``--repeat`` runs
after one warm-up; each run's filter or word differs, and the engine's selection cache is
emptied before each run):

1. newest page (100 rows, newest first) + exact count, all time;
2. a filter: a 30-day window + types auth,user + result failed, count + first page;
3. free-text search (a word) over all time, count + first page;
4. a qualified search (``user:X type:auth result:failed`` / ``ip:A.B.0.0/16``), count;
5. failures by IP, by account, by hour (all time, through the engine);
6. brute-force windows (``detect("brute_force")`` through the engine);
7. the Audit Log page's reruns through the app (Streamlit AppTest, as bench_explorer.py).

The engine is the app's: :func:`~audit_analytics.engines.sql.open_engine` (pushdown above the
memory limit, which at 10M and 100M it is; ``--memory-limit`` lowers it for ``--quick``), and
:class:`~audit_analytics.engines.memory.EventIndex` for the memory store (the same 10M rows,
loaded from the SQLite file). Results: ``bench/results/clickhouse.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PAGE = 100
STEPS = {
    "newest_page_count": "newest page (100) + exact count, all time",
    "filter_count_page": "30-day window + types auth,user + failed: count + page",
    "search_count_page": "free-text search (a word), all time: count + page",
    "qualified_count": "qualified search (user:/ip:/type:/result:), count",
    "failures_by_ip": "failures by IP, all time",
    "failures_by_account": "failures by account, all time",
    "failures_by_hour": "failures by hour, all time",
    "brute_force": "brute-force windows (detect), all time",
}
APP_STEPS = {
    "app_first_run": "Audit Log page, first run (opens the store)",
    "app_filter_change": "Audit Log rerun after a filter change",
    "app_search_change": "Audit Log rerun after a search change",
    "app_page_change": "Audit Log rerun after a page change",
}
GOALS = {  # issue 16's goals at 100M on 2 cores, seconds
    "newest_page_count": 0.5,
    "filter_count_page": 1.0,
    "search_count_page": 2.0,
    "failures_by_ip": 1.0,
    "failures_by_account": 1.0,
    "failures_by_hour": 1.0,
    "brute_force": 3.0,
}
WORDS = ["rollback", "pricing", "backup", "timeout", "denied", "scaled", "invoice", "staging"]
COLUMNS = (
    "id, time, actor, email, type, action, target, result, ip, request_id, description, params, "
    "before, after, error"
)


# --------------------------------------------------------------------------- helpers


def peak_mb() -> float:
    """This process's peak RSS (VmHWM) in MB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def stats(runs: list[float]) -> dict:
    return {
        "median_s": round(statistics.median(runs), 4),
        "min_s": round(min(runs), 4),
        "max_s": round(max(runs), 4),
        "n": len(runs),
    }


def du_bytes(path: Path) -> int:
    out = subprocess.run(["du", "-sb", str(path)], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[0])


def child(phase: str, spec: dict, *, env: dict | None = None) -> dict:
    """Run one phase in a child process; -> its JSON answer."""
    out = Path(spec["work"]) / f"{phase}-{spec.get('store', '')}-{spec.get('size', '')}.json"
    out.unlink(missing_ok=True)
    spec_path = out.with_suffix(".spec.json")
    spec_path.write_text(json.dumps(spec, default=str))
    environ = {**os.environ, **(env or {}), "PYTHONPATH": str(ROOT)}
    started = time.perf_counter()
    proc = subprocess.run(
        [
            sys.executable,
            "-X",
            "faulthandler",
            __file__,
            "--child",
            phase,
            "--spec",
            str(spec_path),
            "--out",
            str(out),
        ],
        env=environ,
        check=False,
    )
    if not out.exists():
        return {
            "error": f"child {phase} exited with {proc.returncode}",
            "wall_s": time.perf_counter() - started,
        }
    answer = json.loads(out.read_text())
    if proc.returncode != 0:  # seen: chDB crashing at exit (SIGSEGV) after the app ran on it
        answer["exit_code"] = proc.returncode
    return answer


# --------------------------------------------------------------------------- building


def build_base(spec: dict) -> dict:
    """The base folder: ClickHouse reads the SQLite file itself, then OPTIMIZE FINAL."""
    from audit_analytics.engines.store import open_store

    started = time.perf_counter()
    store = open_store(f"chdb://{spec['folder']}")
    conn = store.connection
    select = COLUMNS.replace("time,", "parseDateTime64BestEffort(time, 6, 'UTC'),", 1)
    conn.command(
        f"INSERT INTO audit.audit_events ({COLUMNS}) SELECT {select} FROM sqlite({{path:String}}, 'audit_events')",  # noqa: S608
        {"path": spec["sqlite"]},
    )
    inserted = time.perf_counter() - started
    conn.command("OPTIMIZE TABLE audit.audit_events FINAL")
    optimized = time.perf_counter() - started - inserted
    t0 = time.perf_counter()
    store._seal_existing()  # what opening the store would do: the events become chain batch 1
    sealed = time.perf_counter() - t0
    rows = store.count()
    store.close()
    return {
        "rows": rows,
        "insert_s": round(inserted, 2),
        "optimize_s": round(optimized, 2),
        "seal_chain_s": round(sealed, 2),
        "total_s": round(time.perf_counter() - started, 2),
    }


def replicate(spec: dict) -> dict:
    """``copies - 1`` shifted copies of the base inside ClickHouse, then OPTIMIZE FINAL."""
    from audit_analytics.engines.store import open_store

    store = open_store(f"chdb://{spec['folder']}")
    conn = store.connection
    lo, hi = store.time_range()
    span_days = int((hi - lo) / timedelta(days=1)) + 1
    started = time.perf_counter()
    copies = []
    for k in range(1, spec["copies"]):
        t0 = time.perf_counter()
        shifted = {
            "id": f"concat(id, '-r{k}')",
            "time": f"time - toIntervalDay({span_days * k})",
            "request_id": f"if(isNull(request_id), NULL, concat(request_id, '-r{k}'))",
        }
        select = ", ".join(shifted.get(c.strip(), c.strip()) for c in COLUMNS.split(","))
        conn.command(
            f"INSERT INTO audit.audit_events ({COLUMNS}) SELECT {select} FROM audit.audit_events "  # noqa: S608
            f"WHERE time >= {{lo:DateTime64(6, 'UTC')}}",
            {"lo": lo.strftime("%Y-%m-%d %H:%M:%S.%f")},
        )
        copies.append(round(time.perf_counter() - t0, 2))
        print(f"  copy {k}: {copies[-1]:.1f} s", flush=True)
    inserted = time.perf_counter() - started
    t0 = time.perf_counter()
    conn.command("OPTIMIZE TABLE audit.audit_events FINAL")
    optimize = time.perf_counter() - t0
    rows = store.count()
    new_lo, new_hi = store.time_range()
    parts = conn.query(
        "SELECT count() AS parts, sum(rows) AS rows, sum(bytes_on_disk) AS bytes, "
        "sum(data_uncompressed_bytes) AS raw FROM system.parts WHERE database = 'audit' AND active"
    ).to_pylist()[0]
    store.close()
    return {
        "rows": rows,
        "span_days_base": span_days,
        "copies_s": copies,
        "insert_s": round(inserted, 2),
        "optimize_s": round(optimize, 2),
        "oldest": str(new_lo),
        "newest": str(new_hi),
        "parts": parts,
    }


def fill_postgres(spec: dict) -> dict:
    """The base into PostgreSQL (the store's own table and indexes): ClickHouse's postgresql()
    table function reads the SQLite file's events and its hash chain (so the store finds its
    events chained, as they are in the file), then VACUUM ANALYZE."""
    import sqlalchemy as sa

    from audit_analytics.engines.clickhouse import ChdbConnection
    from audit_analytics.engines.store import open_store

    store = open_store(spec["url"])
    with store.engine.begin() as conn:
        conn.execute(sa.text("TRUNCATE audit_events, audit_chain, audit_batches"))
    url = store.engine.url
    started = time.perf_counter()
    ch = ChdbConnection(Path(spec["work"]) / "pg-fill-chdb")
    where = {"hp": f"{url.host}:{url.port}", "db": url.database, "user": url.username, "path": spec["sqlite"]}
    select = COLUMNS.replace("time,", "parseDateTime64BestEffort(time, 6, 'UTC'),", 1)
    chain_columns = {
        "audit_events": (COLUMNS, select),
        "audit_chain": ("seq, id, hash, archived",) * 2,
        "audit_batches": ("batch, first_seq, last_seq, events, stored_at, source, prev_digest, digest",) * 2,
    }
    for table, (names, values) in chain_columns.items():
        ch.command(
            f"INSERT INTO FUNCTION postgresql({{hp:String}}, {{db:String}}, '{table}', {{user:String}}, '') "  # noqa: S608
            f"({names}) SELECT {values} FROM sqlite({{path:String}}, '{table}')",
            where,
        )
    ch.close()
    inserted = time.perf_counter() - started
    with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM ANALYZE audit_events"))
        size = conn.execute(sa.text("SELECT pg_database_size(current_database())")).scalar()
    rows = store.count()
    store.engine.dispose()
    return {
        "rows": rows,
        "insert_s": round(inserted, 2),
        "total_s": round(time.perf_counter() - started, 2),
        "bytes": size,
        "chain": "audit_chain and audit_batches copied from the SQLite file",
    }


# --------------------------------------------------------------------------- the steps


def workload(spec: dict) -> dict:
    """Each step's variants (one per run, the warm-up included): a different filter or word."""
    from audit_analytics.filters import Filter

    newest = datetime.fromisoformat(spec["newest"])
    runs = spec["repeat"] + 1
    windows = [(newest - timedelta(days=30 + 9 * i)).date() for i in range(runs)]
    users = spec["users"]
    nets = spec["nets"]
    qualified = [
        f"user:{users[i % len(users)]} type:auth result:failed" if i % 2 == 0 else f"ip:{nets[i % len(nets)]}"
        for i in range(runs)
    ]
    return {
        "newest_page_count": [Filter()] * runs,
        "filter_count_page": [
            Filter(
                period="custom",
                start=d,
                end=d + timedelta(days=29),
                types=("auth", "user"),
                results=("failed",),
            )
            for d in windows
        ],
        "search_count_page": [Filter(query=WORDS[i % len(WORDS)]) for i in range(runs)],
        "qualified_count": [Filter(query=q) for q in qualified],
        "failures_by_ip": [Filter()] * runs,
        "failures_by_account": [Filter()] * runs,
        "failures_by_hour": [Filter()] * runs,
        "brute_force": [Filter()] * runs,
    }


def step_function(engine, step: str, now: datetime):
    """-> f(flt) running the step on the engine; its answer is small (for agreement)."""
    from audit_analytics.analysis.security import thresholds_of
    from audit_analytics.engines.contract import NEWEST_FIRST

    def count_page(flt):
        selection = engine.select(flt, NEWEST_FIRST, now=now)
        rows = engine.rows(selection, 0, PAGE)
        return {"count": int(selection.total), "page": rows.height, "first_ids": rows["id"].head(3).to_list()}

    def table(frame):
        return {"rows": frame.height, "head": [str(v) for v in frame.row(0)] if frame.height else []}

    functions = {
        "newest_page_count": count_page,
        "filter_count_page": count_page,
        "search_count_page": count_page,
        "qualified_count": lambda flt: {"count": int(engine.count(flt, now=now))},
        "failures_by_ip": lambda flt: table(engine.failures_by_ip(flt, now=now)),
        "failures_by_account": lambda flt: table(engine.failures_by_account(flt, now=now)),
        "failures_by_hour": lambda flt: table(engine.failures_by_hour(flt, tz="UTC", now=now)),
        "brute_force": lambda flt: {
            "findings": engine.detect("brute_force", flt, thresholds_of("brute_force"), now=now).height
        },
    }
    return functions[step]


def forget(engine) -> None:
    """Empty the engine's selection cache, so that a run counts again (the app's first visit)."""
    cache = getattr(engine, "_cache", None)
    if cache is not None:
        cache.clear()


class ScanCounter:
    """Rows and bytes ClickHouse read for the statements of one step (chDB only): each
    statement run once more with a result that carries chDB's counters (not timed)."""

    def __init__(self, connection) -> None:
        self.connection = connection
        self.original = connection.query
        self.rows = self.bytes = self.statements = 0
        self.seconds = 0.0

    def query(self, sql, params=None):
        with self.connection.turns:
            result = self.connection.session.query(sql, "Null", params=dict(params) if params else None)
        self.rows += result.storage_rows_read()
        self.bytes += result.storage_bytes_read()
        self.seconds += result.elapsed()
        self.statements += 1
        return self.original(sql, params)

    def __enter__(self):
        self.connection.query = self.query
        return self

    def __exit__(self, *exc) -> None:
        self.connection.query = self.original


def run_steps(spec: dict) -> dict:
    """One store at one size: open the engine, then every step."""
    from audit_analytics.engines.sql import open_engine
    from audit_analytics.engines.store import open_store

    started = time.perf_counter()
    store = open_store(spec["url"])
    if spec["store"] == "memory":
        engine = open_engine(store, mode="memory", limit=10**12)
    else:
        engine = open_engine(store, mode="auto", limit=spec["memory_limit"])
    opened = time.perf_counter() - started
    now = datetime.fromisoformat(spec["now"])
    out: dict = {
        "engine": type(engine).__name__,
        "open_s": round(opened, 3),
        "rows": engine.height,
        "steps": {},
    }
    for step, variants in workload(spec).items():
        if spec.get("steps") and step not in spec["steps"]:
            continue
        run = step_function(engine, step, now)
        load_before = os.getloadavg()
        answers, seconds = [], []
        step_started = time.perf_counter()
        try:
            for flt in variants:
                forget(engine)
                t0 = time.perf_counter()
                answers.append(run(flt))
                seconds.append(time.perf_counter() - t0)
                if len(seconds) >= 2 and time.perf_counter() - step_started > spec["budget"]:
                    break  # a slow step: fewer runs (n says how many)
        except Exception as exc:  # a step that cannot run on this store is reported, not fatal
            out["steps"][step] = {"error": f"{type(exc).__name__}: {exc}"}
            continue
        entry = {
            **stats(seconds[1:]),
            "answers": answers,
            "load_before": load_before,
            "load_after": os.getloadavg(),
        }
        connection = getattr(store, "connection", None)
        if spec["store"] == "chdb" and hasattr(connection, "session"):
            forget(engine)
            with ScanCounter(connection) as scan:
                run(variants[1])
            entry["scan"] = {
                "statements": scan.statements,
                "rows_read": scan.rows,
                "bytes_read": scan.bytes,
                "clickhouse_s": round(scan.seconds, 4),
            }
        out["steps"][step] = entry
        print(f"  {spec['store']}-{spec['size']} {step}: {entry['median_s']:.3f} s", flush=True)
    return out


def run_app(spec: dict) -> dict:
    """The Audit Log page through Streamlit's AppTest (as bench_explorer.py): the first run,
    then reruns after a filter, a search and a page change, on the store at AUDIT_DB_URL."""
    from streamlit.testing.v1 import AppTest

    users = Path(spec["work"]) / "users.toml"
    users.write_text('[users.tester]\nrole = "auditor"\npassword_hash = "$argon2id$unused"\n')
    os.environ["AUDIT_USERS_FILE"] = str(users)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=900)
    at.session_state["aa_user"] = "tester"  # signed in, as the tests sign in
    t0 = time.perf_counter()
    at.run()
    first = time.perf_counter() - t0
    if at.exception:
        return {"error": f"first run: {at.exception}"}
    types = [["auth"], ["service", "infra"], ["backup"], []]
    searches = ["action:update", "root", "ip:10.0.0.0/8", "user:svc-ci", "-result:done failed", ""]
    samples: dict[str, list[float]] = {
        "app_filter_change": [],
        "app_search_change": [],
        "app_page_change": [],
    }
    loads = [os.getloadavg()]

    def timed_run(action) -> float:
        t0 = time.perf_counter()
        action()
        return time.perf_counter() - t0

    t0 = time.perf_counter()
    for i in range(spec["repeat"] + 1):  # the first round warms up
        at.multiselect(key="f_types").set_value(types[i % len(types)])
        at.radio(key="f_period").set_value("all" if i % 2 else "30d")
        t_filter = timed_run(lambda: at.button(key="FormSubmitter:filter-panel-Apply").click().run())
        search = searches[i % len(searches)]
        t_search = timed_run(lambda: at.text_input(key="f_search").input(search).run())  # noqa: B023
        buttons = [b for b in at.button if b.key == "next_page" and not b.disabled]
        t_page = timed_run(lambda: buttons[0].click().run()) if buttons else None  # noqa: B023
        if at.exception:
            return {"error": f"rerun {i}: {at.exception}"}
        if i == 0:
            continue
        samples["app_filter_change"].append(t_filter)
        samples["app_search_change"].append(t_search)
        if t_page is not None:
            samples["app_page_change"].append(t_page)
        if i >= 2 and time.perf_counter() - t0 > 3 * spec["budget"]:
            break  # a slow store: fewer rounds (n says how many)
    loads.append(os.getloadavg())
    steps = {"app_first_run": {**stats([first]), "load_before": loads[0]}}
    for name, values in samples.items():
        if values:
            steps[name] = {**stats(values), "load_after": loads[-1]}
    return {"steps": steps}


def du_child(spec: dict) -> dict:
    """The folder's size once chDB has removed its inactive parts (opening it cleans up)."""
    from audit_analytics.engines.store import open_store

    store = open_store(f"chdb://{spec['folder']}")
    active = store.connection.query(
        "SELECT count() AS parts, sum(rows) AS rows, sum(bytes_on_disk) AS bytes, "
        "sum(data_uncompressed_bytes) AS raw FROM system.parts WHERE database = 'audit' AND active"
    ).to_pylist()[0]
    columns = store.connection.query(
        "SELECT column, sum(column_data_compressed_bytes) AS compressed, "
        "sum(column_data_uncompressed_bytes) AS raw FROM system.parts_columns "
        "WHERE database = 'audit' AND active GROUP BY column ORDER BY compressed DESC"
    ).to_pylist()
    store.close()
    return {"active": active, "columns": columns, "du_bytes": du_bytes(Path(spec["folder"]))}


TEXT_INDEX = "INDEX ix_text lowerUTF8(ifNull(description, '')) TYPE ngrambf_v1(3, 8192, 3, 0) GRANULARITY 1"


def text_index(spec: dict) -> dict:
    """Does a text skip index pay? On a copy of a folder: the store's search (an OR over six
    Nullable columns) and a search of the indexed expression alone, for a common word and a
    rare one (median of 3 runs after one, the condition cache off), timed before and after adding and materialising an ngram bloom filter on
    ``lowerUTF8(ifNull(description, ''))``."""
    from audit_analytics.engines.store import open_store
    from audit_analytics.filters import Filter, sql_where

    store = open_store(f"chdb://{spec['folder']}")
    conn = store.connection
    session = conn.session
    target = "audit.audit_events"
    # in the demo's descriptions (10M base): "pricing" is in 1.5 % of rows and "disable" in 0.2 %,
    # both in every granule; "started" in 0.005 %, all in 2 of 1,229 granules (a story)
    words = {"common": "pricing", "spread": "disable", "clustered": "started"}

    def store_sql(word: str) -> tuple[str, dict]:
        import sqlalchemy as sa

        from audit_analytics.engines.clickhouse import compile_clickhouse

        t = store.table
        return compile_clickhouse(
            sa.select(sa.func.count()).select_from(t).where(sql_where(Filter(query=word), t))
        )

    def measure(label: str) -> dict:
        out = {}
        for kind, word in words.items():
            queries = {
                "store_search": store_sql(word),
                "description_only": (
                    f"SELECT count() FROM {target} WHERE lowerUTF8(ifNull(description, '')) LIKE {{w:String}}",  # noqa: S608
                    {"w": f"%{word}%"},
                ),
            }
            for name, (sql, params) in queries.items():
                runs, rows, count = [], 0, None
                for _ in range(4):
                    t0 = time.perf_counter()
                    # ClickHouse's query condition cache (on by default) would remember, from the
                    # first run, the granules where the condition was false: off, to see the index
                    result = session.query(
                        sql + " SETTINGS use_query_condition_cache = 0", "CSV", params=params
                    )
                    runs.append(time.perf_counter() - t0)
                    rows, count = result.storage_rows_read(), int(result.bytes().decode().strip() or 0)
                out[f"{name} {kind} ({word})"] = {**stats(runs[1:]), "rows_read": rows, "count": count}
                print(
                    f"  {label} {name} {kind} {word}: {statistics.median(runs[1:]):.3f} s, {rows:,} rows read",
                    flush=True,
                )
        return out

    before = measure("without index")
    t0 = time.perf_counter()
    conn.command(f"ALTER TABLE {target} ADD {TEXT_INDEX}")
    conn.command(f"ALTER TABLE {target} MATERIALIZE INDEX ix_text SETTINGS mutations_sync = 2")
    built = time.perf_counter() - t0
    size = conn.query(
        "SELECT sum(data_compressed_bytes) AS bytes FROM system.data_skipping_indices "
        "WHERE database = 'audit' AND name = 'ix_text'"
    ).to_pylist()[0]["bytes"]
    after = measure("with index")
    store.close()
    return {
        "index": TEXT_INDEX,
        "words": words,
        "build_s": round(built, 2),
        "index_bytes": size,
        "without_index": before,
        "with_index": after,
    }


def run_text_index(args, cache: Path, work: Path) -> dict:
    """The text-index experiment on a throwaway copy of the big folder (or the base)."""
    source = cache / (f"chdb-base-{args.base_rows}" if args.skip_100m else f"chdb-big-{args.rows}")
    copy = cache / f"text-index-{source.name}"
    shutil.rmtree(copy, ignore_errors=True)
    t0 = time.perf_counter()
    shutil.copytree(source, copy, symlinks=True)
    copied = time.perf_counter() - t0
    try:
        answer = child("text-index", {"work": str(work), "folder": str(copy), "store": "text-index"})
    finally:
        shutil.rmtree(copy, ignore_errors=True)
    return {"folder": source.name, "copy_s": round(copied, 1), **answer}


CHILDREN = {
    "build": build_base,
    "replicate": replicate,
    "fill-postgres": fill_postgres,
    "run": run_steps,
    "app": run_app,
    "du": du_child,
    "text-index": text_index,
}


def run_child(phase: str, spec_path: str, out: str) -> int:
    spec = json.loads(Path(spec_path).read_text())
    load_before = os.getloadavg()
    started = time.perf_counter()
    answer = CHILDREN[phase](spec)
    answer.update(
        {
            "wall_s": round(time.perf_counter() - started, 2),
            "peak_rss_mb": round(peak_mb(), 1),
            "load_before": load_before,
            "load_after": os.getloadavg(),
        }
    )
    Path(out).write_text(json.dumps(answer, indent=2, default=str) + "\n")
    return 0


# --------------------------------------------------------------------------- the run


def base_sqlite(args, cache: Path) -> Path:
    """The base: the given SQLite file, or demo events generated into one (small sizes)."""
    if args.base_sqlite:
        return Path(args.base_sqlite)
    path = cache / f"base-{args.base_rows}.db"
    if not path.exists():
        from audit_analytics.demo.generate import generate
        from audit_analytics.engines.store import open_store

        store = open_store(f"sqlite:///{path}")
        store.append(generate(args.base_rows, seed=42, now=datetime(2026, 12, 3, 9, 50, tzinfo=UTC)).events)
        store.engine.dispose()
    return path


def base_facts(sqlite: Path) -> dict:
    """Rows, time span, busy users and networks of the base (for the qualified searches)."""
    import sqlite3

    db = sqlite3.connect(f"file:{sqlite}?mode=ro", uri=True)
    rows = db.execute("SELECT count(*), min(time), max(time) FROM audit_events").fetchone()
    users = [
        r[0]
        for r in db.execute(
            "SELECT actor FROM audit_events WHERE type = 'auth' AND result = 'failed' AND actor IS NOT NULL "
            "AND time >= (SELECT datetime(max(time), '-3 days') FROM audit_events) "
            "GROUP BY actor ORDER BY count(*) DESC LIMIT 6"
        )
    ]
    db.close()
    return {"rows": rows[0], "oldest": rows[1], "newest": rows[2], "users": users}


def build(args, cache: Path, sqlite: Path, work: Path) -> dict:
    """The chDB folders (cached: built once, reused while their marker file is there)."""
    built: dict = {}
    base = cache / f"chdb-base-{args.base_rows}"
    marker = cache / f"build-base-{args.base_rows}.json"
    if not marker.exists():
        shutil.rmtree(base, ignore_errors=True)
        answer = child(
            "build", {"work": str(work), "folder": str(base), "sqlite": str(sqlite), "store": "base"}
        )
        if "error" in answer:
            raise SystemExit(f"building {base}: {answer['error']}")
        marker.write_text(json.dumps(answer, indent=2) + "\n")
    built["base"] = {"folder": str(base), **json.loads(marker.read_text())}
    if args.skip_100m:
        return built
    big = cache / f"chdb-big-{args.rows}"
    marker = cache / f"build-big-{args.rows}.json"
    if not marker.exists():
        shutil.rmtree(big, ignore_errors=True)
        t0 = time.perf_counter()
        shutil.copytree(base, big, symlinks=True)  # chDB's folders link to store/
        (cache / f"copy-{args.rows}.json").write_text(json.dumps({"copy_s": time.perf_counter() - t0}))
        copies = args.rows // args.base_rows
        answer = child("replicate", {"work": str(work), "folder": str(big), "copies": copies, "store": "big"})
        if "error" in answer:
            raise SystemExit(f"building {big}: {answer['error']}")
        marker.write_text(json.dumps(answer, indent=2) + "\n")
    copy = json.loads((cache / f"copy-{args.rows}.json").read_text())
    built["big"] = {"folder": str(big), **copy, **json.loads(marker.read_text())}
    return built


def start_postgres():
    sys.path.insert(0, str(ROOT / "tests"))
    from pg_support import ThrowawayPostgres  # tests/pg_support.py, as the tests start it

    server = ThrowawayPostgres(
        settings="-c synchronous_commit=off -c shared_buffers=512MB", prefix="aa-pg-bench-"
    )
    return server, server.start()


def agreement(stores: dict) -> dict:
    """Per step, whether the 10M stores gave the same answers (counts, rows, findings)."""

    def key(answer: dict) -> dict:
        return {k: v for k, v in answer.items() if k in ("count", "rows", "findings", "page", "first_ids")}

    verdict = {}
    steps = {s for r in stores.values() for s in r.get("steps", {}) if s in STEPS}
    for step in sorted(steps):
        answers = {
            name: r["steps"][step].get("answers") for name, r in stores.items() if step in r.get("steps", {})
        }
        answers = {n: [key(a) for a in v] for n, v in answers.items() if v}
        distinct = {json.dumps(v, sort_keys=True, default=str) for v in answers.values()}
        verdict[step] = {"agree": len(distinct) == 1, "stores": sorted(answers)}
        if len(distinct) > 1:
            verdict[step]["answers"] = answers
    return verdict


def cell(entry: dict | None) -> str:
    if not entry:
        return "–"
    if "error" in entry:
        return "error"
    return f"{entry['median_s']:.3f} ({entry['min_s']:.3f}–{entry['max_s']:.3f})"


def render(result: dict) -> str:
    """The results as Markdown: the table, the 100M goals with what bounds a miss, the data."""
    rows = result.get("rows", {})
    columns = [c for c in ("chdb-big", "chdb-base", "memory-base", "postgres-base") if c in result["stores"]]
    names = {
        "chdb-big": f"chDB {rows.get('big') or 0:,}",
        "chdb-base": f"chDB {rows.get('base') or 0:,}",
        "memory-base": f"memory {rows.get('base') or 0:,}",
        "postgres-base": f"PostgreSQL {rows.get('base') or 0:,}",
    }
    machine = result.get("machine", {})
    lines = [
        "# ClickHouse (chDB) benchmark: issue 16",
        "",
        f"Machine: {machine.get('cpus')} cores, Python {machine.get('python')}, chDB {machine.get('chdb')}. "
        f"{result.get('repeat')} timed runs after one warm-up (fewer where a step passed "
        f"{result.get('budget')} s: see n in the JSON); seconds, median (min–max). Generated by "
        "`bench/bench_clickhouse.py`; every number below is from `clickhouse.json`.",
        "",
        "| step | " + " | ".join(names[c] for c in columns) + " | goal at 100M |",
        "|---|" + "---|" * (len(columns) + 1),
    ]
    for step, title in {**STEPS, **APP_STEPS}.items():
        row = [cell(result["stores"][c].get("steps", {}).get(step)) for c in columns]
        goal = GOALS.get(step)
        verdict = ""
        big = result["stores"].get("chdb-big", {}).get("steps", {}).get(step)
        if goal is not None:
            verdict = f"≤ {goal} s"
            if big and "median_s" in big:
                verdict += " met" if big["median_s"] <= goal else " **missed**"
        lines.append(f"| {title} | " + " | ".join(row) + f" | {verdict} |")
    big = result["stores"].get("chdb-big", {})
    if big.get("steps"):
        cpus = machine.get("cpus") or 1
        lines += [
            "",
            "## What ClickHouse read at 100M (one more run of each step, chDB's counters)",
            "",
            "| step | statements | rows read | bytes read (uncompressed) | ClickHouse s | rows/s per core | MB/s per core |",
            "|---|---|---|---|---|---|---|",
        ]
        for step, entry in big["steps"].items():
            scan = entry.get("scan")
            if not scan:
                continue
            s = scan["clickhouse_s"] or 1e-9
            lines.append(
                f"| {step} | {scan['statements']} | {scan['rows_read']:,} | {scan['bytes_read'] / 1e9:.2f} GB | "
                f"{s:.2f} | {scan['rows_read'] / s / cpus / 1e6:.1f} M | {scan['bytes_read'] / s / cpus / 1e6:.0f} |"
            )
    lines += ["", "## Memory and load", ""]
    for c in columns:
        r = result["stores"][c]
        app = result.get("apps", {}).get(c, {})
        crash = f"; the app's process exited with {app['exit_code']}" if app.get("exit_code") else ""
        lines.append(
            f"- {names[c]}: peak RSS {r.get('peak_rss_mb')} MB running the steps (engine opened in "
            f"{r.get('open_s')} s); {app.get('peak_rss_mb', '–')} MB running the Audit Log page{crash}; "
            f"load average {_load(r.get('load_before'))} → {_load(r.get('load_after'))} (steps), "
            f"{_load(app.get('load_before'))} → {_load(app.get('load_after'))} (app)"
        )
    data = result.get("data", {})
    built = data.get("built", {})
    lines += ["", "## Data", ""]
    if data.get("base"):
        b = data["base"]
        lines.append(
            f"- base: {b['rows']:,} demo events from {data['base_sqlite']}, {b['oldest']} to {b['newest']}"
        )
    for size in ("base", "big"):
        entry = built.get(size)
        if not entry:
            continue
        settled = entry.get("settled", {})
        lines.append(
            f"- chDB {entry.get('rows', 0):,} ({size}): "
            + ", ".join(
                f"{k} {entry[k]}"
                for k in ("insert_s", "optimize_s", "seal_chain_s", "copy_s", "wall_s", "span_days_base")
                if k in entry
            )
            + (
                f"; on disk {settled['du_bytes'] / 1e9:.2f} GB (du, chain included), "
                f"{settled['active']['bytes'] / 1e9:.2f} GB of active parts"
                if settled.get("active")
                else ""
            )
        )
    fill = data.get("postgres_fill")
    if fill:
        lines.append(
            f"- PostgreSQL: {fill.get('rows', 0):,} rows in {fill.get('insert_s')} s "
            f"(+ VACUUM ANALYZE, total {fill.get('total_s')} s), database {(fill.get('bytes') or 0) / 1e9:.2f} GB"
            + (f"; error: {fill['error']}" if fill.get("error") else "")
        )
    if result.get("agreement"):
        lines += ["", "## Agreement of the base-size stores", ""]
        for step, v in result["agreement"].items():
            lines.append(f"- {step}: {'agree' if v['agree'] else 'DISAGREE'} ({', '.join(v['stores'])})")
    experiment = result.get("text_index")
    if experiment and "with_index" in experiment:
        lines += [
            "",
            f"## Text skip index (on a copy of {experiment['folder']})",
            "",
            f"`{experiment['index']}`: built in {experiment['build_s']} s, "
            f"{(experiment['index_bytes'] or 0) / 1e6:.0f} MB. Count queries, median of 3 runs:",
            "",
            "| query | without index | rows read | with index | rows read |",
            "|---|---|---|---|---|",
        ]
        for name, before in experiment["without_index"].items():
            after = experiment["with_index"].get(name, {})
            lines.append(
                f"| {name} | {before['median_s']:.3f} s | {before['rows_read']:,} | "
                f"{after.get('median_s', 0):.3f} s | {after.get('rows_read', 0):,} |"
            )
    return "\n".join(lines) + "\n"


def _load(value) -> str:
    return "–" if not value else "/".join(f"{v:.1f}" for v in value)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000_000, help="events in the big chDB folder")
    parser.add_argument(
        "--base-rows", type=int, default=10_000_000, help="events of the base (the 10M stores)"
    )
    parser.add_argument("--base-sqlite", help="an SQLite file of the store holding --base-rows demo events")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--budget", type=float, default=150.0, help="seconds a step may take before it stops repeating"
    )
    parser.add_argument("--cache-dir", default=str(ROOT / "bench" / ".cache" / "clickhouse"))
    parser.add_argument("--skip-100m", action="store_true", help="no big folder: the base-size stores only")
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--skip-app", action="store_true", help="no AppTest runs")
    parser.add_argument(
        "--memory-limit", type=int, default=None, help="AUDIT_MEMORY_LIMIT (default the app's)"
    )
    parser.add_argument("--quick", action="store_true", help="smoke test: 3,000 base events x 3, 2 runs")
    parser.add_argument(
        "--render", action="store_true", help="only rewrite the Markdown from --output's JSON"
    )
    parser.add_argument(
        "--text-index",
        action="store_true",
        help="only the text skip-index experiment (on a copy), merged into an existing --output",
    )
    parser.add_argument("--output", default=str(ROOT / "bench" / "results" / "clickhouse.json"))
    args = parser.parse_args(argv)
    if args.quick:
        args.base_rows, args.rows, args.repeat = 3_000, 9_000, 2
        args.memory_limit = args.memory_limit or 1_000
    from audit_analytics.engines.sql import memory_limit

    limit = args.memory_limit or memory_limit()
    cache = Path(args.cache_dir)
    work = cache / "work"
    work.mkdir(parents=True, exist_ok=True)
    if args.render:
        write(json.loads(Path(args.output).read_text()), args.output)
        return 0
    if args.text_index:
        out = Path(args.output)
        result = json.loads(out.read_text()) if out.exists() else {"stores": {}, "apps": {}}
        result["text_index"] = run_text_index(args, cache, work)
        write(result, args.output)
        return 0
    sqlite = base_sqlite(args, cache)
    facts = base_facts(sqlite)
    started = time.perf_counter()
    built = build(args, cache, sqlite, work)
    newest = datetime.fromisoformat(facts["newest"]).replace(tzinfo=UTC)
    common = {
        "work": str(work),
        "repeat": args.repeat,
        "budget": args.budget,
        "memory_limit": limit,
        "newest": newest.isoformat(),
        "now": (newest + timedelta(hours=1)).isoformat(),
        "users": facts["users"] or ["root"],
        "nets": ["10.20.0.0/16", "10.30.0.0/16", "192.168.0.0/16", "10.10.0.0/16"],
    }
    runs: list[tuple[str, str, str]] = []  # (name, store kind, url)
    if not args.skip_100m:
        runs.append(("chdb-big", "chdb", f"chdb://{built['big']['folder']}"))
    runs.append(("chdb-base", "chdb", f"chdb://{built['base']['folder']}"))
    memory_copy = None
    if not args.skip_memory:
        # the app writes its index snapshot beside the database file: a copy, not the original
        memory_copy = cache / f"memory-{args.base_rows}.db"
        if not memory_copy.exists() or memory_copy.stat().st_size != sqlite.stat().st_size:
            shutil.copyfile(sqlite, memory_copy)
        runs.append(("memory-base", "memory", f"sqlite:///{memory_copy}"))
    if not args.skip_postgres:
        runs.append(("postgres-base", "postgres", ""))  # started and filled when its turn comes
    server = None
    postgres: dict = {}
    result: dict = {
        "issue": 16,
        "quick": args.quick,
        "repeat": args.repeat,
        "rows": {"big": None if args.skip_100m else args.rows, "base": args.base_rows},
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "chdb": _chdb_version(),
            "load_at_start": os.getloadavg(),
        },
        "data": {"base_sqlite": str(sqlite), "base": facts, "built": built, "postgres_fill": postgres},
        "memory_limit": limit,
        "workload": {
            "words": WORDS[: args.repeat + 1],
            "users": common["users"],
            "nets": common["nets"],
            "now": common["now"],
        },
        "stores": {},
        "apps": {},
    }
    try:
        for name, kind, url in runs:
            if kind == "postgres":
                try:
                    server, url = start_postgres()
                except Exception as exc:  # no PostgreSQL here: the other stores still ran
                    postgres.update(error=f"{type(exc).__name__}: {exc}")
                    continue
                print("postgres: filling", flush=True)
                postgres.update(
                    child(
                        "fill-postgres", {"work": str(work), "url": url, "sqlite": str(sqlite), "store": "pg"}
                    )
                )
            print(f"{name}: steps", flush=True)
            size = "big" if name.endswith("big") else "base"
            spec = {**common, "store": kind, "size": size, "url": url}
            result["stores"][name] = child("run", spec)
            if not args.skip_app:
                print(f"{name}: app", flush=True)
                env = {
                    "AUDIT_DB_URL": url,
                    "AUDIT_MEMORY_LIMIT": str(limit),
                    # the app keeps an index snapshot of a server store under ./data: not here
                    "AUDIT_SNAPSHOT_DIR": str(work / "snapshots"),
                }
                if kind == "memory":
                    env.update({"AUDIT_ENGINE": "memory", "AUDIT_MEMORY_LIMIT": str(10**12)})
                result["apps"][name] = child("app", {**spec, "store": f"app-{kind}"}, env=env)
                for step, entry in result["apps"][name].get("steps", {}).items():
                    result["stores"][name].setdefault("steps", {})[step] = entry
            write(result, args.output)
    finally:
        if server is not None:
            server.close()
    for size in ("big", "base"):
        if size in built:
            result["data"]["built"][size]["settled"] = child(
                "du", {"work": str(work), "folder": built[size]["folder"], "store": size}
            )
    result["agreement"] = agreement({n: r for n, r in result["stores"].items() if n.endswith("base")})
    result["wall_s"] = round(time.perf_counter() - started, 1)
    write(result, args.output)
    print(render(result))
    return 0


def _chdb_version() -> str | None:
    try:
        import chdb

        return str(chdb.__version__)
    except ImportError:
        return None


def write(result: dict, output: str) -> None:
    out = Path(output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    out.with_suffix(".md").write_text(render(result))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        raise SystemExit(run_child(sys.argv[2], sys.argv[4], sys.argv[6]))
    raise SystemExit(main())

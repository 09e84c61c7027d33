"""Cold start: from starting the app's process to the first Audit Log page drawn after sign-in,
in Chromium, without and with a current index snapshot (engines/snapshot.py).

    .venv/bin/python bench/bench_coldstart.py --rows 1000000 --repeat 3 [--rows 10000000]

The app runs with ``AUDIT_ENGINE=memory`` (at 10,000,000 events the default ``auto`` would
push every query down to the database and hold nothing). For each size, an SQLite file of demo events (``bench_pages.build_db``: ``generate(rows,
seed=42)``, cached) is copied once to a work folder; then ``--repeat`` times, alternating:

* **cold**: the snapshot files are deleted, the app is started (``streamlit run app.py``,
  ``tests/browser_support.AppServer``), Chromium opens it as soon as it answers its health
  check, signs in, and waits until the Audit Log's table shows rows; the app loads the table
  (in the background from the sign-in screen on) and then writes a snapshot; the run waits
  for the snapshot before stopping the app;
* **warm**: the same with that snapshot in place: the app restores it, and takes in the
  sign-in events stored since.

The run also times the same steps on a Streamlit app of a few lines that holds no data
(``FLOOR_APP``): Streamlit's and Chromium's own share, which no app can go below.

Each run reports: process start to health check (``server_up_s``), to the sign-in form drawn
(``form_s``), to the first data drawn after sign-in (``first_data_s``, the goal's figure:
≤ 1 s at 1,000,000 and ≤ 3 s at 10,000,000 warm), the sign-in click to the table
(``after_sign_in_s``), the app's peak RSS, and the app's own log lines about loading or
restoring. The sign-in is typed by the benchmark at once; a person takes seconds, during
which the app already loads (cold) or restores (warm) in the background.

Results: ``bench/results/coldstart.json`` and ``coldstart.md`` (a run of some sizes replaces
those sizes and keeps the others).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

import bench_pages  # noqa: E402 - the cached demo database, the browser session and sign-in
from timing import PeakRss  # noqa: E402

DEFAULT_CACHE = bench_pages.DEFAULT_CACHE
RESULTS = ROOT / "bench" / "results"


def _snapshot_files(db: Path) -> list[Path]:
    return sorted(db.parent.glob(f"{db.name}.snapshot*"))


def one_run(db: Path, variant: str, *, timeout_s: float) -> dict:
    from browser_support import AppServer, chromium_executable
    from playwright.sync_api import sync_playwright

    if variant == "cold":
        for path in _snapshot_files(db):
            path.unlink()
    elif not (db.parent / f"{db.name}.snapshot.json").is_file():
        raise RuntimeError("a warm run needs the snapshot a cold run writes")
    chromium = chromium_executable()
    if chromium is None:
        raise RuntimeError("no Chromium (apt-get install chromium; never `playwright install`)")
    with sync_playwright() as pw:  # the browser is up before the app starts: not timed
        browser = pw.chromium.launch(executable_path=chromium, args=bench_pages.LAUNCH_ARGS)
        server = AppServer(f"sqlite:///{db}")
        sampler: PeakRss | None = None
        try:
            server.start(timeout=600)
            up = time.perf_counter() - server.spawned_at
            assert server.process is not None
            sampler = PeakRss(server.process.pid)
            sampler.start()
            with bench_pages._session(browser, timeout_s) as (page, socket):
                from browser_support import PASSWORD, USER

                page.goto(server.base)
                page.get_by_role("textbox", name="User name").wait_for()
                form = time.perf_counter() - server.spawned_at
                page.get_by_role("textbox", name="User name").fill(USER)
                page.get_by_role("textbox", name="Password").fill(PASSWORD)
                clicked = time.perf_counter()
                page.get_by_role("button", name="Sign in").click()
                bench_pages._wait_drawn(page, "Audit Log", ["last 7 days"], table=True, timeout_s=timeout_s)
                drawn = time.perf_counter()
                caption = bench_pages._caption(page)
            if variant == "cold":  # the app writes its snapshot after the load: wait for it
                deadline = time.monotonic() + timeout_s
                while "wrote the snapshot" not in server.log() and time.monotonic() < deadline:
                    time.sleep(0.2)
            log = server.log()
        finally:
            if sampler is not None:
                sampler.running = False
            server.stop()
            browser.close()
    notes = [
        line.split(":", 2)[-1].strip()
        for line in log.splitlines()
        if "snapshot" in line or "audit table" in line
    ]
    return {
        "variant": variant,
        "server_up_s": round(up, 3),
        "form_s": round(form, 3),
        "first_data_s": round(drawn - server.spawned_at, 3),
        "after_sign_in_s": round(drawn - clicked, 3),
        "peak_rss_mb": round(sampler.peak if sampler else 0.0, 1),
        "caption": caption,
        "server_notes": notes,
        "errors": log[log.index("Traceback") :][:3000] if "Traceback" in log else "",
    }


FLOOR_APP = """
import streamlit as st

if st.session_state.get("in"):
    st.title("Audit Log")
    st.dataframe({"n": list(range(100))}, key="t")
else:
    st.text_input("User name")
    st.text_input("Password", type="password")
    if st.button("Sign in"):
        st.session_state["in"] = True
        st.rerun()
"""


def floor_run(*, timeout_s: float) -> dict:
    """The same steps on a Streamlit app that holds no data and imports nothing of ours (a
    sign-in form, then a 100-row table): what Streamlit and Chromium take on this machine
    whatever an app does. The app's own figures cannot go below these."""
    import subprocess
    import urllib.request

    from browser_support import _free_port, chromium_executable
    from playwright.sync_api import sync_playwright

    folder = Path(tempfile.mkdtemp(prefix="aa-floor-"))
    (folder / "app.py").write_text(FLOOR_APP)
    port = _free_port()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_executable(), args=bench_pages.LAUNCH_ARGS)
        spawned = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
             "--server.headless", "true", "--browser.gatherUsageStats", "false",
             "--server.fileWatcherType", "none"],
            cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + timeout_s
            while True:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1):  # noqa: S310
                        break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
            up = time.perf_counter() - spawned
            page = browser.new_context().new_page()
            page.goto(f"http://127.0.0.1:{port}/")
            page.get_by_role("textbox", name="User name").wait_for()
            form = time.perf_counter() - spawned
            clicked = time.perf_counter()
            page.get_by_role("button", name="Sign in").click()
            page.get_by_test_id("stDataFrame").locator("table[role=grid] td").first.wait_for(state="attached")
            drawn = time.perf_counter()
        finally:
            process.terminate()
            process.wait(timeout=10)
            browser.close()
            shutil.rmtree(folder, ignore_errors=True)
    return {
        "variant": "floor",
        "server_up_s": round(up, 3),
        "form_s": round(form, 3),
        "first_data_s": round(drawn - spawned, 3),
        "after_sign_in_s": round(drawn - clicked, 3),
    }


def _stats(values: list[float]) -> dict:
    return {
        "median": round(statistics.median(values), 3),
        "min": round(min(values), 3),
        "max": round(max(values), 3),
    }


def run_size(rows: int, *, repeat: int, cache_dir: Path, timeout_s: float) -> dict:
    source = bench_pages.build_db(rows, cache_dir)
    work = Path(tempfile.mkdtemp(prefix="aa-coldstart-"))
    try:
        db = work / "audit.db"
        shutil.copy(source, db)
        runs = []
        for rep in range(repeat):
            for variant in ("cold", "warm"):
                result = one_run(db, variant, timeout_s=timeout_s)
                result["repetition"] = rep + 1
                result["load_average"] = round(os.getloadavg()[0], 2)
                runs.append(result)
                print(
                    f"{rows:,} {variant}: first data {result['first_data_s']:.2f} s (server up "
                    f"{result['server_up_s']:.2f}, form {result['form_s']:.2f}, after sign-in "
                    f"{result['after_sign_in_s']:.2f}), peak {result['peak_rss_mb']:.0f} MB",
                    flush=True,
                )
        snapshot_mb = sum(p.stat().st_size for p in _snapshot_files(db)) / 2**20
    finally:
        shutil.rmtree(work, ignore_errors=True)
    summary = {}
    for variant in ("cold", "warm"):
        mine = [r for r in runs if r["variant"] == variant]
        summary[variant] = {
            key: _stats([r[key] for r in mine])
            for key in ("first_data_s", "server_up_s", "form_s", "after_sign_in_s", "peak_rss_mb")
        }
    return {"rows": rows, "runs": runs, "summary": summary, "snapshot_mb": round(snapshot_mb, 1)}


def render_md(result: dict) -> str:
    lines = [
        "# Cold start: process start to the first Audit Log page drawn after sign-in",
        "",
        f"{result['when']} · {result['machine']['cpus']} cores · `bench/bench_coldstart.py` · "
        f"median (min–max) of {result['repeat']} runs each; cold = no snapshot, warm = the "
        "snapshot the cold run wrote (plus the sign-in events stored since).",
        "",
        "| events | start | first data after sign-in | server up | sign-in form | sign-in → table | peak RSS MB | snapshot MB |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]

    def cell(s: dict) -> str:
        return f"{s['median']:.2f} ({s['min']:.2f}–{s['max']:.2f})"

    for size in result["sizes"]:
        for variant in ("cold", "warm"):
            s = size["summary"][variant]
            lines.append(
                f"| {size['rows']:,} | {variant} | {cell(s['first_data_s'])} | {cell(s['server_up_s'])} | "
                f"{cell(s['form_s'])} | {cell(s['after_sign_in_s'])} | {s['peak_rss_mb']['max']:.0f} | "
                f"{size['snapshot_mb'] if variant == 'warm' else '–'} |"
            )
    floor = result.get("floor")
    if floor:
        s = floor["summary"]
        lines.append(
            f"| (none) | Streamlit alone | {cell(s['first_data_s'])} | {cell(s['server_up_s'])} | "
            f"{cell(s['form_s'])} | {cell(s['after_sign_in_s'])} | – | – |"
        )
    lines += [
        "",
        "Times in seconds from the app's process start, except *sign-in → table* (from the click).",
        "*Streamlit alone* is the floor: the same steps on an app of a few lines that holds no data"
        " (a sign-in form, then a 100-row table; `FLOOR_APP`), measured in the same run.",
        "",
    ]
    for size in result["sizes"]:
        lines.append(f"App log lines at {size['rows']:,} events (last run of each kind):")
        lines.append("")
        for variant in ("cold", "warm"):
            last = [r for r in size["runs"] if r["variant"] == variant][-1]
            for note in last["server_notes"]:
                lines.append(f"- {variant}: {note}")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, action="append", help="events (repeatable; default 1,000,000)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per wait")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--output", type=Path, default=RESULTS / "coldstart.json")
    args = parser.parse_args(argv)
    # the in-memory engine at every size (above AUDIT_MEMORY_LIMIT, 5,000,000 by default, the
    # app would push every query down to the database and hold nothing to snapshot)
    engine = os.environ.get("AUDIT_ENGINE")
    os.environ["AUDIT_ENGINE"] = "memory"  # the app process inherits it (tests/browser_support)
    try:
        sizes = [
            run_size(rows, repeat=args.repeat, cache_dir=args.cache_dir, timeout_s=args.timeout)
            for rows in (args.rows or [1_000_000])
        ]
    finally:  # the smoke test runs this in the test process: leave its environment as it was
        if engine is None:
            os.environ.pop("AUDIT_ENGINE", None)
        else:
            os.environ["AUDIT_ENGINE"] = engine
    floor_runs = [floor_run(timeout_s=args.timeout) for _ in range(args.repeat)]
    floor = {
        "runs": floor_runs,
        "summary": {
            key: _stats([r[key] for r in floor_runs])
            for key in ("first_data_s", "server_up_s", "form_s", "after_sign_in_s")
        },
    }
    if args.output.is_file():  # a run of some sizes keeps the others' results
        measured = {size["rows"] for size in sizes}
        earlier = json.loads(args.output.read_text()).get("sizes", [])
        sizes = sorted([s for s in earlier if s["rows"] not in measured] + sizes, key=lambda s: s["rows"])
    result = {
        "when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "machine": platform.machine(),
        },
        "repeat": args.repeat,
        "floor": floor,
        "sizes": sizes,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=1, default=str))
    args.output.with_suffix(".md").write_text(render_md(result))
    print(render_md(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

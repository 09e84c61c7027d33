"""Load: one app process, many concurrent browser sessions filtering and searching.

    python bench/bench_load.py [--rows 1000000] [--sessions 20] [--interactions 12]
    python bench/bench_load.py --import-rows 1000000      # peak RSS of importing a JSONL file

Starts ``streamlit run app.py`` on a loopback port against a copy of the cached demo database
(``bench/.cache/explorer-N.db``, built as bench_explorer.py builds it; the copy keeps the
sign-in events the sessions write out of the cache), signs ``--sessions`` Chromium contexts
in (Debian's Chromium through playwright; only 127.0.0.1 is reachable), then has all of them
apply period filters and searches at once. An interaction is timed from the click (or Enter)
until the caption above the table shows the new result and the script run has finished.

Reports p50/p95/max interaction time, errors (exceptions drawn on any page), and the app
process's memory: after the first session loaded the data, at the peak, and the in-memory
size of one copy of the event frame, so "shared, not copied per session" is a number.
Results go to bench/results/load.json (and import.json for ``--import-rows``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from browser_support import PASSWORD, USER  # noqa: E402 - the account AppServer creates
from timing import PeakRss  # noqa: E402 - bench/, the benchmarks' shared helpers

CAPTION = re.compile(r"^([\d,]+) events? · ")
PERIODS = [("all", "All time", "all time"), ("30d", "Last 30 days", "last 30 days")]
SEARCHES = ["root", "action:update", "-result:done", "ip:10.0.0.0/8", "user:svc-ci", "failed"]
SIGN_IN_AT_ONCE = 3


def build_db(rows: int) -> Path:
    """The cached demo database of ``rows`` events (as bench_explorer.py builds it)."""
    from audit_analytics.demo.generate import generate
    from audit_analytics.engines.store import open_store

    cache = ROOT / "bench" / ".cache"
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"explorer-{rows}.db"
    store = open_store(f"sqlite:///{path}")
    try:
        if store.count() < rows:
            started = time.perf_counter()
            store.append(generate(rows, seed=42).events)
            print(f"built {path.name}: {rows:,} events in {time.perf_counter() - started:.1f} s", flush=True)
    finally:
        store.engine.dispose()
    return path


class App:
    """The app under load: ``tests/browser_support.AppServer`` (``streamlit run app.py`` on
    127.0.0.1 with an auditor account), plus its memory and its log at the end."""

    def __init__(self, db_url: str) -> None:
        from browser_support import AppServer

        self.server = AppServer(db_url).start()
        self.process = self.server.process
        self.url = self.server.base

    def rss_mb(self) -> float:
        import psutil

        return psutil.Process(self.process.pid).memory_info().rss / 2**20

    def stop(self) -> str:
        """End the app; -> what it printed."""
        text = self.server.log()
        self.server.stop()
        return text


def _cpu_seconds(app: App) -> tuple[float, float]:
    """CPU time used so far by (the app's process, every other process this one started:
    the browsers and playwright's driver)."""
    import psutil

    def total(proc) -> float:
        try:
            t = proc.cpu_times()
            return t.user + t.system + t.children_user + t.children_system
        except psutil.Error:
            return 0.0

    me = psutil.Process()
    server = total(psutil.Process(app.process.pid))
    others = [p for p in me.children(recursive=True) if p.pid != app.process.pid]
    return server, sum(total(p) for p in others)


async def _loopback_only(route) -> None:
    url = route.request.url
    if urlsplit(url).hostname in ("127.0.0.1", "localhost") or url.startswith(("data:", "blob:")):
        await route.continue_()
    else:
        await route.abort()


async def _caption_text(page) -> str:
    captions = page.get_by_test_id("stCaptionContainer")
    for text in await captions.all_inner_texts():
        if CAPTION.match(text):
            return text
    return ""


WAIT_JS = """([pattern, pieces]) => {
    const app = document.querySelector('[data-testid=stApp]');
    if (!app || app.getAttribute('data-test-script-state') !== 'notRunning') return false;
    const re = new RegExp(pattern);
    for (const el of document.querySelectorAll('[data-testid=stCaptionContainer]')) {
        const text = el.innerText;
        if (re.test(text)) return pieces.every((p) => text.includes(p));
    }
    return false;
}"""


async def _wait_for(page, pieces: list[str], timeout_s: float) -> None:
    """Until the caption holds every piece and no script run is in progress. The check runs
    inside the page every 50 ms (polling from here, a round trip per check for each of 20
    sessions, cost the machine more than the app did)."""
    try:
        await page.wait_for_function(
            WAIT_JS, arg=[CAPTION.pattern, [p for p in pieces if p]], polling=50, timeout=timeout_s * 1000
        )
    except Exception as exc:
        if "Timeout" not in type(exc).__name__ and "Timeout" not in str(exc):
            raise
        raise TimeoutError(
            f"the caption never showed {pieces}; it says {await _caption_text(page)!r}"
        ) from None


async def _where(page) -> str:
    """Where a failed session stood: its address, search box and script state."""
    try:
        box = page.get_by_role("searchbox", name="Search")
        search = await box.input_value(timeout=2_000) if await box.count() else None
        state = await page.locator("[data-testid=stApp]").get_attribute(
            "data-test-script-state", timeout=2_000
        )
        return f" (at {page.url}, search box {search!r}, script {state})"
    except Exception as exc:  # the page itself is gone
        return f" (page unavailable: {type(exc).__name__})"


async def _sign_in(page, base: str, timeout_s: float) -> None:
    await page.goto(base)
    await page.get_by_role("textbox", name="User name").fill(USER)
    await page.get_by_role("textbox", name="Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await _wait_for(page, ["last 7 days"], timeout_s)


async def _session(
    browser, base: str, number: int, plan: dict, start: asyncio.Event, gate: asyncio.Semaphore, out: dict
) -> None:
    context = await browser.new_context(viewport={"width": 1500, "height": 1100}, timezone_id="UTC")
    context.set_default_timeout(plan["timeout_s"] * 1000)
    await context.route("**/*", _loopback_only)
    page = await context.new_page()
    # the websocket's messages as playwright's driver sees them: from the request of a rerun
    # leaving the browser to the last message of the answer is the server's part of an
    # interaction, without the rendering before and after it
    frames: list[tuple[float, bool]] = []

    def watch(ws) -> None:
        ws.on("framesent", lambda _: frames.append((time.perf_counter(), True)))
        ws.on("framereceived", lambda _: frames.append((time.perf_counter(), False)))

    page.on("websocket", watch)
    try:
        async with gate:  # people arrive over a while: a few page loads at a time, not 20 at once
            await _sign_in(page, base, plan["timeout_s"])
        out["signed_in"] += 1
        await start.wait()
        sidebar = page.get_by_test_id("stSidebar")
        box = page.get_by_role("searchbox", name="Search")
        search = ""
        period = "last 7 days"
        pause = random.Random(number)
        for i in range(plan["interactions"]):
            if plan["think_s"]:  # a reader looks at the result before the next change
                await asyncio.sleep(pause.uniform(0.5, 1.5) * plan["think_s"])
            if i % 2 == 0:
                _, label, caption = PERIODS[(i // 2) % len(PERIODS)]
                await (
                    sidebar.get_by_test_id("stRadio")
                    .filter(has_text="Period")
                    .get_by_text(label, exact=True)
                    .click()
                )
                started = time.perf_counter()
                await sidebar.get_by_role("button", name="Apply").click()
                period = caption
                kind = "filter"
            else:
                search = SEARCHES[(i // 2 + number) % len(SEARCHES)]
                await box.fill(search)
                started = time.perf_counter()
                await box.press("Enter")
                kind = "search"
            await _wait_for(page, [period, f"matching {search}" if search else ""], plan["timeout_s"])
            ended = time.perf_counter()
            out["timings"].append((kind, ended - started, started, number))
            sent = next((t for t, out_going in frames if out_going and started <= t <= ended), None)
            answered = [
                t for t, out_going in frames if not out_going and sent is not None and sent <= t <= ended
            ]
            if answered:
                out["server_timings"].append(answered[-1] - sent)
            frames.clear()
        errors = await page.get_by_test_id("stException").all_inner_texts()
        out["errors"].extend(errors)
    except Exception as exc:
        out["errors"].append(f"session {number}: {type(exc).__name__}: {str(exc)[:300]}{await _where(page)}")
    finally:
        await context.close()


async def _drive(base: str, chromium: str, sessions: int, plan: dict, app: App, out: dict) -> None:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=chromium, args=["--no-sandbox", "--disable-gpu", "--disable-quic"]
        )
        try:
            start, gate = asyncio.Event(), asyncio.Semaphore(SIGN_IN_AT_ONCE)
            # the first session loads the data; its memory is the "one copy" baseline
            first = asyncio.create_task(_session(browser, base, 0, plan, start, gate, out))
            while out["signed_in"] < 1 and not first.done():
                await asyncio.sleep(0.1)
            out["rss_one_session_mb"] = app.rss_mb()
            rest = [
                asyncio.create_task(_session(browser, base, n, plan, start, gate, out))
                for n in range(1, sessions)
            ]
            tasks = [first, *rest]
            # a session whose sign-in failed is done: start without it rather than wait forever
            while out["signed_in"] + sum(t.done() for t in tasks) < sessions:
                await asyncio.sleep(0.1)
            out["rss_all_signed_in_mb"] = app.rss_mb()
            started, cpu = time.perf_counter(), _cpu_seconds(app)
            start.set()
            await asyncio.gather(*tasks)
            out["interaction_wall_s"] = time.perf_counter() - started
            # where the machine's time went while the sessions interacted: the app's process
            # (Python, the scripts) or the browsers (rendering), on the same 2 cores
            (server0, client0), (server1, client1) = cpu, _cpu_seconds(app)
            out["server_cpu_s"], out["browser_cpu_s"] = (
                round(server1 - server0, 1),
                round(client1 - client0, 1),
            )
        finally:
            await browser.close()


def frame_megabytes(db_path: Path) -> float:
    from audit_analytics.engines.store import open_store
    from audit_analytics.schema import SUMMARY_COLUMNS

    store = open_store(f"sqlite:///{db_path}")
    try:  # what the app holds in memory: the summary columns
        return store.load(columns=SUMMARY_COLUMNS).estimated_size("mb")
    finally:
        store.engine.dispose()


def run_load(
    db_path: Path, *, sessions: int, interactions: int, timeout_s: float = 60.0, think_s: float = 0.0
) -> dict:
    """Copy ``db_path``, start the app on it, drive ``sessions`` browsers; -> the numbers."""
    from browser_support import chromium_executable

    chromium = chromium_executable()
    if chromium is None:
        raise RuntimeError("no Chromium (apt-get install chromium)")
    work = Path(tempfile.mkdtemp(prefix="aa-load-"))
    try:
        db = work / "audit.db"
        shutil.copy(db_path, db)
        out: dict = {"signed_in": 0, "timings": [], "server_timings": [], "errors": []}
        app = App(f"sqlite:///{db}")
        sampler = PeakRss(app.process.pid)
        try:
            out["rss_idle_mb"] = app.rss_mb()
            sampler.start()
            plan = {"interactions": interactions, "timeout_s": timeout_s, "think_s": think_s}
            asyncio.run(_drive(app.url, chromium, sessions, plan, app, out))
            out["rss_end_mb"] = app.rss_mb()
        finally:
            sampler.running = False
            log = app.stop()
        out["rss_peak_mb"] = sampler.peak
        out["server_tracebacks"] = log.count("Traceback")
        out["full_reloads"] = log.count("reloading it (")  # audit_analytics.ui.data logs each
        if out["server_tracebacks"]:  # what went wrong, for the report (the first one)
            out["server_traceback_text"] = log[log.index("Traceback") :][:4000]
        out["frame_mb"] = frame_megabytes(db)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    samples = out.pop("timings")
    server = out.pop("server_timings")
    # request sent to last answer received, per interaction (those where both were seen)
    out["server_answer"] = _percentiles(server) | {"interactions": len(server)}
    out["sessions"], out["interactions_per_session"], out["think_s"] = sessions, interactions, think_s
    out["interactions"] = len(samples)
    out |= _percentiles([t for _, t, _, _ in samples])
    for kind in ("filter", "search"):
        out[kind] = _percentiles([t for k, t, _, _ in samples if k == kind])
    # the slowest interactions with when they started (seconds into the run) and which session:
    # slow ones at the same moment point at the server, spread ones at the machine
    first = min((s for _, _, s, _ in samples), default=0.0)
    out["slowest"] = [
        {"kind": k, "s": round(t, 3), "started_at_s": round(s - first, 1), "session": n}
        for k, t, s, n in sorted(samples, key=lambda x: -x[1])[:12]
    ]
    growth = out["rss_peak_mb"] - out["rss_one_session_mb"]
    out["growth_per_extra_session_mb"] = growth / max(sessions - 1, 1)
    return out


def _percentiles(values: list[float]) -> dict:
    if not values:
        return {}
    values = sorted(values)
    p95 = values[max(0, int(round(0.95 * len(values))) - 1)]
    return {
        "p50_s": round(statistics.median(values), 3),
        "p95_s": round(p95, 3),
        "max_s": round(values[-1], 3),
    }


IMPORT_SCRIPT = """
import json, re, sys, time
from audit_analytics.io.ingest import import_files
from audit_analytics.engines.store import open_store
store = open_store(sys.argv[2])
t = time.perf_counter()
s = import_files(store, [sys.argv[1]])
print(json.dumps({"rows_read": s.rows_read, "imported": s.imported, "rejected": s.rejected,
                  "duplicates": s.duplicates, "balanced": s.balanced, "seconds": time.perf_counter() - t,
                  "peak_rss_mb": int(re.search(r"VmHWM:\\s+(\\d+)", open("/proc/self/status").read())[1]) / 1024}))
"""


def run_import(rows: int) -> dict:
    """Peak RSS (VmHWM of a fresh process) of importing a ``rows``-row JSONL into SQLite."""
    from test_hostile_input import make_jsonl

    work = Path(tempfile.mkdtemp(prefix="aa-import-"))
    try:
        src = make_jsonl(work / "events.jsonl", rows)
        size_mb = src.stat().st_size / 2**20
        done = subprocess.run(
            [sys.executable, "-c", IMPORT_SCRIPT, str(src), f"sqlite:///{work / 'a.db'}"],
            check=True,
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        result = json.loads(done.stdout) | {"file_mb": size_mb}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--interactions", type=int, default=12)
    parser.add_argument("--timeout", type=float, default=120.0, help="per interaction, seconds")
    parser.add_argument(
        "--think",
        type=float,
        default=0.0,
        help="mean pause between a session's interactions (default 0: worst case)",
    )
    parser.add_argument("--output", default="load.json", help="file name under bench/results/")
    parser.add_argument("--import-rows", type=int, default=0, help="measure an import of N rows instead")
    args = parser.parse_args(argv)
    results = ROOT / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    machine = {"python": platform.python_version(), "cpus": os.cpu_count(), "machine": platform.machine()}
    if args.import_rows:
        result = run_import(args.import_rows) | {"machine": machine}
        (results / "import.json").write_text(json.dumps(result, indent=2) + "\n")
        print(json.dumps(result, indent=2))
        return 0
    db = build_db(args.rows)
    result = run_load(
        db, sessions=args.sessions, interactions=args.interactions, timeout_s=args.timeout, think_s=args.think
    )
    result |= {"rows": args.rows, "machine": machine}
    (results / args.output).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0 if not result["errors"] and not result["server_tracebacks"] else 1


if __name__ == "__main__":
    raise SystemExit(main())

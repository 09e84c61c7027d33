"""What one interaction costs the browser: the Audit Log page's rendering, traced in Chromium.

    .venv/bin/python bench/bench_render.py [--rows 1000000] [--interactions 20] [--kind mixed]

Under load (bench_load.py) the 20 browsers, not the app, use most of the 2 cores, so a lighter
page is what moves the p95. This is the instrument for that: one session signs in, then the
same period changes and searches as bench_load.py are traced (Chromium's timeline); the result
is the renderer main thread's busy time per interaction and where it went (script, style and
layout, paint, the canvas of the table), plus the websocket messages and bytes the server sent.
``--kind`` picks the interactions: ``mixed`` (as bench_load), ``filter`` or ``search``.
Results: ``bench/results/render.json``.
"""

from __future__ import annotations

import argparse
import collections
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import bench_load  # noqa: E402 - puts tests/ on the path for browser_support

CATEGORIES = [
    "devtools.timeline",
    "disabled-by-default-devtools.timeline",
    "v8.execute",
    "blink",
    "cc",
    "toplevel",
]
GROUPS = {  # trace event names, by what the time was spent on
    "script": ("FunctionCall", "EvaluateScript", "RunMicrotasks", "V8.", "v8.", "EventDispatch", "TimerFire"),
    "style and layout": ("recalcStyle", "UpdateLayoutTree", "Layout", "performLayout", "UpdateStyle"),
    "paint and canvas": ("Paint", "Canvas", "Raster", "Commit", "PrePaint", "Composit"),
}


def _group(name: str) -> str:
    for group, markers in GROUPS.items():
        if any(m in name for m in markers):
            return group
    return "other"


def main_thread_time(events: list[dict]) -> tuple[float, dict[str, float]]:
    """Busy seconds of the renderer main thread(s) and their self time by group."""
    names = {(e["pid"], e["tid"]): e["args"]["name"] for e in events if e.get("name") == "thread_name"}
    main = {k for k, v in names.items() if v == "CrRendererMain"}
    per_thread = collections.defaultdict(list)
    for e in events:
        if e.get("ph") == "X" and "dur" in e and (e["pid"], e["tid"]) in main:
            per_thread[(e["pid"], e["tid"])].append(e)
    busy, by_group = 0.0, collections.Counter()
    for spans in per_thread.values():
        spans.sort(key=lambda e: (e["ts"], -e["dur"]))
        stack: list[dict] = []
        children = collections.Counter()
        for e in spans:
            while stack and stack[-1]["ts"] + stack[-1]["dur"] <= e["ts"]:
                stack.pop()
            if stack:
                children[id(stack[-1])] += e["dur"]
            else:
                busy += e["dur"]
            stack.append(e)
        for e in spans:
            by_group[_group(e["name"])] += max(e["dur"] - children[id(e)], 0)
    return busy / 1e6, {k: v / 1e6 for k, v in by_group.items()}


def _steps(kind: str, n: int):
    """(what, caption pieces) of each interaction, as bench_load's sessions do them."""
    searches = iter(bench_load.SEARCHES * n)
    periods = iter(bench_load.PERIODS * n)
    for i in range(n):
        if kind == "filter" or (kind == "mixed" and i % 2 == 0):
            yield "filter", next(periods)
        else:
            yield "search", next(searches)


def run(db_path: Path, *, interactions: int, kind: str, timeout_s: float = 60.0) -> dict:
    from browser_support import PASSWORD, USER, chromium_executable
    from playwright.sync_api import sync_playwright

    chromium = chromium_executable()
    if chromium is None:
        raise RuntimeError("no Chromium (apt-get install chromium)")
    work = Path(tempfile.mkdtemp(prefix="aa-render-"))
    received: list[int] = []
    try:
        db = work / "audit.db"
        shutil.copy(db_path, db)
        app = bench_load.App(f"sqlite:///{db}")
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(
                    executable_path=chromium, args=["--no-sandbox", "--disable-gpu", "--disable-quic"]
                )
                context = browser.new_context(viewport={"width": 1500, "height": 1100}, timezone_id="UTC")
                context.set_default_timeout(timeout_s * 1000)
                page = context.new_page()
                page.on(
                    "websocket", lambda ws: ws.on("framereceived", lambda data: received.append(len(data)))
                )

                def wait(pieces: list[str]) -> None:
                    page.wait_for_function(
                        bench_load.WAIT_JS, arg=[bench_load.CAPTION.pattern, pieces], polling=50
                    )

                page.goto(app.url)
                page.get_by_role("textbox", name="User name").fill(USER)
                page.get_by_role("textbox", name="Password").fill(PASSWORD)
                page.get_by_role("button", name="Sign in").click()
                wait(["last 7 days"])
                time.sleep(1.0)  # let the first render settle before tracing
                received.clear()
                sidebar = page.get_by_test_id("stSidebar")
                box = page.get_by_role("searchbox", name="Search")
                browser.start_tracing(page=page, categories=CATEGORIES)
                started = time.perf_counter()
                for what, arg in _steps(kind, interactions):
                    if what == "filter":
                        _, label, caption = arg
                        sidebar.get_by_test_id("stRadio").filter(has_text="Period").get_by_text(
                            label, exact=True
                        ).click()
                        sidebar.get_by_role("button", name="Apply").click()
                        wait([caption])
                    else:
                        box.fill(arg)
                        box.press("Enter")
                        wait([f"matching {arg}"])
                wall = time.perf_counter() - started
                trace = json.loads(browser.stop_tracing())
                browser.close()
        finally:
            app.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    events = trace["traceEvents"] if isinstance(trace, dict) else trace
    busy, by_group = main_thread_time(events)
    return {
        "interactions": interactions,
        "kind": kind,
        "wall_s_per_interaction": wall / interactions,
        "renderer_main_busy_s_per_interaction": busy / interactions,
        "renderer_main_self_s_per_interaction": {k: v / interactions for k, v in sorted(by_group.items())},
        "ws_messages_per_interaction": len(received) / interactions,
        "ws_bytes_per_interaction": sum(received) / interactions,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--interactions", type=int, default=20)
    parser.add_argument("--kind", choices=("mixed", "filter", "search"), default="mixed")
    parser.add_argument("--db", help="an existing SQLite file (default: bench_load's cached demo database)")
    parser.add_argument("--output", default=str(ROOT / "bench" / "results" / "render.json"))
    args = parser.parse_args(argv)
    db = Path(args.db) if args.db else bench_load.build_db(args.rows)
    result = run(db, interactions=args.interactions, kind=args.kind)
    result["rows"] = None if args.db else args.rows
    Path(args.output).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

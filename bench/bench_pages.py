"""Speed a user feels: every page and filter change of the app, timed in Chromium, split into
the server's part and the browser's.

    .venv/bin/python bench/bench_pages.py [--rows 1000000] [--repeat 5] [--label after]

Builds (once, cached under ``--cache-dir``, default ``/work/tmp/bench-pages`` or a temporary
folder) an SQLite file of ``--rows`` demo events (``demo.generate(rows, seed=42)``, as
bench_load.py builds its own), copies it (the app writes its sign-in events), starts
``streamlit run app.py`` on it (``tests/browser_support.AppServer``) and drives one Chromium
session (Debian's, through playwright; only 127.0.0.1 is reachable):

* **sign-in, cold**: right after the server answers its health check, open the app, wait until
  the sign-in screen has finished loading (as a user typing a password would; that time is
  reported apart, ``--sign-in-at-once`` clicks at once instead), sign in and wait until the
  Audit Log's table shows rows (the first data after sign-in; the data are loaded by this
  sign-in or by the server's start);
* **sign-in, warm**: the same in a new browser context (a new session) once the data are held;
* then, ``--repeat`` times, the menu and the sidebar: Activity, Activity with *All time*,
  Activity with Type = auth, Security review, Security review with *All time*, Audit Log,
  Audit Log with Type = auth (then Reset, not timed, so every repetition starts the same).

With ``--think S`` the driver waits S seconds after each step, as a user reading the page
would; by default it clicks on at once, so the app's background warm-up (which takes a step only
when no page has run for 2 s) never runs between steps: the worst case for a first visit.

A step is timed in the page, from the click event (its ``timeStamp``) until the page's run
finished (Streamlit's status idle, no stale element left), its caption says what was asked, every
plotly chart holds its ``.main-svg`` and every table its canvas, and the browser has painted twice
more (two animation frames). Playwright's own work around the click (finding the element,
checking it can be clicked) and its polling are not a user's wait: they are reported apart as
``driver_s``, the step as the driver's clock saw it (what ``total_s`` was before 2026-12-06).

**server** is what the server spent running the page's script for the step, from the server's
own record of its runs (``AUDIT_RUN_LOG``: each run's start and seconds; the runs that started
between the click and the drawing); **browser** is the rest: the click reaching the server, the
messages crossing, and the drawing (which begins while the run still sends, and mostly comes
after). ``socket_s`` keeps the older split's server part: from the rerun request to
``script_finished`` as playwright's driver sees the websocket frames, which also holds the
browser's drawing of what arrived during the run (its main thread handles the frames in turn). An
app without the run log (an older commit, for a before/after) gets ``socket_s`` as its server part.

The first repetition of a step computes its figures (each result is cached per filter and data
version); the later ones are reruns over held results. Both are reported: ``first`` and the
min/median/max over every repetition, and the repetitions' raw times. The machine has 2
cores and Chromium shares them with the app (and with anything else running): read min-max.

Results: ``bench/results/pages.json`` and ``pages.md`` (``--output`` names the json; the md
sits beside it). ``--before FILE`` puts an earlier result beside this one in the md.
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
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

DEFAULT_CACHE = Path("/work/tmp/bench-pages")
CAPTION_RE = r"^[\d,]+ events? · "
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"]
VIEWPORT = {"width": 1500, "height": 1100}

# (name, kind, argument, page title, caption pieces once done)
# The pages share one view (the sidebar's filter): "reset" (not timed) goes back to the last 7
# days of every type, so each timed step changes what is shown.
STEPS: list[tuple[str, str, str, str, list[str]]] = [
    ("Activity", "menu", "Activity", "Activity", ["last 7 days"]),
    ("Activity: Type=auth", "type", "auth", "Activity", ["auth", "last 7 days"]),
    ("Activity: All time", "period", "All time", "Activity", ["auth", "all time"]),
    ("", "reset", "", "Activity", ["last 7 days"]),
    ("Security review", "menu", "Security review", "Security review", ["last 7 days"]),
    ("Security review: All time", "period", "All time", "Security review", ["all time"]),
    ("Audit Log", "menu", "Audit Log", "Audit Log", ["all time"]),
    ("Audit Log: Type=auth", "type", "auth", "Audit Log", ["auth", "all time"]),
    ("", "reset", "", "Audit Log", ["last 7 days"]),
]
SIGN_IN_STEPS = ("Sign-in, cold (first data)", "Sign-in, warm (first data)")

# True once the step is drawn: run finished, nothing stale, the right page and caption, every
# chart and table drawn
DRAWN_JS = """([title, pieces, captionPattern, needTable]) => {
    const app = document.querySelector('[data-testid=stApp]');
    if (!app || app.getAttribute('data-test-script-state') !== 'notRunning') return false;
    if (app.getAttribute('data-test-connection-state') !== 'CONNECTED') return false;
    const h1 = document.querySelector('[data-testid=stMain] h1');
    if (!h1 || !h1.innerText.includes(title)) return false;
    if (document.querySelector('[data-stale=true]')) return false;
    if (document.querySelector('[data-testid=stMain] [data-testid=stSkeleton]')) return false;
    if (pieces.length) {
        const re = new RegExp(captionPattern);
        let ok = false;
        for (const el of document.querySelectorAll('[data-testid=stMain] [data-testid=stCaptionContainer]')) {
            const text = el.innerText;
            if (re.test(text) && pieces.every((p) => text.includes(p))) { ok = true; break; }
        }
        if (!ok) return false;
    }
    for (const el of document.querySelectorAll('[data-testid=stMain] [data-testid=stPlotlyChart]')) {
        if (!el.querySelector('.main-svg')) return false;
    }
    const frames = document.querySelectorAll('[data-testid=stMain] [data-testid=stDataFrame]');
    for (const el of frames) { if (!el.querySelector('canvas')) return false; }
    if (needTable) {
        let rows = false;
        for (const el of frames) { if (el.querySelector('table[role=grid] td')) { rows = true; break; } }
        if (!rows) return false;
    }
    return true;
}"""
TWO_FRAMES_JS = "() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(() => r(true))))"
# the page's clock, as milliseconds since the epoch (the server's run log uses the same clock)
CLICK_JS = """(() => {
    window.__aaClickAt = 0;
    window.addEventListener('click', (e) => {
        window.__aaClickAt = performance.timeOrigin + e.timeStamp;
    }, {capture: true});
})();"""
PAINTED_JS = """() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(
    () => r([window.__aaClickAt, performance.timeOrigin + performance.now()]))))"""
CHARTS_JS = """() => [
    document.querySelectorAll('[data-testid=stMain] [data-testid=stPlotlyChart]').length,
    document.querySelectorAll('[data-testid=stMain] [data-testid=stDataFrame]').length]"""


# ---------------------------------------------------------------------------------------
# the data


def build_db(rows: int, cache_dir: Path) -> Path:
    """The cached SQLite file of ``rows`` demo events (built once; a half-built file is never
    used: it is written under another name and renamed when complete)."""
    from audit_analytics.demo.generate import generate
    from audit_analytics.engines.store import open_store

    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_dir / f"pages-{rows}.db"
    if path.exists():
        return path
    part = path.with_suffix(".part")
    part.unlink(missing_ok=True)
    started = time.perf_counter()
    store = open_store(f"sqlite:///{part}")
    try:
        store.append(generate(rows, seed=42).events)
    finally:
        store.engine.dispose()
    os.replace(part, path)
    print(f"built {path}: {rows:,} events in {time.perf_counter() - started:.1f} s", flush=True)
    return path


# ---------------------------------------------------------------------------------------
# the websocket: when the server ran


class Socket:
    """Every websocket frame of the page, with when playwright's driver saw it: rerun requests
    going out, and Streamlit's ``script_finished`` coming back."""

    def __init__(self, page) -> None:
        self.events: list[tuple[float, str, object]] = []  # (time, "sent"|"finished"|"other", detail)
        self.bytes_in = 0
        page.on("websocket", self._watch)

    def _watch(self, ws) -> None:
        ws.on("framesent", self._sent)
        ws.on("framereceived", self._received)

    def _sent(self, payload) -> None:
        from streamlit.proto.BackMsg_pb2 import BackMsg

        now = time.perf_counter()
        kind = "other"
        try:
            msg = BackMsg.FromString(payload if isinstance(payload, bytes) else payload.encode())
            if msg.WhichOneof("type") == "rerun_script":
                kind = "sent"
        except Exception:
            pass
        self.events.append((now, kind, None))

    def _received(self, payload) -> None:
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        now = time.perf_counter()
        data = payload if isinstance(payload, bytes) else payload.encode()
        self.bytes_in += len(data)
        kind, detail = "other", None
        try:
            msg = ForwardMsg.FromString(data)
            if msg.WhichOneof("type") == "script_finished":
                kind, detail = "finished", msg.script_finished
        except Exception:
            pass
        self.events.append((now, kind, detail))

    def mark(self) -> int:
        return len(self.events)

    def server_time(self, since: int, until: float) -> tuple[float, int]:
        """Seconds the server was running a script between event ``since`` and ``until``, and
        how many runs: each from a rerun request (or the end of a run that asked for a rerun)
        to the ``script_finished`` that ends it."""
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        early = ForwardMsg.ScriptFinishedStatus.Value("FINISHED_EARLY_FOR_RERUN")
        busy, runs, start = 0.0, 0, None
        for t, kind, detail in self.events[since:]:
            if t > until:
                break
            if kind == "sent" and start is None:
                start = t
            elif kind == "finished":
                runs += 1
                if start is not None:
                    busy += t - start
                start = t if detail == early else None
        return busy, runs


# ---------------------------------------------------------------------------------------
# the browser


def _loopback_only(route) -> None:
    url = route.request.url
    if urlsplit(url).hostname in ("127.0.0.1", "localhost") or url.startswith(("data:", "blob:")):
        route.continue_()
    else:
        route.abort()


@contextmanager
def _session(browser, timeout_s: float):
    context = browser.new_context(viewport=VIEWPORT, timezone_id="UTC", locale="en-GB")
    context.set_default_timeout(timeout_s * 1000)
    context.route("**/*", _loopback_only)
    context.add_init_script(CLICK_JS)
    page = context.new_page()
    try:
        yield page, Socket(page)
    finally:
        context.close()


def _wait_drawn(page, title: str, pieces: list[str], *, table: bool, timeout_s: float) -> tuple[float, float]:
    """Wait until the step is drawn and painted; (the last click, painted) in epoch seconds,
    by the page's clock."""
    page.wait_for_function(
        DRAWN_JS, arg=[title, pieces, CAPTION_RE, table], polling=20, timeout=timeout_s * 1000
    )
    clicked, painted = page.evaluate(PAINTED_JS)
    return clicked / 1000, painted / 1000


def server_runs(run_log: Path | None, since: float, until: float) -> tuple[float, int] | None:
    """Seconds of the server's page runs that started between ``since`` and ``until`` (epoch
    seconds) and how many, from its run log (``AUDIT_RUN_LOG``); None when the log is absent or
    empty (an app from before it)."""
    if run_log is None or not run_log.exists():
        return None
    runs = [json.loads(line) for line in run_log.read_text().splitlines() if line.strip()]
    if not runs:
        return None
    slack = 0.005  # the page's clock and the server's may differ by a few milliseconds
    inside = [r["seconds"] for r in runs if since - slack <= r["started"] <= until]
    return sum(inside), len(inside)


def _measure(
    page,
    socket: Socket,
    act,
    title: str,
    pieces: list[str],
    *,
    table: bool,
    timeout_s: float,
    run_log: Path | None = None,
) -> dict:
    mark = socket.mark()
    bytes_before = socket.bytes_in
    started = time.perf_counter()
    act()
    # the first Apply after a multiselect sometimes only closes its list: click again (timed
    # from the click that sent the request)
    retried = 0
    while not any(kind == "sent" for _, kind, _ in socket.events[mark:]):
        if time.perf_counter() - started > 2.0 and retried < 3:
            retried += 1
            mark, bytes_before = socket.mark(), socket.bytes_in
            started = time.perf_counter()
            act()
        elif time.perf_counter() - started > timeout_s:
            raise TimeoutError(f"the click sent no rerun request ({title})")
        page.wait_for_timeout(10)
    deadline = started + timeout_s
    while not any(kind == "finished" for _, kind, _ in socket.events[mark:]):  # the run this started
        if time.perf_counter() > deadline:
            raise TimeoutError(f"no script run ended after the click ({title})")
        page.wait_for_timeout(10)
    clicked, painted = _wait_drawn(page, title, pieces, table=table, timeout_s=timeout_s)
    ended = time.perf_counter()
    socket_s, runs = socket.server_time(mark, ended)
    total = painted - clicked
    own = server_runs(run_log, clicked, painted)
    server = socket_s if own is None else own[0]
    charts, tables = page.evaluate(CHARTS_JS)
    return {
        "total_s": round(total, 4),
        "server_s": round(server, 4),
        "browser_s": round(max(total - server, 0.0), 4),
        "driver_s": round(ended - started, 4),
        "socket_s": round(socket_s, 4),
        "server_from": "socket" if own is None else "run log",
        "runs": runs if own is None else own[1],
        "clicks": retried + 1,
        "kb_received": round((socket.bytes_in - bytes_before) / 1024, 1),
        "charts": charts,
        "tables": tables,
    }


# the end of the page's last long task (over 50 ms of its main thread: compiling plotly.js
# takes seconds), recorded from the page's start
LONG_TASKS_JS = """(() => {
    window.__aaLongTaskEnd = 0;
    new PerformanceObserver((list) => {
        for (const e of list.getEntries()) {
            window.__aaLongTaskEnd = Math.max(window.__aaLongTaskEnd, e.startTime + e.duration);
        }
    }).observe({type: 'longtask', buffered: true});
})();"""
QUIET_MS = 500
SCREEN_READY_JS = """(quietMs) => {
    const app = document.querySelector('[data-testid=stApp]');
    return !!app && app.getAttribute('data-test-script-state') === 'notRunning'
        && app.getAttribute('data-test-connection-state') === 'CONNECTED'
        && !!document.querySelector('[data-testid=stForm] input[type=password]')
        && performance.now() - window.__aaLongTaskEnd > quietMs;
}"""


def _sign_in(
    page, socket: Socket, base: str, timeout_s: float, *, at_once: bool = False, run_log: Path | None = None
) -> dict:
    """Open the sign-in screen, then time the click on Sign in until the Audit Log's first rows.

    A user types a name and a password on a screen that has finished loading, so by default
    the click waits for that: the screen's run finished, the browser fetched what it asked for
    (network idle; the page's own scripts and the warm-up's) and its main thread has had no
    long task (compiling them) for ``QUIET_MS``. How long the screen took to show the form
    and to get there is reported as its own figures (``form_s``, ``screen_s``). ``at_once``: fill and click as soon
    as the form shows (what this benchmark did before 2026-12-06; the click then also waits for
    the screen's own loading)."""
    from browser_support import PASSWORD, USER

    page.add_init_script(LONG_TASKS_JS)
    opened = time.perf_counter()
    page.goto(base)
    page.get_by_role("textbox", name="Password").wait_for()
    form_s = time.perf_counter() - opened
    if not at_once:
        page.wait_for_timeout(150)  # the run starts a moment after the page connects
        page.wait_for_load_state("networkidle", timeout=timeout_s * 1000)
        page.wait_for_function(SCREEN_READY_JS, arg=QUIET_MS, polling=50, timeout=timeout_s * 1000)
        page.evaluate(TWO_FRAMES_JS)
    screen_s = time.perf_counter() - opened
    page.get_by_role("textbox", name="User name").fill(USER)
    page.get_by_role("textbox", name="Password").fill(PASSWORD)
    button = page.get_by_role("button", name="Sign in")
    result = _measure(
        page,
        socket,
        button.click,
        "Audit Log",
        ["last 7 days"],
        table=True,
        timeout_s=timeout_s,
        run_log=run_log,
    )
    result["form_s"], result["screen_s"] = round(form_s, 4), round(screen_s, 4)
    return result


def _act(page, kind: str, arg: str):
    sidebar = page.get_by_test_id("stSidebar")
    if kind == "menu":
        link = sidebar.get_by_test_id("stSidebarNav").get_by_role("link", name=arg)
        return link.click
    if kind == "period":
        sidebar.get_by_test_id("stRadio").filter(has_text="Period").get_by_text(arg, exact=True).click()
        return sidebar.get_by_role("button", name="Apply").click
    if kind == "reset":
        return sidebar.get_by_role("button", name="Reset").click
    if kind == "type":
        types = sidebar.get_by_test_id("stMultiSelect").filter(has_text="Type")
        types.click()
        page.get_by_role("option", name=f"({arg})").first.click()
        page.keyboard.press("Escape")
        return sidebar.get_by_role("button", name="Apply").click
    raise ValueError(kind)


def _caption(page) -> str:
    import re

    for text in page.get_by_test_id("stMain").get_by_test_id("stCaptionContainer").all_inner_texts():
        if re.match(CAPTION_RE, text):
            return text
    return ""


def run(
    db_path: Path,
    *,
    repeat: int,
    timeout_s: float,
    verbose: bool = True,
    grow: bool = False,
    think: float = 0.0,
    sign_in_at_once: bool = False,
) -> dict:
    from browser_support import AppServer, chromium_executable
    from playwright.sync_api import sync_playwright

    chromium = chromium_executable()
    if chromium is None:
        raise RuntimeError("no Chromium (apt-get install chromium; never `playwright install`)")
    work = Path(tempfile.mkdtemp(prefix="aa-pages-"))
    steps: dict[str, list[dict]] = {name: [] for name in (*SIGN_IN_STEPS, *(s[0] for s in STEPS if s[0]))}
    errors: list[str] = []
    load = [os.getloadavg()[0]]
    try:
        db = work / "audit.db"
        shutil.copy(db_path, db)
        run_log = work / "runs.jsonl"  # the server's own record of its page runs
        server = AppServer(f"sqlite:///{db}", extra_env={"AUDIT_RUN_LOG": str(run_log)})
        started = time.perf_counter()
        server.start(timeout=120)
        server_start_s = time.perf_counter() - started
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=chromium, args=LAUNCH_ARGS)
                try:
                    with _session(browser, timeout_s) as (page, socket):
                        steps[SIGN_IN_STEPS[0]].append(
                            _sign_in(
                                page, socket, server.base, timeout_s, at_once=sign_in_at_once, run_log=run_log
                            )
                        )
                    with _session(browser, timeout_s) as (page, socket):
                        steps[SIGN_IN_STEPS[1]].append(
                            _sign_in(
                                page, socket, server.base, timeout_s, at_once=sign_in_at_once, run_log=run_log
                            )
                        )
                        if verbose:
                            print(
                                f"sign-in: {steps[SIGN_IN_STEPS[0]][0]} / {steps[SIGN_IN_STEPS[1]][0]}",
                                flush=True,
                            )
                        time.sleep(think)  # the user reads the page before the next click
                        for rep in range(repeat):
                            if grow and rep:  # someone else signs in: a new event, every cache cleared
                                with _session(browser, timeout_s) as (other, other_socket):
                                    _sign_in(other, other_socket, server.base, timeout_s, at_once=True)
                            for name, kind, arg, title, pieces in STEPS:
                                act = _act(page, kind, arg)
                                result = _measure(
                                    page,
                                    socket,
                                    act,
                                    title,
                                    pieces,
                                    table=title == "Audit Log",
                                    timeout_s=timeout_s,
                                    run_log=run_log,
                                )
                                result["caption"] = _caption(page)
                                if not name:  # a reset: back to the start, not timed
                                    continue
                                steps[name].append(result)
                                time.sleep(think)
                                if verbose:
                                    print(
                                        f"{rep + 1} {name:28s} total {result['total_s']:.3f} server "
                                        f"{result['server_s']:.3f} browser {result['browser_s']:.3f} "
                                        f"(driver {result['driver_s']:.3f}, socket {result['socket_s']:.3f}) "
                                        f"({result['runs']} runs, {result['kb_received']} kB) {result['caption']}",
                                        flush=True,
                                    )
                        errors = page.get_by_test_id("stException").all_inner_texts()
                finally:
                    browser.close()
        finally:
            log = server.log()
            server.stop()
        if "Traceback" in log:
            errors.append(log[log.index("Traceback") :][:4000])
        # the app's own lines about loading: the background load's time, any full reload
        notes = [line.strip() for line in log.splitlines() if "audit table" in line]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    load.append(os.getloadavg()[0])
    return {
        "server_start_s": round(server_start_s, 3),
        "steps": steps,
        "errors": errors,
        "load_average": load,
        "server_notes": notes,
    }


def summarise(steps: dict[str, list[dict]]) -> dict[str, dict]:
    out = {}
    for name, runs in steps.items():
        if not runs:
            continue
        entry: dict = {"n": len(runs), "first": {k: runs[0][k] for k in ("total_s", "server_s", "browser_s")}}
        for key in ("total_s", "server_s", "browser_s", "driver_s", "socket_s"):
            if key not in runs[0]:  # results from before 2026-12-06 have no driver_s, socket_s
                continue
            values = [r[key] for r in runs]
            entry[key] = {
                "min": round(min(values), 3),
                "median": round(statistics.median(values), 3),
                "max": round(max(values), 3),
            }
        entry["runs_total_s"] = [r["total_s"] for r in runs]
        entry["kb_received"] = runs[-1]["kb_received"]
        entry["charts"], entry["tables"] = runs[-1]["charts"], runs[-1]["tables"]
        entry["server_from"] = runs[-1].get("server_from", "socket")
        out[name] = entry
    return out


# ---------------------------------------------------------------------------------------
# the report


def _cell(entry: dict | None, key: str) -> str:
    if not entry:
        return "–"
    v = entry[key]
    if entry["n"] == 1:
        return f"{v['median']:.2f}"
    return f"{v['min']:.2f} – **{v['median']:.2f}** – {v['max']:.2f}"


def _sign_in_mode(result: dict) -> str:
    if result.get("sign_in_at_once", True):  # results from before the option clicked at once
        return "the form filled and Sign in clicked as soon as the form showed (`--sign-in-at-once`)"
    return "Sign in clicked once the sign-in screen had finished loading, as after typing a password"


def _sign_in_note(result: dict, before: dict | None) -> str:
    """How the sign-in steps were timed, and how long the screen took to finish loading."""
    screens = [
        f"{runs[0]['form_s']:.2f} s to show the form and {runs[0]['screen_s']:.2f} s to finish loading "
        f"({name.split(',')[1].split('(')[0].strip()})"
        for name in SIGN_IN_STEPS
        if (runs := result.get("steps", {}).get(name)) and "form_s" in runs[0]
    ]
    text = f"Sign-in: {_sign_in_mode(result)}"
    if screens and not result.get("sign_in_at_once"):
        text += f"; the screen itself took {', '.join(screens)} from opening the address (not in the figures)"
    if before is not None:
        text += f". Before: {_sign_in_mode(before)}"
    return text + "."


_FIRST_AND_NOISE = (
    "*first*: the first repetition (its figures computed; later repetitions rerun over cached "
    "results). The machine has 2 cores, shared with Chromium and other work: read the spread as noise."
)


def _method(result: dict) -> str:
    """How a result's steps were timed and split (it changed on 2026-12-06)."""
    if any(e.get("server_from") == "run log" for e in result.get("summary", {}).values()):
        return (
            "Seconds, **min – median – max**, in the page: from the click event to the page's run "
            "finished, its charts and tables drawn and painted. *server*: the server's own time running "
            "the page's script (its run log, `AUDIT_RUN_LOG`); *browser*: the rest (the click reaching "
            "the server, the messages, and drawing them, which is most of it). " + _FIRST_AND_NOISE
        )
    return (
        "Seconds, **min – median – max**, by the driver's clock: from the click to the page's run "
        "finished and its charts and tables drawn. *server*: the script run as playwright saw the "
        "websocket (rerun request to `script_finished`); *browser*: the rest (the click reaching the "
        "socket, then drawing what arrived after the run; drawing during the run is in *server*). "
        + _FIRST_AND_NOISE
    )


def render_md(result: dict, before: dict | None = None) -> str:
    grow = ", another sign-in before each repetition (--grow)" if result.get("grow") else ""
    if result.get("think_s"):
        grow += f", {result['think_s']:g} s of reading after each step (--think)"
    lines = [
        "# Pages in Chromium: what a user waits for",
        "",
        f"{result['rows']:,} demo events, {result['repeat']} repetitions per step, "
        f"{result['machine']['cpus']} CPUs{grow}, load average {result['load_average'][0]:.1f} before and "
        f"{result['load_average'][1]:.1f} after ({result['when']}; `bench/bench_pages.py`).",
        "",
        _method(result),
        "",
    ]
    if before is not None and _method(before) != _method(result):
        lines += [f"Before: {_method(before)}", ""]
    if before is not None:
        lines += [
            "| step | before: total | before: server | before: browser | before: first | "
            "after: total | after: server | after: browser | after: first |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for name, entry in result["summary"].items():
            b = before["summary"].get(name)
            b_first = f"{b['first']['total_s']:.2f}" if b else "–"
            lines.append(
                f"| {name} | {_cell(b, 'total_s')} | {_cell(b, 'server_s')} | {_cell(b, 'browser_s')} | "
                f"{b_first} | {_cell(entry, 'total_s')} | {_cell(entry, 'server_s')} | "
                f"{_cell(entry, 'browser_s')} | {entry['first']['total_s']:.2f} |"
            )
        lines += [
            "",
            f"Before: {before['when']}, load average {before['load_average'][0]:.1f} → "
            f"{before['load_average'][1]:.1f}; server start {before['server_start_s']:.1f} s. "
            f"After: server start {result['server_start_s']:.1f} s.",
        ]
    else:
        lines += [
            "| step | total | server | browser | first (total / server) | kB received | charts, tables |",
            "|---|---|---|---|---|---|---|",
        ]
        for name, entry in result["summary"].items():
            lines.append(
                f"| {name} | {_cell(entry, 'total_s')} | {_cell(entry, 'server_s')} | {_cell(entry, 'browser_s')} | "
                f"{entry['first']['total_s']:.2f} / {entry['first']['server_s']:.2f} | {entry['kb_received']} | "
                f"{entry['charts']}, {entry['tables']} |"
            )
        lines += ["", f"Server start (until healthy): {result['server_start_s']:.1f} s."]
    lines += ["", _sign_in_note(result, before)]
    driver = [
        f"{name} {entry['driver_s']['median']:.2f} (socket {entry['socket_s']['median']:.2f})"
        for name, entry in result["summary"].items()
        if "driver_s" in entry
    ]
    if driver:
        lines += [
            "",
            "The same steps by the driver's clock (playwright: from before its click to after its wait; "
            "the figures above before 2026-12-06 were these), medians, with the websocket's server part: "
            + "; ".join(driver)
            + ".",
        ]
    if result.get("server_notes"):
        lines += ["", "The server's log about loading:", ""] + [f"- `{n}`" for n in result["server_notes"]]
    lines += ["", "Every repetition's total (s):", ""]
    for name, entry in result["summary"].items():
        lines.append(f"- {name}: {', '.join(f'{v:.2f}' for v in entry['runs_total_s'])}")
    if result["errors"]:
        lines += ["", f"**Errors** ({len(result['errors'])}): see the json."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--cache-dir", default=None, help="where the demo database is kept")
    parser.add_argument("--db", help="an existing SQLite file of events (copied; default: the cached demo)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds one step may take")
    parser.add_argument("--output", default=str(ROOT / "bench" / "results" / "pages.json"))
    parser.add_argument("--before", help="an earlier result (json) to show beside this one")
    parser.add_argument("--label", default="", help="a note stored with the result")
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument(
        "--think",
        type=float,
        default=0.0,
        help="seconds a user reads each page before the next click (default 0: the next click at once, "
        "so the background warm-up, which waits for 2 s without a page run, never runs between steps)",
    )
    parser.add_argument(
        "--grow",
        action="store_true",
        help="before each repetition after the first, another session signs in (an event is written, "
        "so every cached result is computed again): every repetition is a first visit after new events",
    )
    parser.add_argument(
        "--sign-in-at-once",
        action="store_true",
        help="fill the sign-in form and click as soon as it shows (before 2026-12-06 the default): the "
        "click then also waits for the sign-in screen's own loading; by default it waits until the "
        "screen has finished loading, as a user typing a password does, and reports that time apart",
    )
    parser.add_argument(
        "--render-only",
        action="store_true",
        help="rewrite the md beside --output from its json (and its before)",
    )
    args = parser.parse_args(argv)
    if args.render_only:
        output = Path(args.output)
        result = json.loads(output.read_text())
        output.with_suffix(".md").write_text(render_md(result, result.get("before")))
        return 0
    if args.db:
        db = Path(args.db)
    else:
        cache = (
            Path(args.cache_dir)
            if args.cache_dir
            else (
                DEFAULT_CACHE
                if DEFAULT_CACHE.parent.is_dir()
                else Path(tempfile.gettempdir()) / "bench-pages"
            )
        )
        db = build_db(args.rows, cache)
    raw = run(
        db,
        repeat=args.repeat,
        timeout_s=args.timeout,
        verbose=not args.quiet,
        grow=args.grow,
        think=args.think,
        sign_in_at_once=args.sign_in_at_once,
    )
    result = {
        "label": args.label,
        "when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "rows": args.rows,
        "repeat": args.repeat,
        "grow": args.grow,
        "think_s": args.think,
        "sign_in_at_once": args.sign_in_at_once,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "server_start_s": raw["server_start_s"],
        "load_average": [round(x, 2) for x in raw["load_average"]],
        "summary": summarise(raw["steps"]),
        "errors": raw["errors"],
        "server_notes": raw["server_notes"],
        "steps": raw["steps"],
    }
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    before = json.loads(Path(args.before).read_text()) if args.before else None
    if before is not None and "after" not in before:
        result["before"] = {
            k: before[k]
            for k in ("label", "when", "load_average", "server_start_s", "summary", "sign_in_at_once")
            if k in before
        }
    output.write_text(json.dumps(result, separators=(",", ":")) + "\n")
    output.with_suffix(".md").write_text(render_md(result, before))
    if not args.quiet:
        print(output.with_suffix(".md").read_text())
    return 1 if result["errors"] else 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Capacity: how many concurrent sessions one app process serves on one core, with the
server's own time per interaction at p95 ≤ 0.3 s.

    .venv/bin/python bench/bench_capacity.py [--rows 1000000] [--sessions 10,20,50,100]
        [--think 10] [--warmup 20] [--duration 90] [--repeat 50] [--profile auto]

For each number of sessions, a fresh app process (``bench/capacity_server.py``: ``streamlit
run app.py`` with a clock on the server's side of every interaction) is started on a copy of
the demo database of ``--rows`` events (``demo.generate(rows, seed=42)``, built and cached as
bench_pages.py does), **pinned to one core** (``taskset -c 0``); this process, which drives the
sessions, runs on the other core. Each session is a Python client speaking Streamlit's
websocket protocol (``bench/ws_client.py``; nothing is rendered): it signs in through the
app's sign-in form as a browser does (a few at a time, as people arrive), then, after a pause
of ``--think`` s × U(0.5, 1.5) (seeded), does what a reader of the Audit Log does: a search,
a period, a type filter, the next page, one at a time, each when the previous answer is
complete. Interactions starting in the first ``--warmup`` s are not counted; the sessions
stop starting new ones ``--duration`` s later.

**server time** of an interaction: from the app reading the rerun request off the websocket
to the app handing the answer's last message (the ``session_status_changed`` after the run
chain's final ``script_finished``) to the socket, by the app's own clock (capacity_server.py).
The client's view (request sent to last message received) is reported beside it.

Per step: p50/p95/max of the server time (and per kind of interaction), errors (exceptions
drawn, timeouts, lost sockets, server tracebacks), requests and script runs, the app's CPU
(seconds and share of its core over the measured window), its RSS (start, peak, end), the
load average at start and end, and how busy the app's core was with other processes.
``--repeat 50`` runs that step once more (the machine is shared; the app and the clients run at
``--nice -10``, ahead of other work, and each step reports how busy the app's core was with
other processes). ``--profile auto`` samples
the app's threads (``sys._current_frames``, 100/s) during one more run at ``--profile-at``
sessions when its p95 is over the target (``always``, ``never``), and reports where the time
went. Results: ``bench/results/capacity.json`` and ``capacity.md`` (``--output``;
``--render-only`` rewrites the md from the json).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import shutil
import signal
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
for _path in (ROOT, ROOT / "tests", BENCH):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from bench_load import _percentiles  # noqa: E402
from browser_support import PASSWORD, USER, AppServer  # noqa: E402
from timing import PeakRss  # noqa: E402
from ws_client import CAPTION, StreamlitSession  # noqa: E402

LAUNCHER = BENCH / "capacity_server.py"
TARGET_P95_S = 0.3
PERIODS = ["Today", "Last 7 days", "Last 30 days", "All time"]
SEARCHES = [
    "root",
    "action:update",
    "-result:done",
    "ip:10.0.0.0/8",
    "user:svc-ci",
    "failed",
    "backup",
    "delete",
    "svc-*",
    "type:auth",
    "result:failed",
    "prod",
    "",
]
# what a reader does next, and how often
KINDS = [("search", 0.35), ("period", 0.2), ("type", 0.2), ("next page", 0.25)]


# ---------------------------------------------------------------------------------------
# the app, pinned to its core


class CapacityServer(AppServer):
    """``tests/browser_support.AppServer`` (its account, health check, log and stop), started
    through capacity_server.py under ``taskset`` with the timing log (and profiler) on."""

    core: int | None = None
    nice: int = 0
    timing_log: Path | None = None
    profile: Path | None = None

    def command(self) -> list[str]:
        pin = ["taskset", "-c", str(self.core)] if self.core is not None and shutil.which("taskset") else []
        if self.nice and shutil.which("nice"):  # ahead of the machine's other work on its core
            pin = ["nice", "-n", str(self.nice), *pin]
        else:
            self.nice = 0
        return [*pin, sys.executable, str(LAUNCHER)]

    def environment(self) -> dict[str, str]:
        env = super().environment() | {"AA_CAPACITY_LOG": str(self.timing_log)}
        env.pop("AA_CAPACITY_PROFILE", None)
        if self.profile is not None:
            env["AA_CAPACITY_PROFILE"] = str(self.profile)
        return env

    def spawned(self) -> None:
        if self.core is not None and not shutil.which("taskset"):  # pin the process itself
            assert self.process is not None
            os.sched_setaffinity(self.process.pid, {self.core})

    def rss_mb(self) -> float:
        import psutil

        return psutil.Process(self.process.pid).memory_info().rss / 2**20

    def cpu_s(self) -> float:
        import psutil

        t = psutil.Process(self.process.pid).cpu_times()
        return t.user + t.system

    def signal(self, sig: int) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, sig)


def core_ticks() -> dict[int, tuple[float, float]]:
    """(busy, total) seconds per CPU since boot, from /proc/stat."""
    hz = os.sysconf("SC_CLK_TCK")
    out = {}
    with open("/proc/stat") as fh:
        for line in fh:
            name, *fields = line.split()
            if not name.startswith("cpu") or name == "cpu":
                continue
            v = [int(x) for x in fields[:8]]
            idle = v[3] + v[4]
            out[int(name[3:])] = ((sum(v) - idle) / hz, sum(v) / hz)
    return out


# ---------------------------------------------------------------------------------------
# the sessions


def _error(out: dict, text: str) -> None:
    out["errors"].append(text[:500])


async def _sign_in(s: StreamlitSession, timeout: float) -> None:
    await s.connect(timeout=timeout)
    s.set_text("signin_user", USER)
    s.set_text("signin_password", PASSWORD)
    answer = await s.rerun(trigger="Sign in", timeout=timeout)
    if "Audit Log" not in answer.headings:
        raise RuntimeError(f"sign-in did not open the Audit Log: {answer.headings} {answer.alerts}")


async def _interact(s: StreamlitSession, rng: random.Random, state: dict, timeout: float):
    """One thing a reader does on the Audit Log; -> (kind, answer)."""
    kind = rng.choices([k for k, _ in KINDS], [w for _, w in KINDS])[0]
    if kind == "next page":
        for name in ("next_page", "prev_page"):
            if s.has(name) and not s.widget(name).disabled:
                return kind, await s.rerun(trigger=name, timeout=timeout)
        kind = "search"  # one page only: search instead
    if kind == "search":
        word = rng.choice([w for w in SEARCHES if w != state.get("search", "")])
        state["search"] = word
        s.set_text("f_search", word)
        return kind, await s.rerun(timeout=timeout)
    if kind == "period":
        label = rng.choice([p for p in PERIODS if p != state.get("period", "Last 7 days")])
        state["period"] = label
        s.set_choice("f_period", label)
    else:
        options = [[], *([o] for o in s.widget("f_types").options)]
        chosen = rng.choice([o for o in options if o != state.get("types", [])])
        state["types"] = chosen
        s.set_choices("f_types", chosen)
    return kind, await s.rerun(trigger="Apply", timeout=timeout)


async def _drive(url: str, sessions: int, plan: dict, app: CapacityServer, out: dict) -> None:
    timeout = plan["timeout_s"]
    clients = [StreamlitSession(url) for _ in range(sessions)]
    gate = asyncio.Semaphore(plan["sign_in_at_once"])
    sign_in_s: list[float] = []

    async def arrive(s: StreamlitSession) -> bool:
        async with gate:
            started = time.monotonic()
            try:
                await _sign_in(s, plan["sign_in_timeout_s"])
            except Exception as exc:
                _error(out, f"sign-in: {type(exc).__name__}: {exc}")
                return False
            sign_in_s.append(time.monotonic() - started)
            return True

    signed = await asyncio.gather(*(arrive(s) for s in clients))
    out["signed_in"] = sum(signed)
    out["sign_in"] = _percentiles(sign_in_s)
    start = time.monotonic()
    window_end = start + plan["warmup_s"] + plan["duration_s"]
    marks: dict[str, object] = {}

    async def window() -> None:  # the app's CPU and the cores over the measured window
        await asyncio.sleep(plan["warmup_s"])
        marks["cpu0"], marks["ticks0"], marks["t0"] = app.cpu_s(), core_ticks(), time.monotonic()
        marks["load_start"] = os.getloadavg()
        if plan.get("profile"):
            app.signal(signal.SIGUSR1)

    async def drive(number: int, s: StreamlitSession) -> None:
        rng = random.Random(plan["seed"] * 10_000 + number)
        state: dict = {}
        await asyncio.sleep(rng.uniform(0, plan["think_s"]))
        counted = 0
        while time.monotonic() < window_end and not (
            plan["interactions"] and counted >= plan["interactions"]
        ):
            sent_at = time.monotonic()
            try:
                kind, answer = await _interact(s, rng, state, timeout)
            except Exception as exc:
                _error(out, f"session {number}: {type(exc).__name__}: {exc}")
                return
            warm = sent_at - start < plan["warmup_s"]
            counted += not warm
            problems = list(answer.exceptions)
            if not any(CAPTION.match(c) for c in answer.captions):
                problems.append(f"no result caption after {kind} (alerts: {answer.alerts[:2]})")
            for problem in problems:
                _error(out, f"session {number}, {kind}: {problem}")
            out["client"].append(
                {
                    "session": s.session_id,
                    "seq": s.requests,
                    "number": number,
                    "kind": kind,
                    "warmup": warm,
                    "sent_at_s": round(sent_at - start, 3),
                    "client_s": answer.seconds,
                    "messages": answer.messages,
                    "bytes": answer.bytes,
                    "runs": answer.runs,
                }
            )
            await asyncio.sleep(plan["think_s"] * rng.uniform(0.5, 1.5))

    alive = [(n, s) for n, (s, ok) in enumerate(zip(clients, signed, strict=True)) if ok]
    window_task = asyncio.create_task(window())
    await asyncio.gather(*(drive(n, s) for n, s in alive))
    await window_task
    marks["cpu1"], marks["ticks1"], marks["t1"] = app.cpu_s(), core_ticks(), time.monotonic()
    marks["load_end"] = os.getloadavg()
    if plan.get("profile"):
        app.signal(signal.SIGUSR2)
    out["marks"] = marks
    await asyncio.gather(*(s.close() for s in clients), return_exceptions=True)


# ---------------------------------------------------------------------------------------
# one step


def run_step(
    db: Path, sessions: int, plan: dict, *, app_core: int | None, work: Path, label: str, nice: int = 0
) -> dict:
    """Start the app on ``db`` (pinned), drive ``sessions`` clients; -> the step's numbers."""
    timing_log = work / f"timings-{label}.jsonl"
    profile = work / f"profile-{label}.json" if plan.get("profile") else None
    app = CapacityServer(f"sqlite:///{db}")
    app.core, app.timing_log, app.profile, app.nice = app_core, timing_log, profile, nice
    out: dict = {"errors": [], "client": []}
    load_before = os.getloadavg()
    app.start(timeout=plan["start_timeout_s"])
    rss = PeakRss(app.process.pid, every=0.5)
    try:
        out["rss_start_mb"] = round(app.rss_mb(), 1)
        rss.start()
        asyncio.run(_drive(app.url(), sessions, plan, app, out))
        out["rss_end_mb"] = round(app.rss_mb(), 1)
        if profile is not None:
            deadline = time.monotonic() + 10
            while not profile.exists() and time.monotonic() < deadline:
                time.sleep(0.2)
    finally:
        rss.running = False
        log = app.log()
        app.stop()
    out["rss_peak_mb"] = round(rss.peak, 1)
    out["server_tracebacks"] = log.count("Traceback")
    if out["server_tracebacks"]:
        out["server_traceback_text"] = log[log.index("Traceback") :][:3000]
    records = (
        [json.loads(line) for line in timing_log.read_text().splitlines()] if timing_log.exists() else []
    )
    result = summarise_step(sessions, out, records, plan, app_core)
    result["load_avg_before_start"] = [round(x, 2) for x in load_before]
    result["app_nice"] = app.nice
    if profile is not None and profile.exists():
        result["profile"] = summarise_profile(json.loads(profile.read_text()))
    return result


def summarise_step(sessions: int, out: dict, records: list[dict], plan: dict, app_core: int | None) -> dict:
    server = {(r["session"], r["seq"]): r for r in records}
    rows = []
    for c in out["client"]:
        r = server.get((c["session"], c["seq"]))
        rows.append(c | {"server_s": r["server_s"] if r else None, "server_runs": r["runs"] if r else None})
    counted = [r for r in rows if not r["warmup"]]
    timed = [r for r in counted if r["server_s"] is not None]
    marks = out.get("marks", {})
    window_s = marks.get("t1", 0) - marks.get("t0", 0) if marks else 0
    cpu_s = marks.get("cpu1", 0) - marks.get("cpu0", 0) if marks else 0
    result: dict = {
        "sessions": sessions,
        "signed_in": out.get("signed_in", 0),
        "sign_in_s": out.get("sign_in", {}),
        "interactions": len(counted),
        "interactions_timed_by_server": len(timed),
        "server": _percentiles([r["server_s"] for r in timed]) | _mean([r["server_s"] for r in timed]),
        "client": _percentiles([r["client_s"] for r in counted]),
        "by_kind": {
            kind: _percentiles([r["server_s"] for r in timed if r["kind"] == kind])
            | {"n": sum(r["kind"] == kind for r in timed)}
            for kind, _ in KINDS
        },
        "errors_total": len(out["errors"]),
        "errors": out["errors"][:30],
        "server_tracebacks": out["server_tracebacks"],
        "requests": len(records),
        "script_runs": sum(r["runs"] for r in records),
        "superseded": sum(r["status"] == "superseded" for r in records),
        "messages_per_interaction": _mean_of([r["messages"] for r in counted]),
        "kb_per_interaction": round(_mean_of([r["bytes"] for r in counted]) / 1024, 1),
        "window_s": round(window_s, 1),
        "app_cpu_s": round(cpu_s, 2),
        "app_cpu_share_of_core": round(cpu_s / window_s, 3) if window_s else None,
        "app_cpu_per_interaction_s": round(cpu_s / len(counted), 4) if counted else None,
        "rss_start_mb": out.get("rss_start_mb"),
        "rss_peak_mb": out.get("rss_peak_mb"),
        "rss_end_mb": out.get("rss_end_mb"),
        "load_avg_start": [round(x, 2) for x in marks.get("load_start", ())],
        "load_avg_end": [round(x, 2) for x in marks.get("load_end", ())],
    }
    if "server_traceback_text" in out:
        result["server_traceback_text"] = out["server_traceback_text"]
    ticks0, ticks1 = marks.get("ticks0"), marks.get("ticks1")
    if ticks0 and ticks1 and window_s:
        busy = {cpu: (ticks1[cpu][0] - ticks0[cpu][0]) / window_s for cpu in ticks1 if cpu in ticks0}
        result["cores_busy_share"] = {str(cpu): round(b, 3) for cpu, b in busy.items()}
        if app_core is not None and app_core in busy:
            # what else ran on the app's core: the noise of this step
            result["others_on_app_core_share"] = round(max(0.0, busy[app_core] - cpu_s / window_s), 3)
    first = min((r["sent_at_s"] for r in counted), default=0.0)
    result["slowest"] = [
        {
            "kind": r["kind"],
            "server_s": round(r["server_s"], 3),
            "client_s": round(r["client_s"], 3),
            "at_s": round(r["sent_at_s"] - first, 1),
            "session": r["number"],
        }
        for r in sorted(timed, key=lambda r: -r["server_s"])[:10]
    ]
    # how many interactions were in flight at once (server side), the p95 of that
    spans = sorted((r["t0"], r["t1"]) for r in records)
    result["concurrent_max"] = _max_overlap(spans)
    return result


def _mean(values: list[float]) -> dict:
    return {"mean_s": round(statistics.fmean(values), 3)} if values else {}


def _mean_of(values: list[float]) -> float:
    return round(statistics.fmean(values), 1) if values else 0.0


def _max_overlap(spans: list[tuple[float, float]]) -> int:
    events = sorted([(a, 1) for a, _ in spans] + [(b, -1) for _, b in spans])
    best = cur = 0
    for _, d in events:
        cur += d
        best = max(best, cur)
    return best


def summarise_profile(raw: dict) -> dict:
    """The sampler's counts as shares of the busy samples: where the app's threads were."""
    busy = max(raw.get("busy_thread_samples", 0), 1)
    samples = max(raw.get("samples", 0), 1)

    def share(pairs, n):
        return [{"where": w, "share": round(c / busy, 3)} for w, c in pairs[:n]]

    return {
        "seconds": round(raw.get("seconds", 0), 1),
        "samples": raw.get("samples", 0),
        "busy_threads_per_sample": round(busy / samples, 2),
        "by_thread": {k: round(v / busy, 3) for k, v in raw.get("by_thread", {}).items()},
        "self_top": share(raw.get("self", []), 25),
        "inclusive_top": share(raw.get("inclusive", []), 60),
        "stacks_top": share(raw.get("stacks", []), 12),
    }


# ---------------------------------------------------------------------------------------
# the report


def render_md(result: dict) -> str:
    target = result["target_p95_s"]
    lines = [
        "# Capacity: sessions per core",
        "",
        f"{result['rows']:,} events; one app process pinned to core {result['app_core']}, the clients "
        f"(Python, Streamlit's websocket protocol, no rendering) on core {result['client_core']}; "
        f"{result['think_s']:g} s (×U(0.5, 1.5), seeded) between a session's interactions; "
        f"{result['warmup_s']:g} s warm-up, then {result['duration_s']:g} s counted; app and clients at "
        f"nice {result.get('nice', 0)} (the machine is shared). Server time: "
        "the app's clock from reading the rerun request to handing the answer's last message to the socket. "
        f"Run {result['started']} ({result['machine']['cpus']} CPUs).",
        "",
        "| sessions | run | interactions | server p50 | server p95 | server max | client p95 | errors "
        "| app CPU (share of its core) | CPU per interaction | RSS peak | load avg start → end "
        "| others on the app's core |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for step in result["steps"]:
        s, c = step["server"], step["client"]
        ok = "" if s.get("p95_s", 9) <= target else " ✗"
        load = f"{_fmt_load(step['load_avg_start'])} → {_fmt_load(step['load_avg_end'])}"
        lines.append(
            f"| {step['sessions']} | {step['label']} | {step['interactions']} | {_ms(s.get('p50_s'))} "
            f"| **{_ms(s.get('p95_s'))}**{ok} | {_ms(s.get('max_s'))} | {_ms(c.get('p95_s'))} "
            f"| {step['errors_total'] + step['server_tracebacks']} "
            f"| {step['app_cpu_s']} s ({_pct(step['app_cpu_share_of_core'])}) "
            f"| {_ms(step['app_cpu_per_interaction_s'])} | {step['rss_peak_mb']:.0f} MB | {load} "
            f"| {_pct(step.get('others_on_app_core_share'))} |"
        )
    noisy = [
        f"{step['sessions']} ({step['label']}: {_pct(step['others_on_app_core_share'])})"
        for step in result["steps"]
        if (step.get("others_on_app_core_share") or 0) > 0.2
    ]
    if noisy:
        lines += [
            "",
            "Other processes of the shared machine took more than 20% of the app's core during: "
            + ", ".join(noisy)
            + "; a step whose p95 differs between runs differs by that.",
        ]
    lines += [
        "",
        "Server p95 by kind of interaction (n):",
        "",
        "| sessions | run | " + " | ".join(k for k, _ in KINDS) + " |",
        "|---|---|" + "---|" * len(KINDS),
    ]
    for step in result["steps"]:
        cells = [f"{_ms(step['by_kind'][k].get('p95_s'))} ({step['by_kind'][k]['n']})" for k, _ in KINDS]
        lines.append(f"| {step['sessions']} | {step['label']} | " + " | ".join(cells) + " |")
    verdict = result["sessions_per_core"]
    lines += [
        "",
        f"**Sessions per core at p95 ≤ {target:g} s: {verdict['answer']}** ({verdict['how']}).",
        "",
        f"CPU model: {verdict['cpu_model']}",
        "",
    ]
    for name in ("profile", "profile_saturated"):
        if result.get(name):
            lines += _profile_md(result[name])
    notes = result.get("notes")
    if notes:
        lines += ["## Notes", "", *notes, ""]
    runs = result.get("runs")
    if runs:  # steps gathered from more than one invocation
        lines += ["## Runs", ""]
        lines += [f"{r['invocation']}. {r['started']}: `{r['command']}`" for r in runs]
        lines.append("")
    return "\n".join(lines)


def _profile_md(profile: dict) -> list[str]:
    step = profile.get("step", {})
    p95 = step.get("server", {}).get("p95_s")
    lines = [
        f"## Where the time goes ({profile['sessions']} sessions, sampled)",
        "",
        f"The profiled run: server p95 {_ms(p95)}, app CPU {_pct(step.get('app_cpu_share_of_core'))} of its core.",
        "",
        f"Sampled {profile['samples']} times over {profile['seconds']} s; busy threads per sample "
        f"{profile['busy_threads_per_sample']}. By thread: "
        + ", ".join(f"{k} {_pct(v)}" for k, v in profile["by_thread"].items()),
        "",
        "| inclusive share | function |",
        "|---|---|",
    ]
    for entry in profile["inclusive_top"][:40]:
        lines.append(f"| {_pct(entry['share'])} | `{entry['where']}` |")
    lines += ["", "| self share | line |", "|---|---|"]
    for entry in profile["self_top"][:15]:
        lines.append(f"| {_pct(entry['share'])} | `{entry['where']}` |")
    lines.append("")
    return lines


def _ms(value) -> str:
    return "–" if value is None else f"{value * 1000:.0f} ms"


def _pct(value) -> str:
    return "–" if value is None else f"{value * 100:.0f}%"


def _fmt_load(values) -> str:
    return f"{values[0]:.1f}" if values else "–"


def sessions_per_core(steps: list[dict], target: float, think: float) -> dict:
    """The most sessions any run served within the target (every run at that count, and
    every smaller count, within it), and the CPU-bound estimate from the CPU per interaction."""
    by_count: dict[int, list[dict]] = {}
    for step in steps:
        by_count.setdefault(step["sessions"], []).append(step)

    def passed(step: dict) -> bool:
        p95 = step["server"].get("p95_s")
        return (
            p95 is not None and p95 <= target and not step["errors_total"] and not step["server_tracebacks"]
        )

    best = 0
    for count in sorted(by_count):
        if all(passed(s) for s in by_count[count]):
            best = count
        else:
            break
    per = [s["app_cpu_per_interaction_s"] for s in steps if s.get("app_cpu_per_interaction_s")]
    cpu = statistics.median(per) if per else None
    estimate = int(think / cpu) if cpu else None
    tested = max(by_count) if by_count else 0
    if best == tested:
        answer, how = f"≥ {best}", f"every step up to {tested} sessions met it; more were not tried"
    elif best:
        failed = min(c for c in by_count if c > best)
        answer, how = (
            f"{best} (tested)",
            f"{best} met it, {failed} did not; the goal (≥ 50) is {'met' if best >= 50 else 'not met'}",
        )
    else:
        answer, how = "< " + str(min(by_count)), "no step met it"
    return {
        "answer": answer,
        "met_at": best,
        "how": how,
        "cpu_per_interaction_s": cpu,
        "cpu_model": (
            f"the app spends {cpu * 1000:.0f} ms of CPU per interaction (median over the steps), so one "
            f"core is saturated at about {estimate} sessions at {think:g} s between interactions "
            "(queueing makes the p95 grow well before that)"
            if cpu
            else "–"
        ),
    }


# ---------------------------------------------------------------------------------------


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--sessions", default="10,20,50,100", help="the steps: concurrent sessions")
    parser.add_argument("--think", type=float, default=10.0, help="mean seconds between interactions")
    parser.add_argument("--warmup", type=float, default=20.0, help="seconds not counted at the start")
    parser.add_argument("--duration", type=float, default=90.0, help="seconds counted after the warm-up")
    parser.add_argument(
        "--interactions", type=int, default=0, help="stop each session after N counted (0: none)"
    )
    parser.add_argument("--repeat", default="50", help="steps run a second time (comma list; '' for none)")
    parser.add_argument("--profile", choices=("auto", "always", "never"), default="auto")
    parser.add_argument("--profile-at", type=int, default=50)
    parser.add_argument("--target", type=float, default=TARGET_P95_S)
    parser.add_argument("--app-core", type=int, default=0)
    parser.add_argument("--client-core", type=int, default=1)
    parser.add_argument(
        "--nice",
        type=int,
        default=-10,
        help="the app's and the clients' nice value (negative: ahead of the machine's other work; "
        "needs root, else 0)",
    )
    parser.add_argument("--sign-in-at-once", type=int, default=5)
    parser.add_argument("--timeout", type=float, default=60.0, help="per interaction, seconds")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--cache-dir", default=None, help="where the demo database is kept")
    parser.add_argument("--output", default=str(BENCH / "results" / "capacity.json"))
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("--render-only", action="store_true", help="rewrite the md from the json")
    args = parser.parse_args(argv)
    say = (lambda *a: None) if args.quiet else (lambda *a: print(*a, flush=True))
    if args.render_only:
        output = Path(args.output)
        output.with_suffix(".md").write_text(render_md(json.loads(output.read_text())))
        return 0

    import bench_pages

    cache = Path(args.cache_dir) if args.cache_dir else bench_pages.DEFAULT_CACHE
    if not args.cache_dir and not cache.parent.is_dir():
        cache = BENCH / ".cache"
    source = bench_pages.build_db(args.rows, cache)
    cores = os.sched_getaffinity(0)
    pinned = len(cores) >= 2 and {args.app_core, args.client_core} <= cores
    app_core = args.app_core if pinned else None
    if pinned:
        os.sched_setaffinity(0, {args.client_core})  # the clients (this process) off the app's core
    nice = args.nice
    if nice:
        try:
            os.setpriority(os.PRIO_PROCESS, 0, nice)  # the clients too: their clock is the client's view
        except OSError:
            nice = 0
    counts = [int(x) for x in args.sessions.split(",") if x.strip()]
    repeats = [int(x) for x in args.repeat.split(",") if x.strip() and int(x) in counts]
    plan = {
        "think_s": args.think,
        "warmup_s": args.warmup,
        "duration_s": args.duration,
        "interactions": args.interactions,
        "timeout_s": args.timeout,
        "sign_in_timeout_s": max(args.timeout, 180.0),
        "sign_in_at_once": args.sign_in_at_once,
        "start_timeout_s": 180.0,
        "seed": args.seed,
    }
    work = Path(tempfile.mkdtemp(prefix="aa-capacity-"))
    steps: list[dict] = []
    try:
        db = work / "audit.db"
        shutil.copy(source, db)  # the sessions' sign-ins are written to the copy, not the cache
        schedule = [(n, "run 1") for n in counts] + [(n, "run 2") for n in repeats]
        for n, label in schedule:
            say(f"{n} sessions ({label}) ...")
            step = run_step(db, n, plan, app_core=app_core, work=work, label=f"{n}-{label[-1]}", nice=nice)
            step["label"] = label
            steps.append(step)
            s = step["server"]
            say(
                f"  p50 {s.get('p50_s')} p95 {s.get('p95_s')} max {s.get('max_s')} s; "
                f"{step['interactions']} interactions, {step['errors_total']} errors, "
                f"CPU {step['app_cpu_share_of_core']}, others on core {step.get('others_on_app_core_share')}"
            )
        key = [s for s in steps if s["sessions"] == args.profile_at]
        over = any(s["server"].get("p95_s", 0) > args.target for s in key)
        profile = None
        if args.profile == "always" or (args.profile == "auto" and over and args.profile_at in counts):
            say(f"{args.profile_at} sessions, profiled ...")
            prof = run_step(
                db,
                args.profile_at,
                plan | {"profile": True},
                app_core=app_core,
                work=work,
                label="profile",
                nice=nice,
            )
            profile = prof.pop("profile", None)
            if profile is not None:
                profile["sessions"] = args.profile_at
                profile["step"] = {k: prof[k] for k in ("server", "interactions", "app_cpu_share_of_core")}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result = {
        "started": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "rows": args.rows,
        "target_p95_s": args.target,
        "think_s": args.think,
        "warmup_s": args.warmup,
        "duration_s": args.duration,
        "app_core": app_core,
        "client_core": args.client_core if pinned else None,
        "nice": nice,
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "machine": platform.machine(),
        },
        "steps": steps,
        "sessions_per_core": sessions_per_core(steps, args.target, args.think),
    }
    if profile is not None:
        result["profile"] = profile
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2) + "\n")
    output.with_suffix(".md").write_text(render_md(result))
    say(render_md(result))
    return 0 if all(not s["errors"] and not s["server_tracebacks"] for s in steps) else 1


if __name__ == "__main__":
    raise SystemExit(main())

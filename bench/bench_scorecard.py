"""The detection scorecard: recall of the demo's stories and false findings on ordinary traffic.

Usage::

    python bench/bench_scorecard.py                       # 5 seeds x 50k, 200k and 1M events
    python bench/bench_scorecard.py --sizes 1000000 --seeds 1001 1002

For every detection of ``audit_analytics.analysis.security.DETECTIONS``, on demo data
(``audit_analytics.demo.generate.generate``, ``--days`` days before a fixed ``--now``) of each
seed and size, run the way the product runs it with its shipped defaults: the events go into an
SQLite store, ``engines.sql.open_engine(store, mode="memory")`` serves them and
``review.security_review(engine, Filter(period="all", tz=ZONE), now=NOW).detect(rule, {})``
finds. Then, from the demo's own labels (``stories``: ``detections`` names the detections that
must find each story):

* a story is **found** by a detection when one of its findings' ``event_ids`` holds one of the
  story's events; **recall** is found / stories the detection must find;
* a **false finding** is a finding whose ``event_ids`` hold no story event at all. A ranked
  detection (permission changes: every change is listed, with a ``risk``) raises only its
  flagged findings (``risk > 0``): recall and false findings count those.

Goals (issue 17): recall 100 % for every detection; ordinary traffic raises at most 1 finding
per 10,000 events for any detection, and none for brute force, spray, account attack and
success after failures. Prints the table (detection x size x seed: stories, found, missed,
false findings, false per 10k events, findings per day) and the verdict, and writes
``bench/results/scorecard.md``.
"""

from __future__ import annotations

import argparse
import gc
import platform
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

import audit_analytics
from audit_analytics import Filter
from audit_analytics.analysis.review import security_review
from audit_analytics.analysis.security import DETECTIONS
from audit_analytics.demo import generate as demo
from audit_analytics.engines.sql import open_engine

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "scorecard.md"
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
DAYS = 90
ZONE = "Europe/Paris"  # the Security page's zone
SEEDS = (1001, 1002, 1003, 1004, 1005)
SIZES = (50_000, 200_000, 1_000_000)
PER_EVENTS = 10_000
QUIET_RULES = frozenset({"brute_force", "password_spray", "account_under_attack", "success_after_failures"})
"""Detections that must raise nothing at all on ordinary traffic."""


def allowed_false(rule: str, events: int) -> float:
    """The most false findings a detection may raise on ``events`` ordinary events."""
    return 0.0 if rule in QUIET_RULES else events / PER_EVENTS


def rule_of_story_detection() -> dict[str, str]:
    """The demo's story detection names (``spray``, ``off_hours``, ...) -> DETECTIONS rule,
    through the CLI names (``off-hours``)."""
    by_cli = {detection.cli_name: rule for rule, detection in DETECTIONS.items()}
    names = {name for names in demo.STORIES.values() for name in names}
    unknown = sorted(name for name in names if name.replace("_", "-") not in by_cli)
    if unknown:
        raise KeyError(f"story detections with no rule of that CLI name: {unknown}")
    return {name: by_cli[name.replace("_", "-")] for name in names}


@dataclass(frozen=True, slots=True)
class Score:
    """One detection on one demo log."""

    rule: str
    seed: int
    events: int
    days: int
    stories: int
    found: int
    findings: int
    false: int
    seconds: float
    false_flagged: int | None = None
    """False findings that carry a risk flag (detections that rank by risk)."""
    false_reasons: tuple[tuple[str, int], ...] = ()
    """False findings per ``reason`` (detections that give one)."""
    false_when: tuple[tuple[str, int], ...] = ()
    """False findings by who made them and when, in their home time (from `demo.users`)."""
    missed_stories: tuple[str, ...] = ()

    @property
    def missed(self) -> int:
        return self.stories - self.found

    @property
    def false_per_10k(self) -> float:
        return self.false * PER_EVENTS / self.events

    @property
    def per_day(self) -> float:
        return self.findings / self.days

    @property
    def recall_ok(self) -> bool:
        return self.found == self.stories

    @property
    def false_ok(self) -> bool:
        return self.false <= allowed_false(self.rule, self.events)


def score(
    rule: str, findings: pl.DataFrame, data: demo.DemoData, *, seed: int, days: int, seconds: float
) -> Score:
    """Recall and false findings of ``rule``'s ``findings`` against ``data``'s stories."""
    rules = rule_of_story_detection()
    listed = findings.height
    if "risk" in findings.columns:  # a ranked detection lists everything and raises the flagged
        findings = findings.filter(pl.col("risk") > 0)
    stories = data.stories.with_row_index("n")
    story_of_event = stories.select("n", "event_ids").explode("event_ids").rename({"event_ids": "id"})
    hits = (
        findings.select(pl.int_range(pl.len()).alias("finding"), "event_ids")
        .explode("event_ids")
        .join(story_of_event, left_on="event_ids", right_on="id", how="inner")
    )
    expected = stories.filter(
        pl.col("detections").list.eval(pl.element().replace_strict(rules, default=None) == rule).list.any()
    )
    found_stories = set(hits["n"].to_list())
    missed = [
        f"{s} ({d})"
        for n, s, d in expected.select("n", "story", "description").rows()
        if n not in found_stories
    ]
    true_findings = set(hits["finding"].to_list())
    false_mask = ~pl.Series(range(findings.height)).is_in(sorted(true_findings))
    false = findings.filter(false_mask)
    return Score(
        rule=rule,
        seed=seed,
        events=data.events.height,
        days=days,
        stories=expected.height,
        found=expected.height - len(missed),
        findings=listed,
        false=false.height,
        seconds=seconds,
        false_flagged=int((false["risk"] > 0).sum()) if "risk" in false.columns else None,
        false_reasons=tuple(sorted(Counter(false["reason"].to_list()).items()))
        if "reason" in false.columns
        else (),
        false_when=_whose_and_when(false, demo.users(seed)),
        missed_stories=tuple(missed),
    )


def _whose_and_when(findings: pl.DataFrame, people: pl.DataFrame) -> tuple[tuple[str, int], ...]:
    """Findings counted by their actor's kind and the home time of their first event: a
    service account; an on-call night; before, inside or after the person's working day."""
    if findings.is_empty():
        return ()
    actor = pl.col("actor") if "actor" in findings.columns else pl.col("accounts").list.first()
    rows = findings.select(actor.alias("actor"), "first").join(
        people.select("username", "time_zone", "service", "on_call", "day_start", "day_hours"),
        left_on="actor",
        right_on="username",
        how="left",
    )
    home = pl.concat(
        rows.filter(pl.col("time_zone") == zone).with_columns(
            local=pl.col("first").dt.convert_time_zone(zone).dt.replace_time_zone(None)
        )
        for zone in demo.HOME_TIME_ZONES
    ).with_columns(hour=pl.col("local").dt.hour() + pl.col("local").dt.minute() / 60)
    kind = (
        pl.when(pl.col("service"))
        .then(pl.lit("service account"))
        .when(pl.col("hour") < 6)
        .then(
            pl.when(pl.col("on_call").is_not_null()).then(pl.lit("on-call night")).otherwise(pl.lit("night"))
        )
        .when(pl.col("hour") < pl.col("day_start"))
        .then(pl.lit("early, before their day"))
        .when(pl.col("hour") > pl.col("day_start") + pl.col("day_hours"))
        .then(pl.lit("evening, after their day"))
        .otherwise(pl.lit("inside their working day"))
        .alias("kind")
    )
    counts = Counter(home.select(kind)["kind"].to_list())
    counts["unknown actor"] = rows.height - home.height
    return tuple(sorted((k, v) for k, v in counts.items() if v))


def measure(
    n_events: int,
    seed: int,
    *,
    now: datetime = NOW,
    days: int = DAYS,
    zone: str = ZONE,
    workdir: Path | None = None,
    rules: tuple[str, ...] = tuple(DETECTIONS),
) -> list[Score]:
    """Every detection (``rules``) on one demo log, through an SQLite store and the review."""
    data = demo.generate(n_events, seed=seed, now=now, days=days)
    with tempfile.TemporaryDirectory(dir=workdir) as folder:
        store = audit_analytics.open_store(f"sqlite:///{Path(folder) / 'scorecard.db'}")
        try:
            store.append(data.events)
            engine = open_engine(store, mode="memory")
            review = security_review(engine, Filter(period="all", tz=zone), now=now)
            scores = []
            for rule in rules:
                started = time.perf_counter()
                findings = review.detect(rule, {})
                elapsed = time.perf_counter() - started
                scores.append(score(rule, findings, data, seed=seed, days=days, seconds=elapsed))
            del engine, review
        finally:
            store.engine.dispose()
    return scores


# --------------------------------------------------------------------------- report


def _verdict(ok: bool) -> str:
    return "meets" if ok else "**misses**"


def render(scores: list[Score], *, now: datetime, days: int, zone: str, meta: dict[str, str]) -> str:
    sizes = sorted({s.events for s in scores})
    seeds = sorted({s.seed for s in scores})
    lines = [
        "# Detection scorecard",
        "",
        f"Written by `bench/bench_scorecard.py` on {meta['date']} ({meta['commit']}; {meta['python']}).",
        f"Demo data: `demo.generate(n, seed=s, now={now:%Y-%m-%dT%H:%MZ}, days={days})`, seeds "
        f"{', '.join(map(str, seeds))}; sizes {', '.join(f'{n:,}' for n in sizes)} events. Each log goes "
        f'into an SQLite store; `open_engine(store, mode="memory")` and `security_review(engine, '
        f'Filter(period="all", tz="{zone}"), now=now).detect(rule, {{}})` run every detection with '
        "its shipped defaults.",
        "",
        "A story is found when one of the detection's findings holds one of its events; a false "
        "finding holds no story event at all. Goals (issue 17): recall 100 %; at most 1 false "
        "finding per 10,000 events, none for brute force, spray, account attack and success after "
        "failures.",
        "",
        "## Verdict",
        "",
        "| detection | size | recall | false findings (worst seed) | false / 10k (worst) | allowed / 10k | recall goal | false goal |",
        "|---|---:|---:|---:|---:|---:|---|---|",
    ]
    for rule in DETECTIONS:
        for n in sizes:
            rows = [s for s in scores if s.rule == rule and s.events == n]
            if not rows:
                continue
            found, stories = sum(s.found for s in rows), sum(s.stories for s in rows)
            worst = max(rows, key=lambda s: s.false)
            allowed = 0 if rule in QUIET_RULES else 1
            lines.append(
                f"| {rule} | {n:,} | {found}/{stories} | {worst.false:,} | {worst.false_per_10k:.2f} | "
                f"{allowed} | {_verdict(all(s.recall_ok for s in rows))} | "
                f"{_verdict(all(s.false_ok for s in rows))} |"
            )
    overall = {rule: all(s.recall_ok and s.false_ok for s in scores if s.rule == rule) for rule in DETECTIONS}
    lines += [
        "",
        "Overall: "
        + "; ".join(f"{rule} {'meets' if ok else 'misses'}" for rule, ok in overall.items())
        + ".",
        "",
        "## Per seed",
        "",
        "| detection | size | seed | stories | found | missed | findings | false | false / 10k | findings / day | seconds |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for rule in DETECTIONS:
        for s in sorted((s for s in scores if s.rule == rule), key=lambda s: (s.events, s.seed)):
            lines.append(
                f"| {rule} | {s.events:,} | {s.seed} | {s.stories} | {s.found} | {s.missed} | "
                f"{s.findings:,} | {s.false:,} | {s.false_per_10k:.2f} | {s.per_day:.2f} | {s.seconds:.2f} |"
            )
    details = [s for s in scores if s.false]
    if details:
        lines += [
            "",
            "## What the false findings are",
            "",
            "Per run: the findings' reasons (or risk flags), then whose they are and when, in the "
            "actor's home time (the demo's own people: their working day, on-call turns, service "
            "accounts).",
            "",
        ]
        for s in details:
            parts = [f"{reason}: {count:,}" for reason, count in s.false_reasons]
            if s.false_flagged is not None:
                parts.append(f"with a risk flag: {s.false_flagged:,} of {s.false:,}")
            when = ", ".join(f"{kind} {count:,}" for kind, count in s.false_when)
            lines.append(
                f"- {s.rule}, {s.events:,} events, seed {s.seed}: " + "; ".join(parts) + f" ({when})"
            )
    missed = [s for s in scores if s.missed_stories]
    if missed:
        lines += ["", "## Missed stories", ""]
        lines += [
            f"- {s.rule}, {s.events:,} events, seed {s.seed}: {'; '.join(s.missed_stories)}" for s in missed
        ]
    return "\n".join(lines) + "\n"


def _commit() -> str:
    head = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    dirty = subprocess.run(
        ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no", "audit_analytics"],
        capture_output=True,
        text=True,
    )
    commit = head.stdout.strip() or "unknown commit"
    return f"commit {commit}" + (
        " with uncommitted changes in audit_analytics/" if dirty.stdout.strip() else ""
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    parser.add_argument("--days", type=int, default=DAYS)
    parser.add_argument("--now", type=datetime.fromisoformat, default=NOW, help="ISO time, UTC if naive")
    parser.add_argument("--zone", default=ZONE)
    parser.add_argument("--workdir", type=Path, default=None, help="where the SQLite files go (temporary)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    now = args.now if args.now.tzinfo else args.now.replace(tzinfo=UTC)
    scores: list[Score] = []
    for n in sorted(args.sizes):
        for seed in args.seeds:
            started = time.perf_counter()
            measured = measure(n, seed, now=now, days=args.days, zone=args.zone, workdir=args.workdir)
            scores += measured
            gc.collect()
            if not args.quiet:
                summary = ", ".join(f"{s.rule} {s.found}/{s.stories} false {s.false}" for s in measured)
                print(
                    f"{n:>9,} events, seed {seed}: {summary} ({time.perf_counter() - started:.0f} s)",
                    flush=True,
                )
    meta = {
        "date": f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "commit": _commit(),
        "python": f"Python {platform.python_version()}, polars {pl.__version__}",
    }
    markdown = render(scores, now=now, days=args.days, zone=args.zone, meta=meta)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(markdown)
    if not args.quiet:
        print(markdown)
    return 0 if all(s.recall_ok and s.false_ok for s in scores) else 1


if __name__ == "__main__":
    sys.exit(main())

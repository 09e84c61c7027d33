"""The security review and the activity summary, as the page, the CLI and a notebook run them.

Both take an engine (:class:`audit_analytics.engines.contract.AuditEngine`) and a Filter, and ask the
engine only through the contract: the in-memory engine answers from its frame, the SQL engine
in the database when the period holds more events than memory allows. Nothing here needs
Streamlit; the app passes a ``memo`` that caches each figure per version of the data.

Examples
--------
>>> from audit_analytics import open_store
>>> from audit_analytics.demo.generate import generate
>>> from audit_analytics.engines.sql import open_engine
>>> store = open_store("sqlite://")
>>> _ = store.append(generate(2_000, seed=4).events)
>>> flt = Filter(period="all")
>>> figures = [security_review(open_engine(store, mode=m), flt).summary().failures for m in ("memory", "pushdown")]
>>> figures[0] == figures[1]
True
>>> summary = activity_summary(open_engine(store, mode="pushdown"), flt)
>>> summary["count"] == store.count()
True
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl

from audit_analytics.analysis import activity, security
from audit_analytics.engines.contract import AuditEngine
from audit_analytics.filters import Filter

__all__ = ["SecurityReview", "security_review", "activity_summary", "Memo", "TOP_N"]

Memo = Callable[[tuple[Hashable, ...], Callable[[], Any]], Any]
"""``memo(key, compute)``: ``compute()``, or the value kept for ``key`` (the app's shared cache)."""

TOP_N = 10


def _no_memo(key: tuple[Hashable, ...], compute: Callable[[], Any]) -> Any:
    return compute()


@dataclass
class SecurityReview:
    """A period's events (every type and result) reviewed for login-failure patterns and
    the detections. Each figure is computed once per review (through ``memo``)."""

    engine: AuditEngine
    filter: Filter
    now: datetime
    memo: Memo = field(default=_no_memo, repr=False)
    policy: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """The organisation's detection settings (:func:`audit_analytics.analysis.security.load_policy`):
    they replace a rule's shipped defaults; the thresholds given to :meth:`detect` replace them."""

    @property
    def tz(self) -> str:
        return self.filter.tz

    @property
    def bounds(self) -> tuple[datetime | None, datetime | None]:
        return self.filter.bounds(now=self.now)

    def cached(self, name: str, compute: Callable[[], Any], *extra: Hashable) -> Any:
        return self.memo(("security", name, self.filter, self.bounds, *extra), compute)

    @property
    def count(self) -> int:
        return int(self.cached("count", lambda: self.engine.count(self.filter, now=self.now)))

    def failures_by(self, key: str, top: int | None) -> pl.DataFrame:
        """Login failures per source IP (``key="ip"``) or per account (``"account"``)."""
        if key == "ip":
            return self.engine.failures_by_ip(self.filter, top=top, now=self.now)
        if key == "account":
            return self.engine.failures_by_account(self.filter, top=top, now=self.now)
        raise ValueError(f"failures by {key!r}: use 'ip' or 'account'")

    def failures_by_hour(self) -> pl.DataFrame:
        return self.engine.failures_by_hour(self.filter, tz=self.tz, now=self.now)

    def failures_over_time(self, every: str) -> pl.DataFrame:
        return self.engine.failures_over_time(self.filter, every=every, tz=self.tz, now=self.now)

    def summary(self) -> security.FailureSummary:
        summary: security.FailureSummary = self.engine.failure_summary(self.filter, now=self.now)
        return summary

    def detect(
        self, rule: str, thresholds: Mapping[str, Any], extra: Mapping[str, Any] | None = None
    ) -> pl.DataFrame:
        """Findings of one detection (raises NeedsMemory when it cannot run on this period).
        The off-hours rule's organisation zone, when not given, is the zone the review shows."""
        extra = dict(extra or {})
        thresholds = {**self.policy.get(rule, {}), **thresholds}
        if rule == "stuck_operations":
            extra.setdefault("now", self.now)
        if rule == "off_hours" and not thresholds.get("org_tz"):
            thresholds["org_tz"] = self.tz
        return self.engine.detect(rule, self.filter, thresholds, extra, now=self.now)

    def span(self) -> tuple[datetime, datetime] | None:
        """The reviewed period, cut to the events there are (open ends take the data's)."""

        def compute() -> tuple[datetime, datetime] | None:
            first, last = self.engine.time_range(self.filter, now=self.now)
            if first is None or last is None:
                return None
            lo, hi = self.bounds
            return (
                max(lo, first) if lo else first,
                min(hi, last + timedelta(microseconds=1)) if hi else last,
            )

        span: tuple[datetime, datetime] | None = self.cached("span", compute)
        return span


def security_review(
    engine: AuditEngine,
    flt: Filter,
    *,
    now: datetime | None = None,
    memo: Memo | None = None,
    policy: Mapping[str, Mapping[str, Any]] | None = None,
) -> SecurityReview:
    """The review of ``flt``'s period, users and search over every type and result (the
    failure charts pick the login failures themselves; the detections need the rest).
    ``now`` is taken to the minute, so a review's cache holds for a minute. ``policy``
    defaults to the organisation's security policy file (raises DetectionError when it
    cannot be read)."""
    now = (now or datetime.now(UTC)).replace(second=0, microsecond=0)
    if policy is None:
        policy = security.load_policy()
    return SecurityReview(engine, flt.replace(types=(), results=()), now, memo or _no_memo, policy)


def activity_summary(
    engine: AuditEngine, flt: Filter, *, top: int = TOP_N, now: datetime | None = None
) -> dict[str, Any]:
    """Every figure of the Activity page for one filter: counts, buckets, top actors and
    targets, change against the previous period, weekday×hour, and the retention summary
    of the whole table. The engine hands over the events (:meth:`AuditEngine.activity`: held in
    memory, or counted per quarter-hour in the database when the period is larger than the
    memory limit), and every figure is computed from them here by one set of functions."""
    got = engine.activity(flt, top=top, now=now)
    events = got.events  # the events themselves, or their counts: the figures read either
    lo, hi = flt.bounds(now=now)
    lo, hi = lo or got.first, hi or got.last
    every = activity.choose_bucket(lo, hi) if lo and hi else "1d"
    before = activity.previous_period(flt, now=now)
    previous = engine.activity(before, now=now) if before is not None else None
    previous_events = previous.events if previous is not None else events.clear()
    tz = flt.tz
    return {
        "count": got.total,
        "actors": got.actors,
        "every": every,
        # a period before that holds no events (the log starts inside this one) is nothing to
        # compare with: every change would be "+N" and every rate change empty
        "has_previous": previous is not None and previous.total > 0,
        "previous_empty": previous is not None and previous.total == 0,
        # the period is still running: the period before was cut at the same point (like with like)
        "running": activity.is_running(flt, now=now),
        "events": activity.events_over_time(events, every=every, tz=tz),
        "mix": activity.result_mix(events, every=every, tz=tz),
        "change": activity.failure_rate_change(events, previous_events),
        "top_actors": got.top_actors,
        "top_targets": got.top_targets,
        "changes": activity.changes_over_time(events, every=every, tz=tz),
        "heat": activity.weekday_hour(events, tz=tz),
        "retention": engine.retention_summary(),
    }

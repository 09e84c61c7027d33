"""Unit tests of audit_analytics.analysis.security on small hand-built frames.

Expected values are worked out by hand or by plain-Python references in this file, never
copied from the function's output.
"""

from __future__ import annotations

import dataclasses
import inspect
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from audit_analytics import schema
from audit_analytics.analysis import security
from audit_analytics.analysis.security import DetectionError
from audit_analytics.demo import generate as demo

T0 = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)  # a Monday
US = timedelta(microseconds=1)


def at(seconds: float = 0, *, base: datetime = T0) -> datetime:
    return base + timedelta(seconds=seconds)


def events(*rows: dict) -> pl.DataFrame:
    """An event frame; every row defaults to a failed auth/login from 192.0.2.1 by root."""
    defaults = {
        "actor": "root",
        "type": "auth",
        "action": "login",
        "result": "failed",
        "ip": "192.0.2.1",
        "target": "sso",
    }
    full = [{**defaults, "id": f"e{i}", **row} for i, row in enumerate(rows)]
    frame = pl.DataFrame(full, schema_overrides={"time": pl.Datetime("us", "UTC")}, infer_schema_length=None)
    return schema.conform(frame)


def fail(seconds: float = 0, **extra) -> dict:
    return {"time": at(seconds), **extra}


def ok(seconds: float = 0, **extra) -> dict:
    return {"time": at(seconds), "result": "done", **extra}


# --------------------------------------------------------------------------- aggregates

BY_IP_CASES = [
    pytest.param(
        [fail(0, ip="10.0.0.2"), fail(1, ip="10.0.0.1"), fail(2, ip="10.0.0.2", actor="bob")],
        None,
        [("10.0.0.2", 2, 2), ("10.0.0.1", 1, 1)],
        id="counts-and-distinct-accounts",
    ),
    pytest.param(
        [fail(0, ip="10.0.0.9"), fail(1, ip="10.0.0.1"), fail(2, ip="10.0.0.5")],
        2,
        [("10.0.0.1", 1, 1), ("10.0.0.5", 1, 1)],
        id="ties-broken-by-ip-at-top",
    ),
    pytest.param(
        [fail(0, ip=None), fail(1, ip=""), fail(2, ip="10.0.0.1")],
        None,
        [("10.0.0.1", 1, 1)],
        id="null-and-empty-ip-excluded",
    ),
    pytest.param(
        [
            ok(0, ip="10.0.0.1"),
            fail(1, ip="10.0.0.2", action="logout"),
            fail(2, ip="10.0.0.3", type="system"),
        ],
        None,
        [],
        id="only-login-failures-count",
    ),
    pytest.param(
        [fail(0, actor=None), fail(1, actor="")],
        None,
        [("192.0.2.1", 2, 0)],
        id="no-account-names",
    ),
]


@pytest.mark.parametrize(("rows", "top", "expected"), BY_IP_CASES)
def test_failures_by_ip(rows, top, expected):
    result = security.failures_by_ip(events(*rows), top=top)
    assert result.columns == ["ip", "failures", "accounts", "first", "last"]
    assert result.select("ip", "failures", "accounts").rows() == expected


def test_failures_by_ip_first_last_and_lazy():
    frame = events(fail(30, ip="10.0.0.1"), fail(10, ip="10.0.0.1"), fail(20, ip="10.0.0.1"))
    result = security.failures_by_ip(frame.lazy())
    assert result.select("first", "last").row(0) == (at(10), at(30))


BY_ACCOUNT_CASES = [
    pytest.param(
        [fail(0, actor="bob", ip="10.0.0.1"), fail(1, actor="bob", ip="10.0.0.2"), fail(2, actor="ann")],
        None,
        [("bob", 2, 2), ("ann", 1, 1)],
        id="counts-and-distinct-ips",
    ),
    pytest.param(
        [fail(0, actor=None), fail(1, actor=""), fail(2, actor="ann", ip=None)],
        None,
        [("ann", 1, 0)],
        id="null-and-empty-actor-excluded",
    ),
    pytest.param(
        [fail(0, actor="zed"), fail(1, actor="amy"), fail(2, actor="kim"), fail(3, actor="kim")],
        2,
        [("kim", 2, 1), ("amy", 1, 1)],
        id="top-with-tie-by-name",
    ),
]


@pytest.mark.parametrize(("rows", "top", "expected"), BY_ACCOUNT_CASES)
def test_failures_by_account(rows, top, expected):
    result = security.failures_by_account(events(*rows), top=top)
    assert result.columns == ["account", "failures", "ips", "first", "last"]
    assert result.select("account", "failures", "ips").rows() == expected


HOUR_CASES = [
    # 2025-01-06 (Mon) 23:30 UTC is Tuesday 00:30 in Berlin in winter (UTC+1).
    pytest.param(
        datetime(2025, 1, 6, 23, 30, tzinfo=UTC), "Europe/Berlin", (2, 0), id="winter-crosses-midnight"
    ),
    # In summer Berlin is UTC+2: 2025-07-07 (Mon) 21:59 UTC is 23:59 Monday.
    pytest.param(datetime(2025, 7, 7, 21, 59, tzinfo=UTC), "Europe/Berlin", (1, 23), id="summer-plus-two"),
    # The DST change of 2025-03-30: 01:30 UTC is 03:30 CEST (02:xx does not exist).
    pytest.param(datetime(2025, 3, 30, 1, 30, tzinfo=UTC), "Europe/Berlin", (7, 3), id="spring-forward"),
    pytest.param(
        datetime(2025, 1, 6, 3, 0, tzinfo=UTC), "America/New_York", (7, 22), id="new-york-previous-day"
    ),
    pytest.param(datetime(2025, 1, 6, 3, 0, tzinfo=UTC), "UTC", (1, 3), id="utc"),
]


@pytest.mark.parametrize(("moment", "tz", "cell"), HOUR_CASES)
def test_failures_by_hour_shifts_to_zone(moment, tz, cell):
    result = security.failures_by_hour(events({"time": moment}), tz=tz)
    assert result.height == 168
    assert result.select("weekday", "hour").unique().height == 168
    assert result.filter(pl.col("failures") > 0).select("weekday", "hour", "failures").rows() == [(*cell, 1)]


@pytest.mark.parametrize(("moment", "tz", "cell"), HOUR_CASES)
def test_failures_by_hour_of_day_shifts_to_zone(moment, tz, cell):
    result = security.failures_by_hour_of_day(events({"time": moment}), tz=tz)
    assert result["hour"].to_list() == list(range(24))
    assert result.filter(pl.col("failures") > 0).rows() == [(cell[1], 1)]


def test_failures_by_hour_empty_frame_has_all_cells():
    result = security.failures_by_hour(schema.empty_frame())
    assert result.height == 168 and result["failures"].sum() == 0


def test_failures_over_time_fills_gaps_and_counts_successes():
    frame = events(fail(0), fail(60), ok(2 * 3600 + 5), fail(2 * 3600 + 10, result="pending"))
    result = security.failures_over_time(frame, every="1h")
    expected = pl.DataFrame(
        {
            "bucket": [T0, T0 + timedelta(hours=1), T0 + timedelta(hours=2)],
            "failures": [2, 0, 0],
            "successes": [0, 0, 1],
        },
        schema={"bucket": pl.Datetime("us", "UTC"), "failures": pl.UInt32, "successes": pl.UInt32},
    )
    assert_frame_equal(result, expected)


def test_failures_over_time_days_follow_local_clock():
    # 23:30 UTC on Jan 6 is Jan 7 in Berlin: the local day bucket says so.
    frame = events({"time": datetime(2025, 1, 6, 23, 30, tzinfo=UTC)})
    result = security.failures_over_time(frame, every="1d", tz="Europe/Berlin")
    assert result["bucket"].dt.date().to_list() == [datetime(2025, 1, 7).date()]


def test_failure_summary():
    frame = events(
        fail(0, actor="ann", ip="10.0.0.1"),
        fail(1, actor="", ip="10.0.0.1"),
        fail(2, actor="bob", ip=None),
        ok(3, actor="ann"),
    )
    assert security.failure_summary(frame) == security.FailureSummary(
        failures=3,
        distinct_ips=1,
        distinct_accounts=2,
        successes_after_failures=0,
        failures_without_ip=1,
        failures_without_account=1,
    )


def test_failure_summary_counts_successes_after_failures():
    frame = events(*(fail(i, actor="ann") for i in range(5)), ok(10, actor="ann"))
    assert security.failure_summary(frame).successes_after_failures == 1


# --------------------------------------------------------------------------- brute force

W = timedelta(seconds=120)

BRUTE_FORCE_CASES = [
    pytest.param([0, 1, 2], 3, W, [(3, 3)], id="three-in-window"),
    pytest.param([0, 1, 120], 3, W, [], id="exactly-window-apart-is-outside"),
    pytest.param([0, 1, 120 - 1e-6], 3, W, [(3, 3)], id="window-minus-1us-is-inside"),
    pytest.param([0, 0, 0], 3, W, [(3, 3)], id="ties-at-one-instant"),
    pytest.param([0, 60, 119, 179, 238], 3, W, [(5, 3)], id="overlapping-windows-merge"),
    pytest.param([0, 1, 2, 200, 201, 202], 3, W, [(3, 3), (3, 3)], id="separate-bursts-two-findings"),
    pytest.param([0, 1, 2, 121, 122], 3, W, [(3, 3)], id="tail-below-threshold-not-merged"),
    pytest.param([5, 0, 3, 1], 4, W, [(4, 4)], id="unsorted-input"),
]


@pytest.mark.parametrize(("offsets", "threshold", "window", "expected"), BRUTE_FORCE_CASES)
def test_brute_force_windows(offsets, threshold, window, expected):
    frame = events(*(fail(s) for s in offsets))
    result = security.brute_force(frame, threshold=threshold, window=window)
    assert result.select("count", "max_in_window").rows() == expected


def test_brute_force_columns_and_lists():
    frame = events(
        fail(0, actor="root"),
        fail(1, actor="admin"),
        fail(2, actor=None),
        fail(3, ip="10.9.9.9"),
        fail(50, ip=None),
        fail(51, ip=None),
        fail(52, ip=None),
    )
    result = security.brute_force(frame, threshold=3)
    assert result.columns == [
        "key",
        "first",
        "last",
        "count",
        "max_in_window",
        "peak_start",
        "accounts",
        "ips",
        "event_ids",
    ]
    assert result.rows() == [
        ("192.0.2.1", at(0), at(2), 3, 3, at(0), ["admin", "root"], ["192.0.2.1"], ["e0", "e1", "e2"]),
    ]


def test_brute_force_peak_start_is_first_fullest_window():
    # Windows from 0: {0, 60, 100} = 3; from 60: {60, 100, 150, 170} = 4; from 100: 4 as well.
    frame = events(*(fail(s) for s in (0, 60, 100, 150, 170)))
    result = security.brute_force(frame, threshold=3)
    assert result.select("max_in_window", "peak_start").rows() == [(4, at(60))]


def test_brute_force_sorted_by_first_across_keys():
    frame = events(
        *(fail(100 + s, ip="10.0.0.1") for s in range(3)), *(fail(s, ip="10.0.0.2") for s in range(3))
    )
    result = security.brute_force(frame, threshold=3)
    assert result["key"].to_list() == ["10.0.0.2", "10.0.0.1"]


def test_brute_force_empty_and_lazy():
    assert security.brute_force(schema.empty_frame()).height == 0
    frame = events(*(fail(s) for s in range(8)))
    assert_frame_equal(security.brute_force(frame.lazy()), security.brute_force(frame))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"threshold": 0}, "threshold", id="zero-threshold"),
        pytest.param({"window": 120}, "timedelta", id="window-not-timedelta"),
        pytest.param({"window": timedelta(0)}, "positive", id="zero-window"),
    ],
)
def test_brute_force_rejects_bad_thresholds(kwargs, message):
    with pytest.raises(DetectionError, match=message):
        security.brute_force(events(fail(0)), **kwargs)


# --------------------------------------------------------------------------- spray and account attack

SPRAY_CASES = [
    pytest.param(["a", "b", "c"], [0, 1, 2], 3, [(3, 3, 3)], id="three-accounts"),
    pytest.param(["a", "a", "a", "b"], [0, 1, 2, 3], 3, [], id="repeats-are-not-distinct"),
    pytest.param(["a", "b", "c"], [0, 1, 300], 3, [], id="exactly-window-apart-is-outside"),
    pytest.param(["a", "b", "c"], [0, 1, 300 - 1e-6], 3, [(3, 3, 3)], id="window-minus-1us-is-inside"),
    pytest.param(["a", None, "b", ""], [0, 1, 2, 3], 2, [(4, 4, 2)], id="no-account-counts-but-not-distinct"),
    pytest.param(["a", "b", "a", "c"], [0, 1, 299, 300.5], 3, [(3, 3, 3)], id="account-reappears-inside"),
]


@pytest.mark.parametrize(("actors", "offsets", "k", "expected"), SPRAY_CASES)
def test_password_spray(actors, offsets, k, expected):
    frame = events(*(fail(s, actor=a) for a, s in zip(actors, offsets, strict=True)))
    result = security.password_spray(frame, min_accounts=k)
    assert result.select("count", "max_in_window", "max_accounts").rows() == expected


def test_password_spray_keeps_ips_apart():
    frame = events(fail(0, actor="a", ip="10.0.0.1"), fail(1, actor="b", ip="10.0.0.2"), fail(2, actor="c"))
    assert security.password_spray(frame, min_accounts=2).height == 0


ACCOUNT_CASES = [
    pytest.param(
        [("10.0.0.1", 0), ("10.0.0.2", 1), ("10.0.0.3", 2)],
        {"min_ips": 3, "threshold": 99},
        [(3, 3, 3)],
        id="by-ips",
    ),
    pytest.param(
        [("10.0.0.1", s) for s in range(4)], {"min_ips": 2, "threshold": 4}, [(4, 4, 1)], id="by-count-one-ip"
    ),
    pytest.param(
        [("10.0.0.1", 0), ("10.0.0.2", 600), ("10.0.0.3", 601)],
        {"min_ips": 3, "threshold": 99},
        [],
        id="ips-spread-over-exactly-window",
    ),
    pytest.param(
        [(None, 0), (None, 1), ("10.0.0.1", 2)],
        {"min_ips": 2, "threshold": 99},
        [],
        id="null-ip-not-distinct",
    ),
]


@pytest.mark.parametrize(("attempts", "kwargs", "expected"), ACCOUNT_CASES)
def test_account_under_attack(attempts, kwargs, expected):
    frame = events(*(fail(s, actor="ceo", ip=ip) for ip, s in attempts))
    result = security.account_under_attack(frame, **kwargs)
    assert result.select("count", "max_in_window", "max_ips").rows() == expected
    if expected:
        assert result["key"].to_list() == ["ceo"]


# --------------------------------------------------------------------------- success after failures

SUCCESS_CASES = [
    pytest.param([fail(s) for s in range(5)] + [ok(60)], {}, [5], id="five-then-success"),
    pytest.param([fail(s) for s in range(4)] + [ok(60)], {}, [], id="four-is-not-enough"),
    pytest.param(
        [fail(0)] + [fail(s) for s in range(1, 5)] + [ok(600)],
        {"threshold": 4},
        [4],
        id="exactly-within-is-outside",
    ),
    pytest.param(
        [fail(0)] + [fail(s) for s in range(1, 5)] + [ok(600 - 1e-6)],
        {"threshold": 4},
        [5],
        id="within-minus-1us-is-inside",
    ),
    pytest.param([fail(0.0)] * 5 + [ok(0)], {}, [5], id="same-instant-counts-as-before"),
    pytest.param([fail(s) for s in range(5)] + [ok(10, actor="bob")], {}, [], id="other-account"),
    pytest.param(
        [fail(s, actor=f"u{s}") for s in range(5)] + [ok(10, actor="x")],
        {"by": "ip"},
        [5],
        id="by-ip-any-account",
    ),
    pytest.param(
        [fail(s, ip="10.0.0.1") for s in range(5)] + [ok(10, ip="10.0.0.2")],
        {"by": "both"},
        [],
        id="both-needs-same-ip",
    ),
    pytest.param([fail(s) for s in range(5)] + [ok(10), ok(20)], {}, [5, 5], id="one-finding-per-success"),
    pytest.param(
        [fail(s, actor=None) for s in range(5)] + [ok(10, actor=None)], {}, [], id="no-account-no-key"
    ),
]


@pytest.mark.parametrize(("rows", "kwargs", "expected"), SUCCESS_CASES)
def test_success_after_failures(rows, kwargs, expected):
    result = security.success_after_failures(events(*rows), **kwargs)
    assert result["failures"].to_list() == expected


def test_success_after_failures_columns():
    frame = events(fail(0, ip="10.0.0.1"), fail(1, ip="10.0.0.2"), ok(2, ip="10.0.0.3"))
    result = security.success_after_failures(frame, threshold=2)
    assert result.drop("first", "last", "success_time").rows(named=True) == [
        {
            "key": "root",
            "account": "root",
            "ip": "10.0.0.3",
            "success_id": "e2",
            "failures": 2,
            "count": 2,
            "accounts": ["root"],
            "ips": ["10.0.0.1", "10.0.0.2", "10.0.0.3"],
            "event_ids": ["e0", "e1", "e2"],
        }
    ]
    assert result.select("first", "last", "success_time").row(0) == (at(0), at(2), at(2))


def test_success_after_failures_rejects_unknown_key():
    with pytest.raises(DetectionError, match="by must be"):
        security.success_after_failures(events(fail(0)), by="email")


# --------------------------------------------------------------------------- off hours

OFF_HOURS_CASES = [
    pytest.param(datetime(2025, 1, 6, 7, 59, tzinfo=UTC), "UTC", "outside working hours", id="before-start"),
    pytest.param(datetime(2025, 1, 6, 8, 0, tzinfo=UTC), "UTC", None, id="at-start-is-inside"),
    pytest.param(datetime(2025, 1, 6, 18, 59, tzinfo=UTC), "UTC", None, id="just-before-end"),
    pytest.param(
        datetime(2025, 1, 6, 19, 0, tzinfo=UTC), "UTC", "outside working hours", id="at-end-is-outside"
    ),
    pytest.param(datetime(2025, 1, 11, 12, 0, tzinfo=UTC), "UTC", "outside working hours", id="saturday"),
    # 07:45 UTC in July is 09:45 in Paris (inside); in January it would be 08:45.
    pytest.param(datetime(2025, 7, 7, 7, 45, tzinfo=UTC), "Europe/Paris", None, id="summer-zone-inside"),
    # 17:30 UTC on a July Monday is 19:30 in Paris: outside.
    pytest.param(
        datetime(2025, 7, 7, 17, 30, tzinfo=UTC), "Europe/Paris", "outside working hours", id="summer-zone"
    ),
    # Friday 23:30 UTC is Saturday 08:30 in Tokyo: a weekend.
    pytest.param(
        datetime(2025, 1, 10, 23, 30, tzinfo=UTC), "Asia/Tokyo", "outside working hours", id="tokyo-sat"
    ),
]


@pytest.mark.parametrize(("moment", "tz", "reason"), OFF_HOURS_CASES)
def test_off_hours_working_hours(moment, tz, reason):
    # one event: no history either side, so a person is judged by the organisation's hours
    frame = events({"time": moment, "result": "done", "action": "delete", "type": "backup"})
    result = security.off_hours(frame, org_tz=tz)
    assert result["reason"].to_list() == ([] if reason is None else [reason])
    if reason:
        assert "outside working hours (08:00–19:00 Mon–Fri, " + tz + ")" in result["why"].item()


def test_off_hours_looks_only_at_successes_and_changes():
    night = datetime(2025, 1, 6, 2, 0, tzinfo=UTC)
    frame = events(
        {"time": night, "result": "done"},  # login success
        {"time": night, "result": "failed"},  # login failure
        {"time": night, "result": "done", "type": "secret", "action": "read"},  # not a change
        {"time": night, "result": "failed", "type": "user", "action": "role_change"},  # not done
        {"time": night, "result": "done", "type": "user", "action": "role_change"},
    )
    assert security.off_hours(frame)["id"].to_list() == ["e0", "e4"]


def _days_at(actor: str, hour: int, days: range, **extra) -> list[dict]:
    base = T0.replace(hour=0)
    return [
        {"time": base + timedelta(days=d, hours=hour), "result": "done", "actor": actor, **extra}
        for d in days
    ]


def test_off_hours_unusual_hour_for_user():
    everyday = (1, 2, 3, 4, 5, 6, 7)
    # 12 days of logins at 10:00, then one at 21:00: outside hours and new for ann
    rows = _days_at("ann", 10, range(12))
    rows.append({"time": T0.replace(hour=21) + timedelta(days=14), "result": "done", "actor": "ann"})
    # at 16:00 the hour is new for ann too, but inside working hours: not flagged
    rows.append({"time": T0.replace(hour=16) + timedelta(days=15), "result": "done", "actor": "ann"})
    # bob has too little history either side: judged by the organisation's hours
    rows.append({"time": T0.replace(hour=21) + timedelta(days=14), "result": "done", "actor": "bob"})
    result = security.off_hours(events(*rows), weekdays=everyday)
    assert result.select("key", "reason").rows() == [
        ("ann", "unusual hour for this user"),
        ("bob", "outside working hours"),
    ]
    assert result["why"][0] == (
        "first login at 21:00 (UTC) with nothing else between 19:00–00:00 in 30 days for ann; "
        "usual hours 10–11, 16–17, 21–22"
    )


def test_off_hours_night_worker_is_not_flagged_at_their_usual_hour():
    # an on-call engineer who worked at 02:00 three weeks ago: 02:00 again is theirs
    rows = _days_at("oncall", 10, range(20)) + _days_at("oncall", 2, range(3))
    rows.append({"time": T0.replace(hour=2) + timedelta(days=24), "result": "done", "actor": "oncall"})
    result = security.off_hours(events(*rows))
    assert result.filter(pl.col("first") >= T0 + timedelta(days=8)).height == 0
    # ... but a first night after 40 days of days is
    rows = _days_at("ann", 10, range(40))
    rows.append({"time": T0.replace(hour=2) + timedelta(days=41), "result": "done", "actor": "ann"})
    assert security.off_hours(events(*rows))["reason"].to_list() == ["unusual hour for this user"]


def test_off_hours_a_burst_does_not_vouch_for_itself():
    # six deletions at 03:00 within ten minutes after a month of days: all six flagged
    rows = _days_at("admin", 10, range(30))
    night = T0.replace(hour=3) + timedelta(days=31)
    rows += [
        {"time": night + timedelta(minutes=2 * i), "result": "done", "actor": "admin", "type": "backup",
         "action": "delete"}
        for i in range(6)
    ]  # fmt: skip
    result = security.off_hours(events(*rows))
    assert result.height == 6 and set(result["reason"]) == {"unusual hour for this user"}
    assert result["why"][0].startswith(
        "first backup delete at 03:00 (UTC) with nothing else between 01:00–06:00 in 30 days for admin"
    )


def test_off_hours_service_accounts_are_judged_by_their_own_profile():
    everyday = (1, 2, 3, 4, 5, 6, 7)
    # svc-ci (by its name) works 01:00 every night: not flagged, though outside office hours
    rows = _days_at("svc-ci", 1, range(20))
    # a 24/7 account without a service name: judged by its own hours too
    rows += [r for h in range(24) for r in _days_at("backup-runner", h, range(0, 20, 2))]
    result = security.off_hours(events(*rows), weekdays=everyday)
    assert result.height == 0
    # the nightly job suddenly at 14:00 (inside office hours) is unusual for it
    rows.append({"time": T0.replace(hour=14) + timedelta(days=21), "result": "done", "actor": "svc-ci"})
    result = security.off_hours(events(*rows), weekdays=everyday)
    assert result.select("key", "reason", "service").rows() == [
        ("svc-ci", "unusual hour for this service account", True)
    ]
    # the pattern is a setting
    renamed = [{**r, "actor": "nightly"} for r in rows if r["actor"] == "svc-ci"]
    found = security.off_hours(events(*renamed), weekdays=everyday, service_accounts="^nightly$")
    assert found["reason"].to_list() == ["unusual hour for this service account"]
    with pytest.raises(DetectionError, match="regular expression"):
        security.off_hours(events(*renamed), service_accounts="(")


def test_off_hours_new_actor_is_judged_by_the_days_after():
    # dana's first event is a night login; her next 20 days are at 10:00: the night stands out
    rows = [{"time": T0.replace(hour=2), "result": "done", "actor": "dana"}] + _days_at(
        "dana", 10, range(1, 21)
    )
    result = security.off_hours(events(*rows))
    assert result["reason"].to_list() == ["unusual hour for this user"]
    assert "on no other day in the 30 days after it did dana work between 00:00–05:00" in result["why"].item()
    # a Tokyo colleague whose days fall at night in UTC is not flagged from her first day
    rows = _days_at("kenji", 1, range(21))
    assert security.off_hours(events(*rows)).height == 0


def test_off_hours_since_keeps_history_out_of_the_findings():
    rows = (
        _days_at("ann", 10, range(30)) + _days_at("ann", 2, range(31, 32)) + _days_at("ann", 5, range(33, 34))
    )
    assert security.off_hours(events(*rows)).height == 2
    found = security.off_hours(events(*rows), since=T0.replace(hour=0) + timedelta(days=32))
    assert found["first"].to_list() == [T0.replace(hour=5) + timedelta(days=33)]


def test_off_hours_lookback_edge():
    # The same hour used exactly `lookback` before still counts as used ([t - L, t)).
    rows = [{"time": T0 + timedelta(days=d), "result": "done", "actor": "ann"} for d in range(11)]
    frame = events(*rows)
    everyday = (1, 2, 3, 4, 5, 6, 7)
    result = security.off_hours(frame, weekdays=everyday, lookback=timedelta(days=1), min_history=1)
    assert result.height == 0
    result = security.off_hours(frame, weekdays=everyday, lookback=timedelta(days=1) - US, min_history=1)
    assert result.height == 0  # no history inside the shorter window either: no verdict


def test_off_hours_rejects_bad_settings():
    with pytest.raises(DetectionError, match="HH:MM"):
        security.off_hours(events(ok(0)), hours=("8h", "18:00"))
    with pytest.raises(DetectionError, match="weekdays"):
        security.off_hours(events(ok(0)), weekdays=(0, 1))


_DAY_US = 86_400_000_000
_INSTANTS = st.lists(st.integers(1_700_000_000_000_000, 1_700_000_000_000_000 + 90 * _DAY_US), max_size=25)


@settings(max_examples=200, deadline=None)
@given(d=_INSTANTS, r=_INSTANTS, lookback_days=st.integers(0, 60))
def test_the_habits_search_the_same_whichever_way_instants_are_coded(d, r, lookback_days):
    # _habits_of packs (actor, instant) into one integer: microseconds since the earliest
    # instant when they fit beside the actor, else ranks; its searches need only that both
    # keep every instant's order and ties (an event at exactly the bound of a query included)
    offsets = (-lookback_days * _DAY_US, -_DAY_US // 2, _DAY_US // 2, lookback_days * _DAY_US)
    d_t, r_t = np.array(d, dtype=np.int64), np.array(r, dtype=np.int64)

    def coded(key_bits: int) -> tuple[int, np.ndarray]:
        bits, events, queries = security._instants(d_t, r_t, offsets, key_bits=key_bits)
        return bits, np.concatenate([events, *(queries[off] for off in offsets)])

    (direct_bits, direct), (rank_bits, ranked) = coded(13), coded(62)
    assert rank_bits == 32 and direct_bits + 13 <= 62  # 90 days and 60 more fit: microseconds
    assert ((direct >= 0) & (direct < 1 << direct_bits)).all()
    assert ((ranked >= 0) & (ranked < 1 << rank_bits)).all()
    assert (np.sign(direct[:, None] - direct[None, :]) == np.sign(ranked[:, None] - ranked[None, :])).all()


# --------------------------------------------------------------------------- permission changes

PERMISSION_CASES = [
    pytest.param(
        {"actor": "eve", "target": "eve", "before": '{"role": "viewer"}', "after": '{"role": "admin"}'},
        ("viewer", "admin", [], [], True, True),
        id="self-grant-admin",
    ),
    pytest.param(
        {"actor": "boss", "target": "eve", "before": '{"role": "viewer"}', "after": '{"role": "Owner"}'},
        ("viewer", "Owner", [], [], False, True),
        id="owner-case-insensitive",
    ),
    pytest.param(
        {"actor": "boss", "target": "eve", "before": '{"role": "admin"}', "after": '{"role": "superuser"}'},
        ("admin", "superuser", [], [], False, False),
        id="already-admin",
    ),
    pytest.param(
        {"actor": "Eve", "target": "eve", "before": '{"role": "admin"}', "after": '{"role": "viewer"}'},
        ("admin", "viewer", [], [], True, False),
        id="self-demotion-is-self-grant-only",
    ),
    pytest.param(
        {
            "action": "permission_change",
            "before": '{"permissions": ["read"]}',
            "after": '{"permissions": ["read", "write"]}',
        },
        (None, None, ["write"], [], False, False),
        id="permissions-added",
    ),
    pytest.param(
        {"action": "revoke", "before": '{"permissions": "deploy"}', "after": "{}"},
        (None, None, [], ["deploy"], False, False),
        id="permission-string-revoked",
    ),
    pytest.param(
        {
            "action": "member_update",
            "type": "organization",
            "before": '{"role": "viewer"}',
            "after": '{"role": "admin"}',
        },
        ("viewer", "admin", [], [], False, True),
        id="member-update-with-role",
    ),
    pytest.param(
        {"action": "role_change", "before": "not json", "after": None},
        (None, None, [], [], False, False),
        id="unparsable-json",
    ),
]


@pytest.mark.parametrize(("row", "expected"), PERMISSION_CASES)
def test_permission_changes(row, expected):
    base = {
        "time": at(0),
        "type": "user",
        "action": "role_change",
        "result": "done",
        "actor": "boss",
        "target": "eve",
    }
    result = security.permission_changes(events({**base, **row}))
    columns = [
        "before_role",
        "after_role",
        "permissions_added",
        "permissions_removed",
        "self_grant",
        "grants_admin",
    ]
    assert result.select(columns).rows() == [expected]


def test_permission_changes_skips_other_events():
    frame = events(
        {
            "time": at(0),
            "type": "user",
            "action": "update",
            "before": '{"email": "a@x"}',
            "after": '{"email": "b@x"}',
        },
        {
            "time": at(1),
            "type": "service",
            "action": "role_change",
            "before": '{"role": "a"}',
            "after": '{"role": "b"}',
        },
        {
            "time": at(2),
            "type": "user",
            "action": "update",
            "before": '{"role": "a"}',
            "after": '{"role": "a"}',
        },
    )
    assert security.permission_changes(frame).height == 0


# --------------------------------------------------------------------------- stuck operations

NOW = T0 + timedelta(hours=5)

STUCK_CASES = [
    pytest.param([{"result": "pending", "request_id": "r1", "time": at(0)}], ["r1"], id="old-pending"),
    pytest.param(
        [
            {"result": "pending", "request_id": "r1", "time": at(0)},
            {"result": "done", "request_id": "r1", "time": at(60)},
        ],
        [],
        id="superseded-by-done",
    ),
    pytest.param(
        [
            {"result": "pending", "request_id": "r1", "time": at(0)},
            {"result": "failed", "request_id": "r1", "time": at(0)},
        ],
        [],
        id="failed-at-same-instant-wins",
    ),
    pytest.param(
        [
            {"result": "pending", "request_id": "r1", "time": at(0)},
            {"result": "processing", "request_id": "r1", "time": at(60)},
        ],
        ["r1"],
        id="still-processing",
    ),
    pytest.param(
        [{"result": "processing", "request_id": None, "time": at(0), "id": "solo"}],
        ["solo"],
        id="no-request-id",
    ),
    pytest.param(
        [{"result": "pending", "request_id": "r1", "time": NOW - timedelta(hours=1) + US}],
        [],
        id="younger-than-hour",
    ),
    pytest.param(
        [{"result": "pending", "request_id": "r1", "time": NOW - timedelta(hours=1) - US}],
        ["r1"],
        id="just-older",
    ),
    pytest.param(
        [
            {"result": "pending", "request_id": "r1", "time": at(0)},
            {"result": "done", "request_id": "r2", "time": at(60)},
        ],
        ["r1"],
        id="other-request-done",
    ),
]


@pytest.mark.parametrize(("rows", "expected"), STUCK_CASES)
def test_stuck_operations(rows, expected):
    frame = events(*({"type": "backup", "action": "create", **row} for row in rows))
    result = security.stuck_operations(frame, now=NOW)
    assert result["key"].to_list() == expected


def test_stuck_operations_reports_state_age_and_events():
    frame = events(
        {"type": "backup", "action": "create", "result": "pending", "request_id": "r1", "time": at(0)},
        {"type": "backup", "action": "create", "result": "processing", "request_id": "r1", "time": at(600)},
    )
    row = security.stuck_operations(frame, now=NOW).row(0, named=True)
    assert (row["state"], row["count"], row["event_ids"]) == ("processing", 2, ["e0", "e1"])
    assert (row["first"], row["last"], row["age"]) == (at(0), at(600), NOW - at(600))


def test_stuck_operations_needs_aware_now():
    with pytest.raises(DetectionError, match="timezone"):
        security.stuck_operations(events(fail(0)), now=datetime(2025, 1, 1))


# --------------------------------------------------------------------------- registry and backtest


@pytest.mark.parametrize("name", list(security.DETECTIONS))
def test_registry_defaults_match_signatures(name):
    entry = security.DETECTIONS[name]
    parameters = inspect.signature(entry.function).parameters
    for field in dataclasses.fields(entry.defaults):
        assert parameters[field.name].kind is inspect.Parameter.KEYWORD_ONLY
        assert parameters[field.name].default == getattr(entry.defaults, field.name)
    assert entry.description.endswith(".")


@pytest.mark.parametrize("name", list(security.DETECTIONS))
def test_every_detection_has_the_common_columns(name):
    kwargs = {"now": NOW} if name == "stuck_operations" else {}
    result = security.DETECTIONS[name].function(schema.empty_frame(), **kwargs)
    assert {"key", "first", "last", "count", "event_ids"} <= set(result.columns)
    assert result.schema["first"] == pl.Datetime("us", "UTC")
    assert result.schema["event_ids"] == pl.List(pl.String)


def test_backtest_counts_per_day_with_empty_days():
    day = timedelta(days=1)
    frame = events(
        *(fail(s) for s in range(3)),
        *(fail(2 * 86400 + s) for s in range(3)),
        *(fail(2 * 86400 + 3600 + s, ip="10.0.0.1") for s in range(3)),
        ok(3 * 86400),
    )
    result = security.backtest(frame, "brute_force", threshold=3)
    start = T0.replace(hour=0)
    assert result.rows() == [(start, 1), (start + day, 0), (start + 2 * day, 2), (start + 3 * day, 0)]
    assert security.backtest(frame, "brute_force", threshold=4)["findings"].sum() == 0


def test_backtest_rejects_unknown_rule_and_threshold():
    with pytest.raises(DetectionError, match="unknown rule"):
        security.backtest(events(fail(0)), "nope")
    with pytest.raises(DetectionError, match="no threshold"):
        security.backtest(events(fail(0)), "brute_force", min_accounts=3)


# --------------------------------------------------------------------------- properties vs plain Python

SECOND = 1_000_000


def reference_runs(times: list[int], window: int, threshold: int) -> list[tuple[int, int, int, int]]:
    """Plain Python: (first, last, count, max_in_window) of the merged qualifying windows."""
    times = sorted(times)
    windows = []
    for t in times:
        members = {j for j, u in enumerate(times) if t <= u < t + window}
        if len(members) >= threshold:
            windows.append(members)
    runs: list[set[int]] = []
    sizes: list[int] = []
    for members in windows:
        if runs and runs[-1] & members:
            runs[-1] |= members
            sizes[-1] = max(sizes[-1], len(members))
        else:
            runs.append(set(members))
            sizes.append(len(members))
    return [(times[min(r)], times[max(r)], len(r), size) for r, size in zip(runs, sizes, strict=True)]


def frame_from(keys_times: list[tuple[str, int, str | None]]) -> pl.DataFrame:
    return events(
        *(
            {"time": datetime(2025, 1, 1, tzinfo=UTC) + timedelta(microseconds=t), "ip": ip, "actor": actor}
            for ip, t, actor in keys_times
        )
    )


event_lists = st.lists(
    st.tuples(
        st.sampled_from(["10.0.0.1", "10.0.0.2", "10.0.0.3"]),
        st.integers(min_value=0, max_value=40).map(lambda s: s * SECOND // 2),
        st.sampled_from(["a", "b", "c", "d", None]),
    ),
    max_size=40,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=event_lists, window_s=st.integers(1, 12), threshold=st.integers(1, 6))
def test_brute_force_matches_plain_python(rows, window_s, threshold):
    window = window_s * SECOND
    result = security.brute_force(
        frame_from(rows), threshold=threshold, window=timedelta(microseconds=window)
    )
    base = datetime(2025, 1, 1, tzinfo=UTC)
    got = sorted(
        (key, int((f - base) / US), int((la - base) / US), c, m)
        for key, f, la, c, m in result.select("key", "first", "last", "count", "max_in_window").rows()
    )
    expected = sorted(
        (ip, *run)
        for ip in {r[0] for r in rows}
        for run in reference_runs([t for k, t, _ in rows if k == ip], window, threshold)
    )
    assert got == expected


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=event_lists, window_s=st.integers(1, 12))
def test_max_in_window_and_distinct_accounts_match_plain_python(rows, window_s):
    window = window_s * SECOND
    result = security.password_spray(frame_from(rows), min_accounts=1, window=timedelta(microseconds=window))
    # min_accounts=1: every window with a named account qualifies; compare the per-IP maxima.
    got = result.group_by("key").agg(pl.col("max_accounts").max()).sort("key").rows()
    expected = []
    for ip in sorted({r[0] for r in rows}):
        mine = [(t, a) for k, t, a in rows if k == ip]
        best = max(len({a for u, a in mine if t <= u < t + window and a is not None}) for t, _ in mine)
        if best:
            expected.append((ip, best))
    assert got == expected
    # And the failure counts: threshold 1 makes one finding per run, covering every event.
    counts = security.brute_force(frame_from(rows), threshold=1, window=timedelta(microseconds=window))
    got_max = counts.group_by("key").agg(pl.col("max_in_window").max()).sort("key").rows()
    expected_max = [
        (
            ip,
            max(
                sum(1 for k, u, _ in rows if k == ip and t <= u < t + window) for k2, t, _ in rows if k2 == ip
            ),
        )
        for ip in sorted({r[0] for r in rows})
    ]
    assert got_max == expected_max


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=event_lists, window_s=st.integers(1, 12), k=st.integers(1, 4))
def test_spray_findings_match_plain_python(rows, window_s, k):
    window = window_s * SECOND
    result = security.password_spray(frame_from(rows), min_accounts=k, window=timedelta(microseconds=window))
    base = datetime(2025, 1, 1, tzinfo=UTC)
    got = sorted(
        (key, int((f - base) / US), int((la - base) / US), c)
        for key, f, la, c in result.select("key", "first", "last", "count").rows()
    )
    expected = []
    for ip in {r[0] for r in rows}:
        mine = sorted(((t, a) for kk, t, a in rows if kk == ip), key=lambda pair: pair[0])
        runs: list[set[int]] = []
        for t, _ in mine:
            members = {j for j, (u, _) in enumerate(mine) if t <= u < t + window}
            if len({mine[j][1] for j in members} - {None}) >= k:
                if runs and runs[-1] & members:
                    runs[-1] |= members
                else:
                    runs.append(set(members))
        expected += [(ip, mine[min(r)][0], mine[max(r)][0], len(r)) for r in runs]
    assert got == sorted(expected)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.lists(
        st.tuples(st.sampled_from(["a", "b"]), st.integers(0, 30).map(lambda s: s * SECOND), st.booleans()),
        max_size=30,
    ),
    within_s=st.integers(1, 10),
    threshold=st.integers(1, 4),
)
def test_success_after_failures_matches_plain_python(rows, within_s, threshold):
    within = within_s * SECOND
    base = datetime(2025, 1, 1, tzinfo=UTC)
    frame = events(
        *(
            {"time": base + timedelta(microseconds=t), "actor": a, "result": "done" if good else "failed"}
            for a, t, good in rows
        )
    )
    result = security.success_after_failures(
        frame, threshold=threshold, within=timedelta(microseconds=within)
    )
    got = sorted(
        (a, int((s - base) / US), n)
        for a, s, n in result.select("account", "success_time", "failures").rows()
    )
    expected = []
    for a, s, good in rows:
        if good:
            n = sum(1 for b, f, g in rows if b == a and not g and f <= s < f + within)
            if n >= threshold:
                expected.append((a, s, n))
    assert got == sorted(expected)


# --------------------------------------------------------------------------- demo stories

DEMO_NOW = datetime(2025, 6, 2, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def demo_data():
    return demo.generate(50_000, seed=11, now=DEMO_NOW)


def story(demo_data, name: str) -> list[dict]:
    return demo_data.stories.filter(pl.col("story") == name).rows(named=True)


def test_demo_brute_force_story_found(demo_data):
    (planted,) = story(demo_data, "brute_force")
    found = security.brute_force(demo_data.events).filter(pl.col("key") == planted["key"])
    assert found.height == 1
    assert set(planted["event_ids"]) <= set(found["event_ids"].item())


def test_demo_spray_story_found(demo_data):
    (planted,) = story(demo_data, "password_spray")
    found = security.password_spray(demo_data.events).filter(pl.col("key") == planted["key"])
    assert found.height == 1
    assert set(planted["event_ids"]) <= set(found["event_ids"].item())


def test_demo_takeover_story_found(demo_data):
    (planted,) = story(demo_data, "account_takeover")
    ids = set(planted["event_ids"])
    attacked = security.account_under_attack(demo_data.events).filter(pl.col("key") == planted["actor"])
    assert attacked.height == 1 and set(attacked["event_ids"].item()) <= ids
    taken = security.success_after_failures(demo_data.events).filter(pl.col("account") == planted["actor"])
    assert taken.height >= 1 and set(taken["success_id"]) <= ids
    grants = security.permission_changes(demo_data.events).filter(pl.col("id").is_in(list(ids)))
    assert grants.select("self_grant", "grants_admin").rows() == [(True, True)]


def test_demo_permission_escalation_found(demo_data):
    (planted,) = story(demo_data, "permission_escalation")
    found = security.permission_changes(demo_data.events).filter(pl.col("id").is_in(planted["event_ids"]))
    assert found.select("key", "self_grant", "grants_admin").rows() == [(planted["actor"], True, True)]


def test_demo_off_hours_story_found(demo_data):
    (planted,) = story(demo_data, "off_hours_backup_deletion")
    zone = demo.users(11).filter(pl.col("username") == planted["actor"])["time_zone"].item()
    found = security.off_hours(demo_data.events, org_tz=zone)
    flagged = found.filter(pl.col("id").is_in(planted["event_ids"]))
    assert flagged.height == len(planted["event_ids"])
    assert set(flagged["reason"]) == {"unusual hour for this user"}


def test_demo_stuck_stories_are_exactly_the_stuck_operations(demo_data):
    planted = {i for row in story(demo_data, "stuck_operation") for i in row["event_ids"]}
    found = security.stuck_operations(demo_data.events, now=DEMO_NOW)
    assert {i for ids in found["event_ids"] for i in ids} == planted


@pytest.mark.parametrize("name", ["brute_force", "password_spray", "success_after_failures"])
def test_demo_ordinary_traffic_raises_nothing(demo_data, name):
    planted = {i for ids in demo_data.stories["event_ids"] for i in ids}
    found = security.DETECTIONS[name].function(demo_data.events)
    assert found.height >= 1
    stray = {i for ids in found["event_ids"] for i in ids} - planted
    assert stray == set()


# --------------------------------------------------------------------------- history before the period


@pytest.mark.parametrize("mode", ["memory", "pushdown"])
def test_the_review_learns_habits_from_before_the_period(tmp_path, mode):
    """Off-hours on "last 7 days" judges each event against the 30 days before it, which lie
    mostly outside the period: the engines read them, and report only the period's findings."""
    from audit_analytics.analysis.review import security_review
    from audit_analytics.engines.sql import open_engine
    from audit_analytics.engines.store import open_store
    from audit_analytics.filters import Filter

    now = datetime(2025, 3, 3, 12, tzinfo=UTC)
    start = now.replace(hour=0) - timedelta(days=40)
    rows = [
        # an on-call engineer who logs in at 02:00 every night for 40 days
        {"time": start + timedelta(days=d, hours=2), "result": "done", "actor": "oncall"}
        for d in range(41)
    ] + [
        # a first 03:00 deletion after 40 days of office hours
        {"time": start + timedelta(days=d, hours=10), "result": "done", "actor": "ann"}
        for d in range(41)
    ]
    night = {"time": now.replace(hour=3) - timedelta(days=1), "result": "done", "actor": "ann",
             "type": "backup", "action": "delete"}  # fmt: skip
    store = open_store(f"sqlite:///{tmp_path / 'h.db'}")
    store.append(events(*rows, night))
    engine = open_engine(store, mode=mode)
    review = security_review(engine, Filter(period="7d"), now=now)
    found = review.detect("off_hours", {})
    assert found.select("key", "action").rows() == [("ann", "delete")]
    assert found["why"].item().startswith("first backup delete at 03:00 (UTC) with nothing else between")
    # the period alone holds too little of the on-call engineer's nights to know them
    alone = security.off_hours(engine.frame_for(Filter(period="7d"), now=now))
    assert "oncall" in set(alone["key"])
    # the organisation's zone is the review's when not given
    paris = security_review(engine, Filter(period="7d", tz="Europe/Paris"), now=now).detect("off_hours", {})
    assert "(Europe/Paris)" in paris["why"].item()


# --------------------------------------------------------------------------- the policy file

POLICY = """
[off-hours]
org_tz = "Asia/Tokyo"
hours = ["09:00", "18:00"]
weekdays = [1, 2, 3, 4, 5, 6]
service_accounts = "^robot-"
lookback = "14d"

[brute_force]
threshold = 3
window = "1m"
"""


def test_the_policy_file_sets_the_organisations_defaults(tmp_path, monkeypatch):
    path = tmp_path / "security.toml"
    path.write_text(POLICY)
    policy = security.load_policy(path)
    assert policy["off_hours"] == {
        "org_tz": "Asia/Tokyo",
        "hours": ("09:00", "18:00"),
        "weekdays": (1, 2, 3, 4, 5, 6),
        "service_accounts": "^robot-",
        "lookback": timedelta(days=14),
    }
    assert policy["brute_force"] == {"threshold": 3, "window": timedelta(minutes=1)}
    monkeypatch.setenv(security.POLICY_ENV, str(path))
    assert security.load_policy() == policy
    monkeypatch.delenv(security.POLICY_ENV)
    monkeypatch.chdir(tmp_path)  # no data/security.toml here
    assert security.load_policy() == {}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[nonsense]\nx = 1\n", "[nonsense] is not a detection"),
        ("[off-hours]\ncolour = 1\n", "[off-hours] has no setting 'colour'"),
        ('[off-hours]\nlookback = "soon"\n', "[off-hours] lookback: 'soon' is not a duration"),
        ('[off-hours]\norg_tz = "Mars/Olympus"\n', "[off-hours] org_tz: unknown time zone"),
        ('[off-hours]\nservice_accounts = "("\n', "[off-hours] service_accounts"),
        ('[off-hours]\nhours = ["8h", "18:00"]\n', "[off-hours] hours"),
        ("[off-hours]\nweekdays = [0]\n", "[off-hours] weekdays"),
        ('[brute-force]\nthreshold = "many"\n', "[brute-force] threshold: expected a whole number"),
        # a count of 0 was accepted here and then refused by the detection itself
        ("[brute-force]\nthreshold = 0\n", "[brute-force] threshold: expected a whole number >= 1, got 0"),
        ("[spray]\nmin_accounts = 0\n", "min_accounts: expected a whole number >= 1, got 0"),
        ("[brute-force\n", "not valid TOML"),
    ],
)
def test_a_policy_that_cannot_be_used_says_where(tmp_path, text, message):
    """And one that loads can be used: off-hours' min_history, the one count that may be 0."""
    usable = tmp_path / "usable.toml"
    usable.write_text("[off-hours]\nmin_history = 0\n")
    assert security.load_policy(usable)["off_hours"]["min_history"] == 0
    path = tmp_path / "security.toml"
    path.write_text(text)
    with pytest.raises(DetectionError) as caught:
        security.load_policy(path)
    assert str(path) in str(caught.value) and message in str(caught.value)
    with pytest.raises(DetectionError, match="no security policy file"):
        security.load_policy(tmp_path / "absent.toml")


def test_the_review_applies_the_policy_and_given_thresholds_win(tmp_path):
    from audit_analytics.analysis.review import security_review
    from audit_analytics.engines.sql import open_engine
    from audit_analytics.engines.store import open_store
    from audit_analytics.filters import Filter

    store = open_store(f"sqlite:///{tmp_path / 'p.db'}")
    store.append(events(*(fail(i) for i in range(4))))  # four failures from one IP in 3 seconds
    engine = open_engine(store, mode="memory")
    policy = {"brute_force": {"threshold": 3}}
    review = security_review(engine, Filter(), policy=policy)
    assert review.detect("brute_force", {}).height == 1  # the policy's 3, not the shipped 8
    assert review.detect("brute_force", {"threshold": 5}).height == 0  # a control or flag wins
    assert security_review(engine, Filter(), policy={}).detect("brute_force", {}).height == 0


def test_permission_changes_rank_by_risk():
    base = T0.replace(hour=10)
    day = lambda d, **kw: {"time": base + timedelta(days=d), "result": "done", "type": "user", **kw}  # noqa: E731
    rows = [day(d, actor="boss", action="login", type="auth") for d in range(60)]  # boss's office days
    rows += [
        day(10, actor="boss", target="eve", action="role_change"),  # the log's first weeks: no verdict
        day(35, actor="boss", target="eve", action="role_change"),  # boss granted at day 10: not first
        day(40, actor="carol", target="dan", action="role_change"),  # carol's first grant
        day(41, actor="mallory", target="mallory", action="role_change", after='{"role": "admin"}'),
        day(42, actor="boss", target="eve", action="grant", result="failed"),
        {**day(43, actor="boss", target="eve", action="grant"), "time": base + timedelta(days=43, hours=-7)},
    ]
    found = security.permission_changes(events(*rows))
    flags = {(r["actor"], r["first"].day): r["flags"] for r in found.iter_rows(named=True)}
    assert found["risk"].to_list() == sorted(found["risk"].to_list(), reverse=True)
    top = found.row(0, named=True)
    assert top["actor"] == "mallory" and top["flags"][:2] == ["self-grant", "grants admin"]
    by_time = {r["first"]: r for r in found.iter_rows(named=True)}
    assert by_time[base + timedelta(days=10)]["flags"] == []  # the log is younger than the lookback
    assert by_time[base + timedelta(days=35)]["flags"] == []
    assert by_time[base + timedelta(days=40)]["flags"] == ["first grant by this actor"]
    assert by_time[base + timedelta(days=42)]["flags"] == ["failed"]
    assert by_time[base + timedelta(days=43, hours=-7)]["flags"] == ["outside the actor's hours"]
    assert flags  # every change is listed
    assert found.height == 6


# --------------------------------------------------------------------------- denied calls


def test_denied_calls_counts_refusals_of_one_actor_in_a_window():
    refused = {
        "result": "failed",
        "type": "secret",
        "action": "read",
        "actor": "key-1",
        "error": "AccessDenied",
    }
    rows = [{"time": at(i * 30), **refused} for i in range(10)]  # 10 in 4.5 minutes
    assert security.denied_calls(events(*rows)).select("key", "count", "max_in_window").rows() == [
        ("key-1", 10, 10)
    ]
    # one fewer is nothing; spread over more than the window is nothing
    assert security.denied_calls(events(*rows[:9])).height == 0
    spread = [{"time": at(i * 70), **refused} for i in range(10)]  # 10 over 10.5 minutes
    assert security.denied_calls(events(*spread)).height == 0
    # not refusals: login failures, other errors, successes, no actor
    others = [
        {
            "time": at(i),
            "result": "failed",
            "type": "auth",
            "action": "login",
            "actor": "key-1",
            "error": "denied",
        }
        for i in range(12)
    ] + [{"time": at(i), **refused, "error": "timeout"} for i in range(12)]
    others += [{"time": at(i), **refused, "result": "done"} for i in range(12)]
    others += [{"time": at(i), **refused, "actor": None} for i in range(12)]
    assert security.denied_calls(events(*others)).height == 0


@pytest.mark.parametrize(
    "error",
    [
        "AccessDenied: not authorized",
        "Client.UnauthorizedOperation",
        "Forbidden",
        "HTTP 403",
        "permission denied",
    ],
)
def test_what_a_refusal_says(error):
    frame = events({"time": at(0), "result": "failed", "type": "infra", "action": "read", "error": error})
    assert frame.filter(security.is_denied_call()).height == 1

"""Activity aggregates against a plain-Python reference computed over ``frame.to_dicts()``.

The reference never touches polars' time-zone code: buckets come from ``zoneinfo`` and the
standard library, so a DST or half-hour-offset mistake in the package shows up as a
mismatch.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import polars as pl
import pytest

from audit_analytics.analysis import activity
from audit_analytics.demo.generate import generate
from audit_analytics.filters import Filter
from audit_analytics.query import Qualified, parse
from audit_analytics.schema import CATEGORIES, CATEGORY_CODES, RESULTS, SCHEMA, WRITE_ACTIONS, conform

ACTIONS = sorted(WRITE_ACTIONS | {"login", "logout", "export", "read"})
ACTORS = ["alice", "bob", "carol", "dave", "erin", None, ""]
TARGETS = ["payments-api", "vpc-core", "bkp-orders", "<b>x</b>", "=cmd", None]

# Windows around the DST changes of Paris and New York, Santiago's midnight gap (2025-09-07)
# and a stretch of ordinary days, so every zone below sees its own edge cases.
WINDOWS = [
    (datetime(2025, 3, 8, tzinfo=UTC), 24),
    (datetime(2025, 3, 28, tzinfo=UTC), 4),
    (datetime(2025, 9, 5, tzinfo=UTC), 4),
    (datetime(2025, 10, 24, tzinfo=UTC), 4),
    (datetime(2025, 11, 1, tzinfo=UTC), 3),
]


def _events(n: int = 4_000, seed: int = 11) -> pl.DataFrame:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        start, days = WINDOWS[i % len(WINDOWS)]
        t = start + timedelta(microseconds=rng.randrange(days * 86_400_000_000))
        if i % 97 == 0:  # exactly on a slot / hour boundary
            t = t.replace(minute=0, second=0, microsecond=0)
        rows.append(
            {
                "id": f"e{i}",
                "time": t,
                "actor": rng.choice(ACTORS),
                "type": rng.choice(CATEGORY_CODES),
                "action": rng.choice(ACTIONS),
                "target": rng.choice(TARGETS),
                "result": rng.choice(RESULTS),
            }
        )
    return conform(pl.DataFrame(rows, schema_overrides={"time": pl.Datetime("us", "UTC")})).sort("time")


EVENTS = _events()
ROWS = EVENTS.to_dicts()
# the figures read the events or their counts (what a database hands over) alike
GIVEN = {"events": EVENTS, "counts": activity.counts(EVENTS)}

ZONES = ["UTC", "Europe/Paris", "America/New_York", "America/Santiago", "Asia/Kolkata", "Asia/Kathmandu"]


# -- the reference ------------------------------------------------------------------------
def ref_midnight(day: date, tz: ZoneInfo) -> datetime:
    """The first instant of a local day (a midnight in a DST gap moves to the gap's end)."""
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def ref_bucket(t: datetime, every: str, tz: str) -> datetime:
    """Bucket start as a UTC instant."""
    z = ZoneInfo(tz)
    local = t.astimezone(z)
    if every == "1h":
        return local.replace(minute=0, second=0, microsecond=0).astimezone(UTC)
    day = local.date()
    if every == "1w":
        day -= timedelta(days=local.weekday())
    return ref_midnight(day, z)


def ref_all_buckets(first: datetime, last: datetime, every: str, tz: str) -> list[datetime]:
    """Every bucket from first to last: each contains a quarter hour, so stepping by 15
    minutes visits all of them."""
    seen = []
    t = first
    while t <= last:
        b = ref_bucket(t, every, tz)
        if not seen or seen[-1] != b:
            seen.append(b)
        t += timedelta(minutes=15)
    return seen


def utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def rate(failed: int, done: int) -> float | None:
    return failed / (failed + done) if failed + done else None


GRID = [pytest.param(tz, every, id=f"{tz}-{every}") for tz in ZONES for every in ("1h", "1d", "1w")]


# -- over time ------------------------------------------------------------------------------
@pytest.mark.parametrize(("tz", "every"), GRID)
@pytest.mark.parametrize("given", list(GIVEN))
def test_events_over_time(tz, every, given):
    result = activity.events_over_time(GIVEN[given], every=every, tz=tz)
    expected = Counter((ref_bucket(r["time"], every, tz), r["type"]) for r in ROWS)
    assert result.schema["bucket"] == pl.Datetime("us", tz)
    assert {(utc(b), t): n for b, t, n in result.rows()} == expected
    keys = [(utc(b), CATEGORY_CODES.index(t)) for b, t, _ in result.rows()]
    assert keys == sorted(keys)


@pytest.mark.parametrize(("tz", "every"), GRID)
@pytest.mark.parametrize("given", list(GIVEN))
def test_result_mix(tz, every, given):
    result = activity.result_mix(GIVEN[given], every=every, tz=tz)
    per = defaultdict(Counter)
    for r in ROWS:
        per[ref_bucket(r["time"], every, tz)][r["result"]] += 1
    buckets = ref_all_buckets(ROWS[0]["time"], ROWS[-1]["time"], every, tz)
    assert [utc(b) for b in result["bucket"]] == buckets
    for row in result.iter_rows(named=True):
        c = per.get(utc(row["bucket"]), Counter())
        assert {r: row[r] for r in RESULTS} == {r: c[r] for r in RESULTS}
        assert row["events"] == sum(c.values())
        assert row["failure_rate"] == pytest.approx(rate(c["failed"], c["done"]))


@pytest.mark.parametrize(("tz", "every"), GRID)
@pytest.mark.parametrize("given", list(GIVEN))
def test_changes_over_time(tz, every, given):
    result = activity.changes_over_time(GIVEN[given], every=every, tz=tz)
    expected = defaultdict(Counter)
    for r in ROWS:
        if r["action"] in WRITE_ACTIONS:
            key = (ref_bucket(r["time"], every, tz), r["type"])
            kind = r["action"] if r["action"] in ("create", "update", "delete") else "other"
            expected[key][kind] += 1
            expected[key]["changes"] += 1
    got = {
        (utc(row["bucket"]), row["type"]): {
            k: row[k] for k in ("changes", "create", "update", "delete", "other")
        }
        for row in result.iter_rows(named=True)
    }
    assert got == {
        k: {n: c[n] for n in ("changes", "create", "update", "delete", "other")} for k, c in expected.items()
    }


@pytest.mark.parametrize("tz", ZONES)
@pytest.mark.parametrize("given", list(GIVEN))
def test_weekday_hour_has_all_168_cells(tz, given):
    result = activity.weekday_hour(GIVEN[given], tz=tz)
    z = ZoneInfo(tz)
    expected = Counter((r["time"].astimezone(z).isoweekday(), r["time"].astimezone(z).hour) for r in ROWS)
    assert result.height == 168
    assert [(w, h) for w, _, h, _ in result.rows()] == [(w, h) for w in range(1, 8) for h in range(24)]
    assert {(w, h): n for w, _, h, n in result.rows()} == {
        (w, h): expected.get((w, h), 0) for w in range(1, 8) for h in range(24)
    }
    assert result.filter(pl.col("weekday") == 7)["day"].unique().to_list() == ["Sunday"]


def test_fall_back_hour_is_two_buckets():
    # 2025-10-26 in Paris: 02:00-03:00 happens twice (CEST, then CET)
    times = [datetime(2025, 10, 26, 0, 30, tzinfo=UTC), datetime(2025, 10, 26, 1, 30, tzinfo=UTC)]
    frame = conform(
        pl.DataFrame(
            {"time": times, "type": ["auth"] * 2, "action": ["login"] * 2, "result": ["done"] * 2},
            schema_overrides={"time": pl.Datetime("us", "UTC")},
        )
    )
    result = activity.events_over_time(frame, every="1h", tz="Europe/Paris")
    assert [b.isoformat() for b in result["bucket"]] == [
        "2025-10-26T02:00:00+02:00",
        "2025-10-26T02:00:00+01:00",
    ]
    day = activity.events_over_time(frame, every="1d", tz="Europe/Paris")
    assert day["events"].to_list() == [2]


# -- rankings, comparisons, retention --------------------------------------------------------
@pytest.mark.parametrize(
    ("column", "function"), [("actor", activity.top_actors), ("target", activity.top_targets)]
)
@pytest.mark.parametrize("n", [1, 3, 10])
def test_top(column, function, n):
    result = function(EVENTS, n)
    totals = Counter(r[column] for r in ROWS if r[column])
    ranked = sorted(totals, key=lambda k: (-totals[k], k))[:n]
    per_type = Counter((r[column], r["type"]) for r in ROWS if r[column])
    expected = [
        (rank, key, totals[key], t, per_type[(key, t)])
        for rank, key in enumerate(ranked, start=1)
        for t in sorted(
            (t for (k, t) in per_type if k == key),
            key=lambda t: (-per_type[(key, t)], CATEGORY_CODES.index(t)),
        )
    ]
    assert result.columns == ["rank", column, "total", "type", "events"]
    assert result.rows() == expected


def test_top_rejects_n_below_one():
    with pytest.raises(ValueError, match="at least 1"):
        activity.top_actors(EVENTS, 0)


def _per_type(rows):
    out = defaultdict(Counter)
    for r in rows:
        for key in (r["type"], "all"):
            out[key]["events"] += 1
            out[key][r["result"]] += 1
    return out


@pytest.mark.parametrize("given", list(GIVEN))
@pytest.mark.parametrize("split", [0.3, 0.5, 0.9], ids=["30-70", "half", "90-10"])
def test_failure_rate_change(split, given):
    cut = ROWS[int(len(ROWS) * split)]["time"]
    current = EVENTS.filter(pl.col("time") >= cut)
    previous = EVENTS.filter(pl.col("time") < cut)
    if given == "counts":
        current, previous = activity.counts(current), activity.counts(previous)
    now = _per_type([r for r in ROWS if r["time"] >= cut])
    before = _per_type([r for r in ROWS if r["time"] < cut])
    result = activity.failure_rate_change(current, previous)
    assert result["type"].to_list() == [*CATEGORY_CODES, "all"]
    for row in result.iter_rows(named=True):
        a, b = now[row["type"]], before[row["type"]]
        assert (row["events"], row["previous_events"]) == (a["events"], b["events"])
        assert row["change"] == a["events"] - b["events"]
        expected_pct = (a["events"] - b["events"]) * 100 / b["events"] if b["events"] else None
        assert row["change_pct"] == pytest.approx(expected_pct)
        assert (row["failed"], row["previous_failed"]) == (a["failed"], b["failed"])
        r_now, r_before = rate(a["failed"], a["done"]), rate(b["failed"], b["done"])
        assert row["failure_rate"] == pytest.approx(r_now)
        assert row["previous_failure_rate"] == pytest.approx(r_before)
        diff = None if r_now is None or r_before is None else (r_now - r_before) * 100
        assert row["failure_rate_change"] == pytest.approx(diff)


def test_failure_rate_change_with_an_empty_previous_period():
    result = activity.failure_rate_change(EVENTS, EVENTS.clear())
    total = result.filter(pl.col("type") == "all").row(0, named=True)
    assert total["events"] == len(ROWS) and total["previous_events"] == 0
    assert total["change_pct"] is None and total["failure_rate_change"] is None


def test_retention_summary():
    result = activity.retention_summary(EVENTS)
    for row in result.iter_rows(named=True):
        rows = [r for r in ROWS if CATEGORIES[r["type"]].retention_group == row["group"]]
        assert row["events"] == len(rows)
        assert row["oldest"] == min(r["time"] for r in rows)
        assert row["newest"] == max(r["time"] for r in rows)
        assert set(row["categories"].split(", ")) == {
            c for c, cat in CATEGORIES.items() if cat.retention_group == row["group"]
        }
    assert result["group"].to_list() == ["security", "operational"]


# -- edges ----------------------------------------------------------------------------------
def test_lazy_input_gives_the_same_result():
    lazy = EVENTS.lazy()
    assert activity.events_over_time(lazy, every="1d", tz="Europe/Paris").equals(
        activity.events_over_time(EVENTS, every="1d", tz="Europe/Paris")
    )
    assert activity.top_targets(lazy, 5).equals(activity.top_targets(EVENTS, 5))
    assert activity.weekday_hour(lazy).equals(activity.weekday_hour(EVENTS))


def test_empty_frame():
    empty = pl.DataFrame(schema=SCHEMA)
    assert activity.events_over_time(empty).height == 0
    assert activity.result_mix(empty).height == 0
    assert activity.changes_over_time(empty).height == 0
    assert activity.top_actors(empty).height == 0
    assert activity.weekday_hour(empty)["events"].sum() == 0
    assert activity.retention_summary(empty)["events"].to_list() == [0, 0]
    assert activity.failure_rate_change(empty, empty)["events"].sum() == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"every": "5m"}, "unknown bucket", id="bucket"),
        pytest.param({"tz": "Mars/Olympus"}, "unknown time zone", id="zone"),
    ],
)
def test_bad_arguments_say_what_is_wrong(kwargs, message):
    with pytest.raises(ValueError, match=message):
        activity.events_over_time(EVENTS, **kwargs)


def test_demo_totals_add_up():
    events = generate(3_000, seed=2, now=datetime(2025, 11, 3, 12, 0, tzinfo=UTC)).events
    for tz in ("Europe/Paris", "America/New_York"):
        assert activity.events_over_time(events, every="1w", tz=tz)["events"].sum() == 3_000
        assert activity.result_mix(events, every="1d", tz=tz)["events"].sum() == 3_000
        assert activity.weekday_hour(events, tz=tz)["events"].sum() == 3_000


# -- periods and buckets -------------------------------------------------------------------
D = timedelta(days=1)
T0 = datetime(2025, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("span", "expected"),
    [
        pytest.param(timedelta(hours=1), "1h", id="hour"),
        pytest.param(D, "1h", id="today"),
        pytest.param(3 * D, "1h", id="3-days"),
        pytest.param(3 * D + timedelta(seconds=1), "1d", id="over-3-days"),
        pytest.param(7 * D, "1d", id="7d"),
        pytest.param(92 * D, "1d", id="quarter"),
        pytest.param(93 * D, "1w", id="over-a-quarter"),
        pytest.param(400 * D, "1w", id="year"),
    ],
)
def test_choose_bucket(span, expected):
    assert activity.choose_bucket(T0, T0 + span) == expected


PARIS = ZoneInfo("Europe/Paris")
SANTIAGO = ZoneInfo("America/Santiago")


@pytest.mark.parametrize(
    ("start", "every", "expected_utc"),
    [
        pytest.param(
            datetime(2025, 3, 30, tzinfo=PARIS), "1d", "2025-03-30T22:00:00+00:00", id="spring-day-23h"
        ),
        pytest.param(
            datetime(2025, 10, 26, tzinfo=PARIS), "1d", "2025-10-26T23:00:00+00:00", id="fall-day-25h"
        ),
        pytest.param(datetime(2025, 10, 20, tzinfo=PARIS), "1w", "2025-10-26T23:00:00+00:00", id="fall-week"),
        pytest.param(
            datetime(2025, 10, 26, 2, 0, tzinfo=PARIS),
            "1h",
            "2025-10-26T01:00:00+00:00",
            id="fall-hour-first",
        ),
        pytest.param(
            datetime(2025, 10, 26, 2, 0, fold=1, tzinfo=PARIS),
            "1h",
            "2025-10-26T02:00:00+00:00",
            id="fall-hour-second",
        ),
        pytest.param(
            datetime(2025, 9, 6, tzinfo=SANTIAGO), "1d", "2025-09-07T04:00:00+00:00", id="midnight-gap"
        ),
    ],
)
def test_bucket_end(start, every, expected_utc):
    assert activity.bucket_end(start, every).astimezone(UTC).isoformat() == expected_utc


def test_bucket_end_needs_an_aware_start():
    with pytest.raises(ValueError, match="aware"):
        activity.bucket_end(datetime(2025, 1, 1), "1d")


NOW = datetime(2025, 3, 31, 10, 0, tzinfo=UTC)  # the day after Paris moved to summer time


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        pytest.param(
            # still running at NOW (Monday 12:00 in Paris): the week before up to Monday 12:00,
            # on the clock of that week (an hour earlier in UTC: before the change to summer time)
            Filter(period="7d", tz="Europe/Paris"),
            ("2025-03-17T23:00:00+00:00", "2025-03-24T11:00:00+00:00"),
            id="7d-across-dst",
        ),
        pytest.param(
            # today at 10:00 against yesterday until 10:00 (the whole of yesterday read "-98%")
            Filter(period="today"),
            ("2025-03-30T00:00:00+00:00", "2025-03-30T10:00:00+00:00"),
            id="today",
        ),
        pytest.param(
            Filter(period="custom", start=date(2025, 1, 1), end=date(2025, 3, 31), tz="Europe/Paris"),
            ("2024-10-02T22:00:00+00:00", "2024-12-31T11:00:00+00:00"),
            id="quarter-in-days-running",
        ),
        pytest.param(
            Filter(period="custom", start=date(2025, 1, 1), end=date(2025, 3, 30), tz="Europe/Paris"),
            ("2024-10-03T22:00:00+00:00", "2024-12-31T23:00:00+00:00"),
            id="quarter-in-days-ended",
        ),
        pytest.param(
            Filter(
                period="custom",
                start=datetime(2025, 3, 1, 6, 0, tzinfo=UTC),
                end=datetime(2025, 3, 1, 8, 0, tzinfo=UTC),
            ),
            ("2025-03-01T04:00:00+00:00", "2025-03-01T06:00:00+00:00"),
            id="exact-instants",
        ),
        pytest.param(Filter(period="all"), None, id="all-time"),
        pytest.param(Filter(period="custom", start=date(2025, 1, 1)), None, id="open-end"),
    ],
)
def test_previous_period(flt, expected):
    prev = activity.previous_period(flt, now=NOW)
    if expected is None:
        assert prev is None
        return
    lo, hi = prev.bounds(now=NOW)
    assert (lo.isoformat(), hi.isoformat()) == expected
    start, end = flt.bounds(now=NOW)
    if activity.is_running(flt, now=NOW):  # as much of the period before as has passed of this one
        assert start < NOW < end and hi < start
    else:  # the whole period just before
        assert hi == start
    assert (prev.types, prev.users, prev.results, prev.query, prev.tz) == (
        flt.types,
        flt.users,
        flt.results,
        flt.query,
        flt.tz,
    )


@pytest.mark.parametrize(
    "target",
    ["payments-api", 'db "main"', "back\\slash", "-leading-dash", "two words", "<b>x</b>", "a:b"],
)
def test_target_query_selects_exactly_that_target(target):
    terms = parse(activity.target_query(target)).terms
    assert terms == (Qualified("target", target, written="resource"),)


def test_write_actions_query_selects_every_write_action():
    terms = parse(activity.write_actions_query()).terms
    assert {t.value for t in terms} == WRITE_ACTIONS
    result = Filter(query=activity.write_actions_query()).apply(EVENTS)
    assert result.height == sum(r["action"] in WRITE_ACTIONS for r in ROWS)


def test_counts_of_billions_add_up_without_wrapping():
    """A database's counts (UInt32 per quarter-hour) summed as UInt32 wrapped silently past
    4,294,967,295: two quarter-hours of 3 billion events read as 1.7 billion."""
    many = pl.DataFrame(
        {
            "time": [datetime(2026, 1, 1, 9, 0, tzinfo=UTC), datetime(2026, 1, 1, 9, 15, tzinfo=UTC)],
            "type": ["auth", "auth"],
            "result": ["failed", "failed"],
            "action": [None, None],
            "n": [3_000_000_000, 3_000_000_000],
        },
        schema_overrides={
            "type": SCHEMA["type"],
            "result": SCHEMA["result"],
            "action": pl.String,
            "n": pl.UInt32,
        },
    )
    assert activity.events_over_time(many)["events"].to_list() == [6_000_000_000]
    assert activity.result_mix(many)["failed"].to_list() == [6_000_000_000]
    assert activity.weekday_hour(many)["events"].sum() == 6_000_000_000
    total = activity.failure_rate_change(many, many.clear()).filter(pl.col("type") == "all")
    assert total["events"].item() == total["failed"].item() == 6_000_000_000

"""Tests for audit_analytics.demo.generate: shape, determinism, rhythm, story ground truth, quiet ordinary logins."""

from __future__ import annotations

import ipaddress
import json
from collections import defaultdict, deque
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from audit_analytics import schema
from audit_analytics.demo import generate as demo

NOW = datetime(2025, 6, 2, 12, 0, tzinfo=UTC)
N_EVENTS = 50_000
DAYS = 90


@pytest.fixture(scope="module")
def data() -> demo.DemoData:
    return demo.generate(N_EVENTS, seed=7, now=NOW, days=DAYS)


@pytest.fixture(scope="module")
def events(data: demo.DemoData) -> pl.DataFrame:
    return data.events


@pytest.fixture(scope="module")
def story_ids(data: demo.DemoData) -> set[str]:
    return set(data.stories["event_ids"].explode().to_list())


@pytest.fixture(scope="module")
def ordinary(events: pl.DataFrame, story_ids: set[str]) -> pl.DataFrame:
    return events.filter(~pl.col("id").is_in(list(story_ids)))


def story_events(data: demo.DemoData, story: str) -> list[pl.DataFrame]:
    rows = data.stories.filter(pl.col("story") == story)
    assert rows.height >= 1, story
    return [data.events.filter(pl.col("id").is_in(ids)).sort("time") for ids in rows["event_ids"].to_list()]


# ----------------------------------------------------------------------------------- shape


def test_same_seed_and_now_give_identical_frames():
    first = demo.generate(3_000, seed=5, now=NOW)
    second = demo.generate(3_000, seed=5, now=NOW)
    assert_frame_equal(first.events, second.events)
    assert_frame_equal(first.stories, second.stories)


def test_different_seed_gives_different_events():
    first = demo.generate(3_000, seed=5, now=NOW)
    other = demo.generate(3_000, seed=6, now=NOW)
    assert not first.events.equals(other.events)
    assert first.stories["start"].to_list() != other.stories["start"].to_list()


@pytest.mark.parametrize("n_events", [1_000, 1_001, 7_919, N_EVENTS], ids=lambda n: f"n={n}")
def test_exact_row_count_schema_and_all_categories(n_events: int, data: demo.DemoData):
    result = data.events if n_events == N_EVENTS else demo.generate(n_events, seed=7, now=NOW).events
    assert result.height == n_events
    assert result.schema == schema.SCHEMA
    assert set(result["type"].unique().to_list()) == set(schema.CATEGORY_CODES)


def test_ids_are_unique_and_well_formed(events: pl.DataFrame):
    assert events["id"].n_unique() == events.height
    assert events["id"].str.contains(r"^evt-[0-9a-f]{16}$").all()


def test_times_inside_period_and_sorted(events: pl.DataFrame):
    assert events["time"].is_sorted()
    assert events["time"].min() >= NOW - timedelta(days=DAYS)
    assert events["time"].max() <= NOW


def test_default_now_is_current_minute():
    before = datetime.now(UTC).replace(second=0, microsecond=0)
    result = demo.generate(1_000, seed=1)
    after = datetime.now(UTC)
    assert before - timedelta(days=90) <= result.events["time"].min()
    assert result.events["time"].max() <= after


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"n_events": 999}, "n_events"), ({"n_events": 5_000, "days": 6}, "days")],
    ids=["too-few-events", "too-few-days"],
)
def test_rejects_too_small_requests(kwargs: dict, message: str):
    with pytest.raises(ValueError, match=message):
        demo.generate(**kwargs, now=NOW)


def test_naive_now_is_utc():
    aware = demo.generate(1_000, seed=2, now=NOW)
    naive = demo.generate(1_000, seed=2, now=NOW.replace(tzinfo=None))
    assert_frame_equal(aware.events, naive.events)


# ----------------------------------------------------------------------------------- content


def test_error_text_exactly_on_failures(events: pl.DataFrame):
    failed = events["result"] == "failed"
    assert failed.sum() > 0
    assert (events.filter(failed)["error"].str.len_chars() > 0).all()
    assert events.filter(~failed)["error"].null_count() == (~failed).sum()


def test_failures_across_categories(events: pl.DataFrame):
    failing_types = events.filter(pl.col("result") == "failed")["type"].n_unique()
    assert failing_types >= 12


def test_pending_and_processing_only_recent(events: pl.DataFrame, data: demo.DemoData):
    running = events.filter(pl.col("result").is_in(["pending", "processing"]))
    assert running.height > 0
    assert running["time"].min() >= NOW - timedelta(hours=2)
    # Older than an hour (what a stuck detection looks for): exactly the stuck stories.
    stuck = running.filter(pl.col("time") < NOW - timedelta(hours=1))["id"].sort().to_list()
    expected = (
        data.stories.filter(pl.col("story") == "stuck_operation")["event_ids"].explode().sort().to_list()
    )
    assert stuck == expected
    assert len(expected) >= 2


def test_multi_step_operations_share_request_id(events: pl.DataFrame):
    groups = (
        events.filter(pl.col("request_id").is_not_null())
        .group_by("request_id")
        .agg(pl.len(), pl.col("actor").n_unique().alias("actors"), pl.col("type").n_unique().alias("types"))
    )
    multi = groups.filter(pl.col("len") > 1)
    assert multi.height > 100
    assert (multi["actors"] == 1).all()
    assert (multi["types"] > 1).any()
    assert events["request_id"].null_count() > 0


@pytest.mark.parametrize("column", ["params", "before", "after"])
def test_json_columns_parse_to_objects(events: pl.DataFrame, column: str):
    values = events[column].drop_nulls()
    assert values.len() > 1_000
    for text in values.gather_every(23):
        assert isinstance(json.loads(text), dict)


@pytest.mark.parametrize(
    ("action", "has_before", "has_after"),
    [("create", False, True), ("register", False, True), ("delete", True, False), ("update", True, True)],
)
def test_before_after_fit_the_action(events: pl.DataFrame, action: str, has_before: bool, has_after: bool):
    rows = events.filter((pl.col("action") == action) & (pl.col("result") == "done"))
    assert rows.height > 0
    assert (rows["before"].is_not_null().all()) is has_before
    assert (rows["after"].is_not_null().all()) is has_after
    assert (rows["before"].is_null().all()) is not has_before
    if action == "update":
        changed = rows.filter(pl.col("before") != pl.col("after"))
        assert changed.height == rows.height
        nested = json.loads(rows["before"][0])
        assert any(isinstance(v, dict) for v in nested.values())


def test_descriptions_are_sentences_about_the_actor(events: pl.DataFrame):
    assert (events["description"].str.len_chars() > 10).all()
    sample = events.gather_every(97)
    for actor, target, text in sample.select("actor", "target", "description").iter_rows():
        assert text.startswith(actor)
        assert target in text


def test_people_users_and_emails(events: pl.DataFrame):
    people = demo.users(7)
    humans = people.filter(~pl.col("service"))
    assert humans.height == demo.N_PEOPLE
    assert humans["username"].str.contains(r"^[a-z]+\.[a-z]+$").all()
    assert (humans["email"] == humans["username"] + "@" + demo.EMAIL_DOMAIN).all()
    assert humans["ips"].list.len().is_between(1, 3).all()
    all_ips = people["ips"].explode()
    assert all_ips.n_unique() == all_ips.len()  # never shared, so per-IP and per-account checks agree
    assert any(":" in ip for ip in all_ips)
    assert set(humans["time_zone"]) == set(demo.HOME_TIME_ZONES)
    assert people.filter(pl.col("service"))["email"].null_count() == len(demo.SERVICE_ACCOUNTS)
    actors = set(events["actor"].unique())
    assert set(demo.SERVICE_ACCOUNTS) <= actors


def test_office_hour_rhythm(ordinary: pl.DataFrame):
    people = demo.users(7).filter(~pl.col("service")).select("username", "time_zone")
    human = ordinary.join(people, left_on="actor", right_on="username")
    in_office = 0
    for zone in demo.HOME_TIME_ZONES:
        local = human.filter(pl.col("time_zone") == zone)["time"].dt.convert_time_zone(zone)
        in_office += ((local.dt.weekday() <= 5) & local.dt.hour().is_between(8, 18)).sum()
    assert in_office / human.height > 0.85


@pytest.fixture(scope="module")
def local_people(ordinary: pl.DataFrame) -> pl.DataFrame:
    """Ordinary events of people with their local time (naive, home zone) and working day."""
    people = demo.users(7).filter(~pl.col("service"))
    human = ordinary.join(people, left_on="actor", right_on="username")
    return pl.concat(
        human.filter(pl.col("time_zone") == zone).with_columns(
            local=pl.col("time").dt.convert_time_zone(zone).dt.replace_time_zone(None)
        )
        for zone in demo.HOME_TIME_ZONES
    ).with_columns(hour=pl.col("local").dt.hour() + pl.col("local").dt.minute() / 60)


def test_people_have_their_own_working_day():
    people = demo.users(7).filter(~pl.col("service"))
    assert people["day_start"].is_between(7, 10).all()
    assert people["day_hours"].is_between(8, 10).all()
    assert people["day_start"].n_unique() > 5 and people["day_hours"].n_unique() > 3
    on_call = people.filter(pl.col("on_call").is_not_null())
    assert sorted(on_call["on_call"]) == list(range(demo.N_ON_CALL))
    assert on_call["role"].is_in(["operator", "developer"]).all()
    assert demo.users(7).filter(pl.col("service"))["on_call"].null_count() == len(demo.SERVICE_ACCOUNTS)


def test_extra_hours_spill_next_to_the_working_day(local_people: pl.DataFrame):
    """Outside on-call nights, a person works from an hour before their day to ~22:00 at the
    latest (an hour of slack for the weeks shifted across a DST change)."""
    days = local_people.filter(pl.col("on_call").is_null() | (pl.col("hour") >= 6))
    assert (days["hour"] >= days["day_start"] - 2).all()
    assert (days["hour"] < 23).all()
    assert days.filter(pl.col("local").dt.hour() < 5).height == 0
    end = pl.col("day_start") + pl.col("day_hours")
    extra = days.filter((pl.col("hour") < pl.col("day_start")) | (pl.col("hour") > end + 0.1))
    assert 0.01 < extra.height / days.height < 0.08
    assert (
        extra.filter(pl.col("hour") > end).height > extra.filter(pl.col("hour") < pl.col("day_start")).height
    )


def test_on_call_nights_only_in_turn_weeks(local_people: pl.DataFrame):
    nights = local_people.filter(pl.col("local").dt.hour() < 5)
    assert nights.height > 5
    assert nights["on_call"].null_count() == 0  # only on-call engineers work at night
    assert nights["actor"].n_unique() >= 2
    turn = nights["local"].dt.date().map_elements(demo.on_call_slot, return_dtype=pl.Int8)
    assert (turn == nights["on_call"]).all()
    assert nights.filter(pl.col("type") == "auth")["action"].is_in(["login"]).all()
    assert nights["type"].is_in(["auth", "vpn", "monitoring", "service", "infra"]).all()


def test_on_call_rotation_turns_weekly():
    monday = datetime(2025, 6, 2).date()
    slots = [demo.on_call_slot(monday + timedelta(days=d)) for d in range(7 * demo.N_ON_CALL)]
    assert [slots[7 * w] for w in range(demo.N_ON_CALL)] == sorted(set(slots), key=slots.index)
    assert all(slots[7 * w : 7 * w + 7] == [slots[7 * w]] * 7 for w in range(demo.N_ON_CALL))
    assert sorted(set(slots)) == list(range(demo.N_ON_CALL))


def test_service_accounts_work_around_the_clock_with_a_batch_window(ordinary: pl.DataFrame):
    hours = (
        ordinary.filter(pl.col("actor").is_in(list(demo.SERVICE_ACCOUNTS)))["time"]
        .dt.hour()
        .value_counts()
        .sort("time")
    )
    assert hours["time"].to_list() == list(range(24))
    counts = dict(hours.rows())
    batch = sum(counts[h] for h in (1, 2, 3)) / 3
    rest = sum(counts[h] for h in range(5, 24)) / 19
    assert batch > 2 * rest and min(counts.values()) > 0.5 * rest


def test_ordinary_role_changes_are_granted_by_admins(ordinary: pl.DataFrame):
    admins = demo.users(7).filter(pl.col("role") == "admin")["username"]
    changes = ordinary.filter(pl.col("action") == "role_change")
    assert changes.height > 0
    assert (changes["type"] == "user").all()
    assert (changes["actor"] != changes["target"]).all()
    assert changes["actor"].is_in(admins.implode()).all()
    first = json.loads(changes["before"][0])
    assert set(first) == {"role"} and first["role"] in demo.ROLES
    assert (
        ordinary.filter(pl.col("type") == "organization")["action"]
        .is_in(["permission_change", "add_member"])
        .any()
    )


# ----------------------------------------------------------------------------------- stories


def test_stories_table(data: demo.DemoData):
    stories = data.stories
    assert set(stories["story"]) == set(demo.STORIES)
    assert stories.schema["event_ids"] == pl.List(pl.String)
    assert stories.schema["start"] == pl.Datetime("us", "UTC")
    for row in stories.iter_rows(named=True):
        assert row["detection"] == demo.STORIES[row["story"]][0]
        assert row["detections"] == list(demo.STORIES[row["story"]])
        assert row["start"] <= row["end"]
        assert row["description"].endswith(".")
        found = data.events.filter(pl.col("id").is_in(row["event_ids"]))
        assert found.height == len(row["event_ids"]) > 0
        assert found["time"].min() == row["start"]
        assert found["time"].max() == row["end"]


def in_network(ips: pl.Series, story: str) -> bool:
    network = ipaddress.ip_network(demo.STORY_NETWORKS[story])
    return all(ipaddress.ip_address(ip) in network for ip in ips)


def test_brute_force(data: demo.DemoData):
    (rows,) = story_events(data, "brute_force")
    (truth,) = data.stories.filter(pl.col("story") == "brute_force").iter_rows(named=True)
    assert 40 <= rows.height <= 80
    assert rows.select("type", "action", "result").unique().rows() == [("auth", "login", "failed")]
    assert rows["ip"].unique().to_list() == [truth["key"]] == [truth["ip"]]
    assert in_network(rows["ip"], "brute_force")
    assert rows["actor"].n_unique() <= 3
    assert rows["time"].max() - rows["time"].min() <= timedelta(minutes=5)


def test_password_spray(data: demo.DemoData):
    (rows,) = story_events(data, "password_spray")
    assert rows.select("type", "action", "result").unique().rows() == [("auth", "login", "failed")]
    assert rows["ip"].n_unique() == 1 and in_network(rows["ip"], "password_spray")
    assert rows["actor"].n_unique() == rows.height >= 25
    assert rows["time"].max() - rows["time"].min() <= timedelta(minutes=4)


def test_account_takeover(data: demo.DemoData):
    (rows,) = story_events(data, "account_takeover")
    (truth,) = data.stories.filter(pl.col("story") == "account_takeover").iter_rows(named=True)
    victim = truth["key"]
    assert (rows["actor"] == victim).all()
    failures = rows.filter(pl.col("result") == "failed")
    assert (failures["action"] == "login").all()
    assert failures.height >= 10 and failures["ip"].n_unique() >= 10
    assert failures["time"].max() - failures["time"].min() <= timedelta(minutes=8)
    assert in_network(rows["ip"], "account_takeover")
    success = rows.filter((pl.col("action") == "login") & (pl.col("result") == "done"))
    assert success.height == 1
    assert success["ip"][0] == truth["ip"] and truth["ip"] in failures["ip"].to_list()
    assert success["time"][0] > failures["time"].max()
    assert success["time"][0] - failures["time"].min() <= timedelta(minutes=10)
    after = rows.filter(pl.col("time") > success["time"][0])
    assert after["time"].max() - success["time"][0] <= timedelta(minutes=30)
    grant = after.filter(pl.col("action") == "role_change")
    assert grant.height == 1 and grant["type"][0] == "user" and grant["target"][0] == victim
    assert json.loads(grant["after"][0]) == {"role": "admin"}
    assert json.loads(grant["before"][0])["role"] != "admin"
    reads = after.filter((pl.col("type") == "secret") & (pl.col("action") == "read"))
    assert reads.height >= 3 and (reads["time"] > grant["time"][0]).all()


def test_off_hours_backup_deletion(data: demo.DemoData):
    (rows,) = story_events(data, "off_hours_backup_deletion")
    (truth,) = data.stories.filter(pl.col("story") == "off_hours_backup_deletion").iter_rows(named=True)
    person = demo.users(7).filter(pl.col("username") == truth["actor"]).row(0, named=True)
    assert person["role"] == "admin"
    assert rows.height >= 3
    assert rows.select("type", "action", "result").unique().rows() == [("backup", "delete", "done")]
    assert (rows["actor"] == truth["actor"]).all() and in_network(rows["ip"], "off_hours_backup_deletion")
    for moment in rows["time"]:
        local = moment.astimezone(ZoneInfo(person["time_zone"]))
        assert local.hour == 3 and local.weekday() in (1, 2, 3, 4)
        assert moment.hour < 6  # off hours in UTC as well


def test_permission_escalation(data: demo.DemoData):
    (rows,) = story_events(data, "permission_escalation")
    assert rows.height == 1
    event = rows.row(0, named=True)
    assert (event["type"], event["action"], event["result"]) == ("user", "role_change", "done")
    assert event["actor"] == event["target"]
    assert json.loads(event["before"])["role"] != "admin"
    assert json.loads(event["after"])["role"] == "admin"
    assert demo.users(7).filter(pl.col("username") == event["actor"])["role"][0] != "admin"
    assert in_network(rows["ip"], "permission_escalation")


def test_stuck_operations(data: demo.DemoData):
    for rows in story_events(data, "stuck_operation"):
        assert rows.height == 1
        event = rows.row(0, named=True)
        assert event["result"] in ("pending", "processing")
        assert timedelta(hours=1) < NOW - event["time"] <= timedelta(hours=2)
        assert event["request_id"] is not None


def test_story_ips_are_never_used_by_ordinary_traffic(ordinary: pl.DataFrame):
    networks = [ipaddress.ip_network(n) for n in demo.STORY_NETWORKS.values()]
    for ip in ordinary["ip"].drop_nulls().unique():
        address = ipaddress.ip_address(ip)
        assert not any(address in n for n in networks), ip


@pytest.mark.parametrize(("seed", "days"), [(s, 90) for s in range(12)] + [(3, 14), (4, 30)])
def test_stories_leave_a_week_of_history_before_them(seed: int, days: int):
    """The off-hours detection judges an actor by the days before: every story starts at
    least seven days after the period's start."""
    stories = demo.generate(1_000, seed=seed, now=NOW, days=days).stories
    assert stories["start"].min() >= NOW - timedelta(days=days - 7)
    assert stories["end"].max() <= NOW


def test_stories_do_not_depend_on_n_events():
    small = demo.generate(2_000, seed=9, now=NOW).stories
    large = demo.generate(9_000, seed=9, now=NOW).stories
    assert_frame_equal(small.drop("event_ids"), large.drop("event_ids"))


# ----------------------------------------------------------------------------------- quiet ordinary logins


def max_in_window(times: list[datetime], window: timedelta) -> int:
    """Most events in any [t, t + window) over sorted times."""
    best, start = 0, 0
    for end, moment in enumerate(times):
        while moment - times[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


def max_distinct_in_window(rows: list[tuple[datetime, str]], window: timedelta) -> int:
    best, queue = 0, deque()
    for moment, value in rows:
        queue.append((moment, value))
        while moment - queue[0][0] >= window:
            queue.popleft()
        best = max(best, len({v for _, v in queue}))
    return best


@pytest.fixture(scope="module")
def logins(ordinary: pl.DataFrame) -> pl.DataFrame:
    rows = ordinary.filter((pl.col("type") == "auth") & (pl.col("action") == "login"))
    assert rows.filter(pl.col("result") == "failed").height > 20  # ordinary failures exist, sparse
    return rows.select("time", "actor", "ip", "result")


def grouped(rows: pl.DataFrame, key: str) -> dict[str, list[tuple]]:
    out: dict[str, list[tuple]] = defaultdict(list)
    for row in rows.sort("time").iter_rows(named=True):
        out[row[key]].append(row)
    return out


def test_no_more_than_two_consecutive_failures_per_account(logins: pl.DataFrame):
    worst = 0
    for rows in grouped(logins, "actor").values():
        run = 0
        for row in rows:
            run = run + 1 if row["result"] == "failed" else 0
            worst = max(worst, run)
    assert worst <= demo.ORDINARY_LOGIN_LIMITS["consecutive_failures_per_account"]


def test_no_brute_force_from_ordinary_ips(logins: pl.DataFrame):
    failures = logins.filter(pl.col("result") == "failed")
    worst = max(
        max_in_window([r["time"] for r in rows], timedelta(seconds=120))
        for rows in grouped(failures, "ip").values()
    )
    assert worst < 8


def test_no_spray_from_ordinary_ips(logins: pl.DataFrame):
    failures = logins.filter(pl.col("result") == "failed")
    worst = max(
        max_distinct_in_window([(r["time"], r["actor"]) for r in rows], timedelta(minutes=5))
        for rows in grouped(failures, "ip").values()
    )
    assert worst < 10


def test_no_account_attacked_from_many_ips(logins: pl.DataFrame):
    failures = logins.filter(pl.col("result") == "failed")
    worst = max(
        max_distinct_in_window([(r["time"], r["ip"]) for r in rows], timedelta(minutes=10))
        for rows in grouped(failures, "actor").values()
    )
    assert worst < 5


@pytest.mark.parametrize("key", ["actor", "ip"])
def test_no_success_after_many_failures(logins: pl.DataFrame, key: str):
    worst = 0
    for rows in grouped(logins, key).values():
        recent: deque[datetime] = deque()
        for row in rows:
            while recent and row["time"] - recent[0] > timedelta(minutes=10):
                recent.popleft()
            if row["result"] == "failed":
                recent.append(row["time"])
            else:
                worst = max(worst, len(recent))
    assert worst < 5


def test_detections_would_fire_on_the_stories(data: demo.DemoData):
    """The same checks that stay quiet on ordinary traffic fire on the stories."""
    failures = data.events.filter(
        (pl.col("type") == "auth") & (pl.col("action") == "login") & (pl.col("result") == "failed")
    )
    by_ip = grouped(failures, "ip")
    brute_ip = data.stories.filter(pl.col("story") == "brute_force")["key"][0]
    spray_ip = data.stories.filter(pl.col("story") == "password_spray")["key"][0]
    victim = data.stories.filter(pl.col("story") == "account_takeover")["key"][0]
    assert max_in_window([r["time"] for r in by_ip[brute_ip]], timedelta(seconds=120)) >= 8
    assert (
        max_distinct_in_window([(r["time"], r["actor"]) for r in by_ip[spray_ip]], timedelta(minutes=5)) >= 10
    )
    victim_rows = grouped(failures, "actor")[victim]
    assert max_distinct_in_window([(r["time"], r["ip"]) for r in victim_rows], timedelta(minutes=10)) >= 5

"""Retention: policy file, dry run, archive then purge, crash safety, archive round trip.

The round trip runs on SQLite and PostgreSQL: events archived and then searched with the
archive included equal the events before the run, for many filters.
"""

from __future__ import annotations

import argparse
import json
import tomllib
from datetime import UTC, date, datetime, timedelta

import polars as pl
import pytest
from conftest import STORE_FIXTURES
from polars.testing import assert_frame_equal

from audit_analytics.cli import admin as admin_cli
from audit_analytics.cli import main as cli
from audit_analytics.demo.generate import generate
from audit_analytics.engines.store import open_store
from audit_analytics.filters import Filter
from audit_analytics.io import archive
from audit_analytics.io.retention import Policy, PolicyError, apply, last_runs, load_policy, plan, save_policy
from audit_analytics.schema import CATEGORY_CODES

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def events() -> pl.DataFrame:
    return generate(6_000, seed=11, now=NOW, days=240).events


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres), "chdb"])
def store(request):
    return request.getfixturevalue(STORE_FIXTURES.get(request.param, "pg_store"))


def policy_for(tmp_path, events, **changes) -> Policy:
    busiest = events["actor"].drop_nulls().value_counts(sort=True)["actor"][0]
    base = Policy(
        group_days={"security": 150, "operational": 45},
        overrides={"backup": 200},
        archive=str(tmp_path / "archive"),
        hold_categories=("secret",),
        hold_actors=(busiest,),
    )
    return base.replace(**changes)


def platform(frame: pl.DataFrame) -> pl.DataFrame:
    """The platform's events only (not the tool's own records made during the test)."""
    return frame.filter(~pl.col("id").str.starts_with("aa-")).sort("time", "id")


def expected_plan(events: pl.DataFrame, policy: Policy) -> dict[str, tuple[int, int]]:
    """(to_delete, held) per category, in plain Python over the rows."""
    holds = {a.lower() for a in policy.hold_actors}
    out = {}
    for cat in CATEGORY_CODES:
        cutoff = NOW - timedelta(days=policy.days_for(cat))
        rows = [r for r in events.iter_rows(named=True) if r["type"] == cat and r["time"] < cutoff]
        held = [r for r in rows if cat in policy.hold_categories or (r["actor"] or "").lower() in holds]
        out[cat] = (len(rows) - len(held), len(held))
    return out


# ---------------------------------------------------------------------------------------
# policy


def test_default_policy_groups():
    policy = Policy()
    assert {
        c: policy.days_for(c) for c in ("auth", "user", "organization", "audit", "secret", "vpn")
    } == dict.fromkeys(("auth", "user", "organization", "audit", "secret", "vpn"), 400)
    assert {policy.days_for(c) for c in CATEGORY_CODES} == {400, 90}
    assert policy.archive == "data/archive"


def test_policy_toml_round_trip(tmp_path):
    policy = Policy(
        group_days={"security": 500, "operational": 30},
        overrides={"backup": 365},
        archive=str(tmp_path / 'arch "quoted"'),
        hold_categories=("secret", "vpn"),
        hold_actors=("mallory", "o'brien"),
    )
    assert Policy.from_toml(policy.to_toml()) == policy
    path = tmp_path / "p.toml"
    path.write_text(policy.to_toml())
    assert load_policy(path) == policy


# every string field of the policy with characters a hand-written TOML string gets wrong:
# DEL and other controls, quotes, backslash, newline, tab, brackets, and non-BMP text (JSON
# escapes that as a surrogate pair, which TOML rejects)
HOSTILE = "o'brien\"\\\x7f\n\t\x1b]] [days] = 1 # é例😀"


def test_policy_toml_round_trips_hostile_strings(tmp_path, sqlite_store):
    policy = Policy(
        archive=str(tmp_path / f"arch {HOSTILE}"),
        hold_categories=("auth",),
        hold_actors=(HOSTILE, "mallory\x7f", "𝔘nicode"),
    )
    text = policy.to_toml()
    assert Policy.from_toml(text) == policy
    assert tomllib.loads(text) == policy.as_dict()  # the same keys and tables as before
    assert policy.hold_actors == tuple(sorted((HOSTILE, "mallory\x7f", "𝔘nicode")))
    path = tmp_path / "retention.toml"
    save_policy(path, policy, actor="ann", store=sqlite_store)
    loaded = load_policy(path)
    assert loaded == policy
    assert loaded.archive == str(tmp_path / f"arch {HOSTILE}")
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    event = sqlite_store.get(last_runs(sqlite_store)["id"][0])
    assert json.loads(event["after"])["legal_hold"]["actors"] == list(policy.hold_actors)


def test_a_policy_with_undecodable_text_is_refused_and_the_file_is_untouched(tmp_path, sqlite_store):
    path = tmp_path / "retention.toml"
    save_policy(path, Policy(), actor="ann", store=sqlite_store)
    before = path.read_bytes()
    undecodable = b"/srv/arch\xff".decode("utf-8", "surrogateescape")  # as argv gives it
    with pytest.raises(PolicyError, match="archive '/srv/arch\\\\udcff' holds bytes that are not UTF-8"):
        save_policy(path, Policy(archive=undecodable), actor="ann", store=sqlite_store)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir() if "retention" in p.name) == ["retention.toml"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[days]\nauthentication = 3\n", "unknown category"),
        ("[days]\nsecurity = 0\n", "at least 1"),
        ("[days]\nsecurity = 'long'\n", "whole number"),
        ("[legal_hold]\ncategories = ['nope']\n", "unknown category"),
        ("retain = 3\n", "unknown key"),
        ("[days\n", "not valid TOML"),
    ],
    ids=["category", "zero", "text", "hold", "key", "syntax"],
)
def test_bad_policies_say_what_is_wrong(text, message):
    with pytest.raises(PolicyError, match=message):
        Policy.from_toml(text)


def test_policy_change_is_recorded(tmp_path, sqlite_store):
    path = tmp_path / "retention.toml"
    new = Policy(group_days={"security": 365, "operational": 60})
    save_policy(path, new, actor="ann", store=sqlite_store)
    assert load_policy(path) == new
    runs = last_runs(sqlite_store)
    assert runs["action"].to_list() == ["policy_change"]
    event = sqlite_store.get(runs["id"][0])
    assert json.loads(event["before"])["days"] == {"security": 400, "operational": 90}
    assert json.loads(event["after"])["days"] == {"security": 365, "operational": 60}


# ---------------------------------------------------------------------------------------
# plan and apply


def test_plan_counts_match_the_rows(tmp_path, sqlite_store, events):
    sqlite_store.append(events)
    policy = policy_for(tmp_path, events)
    table = plan(sqlite_store, policy, now=NOW)
    expected = expected_plan(events, policy)
    result = {r["category"]: (r["to_delete"], r["held"]) for r in table.iter_rows(named=True)}
    assert result == expected
    assert sum(d for d, _ in expected.values()) > 500  # the test means something
    assert sum(h for _, h in expected.values()) > 50
    for r in table.iter_rows(named=True):
        kept = events.filter(pl.col("type") == r["category"]).height - r["to_delete"]
        assert r["events"] - r["to_delete"] == kept
        if r["oldest_kept"] is not None:
            assert r["oldest_kept"] >= r["cutoff"] or r["held"] or r["category"] in policy.hold_categories
    assert table.filter(pl.col("category") == "secret")["to_delete"].item() == 0
    assert sqlite_store.count() == events.height  # a dry run changes nothing


def test_apply_archives_then_deletes_and_records_the_run(tmp_path, store, events):
    store.append(events)
    policy = policy_for(tmp_path, events)
    due = plan(store, policy, now=NOW)
    run = apply(store, policy, actor="ann", now=NOW)
    assert run.deleted == run.archived == int(due["to_delete"].sum())
    left = platform(store.load())
    assert left.height == events.height - run.deleted
    assert int(plan(store, policy, now=NOW)["to_delete"].sum()) == 0
    files = sorted((tmp_path / "archive").glob("category=*/month=*/part-*.parquet"))
    assert files and all(run.run_id in f.name for f in files)
    assert {f.parent.parent.name.split("=")[1] for f in files} <= set(CATEGORY_CODES)
    manifest = [json.loads(x) for x in (tmp_path / "archive" / archive.MANIFEST).read_text().splitlines()]
    assert sum(m["rows"] for m in manifest) == run.archived
    recorded = store.get(run.event_id)
    assert (recorded["type"], recorded["action"], recorded["result"], recorded["actor"]) == (
        "audit",
        "retention",
        "done",
        "ann",
    )
    assert json.loads(recorded["params"])["deleted"] == run.deleted


def test_no_archive_means_no_delete_unless_asked(tmp_path, sqlite_store, events):
    sqlite_store.append(events)
    policy = policy_for(tmp_path, events, archive=None)
    with pytest.raises(PolicyError, match="no archive"):
        apply(sqlite_store, policy, actor="ann", now=NOW)
    assert sqlite_store.count() == events.height
    run = apply(sqlite_store, policy, actor="ann", now=NOW, allow_without_archive=True)
    assert run.archived == 0 and run.deleted > 0


class Crash(RuntimeError):
    pass


def test_crash_between_archive_and_delete_loses_and_duplicates_nothing(tmp_path, store, events):
    store.append(events)
    policy = policy_for(tmp_path, events)
    due = int(plan(store, policy, now=NOW)["to_delete"].sum())

    def crash():
        raise Crash("power cut")

    with pytest.raises(Crash):
        apply(store, policy, actor="ann", now=NOW, before_delete=crash)
    assert platform(store.load()).height == events.height  # nothing deleted
    failed = last_runs(store)
    assert failed["result"].to_list() == ["failed"] and "power cut" in failed["error"][0]

    rerun = apply(store, policy, actor="ann", now=NOW)
    assert (rerun.archived, rerun.already_archived, rerun.deleted) == (0, due, due)
    raw = pl.read_parquet(str(tmp_path / "archive" / "category=*" / "month=*" / "*.parquet"))
    assert raw.height == due and raw["id"].n_unique() == due  # no duplicate in the archive
    restored = archive.merge(store.load(), archive.scan(policy.archive))
    assert_frame_equal(platform(restored), events.sort("time", "id"))


def test_crash_while_writing_the_archive(tmp_path, sqlite_store, events, monkeypatch):
    sqlite_store.append(events)
    policy = policy_for(tmp_path, events)
    real = pl.DataFrame.write_parquet
    calls = {"n": 0}

    def flaky(self, file, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 7:
            real(self.head(3), file, *args, **kwargs)  # a torn file under the temporary name
            raise OSError("disk full")
        return real(self, file, *args, **kwargs)

    monkeypatch.setattr(pl.DataFrame, "write_parquet", flaky)
    with pytest.raises(archive.ArchiveError, match="disk full"):
        apply(sqlite_store, policy, actor="ann", now=NOW)
    assert sqlite_store.count() - 1 == events.height  # + the failed run's record
    monkeypatch.setattr(pl.DataFrame, "write_parquet", real)
    rerun = apply(sqlite_store, policy, actor="ann", now=NOW)
    assert rerun.already_archived > 0 and rerun.archived > 0
    raw = pl.read_parquet(str(tmp_path / "archive" / "category=*" / "month=*" / "*.parquet"))
    assert raw["id"].n_unique() == raw.height == rerun.deleted
    assert not list((tmp_path / "archive").rglob("*.tmp"))


def test_a_second_run_has_nothing_to_do(tmp_path, sqlite_store, events):
    sqlite_store.append(events)
    policy = policy_for(tmp_path, events)
    apply(sqlite_store, policy, actor="ann", now=NOW)
    again = apply(sqlite_store, policy, actor="ann", now=NOW)
    assert (again.archived, again.deleted, again.parts) == (0, 0, ())
    assert last_runs(sqlite_store)["action"].to_list() == ["retention", "retention"]


# ---------------------------------------------------------------------------------------
# archive round trip


def round_trip_filters(events: pl.DataFrame) -> list[Filter]:
    actor = events["actor"].drop_nulls().value_counts(sort=True)["actor"][3]
    email = events["email"].drop_nulls().value_counts(sort=True)["email"][0]
    target = events["target"].drop_nulls().value_counts(sort=True)["target"][0]
    phrase = " ".join(
        events["description"].drop_nulls().value_counts(sort=True)["description"][0].split()[1:3]
    )
    return [
        Filter(),
        Filter(types=("auth",)),
        Filter(types=("service", "backup", "secret")),
        Filter(users=(actor,)),
        Filter(users=(email.upper(),)),
        Filter(results=("failed",)),
        Filter(results=("pending", "processing")),
        Filter(period="30d"),
        Filter(period="7d", types=("auth",)),
        Filter(period="custom", start=date(2025, 8, 1), end=date(2025, 11, 30)),
        Filter(period="custom", start=date(2025, 9, 15), end=date(2025, 10, 15), tz="Pacific/Kiritimati"),
        Filter(
            period="custom", start=datetime(2025, 10, 31, 23, 0, tzinfo=UTC), end=NOW - timedelta(days=40)
        ),
        Filter(query="delete"),
        Filter(query="action:login result:failed"),
        Filter(query="-action:login"),
        Filter(query=f"resource:{target[:4]}*"),
        Filter(query="ip:10.0.0.0/8"),
        Filter(query=f'"{phrase}"'),
        Filter(query="before:2025-11-01"),
        Filter(query="after:2025-07-01 before:2025-12-01", types=("user", "audit", "organization")),
    ]


@pytest.mark.slow
def test_archive_round_trip(tmp_path, store, events):
    store.append(events)
    policy = policy_for(tmp_path, events)
    before = {f: f.apply(events, now=NOW).sort("time", "id") for f in round_trip_filters(events)}
    run = apply(store, policy, actor="ann", now=NOW)
    assert run.deleted > 500
    from_archive = {}
    for flt, expected in before.items():
        db_rows = platform(store.load(flt, now=NOW))
        archived = archive.scan(policy.archive, flt, now=NOW).collect()
        from_archive[flt] = archived.height
        assert_frame_equal(archive.merge(db_rows, archived), expected)
    # most filters reach into the archive (the recent-period ones cannot)
    assert sum(1 for n in from_archive.values() if n) >= len(from_archive) - 3, from_archive


def test_scan_prunes_partitions(tmp_path, events):
    root = tmp_path / "arch"
    archive.write_partitions(root, events, run_id="t")
    plan_text = archive.scan(root, Filter(types=("auth",))).explain()
    assert "category" in plan_text
    only_auth = archive.scan(root, Filter(types=("auth",))).collect()
    assert set(only_auth["type"].cast(pl.String)) == {"auth"}
    assert archive.scan(tmp_path / "missing").collect().height == 0


def test_merge_prefers_the_database_copy(events):
    head = events.head(10)
    changed = head.with_columns(pl.lit("archived copy").alias("description"))
    merged = archive.merge(head, changed)
    assert_frame_equal(merged, head.sort("time", "id"))


# ---------------------------------------------------------------------------------------
# CLI


@pytest.fixture
def main(monkeypatch):
    original = cli.build_parser

    def build():
        parser = original()
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        if "retention" not in sub.choices:  # until cli.py wires admin_cli itself
            admin_cli.add_parsers(sub, cli.add_filter_arguments)
        return parser

    monkeypatch.setattr(cli, "build_parser", build)
    return cli.main


def test_cli_plan_and_apply(tmp_path, monkeypatch, capsys, main):
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    now = datetime.now(UTC)
    store = open_store(db)
    fresh = generate(3_000, seed=4, now=now, days=200).events
    store.append(fresh)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AUDIT_RETENTION_POLICY", raising=False)
    policy = tmp_path / "policy.toml"
    policy.write_text("[days]\nsecurity = 120\noperational = 30\n")
    assert main(["retention", "plan", "--db", db, "--policy", str(policy)]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines()[0].split() == [
        "category",
        "days",
        "events",
        "held",
        "archive",
        "delete",
        "oldest",
        "kept",
        "next",
        "expiry",
    ]
    due = int(err.split(" events would")[0].split()[-1].replace(",", ""))
    assert due > 0 and store.count() == fresh.height
    arch_dir = tmp_path / "elsewhere"
    assert main(["retention", "apply", "--db", db, "--policy", str(policy), "--archive", str(arch_dir)]) == 0
    assert f"deleted {due:,}" in capsys.readouterr().out
    assert archive.scan(arch_dir).collect().height == due
    assert main(["retention", "plan", "--db", db, "--policy", str(tmp_path / "nope.toml")]) == 2
    assert "no policy file" in capsys.readouterr().err


# --------------------------------------------------------------------------- retention's delete


def test_a_chdb_delete_detaches_whole_partitions_and_a_rollback_attaches_them(chdb_store):
    """Retention's delete on ClickHouse (here, not in test_clickhouse_store.py, whose module
    holds another chDB folder open: chDB serves one per process): a month of one retention group deleted whole is detached (no
    rewrite), dropped when the chain's transaction commits and attached again when it rolls
    back; a partly deleted partition loses its rows by id, which a rollback inserts again."""
    from datetime import UTC, datetime

    from audit_analytics.schema import RETENTION_GROUPS

    events = generate(3_000, seed=2, now=datetime(2026, 4, 15, tzinfo=UTC), days=70).events
    chdb_store.append(events)
    month = events["time"].dt.strftime("%Y%m")
    security = events["type"].cast(pl.String).is_in(RETENTION_GROUPS["security"])
    whole = events.filter((month == "202602") & security)["id"]
    part = events.filter((month == "202603") & ~security)["id"].head(40)
    doomed = [*whole.to_list(), *part.to_list()]
    assert whole.len() > 100
    original = chdb_store.load()

    def detached() -> int:
        sql = "SELECT count() FROM system.detached_parts WHERE database = 'audit' AND table = 'audit_events'"
        return int(chdb_store._query(sql).column(0)[0].as_py())

    with chdb_store.engine.connect() as conn:
        transaction = conn.begin()
        assert chdb_store.delete_ids(conn, doomed) == len(doomed)
        assert chdb_store.count() == events.height - len(doomed)
        assert detached() >= 1  # the whole partition went aside, not row by row
        transaction.rollback()
    assert detached() == 0
    assert chdb_store.load().sort("id").equals(original.sort("id"))

    with chdb_store.engine.begin() as conn:
        assert chdb_store.delete_ids(conn, doomed) == len(doomed)
    assert detached() == 0  # dropped on commit
    left = chdb_store.load()
    assert left.height == events.height - len(doomed)
    assert not set(doomed) & set(left["id"].to_list())


def test_a_retention_longer_than_a_century_is_refused_when_read(tmp_path, capsys):
    """1,000,000 days put the cutoff before the year 1: every plan and run failed with
    "OverflowError: date value out of range" (the app's page too, for good)."""
    from audit_analytics.cli.main import main
    from audit_analytics.errors import PolicyError
    from audit_analytics.io.retention import MAX_DAYS, Policy

    assert Policy(overrides={"auth": MAX_DAYS}).days_for("auth") == MAX_DAYS
    with pytest.raises(PolicyError, match="days for 'operational' must be at most 36,500"):
        Policy(group_days={"security": 400, "operational": 1_000_000})
    path = tmp_path / "retention.toml"
    path.write_text("[days]\noperational = 1000000\n")
    db = f"sqlite:///{tmp_path / 'a.db'}"
    assert main(["demo", "--db", db, "--events", "1000"]) == 0
    capsys.readouterr()
    assert main(["retention", "plan", "--db", db, "--policy", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}: days for 'operational' must be at most 36,500 (100 years), not 1,000,000" in err

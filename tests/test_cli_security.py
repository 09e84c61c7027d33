"""``audit-analytics security``: every report on demo data and on the real sshd logs, exit
codes for cron, JSON Lines for a SIEM, thresholds that do not fit, bad durations."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta

import pytest
from conftest import need

from audit_analytics.analysis import security
from audit_analytics.cli.main import main
from audit_analytics.cli.security import DETECTION_REPORTS, REPORTS, parse_duration
from audit_analytics.demo.generate import generate
from audit_analytics.engines.store import open_store


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('cli-security') / 'demo.db'}"
    data = generate(3_000, seed=4)
    store = open_store(url)
    store.append(data.events)
    store.engine.dispose()
    return url, data


@pytest.fixture(scope="module", params=["openssh_2k", "linux_2k"])
def real_db(request, real_data_dir, tmp_path_factory):
    jsonl = real_data_dir / f"{request.param}_audit.jsonl"
    truth = real_data_dir / f"{request.param}_truth.json"
    need(jsonl.is_file() and truth.is_file(), f"{jsonl.name} is absent from {real_data_dir}")
    url = f"sqlite:///{tmp_path_factory.mktemp('real') / 'real.db'}"
    assert main(["import", "--db", url, str(jsonl)]) == 0
    return url, json.loads(truth.read_text())


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def as_json(capsys, *argv) -> list[dict]:
    code, out, err = run(capsys, "security", *argv, "--format", "json")
    assert code == 0, err
    return json.loads(out)


# ---------------------------------------------------------------------------------------
# demo data: every report, the injected stories


@pytest.mark.parametrize("report", REPORTS)
@pytest.mark.parametrize("fmt", ["table", "json", "csv", "jsonl"])
def test_every_report_in_every_format(demo_db, capsys, report, fmt):
    code, out, err = run(capsys, "security", report, "--db", demo_db[0], "--format", fmt)
    assert code == 0, err
    if fmt == "table":
        assert out.splitlines()[0].split()[0] in ("key", "ip", "account", "hour")
        assert report in err and "all time" in err
    elif fmt == "json":
        assert isinstance(json.loads(out), list) and json.loads(out)
    elif fmt == "jsonl":
        lines = [json.loads(line) for line in out.splitlines()]
        assert lines and all(isinstance(line, dict) for line in lines)
        if report in DETECTION_REPORTS:
            assert {line["rule"] for line in lines} == {report}
    else:
        assert list(csv.DictReader(io.StringIO(out)))


@pytest.mark.parametrize(
    ("report", "story"),
    [
        ("brute-force", "brute_force"),
        ("spray", "password_spray"),
        ("account-attack", "account_takeover"),
        ("success-after-failure", "account_takeover"),
        ("permission-changes", "permission_escalation"),
        ("off-hours", "off_hours_backup_deletion"),
    ],
)
def test_detections_find_the_injected_stories(demo_db, capsys, report, story):
    url, data = demo_db
    truth = data.stories.filter(data.stories["story"] == story).row(0, named=True)
    found = as_json(capsys, report, "--db", url)
    ids = {i for row in found for i in row["event_ids"]}
    assert set(truth["event_ids"]) & ids
    assert truth["key"] in {row["key"] for row in found}


def test_stuck_operations(demo_db, capsys):
    url, data = demo_db
    stuck = data.stories.filter(data.stories["story"] == "stuck_operation")
    found = as_json(capsys, "stuck", "--db", url, "--older-than", "1h")
    assert set(stuck["key"].to_list()) <= {row["target"] for row in found}
    assert all(row["age_seconds"] >= 3600 for row in found)
    # nothing is older than a year
    assert as_json(capsys, "stuck", "--db", url, "--older-than", "52w") == []


def test_fail_on_findings_exits_4_for_cron(demo_db, capsys):
    url, _ = demo_db
    code, out, _ = run(
        capsys, "security", "brute-force", "--db", url, "--fail-on-findings", "--format", "jsonl"
    )
    assert code == 4 and out.strip()
    code, out, _ = run(
        capsys,
        "security",
        "brute-force",
        "--db",
        url,
        "--threshold",
        "100000",
        "--fail-on-findings",
        "--format",
        "jsonl",
    )
    assert (code, out) == (0, "")


def test_thresholds_change_the_findings(demo_db, capsys):
    url, data = demo_db
    truth = data.stories.filter(data.stories["story"] == "password_spray").row(0, named=True)
    accounts = len(set(truth["event_ids"]))
    assert len(as_json(capsys, "spray", "--db", url, "--min-accounts", accounts)) == 1
    assert as_json(capsys, "spray", "--db", url, "--min-accounts", accounts + 1) == []
    wide = as_json(capsys, "brute-force", "--db", url, "--threshold", "3", "--window", "1h")
    assert len(wide) >= len(as_json(capsys, "brute-force", "--db", url))


def test_filters_narrow_the_report(demo_db, capsys):
    url, data = demo_db
    ip = data.stories.filter(data.stories["story"] == "brute_force")["key"].item()
    rows = as_json(capsys, "by-ip", "--db", url, "--search", f"ip:{ip}")
    assert [r["ip"] for r in rows] == [ip]
    assert (
        as_json(
            capsys, "by-ip", "--db", url, "--period", "custom", "--from", "2001-01-01", "--to", "2001-01-02"
        )
        == []
    )


def test_hostile_values_are_plain_text_in_tables(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'h.db'}"
    f = tmp_path / "h.jsonl"
    f.write_text(
        "\n".join(
            json.dumps(
                {
                    "id": f"h{i}",
                    "time": f"2026-01-01T00:00:0{i}Z",
                    "type": "auth",
                    "action": "login",
                    "result": "failed",
                    "actor": "evil\x1b[2J\u202eroot",
                    "ip": "192.0.2.1",
                }
            )
            for i in range(3)
        )
        + "\n"
    )
    assert main(["import", "--db", url, str(f)]) == 0
    capsys.readouterr()
    code, out, _ = run(capsys, "security", "by-account", "--db", url)
    assert code == 0 and "\x1b" not in out and "\u202e" not in out and "evil\\x1b[2J\\u202eroot" in out


# ---------------------------------------------------------------------------------------
# errors: one line, exit 2, no traceback


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["brute-force", "--min-ips", "3"], "--min-ips does not apply to the brute-force report"),
        (["by-ip", "--threshold", "3"], "it takes no thresholds"),
        (["stuck", "--window", "5m"], "it takes --older-than"),
        (["by-hour", "--fail-on-findings"], "--fail-on-findings applies to detections"),
        (["brute-force", "--window", "5 minutes"], "is not a duration"),
        (["brute-force", "--window", "0s"], "longer than zero"),
        (["brute-force", "--window=-5m"], "is not a duration"),
        (["stuck", "--older-than", "1x"], "is not a duration"),
        (["off-hours", "--hours", "18:00-08:30"], "must end after they start"),
        (["off-hours", "--hours", "nine-five"], "is not a time of day"),
        (["off-hours", "--org-tz", "Mars/Olympus"], "unknown time zone"),
        (["brute-force", "--threshold", "0"], "must be at least 1"),
        (["nonsense"], "invalid choice"),
    ],
)
def test_errors_are_one_line(demo_db, capsys, argv, message):
    try:
        code = main(["security", *argv, "--db", demo_db[0]])
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    _, err = capsys.readouterr()
    assert code == 2
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("120s", timedelta(seconds=120)),
        ("5m", timedelta(minutes=5)),
        ("1h", timedelta(hours=1)),
        ("1h30m", timedelta(minutes=90)),
        ("2d", timedelta(days=2)),
        ("1w", timedelta(weeks=1)),
        ("250ms", timedelta(milliseconds=250)),
        ("1.5h", timedelta(minutes=90)),
    ],
    ids=str,
)
def test_parse_duration(text, expected):
    assert parse_duration(text) == expected


# ---------------------------------------------------------------------------------------
# the real sshd logs against their truth files


def test_by_ip_and_account_equal_the_truth(real_db, capsys):
    url, truth = real_db
    by_ip = as_json(capsys, "by-ip", "--db", url)
    assert [[r["ip"], r["failures"]] for r in by_ip] == truth["top10_ips_by_failed"]
    by_account = as_json(capsys, "by-account", "--db", url)
    assert [[r["account"], r["failures"]] for r in by_account] == truth["top10_accounts_by_failed"]


def test_by_hour_equals_the_truth(real_db, capsys):
    url, truth = real_db
    rows = as_json(capsys, "by-hour", "--db", url)
    assert {str(r["hour"]): r["failures"] for r in rows} == truth["failed_per_hour"]


def test_brute_force_five_minutes_finds_the_truths_ips(real_db, capsys):
    url, truth = real_db
    found = as_json(capsys, "brute-force", "--db", url, "--threshold", "5", "--window", "300s")
    maxima: dict[str, int] = {}
    for row in found:
        maxima[row["key"]] = max(maxima.get(row["key"], 0), row["max_in_window"])
    assert maxima == {row["ip"]: row["max_failures_in_5min"] for row in truth["bruteforce_5min_ips"]}
    code, out, _ = run(
        capsys, "security", "brute-force", "--db", url, "--threshold", "5", "--window", "5m", "--fail-on-findings",
        "--format", "jsonl",
    )  # fmt: skip
    assert code == (4 if truth["bruteforce_5min_ips"] else 0)
    assert {json.loads(line)["key"] for line in out.splitlines()} == set(maxima)


def test_success_after_failure_on_real_data(real_db, capsys):
    url, truth = real_db
    found = as_json(capsys, "success-after-failure", "--db", url, "--threshold", "1", "--within", "5200w")
    firsts: dict[str, dict] = {}
    for row in sorted(found, key=lambda r: r["success_time"]):
        firsts.setdefault(row["account"], row)
    expected = {
        r["account"]: r["failures_before_first_success"]
        for r in truth["extra_accounts_success_after_failure"]
    }
    assert {a: r["failures"] for a, r in firsts.items()} == expected


# ---------------------------------------------------------------------------------------
# output: one time format in --tz, formula-safe CSV


@pytest.mark.parametrize("report", ["by-ip", "brute-force", "stuck"])
def test_times_are_in_tz_and_spelled_the_same_in_every_format(demo_db, capsys, report):
    url, _ = demo_db
    argv = ("security", report, "--db", url, "--tz", "Asia/Tokyo")
    records = json.loads(run(capsys, *argv, "--format", "json")[1])
    rows = list(csv.DictReader(io.StringIO(run(capsys, *argv, "--format", "csv")[1])))
    table = run(capsys, *argv, "--format", "table")[1].splitlines()
    assert records and len(rows) == len(records) == len(table) - 2
    for record, row, line in zip(records, rows, table[2:], strict=True):
        first = datetime.fromisoformat(record["first"])
        assert first.utcoffset() == timedelta(hours=9)
        assert row["first"] == record["first"] and record["first"] in line.split()
    # the same instants as in UTC
    utc = json.loads(run(capsys, "security", report, "--db", url, "--format", "json")[1])
    assert [datetime.fromisoformat(r["first"]) for r in utc] == [
        datetime.fromisoformat(r["first"]) for r in records
    ]
    assert all(r["first"].endswith("+00:00") for r in utc)


def test_csv_neutralises_formulas_and_json_keeps_them(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'f.db'}"
    hostile = "=cmd|' /C calc'!A0"
    f = tmp_path / "f.jsonl"
    f.write_text(
        "".join(
            json.dumps(
                {
                    "id": f"f{i}",
                    "time": f"2026-01-01T00:00:0{i}Z",
                    "type": "auth",
                    "action": "login",
                    "result": "failed",
                    "actor": hostile,
                    "ip": "192.0.2.1",
                }
            )
            + "\n"
            for i in range(3)
        )
    )
    assert main(["import", "--db", url, str(f)]) == 0
    capsys.readouterr()
    (row,) = csv.DictReader(
        io.StringIO(run(capsys, "security", "by-account", "--db", url, "--format", "csv")[1])
    )
    assert row["account"] == "'" + hostile and row["failures"] == "3"
    assert row["first"] == "2026-01-01T00:00:00+00:00"
    (record,) = as_json(capsys, "by-account", "--db", url)
    assert record["account"] == hostile and record["failures"] == 3


# ---------------------------------------------------------------------------------------
# what a detection means, and the permission type


@pytest.mark.parametrize("report", ["brute-force", "permission-changes", "off-hours"])
def test_json_findings_say_which_technique_and_rule(demo_db, capsys, report):
    detection = security.DETECTIONS[DETECTION_REPORTS[report]]
    records = as_json(capsys, report, "--db", demo_db[0])
    assert records, report
    assert {r["technique"] for r in records} == {detection.technique}
    assert {r["definition"] for r in records} == {detection.text()}
    assert detection.technique.startswith("T1") and detection.source


def test_the_definition_says_the_thresholds_the_report_ran_with(demo_db, capsys, tmp_path):
    records = as_json(capsys, "brute-force", "--db", demo_db[0], "--threshold", "3", "--window", "1h")
    assert records
    assert {r["definition"] for r in records} == {
        "An IP with at least 3 failed logins inside any window of 1 hour."
    }
    policy = tmp_path / "security.toml"
    policy.write_text("[brute-force]\nthreshold = 4\n")
    records = as_json(capsys, "brute-force", "--db", demo_db[0], "--policy", policy)
    assert {r["definition"] for r in records} == {
        "An IP with at least 4 failed logins inside any window of 2 minutes."
    }


def test_the_permission_type_selects_what_the_detection_lists(demo_db, capsys):
    code, out, err = run(
        capsys, "query", "--db", demo_db[0], "--type", "permission", "--format", "json", "--limit", "0"
    )
    assert code == 0, err
    listed = {r["id"] for r in json.loads(out)}
    found = {r["id"] for r in as_json(capsys, "permission-changes", "--db", demo_db[0])}
    assert listed and listed == found
    code, out, err = run(capsys, "query", "--db", demo_db[0], "--search", "type:permision")
    assert code == 2 and "types: device" in err and "permission" in err


def test_the_policy_file_sets_defaults_and_flags_win(demo_db, capsys, tmp_path):
    url = demo_db[0]
    policy = tmp_path / "security.toml"
    policy.write_text('[brute-force]\nthreshold = 2\nwindow = "10m"\n')
    shipped = as_json(capsys, "brute-force", "--db", url)
    loose = as_json(capsys, "brute-force", "--db", url, "--policy", policy)
    assert len(loose) > len(shipped)
    code, _, err = run(capsys, "security", "brute-force", "--db", url, "--policy", policy, "--threshold", "8")
    assert code == 0 and "threshold 8" in err and "window 10m" in err
    assert (
        as_json(
            capsys, "brute-force", "--db", url, "--policy", policy, "--threshold", "8", "--window", "120s"
        )
        == shipped
    )
    policy.write_text("[brute-force]\ncolour = 1\n")
    code, _, err = run(capsys, "security", "brute-force", "--db", url, "--policy", policy)
    assert code == 2 and f"{policy}: [brute-force] has no setting 'colour'" in err


def _failed_logins(tmp_path, capsys, others: list[str]) -> str:
    """A database of three failed logins of ann from 10.0.0.1 at 03:00 and ``others`` (``actor,ip``)
    at 04:00; its URL."""
    path = tmp_path / "logins.csv"
    rows = ["time,actor,ip,type,action,result"]
    rows += [f"2026-01-02T03:00:0{i}Z,ann,10.0.0.1,auth,login,failed" for i in range(3)]
    rows += [f"2026-01-02T04:00:0{i}Z,{actor_ip},auth,login,failed" for i, actor_ip in enumerate(others)]
    path.write_text("\n".join(rows) + "\n")
    db = f"sqlite:///{tmp_path / 'a.db'}"
    assert main(["import", "--db", db, str(path)]) == 0
    capsys.readouterr()
    return db


def test_by_account_says_how_many_failures_name_no_account(tmp_path, capsys):
    """by-ip counted 77 failures and by-account 66 without a word: the 11 named no account."""
    db = _failed_logins(tmp_path, capsys, [",10.0.0.2"] * 2)
    code, out, err = run(capsys, "security", "by-account", "--db", db, "--period", "all")
    assert code == 0 and "ann" in out
    assert "note: 2 failed logins name no account and are not in this report" in err
    code, _, err = run(capsys, "security", "by-ip", "--db", db, "--period", "all")
    assert code == 0 and "name no account" not in err
    assert "have no source IP" not in err  # every failure here has one


def test_by_ip_says_how_many_failures_have_no_source_ip(tmp_path, capsys):
    """by-ip of an sshd log where 190 of 513 failures had no address said nothing of them."""
    db = _failed_logins(tmp_path, capsys, ["bob,"] * 4)
    code, out, err = run(capsys, "security", "by-ip", "--db", db, "--period", "all", "--format", "json")
    assert code == 0 and [row["ip"] for row in json.loads(out)] == ["10.0.0.1"]
    assert (
        "note: 4 failed logins have no source IP and are not in this report (by-account counts them)" in err
    )

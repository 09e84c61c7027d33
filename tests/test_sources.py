"""Other people's audit logs (issue 18): every source format imports a real public sample
(from ../shared/data/sources) or a fixture written from its documentation, and the mapped
counts match figures computed here straight from the raw files."""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from conftest import ROOT, need

from audit_analytics.analysis.security import PERMISSION_ACTIONS
from audit_analytics.cli.main import main
from audit_analytics.engines.store import open_store
from audit_analytics.errors import IngestError
from audit_analytics.filters import Filter
from audit_analytics.io.ingest import check_file, import_files, load_file
from audit_analytics.io.sources import SOURCES, detect

SAMPLES = ROOT.parent / "shared" / "data" / "sources"
FIXTURES = Path(__file__).parent / "fixtures" / "sources"
NOW = datetime(2026, 12, 31, tzinfo=UTC)


@pytest.fixture(scope="module")
def samples() -> Path:
    need(
        SAMPLES.is_dir(),
        f"the source samples folder {SAMPLES} is absent (it lives in ../shared, beside the checkout)",
    )
    return SAMPLES


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


# ---------------------------------------------------------------------------------------
# figures computed from the raw files, without the package


def json_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def is_permission(kind: str, action: str) -> bool:
    return kind in ("user", "organization") and action in PERMISSION_ACTIONS


def stored_figures(store) -> dict[str, int]:
    events = store.load()
    return {
        "events": events.height,
        "failures": events.filter(pl.col("result") == "failed").height,
        "actors": events["actor"].drop_nulls().n_unique(),
        "permission_changes": sum(
            is_permission(t, a) for t, a in events.select("type", "action").iter_rows()
        ),
    }


CT_GRANTS = {"AttachUserPolicy", "AttachRolePolicy", "UpdateAssumeRolePolicy", "AddPermission20150331v2"}


def cloudtrail_expected(records: list[dict]) -> dict[str, int]:
    def principal(r: dict) -> str | None:
        # a user by name (the account is in the record), a role by role/session
        ident = r.get("userIdentity") or {}
        arn = ident.get("arn") or ""
        if "assumed-role/" in arn:
            return arn.split("assumed-role/")[1]
        return ident.get("userName") or ident.get("invokedBy") or arn or ident.get("principalId")

    return {
        "events": len(records),
        "failures": sum(1 for r in records if r.get("errorCode")),
        "actors": len({principal(r) for r in records} - {None}),
        "permission_changes": sum(1 for r in records if r["eventName"] in CT_GRANTS),
    }


def cloudtrail_records(folder: Path) -> list[dict]:
    return json.loads((folder / "cloudtrail" / "stratus_red_team_all_detonations.Records.json").read_text())[
        "Records"
    ]


def lookup_records(folder: Path) -> list[dict]:
    return [
        json.loads(r["CloudTrailEvent"])
        for r in json_lines(folder / "cloudtrail" / "plaso_aws_cloudtrail_lookup_events.jsonl")
    ]


def k8s_expected(folder: Path) -> dict[str, int]:
    events: dict[str, dict] = {}
    for name in (
        "falco_k8s_audit_trace_files_2018.jsonl",
        "crowdsec_k8s-audit-priv-pod-file.log",
        "crowdsec_k8s-audit-pod-exec-file.log",
    ):
        for event in json_lines(folder / "kubernetes_audit" / name):
            events.setdefault(event["auditID"], event)  # the first of a reused auditID is kept
    rbac = {"roles", "clusterroles", "rolebindings", "clusterrolebindings"}
    return {
        "events": len(events),
        "failures": sum(1 for e in events.values() if (e.get("responseStatus") or {}).get("code", 0) >= 400),
        "actors": len({(e.get("user") or {}).get("username") for e in events.values()} - {None}),
        "permission_changes": sum(
            1
            for e in events.values()
            if (e.get("objectRef") or {}).get("resource") in rbac
            and e["verb"] in ("create", "update", "patch", "delete")
        ),
    }


def gcp_expected(folder: Path) -> dict[str, int]:
    audit = [e for e in json_lines(folder / "gcp_audit" / "plaso_gcp_logging.jsonl") if "protoPayload" in e]
    return {
        "events": len(audit),
        "failures": sum(1 for e in audit if (e["protoPayload"].get("status") or {}).get("code")),
        "actors": len(
            {(e["protoPayload"].get("authenticationInfo") or {}).get("principalEmail") for e in audit}
            - {None}
        ),
        "permission_changes": sum(
            1 for e in audit if e["protoPayload"]["methodName"].endswith("SetIamPolicy")
        ),
    }


def azure_expected(folder: Path) -> dict[str, int]:
    records = json_lines(folder / "azure_activity" / "plaso_azure_activity_log.jsonl")
    return {
        "events": len(records),
        "failures": sum(1 for r in records if r["status"]["value"] == "Failed"),
        "actors": len({r["caller"] for r in records}),
        "permission_changes": sum(1 for r in records if "roleAssignments" in r["operation_name"]["value"]),
    }


def m365_expected(folder: Path) -> dict[str, int]:
    records = json_lines(folder / "m365_unified_audit" / "plaso_microsoft_audit_log.jsonl")
    return {
        "events": len(records),
        "failures": sum(1 for r in records if r["ResultStatus"] not in ("True", "Success", "Succeeded")),
        "actors": len({r["UserId"] for r in records}),
        "permission_changes": sum(1 for r in records if "role" in r["Operation"].lower()),
    }


def gitlab_expected(folder: Path) -> dict[str, int]:
    records = [
        r
        for name in ("crowdsec_gitlab-bf_production_json.log", "crowdsec_gitlab-logs_production_json.log")
        for r in json_lines(folder / "gitlab_audit" / name)
    ]
    sign_ins = [
        r
        for r in records
        if r["method"] == "POST" and r["path"].startswith(("/users/sign_in", "/users/auth/"))
    ]

    def login(r: dict) -> str | None:
        for p in r.get("params", []):
            if p.get("key") == "user":  # the password form posts user[login]
                return p["value"].get("login")
            if p.get("key") == "username":  # the LDAP form posts username
                return p["value"]
        return None

    return {
        "events": len(sign_ins),
        "failures": sum(
            1
            for r in sign_ins
            if r["status"] == 0
            or r.get("action") == "failure"
            or (r["path"] == "/users/sign_in" and r["status"] != 302)
        ),
        "actors": len({r.get("username") or login(r) for r in sign_ins} - {None}),
        "permission_changes": 0,
    }


SYSLOG_LINE = re.compile(r"^\w{3} +\d+ [\d:]+ (\S+) +(?:-- )?([^\s\[:]+)(?:\[(\d+)\])?: ?(.*)$")
SSHD_EVIDENCE = re.compile(
    r"(Invalid user|User \S+ from .* not allowed|error: maximum authentication|"
    r"pam_unix\(sshd:auth\): authentication failure|PAM \d+ more authentication|"
    r"Disconnecting:? Too many authentication failures|"
    r"(?:Disconnected from|Connection closed by|Connection reset by) (?:authenticating|invalid) user)"
)


def syslog_expected(paths: list[Path]) -> dict[str, int]:
    """Counted from the raw lines as a reviewer counts sign-in attempts: each sshd verdict
    (``Failed``/``Accepted … for``, N times for ``message repeated N times``) is one, a
    connection (file, host, pid) with failure lines but no verdict is one, and the failures of
    other programs are one per line."""
    events = failures = 0
    actors = set()
    for p in paths:
        verdicts, evidence, connections = set(), set(), {}
        for line in p.read_text().splitlines():
            if not line.strip():
                continue
            events += 1
            found = SYSLOG_LINE.match(line)
            if not found:
                continue
            host, prog, pid, msg = found.groups()
            n = 1
            repeated = re.match(r"message repeated (\d+) times: \[ ?(.*?) ?\]$", msg)
            if repeated:
                n, msg = int(repeated[1]), repeated[2]
                events += n - 1
            if prog.startswith("sshd") and "(" not in prog:
                # sshd writes "Invalid user" at a connection's first request: another one on
                # the same pid is the next connection
                state = connections.setdefault((host, pid), [0, False, False])  # number, opened, verdict
                if msg.startswith("Invalid user") and (state[1] or state[2]):
                    state[:] = [state[0] + 1, False, False]
                key = (host, pid, state[0])
                if re.match(r"(?:Failed|Accepted) \S+ for ", msg):
                    verdicts.add(key)
                    state[2] = True
                    failures += n if msg.startswith("Failed") else 0
                elif SSHD_EVIDENCE.match(msg):
                    evidence.add(key)
                    state[1] = state[1] or msg.startswith("Invalid user")
                elif re.match(r"(?:Unable to negotiate|(?:fatal: )?Timeout before|refused connect)", msg):
                    failures += n
            elif prog == "su":
                failures += n if msg.startswith("FAILED su") else 0
            elif prog == "sudo":
                if re.search(
                    r"incorrect password|NOT in sudoers|not allowed|authentication failure",
                    msg.split(" ; TTY=")[0],
                ):
                    failures += n
            elif re.match(
                r"(?:pam_unix\([^:)]+:auth\): )?authentication failure|PAM \d+ more authentication failure",
                msg,
            ):
                failures += n
            if re.match(r"pam_tally2?\(", msg):
                failures += n
        failures += len(evidence - verdicts)
        for line in p.read_text().splitlines():
            for pattern in (
                r"(?:Accepted|Failed) \S+ for (?:invalid user )?(\S+) from",
                r"(?:Invalid user|authenticating user|invalid user) (\S+) ",
                r"User (\S+) from .* not allowed",
                r"sudo: +(\S+) : .*COMMAND=",
                r"pam_tally2?\(\S+\): user (\S+) ",
                r"authentication failure;.* user=(\S+)",
                r"session opened for user \S+ by ([^\s(]+)",  # who opened it acted
                r"session (?:opened|closed) for user ([^\s(]+)",
            ):
                found = re.search(pattern, line)
                if found:
                    actors.add(found.group(1))
                    break
    return {"events": events, "failures": failures, "actors": len(actors), "permission_changes": 0}


def auditd_expected(paths: list[Path]) -> dict[str, int]:
    groups: dict[str, list[str]] = {}
    for p in paths:
        for line in p.read_text().splitlines():
            found = re.match(r"(?:node=\S+ )?type=\S+ msg=audit\((\d+\.\d+:\d+)\)", line)
            if found:
                groups.setdefault(found.group(1), []).append(line)
    failed = sum(
        1
        for lines in groups.values()
        if any(re.search(r"res=fail|success=no|apparmor=\"DENIED\"|avc: +denied", line) for line in lines)
    )
    # USER_ROLE_CHANGE is the SELinux role a session takes (PAM at each sign-in): no grant
    roles = ("GRP_MGMT", "ROLE_ASSIGN", "ROLE_REMOVE", "ROLE_MODIFY")
    accounts, uids = set(), set()
    for lines in groups.values():
        for line in lines:
            kind = line.split("type=", 1)[1].split(" ", 1)[0]
            for value in re.findall(r"acct=(\"[^\"]*\"|\S+)", line):
                name = value.strip('"')
                if not value.startswith('"') and re.fullmatch(r"(?:[0-9A-F]{2})+", value):
                    name = bytes.fromhex(value).decode()
                if (
                    name not in ("?", "")
                    and not name.startswith("(")
                    and kind
                    not in (
                        "ADD_USER",
                        "ADD_GROUP",
                        "GRP_MGMT",
                        "USER_MGMT",
                    )
                ):
                    accounts.add(name)
            uids.update(f"uid:{n}" for n in re.findall(r"\b(?:au)?id=(\d+)", line) if n != "4294967295")
    return {
        "events": len(groups),
        "failures": failed,
        "named_actors": accounts,
        "uid_actors": uids,
        "permission_changes": sum(
            1 for lines in groups.values() if any(f"type={r} " in line for line in lines for r in roles)
        ),
    }


def auditd_files(folder: Path) -> list[Path]:
    return sorted((folder / "linux_auditd" / "go-libaudit").glob("*.log"))


def syslog_files(folder: Path) -> list[Path]:
    return [
        folder / "linux_auth_sshd" / "plaso_syslog_ssh.log",
        *sorted((folder / "linux_auth_sshd" / "crowdsec_hub_tests").glob("*.log")),
    ]


# (id, files to import, the format they must be read as, expected figures)
SAMPLE_CASES: list[tuple[str, Callable[[Path], list[Path]], str, Callable[[Path], dict[str, int]]]] = [
    (
        "cloudtrail-records",
        lambda f: [f / "cloudtrail" / "stratus_red_team_all_detonations.Records.json"],
        "cloudtrail",
        lambda f: cloudtrail_expected(cloudtrail_records(f)),
    ),
    (
        "cloudtrail-arrays",
        lambda f: sorted((f / "cloudtrail" / "stratus_red_team_detonation_logs").glob("*.json")),
        "cloudtrail",
        lambda f: cloudtrail_expected(cloudtrail_records(f)),
    ),
    (
        "cloudtrail-lookup-events",
        lambda f: [f / "cloudtrail" / "plaso_aws_cloudtrail_lookup_events.jsonl"],
        "cloudtrail",
        lambda f: cloudtrail_expected(lookup_records(f)),
    ),
    (
        "kubernetes",
        lambda f: sorted((f / "kubernetes_audit").glob("*")),
        "kubernetes",
        k8s_expected,
    ),
    ("gcp", lambda f: [f / "gcp_audit" / "plaso_gcp_logging.jsonl"], "gcp", gcp_expected),
    ("azure", lambda f: [f / "azure_activity" / "plaso_azure_activity_log.jsonl"], "azure", azure_expected),
    ("m365", lambda f: [f / "m365_unified_audit" / "plaso_microsoft_audit_log.jsonl"], "m365", m365_expected),
    ("gitlab", lambda f: sorted((f / "gitlab_audit").glob("*.log")), "gitlab", gitlab_expected),
    ("syslog", syslog_files, "syslog", lambda f: syslog_expected(syslog_files(f))),
]


@pytest.mark.parametrize(
    ("files", "fmt", "expected"), [c[1:] for c in SAMPLE_CASES], ids=[c[0] for c in SAMPLE_CASES]
)
def test_a_real_sample_imports_with_the_counts_of_the_raw_file(
    samples, sqlite_store, tmp_path, files, fmt, expected
):
    paths = [p for p in files(samples) if p.suffix != ".md"]
    assert {check_file(p).source for p in paths} == {fmt}
    summary = import_files(sqlite_store, paths, now=NOW, year=2024, rejects=tmp_path / "rejects.jsonl")
    assert summary.balanced
    result = stored_figures(sqlite_store)
    wanted = expected(samples)
    if fmt == "syslog":  # a line repeated in two test files is one event (same host, time and text)
        assert result["events"] == wanted["events"] - summary.duplicates
        assert result["events"] > 0 and summary.rejected == 0
        wanted = wanted | {"events": result["events"]}
        raw_failures = wanted["failures"]
        assert result["failures"] <= raw_failures and result["failures"] >= raw_failures - summary.duplicates
        wanted["failures"] = result["failures"]
    assert result == wanted
    assert result["events"] > 0


def test_auditd_samples_group_records_by_serial(samples, sqlite_store, tmp_path):
    paths = auditd_files(samples)
    summary = import_files(sqlite_store, paths, now=NOW, rejects=tmp_path / "rejects.jsonl")
    wanted = auditd_expected(paths)
    result = stored_figures(sqlite_store)
    assert summary.rejected == 1  # 'type=UNKNOWN[1329] msg=?' in audit-rhel7.log has no stamp
    assert result["events"] == wanted["events"]
    assert result["failures"] == wanted["failures"]
    # audit-rhel7.log: a GRP_MGMT (groupadd); its USER_ROLE_CHANGE (the SELinux role chosen at an
    # SSH sign-in) is the session's context, not a permission change
    assert result["permission_changes"] == wanted["permission_changes"] == 1
    stored = sqlite_store.load()
    assert set(
        stored["params"].map_elements(lambda p: json.loads(p)["source_action"], return_dtype=pl.String)
    ) >= {
        "USER_LOGIN",
        "USER_CMD",
        "USER_ROLE_CHANGE",
    }
    commands = stored.filter(pl.col("action") == "sudo")
    assert all(" ran " in d for d in commands["description"]), commands["description"].to_list()
    actors = set(sqlite_store.load()["actor"].drop_nulls())
    assert {a for a in actors if not a.startswith("uid:")} == wanted["named_actors"]
    assert {a for a in actors if a.startswith("uid:")} <= wanted["uid_actors"]
    assert result["actors"] == len(actors) > len(wanted["named_actors"])
    logins = sqlite_store.load().filter(pl.col("action") == "login")
    # audit-ubuntu16.log: sshd's USER_LOGIN of an invalid user (hex acct) from 179.38.151.221 failed
    failed = logins.filter(pl.col("ip") == "179.38.151.221")
    assert failed["result"].to_list() == ["failed"] and failed["actor"].to_list() == [None]
    # test2.log's older PAM records end "(hostname=?, addr=?, terminal=cron res=success)": the
    # commas and the parenthesis are not part of the values (the target was "?,")
    stored = sqlite_store.load()
    assert not stored.filter(
        pl.col("target").str.ends_with(",") | pl.col("description").str.contains("?,", literal=True)
    ).height
    assert "/usr/sbin/crond" in stored["target"].to_list()


def test_an_older_pam_record_s_parenthesised_end_is_read_without_its_punctuation(tmp_path):
    log = tmp_path / "audit.log"
    log.write_text(
        "type=USER_START msg=audit(1170021601.344:297): user pid=13015 uid=0 auid=0 "
        "subj=system_u:system_r:crond_t:s0-s0:c0,c1023 msg='PAM: session open acct=root : "
        'exe="/usr/sbin/crond" (hostname=?, addr=?, terminal=cron res=success)\'\n'
        "type=USER_AUTH msg=audit(1170021602.344:298): user pid=13016 uid=0 auid=0 "
        'msg=\'PAM: authentication acct=ann : exe="/usr/sbin/sshd" (hostname=h1, addr=192.0.2.9, '
        "terminal=ssh res=failed)'\n"
    )
    rows = load_file(log, now=NOW).events.sort("time").to_dicts()
    assert [(r["target"], r["ip"], r["result"]) for r in rows] == [
        ("/usr/sbin/crond", None, "done"),
        ("h1", "192.0.2.9", "failed"),
    ]
    assert "?," not in rows[0]["description"]


@pytest.mark.parametrize(
    ("name", "fmt", "expected"),
    [
        ("okta_system_log.jsonl", "okta", {"events": 7, "failures": 3, "actors": 3, "permission_changes": 2}),
        (
            "workspace_activities.json",
            "workspace",
            {"events": 4, "failures": 1, "actors": 2, "permission_changes": 1},
        ),
        (
            "github_audit_log.json",
            "github",
            {"events": 5, "failures": 0, "actors": 2, "permission_changes": 3},
        ),
        (
            "github_audit_log.csv",
            "github-csv",
            {"events": 3, "failures": 0, "actors": 1, "permission_changes": 2},
        ),
        (
            "github_audit_stream.jsonl",
            "github",
            {"events": 3, "failures": 1, "actors": 1, "permission_changes": 1},
        ),
        (
            "k8s_stages.jsonl",
            "kubernetes",
            {"events": 3, "failures": 1, "actors": 2, "permission_changes": 1},
        ),
        ("entra_signins.json", "azure", {"events": 3, "failures": 2, "actors": 2, "permission_changes": 0}),
        (
            "azure_activity_export.json",
            "azure",
            {"events": 2, "failures": 1, "actors": 2, "permission_changes": 1},
        ),
        (
            "gitlab_audit_json.log",
            "gitlab",
            {"events": 3, "failures": 1, "actors": 2, "permission_changes": 1},
        ),
    ],
)
def test_documented_shapes_without_a_public_sample(sqlite_store, tmp_path, name, fmt, expected):
    # the expected figures are counted by hand from the fixture (see tests/fixtures/sources/README.md)
    path = FIXTURES / name
    assert check_file(path).source == fmt
    summary = import_files(sqlite_store, [path], now=NOW, rejects=tmp_path / "r.jsonl")
    assert summary.rejected == 0
    assert stored_figures(sqlite_store) == expected
    # every failed sign-in is a login failure the security review counts
    events = sqlite_store.load()
    failed_logins = events.filter((pl.col("action") == "login") & (pl.col("result") == "failed"))
    assert failed_logins.filter(pl.col("type") != "auth").height == 0
    raw = path.read_text().lower()
    if any(
        word in raw
        for word in ("failed_login", "login_failure", "invalid_credentials", "50126", "failed to login")
    ):
        assert failed_logins.height >= 1


def test_kubernetes_keeps_one_event_per_request_from_its_completing_stage(sqlite_store, tmp_path):
    import_files(sqlite_store, [FIXTURES / "k8s_stages.jsonl"], now=NOW, rejects=tmp_path / "r.jsonl")
    events = sqlite_store.load().sort("time")
    assert events["request_id"].to_list() == [
        "11111111-0000-4000-8000-000000000001",
        "11111111-0000-4000-8000-000000000002",
        "11111111-0000-4000-8000-000000000003",
    ]
    grant = events.row(0, named=True)
    assert (grant["type"], grant["action"], grant["result"]) == ("user", "grant", "failed")
    assert "forbidden" in grant["error"]
    assert json.loads(grant["params"])["record"]["stage"] == "ResponseComplete"
    # a request that never completed is kept as it was logged
    assert json.loads(events.row(2, named=True)["params"])["record"]["stage"] == "RequestReceived"


def test_cloudtrail_maps_one_record_fully(samples):
    loaded = load_file(samples / "cloudtrail" / "stratus_red_team_all_detonations.Records.json", now=NOW)
    raw = {r["eventID"]: r for r in cloudtrail_records(samples)}
    row = (
        loaded.events.filter(pl.col("action") == "grant")
        .filter(pl.col("target").is_not_null())
        .row(0, named=True)
    )
    record = raw[row["id"].removeprefix("aws-")]
    assert row["time"] == datetime.fromisoformat(record["eventTime"])
    assert row["request_id"] == record["requestID"]
    assert json.loads(row["params"])["record"] == record  # nothing is lost
    assert row["type"] == "user"
    # an anonymised address with leading zeros is not an address: ip stays empty, the record keeps it
    odd = [r for r in raw.values() if re.match(r"^0\d|.*\.0\d", r.get("sourceIPAddress", ""))]
    assert odd
    odd_ids = [f"aws-{r['eventID']}" for r in odd]
    assert loaded.events.filter(pl.col("id").is_in(odd_ids))["ip"].null_count() == len(odd)


def test_security_review_finds_the_sshd_brute_force(samples, tmp_path, capsys):
    db = f"sqlite:///{tmp_path / 'a.db'}"
    logs = [
        samples / "linux_auth_sshd" / "crowdsec_hub_tests" / n
        for n in ("ssh-slow-bf.log", "sshd-invalid-bf.log")
    ]
    code, _, err = run(
        capsys, "import", "--db", db, "--rejects", tmp_path / "r.jsonl", "--year", "2025", *logs
    )
    assert code == 0, err
    # expected from the raw lines: IPs with at least 5 failures inside 5 minutes
    failures: dict[str, list[datetime]] = {}
    for log in logs:
        for line in log.read_text().splitlines():
            found = re.search(r"(?:Invalid user \S+ from|authenticating user \S+) (\d+\.\d+\.\d+\.\d+)", line)
            if found:
                when = datetime.strptime("2025 " + line[:15], "%Y %b %d %H:%M:%S")
                failures.setdefault(found.group(1), []).append(when)
    attackers = {
        ip
        for ip, times in failures.items()
        if any(sum(1 for u in times if 0 <= (u - t).total_seconds() < 300) >= 5 for t in times)
    }
    assert attackers == {"103.100.210.198", "179.43.183.98"}
    code, out, err = run(
        capsys,
        "security",
        "brute-force",
        "--db",
        db,
        "--period",
        "all",
        "--threshold",
        "5",
        "--window",
        "5m",
        "--format",
        "json",
    )
    assert code == 0, err
    found = json.loads(out)
    assert {f["key"] for f in found} == attackers


def test_security_review_sees_the_denied_cloudtrail_calls(samples, tmp_path, capsys):
    db = f"sqlite:///{tmp_path / 'ct.db'}"
    path = samples / "cloudtrail" / "stratus_red_team_all_detonations.Records.json"
    assert run(capsys, "import", "--db", db, "--rejects", tmp_path / "r.jsonl", path)[0] == 0
    records = cloudtrail_records(samples)
    denied = {f"aws-{r['eventID']}" for r in records if r.get("errorCode")}
    code, out, _ = run(
        capsys,
        "query",
        "--db",
        db,
        "--period",
        "all",
        "--result",
        "failed",
        "--limit",
        "0",
        "--format",
        "json",
    )
    assert code == 0
    assert {e["id"] for e in json.loads(out)} == denied
    # the permission changes of the review: the IAM and lambda grants, each once
    code, out, _ = run(
        capsys, "security", "permission-changes", "--db", db, "--period", "all", "--format", "json"
    )
    assert code == 0
    found = json.loads(out)
    assert sorted(e for f in found for e in f["event_ids"]) == sorted(
        f"aws-{r['eventID']}" for r in records if r["eventName"] in CT_GRANTS
    )
    # the denied calls by account, as the Activity page and `activity actors` count them
    code, out, _ = run(capsys, "activity", "results", "--db", db, "--period", "all", "--format", "json")
    assert code == 0
    assert sum(row.get("failed", 0) for row in json.loads(out)) == len(denied)
    # and the review's Denied calls detection: each identity refused 10 times or more in 10
    # minutes, counted here from the raw records (errorCode, userIdentity ARN, eventTime)
    refused: dict[str, list[datetime]] = {}
    for r in records:
        if r.get("errorCode") and r["eventName"] not in ("ConsoleLogin",):
            refused.setdefault(r["userIdentity"].get("arn", ""), []).append(
                datetime.fromisoformat(r["eventTime"].replace("Z", "+00:00"))
            )
    bursts = {
        arn for arn, times in refused.items()
        if any(sum(t <= u < t + timedelta(minutes=10) for u in times) >= 10 for t in times)
    }  # fmt: skip
    code, out, _ = run(capsys, "security", "denied-calls", "--db", db, "--period", "all", "--format", "json")
    assert code == 0
    found = json.loads(out)
    assert len(found) == len(bursts) == 2
    assert sum(f["count"] for f in found) == sum(len(refused[a]) for a in bursts)
    assert all(f["technique"].startswith("T1580") for f in found)


# ---------------------------------------------------------------------------------------
# re-import, gzip, standard input, rejects, the year, the format


def test_reimporting_the_same_or_an_overlapping_file_adds_nothing(samples, sqlite_store, tmp_path):
    records_file = samples / "cloudtrail" / "stratus_red_team_all_detonations.Records.json"
    first = import_files(sqlite_store, [records_file], now=NOW, rejects=tmp_path / "r.jsonl")
    assert first.imported == 310
    again = import_files(sqlite_store, [records_file], now=NOW, rejects=tmp_path / "r.jsonl")
    assert (again.imported, again.duplicates, again.conflicts) == (0, 310, 0)
    # the per-technique arrays hold the same records in another shape
    parts = sorted((samples / "cloudtrail" / "stratus_red_team_detonation_logs").glob("*.json"))
    overlap = import_files(sqlite_store, parts[:5], now=NOW, rejects=tmp_path / "r.jsonl")
    assert overlap.imported == 0 and overlap.duplicates == overlap.rows_read > 0
    assert sqlite_store.count() == 310


def test_gzip_and_standard_input(samples, tmp_path, capsys, monkeypatch):
    db = f"sqlite:///{tmp_path / 'gz.db'}"
    raw = (samples / "linux_auth_sshd" / "plaso_syslog_ssh.log").read_bytes()
    gz = tmp_path / "auth.log.1.gz"
    gz.write_bytes(gzip.compress(raw))
    code, out, err = run(capsys, "import", "--db", db, "--year", "2024", gz)
    assert code == 0, err
    assert "imported 9," in out and "Linux syslog" in err
    # the same lines through standard input (gzip-compressed too) add nothing
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(gzip.compress(raw))))
    code, out, err = run(capsys, "import", "--db", db, "--year", "2024", "-")
    assert code == 0, err
    assert "imported 0, rejected 0, duplicates 9" in out
    # CloudTrail through a pipe, uncompressed
    monkeypatch.setattr(
        sys,
        "stdin",
        io.TextIOWrapper(
            io.BytesIO((samples / "cloudtrail" / "plaso_aws_cloudtrail_lookup_events.jsonl").read_bytes())
        ),
    )
    code, out, err = run(capsys, "import", "--db", db, "-")
    assert code == 0, err
    assert "imported 6," in out and "stdin: read as AWS CloudTrail" in err
    # twice: the second "-" would find it read already ("stdin: the file is empty")
    code, _, err = run(capsys, "import", "--db", db, "-", "-")
    assert code == 2 and "standard input is named more than once" in err


def test_a_malformed_record_is_rejected_with_its_line_and_reason(tmp_path, sqlite_store):
    good = {
        "eventVersion": "1.08",
        "eventID": "e-1",
        "eventTime": "2026-01-05T10:00:00Z",
        "eventSource": "signin.amazonaws.com",
        "eventName": "ConsoleLogin",
        "userIdentity": {"type": "IAMUser", "userName": "ann"},
        "sourceIPAddress": "192.0.2.5",
        "responseElements": {"ConsoleLogin": "Failure"},
    }
    path = tmp_path / "trail.jsonl"
    path.write_text(
        json.dumps(good)
        + "\n"
        + '{"eventVersion": "1.08", "eventName": "X", "eventSource": "iam.amazonaws.com", "eventTime": \n'
        + json.dumps(good | {"eventID": "e-3", "eventName": None})
        + "\n"
        + json.dumps(good | {"eventID": "e-4", "eventTime": "last tuesday"})
        + "\n"
    )
    summary = import_files(sqlite_store, [path], now=NOW)
    assert (summary.imported, summary.rejected) == (1, 3)
    rejects = [json.loads(line) for line in Path(summary.rejects_paths[0]).read_text().splitlines()]
    assert [(r["line"], r["reasons"][0][:24]) for r in rejects] == [
        (2, "not valid JSON (Expectin"),
        (3, "not a CloudTrail record:"),
        (4, "time: 'last tuesday' is "),
    ]
    login = sqlite_store.load().row(0, named=True)
    assert (login["type"], login["action"], login["result"], login["actor"]) == (
        "auth",
        "login",
        "failed",
        "ann",
    )


def test_syslog_year_comes_from_the_option_or_the_file_and_is_said(tmp_path, capsys):
    log = tmp_path / "auth.log"
    log.write_text(
        "Dec 31 23:59:58 h sshd[1]: Failed password for root from 192.0.2.1 port 22 ssh2\n"
        "Jan  1 00:00:03 h sshd[1]: Failed password for root from 192.0.2.1 port 22 ssh2\n"
    )
    mtime = datetime(2026, 1, 1, 0, 1, tzinfo=UTC).timestamp()
    import os

    os.utime(log, (mtime, mtime))
    loaded = load_file(log, now=NOW)
    # December's line is from the year before the file was written
    assert [t.isoformat() for t in loaded.events["time"]] == [
        "2025-12-31T23:59:58+00:00",
        "2026-01-01T00:00:03+00:00",
    ]
    db = f"sqlite:///{tmp_path / 'y.db'}"
    code, _, err = run(capsys, "import", "--db", db, "--year", "2023", log)
    assert code == 0
    assert "took 2023 from --year; times read as UTC" in err  # no hint to use what was used
    times = open_store(db).load().sort("time")["time"].to_list()
    assert [t.year for t in times] == [2023, 2023]
    code, _, err = run(capsys, "import", "--db", f"sqlite:///{tmp_path / 'z.db'}", log)
    assert "took 2026 from the file's modification time (use --year to set it)" in err


def test_syslog_on_standard_input_takes_a_later_day_for_last_year(tmp_path, capsys, monkeypatch):
    """Piped in, the clock stands for the file's time: a line dated after tomorrow is from the
    year before (a December line read in January), not "more than a day in the future"."""
    now = datetime.now(UTC)
    ahead = now + timedelta(days=5)
    if (ahead.month, ahead.day) == (2, 29):  # last year has no 29 February
        ahead += timedelta(days=1)
    behind = now - timedelta(days=2)
    lines = [
        f"{d:%b} {d.day:2d} 10:00:00 h sshd[1]: Failed password for root from 192.0.2.1 port 22 ssh2\n"
        for d in (ahead, behind)
    ]
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO("".join(lines).encode())))
    db = f"sqlite:///{tmp_path / 'stdin.db'}"
    code, out, err = run(capsys, "import", "--db", db, "-")
    assert code == 0, err
    assert "imported 2, rejected 0" in out
    assert "from the clock (standard input)" in err

    def latest_not_after_tomorrow(d: datetime) -> int:  # the year a reader would take
        return now.year if d.replace(year=now.year) <= now + timedelta(days=1) else now.year - 1

    times = sorted(open_store(db).load()["time"].to_list())
    assert sorted((t.year, t.month, t.day) for t in times) == sorted(
        (latest_not_after_tomorrow(d), d.month, d.day) for d in (ahead, behind)
    )


def test_an_ipv4_address_written_as_ipv6_is_stored_and_found_as_ipv4(tmp_path, sqlite_store):
    """sshd logs a dual-stack client as ``::ffff:192.0.2.7``: kept so, ``ip:192.0.2.7`` and
    ``ip:192.0.2.0/24`` missed it."""
    log = tmp_path / "auth.log"
    log.write_text(
        "Mar  3 10:00:00 h sshd[1]: Failed password for root from ::ffff:192.0.2.7 port 22 ssh2\n"
        "Mar  3 10:00:05 h sshd[1]: Failed password for root from 2001:db8::7 port 22 ssh2\n"
    )
    ours = tmp_path / "events.csv"
    ours.write_text("time,type,action,result,ip\n2026-03-03T11:00:00Z,auth,login,failed,::FFFF:192.0.2.8\n")
    summary = import_files(sqlite_store, [log, ours], now=NOW, year=2026)
    assert (summary.imported, summary.rejected) == (3, 0)
    assert sorted(sqlite_store.load()["ip"].to_list()) == ["192.0.2.7", "192.0.2.8", "2001:db8::7"]
    assert sqlite_store.count(Filter(query="ip:192.0.2.7")) == 1
    assert sqlite_store.count(Filter(query="ip:192.0.2.0/24")) == 2
    assert sqlite_store.count(Filter(query="ip:::ffff:192.0.2.8")) == 1  # searched as written too


def test_format_can_be_forced_and_a_wrong_one_is_a_clear_error(tmp_path, capsys, samples):
    ours = tmp_path / "events.jsonl"
    ours.write_text('{"time": "2026-01-01T00:00:00Z", "type": "auth", "action": "login", "result": "done"}\n')
    assert check_file(ours).source is None  # our own format is still ours
    # a syslog file named .jsonl is still read by its content; --format jsonl forces ours
    log = tmp_path / "auth.jsonl"
    log.write_bytes((samples / "linux_auth_sshd" / "plaso_syslog_ssh.log").read_bytes())
    assert check_file(log).source == "syslog"
    forced = load_file(log, format="jsonl")
    assert forced.events.height == 0 and len(forced.rejects) == 9
    with pytest.raises(
        IngestError, match="unknown format 'evtx'; formats: csv, jsonl, json, parquet, syslog"
    ):
        check_file(log, format="evtx")
    with pytest.raises(SystemExit) as exit_info:
        main(["import", "--db", f"sqlite:///{tmp_path / 'f.db'}", "--format", "evtx", str(log)])
    assert exit_info.value.code == 2
    assert "invalid choice: 'evtx'" in capsys.readouterr().err


def test_formats_lists_every_source_and_its_fields(capsys):
    code, out, _ = run(capsys, "formats")
    assert code == 0
    for name, source in SOURCES.items():
        assert re.search(rf"^{re.escape(name)} +{re.escape(source.title)}$", out, re.M)
    code, out, _ = run(capsys, "formats", "cloudtrail")
    assert code == 0
    assert "AttachUserPolicy -> user/grant" in out and "ip          <- sourceIPAddress" in out
    code, _, err = run(capsys, "formats", "nope")
    assert code == 2 and "unknown format 'nope'" in err


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (
            b'{"Records": [{"eventVersion": "1.08", "eventName": "A", "eventSource": "s3.amazonaws.com", "eventTime": "x"}]}',
            "cloudtrail",
        ),
        (
            b'[\n  {\n    "eventName": "A",\n    "eventSource": "s3.amazonaws.com",\n    "eventTime": "x"\n  }\n]\n',
            "cloudtrail",
        ),
        (b"type=USER_LOGIN msg=audit(1492896301.818:19955): pid=1 res=failed\n", "auditd"),
        (b"node=h1 type=SYSCALL msg=audit(1492896301.818:19955): arch=c000003e\n", "auditd"),
        (
            b"2026-03-01T10:00:00.123456+00:00 web sshd[9]: Accepted publickey for ann from 192.0.2.1 port 22 ssh2\n",
            "syslog",
        ),
        (b"@timestamp,action,actor,user,org\n1,org.add_member,a,b,c\n", "github-csv"),
        (b"time,actor,type,action,result\n2026-01-01,a,auth,login,done\n", None),
        (b'{"kind":"Event","auditID":"a","stage":"ResponseComplete","verb":"get"}\n', "kubernetes"),
        (b"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[" * 100, None),
        (b"hello\n", None),
    ],
    ids=[
        "records",
        "pretty-array",
        "auditd",
        "auditd-node",
        "syslog-iso",
        "github-csv",
        "ours-csv",
        "k8s",
        "deep",
        "text",
    ],
)
def test_detection_by_content(head, expected):
    assert detect(head) == expected


def test_github_csv_export_keeps_the_row_as_read(sqlite_store, tmp_path):
    import_files(sqlite_store, [FIXTURES / "github_audit_log.csv"], now=NOW, rejects=tmp_path / "r.jsonl")
    stored = {r["id"]: r for r in sqlite_store.load().iter_rows(named=True)}
    with (FIXTURES / "github_audit_log.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:
        event = stored[f"gh-{row['_document_id']}"]
        assert event["action"] in ("revoke", "delete", "invite")
        assert event["time"] == datetime.fromtimestamp(int(row["@timestamp"]) / 1000, tz=UTC)
        kept = json.loads(event["params"])["record"]
        assert kept == {k: v for k, v in row.items() if v != ""}


def test_a_broken_gzip_file_is_one_clear_error_and_writes_nothing(tmp_path, sqlite_store):
    whole = gzip.compress(
        b"Mar 11 22:55:32 web sshd[3]: Failed password for root from 192.0.2.1 port 22 ssh2\n" * 5000
    )
    broken = tmp_path / "auth.log.gz"
    broken.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(IngestError, match=r"auth\.log\.gz: is not a readable gzip file"):
        import_files(sqlite_store, [broken], now=NOW)
    assert sqlite_store.count() == 0


AUTH_LINES = [
    (
        "Mar  2 10:00:00 web sudo:    alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/systemctl restart nginx",
        ("alice", "auth", "sudo", "done", "root", None),
    ),
    (
        "Mar  2 10:00:05 web sudo:      bob : 3 incorrect password attempts ; TTY=pts/1 ; PWD=/ ; USER=root ; COMMAND=/bin/sh",
        ("bob", "auth", "sudo", "failed", "root", None),
    ),
    (
        "Mar  2 10:01:00 web su[77]: Successful su for root by alice",
        ("alice", "auth", "su", "done", "root", None),
    ),
    ("Mar  2 10:01:09 web su[78]: FAILED su for root by bob", ("bob", "auth", "su", "failed", "root", None)),
    (
        "Mar  2 10:02:00 web useradd[90]: new user: name=eve, UID=1001, GID=1001, home=/home/eve, shell=/bin/bash",
        (None, "user", "create", "done", "eve", None),
    ),
    (
        "Mar  2 10:02:30 web usermod[91]: add 'eve' to group 'sudo'",
        (None, "user", "add_member", "done", "eve", None),
    ),
    (
        "Mar  2 10:03:00 web sshd[95]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh "
        "ruser= rhost=198.51.100.4  user=root",
        ("root", "auth", "login", "failed", "web", "198.51.100.4"),  # alone: the attempt itself
    ),
    (
        "2026-03-02T10:04:00.123456+01:00 web sshd[96]: Accepted publickey for deploy from 2001:db8::7 port 50022 ssh2",
        ("deploy", "auth", "login", "done", "web", "2001:db8::7"),
    ),
    (
        "Mar  2 10:05:00 web cron[99]: (root) CMD (run-parts /etc/cron.hourly)",
        (None, "system", "log", "done", "web", None),
    ),
    (
        "Mar  2 10:06:00 web sudo: pam_unix(sudo:session): session opened for user root(uid=0) by alice(uid=1000)",
        ("alice", "auth", "session_open", "done", "root", None),
    ),
    (
        "Mar  2 10:07:00 web sshd[97]: pam_unix(sshd:session): session opened for user deploy(uid=1001) by (uid=0)",
        ("deploy", "auth", "session_open", "done", "web", None),
    ),
]


@pytest.mark.parametrize(("line", "expected"), AUTH_LINES, ids=[f"line{i}" for i in range(len(AUTH_LINES))])
def test_auth_log_lines_map_to_our_columns(tmp_path, line, expected):
    path = tmp_path / "auth.log"
    path.write_text(line + "\n")
    loaded = load_file(path, now=NOW, year=2026)
    assert not loaded.rejects
    row = loaded.events.row(0, named=True)
    assert (row["actor"], row["type"], row["action"], row["result"], row["target"], row["ip"]) == expected
    assert json.loads(row["params"])["line"] == line
    if line.startswith("2026"):  # an ISO stamp keeps its own year and zone
        assert row["time"] == datetime(2026, 3, 2, 9, 4, 0, 123456, tzinfo=UTC)


def test_adding_someone_to_a_group_is_a_permission_change(tmp_path):
    path = tmp_path / "auth.log"
    path.write_text("Mar  2 10:02:30 web usermod[91]: add 'eve' to group 'sudo'\n")
    row = load_file(path, now=NOW, year=2026).events.row(0, named=True)
    assert is_permission(row["type"], row["action"])
    assert "sudo" in row["description"]


def test_docs_show_every_format_and_its_mapping():
    doc = (ROOT / "docs" / "sources.md").read_text()
    for source in SOURCES.values():
        assert f"### {source.title} (`{source.name}`)" in doc
        for column, rule in source.fields:
            assert f"| `{column}` | {rule.replace('|', chr(92) + '|')} |" in doc, (source.name, column)
        for name, (kind, action) in source.actions.items():
            assert f"| `{name.replace('|', chr(92) + '|')}` | {kind} | {action} |" in doc, (source.name, name)


def test_cloudtrail_through_eventbridge_is_the_same_event(samples, tmp_path, sqlite_store):
    records = cloudtrail_records(samples)[:20]
    wrapped = tmp_path / "eventbridge.jsonl"
    wrapped.write_text(
        "".join(
            json.dumps(
                {
                    "version": "0",
                    "detail-type": "AWS API Call via CloudTrail",
                    "source": "aws.iam",
                    "detail": r,
                }
            )
            + "\n"
            for r in records
        )
    )
    assert check_file(wrapped).source == "cloudtrail"
    first = import_files(sqlite_store, [wrapped], now=NOW, rejects=tmp_path / "r.jsonl")
    assert first.imported == 20
    records_file = tmp_path / "records.json"
    records_file.write_text(json.dumps({"Records": records}))
    again = import_files(sqlite_store, [records_file], now=NOW, rejects=tmp_path / "r.jsonl")
    assert (again.imported, again.duplicates, again.conflicts) == (0, 20, 0)


def test_a_source_imports_into_postgresql_as_into_sqlite(pg_store, sqlite_store, tmp_path):
    paths = [
        FIXTURES / "okta_system_log.jsonl",
        FIXTURES / "k8s_stages.jsonl",
        FIXTURES / "github_audit_log.csv",
    ]
    for store in (pg_store, sqlite_store):
        summary = import_files(store, paths, now=NOW, rejects=tmp_path / "r.jsonl")
        assert (summary.imported, summary.rejected) == (13, 0)
        assert import_files(store, paths, now=NOW, rejects=tmp_path / "r.jsonl").duplicates == 13
    columns = ["id", "actor", "type", "action", "target", "result", "ip", "request_id", "error"]
    on_pg = pg_store.load().sort("id").select(columns)
    on_sqlite = sqlite_store.load().sort("id").select(columns)
    assert on_pg.rows() == on_sqlite.rows()


def test_records_that_are_not_audit_events_are_rejected_and_the_exit_code_says_so(samples, tmp_path, capsys):
    log = tmp_path / "gcp.jsonl"  # a copy, so the rejects file is written beside it, not in ../shared
    log.write_bytes((samples / "gcp_audit" / "plaso_gcp_logging.jsonl").read_bytes())
    entries = json_lines(log)
    not_audit = [i for i, e in enumerate(entries, start=1) if "protoPayload" not in e]
    code, out, err = run(capsys, "import", "--db", f"sqlite:///{tmp_path / 'g.db'}", log)
    assert code == 3
    assert f"imported {len(entries) - len(not_audit)}, rejected {len(not_audit)}," in out
    rejects = [json.loads(line) for line in (tmp_path / "gcp.jsonl.rejects.jsonl").read_text().splitlines()]
    assert [r["line"] for r in rejects] == not_audit
    assert {r["reasons"][0] for r in rejects} == {"not a Cloud Audit Logs entry (no AuditLog protoPayload)"}
    assert "gcp.jsonl.rejects.jsonl" in err


def test_an_admin_grant_in_cloudtrail_and_kubernetes_is_flagged_and_found(samples, sqlite_store, tmp_path):
    """CloudTrail's AttachUserPolicy of AdministratorAccess and a ClusterRoleBinding to
    cluster-admin were permission changes without "grants admin", and their descriptions named
    neither the policy nor the role, so a search for either found nothing. The counts are taken
    from the raw records."""
    from audit_analytics.analysis import security

    records = cloudtrail_records(samples)
    attached = {
        f"aws-{r['eventID']}"
        for r in records
        if r["eventName"] in ("AttachUserPolicy", "AttachRolePolicy", "AttachGroupPolicy")
        and str((r.get("requestParameters") or {}).get("policyArn", "")).endswith("/AdministratorAccess")
    }
    bindings = {
        f"k8s-{e['auditID']}"
        for e in json_lines(samples / "kubernetes_audit" / "falco_k8s_audit_trace_files_2018.jsonl")
        if (e.get("objectRef") or {}).get("resource") in ("rolebindings", "clusterrolebindings")
        and e.get("verb") in ("create", "update", "patch")
        and ((e.get("requestObject") or {}).get("roleRef") or {}).get("name") == "cluster-admin"
    }
    assert attached and bindings
    import_files(
        sqlite_store,
        [
            samples / "cloudtrail" / "stratus_red_team_all_detonations.Records.json",
            samples / "kubernetes_audit" / "falco_k8s_audit_trace_files_2018.jsonl",
        ],
        now=NOW,
        rejects=tmp_path / "rejects.jsonl",
    )
    changes = security.permission_changes(sqlite_store.load())
    flagged = set(changes.filter(pl.col("grants_admin"))["id"].to_list())
    assert attached | bindings <= flagged
    found = {
        t: set(sqlite_store.load(Filter(query=t))["id"].to_list())
        for t in ("AdministratorAccess", "cluster-admin")
    }
    assert attached <= found["AdministratorAccess"] and bindings <= found["cluster-admin"]


@pytest.mark.parametrize("pretty", [False, True], ids=["one-line", "pretty"])
def test_a_records_document_cut_short_keeps_its_whole_records(tmp_path, sqlite_store, pretty):
    """A ``{"Records": [...]}`` file cut mid-record imported nothing, and its reject's raw text
    was empty: the records before the break are imported, the break is rejected with the text
    around it and how many were read."""
    records = [
        {
            "eventVersion": "1.08",
            "eventID": f"e-{i}",
            "eventName": "GetUser",
            "eventSource": "iam.amazonaws.com",
            "eventTime": "2026-03-01T10:00:00Z",
            "userIdentity": {"type": "IAMUser", "userName": "ann"},
        }
        for i in range(3)
    ]
    text = json.dumps({"Records": records}, indent=2 if pretty else None)
    path = tmp_path / "trail.json"
    path.write_text(text[: text.index('"e-2"') + 3])  # cut inside the third record
    summary = import_files(sqlite_store, [path], now=NOW, rejects=tmp_path / "rejects.jsonl")
    assert (summary.imported, summary.rejected) == (2, 1)
    assert sorted(sqlite_store.load()["id"].to_list()) == ["aws-e-0", "aws-e-1"]
    reject = json.loads((tmp_path / "rejects.jsonl").read_text())
    assert "the 2 whole records before it were read" in reject["reasons"][0]
    assert '"e-1"' in reject["raw"] and reject["raw"].endswith('"e-')


def test_a_repeated_message_becomes_its_copies_within_reason(tmp_path):
    """``message repeated N times`` is N events; N = 0 is the line itself, and a line claiming
    a billion copies is rejected with its reason instead of filling the memory."""
    log = tmp_path / "auth.log"
    failed = "Failed password for root from 192.0.2.1 port 22 ssh2"
    log.write_text(
        f"Mar  2 10:00:00 web sshd[5]: message repeated 0 times: [ {failed}]\n"
        f"Mar  2 10:00:01 web sshd[6]: message repeated 999999999 times: [ {failed}]\n"
        f"Mar  2 10:00:02 web sshd[7]: message repeated 3 times: [ {failed}]\n"
        "Mar  2 10:00:03 web sshd[8]: Failed password for bob from 192.0.2.2 port 22 ssh2\n"
        "Mar  2 10:00:09 web last message repeated 2 times\n"
    )
    loaded = load_file(log, now=NOW, year=2026)
    assert [(r.line, r.reasons[0][:40]) for r in loaded.rejects] == [
        (2, "says the message was repeated 999,999,99")
    ]
    logins = loaded.events.filter(pl.col("action") == "login")
    assert sorted(logins["actor"].to_list()) == ["bob"] * 3 + ["root"] * 3
    assert loaded.events.height == 1 + 3 + 1 + 2 and loaded.events["id"].n_unique() == 7

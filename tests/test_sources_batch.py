"""A source's file of one record per line is read a batch at a time as columns (issue 18,
the import speed): what comes out must be what the record path gives for the same lines —
the same events, the same rejects with the same lines and reasons — on real CloudTrail
records and on records built to trip the batch path up."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from conftest import ROOT, STORE_FIXTURES, need

from audit_analytics.io import sources
from audit_analytics.io.ingest import import_files, load_file
from audit_analytics.io.sources import cloudtrail
from audit_analytics.schema import JSON_COLUMNS

SAMPLES = ROOT.parent / "shared" / "data" / "sources" / "cloudtrail"
NOW = datetime(2026, 12, 31, tzinfo=UTC)

BASE: dict[str, Any] = {
    "eventVersion": "1.08",
    "userIdentity": {
        "type": "IAMUser",
        "principalId": "AIDAEXAMPLE",
        "arn": "arn:aws:iam::123456789012:user/ann",
        "accountId": "123456789012",
        "userName": "ann",
        "sessionContext": {"sessionIssuer": {"type": "Role", "arn": "arn:x", "userName": "r"}},
    },
    "eventTime": "2026-03-01T10:00:00Z",
    "eventSource": "iam.amazonaws.com",
    "eventName": "AttachUserPolicy",
    "awsRegion": "us-east-1",
    "sourceIPAddress": "192.0.2.5",
    "userAgent": "aws-cli/2",
    "requestParameters": {"userName": "bob", "policyArn": "arn:aws:iam::aws:policy/Admin"},
    "responseElements": None,
    "requestID": "req-1",
    "eventID": "ev-1",
}


def variant(n: int, **changes: Any) -> dict[str, Any]:
    """The base record with its own eventID and ``changes`` (a value of ``...`` removes the key)."""
    record = json.loads(json.dumps(BASE)) | {"eventID": f"ev-{n}"}
    for key, value in changes.items():
        if value is ...:
            record.pop(key, None)
        else:
            record[key] = value
    return record


def identity(**fields: Any) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None}


HOSTILE_RECORDS: list[dict[str, Any]] = [
    variant(1),
    variant(2, eventID=...),  # no eventID: a content id
    variant(3, eventID="   "),
    variant(4, eventID=12345),  # a number
    variant(5, eventID=" ev-5 "),
    variant(6, eventName=True),
    variant(7, eventName=""),
    variant(8, eventName="GetObject20190101"),  # an API-version suffix
    variant(9, eventName="SomethingNobodyCalls", eventSource="newservice.amazonaws.com"),
    variant(10, eventSource=...),
    variant(11, eventSource=42),
    variant(12, eventSource=""),
    variant(13, eventTime="2026-03-01T10:00:00.123456Z"),
    variant(14, eventTime="2026-03-01T10:00:00+02:00"),
    variant(15, eventTime="2026-03-01 10:00:00"),
    variant(16, eventTime="1969-12-31T23:59:59Z"),
    variant(17, eventTime="2027-06-01T00:00:00Z"),  # after NOW and a day
    variant(18, eventTime="last tuesday"),
    variant(19, eventTime=1_700_000_000),
    variant(20, eventTime=""),
    variant(21, eventTime=" 2026-03-01T10:00:00Z"),
    variant(22, eventTime=...),
    variant(23, eventTime="2026-02-30T10:00:00Z"),
    variant(24, errorCode="AccessDenied", errorMessage="not allowed"),
    variant(25, errorCode="AccessDenied", errorMessage=""),
    variant(26, errorCode="AccessDenied", errorMessage=0),
    variant(27, errorCode="AccessDenied", errorMessage=True),
    variant(28, errorCode=403),
    variant(29, errorCode="   "),
    variant(30, errorCode="Denied", errorMessage=1.5),
    variant(31, eventName="ConsoleLogin", responseElements={"ConsoleLogin": "Failure"}),
    variant(32, eventName="ConsoleLogin", responseElements={"ConsoleLogin": "Success"}),
    variant(33, responseElements="Failure"),
    variant(34, sourceIPAddress="ec2.amazonaws.com"),
    variant(35, sourceIPAddress="035.1.2.3"),
    variant(36, sourceIPAddress="2001:DB8::1"),
    variant(37, sourceIPAddress="[::1]:443"),
    variant(38, sourceIPAddress="1.2.3.4:5678"),
    variant(39, sourceIPAddress=" 10.0.0.1 "),
    variant(40, sourceIPAddress=""),
    variant(41, sourceIPAddress=17),
    variant(42, userIdentity={"type": "AssumedRole", "arn": "arn:aws:sts::1:assumed-role/admin/ann"}),
    variant(43, userIdentity={"type": "AssumedRole", "arn": "arn:aws:sts::1:assumed-role/"}),
    variant(44, userIdentity={"type": "FederatedUser", "arn": "arn:aws:sts::1:federated-user/fed"}),
    variant(45, userIdentity={"type": "AWSService", "invokedBy": "lambda.amazonaws.com"}),
    variant(46, userIdentity={"type": "Root", "principalId": "123456789012"}),
    variant(47, userIdentity={"type": "IAMUser", "principalId": "ann@example.com"}),
    variant(48, userIdentity={"type": "SAMLUser", "principalId": "AROA:ann@example.com", "userName": "ann"}),
    variant(49, userIdentity={"type": "Unknown", "principalId": "  "}),
    variant(50, userIdentity={"type": "IAMUser", "userName": "\x1c ann \u3000"}),
    variant(51, userIdentity=None),
    variant(52, userIdentity="ann"),
    variant(53, userIdentity={"type": "IAMUser", "userName": 7}),
    variant(54, userIdentity={"type": "IAMUser", "userName": {"first": "ann"}}),
    variant(55, resources=[{"ARN": "arn:aws:s3:::bucket", "type": "AWS::S3::Bucket"}]),
    variant(56, resources=[{"arn": " arn:lower "}]),
    variant(57, resources=[]),
    variant(58, resources=[{"type": "x"}], requestParameters={"bucketName": "b"}),
    variant(59, resources="arn:aws:s3:::bucket"),
    variant(60, resources=["arn:aws:s3:::bucket"]),
    variant(61, requestParameters={"instancesSet": {"items": [{"instanceId": "i-1"}]}}),
    variant(62, requestParameters={"name": {"nested": "object"}}),
    variant(63, requestParameters={"userName": "", "roleName": "  ", "groupName": "admins"}),
    variant(64, requestParameters=None),
    variant(65, requestParameters="text"),
    variant(66, requestParameters={"secretId": 99}),
    variant(67, awsRegion=""),
    variant(68, awsRegion=...),
    variant(69, requestID=...),
    variant(70, requestID="  "),
    variant(71, eventName="GetSecretValue", eventSource="secretsmanager.amazonaws.com"),
    variant(72, userAgent='=HYPERLINK("http://x")'),
    variant(73, userIdentity={"type": "IAMUser", "userName": "ann\u00e9 \U0001f600"}),
    variant(74, eventID="x" * 300),
    variant(75, requestParameters={"policyDocument": "y" * 400_000}),  # a long line
    variant(76, requestParameters={"policyDocument": "z" * 1_100_000}),  # too long to store
    variant(77, userIdentity={"type": "AssumedRole", "arn": 5, "userName": "u"}),
    variant(78, eventName="DeleteBucket", eventSource="s3.amazonaws.com", errorCode="NoSuchBucket"),
    variant(79, additionalEventData={"LoginTo": "https://console"}),
]

HOSTILE_LINES: list[str] = [
    "",  # blank lines hold no record
    "   ",
    "not json at all",
    "[1, 2, 3]",
    '{"Records": [' + json.dumps(variant(100)) + "]}",
    json.dumps({"CloudTrailEvent": json.dumps(variant(101)), "EventName": "AttachUserPolicy"}),
    json.dumps({"detail-type": "AWS API Call via CloudTrail", "detail": variant(102)}),
    json.dumps(variant(103, eventName="Lone\ud800Surrogate")),  # \ud800 escaped
    json.dumps(variant(104, eventName="Pair\U0001f600")),  # a surrogate pair escaped
    json.dumps(variant(105, eventName="Nul\x00Name")),  # \u0000
    json.dumps(variant(106)).replace('"eventName": "AttachUserPolicy"', '"eventName": "A", "eventName": "B"'),
    json.dumps(variant(107)).replace('"eventTime"', '"eventTime": "2026-01-01T00:00:00Z", "eventTime"'),
    json.dumps(variant(108)) + " trailing",
    json.dumps(variant(109))[:-1],  # cut short
    json.dumps(variant(110), ensure_ascii=False, separators=(",", ":")),  # compact, raw UTF-8
    json.dumps(variant(111, errorCode="E")).replace('"E"', "NaN"),
    json.dumps(variant(112)),  # a record line after all the odd ones
    json.dumps(variant(112)),  # the same event twice in one file
    json.dumps(variant(113, eventSource="ec2.amazonaws.com")).replace("\n", ""),
]


def lines_file(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def record_path_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Read CloudTrail as every other source is read: record by record."""
    monkeypatch.setitem(sources.SOURCES, "cloudtrail", dataclasses.replace(cloudtrail.SOURCE, lines=None))


def comparable(loaded) -> tuple[list[tuple[int, dict[str, Any]]], list[tuple[int, tuple[str, ...]]], int]:
    """(events by line, JSON columns as values; rejects as (line, reasons); rows read)."""
    events = []
    for line, row in zip(loaded.lines, loaded.events.iter_rows(named=True), strict=True):
        events.append((line, {c: json.loads(v) if c in JSON_COLUMNS and v else v for c, v in row.items()}))
    rejects = [(r.line, tuple(r.reasons)) for r in loaded.rejects]
    return events, rejects, loaded.rows_read  # in the order read: the order events are chained


def both_paths(path: Path, monkeypatch: pytest.MonkeyPatch, *, taken: int):
    """What each path reads of ``path``; at least ``taken`` rows went the batch path."""
    seen: list[int] = []

    def counted(texts: pl.Series) -> pl.DataFrame:
        out = cloudtrail.map_lines(texts)
        seen.append(int(out["batch"].sum()))
        return out

    mapper = dataclasses.replace(cloudtrail.SOURCE.lines, map=counted)
    with monkeypatch.context() as patch:
        patch.setitem(sources.SOURCES, "cloudtrail", dataclasses.replace(cloudtrail.SOURCE, lines=mapper))
        fast = comparable(load_file(path, now=NOW))
    assert sum(seen) >= taken
    with monkeypatch.context() as patch:
        record_path_only(patch)
        slow = comparable(load_file(path, now=NOW))
    return fast, slow


def assert_same(fast, slow) -> None:
    fast_events, fast_rejects, fast_read = fast
    slow_events, slow_rejects, slow_read = slow
    assert [line for line, _ in fast_events] == [line for line, _ in slow_events]
    for (line, a), (_, b) in zip(fast_events, slow_events, strict=True):
        assert a == b, f"line {line}: " + ", ".join(c for c in a if a[c] != b[c])
    assert fast_rejects == slow_rejects
    assert fast_read == slow_read


def test_hostile_records_give_what_the_record_path_gives(tmp_path, monkeypatch):
    lines = [json.dumps(r) for r in HOSTILE_RECORDS]
    lines[1:1] = HOSTILE_LINES  # the first line is a plain record, so the batch path is taken
    path = lines_file(tmp_path / "trail.jsonl", lines)
    fast, slow = both_paths(path, monkeypatch, taken=50)
    assert_same(fast, slow)
    events, rejects, _ = fast
    assert len(events) > 60 and len(rejects) > 10  # both kinds were there to compare


def test_the_batch_path_maps_plain_records_and_leaves_the_odd_ones(tmp_path):
    """The rows the columns take and the ones they leave to the record path: a plain record is
    mapped as a column; a record whose fields the two readers would read differently is not."""
    plain = [json.dumps(variant(n)) for n in (1, 24, 31, 42, 45, 55, 61, 73)]
    plain += [json.dumps(variant(1), ensure_ascii=False, separators=(",", ":"))]
    odd = [
        json.dumps(variant(4, eventID=12345)),
        json.dumps(variant(27, errorCode="E", errorMessage=True)),
        json.dumps(variant(2, eventID=...)),
        json.dumps(variant(53, userIdentity={"type": "IAMUser", "userName": 7})),
        HOSTILE_LINES[5],  # a lookup-events item
        HOSTILE_LINES[6],  # an EventBridge event
        HOSTILE_LINES[7],  # a lone surrogate
        HOSTILE_LINES[10],  # eventName twice
    ]
    mapped = cloudtrail.map_lines(pl.Series(plain + odd))
    assert mapped["batch"].to_list() == [True] * len(plain) + [False] * len(odd)
    # and what the columns make of a plain record is map_record's row
    row = mapped.row(0, named=True)
    expected = cloudtrail.map_record(variant(1))
    for column in ("id", "actor", "email", "type", "action", "target", "result", "ip", "request_id"):
        assert row[column] == expected[column], column
    assert row["description"] == expected["description"]
    assert json.loads(row["params"]) == expected["params"]


def test_real_cloudtrail_records_as_lines_give_what_the_record_path_gives(tmp_path, monkeypatch):
    need(SAMPLES.is_dir(), f"the CloudTrail samples {SAMPLES} are absent (../shared, beside the checkout)")
    records = json.loads((SAMPLES / "stratus_red_team_all_detonations.Records.json").read_text())["Records"]
    path = lines_file(tmp_path / "stratus.jsonl", [json.dumps(r, separators=(",", ":")) for r in records])
    fast, slow = both_paths(path, monkeypatch, taken=280)  # the columns take most of them
    assert_same(fast, slow)
    assert len(fast[0]) == len(records) == 310


def test_batches_split_anywhere_give_the_same_rows(tmp_path, monkeypatch):
    lines = [json.dumps(r) for r in HOSTILE_RECORDS[:40]] + HOSTILE_LINES
    path = lines_file(tmp_path / "t.jsonl", lines)
    whole = comparable(load_file(path, now=NOW))
    from audit_analytics.io import ingest

    monkeypatch.setattr(ingest, "LINE_BATCH_ROWS", 7)
    monkeypatch.setattr(ingest, "_SMALLEST_PART", 1)
    assert_same(comparable(load_file(path, now=NOW)), whole)


def test_reimport_by_either_path_is_no_conflict(tmp_path, sqlite_store, monkeypatch):
    lines = [json.dumps(r) for r in HOSTILE_RECORDS]
    path = lines_file(tmp_path / "trail.jsonl", lines)
    with monkeypatch.context() as patch:  # stored first by the record path (an earlier version)
        record_path_only(patch)
        first = import_files(sqlite_store, [path], now=NOW, rejects=tmp_path / "r1.jsonl")
    assert first.imported > 60
    again = import_files(sqlite_store, [path], now=NOW, rejects=tmp_path / "r2.jsonl")
    assert (again.imported, again.duplicates, again.conflicts) == (0, first.imported, 0)
    assert again.rejected == first.rejected
    # the same events written compactly in another file: the same events, no conflict
    other = lines_file(
        tmp_path / "compact.jsonl", [json.dumps(r, separators=(",", ":")) for r in HOSTILE_RECORDS]
    )
    third = import_files(sqlite_store, [other], now=NOW, rejects=tmp_path / "r3.jsonl")
    assert (third.imported, third.conflicts) == (0, 0)
    # a changed record under a stored id is a conflict, as on the record path
    changed = lines_file(tmp_path / "changed.jsonl", [json.dumps(variant(1, awsRegion="eu-west-1"))])
    fourth = import_files(sqlite_store, [changed], now=NOW, rejects=tmp_path / "r4.jsonl")
    assert (fourth.imported, fourth.conflicts) == (0, 1)


@pytest.mark.parametrize("store_name", ["sqlite", "chdb"])
def test_an_overlapping_file_adds_only_its_new_records(store_name, request, tmp_path):
    """Half of the second file is stored already, one record of it changed: each store
    inserts only the new half and reports the changed one as a conflict."""
    store = request.getfixturevalue(STORE_FIXTURES[store_name])
    records = [variant(n, eventName=f"Call{n % 7}") for n in range(1, 201)]
    first = lines_file(tmp_path / "a.jsonl", [json.dumps(r) for r in records[:100]])
    changed = records[99] | {"awsRegion": "eu-west-1"}
    second = lines_file(
        tmp_path / "b.jsonl", [json.dumps(r) for r in [*records[50:99], changed, *records[100:]]]
    )
    a = import_files(store, [first], now=NOW, rejects=tmp_path / "ra.jsonl")
    b = import_files(store, [second], now=NOW, rejects=tmp_path / "rb.jsonl")
    assert (a.imported, a.duplicates) == (100, 0)
    assert (b.imported, b.duplicates, b.conflicts) == (100, 50, 1)
    assert store.count() == 200
    stored = store.events_by_id([f"aws-ev-{n}" for n in (1, 100, 101, 200)])
    assert sorted(stored["id"].to_list()) == ["aws-ev-1", "aws-ev-100", "aws-ev-101", "aws-ev-200"]
    assert stored.filter(pl.col("id") == "aws-ev-100")["description"].item().endswith("in us-east-1")


def test_a_key_written_twice_inside_the_identity_is_kept_whole(tmp_path):
    """The one difference the two paths keep (docs/architecture.md): a key written twice inside
    userIdentity is read as its first value by the columns (Python's json takes the last);
    the record is stored as it was, both values in it."""
    line = json.dumps(variant(1)).replace('"userName": "ann"', '"userName": "ann", "userName": "eve"')
    path = lines_file(tmp_path / "twice.jsonl", [json.dumps(variant(2)), line])
    events = load_file(path, now=NOW).events
    row = events.filter(pl.col("id") == "aws-ev-1").row(0, named=True)
    assert row["actor"] == "ann"
    assert '"userName": "ann", "userName": "eve"' in row["params"]

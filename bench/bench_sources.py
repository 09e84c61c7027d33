"""Importing CloudTrail: records per second through ``audit-analytics import`` into SQLite
(or, with ``--store chdb``, a chDB folder).

Usage::

    .venv/bin/python bench/bench_sources.py                       # 1,000,000 records, 3 runs
    .venv/bin/python bench/bench_sources.py --records 20000 --repeat 1 --output /tmp/s.json
    .venv/bin/python bench/bench_sources.py --profile              # + where one import's time goes (serially)

The data: synthetic CloudTrail records (the fields and sizes of the Stratus Red Team
detonation records in ../shared/data/sources: IAM users and assumed roles, ~60 event names,
17% denied calls with an errorCode and errorMessage, request parameters, TLS details), one
record per line, written to a temporary file as they are generated (never held in memory),
so it is the import that is measured: the file is sniffed, read, each record mapped to our
schema, validated, deduplicated, stored and chained, exactly as
``audit-analytics import FILE`` does (``import_files``). Each run imports into a fresh SQLite
file in a process of its own (its wall clock, CPU time and peak RSS reported). Goal: 100,000
records/s.

Results: ``bench/results/sources.json`` (``--output``) and the table in ``sources.md`` is
written from it by hand.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import platform
import pstats
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
GOAL = 100_000

NAMES = (
    [
        ("ec2.amazonaws.com", n)
        for n in (
            "DescribeInstances",
            "DescribeInstanceAttribute",
            "RunInstances",
            "TerminateInstances",
            "GetPasswordData",
        )
    ]
    + [
        ("iam.amazonaws.com", n)
        for n in (
            "AttachUserPolicy",
            "CreateUser",
            "CreateAccessKey",
            "ListUsers",
            "GetUser",
            "DetachRolePolicy",
        )
    ]
    + [
        ("sts.amazonaws.com", "AssumeRole"),
        ("sts.amazonaws.com", "GetCallerIdentity"),
        ("signin.amazonaws.com", "ConsoleLogin"),
        ("secretsmanager.amazonaws.com", "GetSecretValue"),
        ("ssm.amazonaws.com", "DescribeInstanceInformation"),
        ("s3.amazonaws.com", "GetObject"),
        ("s3.amazonaws.com", "PutObject"),
        ("cloudtrail.amazonaws.com", "StopLogging"),
        ("lambda.amazonaws.com", "UpdateFunctionCode20150331v2"),
    ]
)


def record(rng: random.Random, when: datetime) -> dict[str, Any]:
    source, name = rng.choice(NAMES)
    user = f"user{rng.randrange(500)}"
    if rng.random() < 0.3:
        identity = {
            "type": "AssumedRole",
            "principalId": f"AROA{rng.randrange(10**12):012d}:session-{rng.randrange(99)}",
            "arn": f"arn:aws:sts::123456789012:assumed-role/role-{rng.randrange(40)}/session-{rng.randrange(99)}",
            "accountId": "123456789012",
            "accessKeyId": f"ASIA{rng.randrange(10**12):012d}",
            "sessionContext": {
                "sessionIssuer": {"type": "Role", "userName": f"role-{rng.randrange(40)}"},
                "attributes": {"creationDate": when.isoformat(), "mfaAuthenticated": "false"},
            },
        }
    else:
        identity = {
            "type": "IAMUser",
            "principalId": f"AIDA{rng.randrange(10**12):012d}",
            "arn": f"arn:aws:iam::123456789012:user/{user}",
            "accountId": "123456789012",
            "accessKeyId": f"AKIA{rng.randrange(10**12):012d}",
            "userName": user,
        }
    out: dict[str, Any] = {
        "eventVersion": "1.09",
        "userIdentity": identity,
        "eventTime": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": source,
        "eventName": name,
        "awsRegion": rng.choice(("us-east-1", "eu-west-1", "ap-southeast-2")),
        "sourceIPAddress": f"{rng.randrange(1, 223)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}",
        "userAgent": "aws-cli/2.15.0 Python/3.11.6 Linux/6.1 botocore/2.4.5",
        "requestParameters": {"instanceId": f"i-{rng.randrange(16**12):012x}", "userName": user},
        "responseElements": None,
        "requestID": str(uuid.UUID(int=rng.getrandbits(128))),
        "eventID": str(uuid.UUID(int=rng.getrandbits(128))),
        "readOnly": name.startswith(("Describe", "Get", "List")),
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": "123456789012",
        "eventCategory": "Management",
        "tlsDetails": {
            "tlsVersion": "TLSv1.3",
            "cipherSuite": "TLS_AES_128_GCM_SHA256",
            "clientProvidedHostHeader": source,
        },
    }
    if rng.random() < 0.17:
        out["errorCode"] = "AccessDenied"
        out["errorMessage"] = (
            f"User: {identity['arn']} is not authorized to perform: {source.split('.')[0]}:{name} "
            "because no identity-based policy allows the action"
        )
    return out


def write_records(path: Path, n: int, *, seed: int = 7) -> int:
    rng = random.Random(seed)
    start = datetime(2026, 6, 1, tzinfo=UTC)
    with path.open("w") as out:
        for i in range(n):
            out.write(json.dumps(record(rng, start + timedelta(milliseconds=37 * i))) + "\n")
    return path.stat().st_size


_CHILD = """
import json, resource, sys, time
t0 = time.perf_counter(); c0 = time.process_time()
from audit_analytics.engines.store import open_store
from audit_analytics.io.ingest import import_files
store = open_store(sys.argv[1])
summary = import_files(store, [sys.argv[2]])
getattr(store, "close", store.engine.dispose)()
print(json.dumps({"seconds": time.perf_counter() - t0, "cpu": time.process_time() - c0,
    "imported": summary.imported, "rejected": summary.rejected, "formats": summary.formats,
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run_once(data: Path, folder: Path, index: int, store: str = "sqlite") -> dict[str, Any]:
    db = folder / f"run{index}.db"
    db.unlink(missing_ok=True)
    shutil.rmtree(folder / f"run{index}-ch", ignore_errors=True)
    url = f"sqlite:///{db}" if store == "sqlite" else f"chdb://{folder / f'run{index}-ch'}"
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, url, str(data)],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    db.unlink(missing_ok=True)
    shutil.rmtree(folder / f"run{index}-ch", ignore_errors=True)
    return result


def write_ceiling(folder: Path, n: int = 200_000) -> dict[str, Any]:
    """The fastest any import through SQLite could go here: ``n`` rows already mapped and
    serialised (tuples, the CloudTrail record as params) inserted by one ``executemany``
    straight into the events table with its indexes; no reading, mapping, validation,
    staging or chain."""
    import sqlite3

    from audit_analytics.engines.store import open_store
    from audit_analytics.schema import COLUMNS

    db = folder / "ceiling.db"
    open_store(f"sqlite:///{db}").engine.dispose()
    rng = random.Random(11)
    start = datetime(2026, 6, 1, tzinfo=UTC)
    rows = []
    for i in range(n):
        when = start + timedelta(milliseconds=37 * i)
        r = record(rng, when)
        rows.append(
            (
                f"aws-{r['eventID']}",
                when.strftime("%Y-%m-%d %H:%M:%S.%f"),
                r["userIdentity"].get("userName"),
                None,
                "infra",
                "read",
                r["requestParameters"]["instanceId"],
                "done",
                r["sourceIPAddress"],
                r["requestID"],
                f"someone called {r['eventSource']}:{r['eventName']}",
                json.dumps({"source": "aws.cloudtrail", "record": r}, sort_keys=True),
                None,
                None,
                r.get("errorCode"),
            )
        )
    names = ", ".join(f'"{c}"' for c in COLUMNS)
    marks = ", ".join("?" for _ in COLUMNS)
    con = sqlite3.connect(db)
    t0 = time.perf_counter()
    with con:
        con.executemany(
            f"INSERT INTO audit_events ({names}) VALUES ({marks}) ON CONFLICT (id) DO NOTHING",  # noqa: S608
            rows,
        )
    seconds = time.perf_counter() - t0
    indexes = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'index'")]
    con.close()
    return {"rows": n, "seconds": seconds, "rows_per_s": n / seconds, "indexes": indexes}


def profile(data: Path, folder: Path, top: int = 25) -> list[dict[str, Any]]:
    from audit_analytics.engines.store import open_store
    from audit_analytics.io import ingest

    store = open_store(f"sqlite:///{folder / 'profile.db'}")
    prof = cProfile.Profile()
    ahead = ingest._ahead
    # serially: cProfile sees one thread, and each stage's own time is what is asked here
    ingest._ahead = lambda batches: batches  # type: ignore[assignment]
    prof.enable()
    try:
        ingest.import_files(store, [data])
    finally:
        prof.disable()
        ingest._ahead = ahead  # type: ignore[assignment]
    stats = pstats.Stats(prof)
    rows = []
    for (filename, line, name), (_, calls, own, cumulative, _) in stats.stats.items():  # type: ignore[attr-defined]
        rows.append(
            {
                "function": f"{Path(filename).name}:{line}({name})",
                "calls": calls,
                "own_s": round(own, 2),
                "cumulative_s": round(cumulative, 2),
            }
        )
    rows.sort(key=lambda r: r["cumulative_s"], reverse=True)
    return rows[:top]


def stages(data: Path, folder: Path, store: str = "chdb") -> dict[str, Any]:
    """Where one import's time goes, each stage timed on its own in this process (no reading
    thread beside the writing): reading, mapping and validating every batch; then storing
    (``Store.insert_new``) and chaining (``ChainWriter.add``) them, once as read and once with
    ``params`` (the whole CloudTrail record, ~1 GB) left empty. The second is not what the
    importer does (it keeps the record: nothing is lost); it measures what keeping it costs."""
    import polars as pl

    from audit_analytics.engines.store import open_store
    from audit_analytics.io import ingest

    checked = ingest._check(data, None, None, None)
    t0, c0 = time.perf_counter(), time.process_time()
    now = datetime.now(UTC)
    batches = list(ingest._batches(checked, ingest._Reading(checked), batch_rows=None, now=now))
    out: dict[str, Any] = {
        "read_map_validate_s": round(time.perf_counter() - t0, 2),
        "read_map_validate_cpu_s": round(time.process_time() - c0, 2),
        "batches": len(batches),
    }
    for label, keep in (("with_params", True), ("without_params", False)):
        target = folder / f"stages-{label}"
        shutil.rmtree(target, ignore_errors=True)
        url = f"chdb://{target}" if store == "chdb" else f"sqlite:///{target}.db"
        st = open_store(url)
        stored = chained = 0.0
        try:
            with st.engine.begin() as conn:
                writer = ingest._Writer(st, conn, source="bench stages")
                for batch in batches:
                    events = (
                        batch.events
                        if keep
                        else batch.events.with_columns(pl.lit(None, pl.String).alias("params"))
                    )
                    unique = events.unique(subset="id", keep="first", maintain_order=True).sort("id")
                    t = time.perf_counter()
                    st.insert_new(conn, unique, chunk_size=0)
                    stored += time.perf_counter() - t
                    t = time.perf_counter()
                    writer.chained.add(unique)
                    chained += time.perf_counter() - t
                writer.finish()
        finally:
            getattr(st, "close", st.engine.dispose)()
            shutil.rmtree(target, ignore_errors=True)
            Path(f"{target}.db").unlink(missing_ok=True)
        out[label] = {"store_s": round(stored, 2), "chain_s": round(chained, 2)}
        print(f"stages ({store}, {label}): {out[label]}", file=sys.stderr)
    print(f"stages: read, map and validate {out['read_map_validate_s']} s", file=sys.stderr)
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="also profile one import in this process")
    parser.add_argument(
        "--ceiling", action="store_true", help="also time a bare executemany of mapped rows into the table"
    )
    parser.add_argument(
        "--store",
        choices=("sqlite", "chdb"),
        default="sqlite",
        help="import into an SQLite file or a chDB folder",
    )
    parser.add_argument(
        "--stages",
        action="store_true",
        help="also time each stage on its own, and storing and chaining without the records kept in params",
    )
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results" / "sources.json")
    args = parser.parse_args(argv)
    load_before = os.getloadavg()  # before anything here runs
    with tempfile.TemporaryDirectory(prefix="aa-bench-sources-") as tmp:
        folder = Path(tmp)
        data = folder / "cloudtrail.jsonl"
        t0 = time.perf_counter()
        size = write_records(data, args.records)
        print(
            f"wrote {args.records:,} records ({size / 2**20:,.0f} MiB) in {time.perf_counter() - t0:.1f} s",
            file=sys.stderr,
        )
        runs = []
        for i in range(args.repeat):
            result = run_once(data, folder, i, args.store)
            if result["imported"] != args.records or result["formats"] != {str(data): "cloudtrail"}:
                raise SystemExit(f"the import did not read every record as CloudTrail: {result}")
            result["records_per_s"] = args.records / result["seconds"]
            runs.append(result)
            print(
                f"run {i + 1}: {result['seconds']:.1f} s, {result['records_per_s']:,.0f} records/s",
                file=sys.stderr,
            )
        rates = [r["records_per_s"] for r in runs]
        report: dict[str, Any] = {
            "when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": {
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "load_before": load_before,
            },
            "records": args.records,
            "store": args.store,
            "file_mib": round(size / 2**20, 1),
            "runs": runs,
            "records_per_s": {"median": statistics.median(rates), "min": min(rates), "max": max(rates)},
            "seconds": {
                "median": statistics.median(r["seconds"] for r in runs),
                "min": min(r["seconds"] for r in runs),
                "max": max(r["seconds"] for r in runs),
            },
            "goal_records_per_s": GOAL,
            "goal_met": statistics.median(rates) >= GOAL,
        }
        if args.profile:
            report["profile"] = profile(data, folder)
        if args.stages:
            report["stages"] = stages(data, folder, args.store)
        if args.ceiling:
            report["ceiling"] = write_ceiling(folder)
            print(f"ceiling: {report['ceiling']['rows_per_s']:,.0f} rows/s", file=sys.stderr)
        report["machine"]["load_after"] = os.getloadavg()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report["records_per_s"]), file=sys.stderr)
    return report


if __name__ == "__main__":
    main()

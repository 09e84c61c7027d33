"""``audit-analytics integrity …``: prove that the log and its exports were not altered.

- ``integrity checkpoint`` prints the chain's head (latest batch, its digest, events stored),
  signed with the Ed25519 key in ``--key`` / ``$AUDIT_SIGNING_KEY`` when there is one, and
  can append it to a file (``--append``) for keeping outside the database.
- ``integrity verify`` recomputes the chain; exit 0 when everything matches, 5 when anything
  does not (the first batch and the event ids are printed), 2 when it cannot run.
- ``integrity verify-export FILE`` checks an export against its manifest and, with the
  database, its rows against the log.
- ``integrity keygen FILE`` writes a new signing key (and ``FILE.pub``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from audit_analytics.cli.common import EXIT_ALTERED, EXIT_OK, EXIT_USAGE, Parser, actor, add_db, open_store

__all__ = ["add_parsers"]


def add_parsers(sub: argparse._SubParsersAction[Parser]) -> None:
    """Add the ``integrity`` command to the main parser's sub-parsers."""
    top = sub.add_parser(
        "integrity",
        help="prove the log and its exports were not altered (hash chain, checkpoints)",
        description="The events are stored in a hash chain: every write is a batch whose digest covers "
        "its events and the batch before it. Exit codes: 0 verified, 5 something no longer matches, "
        "2 the check could not run.",
    )
    isub = top.add_subparsers(dest="integrity_command", metavar="ACTION", required=True)

    p = isub.add_parser("checkpoint", help="print the chain's head (signed when a key is configured)")
    add_db(p)
    p.add_argument("--key", metavar="FILE", help="Ed25519 private key, PEM (default: $AUDIT_SIGNING_KEY)")
    p.add_argument("--append", metavar="FILE", help="also append the checkpoint as one JSON line to FILE")
    p.set_defaults(handler=cmd_checkpoint)

    p = isub.add_parser("verify", help="recompute the chain and report what no longer matches")
    add_db(p)
    p.add_argument(
        "--checkpoint",
        metavar="FILE",
        action="append",
        default=[],
        help="checkpoint file(s) made earlier: every checkpoint in them must still match "
        "(the only way to notice a truncated tail)",
    )
    p.add_argument(
        "--public-key",
        metavar="FILE",
        help="the key checkpoints must be signed with, PEM (default: $AUDIT_VERIFY_KEY, "
        "else the public half of $AUDIT_SIGNING_KEY)",
    )
    p.add_argument(
        "--archive",
        metavar="DIR",
        help="the retention archive: also check the archived events (default: the policy's archive, if it exists)",
    )
    p.add_argument("--json", action="store_true", help="print the whole report as JSON")
    p.add_argument(
        "--no-record", action="store_true", help="do not record the verification as an audit event"
    )
    p.set_defaults(handler=cmd_verify)

    p = isub.add_parser("verify-export", help="check an export against its manifest (and the log, with --db)")
    p.add_argument("file", metavar="FILE", help="an exported .csv (with FILE.manifest.json) or .xlsx")
    p.add_argument(
        "--db",
        metavar="URL",
        help="also check the rows against this database (default: $AUDIT_DB_URL when set)",
    )
    p.add_argument(
        "--archive",
        metavar="DIR",
        help="the retention archive, for an export --include-archive: archived events are checked "
        "from it (default: the policy's archive, if it exists)",
    )
    p.add_argument("--file-only", action="store_true", help="check the file against its manifest only")
    p.set_defaults(handler=cmd_verify_export)

    p = isub.add_parser(
        "keygen", help="write a new Ed25519 signing key to FILE (and its public key to FILE.pub)"
    )
    p.add_argument("file", metavar="FILE")
    p.set_defaults(handler=cmd_keygen)


def cmd_checkpoint(args: argparse.Namespace) -> int:
    from audit_analytics import integrity

    key_path = args.key or integrity.signing_key_path()
    key = integrity.load_private_key(key_path) if key_path else None
    store = open_store(args)
    store.record(
        actor=actor(),
        type="audit",
        action=integrity.CHECKPOINT_ACTION,
        target=store.safe_url,
        params={"via": "cli", "signed": key is not None, "file": args.append},
        description=f"{actor()} made an integrity checkpoint of the audit log",
    )
    checkpoint = integrity.make_checkpoint(store, key=key)
    line = checkpoint.to_json()
    if args.append:
        target = Path(args.append)
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "a", encoding="utf-8") as out:
            out.write(line + "\n")
    print(line)
    signed = "signed" if key is not None else "NOT signed (no key: set --key or $AUDIT_SIGNING_KEY)"
    print(
        f"checkpoint: batch {checkpoint.batch:,}, {checkpoint.events:,} events stored, {signed}"
        + (f"; appended to {args.append}" if args.append else ""),
        file=sys.stderr,
    )
    return EXIT_OK


def cmd_verify(args: argparse.Namespace) -> int:
    from audit_analytics import integrity

    checkpoints = [cp for path in args.checkpoint for cp in integrity.read_checkpoints(path)]
    key_path = args.public_key or integrity.verify_key_path() or integrity.signing_key_path()
    public_key = integrity.load_public_key(key_path) if key_path else None
    store = open_store(args)
    report = integrity.verify(store, checkpoints=checkpoints, archive=_archive(args), public_key=public_key)
    if not args.no_record:
        integrity.record_verification(store, report, actor=actor(), via="cli")
    if args.json:
        print(json.dumps(report.as_dict(), indent=2, default=str))
    else:
        print(report.summary())
        for problem in report.problems:
            print(f"  [{problem.kind}] {problem.message}")
            if problem.count > 5:
                print(f"    ids: {', '.join(problem.ids[:20])}" + (" …" if problem.count > 20 else ""))
        for note in report.notes:
            print(f"note: {note}", file=sys.stderr)
    return EXIT_OK if report.ok else EXIT_ALTERED


def _archive(args: argparse.Namespace) -> Path | None:
    if args.archive:
        return Path(args.archive)
    from audit_analytics.io.retention import policy_archive

    return policy_archive()


def cmd_verify_export(args: argparse.Namespace) -> int:
    import os

    from audit_analytics.engines.store import open_store as open_url
    from audit_analytics.io.evidence import verify_export

    url = None if args.file_only else (args.db or os.environ.get("AUDIT_DB_URL"))
    store = open_url(url, create=False) if url else None
    check = verify_export(args.file, store=store, archive=_archive(args) if store is not None else None)
    print(check.summary())
    for problem in check.problems:
        print(f"  {problem}")
    for note in check.notes:
        print(f"note: {note}", file=sys.stderr)
    if store is None and not args.file_only:
        print("note: no database given (--db or $AUDIT_DB_URL): only the file was checked", file=sys.stderr)
    if check.unchecked is not None and not check.problems:
        return EXIT_USAGE  # the check asked for cannot be made: neither a pass nor tampering
    return EXIT_OK if check.ok else EXIT_ALTERED


def cmd_keygen(args: argparse.Namespace) -> int:
    from audit_analytics import integrity

    public = integrity.generate_key(args.file)
    print(public, end="")
    print(
        f"wrote the private key to {args.file} (owner-only) and the public key to {args.file}.pub; "
        f"set AUDIT_SIGNING_KEY={args.file} to sign checkpoints, and keep the .pub file with them",
        file=sys.stderr,
    )
    return EXIT_OK

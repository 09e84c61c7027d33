"""``audit-analytics users …`` and ``audit-analytics retention …``: accounts and retention.

Plugged into the main parser by :func:`add_parsers`; each sub-command sets ``handler``.
Every change is recorded in the store (``user`` events for accounts, ``audit`` events for
retention runs), with the actor from ``AUDIT_ACTOR`` or the login name.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import polars as pl

from audit_analytics import accounts
from audit_analytics.accounts import ROLES
from audit_analytics.cli.common import EXIT_OK, EXIT_USAGE, Parser, actor, add_db, open_store
from audit_analytics.io import tabular

if TYPE_CHECKING:
    from audit_analytics.io.retention import Policy

__all__ = ["EXIT_OK", "EXIT_USAGE", "PLAN_COLUMNS", "add_parsers", "render_plan"]


def _add_users_file(p: argparse.ArgumentParser) -> None:
    add_db(p)
    p.add_argument(
        "--file",
        metavar="PATH",
        help=f"accounts file (default: $AUDIT_USERS_FILE or {accounts.DEFAULT_USERS_FILE})",
    )


def add_parsers(
    sub: argparse._SubParsersAction[Parser],
    add_filter_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
) -> None:
    """Add the ``users`` and ``retention`` commands to the main parser's sub-parsers."""
    users = sub.add_parser("users", help="manage the app's local accounts and OIDC roles")
    usub = users.add_subparsers(dest="users_command", metavar="ACTION", required=True)

    p = usub.add_parser("add", help="create an account (prompts for the password unless --password)")
    _add_users_file(p)
    p.add_argument("name")
    p.add_argument("--role", required=True, choices=ROLES)
    p.add_argument("--password", help="the password (prefer the prompt: arguments show in `ps`)")
    p.set_defaults(handler=cmd_users_add)

    p = usub.add_parser("remove", help="delete an account")
    _add_users_file(p)
    p.add_argument("name")
    p.set_defaults(handler=cmd_users_remove)

    p = usub.add_parser("list", help="list accounts and OIDC role mappings")
    _add_users_file(p)
    p.set_defaults(handler=cmd_users_list)

    p = usub.add_parser("set-role", help="change an account's role")
    _add_users_file(p)
    p.add_argument("name")
    p.add_argument("role", choices=ROLES)
    p.set_defaults(handler=cmd_users_set_role)

    p = usub.add_parser("map-oidc", help="give an OIDC identity (email) a role, or set the default role")
    _add_users_file(p)
    p.add_argument("identity", nargs="?", help="an email; omit with --default")
    p.add_argument("--role", choices=[*ROLES, "none"], required=True, help="'none' removes the mapping")
    p.add_argument("--default", action="store_true", help="set the role of identities found in no mapping")
    p.set_defaults(handler=cmd_users_map_oidc)

    p = usub.add_parser(
        "init-demo-admin", help="first run: create 'admin' with a random password when there are no users"
    )
    _add_users_file(p)
    p.set_defaults(handler=cmd_users_init_demo_admin)

    ret = sub.add_parser("retention", help="plan or apply the retention policy (archive, then purge)")
    rsub = ret.add_subparsers(dest="retention_command", metavar="ACTION", required=True)
    for name, helptext, handler in (
        ("plan", "dry run: per category, what would be archived and deleted", cmd_retention_plan),
        ("apply", "archive expired events, verify, then delete them", cmd_retention_apply),
    ):
        p = rsub.add_parser(name, help=helptext)
        add_db(p)
        p.add_argument(
            "--policy",
            metavar="FILE",
            help="policy TOML (default: $AUDIT_RETENTION_POLICY, data/retention.toml if present, "
            "else 400 days security / 90 days operational)",
        )
        p.add_argument("--archive", metavar="DIR", help="archive directory (overrides the policy's)")
        if name == "apply":
            p.add_argument(
                "--delete-without-archive",
                action="store_true",
                help="delete expired events even though the policy names no archive",
            )
        p.set_defaults(handler=handler)


# ---------------------------------------------------------------------------------------
# users


def _read_new_password() -> str:
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("Password: ")
    if first != getpass.getpass("Repeat the password: "):
        raise accounts.AccountError("the two passwords differ")
    return first


def _recorded(store: Any) -> str:
    """Where the change's event went: the log the app reads only when ``--db`` (or
    ``AUDIT_DB_URL``) names it, so the line says which (a default ``data/audit.db`` beside a
    deployment's real store would hold the account events unseen)."""
    return f"; recorded in {store.safe_url}"


def cmd_users_add(args: argparse.Namespace) -> int:
    password = args.password if args.password is not None else _read_new_password()
    store = open_store(args, create=True)
    user = accounts.add_user(args.file, args.name, args.role, password, actor=actor(), store=store)
    print(
        f"users: created {user.name} ({user.role}) in {args.file or accounts.default_users_file()}"
        f"{_recorded(store)}"
    )
    return EXIT_OK


def cmd_users_remove(args: argparse.Namespace) -> int:
    store = open_store(args, create=True)
    accounts.remove_user(args.file, args.name, actor=actor(), store=store)
    print(f"users: removed {args.name.strip().lower()}{_recorded(store)}")
    return EXIT_OK


def cmd_users_list(args: argparse.Namespace) -> int:
    found = accounts.load_accounts(args.file)
    if not found.users:
        print("(no local accounts)")
    for name in sorted(found.users):
        a = found.users[name]
        print(f"{name}\t{a.role}\tcreated {a.created or '?'}")
    for identity, role in sorted(found.oidc_roles.items()):
        print(f"oidc:{identity}\t{role}")
    print(f"oidc:(default)\t{found.oidc_default_role or 'none (no access)'}")
    return EXIT_OK


def cmd_users_set_role(args: argparse.Namespace) -> int:
    store = open_store(args, create=True)
    old, new = accounts.set_role(args.file, args.name, args.role, actor=actor(), store=store)
    print(f"users: {args.name.strip().lower()} is now {new} (was {old}){_recorded(store)}")
    return EXIT_OK


def cmd_users_map_oidc(args: argparse.Namespace) -> int:
    if args.default == bool(args.identity):
        raise accounts.AccountError("give either an identity (email) or --default")
    role = None if args.role == "none" else args.role
    old, new = accounts.map_oidc(
        args.file,
        None if args.default else args.identity,
        role,
        actor=actor(),
        store=(store := open_store(args, create=True)),
    )
    who = "unmapped OIDC identities" if args.default else args.identity
    print(f"users: {who}: {new or 'none'} (was {old or 'none'}){_recorded(store)}")
    return EXIT_OK


def cmd_users_init_demo_admin(args: argparse.Namespace) -> int:
    path = args.file or accounts.default_users_file()
    password = accounts.init_demo_admin(path, store=open_store(args, create=True))
    if password is None:
        print(f"users: {path} already has accounts; no demo admin created")
        return EXIT_OK
    print(
        "\n"
        f"  Created the demo admin account in {path}.\n"
        f"  Sign in as:  admin\n"
        f"  Password:    {password}\n"
        "  It is shown this once only. Change it with:\n"
        "    audit-analytics users remove admin && audit-analytics users add NAME --role admin\n"
    )
    return EXIT_OK


# ---------------------------------------------------------------------------------------
# retention


def _policy(args: argparse.Namespace) -> Policy:
    from audit_analytics.io.retention import load_policy

    policy = load_policy(args.policy)
    if args.archive:
        policy = policy.replace(archive=args.archive)
    return policy


PLAN_COLUMNS: dict[str, str] = {
    "category": "category",
    "days": "days",
    "events": "events",
    "held": "held",
    "to_archive": "archive",
    "to_delete": "delete",
    "oldest_kept": "oldest kept",
    "next_expiry": "next expiry",
}
"""The plan's columns in the table, and their headings."""


def render_plan(table: pl.DataFrame, *, tz: str = "UTC") -> str:
    """The plan as a plain-text table, times in ``tz``; a missing time shows as ``-``."""
    return tabular.to_table(
        table, tz=tz, columns=list(PLAN_COLUMNS), headers=PLAN_COLUMNS, limit=None, null="-"
    )


def cmd_retention_plan(args: argparse.Namespace) -> int:
    from audit_analytics.io.retention import plan

    policy = _policy(args)
    store = open_store(args)
    table = plan(store, policy)
    sys.stdout.write(render_plan(table))
    total = int(table["to_delete"].sum())
    where = (
        f"archived to {policy.archive}" if policy.archive else "NOT archived (the policy names no archive)"
    )
    print(f"dry run: {total:,} events would be deleted from {store.safe_url}, {where}", file=sys.stderr)
    return EXIT_OK


def cmd_retention_apply(args: argparse.Namespace) -> int:
    from audit_analytics.io.retention import apply

    policy = _policy(args)
    store = open_store(args)
    run = apply(store, policy, actor=actor(), allow_without_archive=args.delete_without_archive, via="cli")
    note = (
        f" ({run.already_archived:,} were already archived by an earlier run)" if run.already_archived else ""
    )
    print(
        f"retention {run.run_id}: archived {run.archived:,} events to {policy.archive or '(nowhere)'}{note}, "
        f"deleted {run.deleted:,} from {store.safe_url}"
    )
    return EXIT_OK

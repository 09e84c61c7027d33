"""The event schema: columns, dtypes, the 16 categories, results and retention groups.

This is the one place that says what an audit event is. Everything else (ingest,
store, filters, export, pages) reads it from here.

Examples
--------
>>> from audit_analytics.schema import CATEGORIES, RESULTS, SCHEMA
>>> CATEGORIES["auth"].label
'Authentication'
>>> RESULTS
('done', 'failed', 'pending', 'processing')
>>> SCHEMA["time"]
Datetime(time_unit='us', time_zone='UTC')
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import polars as pl

RetentionGroup = Literal["security", "operational"]


@dataclass(frozen=True, slots=True)
class Category:
    """One of the 16 event categories."""

    code: str
    label: str
    records: str
    retention_group: RetentionGroup


_CATEGORY_ROWS: tuple[tuple[str, str, str, RetentionGroup], ...] = (
    ("device", "Device", "devices registered, updated, removed or reassigned", "operational"),
    (
        "infra",
        "Infrastructure",
        "servers, networks and clusters created, changed or destroyed",
        "operational",
    ),
    ("service", "Service", "services deployed, scaled, configured, rolled back", "operational"),
    ("auth", "Authentication", "sign-ins, sign-outs, password and MFA changes", "security"),
    ("backup", "Backup", "backups created, restored or deleted", "operational"),
    ("database", "Database", "databases created, resized, configured or dropped", "operational"),
    ("user", "User", "user accounts, roles and permissions", "security"),
    ("organization", "Organization", "organisation settings, members and teams", "security"),
    ("audit", "Audit", "use of the audit log itself: exports, retention runs, policy changes", "security"),
    ("vpn", "VPN", "VPN gateways, tunnels and client connections", "security"),
    ("secret", "Secret", "secrets and keys created, read, rotated or deleted", "security"),
    ("domain", "Domain", "domains, DNS records and certificates", "operational"),
    ("monitoring", "Monitoring", "alerts, dashboards and monitoring rules", "operational"),
    ("system", "System", "platform-level operations and maintenance", "operational"),
    ("webhook", "Webhook", "webhooks registered, changed, delivered or removed", "operational"),
    ("db_backup", "Database backup", "database snapshots and point-in-time restores", "operational"),
)

CATEGORIES: dict[str, Category] = {row[0]: Category(*row) for row in _CATEGORY_ROWS}
"""The 16 category codes, in their canonical order, with label, meaning and retention group."""

CATEGORY_CODES: tuple[str, ...] = tuple(CATEGORIES)

PERMISSION = "permission"
"""The Type filter's and the search's ``type:permission``: role and permission changes, not a
category of its own (a ``user`` or ``organization`` event whose action is one of
:data:`PERMISSION_ACTIONS`). The Permission changes detection uses the same definition."""

PERMISSION_CATEGORIES: tuple[str, ...] = ("user", "organization")

PERMISSION_ACTIONS: frozenset[str] = frozenset(
    {
        "role_change", "permission_change", "grant", "revoke", "member_role_update",
        "role_update", "update_role", "add_role", "remove_role", "assign_role", "unassign_role",
        "member_update", "add_member", "invite",
    }
)  # fmt: skip
"""Actions that change who may do what (in the :data:`PERMISSION_CATEGORIES`)."""

TYPE_CHOICES: tuple[str, ...] = (*CATEGORY_CODES, PERMISSION)
"""What the Type filter and ``type:`` accept: the 16 categories and ``permission``."""

RESULTS: tuple[str, ...] = ("done", "failed", "pending", "processing")
"""The four results. Asynchronous work goes pending -> processing -> done/failed."""

RESULT_LABELS: dict[str, str] = {
    "done": "Success",
    "failed": "Failure",
    "pending": "Pending",
    "processing": "Processing",
}

RETENTION_GROUPS: dict[str, tuple[str, ...]] = {
    "security": tuple(c.code for c in CATEGORIES.values() if c.retention_group == "security"),
    "operational": tuple(c.code for c in CATEGORIES.values() if c.retention_group == "operational"),
}

TypeDtype = pl.Enum(list(CATEGORY_CODES))
ResultDtype = pl.Enum(list(RESULTS))

SCHEMA: pl.Schema = pl.Schema(
    {  # type: ignore[arg-type]  # polars types the classes (pl.String) apart from instances
        "id": pl.String,
        "time": pl.Datetime("us", "UTC"),
        "actor": pl.String,
        "email": pl.String,
        "type": TypeDtype,
        "action": pl.String,
        "target": pl.String,
        "result": ResultDtype,
        "ip": pl.String,
        "request_id": pl.String,
        "description": pl.String,
        "params": pl.String,
        "before": pl.String,
        "after": pl.String,
        "error": pl.String,
    }
)
"""Column name -> polars dtype of an event frame, in column order."""

COLUMNS: tuple[str, ...] = tuple(SCHEMA.names())

DETAIL_COLUMNS: tuple[str, ...] = ("params", "before", "after")
"""The bulky JSON columns only an event's detail, an export and the permission-change review
read: the in-memory engine leaves them in the database and fetches them by id (at 10 million
events they are 0.9 GB of the 2.4 GB the columns take)."""

SUMMARY_COLUMNS: tuple[str, ...] = tuple(c for c in COLUMNS if c not in DETAIL_COLUMNS)
"""Every column but :data:`DETAIL_COLUMNS`: what the in-memory engine holds."""

REQUIRED_COLUMNS: tuple[str, ...] = ("time", "type", "action", "result")
"""Fields every imported row must fill (``id`` is derived when missing).

``actor`` and ``target`` may be empty: real logs record failed logins that name no user
(PAM failures for unknown users, klogind), and those must be imported, not dropped."""

JSON_COLUMNS: tuple[str, ...] = ("params", "before", "after")

TEXT_SEARCH_COLUMNS: tuple[str, ...] = (
    "actor",
    "email",
    "action",
    "target",
    "ip",
    "description",
    "request_id",
    "error",
)
"""Columns that free words in a search match against (the error too: a detail shows "Error
message: invalid username or password", and a reader searches for what it says)."""

SORTABLE_COLUMNS: tuple[str, ...] = ("time", "actor", "type", "action", "target", "result")

WRITE_ACTIONS: frozenset[str] = frozenset(
    {
        "create",
        "update",
        "delete",
        "deploy",
        "rollback",
        "restore",
        "scale",
        "configure",
        "role_change",
        "permission_change",
        "password_change",
        "rotate",
        "revoke",
        "grant",
        "enable",
        "disable",
        "purge",
        "archive",
        "policy_change",
        "resize",
        "register",
        "remove",
    }
)
"""Actions that change something (the change history a reviewer checks)."""


def canonical_ip(text: str) -> str:
    """An address as the log stores it and an ``ip:`` search looks it up: ``ipaddress``'s
    form (``2001:0DB8::0001`` -> ``2001:db8::1``), and an IPv4 address written as IPv6
    (``::ffff:192.168.1.1``, as sshd and dual-stack servers log it) as the IPv4 address, so
    ``ip:192.168.1.1`` and ``ip:192.168.1.0/24`` find it. Raises ValueError for anything else.

    >>> canonical_ip("::ffff:192.168.1.1"), canonical_ip("2001:0DB8::0001"), canonical_ip("10.0.0.5")
    ('192.168.1.1', '2001:db8::1', '10.0.0.5')
    """
    address = ipaddress.ip_address(text)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


def empty_frame() -> pl.DataFrame:
    """An event frame with no rows and the right dtypes.

    >>> empty_frame().height
    0
    """
    return pl.DataFrame(schema=SCHEMA)


def conform(
    frame: pl.DataFrame | pl.LazyFrame,
    *,
    columns: Sequence[str] | None = None,
    categorical: Sequence[str] = (),
) -> pl.DataFrame:
    """Cast a frame whose columns are named as the schema to the schema's dtypes and order.

    Missing optional columns become nulls. Text times are not parsed here (ingest does that).
    ``columns`` keeps only those of the schema (in the schema's order). ``categorical`` text
    columns are read as ``pl.Categorical`` (each with its own categories) in a streaming
    pass, so a lazy source's text for them is never whole in memory: ``EventIndex`` takes
    them as its dictionary codes (at 10,000,000 events, email and description: 0.3 GB less).
    """
    lazy = frame.lazy()
    names = lazy.collect_schema().names()
    exprs = []
    for name, dtype in SCHEMA.items():
        if columns is not None and name not in columns:
            continue
        if name in categorical:
            dtype = pl.Categorical(pl.Categories.random())
        if name in names:
            exprs.append(pl.col(name).cast(dtype))
        else:
            exprs.append(pl.lit(None, dtype=dtype).alias(name))
    return lazy.select(exprs).collect(engine="streaming" if categorical else "auto")

"""Retention: policy → plan (dry run) → archive to Parquet → purge, and the record of each run.

A policy keeps each category for a number of days: by default 400 for the security-sensitive
group (auth, user, organization, audit, secret, vpn) and 90 for the operational rest. Legal
holds exempt categories or actors from deletion. Expired events are written to the archive
(:mod:`audit_analytics.io.archive`), the archive is read back and checked, and only then are
the events deleted from the database, in one transaction.

Crash safety: until the delete commits, every event is still in the database; the delete
removes only ids that were found in the archive. A rerun finds the ids already archived
(by any earlier run's parts) and does not write them again, so nothing is lost and nothing
is duplicated; readers deduplicate by id regardless.

Examples
--------
>>> from datetime import datetime, UTC
>>> from audit_analytics.engines.store import open_store
>>> from audit_analytics.demo.generate import generate
>>> import tempfile
>>> now = datetime(2026, 3, 1, tzinfo=UTC)
>>> store = open_store("sqlite://")
>>> _ = store.append(generate(2_000, seed=1, now=now, days=200).events)
>>> policy = Policy(archive=tempfile.mkdtemp())
>>> table = plan(store, policy, now=now)
>>> run = apply(store, policy, actor="doc", now=now)
>>> run.deleted == int(table["to_delete"].sum())
True
"""

from __future__ import annotations

import os
import secrets
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
import sqlalchemy as sa
import tomli_w
from polars.datatypes import DataTypeClass

from audit_analytics.engines import chain
from audit_analytics.engines.store import event_row
from audit_analytics.errors import PolicyError
from audit_analytics.fileio import atomic_write
from audit_analytics.io import archive as arch
from audit_analytics.schema import CATEGORIES, CATEGORY_CODES

if TYPE_CHECKING:
    from audit_analytics.engines.store import Store

__all__ = [
    "Policy",
    "policy_archive",
    "PolicyError",
    "RunResult",
    "DEFAULT_DAYS",
    "DEFAULT_ARCHIVE",
    "policy_file",
    "load_policy",
    "save_policy",
    "plan",
    "apply",
    "last_runs",
]

DEFAULT_DAYS: Mapping[str, int] = {"security": 400, "operational": 90}
DEFAULT_ARCHIVE = "data/archive"
DEFAULT_POLICY_FILE = "data/retention.toml"
RUN_ACTION = "retention"
POLICY_ACTION = "policy_change"


_POLICY_HEADER = """\
# Audit Analytics retention policy.
# archive: where expired events go (Hive-partitioned Parquet); empty = no archive.
# [days]: security = auth, user, organization, audit, secret, vpn; operational = the rest.
#   A category's own line overrides its group.
# [legal_hold]: categories and actors never deleted while on hold.

"""


MAX_DAYS = 36_500
"""The longest retention a policy may name (100 years)."""


@dataclass(frozen=True)
class Policy:
    """Days to keep per category, where expired events go, and what is on legal hold.

    Parameters
    ----------
    group_days
        Days for the ``security`` and ``operational`` groups.
    overrides
        Days for single categories, over their group's.
    archive
        The archive directory; ``None`` means expired events would be deleted unarchived
        (which :func:`apply` refuses unless told ``allow_without_archive=True``).
    hold_categories, hold_actors
        Legal holds: events of these categories, or by these actors, are never deleted.

    Examples
    --------
    >>> Policy().days_for("auth"), Policy().days_for("service")
    (400, 90)
    >>> Policy(overrides={"service": 30}).days_for("service")
    30
    """

    group_days: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_DAYS))
    overrides: Mapping[str, int] = field(default_factory=dict)
    archive: str | None = DEFAULT_ARCHIVE
    hold_categories: tuple[str, ...] = ()
    hold_actors: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for group in DEFAULT_DAYS:
            if group not in self.group_days:
                raise PolicyError(f"the policy needs days for the {group} group")
        for name, days in [*self.group_days.items(), *self.overrides.items()]:
            if name not in DEFAULT_DAYS and name not in CATEGORIES:
                raise PolicyError(
                    f"unknown category {name!r} in [days]; categories: {', '.join(CATEGORY_CODES)}"
                )
            if not isinstance(days, int) or isinstance(days, bool) or days < 1:
                raise PolicyError(f"days for {name!r} must be a whole number of at least 1, not {days!r}")
            if days > MAX_DAYS:
                # a cutoff before the year 1 cannot be computed: every plan and run failed
                raise PolicyError(f"days for {name!r} must be at most {MAX_DAYS:,} (100 years), not {days:,}")
        bad = [c for c in self.hold_categories if c not in CATEGORIES]
        if bad:
            raise PolicyError(f"unknown category {bad[0]!r} in [legal_hold]")
        object.__setattr__(self, "hold_categories", tuple(sorted(set(self.hold_categories))))
        object.__setattr__(
            self, "hold_actors", tuple(sorted({a.strip() for a in self.hold_actors if a.strip()}))
        )
        object.__setattr__(self, "archive", self.archive or None)

    def days_for(self, category: str) -> int:
        if category in self.overrides:
            return int(self.overrides[category])
        return int(self.group_days[CATEGORIES[category].retention_group])

    @property
    def days(self) -> dict[str, int]:
        return {c: self.days_for(c) for c in CATEGORY_CODES}

    def cutoffs(self, now: datetime) -> dict[str, datetime]:
        """Per category, the instant before which events have expired."""
        return {c: now - timedelta(days=d) for c, d in self.days.items()}

    def replace(self, **changes: Any) -> Policy:
        return replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        """Plain data, as written to the file and to audit events."""
        return {
            "archive": self.archive or "",
            "days": dict(self.group_days) | dict(sorted(self.overrides.items())),
            "legal_hold": {"categories": list(self.hold_categories), "actors": list(self.hold_actors)},
        }

    def to_toml(self) -> str:
        """The policy file's text, written by ``tomli_w`` (any path or actor name is escaped,
        so the file always loads back to the same policy).

        >>> policy = Policy(archive='a "b"\\\\\\x7f', hold_actors=("o'brien\\n\U0001f600",))
        >>> Policy.from_toml(policy.to_toml()) == policy
        True
        """
        fields = [("archive", self.archive or ""), *(("[legal_hold] actors", a) for a in self.hold_actors)]
        for name, value in fields:
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise PolicyError(
                    f"{name} {value!r} holds bytes that are not UTF-8 text; a policy file cannot hold it"
                ) from None
        return _POLICY_HEADER + tomli_w.dumps(self.as_dict())

    @classmethod
    def from_toml(cls, text: str, *, source: str = "policy") -> Policy:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise PolicyError(f"{source}: not valid TOML ({exc})") from None
        unknown = set(data) - {"archive", "days", "legal_hold"}
        if unknown:
            raise PolicyError(f"{source}: unknown key {sorted(unknown)[0]!r} (archive, [days], [legal_hold])")
        days = dict(data.get("days") or {})
        group_days = {g: days.pop(g, DEFAULT_DAYS[g]) for g in DEFAULT_DAYS}
        hold = data.get("legal_hold") or {}
        archive = data.get("archive", DEFAULT_ARCHIVE)
        try:
            return cls(
                group_days=group_days,
                overrides=days,
                archive=str(archive) if archive else None,
                hold_categories=tuple(hold.get("categories") or ()),
                hold_actors=tuple(hold.get("actors") or ()),
            )
        except PolicyError as exc:
            raise PolicyError(f"{source}: {exc}") from None


def policy_file(path: str | Path | None = None) -> Path | None:
    """The policy file in use: ``path``, else ``AUDIT_RETENTION_POLICY``, else
    ``data/retention.toml`` when it exists, else None (the defaults)."""
    if path:
        return Path(path)
    env = os.environ.get("AUDIT_RETENTION_POLICY")
    if env:
        return Path(env)
    default = Path(DEFAULT_POLICY_FILE)
    return default if default.is_file() else None


def load_policy(path: str | Path | None = None) -> Policy:
    """The policy from :func:`policy_file` (the defaults when there is none)."""
    found = policy_file(path)
    if found is None:
        return Policy()
    try:
        text = found.read_text(encoding="utf-8")
    except FileNotFoundError:
        if path:  # named explicitly: say so
            raise PolicyError(f"no policy file at {found}") from None
        return Policy()
    return Policy.from_toml(text, source=str(found))


def policy_archive() -> Path | None:
    """The policy's archive directory when it exists (None: no policy archive yet, or none
    named): where `integrity verify` and the app's Verify now read archived events back."""
    policy = load_policy()
    if policy.archive and Path(policy.archive).is_dir():
        return Path(policy.archive)
    return None


def save_policy(
    path: str | Path | None, policy: Policy, *, actor: str, store: Store, via: str = "app"
) -> Path:
    """Write the policy (atomically) and record the change (``audit``/``policy_change``,
    before and after: the file's own text when it could not be read as a policy, the file
    being mended)."""
    target = policy_file(path) or Path(DEFAULT_POLICY_FILE)
    before: dict[str, Any]
    try:
        before = (load_policy(target) if target.is_file() else Policy()).as_dict()
    except PolicyError as exc:
        before = {"unreadable": str(exc), "text": target.read_text(encoding="utf-8", errors="replace")[:4000]}
    atomic_write(target, policy.to_toml())
    store.record(
        actor=actor,
        type="audit",
        action=POLICY_ACTION,
        target=str(target),
        params={"via": via},
        before=before,
        after=policy.as_dict(),
        description=f"{actor} changed the retention policy",
    )
    return target


# ---------------------------------------------------------------------------------------
# plan


def _held(policy: Policy, t: sa.Table) -> sa.ColumnElement[bool]:
    conds = []
    if policy.hold_categories:
        conds.append(t.c.type.in_(list(policy.hold_categories)))
    if policy.hold_actors:
        wanted = [a.lower() for a in policy.hold_actors]
        conds.append(sa.func.lower(sa.func.coalesce(t.c.actor, "")).in_(wanted))
    return sa.or_(*conds) if conds else sa.false()


def _expired(
    policy: Policy, t: sa.Table, now: datetime, categories: Sequence[str] | None = None
) -> sa.ColumnElement[bool]:
    cutoffs = policy.cutoffs(now)
    cats = categories or CATEGORY_CODES
    return sa.or_(*[sa.and_(t.c.type == c, t.c.time < cutoffs[c]) for c in cats])


def _to_remove(
    policy: Policy, t: sa.Table, now: datetime, categories: Sequence[str] | None = None
) -> sa.ColumnElement[bool]:
    return sa.and_(_expired(policy, t, now, categories), sa.not_(_held(policy, t)))


PLAN_SCHEMA: dict[str, pl.DataType | DataTypeClass] = {
    "category": pl.String,
    "group": pl.String,
    "days": pl.Int64,
    "cutoff": pl.Datetime("us", "UTC"),
    "events": pl.Int64,
    "expired": pl.Int64,
    "held": pl.Int64,
    "to_archive": pl.Int64,
    "to_delete": pl.Int64,
    "oldest_kept": pl.Datetime("us", "UTC"),
    "next_expiry": pl.Datetime("us", "UTC"),
}


def plan(store: Store, policy: Policy, *, now: datetime | None = None) -> pl.DataFrame:
    """The dry run: per category, how many events are past retention, how many of those a
    legal hold keeps, how many would be archived and deleted, the oldest event kept and
    when the next one expires. Counted in SQL; nothing is changed.

    Columns: category, group, days, cutoff, events, expired, held, to_archive, to_delete,
    oldest_kept, next_expiry.
    """
    from audit_analytics.engines.store import UTCDateTime

    now = now or datetime.now(UTC)
    t = store.table
    remove = _to_remove(policy, t, now)
    expired_held = sa.and_(_expired(policy, t, now), _held(policy, t))
    kept_time = sa.case((sa.not_(remove), t.c.time), else_=None)
    expiring_time = sa.case((sa.and_(sa.not_(remove), sa.not_(_held(policy, t))), t.c.time), else_=None)
    stmt = sa.select(
        t.c.type,
        sa.func.count(),
        sa.func.sum(sa.case((remove, 1), else_=0)),
        sa.func.sum(sa.case((expired_held, 1), else_=0)),
        sa.type_coerce(sa.func.min(kept_time), UTCDateTime()),
        sa.type_coerce(sa.func.min(expiring_time), UTCDateTime()),
    ).group_by(t.c.type)
    utc = pl.Datetime("us", "UTC")
    counted = store.frame(
        stmt,
        {
            "type": pl.String,
            "n": pl.Int64,
            "remove": pl.Int64,
            "held": pl.Int64,
            "kept": utc,
            "expiring": utc,
        },
    )
    found = {r[0]: r[1:] for r in counted.iter_rows()}
    rows = []
    for cat in CATEGORY_CODES:
        days = policy.days_for(cat)
        events, remove_n, held_n, oldest, expiring = found.get(cat, (0, 0, 0, None, None))
        remove_n, held_n = int(remove_n or 0), int(held_n or 0)
        rows.append(
            {
                "category": cat,
                "group": CATEGORIES[cat].retention_group,
                "days": days,
                "cutoff": now - timedelta(days=days),
                "events": int(events),
                "expired": remove_n + held_n,
                "held": held_n,
                "to_archive": remove_n if policy.archive else 0,
                "to_delete": remove_n,
                "oldest_kept": oldest,
                "next_expiry": expiring + timedelta(days=days) if expiring else None,
            }
        )
    return pl.DataFrame(rows, schema=PLAN_SCHEMA)


# ---------------------------------------------------------------------------------------
# apply


@dataclass(frozen=True)
class RunResult:
    """What a retention run did."""

    run_id: str
    archived: int
    already_archived: int
    deleted: int
    by_category: dict[str, int]
    parts: tuple[arch.WrittenPart, ...]
    event_id: str
    chain: dict[str, Any] = field(default_factory=dict)


def _run_id(now: datetime) -> str:
    return f"{now.astimezone(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def _select(store: Store, where: sa.ColumnElement[bool]) -> pl.DataFrame:
    t = store.table
    return store.select_frame(sa.select(t).where(where).order_by(t.c.time, t.c.id))


def apply(
    store: Store,
    policy: Policy,
    *,
    actor: str,
    now: datetime | None = None,
    allow_without_archive: bool = False,
    via: str = "cli",
    before_delete: Callable[[], None] | None = None,
    expected: int | None = None,
) -> RunResult:
    """Archive the expired events, verify the archive, then delete them in one transaction;
    record the run (``audit``/``retention``, done or failed).

    ``expected``: the number of events the person running it confirmed (the dry run's "to
    delete" at ``now``). When the events due differ (events imported meanwhile, or the
    policy changed), nothing is archived or deleted and :class:`PolicyError` says so: a run
    never deletes more than was confirmed. ``before_delete`` is called after the archive is
    verified and before the delete (a test raises there to prove that a crash at that point
    loses and duplicates nothing).
    """
    now = now or datetime.now(UTC)
    run_id = _run_id(now)
    root = Path(policy.archive) if policy.archive else None
    params: dict[str, Any] = {"via": via, "run": run_id, "policy": policy.as_dict(), "now": now.isoformat()}
    if root is None and not allow_without_archive:
        raise PolicyError(
            "the policy names no archive: expired events would be lost. Set `archive` in the policy, "
            "or pass --delete-without-archive to delete them anyway"
        )

    def success(result: RunResult) -> pl.DataFrame:
        done = params | {
            "archived": result.archived,
            "already_archived": result.already_archived,
            "deleted": result.deleted,
            "by_category": result.by_category,
            "parts": [str(p.path.relative_to(root)) for p in result.parts] if root else [],
            "chain": result.chain,
        }
        return event_row(
            actor=actor,
            type="audit",
            action=RUN_ACTION,
            target=str(root) if root else "(no archive)",
            params=done,
            description=f"{actor}'s retention run archived {result.archived:,} and deleted {result.deleted:,} events",
        )

    if expected is not None:
        due = int(plan(store, policy, now=now)["to_delete"].sum())
        if due != expected:
            raise PolicyError(
                f"{due:,} events are due now, not the {expected:,} confirmed (events were imported or "
                "the policy changed meanwhile); nothing was archived or deleted: look at the dry run "
                "and confirm again"
            )
    try:
        result = _apply(store, policy, root, now, run_id, before_delete, success)
    except BaseException as exc:
        store.record(
            actor=actor,
            type="audit",
            action=RUN_ACTION,
            target=str(root) if root else "(no archive)",
            result="failed",
            params=params,
            error=f"{type(exc).__name__}: {exc}"[:1000],
            description=f"{actor}'s retention run {run_id} failed; nothing was deleted",
        )
        raise
    return result


def _apply(
    store: Store,
    policy: Policy,
    root: Path | None,
    now: datetime,
    run_id: str,
    before_delete: Callable[[], None] | None,
    success: Callable[[RunResult], pl.DataFrame],
) -> RunResult:
    """Archive, verify, then in one transaction: delete, mark the deleted events' chain rows
    with the run, and store the run's own event (whose params name how many chain rows the
    run marked and their digest, so that ``integrity.verify`` can account for them)."""
    t = store.table
    if root is not None:
        root.mkdir(parents=True, exist_ok=True)
        for stale in root.glob("category=*/month=*/*.tmp"):  # a crash mid-write left it
            stale.unlink(missing_ok=True)
    doomed: list[str] = []
    by_category: dict[str, int] = {}
    parts: list[arch.WrittenPart] = []
    archived = already = 0
    for cat in CATEGORY_CODES:
        rows = _select(store, _to_remove(policy, t, now, [cat]))
        if rows.height == 0:
            continue
        ids = rows["id"].to_list()
        if root is not None:
            months = rows.select(pl.col("time").dt.strftime("%Y-%m").alias("m"), "id")
            have: set[str] = set()
            for (month,), group in months.group_by(["m"]):
                have |= arch.archived_ids(root, cat, month) & set(group["id"].to_list())
            parts += arch.write_partitions(root, rows, run_id=run_id, skip_ids=have)
            archived += rows.height - len(have)
            already += len(have)
            _verify(root, cat, months)
        doomed += ids
        by_category[cat] = len(ids)
    with store.engine.begin() as conn:
        links = chain.links_of(conn, store.chain, doomed)
        covering = chain.batches_covering(conn, store.batches, links)
    if root is not None and doomed:
        arch.write_chain(root, run_id, links, covering)
    if before_delete is not None:
        before_delete()
    deleted = 0
    result = RunResult(run_id, archived, already, 0, by_category, tuple(parts), "")
    with store.engine.begin() as conn:
        chain.lock(conn)
        if doomed:
            deleted = store.delete_ids(conn, doomed)
            if deleted != len(doomed):  # another run got there first: roll back, rerun later
                raise arch.ArchiveError(
                    f"expected to delete {len(doomed):,} events but found {deleted:,}; nothing was deleted"
                )
            marked = chain.mark_archived(conn, store.chain, links, run_id)
            if marked != links.height:
                raise arch.ArchiveError(
                    f"expected to mark {links.height:,} chain rows as archived but marked {marked:,}; "
                    "nothing was deleted"
                )
        result = replace(
            result,
            deleted=deleted,
            chain={"archived_events": links.height, "archived_sha256": chain.archived_digest(links)},
        )
        record = success(result)
        store.append_in(conn, record, source=f"audit/{RUN_ACTION} {run_id}")
    return replace(result, event_id=str(record["id"][0]))


def _verify(root: Path, category: str, months: pl.DataFrame) -> None:
    """Every id about to be deleted is in its partition (count and id checksum agree)."""
    for (month,), group in months.group_by(["m"]):
        wanted = set(group["id"].to_list())
        found = arch.archived_ids(root, category, month) & wanted
        if len(found) != len(wanted) or arch.ids_checksum(found) != arch.ids_checksum(wanted):
            raise arch.ArchiveError(
                f"archive check failed for {category} {month}: {len(found):,} of {len(wanted):,} events found"
            )


def last_runs(store: Store, *, limit: int = 20) -> pl.DataFrame:
    """The latest retention runs and policy changes, newest first (from the store's events)."""
    from audit_analytics.filters import Filter

    frame = store.load(Filter(types=("audit",), query=f"action:{RUN_ACTION} action:{POLICY_ACTION}"))
    frame = frame.filter(pl.col("id").str.starts_with("aa-")).sort("time", descending=True).head(limit)
    return frame.select("time", "actor", "action", "result", "description", "params", "error", "id")

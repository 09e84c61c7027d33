"""Tamper evidence: verify the hash chain, make signed checkpoints that leave the database.

The chain itself (its tables, the canonical form of an event, the batch digest) is written by
:mod:`audit_analytics.engines.chain` as events are stored. This module reads it back:

- :func:`verify` recomputes every event's hash and every batch's digest and names what no
  longer matches: an edited event, a deleted event, an event inserted behind the package's
  back, a changed, removed, added or reordered batch. A truncated tail (the newest batches
  removed with their events and chain rows) leaves a chain that is consistent in itself: only
  a checkpoint kept elsewhere reveals it, so pass one.
- :func:`make_checkpoint` gives the latest batch, its digest and the event count, signed
  with an Ed25519 key when one is configured, for an operator to keep outside the database.
- Events that retention archived and deleted stay in the chain, marked with the run; the run's
  own (chained) event names how many and their digest, and the archive's copy of them is
  checked too when the archive is given.

Examples
--------
>>> from audit_analytics.engines.store import open_store
>>> from audit_analytics.demo.generate import generate
>>> store = open_store("sqlite://")
>>> _ = store.append(generate(1_000, seed=1).events)
>>> verify(store).ok
True
>>> with store.engine.begin() as conn:
...     _ = conn.exec_driver_sql("UPDATE audit_events SET actor = 'mallory' WHERE id = "
...                              "(SELECT id FROM audit_events ORDER BY time LIMIT 1)")
>>> [(p.kind, p.batch, len(p.ids)) for p in verify(store).problems]
[('edited', 1, 1)]
"""

from __future__ import annotations

import base64
import json
import os
import time as clock
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
import sqlalchemy as sa

from audit_analytics.engines import chain
from audit_analytics.errors import IntegrityError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

    from audit_analytics.engines.store import Store

__all__ = [
    "CHECKPOINT_FORMAT",
    "Checkpoint",
    "Head",
    "IntegrityError",
    "Problem",
    "Verification",
    "VERIFY_ACTION",
    "CHECKPOINT_ACTION",
    "generate_key",
    "head",
    "last_verification",
    "load_private_key",
    "load_public_key",
    "make_checkpoint",
    "read_checkpoints",
    "signing_key_path",
    "verify",
    "verify_key_path",
]

CHECKPOINT_FORMAT = "audit-analytics-checkpoint/1"
VERIFY_ACTION = "integrity_verify"
CHECKPOINT_ACTION = "integrity_checkpoint"
RETENTION_ACTION = "retention"  # io.retention.RUN_ACTION (not imported: retention imports us)
MAX_IDS = 1_000  # ids kept per problem (the count is always exact)
OWN_ID_PREFIX = "aa-"  # the ids of the package's own events (Store.record)


# ---------------------------------------------------------------------------------------
# the head of the chain


@dataclass(frozen=True, slots=True)
class Head:
    """Where the chain ends: the latest batch, its digest, and how many events were stored."""

    batch: int
    events: int
    digest: str
    stored_at: str | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        if not self.batch:
            return "empty chain"
        return f"batch {self.batch:,}, {self.events:,} events stored, digest {self.digest[:16]}…"


def head(store: Store) -> Head:
    """The chain's head now (batch 0 and the genesis digest when nothing is stored)."""
    with store.engine.connect() as conn:
        last = chain.last_batch(conn, store.batches)
    if last is None:
        return Head(0, 0, chain.GENESIS, None)
    return Head(last.batch, last.last_seq, last.digest, last.stored_at)


# ---------------------------------------------------------------------------------------
# verification


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing that no longer matches.

    ``kind`` is one of ``edited``, ``deleted``, ``inserted`` (events), ``batch`` (a batch's
    digest or count), ``link`` (a batch does not follow the one before), ``gap`` (batches or
    sequence numbers missing), ``archive``, ``truncated``, ``checkpoint`` and ``signature``.
    """

    kind: str
    message: str
    batch: int | None = None
    ids: tuple[str, ...] = ()
    count: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "batch": self.batch,
            "count": self.count,
            "message": self.message,
            "ids": list(self.ids),
        }


@dataclass
class Verification:
    """What :func:`verify` found."""

    head: Head
    batches: int = 0
    events: int = 0
    archived: int = 0
    checkpoints: int = 0
    archive_checked: int = 0
    problems: list[Problem] = field(default_factory=list)
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first_batch(self) -> int | None:
        """The earliest batch named by a problem."""
        named = [p.batch for p in self.problems if p.batch is not None]
        return min(named) if named else None

    def summary(self) -> str:
        what = (
            f"{self.batches:,} batch{'' if self.batches == 1 else 'es'} and "
            f"{self.events:,} event{'' if self.events == 1 else 's'} checked"
            + (f", {self.archived:,} archived events accounted for" if self.archived else "")
            + (
                f", {self.archive_checked:,} of them read back from the archive"
                if self.archive_checked
                else ""
            )
            + (f", against {self.checkpoints} checkpoint(s)" if self.checkpoints else "")
        )
        if self.ok:
            return f"verified: {what}; the chain ends at {self.head}"
        first = f" (first at batch {self.first_batch:,})" if self.first_batch is not None else ""
        return f"NOT verified: {len(self.problems)} problem(s){first}; {what}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "summary": self.summary(),
            "head": self.head.as_dict(),
            "batches": self.batches,
            "events": self.events,
            "archived": self.archived,
            "archive_checked": self.archive_checked,
            "checkpoints": self.checkpoints,
            "first_batch": self.first_batch,
            "seconds": round(self.seconds, 3),
            "problems": [p.as_dict() for p in self.problems],
            "notes": self.notes,
        }


def _problem(kind: str, message: str, *, batch: int | None = None, ids: Sequence[str] = ()) -> Problem:
    return Problem(kind, message, batch, tuple(ids[:MAX_IDS]), len(ids))


def _ids_text(ids: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(ids[:limit])
    return shown + (f" and {len(ids) - limit:,} more" if len(ids) > limit else "")


def verify(
    store: Store,
    *,
    checkpoints: Sequence[Checkpoint] = (),
    archive: str | Path | None = None,
    public_key: Ed25519PublicKey | None = None,
) -> Verification:
    """Recompute the chain over everything stored and report what no longer matches.

    Events stored while this runs are left for the next run: only chain rows that existed
    before the events were read are checked against them.
    """
    started = clock.perf_counter()
    t_chain, t_batches = store.chain, store.batches
    with store.engine.connect() as conn:
        top = int(conn.execute(sa.select(sa.func.max(t_chain.c.seq))).scalar() or 0)
    # every event's hash now, a batch at a time: only (id, hash) is kept (at 1,000,000 events
    # holding the whole table took 1.8 GB)
    now_parts: list[pl.DataFrame] = []
    claims: dict[str, Mapping[str, Any]] = {}
    for frame in store.iter_frames():
        now_parts.append(frame.select("id", pl.Series("now", chain.event_hashes(frame), dtype=pl.String)))
        claims |= _retention_claims(frame)
    now = pl.concat(now_parts) if now_parts else pl.DataFrame(schema={"id": pl.String, "now": pl.String})
    with store.engine.connect() as conn:
        batch_rows = [chain.Batch(*r) for r in conn.execute(sa.select(t_batches).order_by(t_batches.c.batch))]
    links = store.chain_rows()
    last = batch_rows[-1] if batch_rows else None
    report = Verification(
        Head(last.batch, last.last_seq, last.digest, last.stored_at)
        if last
        else Head(0, 0, chain.GENESIS, None)
    )
    report.batches = len(batch_rows)
    _check_batches(batch_rows, links, report)
    covered_to = last.last_seq if last else 0
    _check_events(now, links, covered_to=covered_to, top=top, batches=batch_rows, report=report)
    _check_archived(claims, links, report, archive=archive)
    for cp in checkpoints:
        _check_checkpoint(cp, batch_rows, report, public_key)
    report.checkpoints = len(checkpoints)
    if not checkpoints:
        report.notes.append(
            "no checkpoint given: a truncated tail (the newest batches removed whole) is only "
            "detectable against a checkpoint kept outside the database"
        )
    report.seconds = clock.perf_counter() - started
    return report


def _check_batches(batches: list[chain.Batch], links: pl.DataFrame, report: Verification) -> None:
    """Numbering, linkage, seq ranges, counts and digests of every batch."""
    seqs = links["seq"].to_numpy()
    hashes = links["hash"].to_list()
    import numpy as np

    prev: chain.Batch | None = None
    for b in batches:
        expected = prev.batch + 1 if prev else 1
        if b.batch != expected:
            report.problems.append(
                _problem(
                    "gap",
                    f"batch {b.batch:,} follows batch {expected - 1:,}: batches {expected:,}–{b.batch - 1:,} are missing",
                    batch=b.batch,
                )
            )
        want_prev = prev.digest if prev else chain.GENESIS
        if b.prev_digest != want_prev:
            report.problems.append(
                _problem(
                    "link",
                    f"batch {b.batch:,} does not follow the batch before it: it names the previous digest "
                    f"{b.prev_digest[:16]}…, the previous batch's digest is {want_prev[:16]}… "
                    "(batches removed, inserted, reordered or rewritten)",
                    batch=b.batch,
                )
            )
        want_first = prev.last_seq + 1 if prev else 1
        if b.first_seq != want_first:
            report.problems.append(
                _problem(
                    "gap",
                    f"batch {b.batch:,} starts at event {b.first_seq:,}, not {want_first:,}",
                    batch=b.batch,
                )
            )
        lo, hi = np.searchsorted(seqs, b.first_seq, "left"), np.searchsorted(seqs, b.last_seq, "right")
        members = hashes[lo:hi]
        contiguous = hi - lo == b.last_seq - b.first_seq + 1
        if len(members) != b.events or not contiguous:
            report.problems.append(
                _problem(
                    "batch",
                    f"batch {b.batch:,} recorded {b.events:,} events (positions {b.first_seq:,}–{b.last_seq:,}); "
                    f"the chain holds {len(members):,} of them (chain rows removed or added)",
                    batch=b.batch,
                )
            )
        if chain.batch_digest(b.prev_digest, members, b.trailer) != b.digest:
            report.problems.append(
                _problem(
                    "batch",
                    f"batch {b.batch:,}'s digest does not match its chain rows and fields "
                    "(an event's recorded hash, its order or the batch's own fields were changed)",
                    batch=b.batch,
                )
            )
        prev = b


def _with_batch(links: pl.DataFrame, batches: list[chain.Batch]) -> pl.DataFrame:
    """``links`` with a ``batch`` column: the batch whose range starts at or before each row's
    ``seq`` (an as-of join, so a tampered table with overlapping or unordered ranges still
    gets an answer, never an error)."""
    starts = pl.DataFrame(
        {"first_seq": [b.first_seq for b in batches], "batch": [b.batch for b in batches]},
        schema={"first_seq": pl.Int64, "batch": pl.Int64},
    )
    starts = starts.sort("first_seq", "batch").unique("first_seq", keep="first", maintain_order=True)
    return (
        links.sort("seq")
        .join_asof(starts, left_on="seq", right_on="first_seq", strategy="backward")
        .drop("first_seq")
    )


def _check_events(
    now: pl.DataFrame,
    links: pl.DataFrame,
    *,
    covered_to: int,
    top: int,
    batches: list[chain.Batch],
    report: Verification,
) -> None:
    """Each stored event (``id``, ``now``: its hash now) against its chain row: edited,
    deleted, inserted."""
    checked = links.filter(pl.col("seq") <= top)
    live = checked.filter(pl.col("archived").is_null())
    report.events = live.height
    live = _with_batch(live, batches)
    # chain rows no batch covers, stored before the events were read: added behind our back
    loose = live.filter(pl.col("seq") > covered_to)
    if loose.height:
        report.problems.append(
            _problem(
                "inserted",
                f"{loose.height:,} chain row(s) after the last batch belong to no batch: "
                f"{_ids_text(loose['id'].to_list())}",
                ids=loose["id"].to_list(),
            )
        )
    live = live.filter(pl.col("seq") <= covered_to)
    dupes = live.filter(pl.col("id").is_duplicated())
    if dupes.height:
        report.problems.append(
            _problem(
                "inserted",
                f"{dupes['id'].n_unique():,} event id(s) appear more than once in the chain: "
                f"{_ids_text(dupes['id'].unique(maintain_order=True).to_list())}",
                batch=int(dupes["batch"].min()) if dupes["batch"].null_count() < dupes.height else None,  # type: ignore[arg-type]
                ids=dupes["id"].unique(maintain_order=True).to_list(),
            )
        )
    joined = live.join(now, on="id", how="left")
    for kind, rows, what in (
        ("deleted", joined.filter(pl.col("now").is_null()), "deleted from the table"),
        (
            "edited",
            joined.filter(pl.col("now").is_not_null() & (pl.col("now") != pl.col("hash"))),
            "changed since they were stored",
        ),
    ):
        for (batch,), group in rows.sort("seq").group_by(["batch"], maintain_order=True):
            ids = group["id"].to_list()
            report.problems.append(
                _problem(
                    kind,
                    f"batch {batch:,}: {len(ids):,} event(s) {what}: {_ids_text(ids)}",
                    batch=batch,
                    ids=ids,
                )
            )
    in_chain = links.select("id").unique()
    strays = now.join(in_chain, on="id", how="anti")
    if strays.height:
        ids = strays["id"].to_list()
        report.problems.append(
            _problem(
                "inserted",
                f"{len(ids):,} event(s) in the table are in no batch of the chain (inserted behind the "
                f"package's back): {_ids_text(ids)}",
                ids=ids,
            )
        )


def _retention_claims(events: pl.DataFrame) -> dict[str, Mapping[str, Any]]:
    """run id -> the ``chain`` part of each successful retention run's params."""
    runs = events.filter(
        (pl.col("type").cast(pl.String) == "audit")
        & (pl.col("action") == RETENTION_ACTION)
        & (pl.col("result").cast(pl.String) == "done")
        & pl.col("params").is_not_null()
    )
    claims: dict[str, Mapping[str, Any]] = {}
    for text in runs["params"].to_list():
        try:
            params = json.loads(text)
        except ValueError:
            continue
        if isinstance(params, dict) and isinstance(params.get("chain"), dict) and params.get("run"):
            claims[str(params["run"])] = params["chain"]
    return claims


def _check_archived(
    claims: Mapping[str, Mapping[str, Any]],
    links: pl.DataFrame,
    report: Verification,
    *,
    archive: str | Path | None,
) -> None:
    """Chain rows marked archived: each run's count and digest match its own chained event;
    with the archive, each archived event's hash matches its chain row."""
    marked = links.filter(pl.col("archived").is_not_null())
    report.archived = marked.height
    if marked.height == 0:
        return
    for (run,), rows in marked.group_by(["archived"], maintain_order=True):
        claim = claims.get(str(run))
        ids = rows["id"].to_list()
        if claim is None:
            report.problems.append(
                _problem(
                    "archive",
                    f"{rows.height:,} chain row(s) are marked as archived by retention run {run}, "
                    f"which no recorded retention run names: {_ids_text(ids)}",
                    ids=ids,
                )
            )
            continue
        if int(claim.get("archived_events", -1)) != rows.height or claim.get(
            "archived_sha256"
        ) != chain.archived_digest(rows):
            report.problems.append(
                _problem(
                    "archive",
                    f"retention run {run} archived {claim.get('archived_events')} event(s); "
                    f"{rows.height:,} chain row(s) are now marked with it, or their hashes changed",
                    ids=ids,
                )
            )
    if archive is None:
        report.notes.append(
            f"{marked.height:,} archived events were checked against their retention runs' records; "
            "pass the archive to check the archived events themselves"
        )
        return
    from audit_analytics.io import archive as arch

    root = Path(archive)
    if not root.is_dir():
        report.problems.append(_problem("archive", f"the archive folder {root} does not exist"))
        return
    stored = arch.scan(root).collect()
    now = stored.select("id", pl.Series("now", chain.event_hashes(stored), dtype=pl.String))
    joined = marked.join(now, on="id", how="left")
    report.archive_checked = int(joined["now"].is_not_null().sum())
    missing = joined.filter(pl.col("now").is_null())["id"].to_list()
    changed = joined.filter(pl.col("now").is_not_null() & (pl.col("now") != pl.col("hash")))["id"].to_list()
    if missing:
        report.problems.append(
            _problem(
                "archive",
                f"{len(missing):,} archived event(s) are not in the archive {root}: {_ids_text(missing)}",
                ids=missing,
            )
        )
    if changed:
        report.problems.append(
            _problem(
                "archive",
                f"{len(changed):,} archived event(s) were changed in the archive {root}: {_ids_text(changed)}",
                ids=changed,
            )
        )


# ---------------------------------------------------------------------------------------
# checkpoints and keys


@dataclass(frozen=True)
class Checkpoint:
    """The chain's head at a moment, for keeping outside the database; signed when a key is
    configured (Ed25519 over the canonical JSON of every other field)."""

    batch: int
    events: int
    digest: str
    stored_at: str | None
    made_at: str
    database: str
    format: str = CHECKPOINT_FORMAT
    public_key: str | None = None
    signature: str | None = None

    def payload(self) -> bytes:
        fields = {k: v for k, v in asdict(self).items() if k != "signature"}
        return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, ensure_ascii=False)

    def signed(self, key: Ed25519PrivateKey) -> Checkpoint:
        from dataclasses import replace

        unsigned = replace(self, public_key=public_key_text(key.public_key()), signature=None)
        return replace(unsigned, signature=base64.b64encode(key.sign(unsigned.payload())).decode())

    def signature_ok(self, key: Ed25519PublicKey | None = None) -> bool:
        """Whether the signature is valid for ``key`` (or, without one, for the key the
        checkpoint names: that proves only that the file was not edited, not who made it)."""
        from cryptography.exceptions import InvalidSignature

        if not self.signature or not self.public_key:
            return False
        if key is not None and public_key_text(key) != self.public_key:
            return False
        named = key or _public_from_text(self.public_key)
        try:
            named.verify(base64.b64decode(self.signature), self.payload())
        except (InvalidSignature, ValueError):
            return False
        return True

    @classmethod
    def from_json(cls, text: str, *, where: str = "checkpoint") -> Checkpoint:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise IntegrityError(f"{where}: not JSON ({exc})") from None
        if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT:
            raise IntegrityError(f"{where}: not an Audit Analytics checkpoint (format {CHECKPOINT_FORMAT})")
        known = {f for f in cls.__dataclass_fields__}
        try:
            return cls(**{k: v for k, v in data.items() if k in known})
        except TypeError as exc:
            raise IntegrityError(f"{where}: {exc}") from None


def make_checkpoint(
    store: Store, *, key: Ed25519PrivateKey | None = None, now: datetime | None = None
) -> Checkpoint:
    """The chain's head now, signed with ``key`` when given."""
    h = head(store)
    cp = Checkpoint(
        batch=h.batch,
        events=h.events,
        digest=h.digest,
        stored_at=h.stored_at,
        made_at=chain.stored_at_text(now or datetime.now(UTC)),
        database=store.safe_url,
    )
    return cp.signed(key) if key is not None else cp


def read_checkpoints(path: str | Path) -> list[Checkpoint]:
    """Every checkpoint in a file (one JSON object per line, as ``--append`` writes, or one
    JSON document)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise IntegrityError(f"cannot read the checkpoint file {p}: {exc.strerror or exc}") from None
    if not text.strip():
        raise IntegrityError(f"the checkpoint file {p} is empty")
    try:  # one (pretty-printed) JSON document
        whole = json.loads(text)
    except ValueError:
        whole = None
    if isinstance(whole, dict):
        return [Checkpoint.from_json(text, where=str(p))]
    out = []
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            out.append(Checkpoint.from_json(line, where=f"{p} line {number}"))
    return out


def _check_checkpoint(
    cp: Checkpoint, batches: list[chain.Batch], report: Verification, key: Ed25519PublicKey | None
) -> None:
    if cp.signature or key is not None:
        if not cp.signature_ok(key):
            whose = "the configured public key" if key is not None else "the key it names"
            report.problems.append(
                _problem(
                    "signature",
                    f"the checkpoint of {cp.made_at} (batch {cp.batch:,}) is not validly signed by {whose}",
                )
            )
    found = next((b for b in batches if b.batch == cp.batch), None)
    last = batches[-1].batch if batches else 0
    if found is None and cp.batch > last:
        report.problems.append(
            _problem(
                "truncated",
                f"the checkpoint of {cp.made_at} names batch {cp.batch:,} ({cp.events:,} events stored); "
                f"the database's chain ends at batch {last:,}: its tail was removed",
                batch=last + 1,
            )
        )
    elif found is None or found.digest != cp.digest or found.last_seq != cp.events:
        report.problems.append(
            _problem(
                "checkpoint",
                f"batch {cp.batch:,} does not match the checkpoint of {cp.made_at}: the chain was "
                "rewritten from there on",
                batch=cp.batch,
            )
        )


def signing_key_path() -> Path | None:
    """``AUDIT_SIGNING_KEY``: the Ed25519 private key (PEM) that signs checkpoints."""
    value = os.environ.get("AUDIT_SIGNING_KEY")
    return Path(value) if value else None


def verify_key_path() -> Path | None:
    """``AUDIT_VERIFY_KEY``: the Ed25519 public key (PEM) checkpoints must be signed with."""
    value = os.environ.get("AUDIT_VERIFY_KEY")
    return Path(value) if value else None


def generate_key(path: str | Path) -> str:
    """Write a new Ed25519 private key (PEM, owner-only) to ``path``; -> its public key text.
    Refuses to overwrite a file."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    p = Path(path)
    if p.exists():
        raise IntegrityError(f"{p} exists; not overwriting a key")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    p.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    p.with_name(p.name + ".pub").write_bytes(public)
    return public.decode()


def load_private_key(path: str | Path) -> Ed25519PrivateKey:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    data = _read_key(path)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise IntegrityError(f"{path}: not an unencrypted PEM private key ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise IntegrityError(f"{path}: not an Ed25519 key")
    return key


def load_public_key(path: str | Path) -> Ed25519PublicKey:
    """An Ed25519 public key (PEM), or the public half of a private key file."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    data = _read_key(path)
    if b"PRIVATE KEY" in data:
        return load_private_key(path).public_key()
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError as exc:
        raise IntegrityError(f"{path}: not a PEM public key ({exc})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise IntegrityError(f"{path}: not an Ed25519 key")
    return key


def _read_key(path: str | Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise IntegrityError(f"cannot read the key {path}: {exc.strerror or exc}") from None


def public_key_text(key: Ed25519PublicKey) -> str:
    from cryptography.hazmat.primitives import serialization

    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def _public_from_text(text: str) -> Ed25519PublicKey:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    return Ed25519PublicKey.from_public_bytes(base64.b64decode(text))


# ---------------------------------------------------------------------------------------
# the record of verifications


def record_verification(store: Store, report: Verification, *, actor: str, via: str) -> str:
    """Record a verification as an ``audit``/``integrity_verify`` event (itself chained)."""
    summary = report.as_dict()
    summary["problems"] = [
        {k: (v[:20] if k == "ids" else v) for k, v in p.items()} for p in summary["problems"][:50]
    ]
    return store.record(
        actor=actor,
        type="audit",
        action=VERIFY_ACTION,
        target=store.safe_url,
        result="done" if report.ok else "failed",
        params={"via": via, **summary},
        error=None if report.ok else report.summary(),
        description=f"{actor} verified the audit log's hash chain: {report.summary()}",
    )


def last_verification(store: Store, *, now: datetime | None = None) -> dict[str, Any] | None:
    """The newest recorded verification: its time, actor, result and the report's summary
    (``ok``, ``summary``, ``problems``, ``notes``, ``via``…), or None. Only the package's own
    events count (ids ``aa-…``, as for retention runs and sign-ins) and none dated after
    ``now``: an imported event that calls itself a verification must not stand in for one."""
    t = store.table
    stmt = (
        sa.select(t.c.time, t.c.actor, t.c.result, t.c.params)
        .where(
            t.c.type == "audit",
            t.c.action == VERIFY_ACTION,
            t.c.id.startswith(OWN_ID_PREFIX, autoescape=True),
            t.c.time <= (now or datetime.now(UTC)),
        )
        .order_by(t.c.time.desc(), t.c.id.desc())
        .limit(1)
    )
    found = store.select_frame(stmt, ("time", "actor", "result", "params"))
    if found.height == 0:
        return None
    row = found.row(0, named=True)
    try:
        params = json.loads(row["params"]) if row["params"] else {}
    except ValueError:
        params = {}
    if not isinstance(params, dict):
        params = {}
    return {**params, "time": row["time"], "actor": row["actor"], "result": row["result"]}

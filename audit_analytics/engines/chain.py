"""The hash chain over the stored events: every write is a batch whose digest covers each of
its events and the batch before it.

Two tables live beside ``audit_events``, in the same database:

``audit_chain``
    one row per stored event: ``seq`` (1, 2, 3, … in the order events were stored), ``id``,
    ``hash`` (SHA-256 of the event's canonical form, hex) and ``archived`` (the retention run
    that archived and deleted the event, else NULL).
``audit_batches``
    one row per write (an import, a demo load, one of the app's own events): ``batch``
    (1, 2, 3, …), ``first_seq``/``last_seq``, ``events``, ``stored_at``, ``source``,
    ``prev_digest`` (the previous batch's digest; 64 zeros for the first) and ``digest``.

The **canonical form** of an event is ``json.dumps(event, sort_keys=True, separators=(",",
":"), ensure_ascii=False)`` over all fifteen columns, ``time`` as integer UTC microseconds,
``type`` and ``result`` as text and a missing value as ``null``; its hash is the SHA-256 of
its UTF-8 bytes. The text is built for a whole batch at once by polars (``struct.json_encode``
gives exactly ``json.dumps``'s text: tests/test_integrity.py checks it on hostile values).

A **batch digest** is the SHA-256 of these lines, each ended by ``\\n``: the previous digest;
the hash of each event in ``seq`` order; ``batch=… first=… last=… events=… stored_at=…
source="…"``. Anyone can recompute it from the two tables and the events, without this
package.

Writers serialise on the chain (SQLite: the write lock, which an insert already takes;
PostgreSQL: a transaction-scoped advisory lock), so batches never interleave.

Examples
--------
>>> import polars as pl
>>> frame = pl.DataFrame({"id": ["e1"], "time": [0], "type": ["auth"], "action": ["login"],
...                       "result": ["done"]}).with_columns(pl.from_epoch("time", "us").dt.replace_time_zone("UTC"))
>>> canonical(frame)[0][:60]
'{"action":"login","actor":null,"after":null,"before":null,"d'
>>> len(event_hashes(frame)[0])
64
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import polars as pl
import sqlalchemy as sa

from audit_analytics.schema import COLUMNS, conform

__all__ = [
    "BATCH_TABLE",
    "CHAIN_TABLE",
    "GENESIS",
    "Batch",
    "ChainWriter",
    "batch_digest",
    "batch_trailer",
    "canonical",
    "event_hashes",
    "hashes_by_hashlib",
    "archived_digest",
    "batches_covering",
    "insert_chain_rows",
    "links_of",
    "mark_archived",
    "last_batch",
    "lock",
    "make_tables",
    "seal_existing",
    "stored_at_text",
    "SEALED_SOURCE",
]

CHAIN_TABLE = "audit_chain"
BATCH_TABLE = "audit_batches"
GENESIS = "0" * 64
SEALED_SOURCE = "sealed: events stored before the hash chain"
PG_LOCK_KEY = 7_140_263_019  # the advisory lock writers take on PostgreSQL
INSERT_ROWS = 50_000  # chain rows per executemany / COPY round
_PIECE = 16_384  # rows per piece of a batch being hashed


def _big() -> sa.types.TypeEngine[int]:
    # SQLite's rowid alias must be INTEGER exactly; elsewhere 64-bit
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def make_tables(metadata: sa.MetaData) -> tuple[sa.Table, sa.Table]:
    """``audit_chain`` and ``audit_batches`` on ``metadata``."""
    chain = sa.Table(
        CHAIN_TABLE,
        metadata,
        sa.Column("seq", _big(), primary_key=True, autoincrement=False),
        sa.Column("id", sa.String(200), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("archived", sa.String(80)),
    )
    batches = sa.Table(
        BATCH_TABLE,
        metadata,
        sa.Column("batch", _big(), primary_key=True, autoincrement=False),
        sa.Column("first_seq", _big(), nullable=False),
        sa.Column("last_seq", _big(), nullable=False),
        sa.Column("events", _big(), nullable=False),
        sa.Column("stored_at", sa.String(40), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("prev_digest", sa.String(64), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
    )
    return chain, batches


# ---------------------------------------------------------------------------------------
# hashing


def canonical(frame: pl.DataFrame) -> pl.Series:
    """Each event's canonical JSON text (see the module's docstring), built by polars."""
    frame = conform(frame)
    fields = [
        (pl.col("time").dt.epoch("us") if c == "time" else pl.col(c).cast(pl.String)).alias(c)
        for c in sorted(COLUMNS)
    ]
    return frame.select(pl.struct(fields).struct.json_encode().alias("canonical")).to_series()


def event_hashes(frame: pl.DataFrame) -> list[str]:
    """SHA-256 (hex) of each event's canonical form, in the frame's order: hashed by the
    polars-hash plugin in Rust, for the whole frame at once (3x faster than ``hashlib`` per
    row, the same digests: tests/test_integrity.py), else by ``hashlib``."""
    # in pieces: polars encodes and hashes the pieces in parallel (2x faster here at 200,000)
    pieces = [frame.slice(i, _PIECE) for i in range(0, frame.height, _PIECE)] or [frame]
    texts = canonical(pl.concat(pieces, rechunk=False))
    try:
        import polars_hash
    except ImportError:  # pragma: no cover - a dependency; the tests check both paths agree
        return hashes_by_hashlib(texts)
    hashed: list[str] = texts.to_frame("t").select(polars_hash.col("t").chash.sha2_256())["t"].to_list()
    return hashed


def hashes_by_hashlib(texts: pl.Series) -> list[str]:
    """The reference: SHA-256 (hex) of each text's UTF-8 bytes, one ``hashlib`` call each."""
    sha = hashlib.sha256
    return [sha(text.encode("utf-8")).hexdigest() for text in texts]


def batch_trailer(batch: int, first: int, last: int, events: int, stored_at: str, source: str) -> str:
    """The batch's own line, the last one its digest covers."""
    quoted = json.dumps(source, ensure_ascii=False)
    return f"batch={batch} first={first} last={last} events={events} stored_at={stored_at} source={quoted}"


def batch_digest(prev: str, hashes: Iterable[str], trailer: str) -> str:
    """The digest of one batch from the previous digest, its events' hashes and its trailer."""
    digest = hashlib.sha256(f"{prev}\n".encode())
    for part in _chunks(hashes, 10_000):
        digest.update("".join(h + "\n" for h in part).encode())
    digest.update(f"{trailer}\n".encode())
    return digest.hexdigest()


def _chunks(items: Iterable[str], size: int) -> Iterator[list[str]]:
    part: list[str] = []
    for item in items:
        part.append(item)
        if len(part) == size:
            yield part
            part = []
    if part:
        yield part


def stored_at_text(when: datetime) -> str:
    """A batch's ``stored_at``: UTC, microseconds, ISO 8601 (the text its digest covers)."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# ---------------------------------------------------------------------------------------
# writing


@dataclass(frozen=True, slots=True)
class Batch:
    """One stored batch, as its row in ``audit_batches``."""

    batch: int
    first_seq: int
    last_seq: int
    events: int
    stored_at: str
    source: str
    prev_digest: str
    digest: str

    @property
    def trailer(self) -> str:
        return batch_trailer(
            self.batch, self.first_seq, self.last_seq, self.events, self.stored_at, self.source
        )


def lock(conn: sa.Connection) -> None:
    """Serialise chain writers for the rest of ``conn``'s transaction."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": PG_LOCK_KEY})
    else:  # any write statement takes SQLite's write lock, even one that changes nothing
        conn.execute(sa.text(f"UPDATE {BATCH_TABLE} SET batch = batch WHERE 1 = 0"))  # noqa: S608


def last_batch(conn: sa.Connection, batches: sa.Table) -> Batch | None:
    row = conn.execute(sa.select(batches).order_by(batches.c.batch.desc()).limit(1)).first()
    return Batch(*row) if row is not None else None


class ChainWriter:
    """Chains the rows one transaction stores, as one batch.

    Call :meth:`add` with the rows that were actually inserted (in any order; they get the
    next ``seq`` numbers in that order), then :meth:`finish` before the commit. Nothing is
    written for a transaction that stored nothing.
    """

    def __init__(self, conn: sa.Connection, chain: sa.Table, batches: sa.Table, *, source: str) -> None:
        self.conn = conn
        self.chain = chain
        self.batches = batches
        self.source = source
        self.started = False
        self.count = 0
        self.batch = 0
        self.first = 0
        self.prev = GENESIS
        self.digest = hashlib.sha256()

    def start(self) -> None:
        lock(self.conn)
        last = last_batch(self.conn, self.batches)
        top = self.conn.execute(sa.select(sa.func.max(self.chain.c.seq))).scalar()
        self.batch = (last.batch if last else 0) + 1
        self.prev = last.digest if last else GENESIS
        self.first = max(int(top or 0), last.last_seq if last else 0) + 1
        self.digest = hashlib.sha256(f"{self.prev}\n".encode())
        self.started = True

    def add(self, rows: pl.DataFrame, *, hashes: Sequence[str] | None = None) -> None:
        """Chain ``rows`` (stored in this transaction); ``hashes``: their
        :func:`event_hashes`, when the caller computed them already (an import does, ahead)."""
        if rows.height == 0:
            return
        if not self.started:
            self.start()
        if hashes is None:
            hashes = event_hashes(rows)
        elif len(hashes) != rows.height:
            raise ValueError(f"{len(hashes)} hashes for {rows.height} rows")
        seq0 = self.first + self.count
        records = list(zip(range(seq0, seq0 + len(hashes)), rows["id"].to_list(), hashes, strict=True))
        insert_chain_rows(self.conn, records)
        for part in _chunks(hashes, 10_000):
            self.digest.update("".join(h + "\n" for h in part).encode())
        self.count += len(hashes)

    def finish(self, *, now: datetime | None = None) -> Batch | None:
        if not self.count:
            return None
        stored_at = stored_at_text(now or datetime.now(UTC))
        last = self.first + self.count - 1
        trailer = batch_trailer(self.batch, self.first, last, self.count, stored_at, self.source)
        self.digest.update(f"{trailer}\n".encode())
        batch = Batch(
            self.batch,
            self.first,
            last,
            self.count,
            stored_at,
            self.source,
            self.prev,
            self.digest.hexdigest(),
        )
        self.conn.execute(sa.insert(self.batches).values(**_as_dict(batch)))
        return batch


def _as_dict(batch: Batch) -> dict[str, Any]:
    return {name: getattr(batch, name) for name in Batch.__slots__}


def insert_chain_rows(conn: sa.Connection, records: Sequence[tuple[int, str, str]]) -> None:
    """Bulk-insert ``(seq, id, hash)`` rows (SQLite: ``executemany``; PostgreSQL: ``COPY``)."""
    raw: Any = conn.connection.driver_connection
    sql = f"INSERT INTO {CHAIN_TABLE} (seq, id, hash) VALUES "  # noqa: S608 - fixed names
    if conn.dialect.name == "postgresql":
        with raw.cursor() as cur, cur.copy(f"COPY {CHAIN_TABLE} (seq, id, hash) FROM STDIN") as copy:
            for record in records:
                copy.write_row(record)
        return
    cur = raw.cursor()
    try:
        for start in range(0, len(records), INSERT_ROWS):
            cur.executemany(sql + "(?, ?, ?)", records[start : start + INSERT_ROWS])
    finally:
        cur.close()


def seal_existing(
    conn: sa.Connection, chain: sa.Table, batches: sa.Table, frames: Iterable[pl.DataFrame]
) -> Batch | None:
    """On a database whose events were stored before the chain existed, chain them all as
    batch 1 (source ``sealed: events stored before the hash chain``). ``frames`` is read
    only once the lock is held and no batch exists (the store passes its events, oldest
    first). Their state at this moment is what the chain then proves; nothing can prove what
    happened to them before."""
    lock(conn)
    if last_batch(conn, batches) is not None:
        return None
    writer = ChainWriter(conn, chain, batches, source=SEALED_SOURCE)
    for frame in frames:
        writer.add(frame)
    return writer.finish()


# ---------------------------------------------------------------------------------------
# retention: archived events keep their chain rows, marked with the run


LINKS_SCHEMA = pl.Schema({"seq": pl.Int64, "id": pl.String, "hash": pl.String})


def links_of(conn: sa.Connection, chain: sa.Table, ids: Sequence[str]) -> pl.DataFrame:
    """The chain rows (``seq``, ``id``, ``hash``) of these stored events, in ``seq`` order
    (rows already marked archived are left out). The ids travel through a temporary table:
    the chain has no index on ``id`` (it would cost every import)."""
    if not ids:
        return pl.DataFrame(schema=LINKS_SCHEMA)
    conn.exec_driver_sql("CREATE TEMP TABLE IF NOT EXISTS _aa_ids (id VARCHAR(200) PRIMARY KEY)")
    conn.exec_driver_sql("DELETE FROM _aa_ids")
    conn.execute(sa.text("INSERT INTO _aa_ids (id) VALUES (:id)"), [{"id": i} for i in dict.fromkeys(ids)])
    rows = conn.execute(
        sa.text(
            f"SELECT c.seq, c.id, c.hash FROM {chain.name} c JOIN _aa_ids t ON t.id = c.id "  # noqa: S608
            "WHERE c.archived IS NULL ORDER BY c.seq"
        )
    ).all()
    conn.exec_driver_sql("DELETE FROM _aa_ids")
    return pl.DataFrame(rows, schema=LINKS_SCHEMA, orient="row")


def batches_covering(conn: sa.Connection, batches: sa.Table, links: pl.DataFrame) -> list[Batch]:
    """The batches that hold any of these chain rows, in order."""
    if links.height == 0:
        return []
    lo, hi = int(links["seq"].min()), int(links["seq"].max())  # type: ignore[arg-type]
    rows = conn.execute(
        sa.select(batches)
        .where(batches.c.last_seq >= lo, batches.c.first_seq <= hi)
        .order_by(batches.c.batch)
    ).all()
    seqs = links["seq"]
    return [Batch(*r) for r in rows if bool(seqs.is_between(r.first_seq, r.last_seq).any())]


def mark_archived(conn: sa.Connection, chain: sa.Table, links: pl.DataFrame, run_id: str) -> int:
    """Mark these chain rows as archived by ``run_id``; -> how many were marked."""
    marked = 0
    seqs = links["seq"].to_list()
    for start in range(0, len(seqs), 500):
        chunk = seqs[start : start + 500]
        marked += conn.execute(
            sa.update(chain).where(chain.c.seq.in_(chunk), chain.c.archived.is_(None)).values(archived=run_id)
        ).rowcount
    return marked


def archived_digest(links: pl.DataFrame) -> str:
    """SHA-256 over ``seq hash`` lines, in ``seq`` order, of a retention run's archived chain
    rows: what the run's own event records as ``chain.archived_sha256``."""
    digest = hashlib.sha256()
    for seq, hashed in links.sort("seq").select("seq", "hash").iter_rows():
        digest.update(f"{seq} {hashed}\n".encode())
    return digest.hexdigest()

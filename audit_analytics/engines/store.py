"""The store: an ``audit_events`` table behind any SQLAlchemy URL.

SQLite (an embedded file, the default) and PostgreSQL are tested. Counts, pages and filtered
reads are evaluated in SQL from the same :class:`~audit_analytics.filters.Filter` that the
polars engine runs; values always travel as bound parameters.

Examples
--------
>>> from audit_analytics import open_store, Filter
>>> from audit_analytics.demo.generate import generate
>>> store = open_store("sqlite://")          # in memory
>>> store.append(generate(1_000, seed=3).events).inserted
1000
>>> store.count(Filter(types=("auth",))) == store.load().filter(pl.col("type") == "auth").height
True
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import polars as pl
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from audit_analytics.engines import chain
from audit_analytics.engines.contract import NEWEST_FIRST, STREAM_ROWS
from audit_analytics.engines.memory import in_time_order
from audit_analytics.errors import StoreError
from audit_analytics.filters import Filter, Sort, sql_after, sql_order_by, sql_where
from audit_analytics.schema import COLUMNS, DETAIL_COLUMNS, SCHEMA, conform

__all__ = [
    "Store",
    "open_store",
    "require_existing",
    "default_url",
    "event_row",
    "AppendResult",
    "TABLE_NAME",
]

TABLE_NAME = "audit_events"
DEFAULT_URL = "sqlite:///data/audit.db"
DETAIL_CHUNK = 500  # ids per query when fetching detail columns (SQLite binds at most 999)
# a write waits this long for readers: a whole-table load holds a read lock (9 s at 5M, 30-60 s
# at 10M in memory mode on 2 busy cores); at 30 s a sign-in during the first load at 10M failed
SQLITE_BUSY_SECONDS = 120
CONNECTORX_ATTEMPTS = 2  # reads through connectorx before the generic path
LOAD_BATCH_ROWS = 200_000  # rows per Arrow batch when loading the whole table
LOAD_THREADS = 2  # SQLite: reads of the whole table at once, each over a range of rowids
DETAIL_RANGE_MIN = 1_000  # ids from which reading their time range may beat reading by id
DETAIL_RANGE_FACTOR = 3  # ... when the range holds at most this many events per id
DETAILS_SCHEMA = pl.Schema({"id": pl.String} | {c: pl.String for c in DETAIL_COLUMNS})


def default_url() -> str:
    """``AUDIT_DB_URL`` when set, else an SQLite file at ``data/audit.db``."""
    return os.environ.get("AUDIT_DB_URL") or DEFAULT_URL


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Aware UTC date-times in, aware UTC date-times out, on every engine.

    SQLite keeps text without an offset, so values are converted to UTC before they are
    written or compared (text order is then time order).
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | str | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def make_table(metadata: sa.MetaData) -> sa.Table:
    """The ``audit_events`` table and its indexes, on ``metadata``."""
    text = sa.Text
    return sa.Table(
        TABLE_NAME,
        metadata,
        sa.Column("id", sa.String(200), primary_key=True),
        sa.Column("time", UTCDateTime(), nullable=False),
        sa.Column("actor", text),
        sa.Column("email", text),
        sa.Column("type", sa.String(20), nullable=False),
        sa.Column("action", text, nullable=False),
        sa.Column("target", text),
        sa.Column("result", sa.String(12), nullable=False),
        sa.Column("ip", sa.String(64)),
        sa.Column("request_id", text),
        sa.Column("description", text),
        sa.Column("params", text),
        sa.Column("before", text),
        sa.Column("after", text),
        sa.Column("error", text),
        sa.Index("ix_audit_events_time", "time"),
        sa.Index("ix_audit_events_type_time", "type", "time"),
        sa.Index("ix_audit_events_type_result_time", "type", "result", "time"),
        sa.Index("ix_audit_events_actor", "actor"),
        sa.Index("ix_audit_events_ip", "ip"),
        sa.Index("ix_audit_events_request_id", "request_id"),
    )


def _py_lower(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


@dataclass(frozen=True, slots=True)
class AppendResult:
    """What an append did: ``inserted + duplicates == offered``."""

    offered: int
    inserted: int
    duplicates: int


class Store:
    """An audit-event table behind a SQLAlchemy engine. Use :func:`open_store`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.metadata = sa.MetaData()
        self.table = make_table(self.metadata)
        self.chain, self.batches = chain.make_tables(self.metadata)
        try:
            self.metadata.create_all(engine)
            self._seal_existing()
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"cannot open the audit table at {self.safe_url}: {_short(exc)}") from exc

    def _seal_existing(self) -> None:
        """Events stored before the hash chain existed are chained once, as batch 1 (see
        :func:`~audit_analytics.engines.chain.seal_existing`)."""
        with self.engine.connect() as conn:
            if conn.execute(sa.select(self.batches.c.batch).limit(1)).first() is not None:
                return
        if self.page(limit=1).height == 0:  # the newest event, found on the time index
            return
        with self.engine.begin() as conn:
            chain.seal_existing(conn, self.chain, self.batches, self._frames_in(conn))

    def _frames_in(
        self, conn: sa.Connection, rows: int = 50_000, *, ordered: bool = True
    ) -> Iterator[pl.DataFrame]:
        """Every stored event (oldest first unless not ``ordered``), as frames of ``rows``
        events, read on ``conn``."""
        t = self.table
        stmt = sa.select(*(t.c[c] for c in COLUMNS))
        stmt = stmt.order_by(t.c.time, t.c.id) if ordered else stmt
        # on the statement, not the connection: Connection.execution_options changes the
        # connection itself, and PostgreSQL then ran the chain's inserts that follow on this
        # connection as server-side cursors ("DECLARE … CURSOR FOR INSERT": a syntax error)
        result = conn.execute(stmt.execution_options(yield_per=rows))
        for part in result.partitions():
            yield _rows_frame(part, COLUMNS)

    # -- identity ------------------------------------------------------------------------
    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def safe_url(self) -> str:
        """The URL with any password hidden (for messages and manifests)."""
        return self.engine.url.render_as_string(hide_password=True)

    def __repr__(self) -> str:
        return f"Store({self.safe_url!r})"

    # -- writing -------------------------------------------------------------------------
    def append(self, frame: pl.DataFrame, *, chunk_size: int = 2_000, source: str = "append") -> AppendResult:
        """Insert events idempotently by ``id``, all in one transaction, as one batch of the
        hash chain (``source`` says what stored it; see :mod:`~audit_analytics.engines.chain`).

        Rows whose id is already stored (or repeated in ``frame``) are duplicates: they add
        nothing and are counted. Large batches go through a temporary staging table (bulk
        load, then one ``INSERT … SELECT … ON CONFLICT DO NOTHING``), so the count of
        inserted rows is exact even with concurrent writers.
        """
        frame = conform(frame)
        offered = frame.height
        unique = frame.unique(subset="id", keep="first", maintain_order=True)
        try:
            with self.engine.begin() as conn:
                inserted = self.append_in(conn, unique, chunk_size=chunk_size, source=source)
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"could not write to {self.safe_url}: {_short(exc)}") from exc
        return AppendResult(offered, inserted, offered - inserted)

    def append_in(
        self, conn: sa.Connection, unique: pl.DataFrame, *, chunk_size: int = 2_000, source: str = "append"
    ) -> int:
        """:meth:`append` inside the caller's transaction (rows with distinct ids): inserts,
        chains what was inserted as one batch, and returns how many rows that was."""
        if unique.height == 0:
            return 0
        ids = self.insert_new(conn, unique, chunk_size=chunk_size)
        writer = chain.ChainWriter(conn, self.chain, self.batches, source=source)
        writer.add(unique.filter(pl.col("id").is_in(ids)) if len(ids) < unique.height else unique)
        writer.finish()
        return len(ids)

    def insert_new(self, conn: sa.Connection, unique: pl.DataFrame, *, chunk_size: int = 2_000) -> list[str]:
        """Insert the rows (distinct ids) whose id is not stored yet, inside ``conn``'s
        transaction; -> the ids inserted. The one insert of :meth:`append_in` and the import
        (which chains what this returns)."""
        if unique.height == 0:
            return []
        if self.dialect in ("sqlite", "postgresql") and unique.height > chunk_size:
            return self._append_staged(conn, unique)
        return self._append_rows(conn, unique, chunk_size)

    def delete_ids(self, conn: sa.Connection, ids: Sequence[str]) -> int:
        """Delete the events with these ids inside ``conn``'s transaction (the chain's: see
        :mod:`audit_analytics.io.retention`); -> how many were deleted."""
        t = self.table
        deleted = 0
        for start in range(0, len(ids), DETAIL_CHUNK):
            chunk = list(ids[start : start + DETAIL_CHUNK])
            deleted += conn.execute(sa.delete(t).where(t.c.id.in_(chunk))).rowcount
        return deleted

    def _append_rows(self, conn: sa.Connection, unique: pl.DataFrame, chunk_size: int) -> list[str]:
        insert = self._insert_ignore()
        inserted: list[str] = []
        for start in range(0, unique.height, chunk_size):
            result = conn.execute(insert, _rows_for_insert(unique.slice(start, chunk_size)))
            inserted += cast(list[str], result.scalars().all())
        return inserted

    def _append_staged(self, conn: sa.Connection, unique: pl.DataFrame) -> list[str]:
        """The one staged insert: bulk-load the rows into an empty temporary table (SQLite:
        ``executemany``; PostgreSQL: ``COPY``), then one ``INSERT … SELECT … ON CONFLICT DO
        NOTHING RETURNING id``, whose rows are exactly the ids added."""
        cols = ", ".join(f'"{c}"' for c in COLUMNS)
        staged = unique.with_columns(pl.col("type", "result").cast(pl.String))
        sqlite_db = self.dialect == "sqlite"
        if sqlite_db:
            # the text form SQLAlchemy's SQLite DateTime stores (naive UTC, microseconds)
            staged = staged.with_columns(
                pl.col("time").dt.convert_time_zone("UTC").dt.strftime("%Y-%m-%d %H:%M:%S.%6f")
            )
            create = (
                f"CREATE TEMP TABLE IF NOT EXISTS _aa_incoming AS SELECT {cols} FROM {TABLE_NAME} WHERE 0"  # noqa: S608
            )
        else:  # emptied by each commit
            create = f"CREATE TEMP TABLE IF NOT EXISTS _aa_incoming (LIKE {TABLE_NAME}) ON COMMIT DELETE ROWS"
        raw = conn.connection.driver_connection
        assert raw is not None
        cur = raw.cursor()
        try:
            cur.execute(create)
            if sqlite_db:
                cur.execute("DELETE FROM _aa_incoming")
                marks = ", ".join("?" for _ in COLUMNS)
                cur.executemany(f"INSERT INTO _aa_incoming ({cols}) VALUES ({marks})", staged.iter_rows())  # noqa: S608
            else:
                cur.execute("TRUNCATE _aa_incoming")
                with cur.copy(f"COPY _aa_incoming ({cols}) FROM STDIN") as copy:
                    for row in staged.iter_rows():
                        copy.write_row(row)
            # "WHERE true": SQLite reads ON CONFLICT after a bare SELECT as a join's ON;
            # rows in id order fill the primary key's index page by page
            cur.execute(
                f"INSERT INTO {TABLE_NAME} ({cols}) SELECT {cols} FROM _aa_incoming WHERE true "  # noqa: S608
                "ORDER BY id ON CONFLICT (id) DO NOTHING RETURNING id"
            )
            inserted = [r[0] for r in cur.fetchall()]
            cur.execute("DELETE FROM _aa_incoming")
        finally:
            cur.close()
        return inserted

    def _insert_ignore(self) -> sa.sql.dml.ReturningInsert[tuple[str]]:
        t = self.table
        stmt: sqlite.Insert | postgresql.Insert
        if self.dialect == "sqlite":
            stmt = sqlite.insert(t).on_conflict_do_nothing(index_elements=["id"])
        elif self.dialect == "postgresql":
            stmt = postgresql.insert(t).on_conflict_do_nothing(index_elements=["id"])
        else:  # pragma: no cover - other engines come with the scale issue
            raise StoreError(f"appending to {self.dialect} is not supported yet")
        return stmt.returning(t.c.id)

    def record(
        self,
        *,
        actor: str,
        type: str,
        action: str,
        target: str = "",
        result: str = "done",
        params: Mapping[str, object] | None = None,
        description: str = "",
        email: str | None = None,
        ip: str | None = None,
        error: str | None = None,
        before: Mapping[str, object] | None = None,
        after: Mapping[str, object] | None = None,
    ) -> str:
        """Write one event about the tool's own use (the audit of the audit); returns its id."""
        row = event_row(
            actor=actor,
            type=type,
            action=action,
            target=target,
            result=result,
            params=params,
            description=description,
            email=email,
            ip=ip,
            error=error,
            before=before,
            after=after,
        )
        self.append(row, source=f"{type}/{action} by {actor}")
        return str(row["id"][0])

    # -- reading -------------------------------------------------------------------------
    def _where(self, flt: Filter | None, now: datetime | None) -> sa.ColumnElement[bool]:
        if flt is None:
            return sa.true()
        return sql_where(flt, self.table, now=now, distinct_ips=self.distinct_ips)

    def load(
        self,
        flt: Filter | None = None,
        *,
        now: datetime | None = None,
        columns: Sequence[str] | None = None,
        categorical: Sequence[str] = (),
    ) -> pl.DataFrame:
        """The (filtered) table as an event frame with the schema's dtypes, oldest first;
        ``columns`` reads only those (e.g. :data:`~audit_analytics.schema.SUMMARY_COLUMNS`);
        ``categorical`` text columns come as ``pl.Categorical`` (see ``schema.conform``),
        converted batch by batch as the whole table is read, so their text is never whole in
        memory (``EventIndex`` takes them as its codes)."""
        names = schema_columns(columns)
        stmt = (
            sa.select(*(self.table.c[c] for c in names))
            .where(self._where(flt, now))
            .order_by(self.table.c.time, self.table.c.id)
        )
        wanted = tuple(c for c in categorical if c in names)
        if flt is None and self.dialect in ("sqlite", "postgresql"):
            fast = self._load_connectorx(names, wanted)
            if fast is not None:
                return fast
        frame = self.select_frame(stmt, names)
        return conform(frame, columns=names, categorical=wanted) if wanted else frame

    def details(
        self, ids: Sequence[str], *, between: tuple[datetime, datetime] | None = None
    ) -> pl.DataFrame:
        """``id`` and the :data:`~audit_analytics.schema.DETAIL_COLUMNS` of the events with
        these ids (in no particular order; unknown ids are absent).

        With ``between`` (the ids' time range) and many ids, the rows are read by that range
        on the time index when it holds at most :data:`DETAIL_RANGE_FACTOR` times as many
        events as ids (an export of a period's newest rows: one query, 3x faster at 100,000
        rows than by id); otherwise the primary key finds them, :data:`DETAIL_CHUNK` at a time.
        """
        wanted = pl.Series("id", ids, dtype=pl.String)
        if between is not None and wanted.len() >= DETAIL_RANGE_MIN:
            found = self._details_in_range(between, limit=DETAIL_RANGE_FACTOR * wanted.len())
            if found is not None:
                return found.join(wanted.unique().to_frame(), on="id", how="semi")
        t = self.table
        parts = []
        for start in range(0, wanted.len(), DETAIL_CHUNK):
            chunk = wanted.slice(start, DETAIL_CHUNK).to_list()
            stmt = sa.select(t.c.id, *(t.c[c] for c in DETAIL_COLUMNS)).where(t.c.id.in_(chunk))
            parts.append(pl.DataFrame(self._rows(stmt), schema=DETAILS_SCHEMA, orient="row"))
        return pl.concat(parts) if parts else pl.DataFrame(schema=DETAILS_SCHEMA)

    def _details_in_range(self, between: tuple[datetime, datetime], *, limit: int) -> pl.DataFrame | None:
        """The detail columns of every event in the time range, or None when it holds more
        than ``limit`` events (counted on the time index, stopping at ``limit + 1``)."""
        t = self.table
        in_range = t.c.time.between(*between)
        capped = sa.select(sa.literal(1)).where(in_range).limit(limit + 1).subquery()
        with self._connect() as conn:
            if conn.execute(sa.select(sa.func.count()).select_from(capped)).scalar_one() > limit:
                return None
        rows = self._rows(sa.select(t.c.id, *(t.c[c] for c in DETAIL_COLUMNS)).where(in_range))
        return pl.DataFrame(rows, schema=DETAILS_SCHEMA, orient="row")

    @contextmanager
    def _snapshot(self) -> Iterator[Any]:
        """On SQLite, hold a read lock while connectorx reads: it does not take SQLite's locks
        itself, and an event committed while it read made it miss rows or see the file as
        "malformed" (tests/test_store.py). Writers wait meanwhile (busy timeout), as they
        would for any reader. Other databases give every query a snapshot of its own.

        Yields the connection that holds the lock (None elsewhere): read through it meanwhile.
        A new connection of this process would wait for a writer that is waiting for this
        lock, until the busy timeout failed one of them (the writer's commit, in a check)."""
        if self.dialect != "sqlite":
            yield None
            return
        import sqlite3

        guard = sqlite3.connect(
            self.engine.url.database or ":memory:", timeout=SQLITE_BUSY_SECONDS, isolation_level=None
        )
        try:
            guard.execute("BEGIN")
            guard.execute(f"SELECT 1 FROM {TABLE_NAME} LIMIT 1").fetchall()  # noqa: S608 - fixed text
            yield guard
        finally:
            guard.close()  # ends the transaction, releasing the lock

    def _rows(self, stmt: sa.Executable) -> list[tuple[Any, ...]]:
        """Every row of a statement whose columns are plain text, as tuples (the driver's
        rows, without SQLAlchemy's per-row objects)."""
        with self._connect() as conn:
            result = conn.execute(stmt)
            try:
                return cast(list[tuple[Any, ...]], result.cursor.fetchall())
            finally:
                result.close()

    @contextmanager
    def _connect(self) -> Iterator[sa.Connection]:
        try:
            with self.engine.connect() as conn:
                yield conn
        except (sa.exc.SQLAlchemyError, self.engine.dialect.loaded_dbapi.Error) as exc:
            raise StoreError(f"could not read from {self.safe_url}: {_short(exc)}") from exc

    def iter_frames(self, rows: int = LOAD_BATCH_ROWS) -> Iterator[pl.DataFrame]:
        """Every stored event with all its columns, in no particular order, at most ``rows``
        at a time, so memory is bounded by one batch (``integrity.verify`` reads the whole
        table this way). SQLite is read by rowid ranges, each under a read lock of its own, so
        a writer waits for one batch at most; other databases in one snapshot."""
        cols = ", ".join(f'"{c}"' for c in COLUMNS)
        if self.dialect != "sqlite":
            uri = self._connectorx_uri()
            if uri is not None:  # one snapshot, streamed as Arrow batches
                import connectorx

                sql = f"SELECT {cols} FROM {TABLE_NAME}"  # noqa: S608 - fixed text
                reader = connectorx.read_sql(uri, sql, return_type="arrow_stream", batch_size=rows)
                for batch in reader:
                    if batch.num_rows:
                        yield _normalise(_frame(pl.from_arrow(batch)))
                return
            with self._connect() as conn:
                yield from self._frames_in(conn, rows, ordered=False)
            return
        last = 0
        while True:
            # only integers this loop made go into the text
            sql = f'SELECT rowid AS "_rowid", {cols} FROM {TABLE_NAME} WHERE rowid > {last} ORDER BY rowid LIMIT {int(rows)}'  # noqa: S608
            frame = self._fixed_query(sql, ("_rowid", *COLUMNS))
            if frame.height == 0:
                return
            last = int(frame["_rowid"].max())  # type: ignore[arg-type]  # an integer column's max
            yield _normalise(frame.drop("_rowid"))

    def chain_rows(self) -> pl.DataFrame:
        """The whole ``audit_chain`` table (``seq``, ``id``, ``hash``, ``archived``), by ``seq``."""
        sql = f"SELECT seq, id, hash, archived FROM {chain.CHAIN_TABLE} ORDER BY seq"  # noqa: S608 - fixed text
        frame = self._fixed_query(sql, ("seq", "id", "hash", "archived"))
        return frame.with_columns(
            pl.col("seq").cast(pl.Int64), pl.col("id", "hash", "archived").cast(pl.String)
        )

    def _fixed_query(self, sql: str, names: tuple[str, ...]) -> pl.DataFrame:
        """A query whose text holds no user value, as a frame with columns ``names``:
        through connectorx when it can (on SQLite under a read lock), else SQLAlchemy."""
        uri = self._connectorx_uri()
        if uri is not None:
            import connectorx

            for _attempt in range(CONNECTORX_ATTEMPTS):
                try:
                    with self._snapshot():
                        table = connectorx.read_sql(uri, sql, return_type="arrow")
                    frame = _frame(pl.from_arrow(table))
                    if frame.columns == list(names):
                        return frame
                except (KeyboardInterrupt, SystemExit):
                    raise
                except BaseException:  # noqa: BLE001, S112 - a Rust panic: see _load_connectorx
                    continue
        with self._connect() as conn:
            rows = conn.exec_driver_sql(sql).all()
        text = {c: pl.String for c in names if c not in ("_rowid", "seq")}
        return pl.DataFrame(rows, schema=[(c, text.get(c, pl.Int64)) for c in names], orient="row")

    def _connectorx_uri(self) -> str | None:
        """The database as connectorx names it, or None (no connectorx, or SQLite in memory)."""
        try:
            import connectorx  # noqa: F401
        except ImportError:
            return None
        url = self.engine.url
        if self.dialect == "sqlite":
            if not url.database or url.database == ":memory:":
                return None
            return f"sqlite://{Path(url.database).resolve()}"
        return url.set(drivername="postgresql").render_as_string(hide_password=False)

    def _load_connectorx(
        self, names: tuple[str, ...] = COLUMNS, categorical: tuple[str, ...] = ()
    ) -> pl.DataFrame | None:
        """The whole table through connectorx (3x faster than row objects), read as a stream
        of Arrow batches converted one at a time (at 10,000,000 events the SQLite load's peak
        fell from 6.7 GB to 2.6 GB with the code-only columns as categoricals, and it is
        faster); no user values are involved, so the SQL text is fixed."""
        uri = self._connectorx_uri()
        if uri is None:
            return None
        import connectorx

        cols = ", ".join(f'"{c}"' for c in names)  # schema names only (checked by _columns)
        # in the table's own order, put in time order here: SQLite's ORDER BY "time", "id" took
        # 4.8 of the 5.3 s of loading 1,000,000 events; the read alone is 2.1 s, the sort 0.25
        sql = f"SELECT {cols} FROM {TABLE_NAME}"  # noqa: S608 - fixed text
        # one set of categories per column and load, shared by its batches (and threads)
        codes = [pl.col(c).cast(pl.Categorical(pl.Categories.random())) for c in categorical]
        copied = _copied_text([c for c in names if c not in categorical])

        def convert(batch: Any) -> pl.DataFrame:
            return _normalise(_frame(pl.from_arrow(batch)), names).with_columns(codes).with_columns(copied)

        def read(query: str) -> pl.DataFrame | None:
            table = connectorx.read_sql(uri, query, return_type="arrow")
            return convert(table) if table.num_rows else None

        for _attempt in range(CONNECTORX_ATTEMPTS):
            try:
                with self._snapshot() as guard:
                    ranges = self._rowid_ranges(guard)
                    if ranges is None:  # one stream of batches
                        reader = connectorx.read_sql(
                            uri, sql, return_type="arrow_stream", batch_size=LOAD_BATCH_ROWS
                        )
                        parts = [convert(batch) for batch in reader if batch.num_rows]
                    else:  # ranges of rowids read by threads at once, in order
                        threads = min(LOAD_THREADS, os.cpu_count() or 1, len(ranges))
                        with ThreadPoolExecutor(threads, thread_name_prefix="audit-load") as pool:
                            read_parts = pool.map(read, [sql + where for where in ranges])
                            parts = [part for part in read_parts if part is not None]
                break
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException:  # noqa: BLE001 - see below
                # connectorx reports a failed read as a Rust panic (a BaseException, not an
                # Exception); on SQLite an event written while it reads can make it see the
                # file as "malformed" (seen under load: the app writes sign-ins while a
                # session loads). It is an accelerator: try again, then the generic path.
                parts = None
        if not parts:
            return None  # failed twice, or an empty table (the generic path gives the dtypes)
        frame = pl.concat(parts, how="vertical", rechunk=False)
        del parts  # the batches' buffers are the frame's: the sort frees each column as it goes
        return _time_ordered(frame)

    def _rowid_ranges(self, guard: Any) -> list[str] | None:
        """How the whole-table load reads SQLite: ``WHERE`` clauses over ranges of
        :data:`LOAD_BATCH_ROWS` rowids, which :data:`LOAD_THREADS` threads read at once, each
        as one Arrow table (1,000,000 events: 0.8 s against 1.5 s in one read, and a stream of
        batches in threads gained little: its batches are handed over under the interpreter
        lock). None elsewhere, and for a table of one range: one stream of batches. The bounds
        are the table's own integers, written as integers, read through ``guard``, the
        connection of :meth:`_snapshot`."""
        if guard is None or min(LOAD_THREADS, os.cpu_count() or 1) < 2:
            return None
        low, high = guard.execute(f"SELECT min(rowid), max(rowid) FROM {TABLE_NAME}").fetchone()  # noqa: S608 - fixed text
        if low is None or high - low < LOAD_BATCH_ROWS:
            return None
        return [
            f" WHERE rowid >= {int(start)} AND rowid < {int(start + LOAD_BATCH_ROWS)}"
            for start in range(int(low), int(high) + 1, LOAD_BATCH_ROWS)
        ]

    def select_frame(
        self, stmt: sa.Executable, names: tuple[str, ...] = COLUMNS, *, conn: sa.Connection | None = None
    ) -> pl.DataFrame:
        """The rows of a SELECT of the ``names`` columns (by default the whole event) as an
        event frame with the schema's dtypes; read on ``conn`` when given (inside a writer's
        transaction: it sees the rows the transaction inserted)."""
        if conn is not None:
            rows = conn.execute(stmt).all()
        else:
            with self._connect() as own:
                rows = own.execute(stmt).all()
        if not rows:
            return conform(pl.DataFrame(schema=SCHEMA), columns=names)
        return _rows_frame(rows, names)

    def frame(self, stmt: sa.Executable, schema: Mapping[str, Any] | None = None) -> pl.DataFrame:
        """The rows of any SELECT as a frame: ``schema`` names and types its columns in
        select order (else the statement's own names, types as the driver gives them)."""
        with self._connect() as conn:
            result = conn.execute(stmt)
            names = list(schema.items()) if schema is not None else list(result.keys())
            return pl.DataFrame(result.all(), schema=names, orient="row")

    def events_by_id(self, ids: Sequence[str], *, conn: sa.Connection | None = None) -> pl.DataFrame:
        """The stored events with these ids, every column, in no particular order (unknown ids
        absent), :data:`DETAIL_CHUNK` ids a query; read on ``conn`` when given (see
        :meth:`select_frame`)."""
        t = self.table
        unique = list(dict.fromkeys(ids))
        parts = [
            self.select_frame(sa.select(t).where(t.c.id.in_(unique[start : start + DETAIL_CHUNK])), conn=conn)
            for start in range(0, len(unique), DETAIL_CHUNK)
        ]
        return pl.concat(parts) if parts else conform(pl.DataFrame(schema=SCHEMA))

    def scalar(self, stmt: sa.Executable) -> Any:
        """The one value of a one-row, one-column SELECT (None: no row)."""
        with self._connect() as conn:
            return conn.execute(stmt).scalar()

    def count(self, flt: Filter | None = None, *, now: datetime | None = None) -> int:
        """How many events pass the filter, counted in SQL."""
        stmt = sa.select(sa.func.count()).select_from(self.table).where(self._where(flt, now))
        try:
            with self.engine.connect() as conn:
                return int(conn.execute(stmt).scalar_one())
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"could not count in {self.safe_url}: {_short(exc)}") from exc

    def page(
        self,
        flt: Filter | None = None,
        sort: Sort = NEWEST_FIRST,
        *,
        offset: int = 0,
        limit: int = 100,
        now: datetime | None = None,
    ) -> pl.DataFrame:
        """One page of the filtered result in the given order (the whole result is sorted)."""
        if limit < 0 or offset < 0:
            raise ValueError("offset and limit must not be negative")
        order = sql_order_by(self.table, sort)
        stmt = sa.select(self.table).where(self._where(flt, now)).order_by(*order).offset(offset).limit(limit)
        return self.select_frame(stmt)

    def stream(
        self,
        flt: Filter | None = None,
        sort: Sort = NEWEST_FIRST,
        *,
        now: datetime | None = None,
        rows: int = STREAM_ROWS,
    ) -> Iterator[pl.DataFrame]:
        """Every event passing ``flt``, every column, in ``sort`` order (as :meth:`page`),
        ``rows`` at a time: what an export of any size reads, holding one chunk in memory.

        Each chunk is a query of its own that starts after the last row of the one before
        (:func:`~audit_analytics.filters.sql_after`), so no statement or lock is held between
        chunks (a ClickHouse session serves other queries meanwhile), and a chunk deep in
        the result costs what the first does. Pass ``now`` to pin a relative period for the
        whole walk. The first chunk is yielded even when empty, for the columns.
        """
        if rows < 1:
            raise ValueError("rows must be at least 1")
        where = self._where(flt, now)
        order = sql_order_by(self.table, sort)
        after: sa.ColumnElement[bool] | None = None
        while True:
            stmt = sa.select(self.table).where(where)
            if after is not None:
                stmt = stmt.where(after)
            frame = self.select_frame(stmt.order_by(*order).limit(rows))
            if after is None or frame.height:
                yield frame
            if frame.height < rows:
                return
            after = sql_after(self.table, sort, frame.row(-1, named=True))

    def get(self, event_id: str) -> dict[str, Any] | None:
        """One event by id, as a dict, or None."""
        stmt = sa.select(self.table).where(self.table.c.id == event_id)
        frame = self.select_frame(stmt)
        return frame.row(0, named=True) if frame.height else None

    def distinct_ips(self) -> list[str]:
        stmt = sa.select(self.table.c.ip).where(self.table.c.ip.is_not(None)).distinct()
        with self.engine.connect() as conn:
            return [r[0] for r in conn.execute(stmt)]

    def time_range(self) -> tuple[datetime | None, datetime | None]:
        """Oldest and newest event times (None when empty)."""
        t = self.table.c.time
        with self.engine.connect() as conn:
            # two queries: SQLite answers a lone min() or max() from the index, both at once by a scan
            lo = conn.execute(sa.select(sa.func.min(t))).scalar()
            hi = conn.execute(sa.select(sa.func.max(t))).scalar()
        conv = UTCDateTime().process_result_value
        return conv(lo, self.engine.dialect), conv(hi, self.engine.dialect)

    def signature(self) -> tuple[int, datetime | None]:
        """What says whether the table changed: (row count, newest event time)."""
        return self.count(), self.time_range()[1]

    def category_counts(self) -> pl.DataFrame:
        """Events, oldest and newest time per category (``type``) over the whole table: one
        GROUP BY where the events are (the retention summary above the memory limit)."""
        t = self.table.c
        stmt = sa.select(t.type, sa.func.count(), sa.func.min(t.time), sa.func.max(t.time)).group_by(t.type)
        conv = UTCDateTime().process_result_value
        with self.engine.connect() as conn:
            rows = [
                (kind, n, conv(lo, self.engine.dialect), conv(hi, self.engine.dialect))
                for kind, n, lo, hi in conn.execute(stmt)
            ]
        return pl.DataFrame(
            rows,
            schema={
                "type": pl.String,
                "events": pl.Int64,
                "oldest": pl.Datetime("us", "UTC"),
                "newest": pl.Datetime("us", "UTC"),
            },
            orient="row",
        )

    def actors(self, *, emails: bool = True) -> pl.DataFrame:
        """Distinct actors with their email and event count, most active first. ``emails=False``
        leaves ``email`` empty and reads only the actor index (0.16 s instead of 2.4 s for
        1,000,000 events in SQLite, which reads every row for the emails)."""
        t = self.table
        email = sa.func.max(t.c.email) if emails else sa.null()
        stmt = (
            sa.select(t.c.actor, email, sa.func.count())
            .where(t.c.actor.is_not(None))
            .group_by(t.c.actor)
            .order_by(sa.func.count().desc(), t.c.actor)
        )
        return self.frame(stmt, {"actor": pl.String, "email": pl.String, "events": pl.Int64})


def event_row(
    *,
    actor: str,
    type: str,
    action: str,
    target: str = "",
    result: str = "done",
    params: Mapping[str, object] | None = None,
    description: str = "",
    email: str | None = None,
    ip: str | None = None,
    error: str | None = None,
    before: Mapping[str, object] | None = None,
    after: Mapping[str, object] | None = None,
) -> pl.DataFrame:
    """One event about the tool's own use, as a one-row event frame with a new ``aa-`` id
    (what :meth:`Store.record` stores; JSON fields with sorted keys)."""

    def as_json(value: Mapping[str, object] | None) -> str | None:
        return json.dumps(value, sort_keys=True, default=str) if value is not None else None

    row = {
        "id": f"aa-{uuid.uuid4().hex}",
        "time": datetime.now(UTC),
        "actor": actor,
        "email": email,
        "type": type,
        "action": action,
        "target": target or None,
        "result": result,
        "ip": ip,
        "request_id": None,
        "description": description or f"{actor} {action} {target}".strip(),
        "params": as_json(params),
        "before": as_json(before),
        "after": as_json(after),
        "error": error,
    }
    return pl.DataFrame([row], schema=SCHEMA)


def _short(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc)
    return text.splitlines()[0] if text else type(exc).__name__


def _time_ordered(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` ordered by (time, id), oldest first: as it is when it already is, else
    gathered one column at a time, each column's old copy dropped before the next is
    gathered (the peak is the frame plus one column, not two frames as ``sort`` would make).
    Consumes ``frame``: its columns are taken out of it."""
    if frame.height < 2 or in_time_order(frame):
        return frame
    order = frame.select(pl.arg_sort_by("time", "id")).to_series()
    ordered = {}
    for name in frame.columns:
        ordered[name] = frame.drop_in_place(name).gather(order)
    return pl.DataFrame(ordered)


def _frame(data: pl.DataFrame | pl.Series) -> pl.DataFrame:
    """What ``pl.from_arrow`` gives for a record batch: always a frame."""
    return data if isinstance(data, pl.DataFrame) else data.to_frame()


def _rows_for_insert(frame: pl.DataFrame) -> list[dict[str, Any]]:
    return frame.with_columns(pl.col("type", "result").cast(pl.String)).to_dicts()


def schema_columns(columns: Sequence[str] | None) -> tuple[str, ...]:
    """Schema columns in the schema's order; an unknown name is an error (names reach SQL)."""
    if columns is None:
        return COLUMNS
    unknown = sorted(set(columns) - set(COLUMNS))
    if unknown:
        raise ValueError(f"unknown event columns {unknown}; the schema has {list(COLUMNS)}")
    return tuple(c for c in COLUMNS if c in columns)


def _copied_text(names: Sequence[str]) -> list[pl.Expr]:
    """The text columns copied into polars' own buffers: a column converted from a driver's
    Arrow batch may keep pointing into that batch's buffers, and so keep all of them alive
    (at 10,000,000 events 0.65 GB more resident after a load)."""
    return [pl.concat_str(pl.col(c), pl.lit("")).alias(c) for c in names if SCHEMA[c] == pl.String]


def _rows_frame(rows: Sequence[Any], names: tuple[str, ...]) -> pl.DataFrame:
    """Driver rows of the ``names`` columns -> an event frame with the schema's dtypes."""
    data = {c: [r[i] for r in rows] for i, c in enumerate(names)}
    return _normalise(
        pl.DataFrame(data, schema_overrides={c: pl.String for c in names if c != "time"}), names
    )


def _normalise(frame: pl.DataFrame, names: tuple[str, ...] = COLUMNS) -> pl.DataFrame:
    """Whatever the driver returned -> the schema's dtypes (time as UTC datetime)."""
    t = frame.schema.get("time")
    if t == pl.String:
        frame = frame.with_columns(
            pl.col("time").str.to_datetime(time_unit="us", time_zone="UTC", format="%Y-%m-%d %H:%M:%S%.f")
        )
    elif isinstance(t, pl.Datetime):
        if t.time_zone is None:
            frame = frame.with_columns(pl.col("time").dt.replace_time_zone("UTC"))
        frame = frame.with_columns(pl.col("time").dt.convert_time_zone("UTC").dt.cast_time_unit("us"))
    return conform(frame, columns=names)


def open_store(url: str | None = None, *, create: bool = True, **engine_kwargs: Any) -> Store:
    """Open (and create if needed) the audit table at a SQLAlchemy URL, or in ClickHouse.

    With ``create=False`` an SQLite file or chDB folder that does not exist, or an SQLite file
    without the audit table, is a :class:`StoreError` (:func:`require_existing`) instead of a
    new empty database: what the command line's reading commands use, so a mistyped path in
    a scheduled check fails instead of finding nothing wrong in an empty log.

    ``url`` defaults to :func:`default_url` (``AUDIT_DB_URL``, else ``sqlite:///data/audit.db``).
    A PostgreSQL URL such as ``postgresql://user@host/db`` uses psycopg 3. ``chdb://FOLDER``
    is ClickHouse embedded (chDB) with its data in ``FOLDER`` (everything after ``chdb://``:
    ``chdb:///srv/audit`` is absolute, ``chdb://data/ch`` relative to the working folder);
    ``clickhouse://user:pw@host:8123/db`` (``clickhouses://`` for TLS) is a ClickHouse server;
    see :mod:`audit_analytics.engines.clickhouse`.
    """
    url = url or default_url()
    if not create:
        require_existing(url)
    if url.startswith(("chdb:", "clickhouse:", "clickhouses:")):
        from audit_analytics.engines.clickhouse import open_clickhouse

        if engine_kwargs:
            raise StoreError(
                f"{url!r}: ClickHouse takes no engine options ({', '.join(sorted(engine_kwargs))})"
            )
        return open_clickhouse(url)
    return Store(sql_engine(url, **engine_kwargs))


def require_existing(url: str) -> None:
    """Refuse a local database that is not there: an SQLite file or a chDB folder that does
    not exist, or an SQLite file without the audit table (another program's database). A
    server's database (PostgreSQL, ClickHouse) is not checked here: it must exist to be reached.

    >>> require_existing("sqlite:////nonexistent/audit.db")
    Traceback (most recent call last):
    ...
    audit_analytics.errors.StoreError: no audit database at /nonexistent/audit.db: nothing was imported there (check --db or AUDIT_DB_URL; `audit-analytics import FILE` or `audit-analytics demo` creates one)
    """
    import sqlite3

    def missing(where: str) -> StoreError:
        return StoreError(
            f"no audit database at {where}: nothing was imported there (check --db or AUDIT_DB_URL; "
            "`audit-analytics import FILE` or `audit-analytics demo` creates one)"
        )

    if url.startswith("chdb:"):
        from audit_analytics.engines.clickhouse import chdb_folder

        folder = chdb_folder(url)
        if not folder.exists():
            raise missing(str(folder))
        return
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError:
        return  # open_store says what is wrong with it
    if not parsed.drivername.startswith("sqlite") or parsed.database in (None, "", ":memory:"):
        return
    path = Path(str(parsed.database))
    if not path.is_file():
        raise missing(str(path))
    try:
        with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as db:
            found = db.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (TABLE_NAME,)
            ).fetchone()
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"cannot read {path} as an SQLite database: {exc}") from None
    if not found:
        raise StoreError(
            f"{path} holds no audit table ({TABLE_NAME}): it is not an audit database "
            "(check --db or AUDIT_DB_URL)"
        )


def sql_engine(url: str, **engine_kwargs: Any) -> Engine:
    """The SQLAlchemy engine for a SQLite or PostgreSQL URL, set up as the package uses it
    (psycopg 3; SQLite's folder created, one connection for an in-memory database, Unicode
    ``lower()``): the store's, and the hash chain's beside a ClickHouse store."""
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError:
        raise StoreError(f"not a database URL: {url!r} (e.g. sqlite:///data/audit.db)") from None
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.drivername.startswith("sqlite") and parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    if parsed.drivername.startswith("sqlite") and parsed.database in (None, "", ":memory:"):
        # one shared connection, or every new connection would see a new empty database
        engine_kwargs.setdefault("poolclass", sa.pool.StaticPool)
        engine_kwargs.setdefault("connect_args", {"check_same_thread": False})
    try:
        engine = sa.create_engine(parsed, **engine_kwargs)
    except Exception as exc:  # driver missing, bad options
        raise StoreError(f"cannot open {url!r}: {exc}") from exc
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine, "connect", _sqlite_on_connect)
    return engine


def _sqlite_on_connect(dbapi_conn: Any, _record: Any) -> None:
    # SQLite's lower() folds ASCII only; polars folds all of Unicode. One definition for both.
    dbapi_conn.create_function("lower", 1, _py_lower, deterministic=True)
    # No WAL: connectorx (the fast whole-table read) opening a WAL-mode file left this
    # process's next write failing with "disk I/O error" (seen with connectorx 0.4.6).
    dbapi_conn.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_SECONDS * 1000}")

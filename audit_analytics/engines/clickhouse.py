"""ClickHouse: the engine for logs that outgrow one machine, tested in-process with chDB.

:class:`ClickHouseStore` is a :class:`~audit_analytics.engines.store.Store` whose events
live in a MergeTree table ``audit_events`` ordered by ``(time, id)``: ``open_store`` returns
one for ``chdb://FOLDER`` (chDB, ClickHouse's engine as a Python library, data in FOLDER) and
``clickhouse://`` / ``clickhouses://`` (a server, through clickhouse-connect). Import, both
engines, the CLI, retention and the pushdown aggregates of
:mod:`audit_analytics.analysis.security_sql` run on it through the Store's methods; the
statements are the same on chDB and on a server (a :class:`Connection` runs them), and the
hash chain lives in a SQL database beside the events (ClickHouse has no transactions).

The SQL comes from the same place as the SQLite and PostgreSQL SQL:
:func:`~audit_analytics.filters.sql_where` and :func:`~audit_analytics.filters.sql_order_by`
build SQLAlchemy Core expressions, and :class:`ClickHouseDialect` prints them for ClickHouse
(``lowerUTF8``, ``LIKE`` with ClickHouse's backslash escapes, ``toUnixTimestamp64Micro``).
Every value travels as a ClickHouse query parameter (``{p_1:String}``), never in the SQL text;
:func:`compile_clickhouse` refuses a statement whose text would hold a quoted literal.

Known difference: ``lowerUTF8`` maps code points one by one, without context, so a
word-final Greek capital sigma lowers to ``σ`` where polars and Python write ``ς``. (The
agreement tests cover accented Latin letters and umlauts.)

Examples
--------
>>> import sqlalchemy as sa
>>> t = sa.table("audit_events", sa.column("actor"))
>>> sql, params = compile_clickhouse(sa.select(t.c.actor).where(sa.func.lower(t.c.actor) == "root"))
>>> print(" ".join(sql.split()))
SELECT audit_events.actor FROM audit_events WHERE lowerUTF8(audit_events.actor) = {lower_1:String}
>>> params
{'lower_1': 'root'}
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import shutil
import sys
import tempfile
import threading
import weakref
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol, cast

import polars as pl
import pyarrow as pa
import pyarrow.feather as feather
import sqlalchemy as sa
from sqlalchemy.engine import default
from sqlalchemy.sql import compiler

from audit_analytics.analysis import security_sql as pushdown
from audit_analytics.engines import chain
from audit_analytics.engines.contract import NEWEST_FIRST
from audit_analytics.engines.store import (
    DETAIL_CHUNK,
    DETAILS_SCHEMA,
    LOAD_BATCH_ROWS,
    TABLE_NAME,
    Store,
    make_table,
    sql_engine,
)
from audit_analytics.errors import StoreError
from audit_analytics.filters import Filter, Sort, sql_order_by
from audit_analytics.schema import COLUMNS, DETAIL_COLUMNS, RETENTION_GROUPS, SCHEMA, conform

__all__ = [
    "ChdbConnection",
    "ClickHouseDialect",
    "ClickHouseStore",
    "Connection",
    "CREATE_TABLE",
    "ServerConnection",
    "compile_clickhouse",
    "open_chdb",
    "open_clickhouse",
    "open_server",
]

RETENTION_GROUP = "if(type IN ({}), 'security', 'operational')".format(
    ", ".join(f"'{code}'" for code in RETENTION_GROUPS["security"])
)
"""The retention group of an event (schema.RETENTION_GROUPS: the app's own category codes)."""

FAILURES_PROJECTION = "PROJECTION failures (SELECT id, time, actor, ip, type, action, result ORDER BY (type, action, result, time))"
"""The columns the security review reads, sorted by category, action and result: a query
for failed logins (``failures_by_*``, brute force, spray) reads only their granules instead of
every event of the period (a lightweight DELETE rebuilds it for the parts it touches)."""

CREATE_TABLE = f"""
CREATE TABLE IF NOT EXISTS {TABLE_NAME} (
    id String,
    time DateTime64(6, 'UTC'),
    actor LowCardinality(Nullable(String)),
    email Nullable(String),
    type LowCardinality(String),
    action LowCardinality(String),
    target Nullable(String),
    result LowCardinality(String),
    ip LowCardinality(Nullable(String)),
    request_id Nullable(String),
    description Nullable(String),
    params Nullable(String),
    before Nullable(String),
    after Nullable(String),
    error Nullable(String),
    INDEX ix_id id TYPE bloom_filter(0.01) GRANULARITY 1,
    {FAILURES_PROJECTION}
) ENGINE = MergeTree PARTITION BY (toYYYYMM(time), {RETENTION_GROUP}) ORDER BY (time, id)
SETTINGS lightweight_mutation_projection_mode = 'rebuild'
"""
"""The table: sorted by ``(time, id)`` so a time range and the newest page read little (the
sort key's first column is its own min-max index: a ``minmax`` skip index on ``time`` would
add nothing); one partition a month and retention group (security, operational: the groups
retention keeps for different times), so retention detaches whole partitions and a period
reads only its months; dictionary-encoded (LowCardinality) where values repeat (5x faster
failures_by_ip at 10M); a bloom filter on ``id`` finds the granules holding given ids (the
duplicate check of every write, and reading an event by id); a projection of the failed-login
columns sorted by category, action and result (:data:`FAILURES_PROJECTION`). No text skip index: a search is
an OR over six Nullable columns, which ngram/token bloom filters cannot prune (docs/deploy.md)."""


# --------------------------------------------------------------------------- dialect


class ClickHouseCompiler(compiler.SQLCompiler):
    """SQLAlchemy's compiler with ClickHouse's spelling of the few things that differ."""

    @property
    def _like_percent_literal(self) -> sa.ColumnElement[str]:
        # startswith()/contains() add a '%' to the pattern: spelt without a quote, so that
        # the only quotes a statement may hold are none (see compile_clickhouse)
        return sa.literal_column("char(37)", type_=sa.String())

    def visit_lower_func(self, fn: sa.Function[Any], **kw: Any) -> str:
        # lower() folds ASCII only in ClickHouse; polars folds all of Unicode.
        return "lowerUTF8" + self.function_argspec(fn, **kw)

    def _like(
        self, binary: sa.BinaryExpression[Any], operator: Any, kw: dict[str, Any], negated: bool
    ) -> str:
        escape = binary.modifiers.get("escape")
        if escape not in (None, "\\", "/"):
            raise StoreError(f"ClickHouse LIKE escapes with a backslash or '/' only, not {escape!r}")
        # ClickHouse's LIKE already treats "\\" as its escape character; "/" is what
        # SQLAlchemy's autoescape=True uses, a fixed character (never a value)
        op = " NOT LIKE " if negated else " LIKE "
        text = binary.left._compiler_dispatch(self, **kw) + op + binary.right._compiler_dispatch(self, **kw)
        return text + _ESCAPE_SLASH if escape == "/" else text

    def visit_like_op_binary(self, binary: sa.BinaryExpression[Any], operator: Any, **kw: Any) -> str:
        return self._like(binary, operator, kw, negated=False)

    def visit_not_like_op_binary(self, binary: sa.BinaryExpression[Any], operator: Any, **kw: Any) -> str:
        return self._like(binary, operator, kw, negated=True)


class ClickHouseDialect(default.DefaultDialect):
    """Compile-only dialect: SQLAlchemy Core -> ClickHouse SQL with ``:name`` markers that
    :func:`compile_clickhouse` turns into ClickHouse query parameters."""

    name = "clickhouse"
    statement_compiler = ClickHouseCompiler
    supports_native_boolean = True
    paramstyle = "named"

    def __init__(self, **kw: Any) -> None:
        super().__init__(paramstyle="named", **kw)


_DIALECT = ClickHouseDialect()
_ESCAPE_SLASH = " ESCAPE '/'"  # the one quoted text a statement may hold (see _like)
_MARKER = re.compile(r":([A-Za-z_][A-Za-z0-9_]*)")
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\0": "\\0"})
_QUOTED = str.maketrans({"\\": "\\\\", "'": "\\'", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\0": "\\0"})
_PARTITION_ID = re.compile(r"[0-9A-Za-z_-]{1,128}")
ID_CHUNK = 10_000  # ids per statement (a server takes parameters in the URL: about 300 kB)


def _parameter(value: object) -> tuple[str, str]:
    """A value as (ClickHouse type, text in the escaped format ClickHouse parses values from)."""
    if value is None:
        return "Nullable(String)", "\\N"
    if isinstance(value, bool):
        return "Bool", "true" if value else "false"
    if isinstance(value, int):
        return "Int64", str(value)
    if isinstance(value, float):
        return "Float64", repr(value)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return "DateTime64(6, 'UTC')", value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, date):
        return "Date", value.isoformat()
    if isinstance(value, timedelta):
        return "Int64", str(value // timedelta(microseconds=1))
    if isinstance(value, str):
        # Parameter values are read in ClickHouse's escaped text format: a backslash starts an
        # escape sequence, a raw tab or newline ends the value.
        return "String", value.translate(_ESCAPES)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        # an array's elements are quoted strings, with the same backslash escapes
        return "Array(String)", "[" + ",".join("'" + v.translate(_QUOTED) + "'" for v in value) + "]"
    raise StoreError(f"cannot pass {type(value).__name__} values to ClickHouse")


def compile_clickhouse(stmt: sa.ClauseElement) -> tuple[str, dict[str, str]]:
    """A SQLAlchemy Core statement as ClickHouse SQL text and its query parameters.

    Values become ``{name:Type}`` placeholders with the values in the returned dict (the
    format chDB's ``params=`` and the HTTP interface's ``param_name`` take).
    """
    compiled = stmt.compile(dialect=_DIALECT, compile_kwargs={"render_postcompile": True})
    text = compiled.string
    # No value is ever in the text, so no quote may appear; this also makes the marker
    # substitution below unambiguous (":name" cannot sit inside a string literal).
    if "'" in text.replace(_ESCAPE_SLASH, ""):
        raise StoreError("refusing ClickHouse SQL with an inline literal (values must be parameters)")
    values = compiled.params
    params: dict[str, str] = {}

    def placeholder(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise StoreError(f"no value for the SQL parameter {name!r}")
        kind, text_value = _parameter(values[name])
        params[name] = text_value
        return "{" + f"{name}:{kind}" + "}"

    return _MARKER.sub(placeholder, text), params


# --------------------------------------------------------------------------- the store

_PROCESS_PATH: list[str] = []


def _default_path() -> str:
    """chDB's working folder for this process (one per process), removed at exit."""
    if not _PROCESS_PATH:
        _PROCESS_PATH.append(tempfile.mkdtemp(prefix="aa-chdb-"))
        atexit.register(shutil.rmtree, _PROCESS_PATH[0], ignore_errors=True)
    return _PROCESS_PATH[0]


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


class Connection(Protocol):
    """What :class:`ClickHouseStore` needs of ClickHouse, and all it needs: statement text
    with server-side parameters (``{name:Type}``, values in ClickHouse's escaped text) in,
    Arrow out; and Arrow rows into a table. :class:`ChdbConnection` is ClickHouse in this
    process; :class:`ServerConnection` a server or cluster. Every statement is the same."""

    where: str
    """Where the data is, for messages (a URL without its password)."""

    def query(self, sql: str, params: Mapping[str, str] | None = None) -> pa.Table: ...

    def command(self, sql: str, params: Mapping[str, str] | None = None) -> None: ...

    def insert(self, database: str, table: str, rows: pa.Table, *, new_only: bool = False) -> set[str]:
        """Insert the rows (``new_only``: those whose ``id`` the table does not hold yet,
        found by its bloom filter); -> the ids left out as stored already."""
        ...

    def close(self) -> None: ...


class ChdbConnection:
    """ClickHouse in this process (chDB), its data in ``path``. chDB serves one folder per
    process (sessions on the same folder share it) and a folder to one process at a time.

    A session's query parameters are its connection's state, so two threads querying one
    session at once swapped each other's values (seen: "Substitution `lower_1` is not set");
    the app's sessions are threads, so statements take turns on a lock (each one is still
    run in parallel by ClickHouse itself).
    """

    def __init__(self, path: str | Path) -> None:
        try:
            from chdb import session as chdb_session
        except ImportError:  # pragma: no cover - exercised when chdb is absent
            raise StoreError("a chdb:// store needs chDB: pip install chdb") from None
        session: Any = chdb_session  # chDB has no type hints
        self.path = str(path)
        self.where = f"chdb://{self.path}"
        self.turns = threading.Lock()
        try:
            with _stderr_kept_on_success():
                self.session: Any = session.Session(self.path)
        except Exception as exc:
            raise StoreError(f"cannot open chDB at {self.path}: {_why_not(self.path, exc)}") from exc
        # closed before the interpreter tears down: chDB's own shutdown at exit crashed the
        # process (SIGSEGV, "ShutdownTablesThreadPool is not initialized") when a session was
        # still open after the app's threads had used it
        atexit.register(_close_at_exit, weakref.ref(self))

    def query(self, sql: str, params: Mapping[str, str] | None = None) -> pa.Table:
        with self.turns:
            return self.session.query(sql, "ArrowTable", params=dict(params) if params else None)

    def command(self, sql: str, params: Mapping[str, str] | None = None) -> None:
        with self.turns:
            self.session.query(sql, "CSV", params=dict(params) if params else None)

    def insert(self, database: str, table: str, rows: pa.Table, *, new_only: bool = False) -> set[str]:
        """Through an Arrow file (uncompressed: written about as fast as memory is copied),
        which ClickHouse reads by column: read once for the ids stored already (10x faster than
        passing 100,000 ids as a parameter) and once more for the rows to insert. A Parquet
        file compressed with LZ4 took 42% of the importing thread's time to write; with Arrow
        a 300,000-record CloudTrail import takes 7.5-8.1 s instead of 8.4-9.0 s."""
        cols = ", ".join(rows.column_names)
        target = f"`{database}`.{table}"
        with tempfile.TemporaryDirectory(prefix="aa-chdb-in-") as folder:
            path = Path(folder) / "batch.arrow"
            feather.write_feather(rows, path, compression="uncompressed")
            params = {"path": _parameter(str(path))[1]}
            rows_in = "file({path:String}, Arrow)"
            stored: set[str] = set()
            if new_only:
                found = self.query(
                    f"SELECT id FROM {target} WHERE id IN (SELECT id FROM {rows_in})",  # noqa: S608 - fixed names
                    params,
                )
                stored = set(found.column("id").to_pylist())
                if len(stored) == rows.num_rows:
                    return stored
                if stored:
                    rows_in += " WHERE id NOT IN {stored:Array(String)}"
                    params["stored"] = _parameter(sorted(stored))[1]
            self.command(f"INSERT INTO {target} ({cols}) SELECT {cols} FROM {rows_in}", params)  # noqa: S608
        return stored

    def close(self) -> None:
        """Close the session (again: nothing). Waits up to 10 s for a statement in progress."""
        taken = self.turns.acquire(timeout=10)
        try:
            if self.session is not None:
                self.session.close()
                self.session = None
        finally:
            if taken:
                self.turns.release()


def _close_at_exit(connection: weakref.ref[ChdbConnection]) -> None:
    alive = connection()
    if alive is not None:
        alive.close()


class _Verbatim:
    """A parameter value already in ClickHouse's escaped text: clickhouse-connect sends what
    ``str()`` gives for a type it does not know, unchanged (a ``str`` it would escape again)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __str__(self) -> str:
        return self.text


class ServerConnection:
    """A ClickHouse server or cluster through clickhouse-connect (HTTP): the thin end of the
    store, statement text and parameters in, Arrow out (no test here runs one; the
    statements are those every chDB test runs)."""

    def __init__(self, client: Any, where: str) -> None:
        self.client = client
        self.where = where

    def query(self, sql: str, params: Mapping[str, str] | None = None) -> pa.Table:
        return self.client.query_arrow(sql, parameters=_verbatim(params), use_strings=True)

    def command(self, sql: str, params: Mapping[str, str] | None = None) -> None:
        self.client.command(sql, parameters=_verbatim(params))

    def insert(self, database: str, table: str, rows: pa.Table, *, new_only: bool = False) -> set[str]:
        stored: set[str] = set()
        if new_only:  # the ids go as parameters in the URL: ID_CHUNK at a time
            sql = f"SELECT id FROM `{database}`.{table} WHERE id IN {{ids:Array(String)}}"  # noqa: S608
            ids = rows.column("id").to_pylist()
            for start in range(0, len(ids), ID_CHUNK):
                found = self.query(sql, {"ids": _parameter(ids[start : start + ID_CHUNK])[1]})
                stored.update(found.column("id").to_pylist())
            if stored:
                keep = pa.array([i not in stored for i in ids])
                rows = rows.filter(keep)
        if rows.num_rows:
            self.client.insert_arrow(table, rows, database=database)
        return stored

    def close(self) -> None:
        self.client.close()


def _verbatim(params: Mapping[str, str] | None) -> dict[str, _Verbatim] | None:
    return {k: _Verbatim(v) for k, v in params.items()} if params else None


class ClickHouseStore(Store):
    """The audit table in ClickHouse: a :class:`Store` whose events live in ClickHouse, so
    import, the engines (both modes), the CLI and the pushdown analyses run on it unchanged.

    ClickHouse has no transactions, so the hash chain (``audit_chain``, ``audit_batches``:
    :mod:`~audit_analytics.engines.chain`) is kept in a SQL database of its own (by default
    a SQLite file beside chDB's data, ``<database>-chain.sqlite``), and :attr:`engine` is
    that database's engine: a write inserts the new events into ClickHouse inside the
    chain's transaction, and a rollback of that transaction undoes it (see
    :meth:`insert_new`, :meth:`delete_ids`).

    Parameters
    ----------
    path
        Folder where chDB keeps its data (``None``: one temporary folder for the process).
        chDB runs one embedded server per process, so every store open at the same time
        uses the same ``path``; give each its own ``database``.
    database
        The ClickHouse database holding ``audit_events`` (created when missing), so several
        stores can share the one embedded server.
    connection
        Another :class:`Connection` (a server) instead of chDB at ``path``.
    chain_url
        SQLAlchemy URL of the chain's database (required with ``connection``).

    Examples
    --------
    >>> from audit_analytics.demo.generate import generate
    >>> store = ClickHouseStore(database="doctest")
    >>> store.append(generate(1_000, seed=2).events).inserted
    1000
    >>> store.count(Filter(types=("auth",))) == store.load().filter(pl.col("type") == "auth").height
    True
    >>> store.drop()
    """

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        database: str = "audit",
        connection: Connection | None = None,
        chain_url: str | None = None,
    ) -> None:
        if not _IDENTIFIER.fullmatch(database):
            raise StoreError(f"not a ClickHouse database name: {database!r}")
        self.chain_path: Path | None = None
        if connection is None:
            chdb = ChdbConnection(path if path is not None else _default_path())
            self.path: str | None = chdb.path
            self.chain_path = Path(chdb.path) / f"{database}-chain.sqlite"
            connection = chdb
        else:
            self.path = None
        self.connection = connection
        self.database = database
        self.table = make_table(sa.MetaData(schema=database))
        self._target = f"`{database}`.{TABLE_NAME}"
        self._command(f"CREATE DATABASE IF NOT EXISTS `{database}`")
        self._command(CREATE_TABLE.replace(f"EXISTS {TABLE_NAME}", f"EXISTS {self._target}"))
        if chain_url is None:
            if self.chain_path is None:
                raise StoreError(f"{connection.where}: say where the hash chain is kept (chain_url)")
            chain_url = f"sqlite:///{self.chain_path}"
        self.engine = sql_engine(chain_url)
        self.metadata = sa.MetaData()
        self.chain, self.batches = chain.make_tables(self.metadata)
        try:
            self.metadata.create_all(self.engine)
            self._seal_existing()
        except sa.exc.SQLAlchemyError as exc:
            where = self.engine.url.render_as_string(hide_password=True)
            raise StoreError(f"cannot open the hash chain at {where}: {_short(exc)}") from exc

    def __repr__(self) -> str:
        return f"ClickHouseStore({self.connection.where!r}, database={self.database!r})"

    @property
    def dialect(self) -> str:
        return "clickhouse"

    @property
    def safe_url(self) -> str:
        """The URL that opens this store (the database named when chDB's is not ``audit``)."""
        other = self.path is not None and self.database != "audit"
        return self.connection.where + (f" (database {self.database})" if other else "")

    def close(self) -> None:
        self.connection.close()
        self.engine.dispose()

    def drop(self) -> None:
        """Drop this store's database and its hash chain file, and close the connection."""
        self._command(f"DROP DATABASE IF EXISTS `{self.database}`")
        self.close()
        if self.chain_path is not None:
            self.chain_path.unlink(missing_ok=True)

    # -- running statements ----------------------------------------------------------------
    def _query(self, sql: str, params: Mapping[str, str] | None = None) -> pa.Table:
        try:
            return self.connection.query(sql, params)
        except Exception as exc:
            raise StoreError(
                f"ClickHouse ({self.connection.where}) could not run the query: {_short(exc)}"
            ) from exc

    def _command(self, sql: str, params: Mapping[str, str] | None = None) -> None:
        try:
            self.connection.command(sql, params)
        except Exception as exc:
            raise StoreError(
                f"ClickHouse ({self.connection.where}) could not run the statement: {_short(exc)}"
            ) from exc

    def sql(self, stmt: sa.ClauseElement) -> tuple[str, dict[str, str]]:
        """The ClickHouse SQL and parameters of a SQLAlchemy statement (for logs and tests)."""
        return compile_clickhouse(stmt)

    def frame(self, stmt: sa.Executable, schema: Mapping[str, Any] | None = None) -> pl.DataFrame:
        """Run a SQLAlchemy statement; the rows as a frame (columns renamed and cast to
        ``schema`` in select order when given)."""
        sql, params = compile_clickhouse(cast(sa.ClauseElement, stmt))
        frame = pl.from_arrow(self._query(sql, params))
        assert isinstance(frame, pl.DataFrame)
        if schema is not None:
            frame = frame.rename(dict(zip(frame.columns, schema, strict=True))).cast(dict(schema))  # type: ignore[arg-type]
        return frame

    def scalar(self, stmt: sa.Executable) -> Any:
        frame = self.frame(stmt)
        return frame.item() if frame.height else None

    # -- writing ---------------------------------------------------------------------------
    def insert_new(self, conn: sa.Connection, unique: pl.DataFrame, *, chunk_size: int = 2_000) -> list[str]:
        """Insert the rows (distinct ids) whose id is not stored yet; -> the ids inserted.

        ``conn`` is the hash chain's transaction: its lock is taken first (writers take turns,
        as on SQLite), and when it rolls back the rows inserted here are deleted again. The
        connection finds the stored ids by the table's bloom filter on ``id`` (an id is a
        duplicate whatever its time; chDB reads them from the batch's Arrow file) and
        inserts only the others (``ReplacingMergeTree`` would merge duplicates some time
        later, so counts would not be exact meanwhile).
        """
        if unique.height == 0:
            return []
        chain.lock(conn)
        stored = self._insert(unique, new_only=True)
        ids: list[str] = (
            [i for i in unique["id"].to_list() if i not in stored] if stored else unique["id"].to_list()
        )
        if not ids:
            return []
        sa.event.listen(conn, "rollback", lambda _conn: self._by_ids("DELETE", pl.Series(ids)))
        return ids

    def delete_ids(self, conn: sa.Connection, ids: Sequence[str]) -> int:
        """Delete the events with these ids; -> how many were deleted. ``conn`` is the hash
        chain's transaction (retention marks the chain rows in it): its lock is taken first.

        A partition (a month of one retention group) whose every event is deleted is
        detached whole, which takes no time whatever its size; when the transaction commits
        its files are dropped, and when it rolls back it is attached again. The other events
        are deleted by id (a lightweight DELETE), and inserted again on a rollback.
        """
        if not ids:
            return 0
        chain.lock(conn)
        located = self._by_ids("SELECT _partition_id AS partition, id", pl.Series(list(dict.fromkeys(ids))))
        if located.height == 0:
            return 0
        doomed = located.group_by("partition").len("doomed")
        held = self._partition_rows(doomed["partition"].to_list())
        whole = doomed.join(held, on="partition").filter(pl.col("doomed") == pl.col("rows"))["partition"]
        for partition in whole.to_list():
            self._partition("DETACH", partition)
            sa.event.listen(conn, "rollback", lambda _conn, part=partition: self._partition("ATTACH", part))
            sa.event.listen(
                conn, "commit", lambda _conn, part=partition: self._partition("DROP DETACHED", part)
            )
        rest = located.filter(~pl.col("partition").is_in(whole.to_list()))["id"]
        if rest.len():
            kept = self.events_by_id(rest.to_list())
            self._by_ids("DELETE", rest)
            sa.event.listen(conn, "rollback", lambda _conn: self._insert(kept))
        return located.height

    def _partition_rows(self, partitions: Sequence[str]) -> pl.DataFrame:
        """``partition`` and its event count, for these partition ids."""
        sql = (
            f"SELECT _partition_id AS partition, count() AS rows FROM {self._target} "  # noqa: S608 - fixed text
            "WHERE _partition_id IN {parts:Array(String)} GROUP BY partition"
        )
        frame = pl.from_arrow(self._query(sql, {"parts": _parameter(list(partitions))[1]}))
        assert isinstance(frame, pl.DataFrame)
        return frame.with_columns(pl.col("rows").cast(pl.UInt32))

    def _partition(self, verb: str, partition: str) -> None:
        """``ALTER TABLE … {DETACH|ATTACH|DROP DETACHED} PARTITION ID`` (ClickHouse takes no
        parameter there: the id, ClickHouse's own, goes into the text once checked)."""
        if not _PARTITION_ID.fullmatch(partition):
            raise StoreError(f"not a ClickHouse partition id: {partition!r}")
        settings = " SETTINGS allow_drop_detached = 1" if verb == "DROP DETACHED" else ""
        self._command(f"ALTER TABLE {self._target} {verb} PARTITION ID '{partition}'{settings}")

    def _insert(self, rows: pl.DataFrame, *, new_only: bool = False) -> set[str]:
        """Insert events as they are (``new_only``: those whose id is not stored); -> the
        ids left out as stored."""
        arrow = rows.select(COLUMNS).with_columns(pl.col("type", "result").cast(pl.String)).to_arrow()
        try:
            return self.connection.insert(self.database, TABLE_NAME, arrow, new_only=new_only)
        except Exception as exc:
            raise StoreError(f"ClickHouse ({self.connection.where}) could not insert: {_short(exc)}") from exc

    def _by_ids(self, verb: str, ids: pl.Series) -> pl.DataFrame:
        """``{verb} FROM audit_events WHERE id IN {ids:Array(String)}`` (verb: ``SELECT …``
        or ``DELETE``), :data:`ID_CHUNK` ids a statement (found by the bloom filter)."""
        parts = []
        values = ids.cast(pl.String).to_list()
        sql = f"{verb} FROM {self._target} WHERE id IN {{ids:Array(String)}}"  # noqa: S608 - fixed text
        for start in range(0, len(values), ID_CHUNK):
            params = {"ids": _parameter(values[start : start + ID_CHUNK])[1]}
            if verb == "DELETE":
                self._command(sql, params)
            else:
                part = pl.from_arrow(self._query(sql, params))
                if isinstance(part, pl.DataFrame):
                    parts.append(part)
        return pl.concat(parts) if parts else pl.DataFrame(schema={"id": pl.String})

    # -- reading ---------------------------------------------------------------------------
    def select_frame(
        self, stmt: sa.Executable, names: tuple[str, ...] = COLUMNS, *, conn: sa.Connection | None = None
    ) -> pl.DataFrame:
        """The rows of a SELECT of the ``names`` columns as an event frame (``conn``, the
        chain's transaction, plays no part: ClickHouse sees every insert at once)."""
        return _conform(self.frame(stmt), names)

    def events_by_id(self, ids: Sequence[str], *, conn: sa.Connection | None = None) -> pl.DataFrame:
        """The stored events with these ids, every column (unknown ids absent), found by the
        bloom filter :data:`ID_CHUNK` at a time (``conn`` plays no part, as in :meth:`select_frame`)."""
        return _conform(self._by_ids("SELECT *", pl.Series(list(dict.fromkeys(ids)), dtype=pl.String)))

    def _frames_in(
        self, conn: sa.Connection | None = None, rows: int = 50_000, *, ordered: bool = True
    ) -> Iterator[pl.DataFrame]:
        """Every stored event, oldest first, ``rows`` at a time (by the table's ``(time, id)``
        order, each query starting after the last row of the one before)."""
        t = self.table
        after: tuple[datetime, str] | None = None
        while True:
            stmt = sa.select(t).order_by(t.c.time, t.c.id).limit(rows)
            if after is not None:
                stmt = stmt.where(
                    sa.or_(t.c.time > after[0], sa.and_(t.c.time == after[0], t.c.id > after[1]))
                )
            frame = self.select_frame(stmt)
            if frame.height == 0:
                return
            yield frame
            after = (frame["time"][-1], frame["id"][-1])

    def iter_frames(self, rows: int = LOAD_BATCH_ROWS) -> Iterator[pl.DataFrame]:
        """Every stored event with all its columns, at most ``rows`` at a time."""
        return self._frames_in(None, rows)

    def chain_rows(self) -> pl.DataFrame:
        """The whole ``audit_chain`` table (``seq``, ``id``, ``hash``, ``archived``), by ``seq``."""
        c = self.chain.c
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(c.seq, c.id, c.hash, c.archived).order_by(c.seq)).all()
        return pl.DataFrame(
            rows,
            schema={"seq": pl.Int64, "id": pl.String, "hash": pl.String, "archived": pl.String},
            orient="row",
        )

    def category_counts(self) -> pl.DataFrame:
        """Events, oldest and newest time per category over the whole table (one GROUP BY)."""
        t = self.table.c
        stmt = sa.select(t.type, sa.func.count(), sa.func.min(t.time), sa.func.max(t.time)).group_by(t.type)
        utc = pl.Datetime("us", "UTC")
        frame = self.frame(stmt, {"type": pl.String, "events": pl.Int64, "oldest": utc, "newest": utc})
        return frame.sort("type")

    def details(
        self, ids: Sequence[str], *, between: tuple[datetime, datetime] | None = None
    ) -> pl.DataFrame:
        """``id`` and the detail columns of the events with these ids (unknown ids absent);
        ``between`` (their time range) lets ClickHouse skip the parts outside it."""
        t = self.table
        span = sa.true() if between is None else t.c.time.between(*between)
        parts = [
            self.frame(
                sa.select(t.c.id, *(t.c[c] for c in DETAIL_COLUMNS)).where(
                    span, t.c.id.in_(list(ids[start : start + DETAIL_CHUNK]))
                )
            )
            for start in range(0, len(ids), DETAIL_CHUNK)
        ]
        parts = [p.select("id", *DETAIL_COLUMNS).cast(pl.String) for p in parts if p.height]
        return pl.concat(parts) if parts else pl.DataFrame(schema=DETAILS_SCHEMA)

    def count(self, flt: Filter | None = None, *, now: datetime | None = None) -> int:
        """How many events pass the filter, counted in ClickHouse."""
        stmt = sa.select(sa.func.count().label("n")).select_from(self.table).where(self._where(flt, now))
        return int(self.scalar(stmt))

    def page(
        self,
        flt: Filter | None = None,
        sort: Sort = NEWEST_FIRST,
        *,
        offset: int = 0,
        limit: int = 100,
        now: datetime | None = None,
    ) -> pl.DataFrame:
        """One page of the filtered result in the given order (ties by id, nulls last)."""
        if limit < 0 or offset < 0:
            raise ValueError("offset and limit must not be negative")
        t = self.table
        order = sql_order_by(t, sort)
        if sort.column == "time":
            # time is never null: without a nulls-last key ClickHouse reads the table in its
            # (time, id) order and stops after the page instead of sorting everything.
            order = [t.c.time.desc(), t.c.id.desc()] if sort.descending else [t.c.time.asc(), t.c.id.asc()]
        stmt = sa.select(t).where(self._where(flt, now)).order_by(*order).offset(offset).limit(limit)
        return _conform(self.frame(stmt))

    def distinct_ips(self) -> list[str]:
        ip = self.table.c.ip
        return self.frame(sa.select(ip).where(ip.is_not(None)).distinct())["ip"].to_list()

    def time_range(self) -> tuple[datetime | None, datetime | None]:
        """Oldest and newest event times (None when empty)."""
        t = self.table.c.time
        frame = self.frame(sa.select(sa.func.min(t).label("lo"), sa.func.max(t).label("hi"), sa.func.count()))
        if frame.height == 0 or frame.item(0, 2) == 0:
            return None, None
        return frame.item(0, 0), frame.item(0, 1)

    # -- the pushdown aggregates -------------------------------------------------------------
    def failures_by_ip(self, flt: Filter | None = None, **kw: Any) -> pl.DataFrame:
        return pushdown.failures_by_ip(self, flt, **kw)

    def failures_by_account(self, flt: Filter | None = None, **kw: Any) -> pl.DataFrame:
        return pushdown.failures_by_account(self, flt, **kw)

    def failures_by_hour(self, flt: Filter | None = None, **kw: Any) -> pl.DataFrame:
        return pushdown.failures_by_hour(self, flt, **kw)

    def failures_over_time(self, flt: Filter | None = None, **kw: Any) -> pl.DataFrame:
        return pushdown.failures_over_time(self, flt, **kw)

    def brute_force(self, flt: Filter | None = None, **kw: Any) -> pl.DataFrame:
        return pushdown.brute_force(self, flt, **kw)

    def password_spray(self, flt: Filter | None = None, **kw: Any) -> pl.DataFrame:
        return pushdown.password_spray(self, flt, **kw)

    def account_under_attack(self, flt: Filter | None = None, **kw: Any) -> pl.DataFrame:
        return pushdown.account_under_attack(self, flt, **kw)


def open_clickhouse(url: str) -> ClickHouseStore:
    """The store at a ``chdb://`` (:func:`open_chdb`) or ``clickhouse://`` /
    ``clickhouses://`` (:func:`open_server`) URL."""
    return open_chdb(url) if url.startswith("chdb:") else open_server(url)


def open_server(url: str) -> ClickHouseStore:
    """The store on a ClickHouse server: ``clickhouse://user:password@host:8123/database``
    (HTTP; ``clickhouses://`` is HTTPS, port 8443 by default), through clickhouse-connect.

    The hash chain needs transactions, so it lives in a SQL database named by the ``chain``
    query parameter (a SQLAlchemy URL, URL-encoded; by default
    ``sqlite:///data/audit-chain.sqlite`` on the host that runs the command or the app). With
    several writing hosts, name one PostgreSQL database for all of them.
    """
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError:
        parsed = None
    if parsed is None or parsed.drivername not in ("clickhouse", "clickhouses") or not parsed.host:
        raise StoreError(
            f"not a ClickHouse server URL: {url!r}; e.g. clickhouse://user:password@host:8123/audit "
            "(clickhouses:// for HTTPS)"
        )
    unknown = sorted(set(parsed.query) - {"chain"})
    if unknown:
        raise StoreError(
            f"{parsed.render_as_string(hide_password=True)!r}: unknown options {unknown} (only chain=)"
        )
    chain_url = parsed.query.get("chain", "sqlite:///data/audit-chain.sqlite")
    if not isinstance(chain_url, str):
        raise StoreError(f"{parsed.render_as_string(hide_password=True)!r}: give chain= once")
    secure = parsed.drivername == "clickhouses"
    where = parsed.set(query={}).render_as_string(hide_password=True)
    try:
        import clickhouse_connect
    except ImportError:
        raise StoreError(
            f"{where}: a ClickHouse server needs clickhouse-connect: pip install clickhouse-connect"
        ) from None
    try:
        client = clickhouse_connect.get_client(
            host=parsed.host,
            port=parsed.port or (8443 if secure else 8123),
            username=parsed.username or "default",
            password=parsed.password or "",
            secure=secure,
        )
    except Exception as exc:
        raise StoreError(f"cannot reach ClickHouse at {where}: {_short(exc)}") from exc
    return ClickHouseStore(
        database=parsed.database or "audit", connection=ServerConnection(client, where), chain_url=chain_url
    )


def chdb_folder(url: str) -> Path:
    """The folder a ``chdb://FOLDER`` URL names (everything after ``chdb://``), or a
    :class:`StoreError` saying how to write one.

    >>> str(chdb_folder("chdb:///srv/audit")), str(chdb_folder("chdb:////srv/audit")), str(chdb_folder("chdb://data/ch"))
    ('/srv/audit', '/srv/audit', 'data/ch')
    """
    folder = url.removeprefix("chdb://") if url.startswith("chdb://") else ""
    if not folder or "?" in folder or "#" in folder:
        raise StoreError(
            f"not a chDB URL: {url!r}; give the folder after chdb://, e.g. chdb:///srv/audit/clickhouse "
            "(absolute) or chdb://data/clickhouse (relative to the working folder)"
        )
    if folder.startswith("//"):  # chdb:////srv/audit, written as SQLite's absolute URLs are
        folder = "/" + folder.lstrip("/")
    return Path(folder).expanduser()


def open_chdb(url: str) -> ClickHouseStore:
    """The store at ``chdb://FOLDER``: ClickHouse embedded (chDB) with its data in ``FOLDER``
    (created when missing), the hash chain in ``FOLDER/audit-chain.sqlite``.

    The folder is everything after ``chdb://``: ``chdb:///srv/audit`` is ``/srv/audit``,
    ``chdb://data/clickhouse`` is ``data/clickhouse`` under the working folder. chDB serves
    one folder per process, and one process at a time.
    """
    path = chdb_folder(url)
    if path.exists() and not path.is_dir():
        raise StoreError(f"cannot open {url!r}: {path} is a file, and chDB keeps its data in a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot open {url!r}: cannot create the folder {path}: {exc.strerror}") from exc
    return ClickHouseStore(path.resolve())


def _conform(frame: pl.DataFrame, names: tuple[str, ...] = COLUMNS) -> pl.DataFrame:
    if frame.height == 0:
        return conform(pl.DataFrame(schema=SCHEMA), columns=names)
    if "time" in frame.columns:
        frame = frame.with_columns(pl.col("time").dt.convert_time_zone("UTC").dt.cast_time_unit("us"))
    return conform(frame, columns=names)


@contextlib.contextmanager
def _stderr_kept_on_success() -> Iterator[None]:
    """Hold what is written to the process's stderr (file descriptor 2) while chDB opens a
    folder: its engine writes its own error there ("Code: 76. DB::Exception: Cannot lock file
    …") before the exception the caller turns into one line, so a command printed both. Kept
    and written out when the open succeeds (chDB's warnings are not lost); dropped when it fails."""
    sys.stderr.flush()
    saved = os.dup(2)
    opened = False
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
            opened = True
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            if opened:
                held.seek(0)
                kept = held.read()
                if kept:
                    os.write(2, kept)


def _why_not(path: str, exc: BaseException) -> str:
    """Why chDB could not open ``path``, in words (its own message says little)."""
    text = _short(exc)
    if "already initialized with path" in text:
        return f"this process already has another chDB folder open, and chDB serves one per process ({text})"
    status = Path(path) / "status"
    if status.is_file():
        import fcntl

        with status.open("rb") as held:
            try:
                fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                return "another process (the app, or a command) has it open; chDB serves a folder to one process at a time"
            fcntl.flock(held, fcntl.LOCK_UN)
    return text


def _short(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__

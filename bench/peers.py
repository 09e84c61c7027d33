"""The peers of ``bench_scale.py``: the same work in plain pandas and in DuckDB.

Each engine holds the whole event table (loaded from Parquet, SQLite or PostgreSQL) and
answers the benchmark's questions with the idiomatic code of its own world:

* pandas: boolean masks, ``Series.str`` methods (``case=False``, Arrow-backed strings in
  pandas >= 3), ``nlargest`` for "newest first", ``groupby().agg``, ``groupby().rolling`` for
  sliding windows, ``to_csv`` and ``to_excel(engine="xlsxwriter")``.
* DuckDB: an in-memory table created from the source (``CREATE TABLE … AS SELECT``), SQL
  with bound parameters, ``ILIKE`` for free text (faster here than ``contains(lower(…))`` or
  ``regexp_matches(…, 'i')``), ``ORDER BY … LIMIT`` (a top-N), window functions with a
  ``RANGE`` frame for sliding windows, ``COPY … TO`` for CSV.

Every method returns the engine's own result object; ``answer_*`` functions in
``bench_scale.py`` turn results into plain values (outside the timed region) so the run can
check that all engines agree.

The semantics follow ``audit_analytics``: free words match case-insensitively as substrings
of actor, email, action, target, ip, description, request_id; a qualifier value matches the whole
field case-insensitively with ``*`` as a wildcard; ``user:`` matches actor or email; "newest
first" breaks ties on ``id`` (descending); a login failure is auth/login/failed; blank actor
or IP counts as missing; a sliding window holds the failures of one IP in 120 s (half-open).
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

TEXT_COLUMNS = ("actor", "email", "action", "target", "ip", "description", "request_id", "error")
SELECT_ALL = (
    "SELECT id, time, actor, email, type, action, target, result, ip, request_id, description, "
    'params, "before", "after", error FROM audit_events'
)


def wildcard_regex(value: str) -> str:
    """``db-*`` -> a regular expression matching the whole (lower-cased) field."""
    return ".*".join(re.escape(part) for part in value.lower().split("*"))


def like_pattern(value: str, *, substring: bool) -> str:
    """A LIKE pattern (escape character ``\\``) for a word or a ``*`` wildcard value."""
    escaped = value.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    if substring:
        return f"%{escaped}%"
    return escaped.replace("*", "%")


# --------------------------------------------------------------------------------- pandas


class PandasEngine:
    name = "pandas"

    def __init__(self) -> None:
        import pandas as pd

        self.pd = pd
        self.df = None
        self.export_frame = None

    # -- load ------------------------------------------------------------------------------
    def load_parquet(self, path: str):
        self.df = None
        self.df = self.pd.read_parquet(path)
        return self.df

    def _finish_sql(self, chunks):
        pd = self.pd
        df = pd.concat(chunks, ignore_index=True)
        time = df["time"]
        if str(time.dtype) in ("object", "str", "string"):
            time = pd.to_datetime(time, format="ISO8601", utc=True)
        elif getattr(time.dt, "tz", None) is None:
            time = time.dt.tz_localize("UTC")
        else:
            time = time.dt.tz_convert("UTC")
        return df.assign(time=time)

    def load_sqlite(self, path: str):
        import sqlite3

        self.df = None
        with sqlite3.connect(path) as con:
            # chunks: one fetchall of 10M rows would need ~10 GB of Python tuples
            chunks = list(self.pd.read_sql(SELECT_ALL, con, chunksize=250_000))
        self.df = self._finish_sql(chunks)
        return self.df

    def load_postgres(self, url: str):
        import sqlalchemy as sa

        self.df = None
        engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
        try:
            with engine.connect().execution_options(stream_results=True) as con:
                chunks = list(self.pd.read_sql(sa.text(SELECT_ALL), con, chunksize=250_000))
        finally:
            engine.dispose()
        self.df = self._finish_sql(chunks)
        return self.df

    def height(self) -> int:
        return len(self.df)

    # -- masks -----------------------------------------------------------------------------
    def _filter_mask(self, f: dict):
        df, pd = self.df, self.pd
        mask = (df["time"] >= pd.Timestamp(f["lo"])) & (df["time"] < pd.Timestamp(f["hi"]))
        if f["types"]:
            mask &= df["type"].isin(f["types"])
        if f["results"]:
            mask &= df["result"].isin(f["results"])
        return mask

    def _word_mask(self, word: str):
        df = self.df
        mask = None
        for column in TEXT_COLUMNS:
            hit = df[column].str.contains(word, case=False, regex=False, na=False)
            mask = hit if mask is None else mask | hit
        return mask

    def _field_match(self, column: str, value: str):
        s = self.df[column]
        if "*" in value:
            return s.str.fullmatch(wildcard_regex(value), case=False, na=False)
        return s.str.lower().eq(value.lower()).fillna(False)

    def _newest(self, frame, n: int):
        # nlargest keeps every tie at the cut-off (keep="all"); ties then break on id.
        top = frame.nlargest(n, "time", keep="all")
        return top.sort_values(["time", "id"], ascending=False).head(n)

    # -- steps -----------------------------------------------------------------------------
    def filter_count(self, f: dict) -> int:
        return int(self._filter_mask(f).sum())

    def search_count(self, word: str) -> int:
        return int(self._word_mask(word).sum())

    def qualified_count(self, q: dict) -> int:
        mask = self._field_match("actor", q["user"]) | self._field_match("email", q["user"])
        mask &= self._field_match("action", q["action"])
        mask &= self._field_match("target", q["resource"])
        return int(mask.sum())

    def first_page(self, limit: int = 100):
        return self._newest(self.df, limit), len(self.df)

    def explore(self, f: dict, word: str, limit: int = 100):
        sub = self.df[self._filter_mask(f) & self._word_mask(word)]
        return self._newest(sub, limit), len(sub)

    def _failures(self):
        df = self.df
        is_failure = (df["type"] == "auth") & (df["action"] == "login") & (df["result"] == "failed")
        f = df.loc[is_failure, ["id", "time", "actor", "ip"]]
        # "" and missing mean the same for counting
        return f.assign(actor=f["actor"].mask(f["actor"].eq("")), ip=f["ip"].mask(f["ip"].eq("")))

    def _by_key(self, key: str, other: str, out_key: str, out_other: str):
        g = (
            self._failures()
            .dropna(subset=[key])
            .groupby(key)
            .agg(
                failures=("time", "size"),
                **{out_other: (other, "nunique")},
                first=("time", "min"),
                last=("time", "max"),
            )
            .reset_index()
            .rename(columns={key: out_key})
        )
        return g.sort_values(["failures", out_key], ascending=[False, True], kind="stable")

    def failures_by_ip(self):
        return self._by_key("ip", "actor", "ip", "accounts")

    def failures_by_account(self):
        return self._by_key("actor", "ip", "account", "ips")

    def failures_by_hour(self, tz: str):
        pd = self.pd
        local = self._failures()["time"].dt.tz_convert(tz)
        counts = local.groupby([local.dt.dayofweek + 1, local.dt.hour]).size()
        cells = pd.MultiIndex.from_product([range(1, 8), range(24)], names=["weekday", "hour"])
        return counts.reindex(cells, fill_value=0)

    def brute_force(self, threshold: int, window_s: int):
        f = self._failures().dropna(subset=["ip"])[["ip", "time"]].sort_values(["ip", "time"])
        f["n"] = 1
        # time-based rolling windows are (t - W, t]: the same runs as [t, t + W)
        counts = f.groupby("ip", sort=False).rolling(f"{window_s}s", on="time")["n"].sum()
        peak = counts.groupby(level=0).max()
        return peak[peak >= threshold]

    # -- export ----------------------------------------------------------------------------
    def prepare_export(self, rows: int):
        self.export_frame = self._newest(self.df, rows)
        return len(self.export_frame)

    def write_csv(self, path: Path, tz: str):
        e = self.export_frame
        e.assign(time=e["time"].dt.tz_convert(tz)).to_csv(path, index=False)

    def write_xlsx(self, path: Path, tz: str):
        e = self.export_frame
        # Excel has no time zones: local wall-clock times
        local = e.assign(time=e["time"].dt.tz_convert(tz).dt.tz_localize(None))
        local.to_excel(path, index=False, engine="xlsxwriter")


# --------------------------------------------------------------------------------- DuckDB


class DuckDBEngine:
    name = "duckdb"

    def __init__(self) -> None:
        import duckdb

        self.con = duckdb.connect()
        self.con.execute("SET TimeZone = 'UTC'")
        self.con.execute("SET enable_progress_bar = false")

    # -- load ------------------------------------------------------------------------------
    def _drop(self) -> None:
        self.con.execute("DROP TABLE IF EXISTS events")

    def load_parquet(self, path: str):
        self._drop()
        self.con.execute("CREATE TABLE events AS SELECT * FROM read_parquet(?)", [str(path)])

    def _from_arrow(self, table) -> None:
        # DuckDB's sqlite/postgres scanner extensions cannot be installed offline, so the rows
        # come through connectorx as Arrow (the fastest reader there is) and DuckDB ingests that.
        import pyarrow as pa

        time_type = table.schema.field("time").type
        if pa.types.is_string(time_type) or pa.types.is_large_string(time_type):
            fix = "CAST(time AS TIMESTAMPTZ)"
        elif getattr(time_type, "tz", None) is None:
            fix = "time::TIMESTAMP AT TIME ZONE 'UTC'"
        else:
            fix = "time"
        self.con.register("arrow_rows", table)
        try:
            self.con.execute(f"CREATE TABLE events AS SELECT * REPLACE ({fix} AS time) FROM arrow_rows")  # noqa: S608
        finally:
            self.con.unregister("arrow_rows")

    def load_sqlite(self, path: str):
        import connectorx as cx

        self._drop()
        self._from_arrow(cx.read_sql(f"sqlite://{Path(path).resolve()}", SELECT_ALL, return_type="arrow"))

    def load_postgres(self, url: str):
        import connectorx as cx

        self._drop()
        self._from_arrow(cx.read_sql(url, SELECT_ALL, return_type="arrow"))

    def height(self) -> int:
        return self.con.execute("SELECT count(*) FROM events").fetchall()[0][0]

    # -- conditions ------------------------------------------------------------------------
    @staticmethod
    def _filter_sql(f: dict) -> tuple[str, list]:
        conds, params = (
            ["time >= ?", "time < ?"],
            [datetime.fromisoformat(f["lo"]), datetime.fromisoformat(f["hi"])],
        )
        if f["types"]:
            conds.append(f"type IN ({', '.join('?' for _ in f['types'])})")
            params += list(f["types"])
        if f["results"]:
            conds.append(f"result IN ({', '.join('?' for _ in f['results'])})")
            params += list(f["results"])
        return " AND ".join(conds), params

    @staticmethod
    def _word_sql(word: str) -> tuple[str, list]:
        pattern = like_pattern(word, substring=True)
        # ESCAPE only when the word has a character to escape: with it DuckDB takes a generic
        # path about twice as slow (0.23 s against 0.13 s for six columns at 1M events)
        escape = " ESCAPE '\\'" if any(ch in word for ch in "%_\\") else ""
        sql = "(" + " OR ".join(f"{c} ILIKE ?{escape}" for c in TEXT_COLUMNS) + ")"
        return sql, [pattern] * len(TEXT_COLUMNS)

    @staticmethod
    def _field_sql(column: str, value: str) -> tuple[str, list]:
        if "*" in value:
            return f"lower({column}) LIKE ? ESCAPE '\\'", [like_pattern(value, substring=False)]
        return f"lower({column}) = ?", [value.lower()]

    def _count(self, where: str, params: list) -> int:
        return self.con.execute(f"SELECT count(*) FROM events WHERE {where}", params).fetchall()[0][0]  # noqa: S608

    def _page(self, where: str, params: list, limit: int):
        sql = f"SELECT * FROM events WHERE {where} ORDER BY time DESC, id DESC LIMIT {int(limit)}"  # noqa: S608
        relation = self.con.sql(sql, params=params)
        return relation.to_arrow_table() if hasattr(relation, "to_arrow_table") else relation.arrow()

    # -- steps -----------------------------------------------------------------------------
    def filter_count(self, f: dict) -> int:
        return self._count(*self._filter_sql(f))

    def search_count(self, word: str) -> int:
        return self._count(*self._word_sql(word))

    def qualified_count(self, q: dict) -> int:
        a, pa_ = self._field_sql("actor", q["user"])
        e, pe = self._field_sql("email", q["user"])
        c, pc = self._field_sql("action", q["action"])
        t, pt = self._field_sql("target", q["resource"])
        return self._count(f"({a} OR {e}) AND {c} AND {t}", pa_ + pe + pc + pt)

    def first_page(self, limit: int = 100):
        return self._page("true", [], limit), self._count("true", [])

    def explore(self, f: dict, word: str, limit: int = 100):
        fw, fp = self._filter_sql(f)
        ww, wp = self._word_sql(word)
        where, params = f"{fw} AND {ww}", fp + wp
        return self._page(where, params, limit), self._count(where, params)

    _FAILURES = (
        "SELECT id, time, NULLIF(actor, '') AS actor, NULLIF(ip, '') AS ip FROM events "
        "WHERE type = 'auth' AND action = 'login' AND result = 'failed'"
    )

    def _by_key(self, key: str, other: str, out_key: str, out_other: str):
        sql = (
            f"WITH f AS ({self._FAILURES}) "  # noqa: S608 - fixed column names
            f"SELECT {key} AS {out_key}, count(*) AS failures, count(DISTINCT {other}) AS {out_other}, "
            f"epoch_us(min(time)) AS first, epoch_us(max(time)) AS last "
            f"FROM f WHERE {key} IS NOT NULL GROUP BY {key} ORDER BY failures DESC, {out_key}"
        )
        return self.con.execute(sql).fetchall()

    def failures_by_ip(self):
        return self._by_key("ip", "actor", "ip", "accounts")

    def failures_by_account(self):
        return self._by_key("actor", "ip", "account", "ips")

    def failures_by_hour(self, tz: str):
        sql = (
            f"WITH f AS ({self._FAILURES}), "  # noqa: S608 - fixed text
            "c AS (SELECT isodow(timezone(?, time)) AS weekday, hour(timezone(?, time)) AS hour, "
            "count(*) AS failures FROM f GROUP BY ALL) "
            "SELECT w.weekday, h.hour, coalesce(c.failures, 0) AS failures "
            "FROM range(1, 8) w(weekday) CROSS JOIN range(24) h(hour) "
            "LEFT JOIN c ON c.weekday = w.weekday AND c.hour = h.hour ORDER BY 1, 2"
        )
        return self.con.execute(sql, [tz, tz]).fetchall()

    def brute_force(self, threshold: int, window_s: int):
        # RANGE frame (t - W + 1µs .. t] over µs times is the half-open window (t - W, t]
        sql = (
            f"WITH f AS ({self._FAILURES}), "  # noqa: S608 - fixed text
            "w AS (SELECT ip, count(*) OVER (PARTITION BY ip ORDER BY time "
            f"RANGE BETWEEN INTERVAL '{int(window_s) * 1_000_000 - 1} microseconds' PRECEDING "
            "AND CURRENT ROW) AS n FROM f WHERE ip IS NOT NULL) "
            "SELECT ip, max(n) AS max_in_window FROM w GROUP BY ip HAVING max(n) >= ? ORDER BY ip"
        )
        return self.con.execute(sql, [threshold]).fetchall()

    # -- export ----------------------------------------------------------------------------
    def prepare_export(self, rows: int):
        self.con.execute("DROP TABLE IF EXISTS export_rows")
        self.con.execute(
            f"CREATE TEMP TABLE export_rows AS SELECT * FROM events ORDER BY time DESC, id DESC LIMIT {int(rows)}"  # noqa: S608
        )
        return self.con.execute("SELECT count(*) FROM export_rows").fetchall()[0][0]

    def write_csv(self, path: Path, tz: str):
        # COPY writes TIMESTAMPTZ in the session's zone, with its offset
        if not re.fullmatch(r"[A-Za-z0-9_+\-/]+", tz):
            raise ValueError(f"not a time zone name: {tz!r}")
        self.con.execute(f"SET TimeZone = '{tz}'")
        try:
            self.con.execute(
                "COPY (SELECT * FROM export_rows ORDER BY time DESC, id DESC) "  # noqa: S608
                f"TO '{str(path).replace(chr(39), chr(39) * 2)}' (HEADER)"
            )
        finally:
            self.con.execute("SET TimeZone = 'UTC'")

    write_xlsx = None  # the excel extension cannot be installed offline

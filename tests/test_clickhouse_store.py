"""ClickHouse as a store users reach: ``chdb://FOLDER`` through ``open_store`` and ``--db``.

The same demo file is imported into a real SQLite file and a real chDB folder; counts,
pages, engines (both modes), security figures, the hash chain and the command line must
give the same answers on both. Skips when chdb is not installed (a failure under CI=true).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest
from conftest import APP_PAGES, ROOT, need

from audit_analytics import integrity
from audit_analytics.demo.generate import generate
from audit_analytics.engines.sql import open_engine
from audit_analytics.engines.store import open_store
from audit_analytics.errors import StoreError
from audit_analytics.filters import Filter, Sort
from audit_analytics.io import ingest

HAVE_CHDB = importlib.util.find_spec("chdb") is not None
EVENTS = 4_000
BAD_LINES = ['{"id": "no-time"}', "not json at all"]

FILTERS = {
    "everything": Filter(),
    "auth": Filter(types=("auth",)),
    "failed": Filter(results=("failed",)),
    "search": Filter(query="root"),
    "ip-cidr": Filter(query="ip:10.0.0.0/8 -action:logout"),
    "30d-types": Filter(period="30d", types=("auth", "user"), tz="Europe/Paris"),
}
SORTS = [Sort("time", True), Sort("time", False), Sort("actor", False), Sort("result", True)]


@pytest.fixture(scope="module", autouse=True)
def _chdb_installed():
    need(HAVE_CHDB, "chdb is not installed (pip install chdb): the ClickHouse store is untested")


def _demo_file(folder: Path) -> Path:
    path = folder / "demo.jsonl"
    generate(EVENTS, seed=16).events.write_ndjson(path)
    with path.open("a", encoding="utf-8") as out:
        out.write("\n".join(BAD_LINES) + "\n")
    return path


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """(sqlite store, chdb store, the demo file, the two import summaries)."""
    folder = tmp_path_factory.mktemp("ch16")
    demo = _demo_file(folder)
    sqlite = open_store(f"sqlite:///{folder / 'audit.db'}")
    ch = open_store(f"chdb://{folder / 'ch'}")
    summaries = [
        ingest.import_files(s, [demo], rejects=folder / f"rejects-{i}.jsonl")
        for i, s in enumerate((sqlite, ch))
    ]
    yield sqlite, ch, demo, summaries
    ch.close()
    sqlite.engine.dispose()


# --------------------------------------------------------------------------- opening


def test_chdb_url_opens_a_clickhouse_table_on_disk(stores):
    _, ch, _, _ = stores
    assert ch.dialect == "clickhouse"
    assert ch.safe_url == f"chdb://{ch.path}"
    assert (Path(ch.path) / "audit-chain.sqlite").is_file()
    ddl = ch._query("SHOW CREATE TABLE audit.audit_events").column(0)[0].as_py()
    # a partition a month and retention group, so retention detaches whole partitions
    assert "PARTITION BY (toYYYYMM(time), if((type IN (" in ddl and "'security', 'operational'))" in ddl
    assert "ORDER BY (time, id)" in ddl
    assert "bloom_filter" in ddl
    # another store on the same folder sees the same events
    again = open_store(f"chdb://{ch.path}")
    try:
        assert again.count() == ch.count() == EVENTS
    finally:
        again.close()


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("chdb://", "give the folder after chdb://"),
        ("chdb:relative", "give the folder after chdb://"),
        ("chdb:///tmp/x?database=y", "not a chDB URL"),
    ],
)
def test_bad_chdb_urls_say_what_and_where(url, words):
    with pytest.raises(StoreError, match=words) as info:
        open_store(url)
    assert repr(url) in str(info.value)


def test_a_file_is_not_a_chdb_folder(tmp_path):
    path = tmp_path / "afile"
    path.write_text("x")
    with pytest.raises(StoreError, match="is a file") as info:
        open_store(f"chdb://{path}")
    assert str(path) in str(info.value)


def test_chdb_takes_no_engine_options(tmp_path):
    with pytest.raises(StoreError, match="no engine options"):
        open_store(f"chdb://{tmp_path}", pool_size=3)


def test_a_second_folder_in_one_process_is_refused_clearly(stores, tmp_path):
    with pytest.raises(StoreError, match="cannot open chDB at .*already has another chDB folder open"):
        open_store(f"chdb://{tmp_path / 'other'}")


def test_a_folder_another_process_holds_is_refused_clearly(tmp_path):
    folder = tmp_path / "held"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"from audit_analytics import open_store; s = open_store('chdb://{folder}'); "
            "print('open', flush=True); input()",
        ],
        env=os.environ | {"PYTHONPATH": str(ROOT)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "open"
        second = _cli("query", "--count", "--db", f"chdb://{folder}", cwd=tmp_path)
        assert second.returncode == 2
        # one line: chDB's engine wrote its own "Code: 76. DB::Exception: Cannot lock file …"
        # to the process's stderr before it
        assert second.stderr.startswith(f"error: cannot open chDB at {folder}: another process")
        assert len(second.stderr.strip().splitlines()) == 1, second.stderr
    finally:
        holder.communicate("\n", timeout=60)


# --------------------------------------------------------------------------- import


def test_import_gives_the_same_summary_and_rejects(stores, tmp_path):
    sqlite, ch, _, (on_sqlite, on_ch) = stores
    assert (on_ch.imported, on_ch.rejected, on_ch.duplicates) == (EVENTS, len(BAD_LINES), 0)
    assert (on_sqlite.imported, on_sqlite.rejected, on_sqlite.duplicates) == (
        on_ch.imported,
        on_ch.rejected,
        on_ch.duplicates,
    )
    rejects = [Path(p).read_text(encoding="utf-8") for p in (*on_sqlite.rejects_paths, *on_ch.rejects_paths)]
    assert len(rejects) == 2 and rejects[0] == rejects[1] and rejects[0].count("\n") == len(BAD_LINES)


def test_reimporting_the_file_adds_nothing(stores, tmp_path):
    sqlite, ch, demo, _ = stores
    before = (ch.count(), integrity.head(ch))
    again = ingest.import_files(ch, [demo], rejects=tmp_path / "r.jsonl")
    assert (again.imported, again.duplicates, again.conflicts) == (0, EVENTS, 0)
    assert (ch.count(), integrity.head(ch)) == before


def test_a_conflicting_duplicate_is_rejected_not_stored(stores, tmp_path):
    sqlite, ch, _, _ = stores
    row = ch.page(Filter(), limit=1).with_columns(pl.lit("tampered").alias("action"))
    path = tmp_path / "conflict.jsonl"
    row.write_ndjson(path)
    results = [
        ingest.import_files(s, [path], rejects=tmp_path / f"c{i}.jsonl") for i, s in enumerate((sqlite, ch))
    ]
    assert [(r.imported, r.duplicates, r.conflicts) for r in results] == [(0, 1, 1)] * 2
    assert ch.get(row["id"][0])["action"] != "tampered"
    assert "already stored with a different action" in (tmp_path / "c1.jsonl").read_text()


def test_a_failed_import_leaves_clickhouse_untouched(stores, tmp_path, monkeypatch):
    _, ch, _, _ = stores
    fresh = generate(1_000, seed=99).events
    path = tmp_path / "fresh.jsonl"
    fresh.write_ndjson(path)
    before = (ch.count(), integrity.head(ch))

    def broken(self):
        raise RuntimeError("the disk is full")

    monkeypatch.setattr(ingest._Writer, "finish", broken)
    with pytest.raises(RuntimeError, match="disk is full"):
        ingest.import_files(ch, [path], rejects=tmp_path / "r.jsonl")
    assert (ch.count(), integrity.head(ch)) == before  # the rows inserted were deleted again
    assert ch.get(fresh["id"][0]) is None


# --------------------------------------------------------------------------- reading


@pytest.mark.parametrize("name", FILTERS)
def test_counts_and_pages_agree_with_sqlite(stores, name):
    sqlite, ch, _, _ = stores
    flt = FILTERS[name]
    assert ch.count(flt) == sqlite.count(flt) > 0
    for sort in SORTS:
        for offset in (0, 37):
            got = ch.page(flt, sort, offset=offset, limit=25)
            assert got["id"].to_list() == sqlite.page(flt, sort, offset=offset, limit=25)["id"].to_list()
    assert ch.load(flt).equals(sqlite.load(flt))


def test_store_summaries_agree_with_sqlite(stores):
    sqlite, ch, _, _ = stores
    assert ch.time_range() == sqlite.time_range()
    assert ch.signature() == sqlite.signature()
    assert ch.actors().equals(sqlite.actors())
    assert ch.category_counts().sort("type").equals(sqlite.category_counts().sort("type"))
    assert sorted(ch.distinct_ips()) == sorted(sqlite.distinct_ips())
    ids = sqlite.page(Filter(), limit=700)["id"].to_list()
    assert ch.details(ids).sort("id").equals(sqlite.details(ids).sort("id"))


@pytest.mark.parametrize("mode", ["memory", "pushdown"])
def test_engines_agree_with_sqlite(stores, mode):
    sqlite, ch, _, _ = stores
    on_ch, on_sqlite = open_engine(ch, mode=mode), open_engine(sqlite, mode=mode)
    assert on_ch.height == on_sqlite.height == EVENTS
    flt = Filter()
    assert on_ch.failure_summary(flt) == on_sqlite.failure_summary(flt)
    assert on_ch.failures_by_ip(flt, top=10).equals(on_sqlite.failures_by_ip(flt, top=10))
    assert on_ch.failures_by_account(flt, top=10).equals(on_sqlite.failures_by_account(flt, top=10))
    assert on_ch.retention_summary().equals(on_sqlite.retention_summary())
    thresholds = {"threshold": 5, "window": timedelta(minutes=10)}
    found = on_ch.detect("brute_force", flt, thresholds)
    assert found.height > 0 and found.equals(on_sqlite.detect("brute_force", flt, thresholds))
    selection = on_ch.select(Filter(types=("auth",)))
    assert selection.total == on_sqlite.select(Filter(types=("auth",))).total
    event = on_ch.rows(selection, 40, 1).row(0, named=True)
    assert on_ch.position_of(event["id"], selection) == 40
    full = on_ch.get(event["id"])
    assert full == on_sqlite.get(event["id"])
    mine, theirs = on_ch.related(full), on_sqlite.related(full)
    assert [f["id"].to_list() for f in mine] == [f["id"].to_list() for f in theirs]


def test_pushdown_above_the_memory_limit_agrees(stores):
    """With a memory limit below the table, the analyses run in ClickHouse itself."""
    sqlite, ch, _, _ = stores
    on_ch, on_sqlite = (
        open_engine(ch, mode="pushdown", limit=10),
        open_engine(sqlite, mode="pushdown", limit=10),
    )
    flt = Filter()
    assert on_ch.failure_summary(flt) == on_sqlite.failure_summary(flt)
    assert on_ch.failures_by_hour(flt, tz="Europe/Paris").equals(
        on_sqlite.failures_by_hour(flt, tz="Europe/Paris")
    )
    assert on_ch.time_range(flt) == on_sqlite.time_range(flt)
    thresholds = {"threshold": 5, "window": timedelta(minutes=10)}
    assert on_ch.detect("brute_force", flt, thresholds).equals(
        on_sqlite.detect("brute_force", flt, thresholds)
    )


@pytest.mark.postgres
def test_postgres_gives_the_same_figures(stores, pg_store, tmp_path):
    """The demo file imported into PostgreSQL too: the same counts, pages and security figures."""
    _, ch, demo, (_, on_ch) = stores
    on_pg = ingest.import_files(pg_store, [demo], rejects=tmp_path / "pg-rejects.jsonl")
    assert (on_pg.imported, on_pg.rejected, on_pg.duplicates) == (
        on_ch.imported,
        on_ch.rejected,
        on_ch.duplicates,
    )
    for flt in FILTERS.values():
        assert pg_store.count(flt) == ch.count(flt)
        for sort in SORTS:
            assert (
                pg_store.page(flt, sort, limit=25)["id"].to_list()
                == ch.page(flt, sort, limit=25)["id"].to_list()
            )
    on_ch_engine = open_engine(ch, mode="pushdown", limit=10)
    on_pg_engine = open_engine(pg_store, mode="pushdown", limit=10)
    assert on_ch_engine.failure_summary(Filter()) == on_pg_engine.failure_summary(Filter())
    assert on_ch_engine.failures_by_ip(Filter(), top=10).equals(on_pg_engine.failures_by_ip(Filter(), top=10))
    thresholds = {"threshold": 5, "window": timedelta(minutes=10)}
    assert on_ch_engine.detect("brute_force", Filter(), thresholds).equals(
        on_pg_engine.detect("brute_force", Filter(), thresholds)
    )


# --------------------------------------------------------------------------- the chain, accounts


@pytest.fixture
def scratch(stores):
    """A store of its own in the same chDB folder (chDB serves one folder per process),
    holding the demo file, for the tests that write."""
    from audit_analytics.engines.clickhouse import ClickHouseStore

    _, ch, demo, _ = stores
    store = ClickHouseStore(ch.path, database="scratch")
    ingest.import_files(store, [demo], rejects=Path(ch.path).parent / "scratch-rejects.jsonl")
    yield store
    store.drop()


def test_the_hash_chain_verifies_and_catches_an_edit(scratch):
    report = integrity.verify(scratch)
    assert report.ok and report.events == scratch.count() == EVENTS
    integrity.record_verification(scratch, report, actor="tester", via="test")
    assert integrity.last_verification(scratch)["actor"] == "tester"
    victim = scratch.page(Filter(types=("auth",)), limit=1)["id"][0]
    scratch._command(
        "ALTER TABLE scratch.audit_events UPDATE action = {a:String} WHERE id = {id:String} "
        "SETTINGS mutations_sync = 1",
        {"id": victim, "a": "edited"},
    )
    edited = integrity.verify(scratch)
    assert [(p.kind, victim in p.ids) for p in edited.problems] == [("edited", True)]


def test_threads_share_a_store(scratch):
    """The app's sessions are threads on one store: reads and writes at once stay exact."""
    import threading

    errors: list[str] = []
    expected = scratch.count(Filter(types=("auth",)))

    def work(i: int) -> None:
        try:
            for k in range(15):
                if i % 2:
                    assert scratch.count(Filter(types=("auth",))) == expected
                    assert scratch.page(Filter(query="root"), limit=20).height > 0
                else:
                    scratch.record(actor=f"t{i}", type="audit", action="view", target=str(k))
        except Exception as exc:  # noqa: BLE001 - collected for the assert below
            errors.append(repr(exc))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert scratch.count() == EVENTS + 3 * 15
    assert integrity.verify(scratch).ok


def test_accounts_sign_in_against_a_chdb_store(scratch, tmp_path):
    from audit_analytics import accounts

    users = tmp_path / "users.toml"
    accounts.add_user(users, "carol", "auditor", "correct horse battery", actor="root", store=scratch)
    assert accounts.sign_in(users, scratch, "carol", "correct horse battery").user.name == "carol"
    assert accounts.sign_in(users, scratch, "carol", "wrong").user is None
    logins = scratch.load(Filter(types=("auth",), users=("carol",)))
    assert sorted(logins["result"].cast(pl.String).to_list()) == ["done", "failed"]
    assert integrity.verify(scratch).ok  # each recorded event is a batch of the chain


# --------------------------------------------------------------------------- a server (clickhouse://)

HAVE_CONNECT = importlib.util.find_spec("clickhouse_connect") is not None


class ChdbAsServer:
    """clickhouse-connect's client as far as ServerConnection uses it, answered by chDB: every
    parameter goes through clickhouse-connect's own binding, i.e. exactly the ``param_*``
    text it would send a server over HTTP."""

    def __init__(self, chdb):
        self.chdb = chdb
        self.sent: list[dict[str, str]] = []

    def _bound(self, sql, parameters):
        from clickhouse_connect.driver.binding import bind_query

        final, bound = bind_query(sql, parameters)
        self.sent.append(bound)
        return final, {k.removeprefix("param_"): v for k, v in bound.items()}

    def query_arrow(self, sql, parameters=None, use_strings=None):
        assert use_strings  # text as Arrow strings, not bytes, whatever the server's default
        return self.chdb.query(*self._bound(sql, parameters))

    def command(self, sql, parameters=None):
        self.chdb.command(*self._bound(sql, parameters))

    def insert_arrow(self, table, arrow, database=None):
        self.chdb.insert(database, table, arrow)

    def close(self):
        self.chdb.close()


@pytest.fixture
def via_server(stores, tmp_path):
    """A store through ServerConnection (its statements and parameters as a server gets
    them), on chDB, with the demo file imported and the chain in a SQLite file of its own."""
    need(HAVE_CONNECT, "clickhouse-connect is not installed (pip install clickhouse-connect)")
    from audit_analytics.engines.clickhouse import ChdbConnection, ClickHouseStore, ServerConnection

    _, ch, demo, _ = stores
    client = ChdbAsServer(ChdbConnection(ch.path))
    store = ClickHouseStore(
        database="viaserver",
        connection=ServerConnection(client, "clickhouse://default@server:8123/viaserver"),
        chain_url=f"sqlite:///{tmp_path / 'chain.sqlite'}",
    )
    summary = ingest.import_files(store, [demo], rejects=tmp_path / "rejects.jsonl")
    assert (summary.imported, summary.rejected) == (EVENTS, len(BAD_LINES))
    yield store, client
    store.drop()


def test_a_server_connection_gives_the_same_answers(stores, via_server, tmp_path):
    sqlite, _, demo, _ = stores
    store, client = via_server
    assert store.safe_url == "clickhouse://default@server:8123/viaserver"
    for flt in FILTERS.values():
        assert store.count(flt) == sqlite.count(flt)
        assert store.page(flt, limit=30)["id"].to_list() == sqlite.page(flt, limit=30)["id"].to_list()
    on_server, on_sqlite = (
        open_engine(store, mode="pushdown", limit=10),
        open_engine(sqlite, mode="pushdown", limit=10),
    )
    assert on_server.failure_summary(Filter()) == on_sqlite.failure_summary(Filter())
    thresholds = {"threshold": 5, "window": timedelta(minutes=10)}
    assert on_server.detect("brute_force", Filter(), thresholds).equals(
        on_sqlite.detect("brute_force", Filter(), thresholds)
    )
    again = ingest.import_files(store, [demo], rejects=tmp_path / "again.jsonl")
    assert (again.imported, again.duplicates) == (0, EVENTS)
    assert integrity.verify(store).ok
    assert any("param_ids" in sent for sent in client.sent)  # the duplicate check's ids


@pytest.mark.parametrize(
    "value", ["", "it's", "back\\slash", "tab\there", "new\nline", "\\N", "{x:String}", "é\u2028😀"]
)
def test_values_reach_a_server_unchanged(via_server, value):
    import sqlalchemy as sa

    store, client = via_server
    assert store.frame(sa.select(sa.literal(value, sa.String).label("v"))).item() == value
    assert store._by_ids("SELECT id", pl.Series([value, "x"])).height == 0


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("clickhouse://", "not a ClickHouse server URL"),
        ("clickhouse:///audit", "not a ClickHouse server URL"),
        ("clickhouse://u:secret@host:8123/audit?database=x", "unknown options \\['database'\\]"),
    ],
)
def test_bad_server_urls_say_what_and_hide_the_password(url, words):
    with pytest.raises(StoreError, match=words) as info:
        open_store(url)
    assert "secret" not in str(info.value)


def test_an_unreachable_server_is_named_without_its_password():
    need(HAVE_CONNECT, "clickhouse-connect is not installed (pip install clickhouse-connect)")
    with pytest.raises(
        StoreError, match="cannot reach ClickHouse at clickhouse://u:\\*\\*\\*@127.0.0.1:9/audit"
    ) as info:
        open_store("clickhouse://u:secret@127.0.0.1:9/audit")
    assert "secret" not in str(info.value)


# --------------------------------------------------------------------------- the command line


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"PYTHONPATH": str(ROOT), "AUDIT_ACTOR": "tester"}
    return subprocess.run(
        [sys.executable, "-m", "audit_analytics.cli.main", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_cli_round_trip_matches_sqlite(tmp_path):
    """import, re-import, query, count, security and export with --db chdb://… (a relative
    folder, in a process of its own) print what the same commands print on SQLite."""
    demo = _demo_file(tmp_path)
    dbs = {"sqlite": "sqlite:///audit.db", "chdb": "chdb://data/ch"}
    out: dict[str, list[str]] = {}
    for name, db in dbs.items():
        runs = [
            _cli("import", str(demo), "--db", db, cwd=tmp_path),
            _cli("import", str(demo), "--db", db, cwd=tmp_path),
            _cli("query", "--db", db, "--count", "--type", "auth", cwd=tmp_path),
            _cli("query", "--db", db, "--limit", "30", "--format", "csv", "--search", "root", cwd=tmp_path),
            _cli("security", "by-ip", "--db", db, "--format", "csv", cwd=tmp_path),
            _cli("security", "brute-force", "--db", db, "--format", "json", cwd=tmp_path),
            _cli("export", "--db", db, "--type", "auth", "--output", f"{name}.csv", cwd=tmp_path),
        ]
        assert [r.returncode for r in runs] == [3, 3, 0, 0, 0, 0, 0], [r.stderr for r in runs]
        out[name] = [r.stdout.replace(name, "DB") for r in runs]
    assert out["chdb"] == out["sqlite"]
    assert out["chdb"][0].startswith(f"imported {EVENTS:,}, rejected {len(BAD_LINES)}, duplicates 0")
    assert out["chdb"][1].startswith(f"imported 0, rejected {len(BAD_LINES)}, duplicates {EVENTS:,}")
    assert json.loads(out["chdb"][5]) and int(out["chdb"][2]) > 0
    assert (tmp_path / "data" / "ch" / "audit-chain.sqlite").is_file()
    assert (tmp_path / "chdb.csv").read_bytes() == (tmp_path / "sqlite.csv").read_bytes()
    verified = _cli("integrity", "verify", "--db", dbs["chdb"], cwd=tmp_path)
    assert verified.returncode == 0 and verified.stdout.startswith("verified:"), verified.stderr


@pytest.mark.parametrize(
    ("text", "prefix", "part", "expected"),
    [
        ("a%-xyz", "a%-", "xy", (True, True)),
        ("axyz", "a%", "%", (False, False)),
        ("qb_cq", "q", "b_c", (True, True)),
        ("qbxcq", "q", "b_c", (True, False)),
        ("a/b", "a/", "/", (True, True)),
    ],
)
def test_autoescaped_like_matches_literally(stores, text, prefix, part, expected):
    """startswith()/contains(autoescape=True), as integrity and evidence use them: the
    wildcards in the value are plain characters, and no quote reaches the SQL but ESCAPE '/'."""
    import sqlalchemy as sa

    _, ch, _, _ = stores
    value = sa.literal(text, sa.String)
    stmt = sa.select(
        value.startswith(prefix, autoescape=True).label("starts"),
        value.contains(part, autoescape=True).label("has"),
    )
    assert ch.frame(stmt).row(0) == expected


# --------------------------------------------------------------------------- the app (last: it may write)


@pytest.mark.parametrize("mode", ["memory", "pushdown"])
def test_every_page_runs_on_chdb(stores, monkeypatch, as_role, tmp_path, mode):
    """The app on the chDB folder (the one this process has open: chDB serves one)."""
    import gc

    import streamlit as st
    from streamlit.testing.v1 import AppTest

    _, ch, _, _ = stores
    monkeypatch.setenv("AUDIT_DB_URL", f"chdb://{ch.path}")
    monkeypatch.setenv("AUDIT_ENGINE", mode)
    monkeypatch.setenv("AUDIT_SNAPSHOT", "off")
    monkeypatch.setenv("AUDIT_RETENTION_POLICY", str(tmp_path / "retention.toml"))
    try:
        for page, title in APP_PAGES.items():
            at = as_role(AppTest.from_file(str(ROOT / "app.py"), default_timeout=120), "admin")
            at.switch_page(page)
            at.query_params["period"] = "all"
            at.run()
            assert not at.exception, (page, [e.value for e in at.exception])
            assert [t.value for t in at.title] == [title]
    finally:
        st.cache_resource.clear()  # the app's store: chDB's session closes with it
        gc.collect()


def test_a_process_that_ran_the_app_on_chdb_exits_cleanly(tmp_path):
    """chDB's own shutdown at interpreter exit crashed the process (SIGSEGV, exit 139) when
    the app's threads had used a session that was still open; the store closes its sessions
    before that (atexit)."""
    folder = tmp_path / "ch"
    users = tmp_path / "users.toml"
    users.write_text('[users.tester]\nrole = "auditor"\npassword_hash = "$argon2id$unused"\n')
    script = f"""
import os
os.environ["AUDIT_DB_URL"] = "chdb://{folder}"
os.environ["AUDIT_SNAPSHOT_DIR"] = "{tmp_path / "snapshots"}"
os.environ["AUDIT_USERS_FILE"] = "{users}"
from audit_analytics.demo.generate import generate
from audit_analytics.engines.store import open_store
store = open_store("chdb://{folder}")
store.append(generate(2_000, seed=1).events)
store.close()
from streamlit.testing.v1 import AppTest
at = AppTest.from_file("{ROOT / "app.py"}", default_timeout=120)
at.session_state["aa_user"] = "tester"
at.run()
assert not at.exception, at.exception
print("ran the app")
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=ROOT
    )
    assert "ran the app" in done.stdout, done.stderr[-3000:]
    assert done.returncode == 0, done.stderr[-3000:]

"""Tamper evidence, tested the hostile way: a real database file (and a real PostgreSQL server)
is altered through SQL, never through the package, and ``verify`` must name exactly the batch
and the events affected. A clean log must verify after every kind of write the product does.

Every check also asserts how much was checked, so no test passes because verification skipped
something.
"""

from __future__ import annotations

import json
import re
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa
from conftest import STORE_FIXTURES

from audit_analytics import accounts, integrity
from audit_analytics.cli.main import main as cli
from audit_analytics.demo.generate import generate
from audit_analytics.engines import chain
from audit_analytics.engines.store import open_store
from audit_analytics.io.ingest import import_files
from audit_analytics.io.retention import Policy
from audit_analytics.io.retention import apply as retention_apply

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
EVENTS = generate(3_000, seed=11, now=NOW, days=200).events
FIRST, SECOND = EVENTS.head(2_000), EVENTS.tail(1_000)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres), "chdb"])
def store(request):
    return request.getfixturevalue(STORE_FIXTURES.get(request.param, "pg_store"))


@pytest.fixture
def filled(store):
    """Three batches: 2,000 events, 1,000 events, then one app event."""
    store.append(FIRST, source="first")
    store.append(SECOND, source="second")
    store.record(actor="ada", type="audit", action="export", params={"rows": 1})
    return store


def sql(store, statement: str, **params) -> int:
    """Tamper with the database behind the package's back. On ClickHouse the chain's tables
    are in the store's SQL database as everywhere; a statement on ``audit_events`` is done
    there by :func:`tamper`."""
    if store.dialect == "clickhouse" and "audit_events" in statement:
        return _tamper_clickhouse(store, statement, params)
    with store.engine.begin() as conn:
        return conn.execute(sa.text(statement), params).rowcount


def tamper(store, ids: list[str], **values) -> int:
    """Change these events' columns to ``values`` (none given: delete them); -> rows hit.
    ClickHouse cannot update a sort-key column (``time``), so there the rows are deleted and
    inserted again changed, as someone with write access could."""
    t = store.table
    if store.dialect != "clickhouse":
        stmt = sa.update(t).values(**values) if values else sa.delete(t)
        with store.engine.begin() as conn:
            return conn.execute(stmt.where(t.c.id.in_(ids))).rowcount
    rows = store.events_by_id(ids)
    store._by_ids("DELETE", rows["id"])
    if values:
        store._insert(rows.with_columns(pl.lit(v, dtype=rows.schema[c]).alias(c) for c, v in values.items()))
    return rows.height


_EDIT = re.compile(r"UPDATE audit_events SET (\w+) = (:v|'[^']*') WHERE id = :id")


def _tamper_clickhouse(store, statement: str, params) -> int:
    if statement == "DELETE FROM audit_events WHERE id = :id":
        return tamper(store, [params["id"]])
    chained = re.fullmatch(
        r"DELETE FROM audit_events WHERE id IN \((SELECT id FROM audit_chain WHERE .+)\)", statement
    )
    if chained is not None:
        with store.engine.connect() as conn:
            return tamper(store, [r[0] for r in conn.execute(sa.text(chained.group(1)))])
    copied = re.search(r"SELECT '([^']+)', time, .* FROM audit_events WHERE id = :id$", statement)
    if statement.startswith("INSERT INTO audit_events ") and copied is not None:
        store._insert(store.events_by_id([params["id"]]).with_columns(id=pl.lit(copied.group(1))))
        return 1
    edit = _EDIT.fullmatch(statement)
    assert edit is not None, f"no ClickHouse spelling for {statement!r}"
    column, value = edit.groups()
    return tamper(store, [params["id"]], **{column: params["v"] if value == ":v" else value.strip("'")})


def only(report: integrity.Verification, kind: str) -> integrity.Problem:
    """The one problem of the report, which must be of ``kind``."""
    assert [p.kind for p in report.problems] == [kind], report.problems
    return report.problems[0]


def batches_of(store) -> list[chain.Batch]:
    with store.engine.connect() as conn:
        return [
            chain.Batch(*r) for r in conn.execute(sa.select(store.batches).order_by(store.batches.c.batch))
        ]


# ---------------------------------------------------------------------------------------
# the canonical form


def test_the_canonical_form_is_exactly_json_dumps_of_every_field():
    hostile = [
        'é\u2028"\\\n\t\x01/<>&',
        None,
        "\U0001f600 emoji",
        "\x7f",
        "=cmd|' /C calc'!A0",
        "",
        "  spaces  ",
        "ü" * 3,
    ]
    frame = pl.DataFrame(
        {
            "id": [f"e{i}" for i in range(len(hostile))],
            "time": [NOW + timedelta(microseconds=i) for i in range(len(hostile))],
            "type": ["auth"] * len(hostile),
            "action": ["login"] * len(hostile),
            "result": ["failed"] * len(hostile),
            "actor": hostile,
            "description": list(reversed(hostile)),
            "params": ['{"a": 1}'] * len(hostile),
        }
    )
    assert chain.event_hashes(frame) == chain.hashes_by_hashlib(chain.canonical(frame))  # plugin = hashlib
    texts = chain.canonical(frame).to_list()
    for text, row in zip(
        texts, frame.with_columns(pl.col("time").dt.epoch("us")).iter_rows(named=True), strict=True
    ):
        full = {c: row.get(c) for c in sorted(set(row) | set(json.loads(text)))}
        assert text == json.dumps(full, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert json.loads(texts[0])["time"] == int(NOW.timestamp() * 1_000_000)


def test_a_batch_digest_can_be_recomputed_without_the_package(filled):
    """The documented recipe, in plain hashlib, gives every stored digest."""
    import hashlib

    with filled.engine.connect() as conn:
        links = conn.execute(sa.text("SELECT seq, hash FROM audit_chain ORDER BY seq")).all()
    prev = "0" * 64
    for b in batches_of(filled):
        h = hashlib.sha256(f"{prev}\n".encode())
        for seq, hashed in links:
            if b.first_seq <= seq <= b.last_seq:
                h.update(f"{hashed}\n".encode())
        h.update(
            f"batch={b.batch} first={b.first_seq} last={b.last_seq} events={b.events} "
            f"stored_at={b.stored_at} source={json.dumps(b.source)}\n".encode()
        )
        assert h.hexdigest() == b.digest
        prev = b.digest
    assert prev == integrity.head(filled).digest


# ---------------------------------------------------------------------------------------
# a clean log verifies


def test_a_clean_log_verifies_after_every_kind_of_write(store, tmp_path):
    files = []
    for i, part in enumerate((FIRST, SECOND)):
        path = tmp_path / f"part{i}.jsonl"
        part.with_columns(pl.col("time").dt.strftime("%Y-%m-%dT%H:%M:%S%.6fZ")).write_ndjson(path)
        files.append(path)
    assert import_files(store, files).imported == 3_000
    assert import_files(store, files).imported == 0  # a re-import adds nothing, and no batch
    store.append(generate(1_000, seed=3, now=NOW).events, source="demo")
    users = tmp_path / "users.toml"
    accounts.add_user(users, "alice", "auditor", "correct horse battery", actor="admin", store=store)
    accounts.sign_in(users, store, "alice", "wrong password", ip="10.0.0.1")
    accounts.sign_in(users, store, "alice", "correct horse battery", ip="10.0.0.1")
    out = tmp_path / "out.csv"
    from audit_analytics.io.export import write_csv

    write_csv(store.load(), out)
    store.record(actor="alice", type="audit", action="export", params={"rows": 3_500, "file": str(out)})
    run = retention_apply(store, Policy(archive=str(tmp_path / "archive")), actor="admin", now=NOW)
    assert run.deleted > 0

    report = integrity.verify(store, archive=tmp_path / "archive")
    assert report.ok, report.problems
    stored = store.count()
    assert report.events == stored  # every stored event was checked against its chain row
    assert report.archived == run.deleted == report.archive_checked
    assert report.batches == len(batches_of(store)) == report.head.batch
    assert report.head.events == stored + run.deleted


def test_an_import_overlapping_stored_events_chains_just_the_new_ones(store, tmp_path):
    # an import hashes each batch ahead, in its reading thread; when some of a batch's rows are
    # stored already, the hashes kept must be those of the rows inserted, in their order
    def written(frame: pl.DataFrame, name: str) -> Path:
        path = tmp_path / name
        frame.with_columns(pl.col("time").dt.strftime("%Y-%m-%dT%H:%M:%S%.6fZ")).write_ndjson(path)
        return path

    part = FIRST.head(600)
    assert import_files(store, [written(part, "part.jsonl")]).imported == 600
    # the stored rows' ids fall among the new ones' (a batch is inserted in id order)
    mixed = pl.concat([SECOND, part, FIRST.tail(400)]).sample(fraction=1.0, seed=5)
    assert import_files(store, [written(mixed, "mixed.jsonl")], batch_rows=250).imported == 1_400
    report = integrity.verify(store)
    assert report.ok, report.problems
    assert report.events == store.count() == 2_000
    assert [b.events for b in batches_of(store)] == [600, 1_400]


def test_the_first_write_seals_events_stored_before_the_chain(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    old = open_store(url)
    old.append(FIRST)
    sql(old, "DROP TABLE audit_chain")
    sql(old, "DROP TABLE audit_batches")  # as a database of the previous release
    old.engine.dispose()

    store = open_store(url)
    (sealed,) = batches_of(store)
    assert (sealed.batch, sealed.events, sealed.source) == (1, 2_000, chain.SEALED_SOURCE)
    store.append(SECOND)
    report = integrity.verify(store)
    assert report.ok and report.events == 3_000 and report.batches == 2


@pytest.mark.postgres
def test_postgresql_seals_events_stored_before_the_chain(pg_store):
    """The sealing reads the events with a server-side cursor and writes the chain on the same
    connection; the inserts must not run as cursors themselves (they did: "syntax error at or
    near INSERT" from DECLARE … CURSOR FOR INSERT)."""
    import sqlalchemy as sa

    url = pg_store.engine.url.render_as_string(hide_password=False)
    with pg_store.engine.begin() as conn:  # events stored by a release without the chain
        conn.execute(pg_store.table.insert(), FIRST.to_dicts())
    pg_store.engine.dispose()

    store = open_store(url)
    try:
        (sealed,) = batches_of(store)
        assert (sealed.batch, sealed.events, sealed.source) == (1, 2_000, chain.SEALED_SOURCE)
        store.append(SECOND)
        report = integrity.verify(store)
        assert report.ok and report.events == 3_000 and report.batches == 2
        with store.engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM audit_chain")).scalar_one() == 3_000
    finally:
        store.engine.dispose()


def test_concurrent_writers_never_interleave_batches(tmp_path):
    url = f"sqlite:///{tmp_path / 'a.db'}"
    open_store(url).engine.dispose()
    parts = [EVENTS.slice(i * 300, 300) for i in range(8)]
    errors: list[BaseException] = []

    def write(part: pl.DataFrame) -> None:
        try:
            s = open_store(url)
            for start in range(0, part.height, 100):
                s.append(part.slice(start, 100))
            s.record(actor="t", type="audit", action="x")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(p,)) for p in parts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    store = open_store(url)
    report = integrity.verify(store)
    assert report.ok, report.problems
    assert report.events == 2_408 and report.batches == 8 * 4


# ---------------------------------------------------------------------------------------
# tampering through SQL


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("actor", "mallory"),
        ("result", "done"),
        ("params", '{"forged": true}'),
        ("ip", None),
        ("description", ""),
    ],
)
def test_an_edited_field_names_its_event_and_batch(filled, column, value):
    victim = SECOND.filter(pl.col(column).cast(pl.String).ne_missing(value))["id"][17]
    assert sql(filled, f"UPDATE audit_events SET {column} = :v WHERE id = :id", v=value, id=victim) == 1  # noqa: S608 - column names from the test table
    problem = only(integrity.verify(filled), "edited")
    assert (problem.batch, problem.ids, problem.count) == (2, (victim,), 1)


def test_an_edited_time_is_found(filled):
    victim = FIRST["id"][5]
    assert tamper(filled, [victim], time=filled.get(victim)["time"] + timedelta(microseconds=1)) == 1
    problem = only(integrity.verify(filled), "edited")
    assert (problem.batch, problem.ids) == (1, (victim,))


def test_a_deleted_event_names_its_id_and_batch(filled):
    victim = FIRST["id"][1_999]
    assert sql(filled, "DELETE FROM audit_events WHERE id = :id", id=victim) == 1
    report = integrity.verify(filled)
    problem = only(report, "deleted")
    assert (problem.batch, problem.ids) == (1, (victim,))
    assert report.first_batch == 1


def test_an_inserted_event_is_named(filled):
    cols = ", ".join(c.name for c in filled.table.c if c.name != "id")
    sql(
        filled,
        f"INSERT INTO audit_events (id, {cols}) SELECT 'forged-1', {cols} FROM audit_events WHERE id = :id",  # noqa: S608
        id=FIRST["id"][0],
    )
    problem = only(integrity.verify(filled), "inserted")
    assert problem.ids == ("forged-1",)


def test_an_edit_that_also_rewrites_the_events_hash_breaks_its_batch(filled):
    victim = SECOND["id"][3]
    sql(filled, "UPDATE audit_events SET actor = 'mallory' WHERE id = :id", id=victim)
    forged = filled.load().filter(pl.col("id") == victim)
    sql(filled, "UPDATE audit_chain SET hash = :h WHERE id = :id", h=chain.event_hashes(forged)[0], id=victim)
    problem = only(integrity.verify(filled), "batch")
    assert problem.batch == 2 and "digest" in problem.message


def test_deleting_an_event_with_its_chain_row_breaks_its_batch(filled):
    victim = FIRST["id"][100]
    sql(filled, "DELETE FROM audit_events WHERE id = :id", id=victim)
    sql(filled, "DELETE FROM audit_chain WHERE id = :id", id=victim)
    report = integrity.verify(filled)
    assert {p.kind for p in report.problems} == {"batch"}
    assert {p.batch for p in report.problems} == {1}
    assert any("2,000" in p.message and "1,999" in p.message for p in report.problems)


def test_reordered_events_within_a_batch_break_its_digest(filled):
    # swap the chain positions of two events of batch 2 (seq is the key: three steps)
    sql(filled, "UPDATE audit_chain SET seq = -1 WHERE seq = 2001")
    sql(filled, "UPDATE audit_chain SET seq = 2001 WHERE seq = 2002")
    sql(filled, "UPDATE audit_chain SET seq = 2002 WHERE seq = -1")
    problem = only(integrity.verify(filled), "batch")
    assert problem.batch == 2


def test_reordered_batches_are_named(filled):
    # batches 2 and 3 swap numbers (their ranges and digests travel with them)
    sql(filled, "UPDATE audit_batches SET batch = -2 WHERE batch = 2")
    sql(filled, "UPDATE audit_batches SET batch = 2 WHERE batch = 3")
    sql(filled, "UPDATE audit_batches SET batch = 3 WHERE batch = -2")
    report = integrity.verify(filled)
    assert not report.ok and report.first_batch == 2
    assert {"link", "gap"} <= {p.kind for p in report.problems}


def test_a_removed_middle_batch_is_a_gap(filled):
    sql(
        filled,
        "DELETE FROM audit_events WHERE id IN (SELECT id FROM audit_chain WHERE seq BETWEEN 2001 AND 3000)",
    )
    sql(filled, "DELETE FROM audit_chain WHERE seq BETWEEN 2001 AND 3000")
    sql(filled, "DELETE FROM audit_batches WHERE batch = 2")
    report = integrity.verify(filled)
    assert report.first_batch == 3
    assert {p.kind for p in report.problems} == {"gap", "link"}


def test_a_changed_batch_field_breaks_its_digest(filled):
    sql(filled, "UPDATE audit_batches SET source = 'import nothing.csv' WHERE batch = 1")
    problem = only(integrity.verify(filled), "batch")
    assert problem.batch == 1


def test_a_truncated_tail_is_found_only_against_a_checkpoint(filled):
    checkpoint = integrity.make_checkpoint(filled)
    sql(filled, "DELETE FROM audit_events WHERE id IN (SELECT id FROM audit_chain WHERE seq > 2000)")
    sql(filled, "DELETE FROM audit_chain WHERE seq > 2000")
    sql(filled, "DELETE FROM audit_batches WHERE batch > 1")
    alone = integrity.verify(filled)
    # the rest is consistent in itself: the report says it cannot tell, and says why
    assert alone.ok and alone.batches == 1 and alone.events == 2_000
    assert any("truncated tail" in note for note in alone.notes)
    problem = only(integrity.verify(filled, checkpoints=[checkpoint]), "truncated")
    assert problem.batch == 2 and "batch 3" in problem.message


def test_a_chain_rewritten_from_a_batch_on_is_caught_by_a_checkpoint(filled):
    """An attacker who knows the algorithm edits an event and recomputes every hash and
    digest after it: the database is consistent again, and only a checkpoint shows it."""
    checkpoint = integrity.make_checkpoint(filled)
    victim = SECOND["id"][0]
    sql(filled, "UPDATE audit_events SET actor = 'mallory' WHERE id = :id", id=victim)
    forged = filled.load().filter(pl.col("id") == victim)
    sql(filled, "UPDATE audit_chain SET hash = :h WHERE id = :id", h=chain.event_hashes(forged)[0], id=victim)
    with filled.engine.connect() as conn:
        links = conn.execute(sa.text("SELECT seq, hash FROM audit_chain ORDER BY seq")).all()
    prev = None
    for b in batches_of(filled):
        prev_digest = prev or b.prev_digest
        members = [h for seq, h in links if b.first_seq <= seq <= b.last_seq]
        digest = chain.batch_digest(prev_digest, members, b.trailer)
        sql(
            filled,
            "UPDATE audit_batches SET prev_digest = :p, digest = :d WHERE batch = :b",
            p=prev_digest,
            d=digest,
            b=b.batch,
        )
        prev = digest
    assert integrity.verify(filled).ok  # consistent in itself...
    report = integrity.verify(filled, checkpoints=[checkpoint])
    problem = only(report, "checkpoint")  # ...but not with what was kept outside
    assert problem.batch == 3


def test_a_forged_archive_mark_is_found(filled, tmp_path):
    victim = FIRST["id"][42]
    sql(filled, "DELETE FROM audit_events WHERE id = :id", id=victim)
    sql(filled, "UPDATE audit_chain SET archived = 'run-that-never-was' WHERE id = :id", id=victim)
    problem = only(integrity.verify(filled), "archive")
    assert problem.ids == (victim,)


def test_an_event_edited_in_the_archive_is_found(store, tmp_path):
    store.append(EVENTS)
    root = tmp_path / "archive"
    run = retention_apply(store, Policy(archive=str(root)), actor="admin", now=NOW)
    assert run.deleted > 0 and integrity.verify(store, archive=root).ok
    part = sorted(root.glob("category=*/month=*/*.parquet"))[0]
    frame = pl.read_parquet(part)
    victim = frame["id"][0]
    frame.with_columns(
        pl.when(pl.col("id") == victim).then(pl.lit("mallory")).otherwise(pl.col("actor")).alias("actor")
    ).write_parquet(part)
    assert integrity.verify(store).ok  # without the archive, the database alone still verifies
    problem = only(integrity.verify(store, archive=root), "archive")
    assert problem.ids == (victim,)
    chain_file = sorted((root / "_chain").glob("run-*.jsonl"))
    assert len(chain_file) == 1
    head = json.loads(chain_file[0].read_text().splitlines()[0])
    assert head["archived_events"] == run.deleted


# ---------------------------------------------------------------------------------------
# checkpoints and signatures


def test_a_signed_checkpoint_verifies_and_a_tampered_one_does_not(filled, tmp_path):
    integrity.generate_key(tmp_path / "key.pem")
    key = integrity.load_private_key(tmp_path / "key.pem")
    public = integrity.load_public_key(tmp_path / "key.pem.pub")
    checkpoint = integrity.make_checkpoint(filled, key=key)
    assert checkpoint.signature_ok(public)
    assert integrity.verify(filled, checkpoints=[checkpoint], public_key=public).ok

    edited = json.loads(checkpoint.to_json()) | {"events": checkpoint.events + 1}
    forged = integrity.Checkpoint.from_json(json.dumps(edited))
    kinds = {p.kind for p in integrity.verify(filled, checkpoints=[forged], public_key=public).problems}
    assert kinds == {"signature", "checkpoint"}

    integrity.generate_key(tmp_path / "other.pem")
    stranger = integrity.make_checkpoint(filled, key=integrity.load_private_key(tmp_path / "other.pem"))
    assert stranger.signature_ok()  # valid for the key it names...
    problem = only(integrity.verify(filled, checkpoints=[stranger], public_key=public), "signature")
    assert "configured public key" in problem.message  # ...but not the one we trust


def test_bad_checkpoint_files_say_what_and_where(tmp_path):
    bad = tmp_path / "cps.jsonl"
    bad.write_text('{"format": "audit-analytics-checkpoint/1", "batch": 1}\nnot json\n')
    with pytest.raises(integrity.IntegrityError, match=r"cps.jsonl line 1"):
        integrity.read_checkpoints(bad)
    bad.write_text("")
    with pytest.raises(integrity.IntegrityError, match="empty"):
        integrity.read_checkpoints(bad)
    with pytest.raises(integrity.IntegrityError, match="exists"):
        (tmp_path / "k.pem").write_text("x")
        integrity.generate_key(tmp_path / "k.pem")
    with pytest.raises(integrity.IntegrityError, match="PEM"):
        integrity.load_private_key(tmp_path / "k.pem")


# ---------------------------------------------------------------------------------------
# the CLI


def test_the_cli_checkpoint_and_verify_exit_codes(tmp_path, monkeypatch, capsys):
    db = tmp_path / "cli.db"
    monkeypatch.setenv("AUDIT_DB_URL", f"sqlite:///{db}")
    monkeypatch.setenv("AUDIT_ACTOR", "op")
    monkeypatch.chdir(tmp_path)
    assert cli(["demo", "--events", "2000"]) == 0
    assert cli(["integrity", "keygen", "key.pem"]) == 0
    monkeypatch.setenv("AUDIT_SIGNING_KEY", "key.pem")
    assert cli(["integrity", "checkpoint", "--append", "cps.jsonl"]) == 0
    assert cli(["integrity", "verify", "--checkpoint", "cps.jsonl"]) == 0
    capsys.readouterr()

    store = open_store(f"sqlite:///{db}")
    victim = store.load()["id"][7]
    sql(store, "UPDATE audit_events SET target = 'x' WHERE id = :id", id=victim)
    assert cli(["integrity", "verify", "--checkpoint", "cps.jsonl"]) == 5
    out = capsys.readouterr().out
    assert "NOT verified" in out and victim in out and "[edited]" in out
    verifications = store.load().filter(pl.col("action") == integrity.VERIFY_ACTION)
    assert verifications["result"].cast(pl.String).to_list() == ["done", "failed"]
    last = integrity.last_verification(store)
    assert last is not None and last["result"] == "failed" and last["problems"][0]["ids"] == [victim]

    assert cli(["integrity", "verify", "--json", "--no-record"]) == 5
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False and report["first_batch"] == 1
    (tmp_path / "junk.jsonl").write_text("nope\n")
    assert cli(["integrity", "verify", "--checkpoint", "junk.jsonl"]) == 2
    assert "junk.jsonl line 1" in capsys.readouterr().err


def test_overlapping_batch_ranges_are_reported_not_a_crash(filled):
    """A batch table edited so that two batches claim the same first event still verifies to
    a report naming them (the event-to-batch mapping never fails on a hostile table)."""
    sql(filled, "UPDATE audit_batches SET first_seq = 1 WHERE batch = 2")
    victim = FIRST["id"][3]
    sql(filled, "UPDATE audit_events SET actor = 'mallory' WHERE id = :id", id=victim)
    report = integrity.verify(filled)
    assert not report.ok and report.first_batch == 1
    edited = [p for p in report.problems if p.kind == "edited"]
    assert [p.ids for p in edited] == [(victim,)]
    assert {"gap", "batch"} <= {p.kind for p in report.problems}

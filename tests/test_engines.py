"""The two engines (in memory, pushdown) answer the explorer's questions identically."""

from __future__ import annotations

from contextlib import nullcontext
from datetime import UTC, datetime

import polars as pl
import pytest
from conftest import STORE_FIXTURES

from audit_analytics.analysis.review import activity_summary
from audit_analytics.demo.generate import generate
from audit_analytics.engines.memory import EventIndex
from audit_analytics.engines.sql import SqlIndex, TooLargeForMemory, open_engine
from audit_analytics.filters import Filter, Sort
from audit_analytics.schema import conform

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
EVENTS = generate(4_000, seed=21, now=NOW).events
FILTERS = [
    Filter(),
    Filter(period="7d", tz="Europe/Paris"),
    Filter(types=("auth",), results=("failed",)),
    Filter(query="-user:svc-ci resource:*api*"),
]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres), "chdb"])
def engines(request):
    store = request.getfixturevalue(STORE_FIXTURES.get(request.param, "pg_store"))
    store.append(EVENTS)
    return open_engine(store, mode="memory"), open_engine(store, mode="pushdown")


def test_auto_mode_follows_the_limit(sqlite_store):
    sqlite_store.append(EVENTS)
    assert isinstance(open_engine(sqlite_store, mode="auto", limit=10_000), EventIndex)
    pushed = open_engine(sqlite_store, mode="auto", limit=3_999)
    assert isinstance(pushed, SqlIndex)
    with pytest.raises(TooLargeForMemory, match="in-memory limit of 3,999"):
        pushed.frame_for(Filter())
    assert pushed.frame_for(Filter(types=("auth",))).height == EVENTS.filter(EVENTS["type"] == "auth").height


@pytest.mark.parametrize("flt", FILTERS, ids=[f.describe() for f in FILTERS])
@pytest.mark.parametrize("sort", [Sort("time", True), Sort("time", False), Sort("actor", False)], ids=str)
def test_counts_pages_and_positions_agree(engines, flt, sort):
    memory, sql = engines
    assert memory.count(flt, now=NOW) == sql.count(flt, now=NOW)
    m_sel, s_sel = memory.select(flt, sort, now=NOW), sql.select(flt, sort, now=NOW)
    m_page = memory.rows(m_sel, 30, 20)["id"].to_list()
    assert m_page == sql.rows(s_sel, 30, 20)["id"].to_list()
    if sort.column == "time":
        for offset, event_id in enumerate(m_page, start=30):
            assert memory.position_of(event_id, m_sel) == offset == sql.position_of(event_id, s_sel)
    assert sql.position_of("no-such-id", s_sel) is None and memory.position_of("no-such-id", m_sel) is None


def test_get_related_newest_actors_agree(engines):
    memory, sql = engines
    assert memory.newest_time() == sql.newest_time()
    assert memory.actors().head(20).equals(sql.actors().head(20).cast(memory.actors().schema))
    for row in EVENTS.filter(EVENTS["request_id"].is_not_null()).head(30).iter_rows(named=True):
        assert memory.get(row["id"]) == sql.get(row["id"]) == row
        m_req, m_act = memory.related(row)
        s_req, s_act = sql.related(row)
        assert m_req["id"].to_list() == s_req["id"].to_list()
        assert m_act["id"].to_list() == s_act["id"].to_list()


@pytest.mark.parametrize("split", [1, 2_500, 3_999])
def test_an_index_grows_at_its_end_like_a_rebuilt_one(split):
    grown = EventIndex(EVENTS.head(split)).extended(EVENTS.tail(EVENTS.height - split))
    rebuilt = EventIndex(EVENTS)
    assert grown is not None and grown.materialised().equals(rebuilt.materialised())
    for flt in FILTERS + [Filter(query="root"), Filter(query="ip:10.0.0.0/8 -user:svc-ci")]:
        for sort in (Sort("time", True), Sort("target", False)):
            assert grown.page(flt, sort, limit=50, now=NOW).equals(rebuilt.page(flt, sort, limit=50, now=NOW))
            assert grown.count(flt, now=NOW) == rebuilt.count(flt, now=NOW)


def test_growth_merges_only_its_own_chunks_and_never_copies_the_loaded_rows(monkeypatch):
    """A loaded or restored index is in many chunks (the store's batches, the snapshot's
    record batches): growing it must not merge them (at 10M events that copied 1.5 GB at the
    first sign-in). Past MAX_CHUNKS appends only the appended tail is merged."""
    import polars as pl

    from audit_analytics.engines import memory

    monkeypatch.setattr(memory, "MAX_CHUNKS", 4)
    base_rows = 3_000
    events = EVENTS.sort("time", "id")
    loaded = pl.concat([events.slice(i, 300) for i in range(0, base_rows, 300)], rechunk=False)
    index = EventIndex(loaded)
    loaded_chunks = index.frame.n_chunks()
    assert loaded_chunks > memory.MAX_CHUNKS  # else the test shows nothing
    rest = events.slice(base_rows)
    for step, start in enumerate(range(0, 700, 70), start=1):
        index = index.extended(rest.slice(start, 70))
        assert index is not None
        appended = step if step <= memory.MAX_CHUNKS else (step - 1) % memory.MAX_CHUNKS + 1
        assert index.frame.n_chunks() == loaded_chunks + appended, step
        for column, codes in index._codes.items():
            assert codes.n_chunks() <= loaded_chunks + memory.MAX_CHUNKS, column
    rebuilt = EventIndex(events.head(base_rows + 700))
    assert index.materialised().equals(rebuilt.materialised())
    for flt in FILTERS + [Filter(query="root")]:
        assert index.page(flt, Sort("actor", False), limit=50, now=NOW).equals(
            rebuilt.page(flt, Sort("actor", False), limit=50, now=NOW)
        )
        assert index.count(flt, now=NOW) == rebuilt.count(flt, now=NOW)


def test_late_arrivals_are_merged_into_the_tail_like_a_rebuilt_index(monkeypatch):
    """Two events written at once may commit out of order: the later-committed one lands
    among the last rows, and the index puts the tail in order instead of reloading."""
    import polars as pl

    from audit_analytics.engines import memory

    events = EVENTS.with_columns(description=pl.format("step {}", pl.int_range(pl.len()) % 7)).sort(
        "time", "id"
    )
    late = events.slice(3_800, 200).gather_every(9)  # among the last 200 rows
    base = EventIndex(events.filter(~pl.col("id").is_in(late["id"].implode())))
    assert base._code_only == memory.CODE_ONLY_COLUMNS  # the tail's code-only text comes back
    grown = base.extended(late.sample(fraction=1.0, shuffle=True, seed=2))
    rebuilt = EventIndex(events)
    assert grown is not None and grown.height == events.height
    assert grown.materialised().equals(rebuilt.materialised())
    for flt in FILTERS + [Filter(query="step 3"), Filter(query="ip:10.0.0.0/8 -user:svc-ci")]:
        for sort in (Sort("time", True), Sort("actor", False)):
            assert grown.page(flt, sort, limit=60, now=NOW).equals(rebuilt.page(flt, sort, limit=60, now=NOW))
            assert grown.count(flt, now=NOW) == rebuilt.count(flt, now=NOW)
    assert grown.actors().equals(rebuilt.actors())
    assert base.height == events.height - late.height  # the old index is left as it was
    # further back than the limit, or an id the index already holds: rebuild instead
    monkeypatch.setattr(memory, "MAX_REORDERED_ROWS", 150)
    assert base.extended(late) is None
    monkeypatch.undo()
    assert EventIndex(events).extended(events.tail(1)) is None


# ---------------------------------------------------------------------------------------
# the in-memory engine leaves the bulky JSON columns in the database


def test_memory_engine_holds_the_summary_and_fetches_details_by_id(engines):
    from audit_analytics.schema import DETAIL_COLUMNS, SUMMARY_COLUMNS

    memory, sql = engines
    assert memory.columns == list(SUMMARY_COLUMNS)
    assert not set(DETAIL_COLUMNS) & set(memory.frame.columns)
    assert "email" not in memory.frame.columns  # held as dictionary codes only
    flt, sort = Filter(types=("user", "organization")), Sort("actor", False)
    full = memory.with_details(memory.rows(memory.select(flt, sort, now=NOW)))
    expected = sql.rows(sql.select(flt, sort, now=NOW))
    assert full.columns == expected.columns  # every column, in the schema's order
    assert full.equals(expected)  # same rows, same order, same params/before/after
    assert full.filter(full["before"].is_not_null()).height > 0  # the test has something to fetch
    changed = full.filter(full["after"].is_not_null()).row(0, named=True)
    assert memory.get(changed["id"]) == sql.get(changed["id"]) == changed


def test_details_of_unknown_ids_are_null_and_an_empty_selection_fetches_nothing(sqlite_store):
    from audit_analytics.engines.memory import add_details

    sqlite_store.append(EVENTS.head(50))
    memory = open_engine(sqlite_store, mode="memory")
    stray = memory.frame.head(3).with_columns(id=EVENTS["id"].tail(3) + "-gone")
    assert add_details(stray, memory.details).select("params", "before", "after").null_count().row(0) == (
        3,
        3,
        3,
    )
    calls = []
    assert add_details(memory.frame.clear(), lambda ids, **kw: calls.append(ids)).height == 0
    assert calls == []


def test_remembered_details_equal_fetched_ones_and_fetch_only_new_ids(sqlite_store):
    from audit_analytics.engines.memory import RememberedDetails

    sqlite_store.append(EVENTS.head(200))
    asked: list[list[str]] = []

    def fetch(ids, *, between=None):
        asked.append(list(ids))
        return sqlite_store.details(ids, between=between)

    remembered = RememberedDetails(fetch)
    ids = EVENTS["id"].head(100)
    first = remembered.remembered(ids).sort("id")
    assert first.equals(sqlite_store.details(ids).sort("id"))
    more = EVENTS["id"].slice(50, 100)  # 50 held, 50 new
    second = remembered.remembered(more).sort("id")
    assert second.equals(sqlite_store.details(more).sort("id"))
    assert sorted(asked[-1]) == sorted(EVENTS["id"].slice(100, 50).to_list())
    calls = len(asked)
    assert remembered.remembered(ids.head(10)).height == 10 and len(asked) == calls  # all held
    assert remembered(ids.head(3)).height == 3 and len(asked) == calls + 1  # plain calls fetch


def test_a_grown_index_keeps_fetching_details(sqlite_store):
    events = EVENTS.sort("time", "id")
    sqlite_store.append(events.head(2_000))
    memory = open_engine(sqlite_store, mode="memory")
    sqlite_store.append(events.tail(2_000))
    tail = sqlite_store.load(Filter(start=events["time"][1_999]), columns=memory.columns)
    grown = memory.extended(tail.filter(~tail["id"].is_in(memory.frame["id"].implode())))
    assert grown is not None and grown.frame.columns == memory.frame.columns
    last = events.row(events.height - 1, named=True)
    assert grown.get(last["id"]) == last


def test_code_only_columns_come_back_for_pages_events_actors_and_the_archive_view():
    import polars as pl

    from audit_analytics.engines.memory import CODE_ONLY_COLUMNS

    events = EVENTS.with_columns(description=pl.format("step {}", pl.int_range(pl.len()) % 7)).sort(
        "time", "id"
    )
    index = EventIndex(events)
    assert index._code_only == CODE_ONLY_COLUMNS  # both low-cardinality here
    assert not set(CODE_ONLY_COLUMNS) & set(index.frame.columns)
    assert index.columns == events.columns
    for flt in FILTERS + [Filter(query="step 3"), Filter(query="-step"), Filter(users=("alice",))]:
        for sort in (Sort("time", True), Sort("actor", False)):
            expected = flt.apply(events, now=NOW)
            from audit_analytics.filters import polars_sort

            expected = polars_sort(expected, sort) if sort.column != "time" else expected.reverse()
            assert index.page(flt, sort, limit=40, now=NOW).equals(expected.head(40)), (flt, sort)
    for row in events.sample(20, seed=1).iter_rows(named=True):
        assert index.get_summary(row["id"]) == row
    expected_actors = (
        events.drop_nulls("actor")
        .group_by("actor")
        .agg(pl.col("email").max(), pl.len().alias("events"))
        .sort(["events", "actor"], descending=[True, False])
    )
    assert index.actors().equals(expected_actors)
    assert index.materialised().equals(events)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def filled_store(request):  # the SQL stores' range read (ClickHouse reads details by id)
    store = request.getfixturevalue(STORE_FIXTURES.get(request.param, "pg_store"))
    store.append(EVENTS)
    return store


def test_details_read_by_time_range_equal_details_read_by_id(filled_store, monkeypatch):
    """An export of a period's newest rows reads their time range in one query; rows spread
    thinly over a long range are read by id; both give exactly the rows asked for."""
    from audit_analytics.engines import store as store_module

    events = EVENTS.sort("time", "id")
    ranges = []
    real = store_module.Store._details_in_range

    def spy(self, between, *, limit):
        found = real(self, between, limit=limit)
        ranges.append(found is not None)
        return found

    monkeypatch.setattr(store_module.Store, "_details_in_range", spy)

    def check(rows, extra_ids=()):
        ids = rows["id"].to_list() + list(extra_ids)
        between = (rows["time"].min(), rows["time"].max())
        by_range = filled_store.details(ids, between=between).sort("id")
        by_id = filled_store.details(ids).sort("id")
        assert by_range.equals(by_id)
        assert by_range["id"].to_list() == sorted(rows["id"].to_list())  # unknown ids absent
        expected = rows.select(by_range.columns).sort("id")
        assert by_range.equals(expected)

    newest = events.tail(1_500)
    check(newest, extra_ids=["no-such-id"])
    assert ranges == [True]  # dense: one range query
    check(events.gather_every(5))  # 800 ids over all time: too few for a range read
    assert ranges == [True]
    monkeypatch.setattr(store_module, "DETAIL_RANGE_MIN", 100)
    check(events.gather_every(5))  # the range holds 5x as many events as ids: by id
    assert ranges == [True, False]
    check(events.slice(1_000, 2_000).gather_every(2))  # 2x: by range
    assert ranges == [True, False, True]


def test_an_index_read_with_categorical_codes_equals_one_read_as_text():
    """``conform(categorical=...)`` streams the code-only columns in as codes; the index
    adopts them and answers exactly as when it encodes the text itself."""
    import polars as pl

    from audit_analytics.engines.memory import CODE_ONLY_COLUMNS
    from audit_analytics.schema import SUMMARY_COLUMNS, conform

    events = EVENTS.with_columns(
        description=pl.format("step {}", pl.int_range(pl.len()) % 7),
        email=pl.when(pl.int_range(pl.len()) % 5 == 0).then(None).otherwise(pl.col("email")),
    ).sort("time", "id")
    text = EventIndex(conform(events, columns=SUMMARY_COLUMNS))
    read = conform(events.lazy(), columns=SUMMARY_COLUMNS, categorical=CODE_ONLY_COLUMNS)
    assert all(isinstance(read.schema[c], pl.Categorical) for c in CODE_ONLY_COLUMNS)
    codes = EventIndex(read)
    assert codes._code_only == text._code_only == CODE_ONLY_COLUMNS
    for column in CODE_ONLY_COLUMNS:
        assert codes._dicts[column].values.equals(text._dicts[column].values)
        assert codes._codes[column].equals(text._codes[column])  # nulls stay null
    assert codes.materialised().equals(text.materialised())
    for flt in FILTERS + [Filter(query="step 3"), Filter(users=("alice",)), Filter(query="user:*@*")]:
        assert codes.page(flt, Sort("actor", False), limit=50, now=NOW).equals(
            text.page(flt, Sort("actor", False), limit=50, now=NOW)
        ), flt
    assert codes.actors().equals(text.actors())
    # too many distinct values for a dictionary: the column is held as text, as before
    distinct = events.with_columns(description=pl.format("unique {}", pl.int_range(pl.len())))
    held = EventIndex(conform(distinct.lazy(), columns=SUMMARY_COLUMNS, categorical=CODE_ONLY_COLUMNS))
    assert held._code_only == ("email",) and held.frame.schema["description"] == pl.String
    assert held.materialised().equals(conform(distinct, columns=SUMMARY_COLUMNS))
    search = Filter(query="unique 17")
    assert held.count(search) == search.apply(distinct).height > 0  # searched as text


@pytest.mark.parametrize("top", [0, -1])
def test_a_top_below_one_is_refused_by_every_engine(engines, top):
    """The memory engine returned no rows for top=0 and all but the last for top=-1, while the
    pushdown engines refused both: one rule on every engine (None is "all")."""
    from audit_analytics.analysis.security import DetectionError

    for engine in engines:
        for method in (engine.failures_by_ip, engine.failures_by_account):
            with pytest.raises(DetectionError, match="top must be a positive integer"):
                method(Filter(), top=top, now=NOW)
    memory, sql = engines
    everything = memory.failures_by_ip(Filter(), top=None, now=NOW)
    assert everything.height > 2
    assert everything.equals(sql.failures_by_ip(Filter(), top=None, now=NOW))
    assert memory.failures_by_ip(Filter(), top=2, now=NOW).equals(everything.head(2))


def test_a_detection_above_the_limit_says_what_it_reads_and_which_setting(sqlite_store):
    """Denied calls reads the failed events; above the limit it raised KeyError: 'types' (its
    part is a result, not a type), a traceback on the Security review and exit 1 on the CLI."""
    from audit_analytics.errors import NeedsMemory

    sqlite_store.append(EVENTS)
    pushed = open_engine(sqlite_store, mode="pushdown", limit=10)
    failed = int((EVENTS["result"] == "failed").sum())
    with pytest.raises(
        NeedsMemory, match=rf"reads the period's {failed:,} failed events: .*\(AUDIT_MEMORY_LIMIT\)"
    ):
        pushed.detect("denied_calls", Filter(), {}, now=NOW)
    with pytest.raises(NeedsMemory, match=r"auth events: .*AUDIT_MEMORY_LIMIT"):
        pushed.detect("success_after_failures", Filter(), {}, now=NOW)


# events that make the Activity counts' edges: a blank and a missing actor, tied totals, a
# write action and a read in one quarter-hour, an event on a slot's first microsecond
EDGES = conform(
    pl.DataFrame(
        {
            "id": [f"edge-{i}" for i in range(6)],
            "time": [datetime(2026, 5, 31, 9, 15, tzinfo=UTC)] * 3
            + [datetime(2026, 5, 31, 9, 29, 59, 999999, tzinfo=UTC)] * 3,
            "actor": ["", None, "zz-tie-b", "zz-tie-a", "zz-tie-b", "zz-tie-a"],
            "type": ["service", "service", "auth", "auth", "secret", "secret"],
            "action": ["deploy", "view", "login", "login", "delete", "rollback"],
            "target": ["", "t-tie-b", "t-tie-a", "t-tie-b", "t-tie-a", None],
            "result": ["done", "failed", "pending", "processing", "failed", "done"],
        },
        schema_overrides={"time": pl.Datetime("us", "UTC")},
    )
)
ACTIVITY_FILTERS = [
    Filter(),
    Filter(period="7d", tz="Asia/Kolkata"),
    Filter(period="30d", tz="America/New_York", types=("auth", "secret")),
    Filter(period="all", tz="Australia/Lord_Howe", query="-result:done -action:login"),
    Filter(users=("nobody-at-all",)),
]


@pytest.mark.parametrize(
    "store_name", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres), "chdb"]
)
@pytest.mark.parametrize("flt", ACTIVITY_FILTERS, ids=[f.describe() for f in ACTIVITY_FILTERS])
def test_activity_counted_in_the_database_equals_memory(request, store_name, flt):
    """Above the memory limit the database counts the Activity page's figures (it refused
    before): every figure, the rankings and the distinct actors equal the in-memory ones."""
    store = request.getfixturevalue(STORE_FIXTURES.get(store_name, "pg_store"))
    store.append(pl.concat([EVENTS, EDGES]))
    memory, pushed = open_engine(store, mode="memory"), open_engine(store, mode="pushdown", limit=10)
    assert pushed.count(flt, now=NOW) > 10 or flt.users, "the filter must be above the limit"
    with pytest.raises(TooLargeForMemory) if flt.users == () else nullcontext():
        pushed.frame_for(flt, now=NOW)
    for top in (1, 3, 10):
        held, counted = (activity_summary(e, flt, top=top, now=NOW) for e in (memory, pushed))
        assert held.keys() == counted.keys()
        for key, value in held.items():
            other = counted[key]
            same = value.equals(other) if isinstance(value, pl.DataFrame) else value == other
            assert same, (key, value, other)
    assert held["count"] == memory.count(flt, now=NOW)

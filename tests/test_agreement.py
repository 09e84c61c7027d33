"""One filter, two engines: polars and SQL must return the same rows.

Runs every case on a real SQLite file and on a real PostgreSQL server.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit_analytics.filters import Filter, Sort, polars_sort
from audit_analytics.schema import CATEGORY_CODES, RESULTS, SCHEMA, SORTABLE_COLUMNS

NOW = datetime(2026, 3, 30, 9, 30, tzinfo=UTC)  # the day after Europe's spring DST change

ACTORS = ["root", "Root", "rootkit", "ÉLODIE", "élodie", None, "a_b", "axb", "100%", "back\\slash", "alice"]
EMAILS = {"root": "root@corp.com", "alice": "Alice@Corp.com", "élodie": "elodie@corp.com"}
TARGETS = ["db-main", "db_backup", "DB-Other", "x%y", "xzy", None, "payments-api", "db-*"]
IPS = ["10.0.0.1", "10.1.2.3", "192.168.1.5", "2001:db8::1", "2001:db9::2", None, "8.8.8.8"]
DESCRIPTIONS = ["Failed password for root", "deleted backup", "100% done", "under_score", "ÜBER change", None]
ACTIONS = ["login", "logout", "delete", "create", "update", "role_change"]
ERRORS = [None, None, "Invalid username or password", "disk quota: 100% used", "Ünknown_host"]


def _edge_times() -> list[datetime]:
    # day and DST boundaries in UTC, Paris and New York, and plain spread
    base = [
        datetime(2026, 3, 29, 0, 59, 59, 999999, tzinfo=UTC),
        datetime(2026, 3, 29, 1, 0, tzinfo=UTC),
        datetime(2026, 3, 28, 23, 0, tzinfo=UTC),  # midnight in Paris (UTC+1)
        datetime(2026, 3, 28, 22, 59, 59, tzinfo=UTC),
        datetime(2026, 3, 29, 22, 0, tzinfo=UTC),  # midnight in Paris (UTC+2 after the change)
        datetime(2026, 3, 30, 0, 0, tzinfo=UTC),
        datetime(2026, 3, 30, 4, 0, tzinfo=UTC),  # midnight in New York
        datetime(2026, 3, 24, 0, 0, tzinfo=UTC),  # first instant of "last 7 days" in UTC
        datetime(2026, 3, 23, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(2026, 3, 1, 0, 0, tzinfo=UTC),
        datetime(2026, 3, 31, 0, 0, tzinfo=UTC),  # tomorrow: outside "today"
    ]
    rng = random.Random(7)
    base += [NOW - timedelta(seconds=rng.randint(0, 60 * 86400)) for _ in range(250)]
    return base


def make_events() -> pl.DataFrame:
    rng = random.Random(11)
    rows = []
    for i, t in enumerate(_edge_times()):
        actor = rng.choice(ACTORS)
        rows.append(
            {
                "id": f"ev-{i:04d}",
                "time": t,
                "actor": actor,
                "email": EMAILS.get(actor) if rng.random() < 0.8 else None,
                "type": rng.choice(CATEGORY_CODES[:8]),  # up to user, organization
                "action": rng.choice(ACTIONS),
                "target": rng.choice(TARGETS),
                "result": rng.choice(RESULTS),
                "ip": rng.choice(IPS),
                "request_id": rng.choice([None, "req-1", "REQ-2", "req_3"]),
                "description": rng.choice(DESCRIPTIONS),
                "params": None,
                "before": None,
                "after": None,
                "error": rng.choice(ERRORS),
            }
        )
    return pl.DataFrame(rows, schema=SCHEMA)


EVENTS = make_events()

FILTERS = {
    "everything": Filter(),
    "today-utc": Filter(period="today"),
    "today-paris": Filter(period="today", tz="Europe/Paris"),
    "today-new-york": Filter(period="today", tz="America/New_York"),
    "7d-utc": Filter(period="7d"),
    "7d-tokyo": Filter(period="7d", tz="Asia/Tokyo"),
    "30d": Filter(period="30d"),
    "custom-days-paris": Filter(
        period="custom", start=date(2026, 3, 29), end=date(2026, 3, 29), tz="Europe/Paris"
    ),
    "custom-days-utc": Filter(period="custom", start=date(2026, 3, 29), end=date(2026, 3, 29)),
    "custom-instants": Filter(
        start=datetime(2026, 3, 29, 1, tzinfo=UTC), end=datetime(2026, 3, 30, tzinfo=UTC)
    ),
    "types": Filter(types=("auth", "device")),
    "results": Filter(results=("failed", "pending")),
    "users-case": Filter(users=("ROOT",)),
    "users-email": Filter(users=("alice@corp.com",)),
    "users-unicode": Filter(users=("Élodie",)),
    "word-case": Filter(query="FAILED"),
    "word-percent": Filter(query="100%"),
    "word-underscore": Filter(query="a_b"),
    "word-percent-inside": Filter(query="x%y"),
    "word-backslash": Filter(query="back\\slash"),
    "word-unicode": Filter(query="über"),
    "two-words": Filter(query="root password"),
    "phrase": Filter(query='"failed password"'),
    # free words search the error too (a detail's "Error message" was not searchable)
    "word-in-the-error": Filter(query='"invalid USERNAME"'),
    "word-in-the-error-negated": Filter(query="-ünknown"),
    "negated-word": Filter(query="-root"),
    "user-exact": Filter(query="user:root"),
    "user-email": Filter(query="user:ALICE@corp.com"),
    "user-wildcard": Filter(query="user:root*"),
    "user-negated": Filter(query="-user:root"),
    "user-or": Filter(query="user:root user:alice"),
    "resource-wildcard": Filter(query="resource:db-*"),
    "resource-literal-star-like": Filter(query="resource:db_*"),
    "resource-percent": Filter(query="resource:x%y"),
    "action-and-result": Filter(query="action:delete result:failed"),
    "result-or": Filter(query="result:failed result:pending"),
    "type-negated": Filter(query="-type:auth -type:device"),
    # role and permission changes: user/organization events with a permission action
    "type-permission": Filter(types=("permission",)),
    "type-permission-or-auth": Filter(types=("auth", "permission")),
    "query-type-permission": Filter(query="type:permission"),
    "query-type-permission-or-device": Filter(query="type:permission type:device"),
    "query-not-permission": Filter(query="-type:permission"),
    "ip-exact": Filter(query="ip:10.0.0.1"),
    "ip-cidr-v4": Filter(query="ip:10.0.0.0/8"),
    "ip-cidr-v6": Filter(query="ip:2001:db8::/32"),
    "ip-cidr-negated": Filter(query="-ip:10.0.0.0/8"),
    "ip-cidr-none": Filter(query="ip:172.16.0.0/12"),
    "request-id-case": Filter(query="request_id:req-2"),
    "after-before": Filter(query="after:2026-03-20 before:2026-03-29", tz="Europe/Paris"),
    "not-after": Filter(query="-after:2026-03-20"),
    "everything-at-once": Filter(
        period="30d",
        types=("auth", "infra", "service"),
        results=("failed", "done"),
        query="-user:rootkit root",
        tz="America/New_York",
    ),
}


@pytest.fixture(scope="module")
def sqlite_events(tmp_path_factory):
    from audit_analytics.engines.store import open_store

    store = open_store(f"sqlite:///{tmp_path_factory.mktemp('agree') / 'audit.db'}")
    store.append(EVENTS)
    yield store
    store.engine.dispose()


@pytest.fixture(scope="module")
def pg_events(postgres_url):
    import sqlalchemy as sa

    from audit_analytics.engines.store import open_store

    store = open_store(postgres_url)
    with store.engine.begin() as conn:
        conn.execute(sa.text("TRUNCATE audit_events, audit_chain, audit_batches"))
    store.append(EVENTS)
    yield store
    store.engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request):
    return request.getfixturevalue("sqlite_events" if request.param == "sqlite" else "pg_events")


def polars_ids(flt: Filter) -> list[str]:
    return sorted(flt.apply(EVENTS, now=NOW)["id"].to_list())


def sql_ids(store, flt: Filter) -> list[str]:
    return sorted(store.load(flt, now=NOW)["id"].to_list())


@pytest.mark.parametrize("flt", FILTERS.values(), ids=FILTERS.keys())
def test_engines_return_the_same_rows(store, flt):
    expected = polars_ids(flt)
    result = sql_ids(store, flt)
    assert result == expected
    assert store.count(flt, now=NOW) == len(expected)


def test_permission_type_is_the_detections_definition():
    from audit_analytics.analysis import security
    from audit_analytics.schema import PERMISSION_ACTIONS

    expected = {
        r["id"]
        for r in EVENTS.iter_rows(named=True)
        if r["type"] in ("user", "organization") and r["action"] in PERMISSION_ACTIONS
    }
    assert expected and set(polars_ids(Filter(types=("permission",)))) == expected
    assert set(polars_ids(Filter(query="type:permission"))) == expected
    # the Permission changes detection lists exactly these events
    assert set(security.permission_changes(EVENTS)["id"]) == expected


def test_cases_are_not_trivial():
    # a case that selects nothing or everything proves little: most must cut somewhere
    sizes = [len(polars_ids(f)) for f in FILTERS.values()]
    assert sum(0 < s < EVENTS.height for s in sizes) >= len(FILTERS) - 3


@pytest.mark.parametrize(
    "sort",
    [Sort(c, d) for c in SORTABLE_COLUMNS for d in (True, False)],
    ids=[f"{c}-{'desc' if d else 'asc'}" for c in SORTABLE_COLUMNS for d in (True, False)],
)
def test_pages_follow_the_same_order(store, sort):
    flt = FILTERS["30d"]
    expected = polars_sort(flt.apply(EVENTS, now=NOW), sort)["id"].to_list()
    pages = [
        store.page(flt, sort, offset=o, limit=40, now=NOW)["id"].to_list()
        for o in range(0, len(expected) + 40, 40)
    ]
    assert [i for p in pages for i in p] == expected


def test_load_keeps_dtypes(store):
    frame = store.load(Filter(), now=NOW)
    assert frame.schema == SCHEMA
    assert frame.sort("id").equals(EVENTS.sort("id"))


WORDS = ["root", "ROOT", "élodie", "100%", "a_b", "x%y", "db", "-", "2001", "req", "ü", "\\"]
QUALIFIED = [
    "user:root",
    "user:root*",
    "user:*a*",
    "-user:root",
    "resource:db-*",
    "resource:*%*",
    "action:delete",
    "-action:login",
    "type:auth",
    "type:permission",
    "-type:permission",
    "result:failed",
    "-result:done",
    "ip:10.0.0.0/8",
    "ip:2001:db8::/32",
    "ip:8.8.8.8",
    "request_id:req*",
    "after:2026-03-25",
    "before:2026-03-29",
]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    terms=st.lists(st.sampled_from(WORDS + QUALIFIED), max_size=4),
    period=st.sampled_from(["all", "today", "7d", "30d"]),
    tz=st.sampled_from(["UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata"]),
    types=st.lists(st.sampled_from([*CATEGORY_CODES[:8], "permission"]), max_size=2, unique=True),
    results=st.lists(st.sampled_from(RESULTS), max_size=2, unique=True),
)
def test_generated_filters_agree_on_sqlite(sqlite_events, terms, period, tz, types, results):
    flt = Filter(period=period, tz=tz, types=tuple(types), results=tuple(results), query=" ".join(terms))
    assert sql_ids(sqlite_events, flt) == polars_ids(flt)


# -- the in-memory engine (EventIndex) must agree with Filter.apply too -------------------


@pytest.fixture(scope="module", params=["dictionaries", "plain-columns"])
def index(request):
    from audit_analytics.engines import memory

    if request.param == "dictionaries":
        return memory.EventIndex(EVENTS)
    # no dictionaries at all: every column takes the lowered-text path
    mp = pytest.MonkeyPatch()
    mp.setattr(memory, "DICTIONARY_ALWAYS_UP_TO", 0)
    mp.setattr(memory, "DICTIONARY_MAX_SHARE", 0.0)
    try:
        built = memory.EventIndex(EVENTS)
    finally:
        mp.undo()
    assert not built._dicts
    return built


@pytest.mark.parametrize("flt", FILTERS.values(), ids=FILTERS.keys())
def test_memory_engine_returns_the_same_rows(index, flt):
    expected = polars_ids(flt)
    assert sorted(index.frame_for(flt, now=NOW)["id"].to_list()) == expected
    assert index.count(flt, now=NOW) == len(expected)


@pytest.mark.parametrize(
    "sort",
    [Sort(c, d) for c in SORTABLE_COLUMNS for d in (True, False)],
    ids=[f"{c}-{'desc' if d else 'asc'}" for c in SORTABLE_COLUMNS for d in (True, False)],
)
@pytest.mark.parametrize("name", ["everything", "30d", "user-or", "ip-cidr-v4"])
def test_memory_engine_pages_follow_the_same_order(index, sort, name):
    flt = FILTERS[name]
    expected = polars_sort(flt.apply(EVENTS, now=NOW), sort)["id"].to_list()
    got = [
        i
        for o in range(0, len(expected) + 50, 50)
        for i in index.page(flt, sort, offset=o, limit=50, now=NOW)["id"].to_list()
    ]
    assert got == expected


def test_memory_engine_accepts_unsorted_frames():
    from audit_analytics.engines.memory import EventIndex

    shuffled = EventIndex(EVENTS.sample(fraction=1.0, shuffle=True, seed=3))
    flt = FILTERS["7d-utc"]
    assert shuffled.count(flt, now=NOW) == len(polars_ids(flt))


@settings(max_examples=80, deadline=None)
@given(
    terms=st.lists(st.sampled_from(WORDS + QUALIFIED), max_size=4),
    period=st.sampled_from(["all", "today", "7d", "30d"]),
    tz=st.sampled_from(["UTC", "Europe/Paris", "America/New_York"]),
    types=st.lists(st.sampled_from([*CATEGORY_CODES[:8], "permission"]), max_size=2, unique=True),
    users=st.lists(st.sampled_from(["root", "ALICE@corp.com", "élodie", "nobody"]), max_size=2, unique=True),
)
def test_generated_filters_agree_in_memory(terms, period, tz, types, users):
    from audit_analytics.engines.memory import EventIndex

    index = _INDEX.setdefault("i", EventIndex(EVENTS))
    flt = Filter(period=period, tz=tz, types=tuple(types), users=tuple(users), query=" ".join(terms))
    assert sorted(index.frame_for(flt, now=NOW)["id"].to_list()) == polars_ids(flt)


_INDEX: dict = {}


def test_the_permission_type_travels_in_the_address():
    from audit_analytics.view import View

    view = View(filter=Filter(types=("auth", "permission"), results=("failed",)))
    assert view.to_params()["type"] == "auth,permission"
    assert View.from_params(view.to_params()).filter.types == ("auth", "permission")
    # an unknown type in a hand-edited link is dropped, not an error
    assert View.from_params({"type": "permission,nonsense"}).filter.types == ("permission",)

"""The search language, case by case, with the exact events each search must find.

A small hand-written log (``e1`` .. ``e30``) and a table of searches, each with the ids it
must return. Every case runs on the in-memory engine (with and without its dictionaries) and
on the SQL pushdown over a real SQLite file, and must give exactly the expected ids on each:
agreement between engines alone would not catch a rule both got wrong the same way.

The times sit on the two 2025 daylight-saving changes in Europe/Paris: on 2025-03-30 the
clock jumps from 02:00 to 03:00 (01:00 UTC), on 2025-10-26 it goes back from 03:00 to 02:00
(01:00 UTC); a Paris day is then 23 and 25 hours long.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

import polars as pl
import pytest

from audit_analytics.errors import QueryError
from audit_analytics.filters import Filter
from audit_analytics.schema import COLUMNS, SCHEMA

NOW = datetime(2025, 10, 26, 12, 0, tzinfo=UTC)  # the day Paris goes back to winter time
PARIS = "Europe/Paris"

# fmt: off
# id     time (UTC)                            actor          email                 type            action         target                 result        ip                  request_id  description
ROWS = [
    ("e1",  datetime(2025, 3, 29, 22, 59, 59), "root",        "root@corp.com",      "auth",         "login",       "ssh-gw",              "failed",     "10.0.0.5",         "req-001",  "Failed password for root"),
    ("e2",  datetime(2025, 3, 29, 23, 0, 0),   "rootkit",     None,                 "auth",         "login",       "ssh-gw",              "failed",     "10.1.2.3",         "req-002",  "Failed password for rootkit"),
    ("e3",  datetime(2025, 3, 30, 0, 59, 59),  "alice",       "alice@corp.com",     "user",         "role_change", "bob",                 "done",       "192.168.1.10",     "req-003",  "granted the admin role"),
    ("e4",  datetime(2025, 3, 30, 1, 0, 0),    "alice",       "alice@corp.com",     "auth",         "login",       "web",                 "done",       "2001:db8::1",      "req-004",  None),
    ("e5",  datetime(2025, 3, 30, 21, 59, 59), "bob",         "bob@corp.com",       "backup",       "delete",      "db-main",             "done",       "2001:db8:ffff::2", "req-005",  "deleted backup of db-main"),
    ("e6",  datetime(2025, 3, 30, 22, 0, 0),   "bob",         "bob@corp.com",       "backup",       "delete",      "db_backup",           "failed",     "2001:db9::1",      "req-006",  "disk full"),
    ("e7",  datetime(2025, 10, 25, 21, 59, 59), "Root",       None,                 "infra",        "update",      "payments-api",        "pending",    "8.8.8.8",          "REQ-007",  "config changed by Root"),
    ("e8",  datetime(2025, 10, 25, 22, 0, 0),  "alicia",      "alicia@corp.com",    "service",      "deploy",      "payments-api",        "processing", "172.16.5.4",       "req-008",  None),
    ("e9",  datetime(2025, 10, 26, 0, 30, 0),  "svc-ci",      None,                 "service",      "deploy",      "db-*",                "done",       "10.200.0.1",       "req-009",  "100% done"),
    ("e10", datetime(2025, 10, 26, 1, 30, 0),  "svc-ci",      None,                 "secret",       "read",        "x%y",                 "done",       "10.200.0.2",       "req-010",  "under_score"),
    ("e11", datetime(2025, 10, 26, 22, 59, 59), "élodie",     "elodie@corp.com",    "auth",         "logout",      "web",                 "done",       "::1",              None,       "ÜBER change"),
    ("e12", datetime(2025, 10, 26, 23, 0, 0),  "ÉLODIE",      None,                 "auth",         "login",       "web",                 "failed",     "fe80::1",          None,       None),
    ("e13", datetime(2025, 6, 1, 10, 0, 0),    "mallory",     "root@evil.example",  "auth",         "login",       "ssh-gw",              "failed",     "203.0.113.7",      "req-013",  "root login attempt"),
    ("e14", datetime(2025, 6, 1, 10, 0, 1),    None,          None,                 "system",       "maintenance", None,                  "done",       None,               None,       "scheduled maintenance"),
    ("e15", datetime(2025, 6, 2, 8, 0, 0),     "a_b",         None,                 "user",         "create",      "axb",                 "done",       "10.0.0.6",         "req-015",  "created user axb"),
    ("e16", datetime(2025, 6, 2, 8, 0, 1),     "axb",         None,                 "user",         "delete",      "a_b",                 "done",       "10.0.0.7",         "req-016",  None),
    ("e17", datetime(2025, 6, 3, 12, 0, 0),    "100%",        None,                 "database",     "update",      "x_y",                 "done",       "10.0.0.8",         "req-017",  "100% of quota"),
    ("e18", datetime(2025, 6, 3, 12, 0, 1),    "back\\slash", None,                 "database",     "update",      "db-main",             "done",       "10.0.0.9",         "req-018",  "path C:\\temp"),
    ("e19", datetime(2025, 7, 14, 9, 0, 0),    "alice",       "Alice@Corp.com",     "vpn",          "connect",     "vpn-paris",           "done",       "2a01:e0a::5",      "req-019",  "connected from Paris"),
    ("e20", datetime(2025, 7, 14, 9, 5, 0),    "alice",       "alice@corp.com",     "vpn",          "disconnect",  "vpn-paris",           "done",       "2a01:e0a::5",      "req-019",  None),
    ("e21", datetime(2025, 8, 1, 0, 0, 0),     "carol",       "carol@corp.com",     "domain",       "create",      "root-ca.example.org", "done",       "198.51.100.20",    "req-021",  "certificate issued"),
    ("e22", datetime(2025, 8, 1, 0, 0, 1),     "carol",       "carol@corp.com",     "domain",       "delete",      "old.example.org",     "failed",     "198.51.100.21",    "req-022",  "NOT FOUND"),
    ("e23", datetime(2025, 9, 15, 23, 30, 0),  "dave",        "dave@corp.com",      "webhook",      "register",    "hooks/ci",            "done",       "10.255.255.255",   "req-023",  "webhook for CI"),
    ("e24", datetime(2025, 9, 16, 0, 30, 0),   "root",        "root@corp.com",      "secret",       "rotate",      "vault/db-password",   "done",       "127.0.0.1",        "req-024",  "rotated db password"),
    ("e25", datetime(2025, 11, 2, 6, 0, 0),    "eve",         None,                 "auth",         "login",       "web",                 "failed",     "11.0.0.1",         "req-025",  "Failed password for eve"),
    ("e26", datetime(2025, 11, 2, 6, 0, 5),    "eve",         None,                 "auth",         "login",       "web",                 "failed",     "9.255.255.255",    "req-026",  "failed password for eve"),
    ("e27", datetime(2025, 11, 2, 6, 0, 10),   "eve",         None,                 "auth",         "login",       "web",                 "done",       "2001:db8::abcd",   "req-027",  "accepted password for eve"),
    ("e28", datetime(2025, 12, 31, 23, 59, 59), "Alice",      None,                 "organization", "update",      "team-blue",           "done",       None,               "req-028",  "member added"),
    ("e29", datetime(2026, 1, 1, 0, 0, 0),     "frank",       "frank@corp.com",     "monitoring",   "create",      "alert: disk",         "pending",    None,               None,       "alert rule 'disk' created"),
    ("e30", datetime(2026, 1, 1, 0, 0, 1),     "root",        "root@corp.com",      "auth",         "logout",      "ssh-gw",              "done",       "10.0.0.5",         "req-030",  "session closed"),
]
# fmt: on

NAMES = COLUMNS[: COLUMNS.index("description") + 1]  # the columns of ROWS, in order
EVENTS = pl.DataFrame(
    [dict(zip(NAMES, (*r[:1], r[1].replace(tzinfo=UTC), *r[2:]), strict=True)) for r in ROWS],
    schema={n: SCHEMA[n] for n in NAMES},
).with_columns(pl.lit(None, dtype=pl.String).alias(c) for c in ("params", "before", "after", "error"))
ALL = {r[0] for r in ROWS}


def ids(*numbers: int) -> set[str]:
    return {f"e{n}" for n in numbers}


def all_but(*numbers: int) -> set[str]:
    return ALL - ids(*numbers)


@dataclass(frozen=True)
class Case:
    name: str
    filter: Filter
    expected: set[str]


def q(query: str, **kw) -> Filter:
    return Filter(query=query, **kw)


ROOT_USER = ids(1, 7, 24, 30)  # actor root or Root; never rootkit, nor mallory's root@evil.example
ALICE_USER = ids(3, 4, 19, 20, 28)
CORP_EMAIL = ids(1, 3, 4, 5, 6, 8, 11, 19, 20, 21, 22, 23, 24, 29, 30)
ROOT_TEXT = ids(1, 2, 7, 13, 21, 24, 30)  # "root" anywhere: actor, email, target, description
TEN_SLASH_8 = ids(1, 2, 9, 10, 15, 16, 17, 18, 23, 30)  # not 11.0.0.1 (e25) nor 9.255.255.255 (e26)
IPV6 = ids(4, 5, 6, 11, 12, 19, 20, 27)
NO_IP = ids(14, 28, 29)
AUTH = ids(1, 2, 4, 11, 12, 13, 25, 26, 27, 30)
FAILED = ids(1, 2, 6, 12, 13, 22, 25, 26)

CASES = [
    # -- user: a whole actor or email, any case --------------------------------------------
    Case("user-exact", q("user:root"), ROOT_USER),
    Case("actor-alias-upper", q("actor:ROOT"), ROOT_USER),
    Case("user-email", q("user:root@corp.com"), ids(1, 24, 30)),
    Case("user-alice-not-alicia", q("user:alice"), ALICE_USER),
    Case("user-email-any-case", q("user:ALICE@corp.com"), ids(3, 4, 19, 20)),
    Case("user-unicode-case", q("user:Élodie"), ids(11, 12)),
    Case("user-underscore-literal", q("user:a_b"), ids(15)),
    Case("user-percent-literal", q("user:100%"), ids(17)),
    Case("user-backslash", q("user:back\\slash"), ids(18)),
    Case("user-nobody", q("user:roo"), set()),
    # -- wildcards --------------------------------------------------------------------------
    Case("user-prefix", q("user:ali*"), ids(3, 4, 8, 19, 20, 28)),
    Case("user-prefix-root", q("user:root*"), ids(1, 2, 7, 13, 24, 30)),
    Case("user-email-domain", q("user:*@corp.com"), CORP_EMAIL),
    Case("resource-prefix", q("resource:db-*"), ids(5, 9, 18)),
    Case("resource-underscore-literal", q("resource:db_*"), ids(6)),
    Case("target-suffix", q("target:*example.org"), ids(21, 22)),
    Case("resource-percent-literal", q("resource:x%y"), ids(10)),
    Case("resource-underscore-exact", q("resource:x_y"), ids(17)),
    Case("target-quoted-with-space", q('target:"alert: disk"'), ids(29)),
    Case("request-id-prefix-any-case", q("request_id:req-00*"), ids(1, 2, 3, 4, 5, 6, 7, 8, 9)),
    Case("request-id-shared", q("request_id:req-019"), ids(19, 20)),
    Case("action-exact", q("action:delete"), ids(5, 6, 16, 22)),
    Case("type-prefix", q("type:d*"), ids(17, 18, 21, 22)),
    Case("type-prefix-negated", q("-type:a*"), ALL - AUTH),
    Case("result-prefix", q("result:p*"), ids(7, 8, 29)),
    Case("qualifier-name-any-case", q("USER:root"), ROOT_USER),
    # -- negation ---------------------------------------------------------------------------
    Case("user-negated", q("-user:root"), ALL - ROOT_USER),
    Case("user-NOT", q("NOT user:root"), ALL - ROOT_USER),
    Case("user-negated-and-type", q("-user:root type:auth"), AUTH - ROOT_USER),
    Case("word-negated", q("-root"), ALL - ROOT_TEXT),
    Case("word-NOT", q("NOT root"), ALL - ROOT_TEXT),
    Case("phrase-negated", q('-"failed password"'), all_but(1, 2, 25, 26)),
    Case("target-negated-keeps-nulls", q("-target:web"), all_but(4, 11, 12, 25, 26, 27)),
    Case("ip-negated-keeps-nulls", q("-ip:8.8.8.8"), all_but(7)),
    Case("two-negations", q("-type:auth NOT type:user"), ALL - AUTH - ids(3, 15, 16)),
    Case("word-and-negated-word", q("failed -eve"), ids(1, 2)),
    # -- OR ---------------------------------------------------------------------------------
    Case("user-repeated", q("user:root user:alice"), ROOT_USER | ALICE_USER),
    Case("user-OR", q("user:root OR user:alice"), ROOT_USER | ALICE_USER),
    Case("result-OR", q("result:failed OR result:pending"), FAILED | ids(7, 29)),
    Case("type-OR-with-AND", q("type:vpn OR type:domain AND -result:failed"), ids(19, 20, 21)),
    Case("ip-repeated", q("ip:8.8.8.8 ip:127.0.0.1"), ids(7, 24)),
    Case("result-alias", q("result:failure"), FAILED),
    # -- free text and phrases --------------------------------------------------------------
    Case("word", q("root"), ROOT_TEXT),
    Case("word-any-case", q("PARIS"), ids(19, 20)),
    Case("two-words", q("failed password"), ids(1, 2, 25, 26)),
    Case("phrase", q('"failed password"'), ids(1, 2, 25, 26)),
    Case("two-words-anywhere", q("password eve"), ids(25, 26, 27)),
    Case("phrase-in-order-only", q('"eve password"'), set()),
    Case("phrase-of-three", q('"password for eve"'), ids(25, 26, 27)),
    Case("quoted-keyword-is-a-word", q('"NOT"'), ids(22)),
    Case("word-percent-literal", q("100%"), ids(9, 17)),
    Case("word-underscore-literal", q("a_b"), ids(15, 16)),
    Case("word-backslash", q("\\"), ids(18)),
    Case("word-unicode-case", q("über"), ids(11)),
    Case("word-accented-upper", q("ÉLODIE"), ids(11, 12)),
    Case("word-email-domain", q("corp.com"), CORP_EMAIL),
    Case("word-ipv6-prefix", q("2001:db8"), ids(4, 5, 27)),
    Case("word-in-ip", q("10.0.0.5"), ids(1, 30)),
    Case("word-in-request-id", q("REQ-019"), ids(19, 20)),
    Case("lower-case-or-is-a-word", q("user:root or"), ids(1, 24, 30)),  # "or" in corp.com, "for"
    Case("lower-case-not-is-a-word", q("not"), ids(22)),
    # -- ip: addresses and blocks -----------------------------------------------------------
    Case("ip-exact", q("ip:10.0.0.5"), ids(1, 30)),
    Case("ip-v6-written-long", q("ip:2001:0DB8:0:0::1"), ids(4)),
    Case("ip-v6-loopback", q("ip:::1"), ids(11)),
    Case("cidr-v4", q("ip:10.0.0.0/8"), TEN_SLASH_8),
    Case("cidr-v4-negated", q("-ip:10.0.0.0/8"), ALL - TEN_SLASH_8),
    Case("cidr-v4-host-bits", q("ip:192.168.1.77/24"), ids(3)),
    Case("cidr-v4-private", q("ip:172.16.0.0/12"), ids(8)),
    Case("cidr-v4-everything", q("ip:0.0.0.0/0"), ALL - IPV6 - NO_IP),
    Case("cidr-v6", q("ip:2001:db8::/32"), ids(4, 5, 27)),
    Case("cidr-v6-upper", q("ip:2001:DB8::/32"), ids(4, 5, 27)),
    Case("cidr-v6-narrow", q("ip:2001:db8::/48"), ids(4, 27)),
    Case("cidr-v6-everything", q("ip:::/0"), IPV6),
    Case("cidr-v4-or-v6", q("ip:10.0.0.0/8 OR ip:2001:db8::/32"), TEN_SLASH_8 | ids(4, 5, 27)),
    Case("cidr-none", q("ip:100.64.0.0/10"), set()),
    Case("ip-wildcard", q("ip:10.200.0.*"), ids(9, 10)),
    # -- days and instants in Europe/Paris, at both changes of the clock --------------------
    Case(
        "paris-spring-day-is-23h",
        Filter(period="custom", start=date(2025, 3, 30), end=date(2025, 3, 30), tz=PARIS),
        ids(2, 3, 4, 5),
    ),
    Case(
        "utc-spring-day",
        Filter(period="custom", start=date(2025, 3, 30), end=date(2025, 3, 30)),
        ids(3, 4, 5, 6),
    ),
    Case(
        "paris-autumn-day-is-25h",
        Filter(period="custom", start=date(2025, 10, 26), end=date(2025, 10, 26), tz=PARIS),
        ids(8, 9, 10, 11),
    ),
    Case("paris-today-on-the-autumn-change", Filter(period="today", tz=PARIS), ids(8, 9, 10, 11)),
    Case("utc-today", Filter(period="today"), ids(9, 10, 11, 12)),
    Case(
        "paris-from-a-day-on",
        Filter(period="custom", start=date(2025, 3, 31), tz=PARIS),
        ALL - ids(1, 2, 3, 4, 5),
    ),
    Case(
        "paris-instants-second-0230-end-excluded",
        Filter(
            period="custom",
            start=datetime(2025, 10, 26, 2, 30, fold=1),  # the second 02:30 (CET): 01:30 UTC
            end=datetime(2025, 10, 26, 23, 59, 59),  # e11's instant (22:59:59 UTC), excluded
            tz=PARIS,
        ),
        ids(10),
    ),
    Case(
        "paris-instants-first-0230",
        Filter(
            period="custom",
            start=datetime(2025, 10, 26, 2, 30),  # the first 02:30 (CEST): 00:30 UTC
            end=datetime(2025, 10, 27, 0, 0),
            tz=PARIS,
        ),
        ids(9, 10, 11),
    ),
    Case("after-before-paris", q("after:2025-03-30 before:2025-03-31", tz=PARIS), ids(2, 3, 4, 5)),
    Case("after-before-utc", q("after:2025-03-30 before:2025-03-31"), ids(3, 4, 5, 6)),
    # 02:30 happens twice on 2025-10-26; written plainly it is the first (CEST, 00:30 UTC)
    Case(
        "paris-repeated-hour",
        q("after:2025-10-26T02:30 before:2025-10-26T03:00", tz=PARIS),
        ids(9, 10),
    ),
    # 02:00-03:00 never happened on 2025-03-30: the range is empty
    Case("paris-skipped-hour", q("after:2025-03-30T02:00 before:2025-03-30T03:00", tz=PARIS), set()),
    Case(
        "explicit-offset-ignores-the-zone",
        q("after:2025-10-26T02:30+01:00 before:2025-10-27", tz=PARIS),
        ids(10, 11),
    ),
    Case("not-after-is-before", q("-after:2025-03-30", tz=PARIS), ids(1)),
    # -- several filters at once ------------------------------------------------------------
    Case(
        "panel-and-search",
        Filter(types=("auth",), results=("failed",), query="-user:rootkit root"),
        ids(1, 13),
    ),
    Case("panel-users-exact-any-case", Filter(users=("ROOT",)), ROOT_USER),
    Case("panel-users-email", Filter(users=("alice@corp.com",)), ids(3, 4, 19, 20)),
    Case(
        "panel-users-star-is-literal",
        Filter(users=("ali*",)),
        set(),
    ),
    # the panel's types and results read in any case, with the search language's aliases
    Case("panel-any-case", Filter(types=("AUTH",), results=("FAILED",)), AUTH & FAILED),
    Case("panel-result-alias", Filter(results=("success",), types=("auth",)), AUTH - FAILED),
    # -- `*` in free words: nothing at the ends, everything alone, a character in quotes ----
    Case("star-alone-is-everything", q("*"), ALL),
    Case("star-at-the-ends-adds-nothing", q("*root*"), ROOT_TEXT),
    Case("star-in-quotes-is-the-character", q('"*"'), ids(9)),
    Case("nothing", Filter(), ALL),
]

ENGINES = ["memory", "memory-plain", "pushdown"]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    from audit_analytics.engines.store import open_store

    store = open_store(f"sqlite:///{tmp_path_factory.mktemp('filters') / 'audit.db'}")
    assert store.append(EVENTS).inserted == len(ROWS)
    yield store
    store.engine.dispose()


@pytest.fixture(scope="module", params=ENGINES)
def engine(request, store):
    from audit_analytics.engines import memory
    from audit_analytics.engines.sql import open_engine

    if request.param == "pushdown":
        return request.param, open_engine(store, mode="pushdown")
    if request.param == "memory":
        built = open_engine(store, mode="memory")
        assert built._dicts  # the dictionary path
        return request.param, built
    with pytest.MonkeyPatch.context() as mp:  # no dictionaries: the lowered-column path
        mp.setattr(memory, "DICTIONARY_ALWAYS_UP_TO", 0)
        mp.setattr(memory, "DICTIONARY_MAX_SHARE", 0.0)
        built = open_engine(store, mode="memory")
    assert not built._dicts
    return request.param, built


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_search_finds_exactly_the_expected_events(engine, case):
    _name, index = engine
    found = index.page(case.filter, offset=0, limit=len(ROWS) + 1, now=NOW)["id"].to_list()
    assert len(found) == len(set(found))
    assert set(found) == case.expected
    assert index.count(case.filter, now=NOW) == len(case.expected)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_polars_filter_finds_the_same(case):
    """``Filter.apply`` (the archive and analyses run it) follows the same table."""
    assert set(case.filter.apply(EVENTS, now=NOW)["id"]) == case.expected


def test_table_is_well_formed():
    names = [c.name for c in CASES]
    assert len(names) == len(set(names))
    assert EVENTS["id"].to_list() == [f"e{n}" for n in range(1, 31)]
    for case in CASES:
        assert case.expected <= ALL, case.name
    # a case that finds nothing or everything proves little: few may
    trivial = [c.name for c in CASES if c.expected in (set(), ALL)]
    assert len(trivial) <= 9, trivial


@pytest.mark.parametrize(
    "changes",
    [{"start": date(1, 1, 1)}, {"end": date(9999, 12, 31)}, {"start": datetime(999, 12, 31, 23, 0)}],
    ids=str,
)
def test_a_period_no_zone_can_hold_is_refused_when_the_filter_is_made(changes):
    # before: accepted, then OverflowError from every engine once the bounds were computed
    with pytest.raises(ValueError, match="out of range; use a year from 1000 to 9998"):
        Filter(period="custom", tz="Asia/Tokyo", **changes)


# ---------------------------------------------------------------------------------------
# what the language refuses: a QueryError saying where, before any engine runs

REFUSED = [
    ("ip:999.1.1.1", 4, "'999.1.1.1' is not an IPv4 or IPv6 address"),
    ("ip:10.0.0.256", 4, "not an IPv4 or IPv6 address"),
    ("ip:::gg", 4, "'::gg' is not an IPv4 or IPv6 address"),
    ("ip:localhost", 4, "not an IPv4 or IPv6 address"),
    ("root ip:1.2.3", 9, "not an IPv4 or IPv6 address"),
    ('-ip:"10.0.0.1 "', 5, "not an IPv4 or IPv6 address"),
    ("ip:10.0.0.0/33", 4, "prefix length from 0 to 32 for IPv4"),
    ("ip:2001:db8::/129", 4, "prefix length from 0 to 128 for IPv6"),
    ("ip:10.0.0.0/x", 4, "not a CIDR block"),
    ("ip:999.0.0.0/8", 4, "'999.0.0.0' is not an address"),
    # a wildcard and a block together (hypothesis found `IP:/*` reaching ipaddress unchecked)
    ("IP:/*", 4, "mixes a wildcard with a CIDR block"),
    ("x ip:10.0.*/16", 6, "mixes a wildcard with a CIDR block"),
    ("user:root OR x", 11, "OR joins two values of one qualifier"),
    ("user:root OR type:auth", 11, "OR joins two values of one qualifier"),
    ("-user:root OR user:alice", 12, "OR joins two values of one qualifier"),
    ("OR user:root", 1, "OR needs a term on each side"),
    ("user:root AND", 11, "AND needs a term after it"),
    ("root NOT", 6, "NOT needs a term after it"),
    ("NOT -root", 1, "NOT before a negated term"),
    ("after:0001-01-01", 7, "out of range"),
    # a range no instant is in (it answered "No events match" without a word); more in test_query
    ("before:2025-11-01 root after:2025-11-01", 24, "no event is both after:2025-11-01 and before"),
]


@pytest.mark.parametrize(("text", "position", "message"), REFUSED, ids=[r[0] for r in REFUSED])
def test_bad_searches_are_refused_with_where_and_why(text, position, message):
    with pytest.raises(QueryError) as info:
        Filter(query=text, tz=PARIS)
    assert info.value.position == position
    assert message in info.value.message


def test_the_caption_writes_instants_as_a_reader_does():
    """A chart's click-through opens a custom period of instants; the caption read "from
    2026-11-26T00:00:00+00:00 to 2026-11-27T00:00:00+00:00"."""
    from datetime import timedelta

    start = datetime(2026, 11, 26, tzinfo=UTC)
    day = Filter(period="custom", start=start, end=start + timedelta(days=1))
    assert day.describe(count=40) == "40 events · from 2026-11-26 00:00 to 2026-11-27 00:00"
    # in the shown zone, which the caption names; seconds and microseconds only when there are
    paris = Filter(
        period="custom", start=start, end=start + timedelta(seconds=5, microseconds=7), tz="Europe/Paris"
    )
    assert paris.describe() == (
        "events · from 2026-11-26 01:00 to 2026-11-26 01:00:05.000007 · days in Europe/Paris"
    )
    # a fraction of a second without its trailing zeros (a finding's first event at .473 read
    # ".473000"), every digit that counts kept
    ms = Filter(
        period="custom", start=start + timedelta(microseconds=473_000), end=start + timedelta(seconds=1)
    )
    assert ms.describe() == "events · from 2026-11-26 00:00:00.473 to 2026-11-26 00:00:01"


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"types": ("nope",)}, "unknown type 'nope'"),
        ({"results": ("broken",)}, "unknown result 'broken'"),
        ({"period": "week"}, "unknown period 'week'"),
        ({"tz": "Mars/Base"}, "unknown time zone 'Mars/Base'"),
        ({"period": "custom", "start": "1 March"}, "start '1 March' is not a date"),
        ({"period": "custom", "end": 20260301}, "end 20260301 is not a date"),
        (
            {"period": "custom", "start": date(2026, 12, 1), "end": date(2026, 11, 1)},
            r"the end \(2026-11-01\) is before the start \(2026-12-01\)",
        ),
    ],
)
def test_a_filter_that_cannot_be_applied_is_a_filter_error(changes, words):
    """Of the package's family (AuditAnalyticsError) and still a ValueError; an end before the
    start is refused as the command line refuses it (the API answered 0 events "from 2026-12-01
    to 2026-11-01"), and a date as text is not a TypeError from deep inside a count."""
    from audit_analytics import AuditAnalyticsError, FilterError

    with pytest.raises(FilterError, match=words) as info:
        Filter(**changes)
    assert isinstance(info.value, AuditAnalyticsError) and isinstance(info.value, ValueError)


def test_dates_may_be_given_as_iso_text():
    text = Filter(period="custom", start="2026-10-01", end="2026-10-31", tz="Europe/Paris")
    typed = Filter(period="custom", start=date(2026, 10, 1), end=date(2026, 10, 31), tz="Europe/Paris")
    assert text == typed and text.bounds() == typed.bounds()
    instant = Filter(period="custom", start="2026-10-01T09:30:00+02:00")
    assert instant.bounds()[0] == datetime(2026, 10, 1, 7, 30, tzinfo=UTC)
    one_day = Filter(period="custom", start="2026-10-01", end="2026-10-01")  # the end day is included
    assert one_day.bounds()[1] == datetime(2026, 10, 2, tzinfo=UTC)


def test_a_link_with_its_end_before_its_start_keeps_its_start():
    from audit_analytics.view import View

    view = View.from_params({"period": "custom", "from": "2026-12-05", "to": "2026-12-01"})
    assert (view.filter.start, view.filter.end) == (date(2026, 12, 5), None)


def test_a_free_word_matches_the_action():
    """`logout` found none of 5,414 logouts (the action was not among the searched columns, and
    a logout's description says "signed out"), and `-logout` left out nothing."""
    frame = pl.DataFrame(
        {
            "id": ["a", "b", "c"],
            "time": [datetime(2026, 12, 1, tzinfo=UTC)] * 3,
            "actor": ["ann", "bob", "cy"],
            "email": ["ann@corp.com", "bob@corp.com", "cy@corp.com"],
            "type": ["auth", "auth", "service"],
            "action": ["logout", "login", "deploy"],
            "target": ["console", "console", "checkout"],
            "result": ["done", "done", "done"],
            "ip": ["10.0.0.1", "10.0.0.2", "10.0.0.3"],
            "description": ["ann signed out", "bob signed in", "cy deployed checkout"],
            "request_id": ["r1", "r2", "r3"],
        }
    )
    assert Filter(query="logout").apply(frame)["id"].to_list() == ["a"]
    assert Filter(query="-logout").apply(frame)["id"].to_list() == ["b", "c"]
    assert Filter(query="LOG").apply(frame)["id"].to_list() == ["a", "b"]

"""The search language: parse, print round trip, errors with positions."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit_analytics.query import QUALIFIERS, Qualified, QueryError, Word, parse

PARSE_CASES = [
    ("root", [Word("root")]),
    ("root admin", [Word("root"), Word("admin")]),
    ('"failed password"', [Word("failed password", quoted=True)]),
    ("-logout", [Word("logout", negated=True)]),
    ("user:alice@corp.com", [Qualified("user", "alice@corp.com", False, "user")]),
    ("actor:alice", [Qualified("user", "alice", False, "actor")]),
    ("resource:db-*", [Qualified("target", "db-*", False, "resource")]),
    ("target:x", [Qualified("target", "x", False, "target")]),
    ("-action:delete", [Qualified("action", "delete", True, "action")]),
    ("type:AUTH", [Qualified("type", "auth", False, "type")]),
    ("result:success", [Qualified("result", "done", False, "result")]),
    (
        "result:failed result:pending",
        [Qualified("result", "failed", False, "result"), Qualified("result", "pending", False, "result")],
    ),
    ("ip:10.0.0.0/8", [Qualified("ip", "10.0.0.0/8", False, "ip")]),
    ("ip:2001:db8::1", [Qualified("ip", "2001:db8::1", False, "ip")]),
    ('user:"Ann Lee"', [Qualified("user", "Ann Lee", False, "user")]),
    ("USER:bob", [Qualified("user", "bob", False, "user")]),
    (
        "after:2026-01-31 before:2026-02-02T10:00",
        [
            Qualified("after", "2026-01-31", False, "after"),
            Qualified("before", "2026-02-02T10:00", False, "before"),
        ],
    ),
    ("request_id:req-1", [Qualified("request_id", "req-1", False, "request_id")]),
    ('"say \\"hi\\""', [Word('say "hi"', quoted=True)]),
    ("100% a_b", [Word("100%"), Word("a_b")]),
    ("2001:db8::1", [Word("2001:db8::1")]),
    ("  spaced   out  ", [Word("spaced"), Word("out")]),
    ("", []),
    ('""', []),
    ("-", [Word("-")]),
    # NOT, OR, AND: upper-case operator words; quoted or lower-case, words again
    ("NOT user:root", [Qualified("user", "root", True, "user")]),
    ('NOT "disk full"', [Word("disk full", negated=True, quoted=True)]),
    (
        "user:root OR user:alice",
        [Qualified("user", "root", False, "user"), Qualified("user", "alice", False, "user")],
    ),
    (  # user: and actor: are one field
        "user:root OR actor:x",
        [Qualified("user", "root", False, "user"), Qualified("user", "x", False, "actor")],
    ),
    ("root AND NOT admin", [Word("root"), Word("admin", negated=True)]),
    ('"NOT" "OR" "AND"', [Word("NOT", quoted=True), Word("OR", quoted=True), Word("AND", quoted=True)]),
    ("-NOT", [Word("NOT", negated=True)]),
    ("not or and Or", [Word("not"), Word("or"), Word("and"), Word("Or")]),
    # an address is kept in the form ingest stores; a block or a wildcard as typed
    ("ip:2001:0DB8:0000::0001", [Qualified("ip", "2001:db8::1", False, "ip")]),
    ("ip:::1", [Qualified("ip", "::1", False, "ip")]),
    ("ip:10.0.*", [Qualified("ip", "10.0.*", False, "ip")]),
    ("-ip:192.168.1.7/24", [Qualified("ip", "192.168.1.7/24", True, "ip")]),
    # `*` and free words: a substring match needs no `*` at its ends; `*` alone is everything
    ("*", []),
    ("* root", [Word("root")]),
    ("fail* -*admin**", [Word("fail"), Word("admin", negated=True)]),
    ('"*" "a*b"', [Word("*", quoted=True), Word("a*b", quoted=True)]),
    (  # a range that some instant is in
        "after:2026-01-01 before:2026-01-01T00:00:01",
        [
            Qualified("after", "2026-01-01", False, "after"),
            Qualified("before", "2026-01-01T00:00:01", False, "before"),
        ],
    ),
    (  # an offset against a wall-clock day: compared by the filter's zone, not here
        "after:2026-01-02T00:00+14:00 before:2026-01-01",
        [
            Qualified("after", "2026-01-02T00:00+14:00", False, "after"),
            Qualified("before", "2026-01-01", False, "before"),
        ],
    ),
]


@pytest.mark.parametrize(("text", "expected"), PARSE_CASES, ids=[c[0] or "empty" for c in PARSE_CASES])
def test_parse(text, expected):
    result = parse(text)
    assert list(result.terms) == expected


@pytest.mark.parametrize(("text", "expected"), PARSE_CASES, ids=[c[0] or "empty" for c in PARSE_CASES])
def test_print_round_trips(text, expected):
    printed = str(parse(text))
    assert parse(printed).terms == parse(text).terms


ERROR_CASES = [
    ("usr:root", 1, "unknown qualifier 'usr:'"),
    ("root usr:x", 6, "known: action, actor"),
    ('"open', 1, "unclosed quote"),
    ('a "b', 3, "unclosed quote"),
    ("user:", 5, "needs a value"),
    ("user: alice", 6, "needs a value"),
    ("type:nope", 6, "unknown type 'nope'"),
    ("type:permision", 6, "unknown type 'permision' (did you mean type:permission?)"),
    ("result:maybe", 8, "unknown result 'maybe'"),
    ("ip:10.0.0.0/99", 4, "not a CIDR block"),
    ("ip:10.0.0.0/33", 4, "prefix length from 0 to 32 for IPv4"),
    ("ip:999.1.1.1", 4, "'999.1.1.1' is not an IPv4 or IPv6 address"),
    ("ip:::gg", 4, "'::gg' is not an IPv4 or IPv6 address"),
    ('a -ip:"1.2.3"', 7, "not an IPv4 or IPv6 address"),
    ("after:0999-12-31", 7, "out of range; write a year from 1000 to 9998"),
    ("before:9999-01-01T00:00", 8, "out of range"),
    ("NOT", 1, "NOT needs a term after it"),
    ("NOT NOT a", 5, "NOT NOT"),
    ("NOT -a", 1, "NOT before a negated term"),
    ('NOT ""', 1, "NOT needs a term after it"),
    ("OR user:a", 1, "OR needs a term on each side"),
    ("user:a OR", 8, "OR needs a term after it"),
    ("user:a OR OR user:b", 11, "OR needs a term on each side"),
    ("root OR admin", 6, "OR joins two values of one qualifier"),
    ("user:a OR type:auth", 8, "OR joins two values of one qualifier"),
    ("user:a OR -user:b", 8, "OR joins two values of one qualifier"),
    ("after:2026-01-01 OR after:2026-02-01", 18, "after: and before: are the bounds of one time range"),
    ("before:2026-01-01 OR before:2026-02-01", 19, "every bound holds (after:A after:B is after the later)"),
    ("--type:auth", 1, "a term starts with two minus signs"),  # matched every event: no text is "-type:auth"
    ("x --y", 3, "a term starts with two minus signs"),
    ("AND root", 1, "AND needs a term on each side"),
    ("after:yesterday", 7, "not a date"),
    ('ab"c', 3, "a quote inside a word"),
    ('"a"b', 4, "space after a closing quote"),
    ("-*", 2, "a negated * leaves out every event"),
    ("NOT **", 5, "a negated * leaves out every event"),
    ("x -db*prod", 6, "a * inside a free word is not a wildcard"),
    ("**a*b*", 4, "a * inside a free word is not a wildcard"),
    ("after:2026-12-01 before:2026-11-01", 18, "no event is both after:2026-12-01 and before:2026-11-01"),
    ("after:2026-12-01 before:2026-12-01", 18, "no event is both"),
    (
        "before:2026-11-01 x NOT before:2026-12-01",
        25,
        "no event is both -before:2026-12-01 and before:2026-11-01",
    ),
    ("after:2026-01-01T10:00+00:00 before:2026-01-01T09:00Z", 30, "no event is both"),
]


@pytest.mark.parametrize(("text", "position", "message"), ERROR_CASES, ids=[c[0] for c in ERROR_CASES])
def test_errors_say_where_and_why(text, position, message):
    with pytest.raises(QueryError) as info:
        parse(text)
    assert info.value.position == position
    assert message in info.value.message
    assert isinstance(info.value, ValueError)


def test_unknown_qualifier_lists_every_known_one():
    with pytest.raises(QueryError) as info:
        parse("foo:bar")
    for name in QUALIFIERS:
        assert name in info.value.message


def test_cidr_network_is_exposed():
    term = parse("ip:192.168.1.7/24").terms[0]
    assert str(term.network) == "192.168.1.0/24"
    assert parse("ip:10.0.0.1").terms[0].network is None


@pytest.mark.parametrize("word", ["NOT", "OR", "AND"])
def test_operator_words_print_quoted_when_they_are_words(word):
    assert str(Word(word)) == f'"{word}"'
    assert str(Word(word, negated=True)) == f'-"{word}"'
    assert parse(str(Word(word))).terms == (Word(word),)


_alphabet = st.sampled_from(
    list('abc:-" \\*%_/.é\t\n')
    + ["user:", "ip:", "type:", "result:", "-user:", "NOT ", " OR ", " AND ", "10.0.0.1", "::1", "/8"]
)


# a parse takes microseconds; the deadline (Hypothesis times each example and replays a
# slow one before it reports it) catches a quadratic or backtracking parser, not a busy machine
PARSE_DEADLINE = timedelta(milliseconds=500)


@settings(max_examples=400, deadline=PARSE_DEADLINE)
@given(st.lists(_alphabet, max_size=30).map("".join) | st.text(max_size=60))
def test_parser_raises_only_query_errors_and_round_trips(text):
    try:
        query = parse(text)
    except QueryError as exc:
        assert 1 <= exc.position <= len(text) + 1
    else:
        # whatever parses also prints to something that parses to the same terms
        assert parse(str(query)).terms == query.terms

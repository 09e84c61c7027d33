"""Free words on a polars frame: the ASCII fast path finds exactly the rows of the definition.

``Filter(query=...).apply(frame)`` searches an ASCII word with ``str.contains_any(...,
ascii_case_insensitive=True)`` on the raw text (``filters.text_contains``). The definition
stays ``str.to_lowercase().str.contains(word.lower(), literal=True)``
(``filters.text_contains_unicode``). These tests compare the two on hostile text: non-ASCII
letters whose lowercase is ASCII (KELVIN SIGN, Turkish dotted I), German sharp s, Greek final
sigma, regex metacharacters, missing values, and whole queries with negated words, quoted
phrases and qualifiers.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from conftest import need
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit_analytics import filters
from audit_analytics.filters import (
    ASCII_FROM_NON_ASCII,
    ASCII_FROM_NON_ASCII_LAST,
    MAX_ASCII_NEEDLES,
    Filter,
    ascii_needles,
    distinct_text,
    text_contains,
    text_contains_unicode,
)
from audit_analytics.query import Word
from audit_analytics.schema import TEXT_SEARCH_COLUMNS

ROOT = Path(__file__).resolve().parents[1]

KELVIN, DOTTED_I, DOT_ABOVE = "\u212a", "\u0130", "\u0307"
# characters whose case rules are not ASCII's, and regex/LIKE metacharacters
HOSTILE = [
    "k", "K", KELVIN, "i", "I", DOTTED_I, "ı", DOT_ABOVE, "s", "S", "ß", "ẞ", "ſ",
    "Σ", "σ", "ς", "é", "É", "e", "E", "ﬁ", "ǅ", "Ω", "Ω", "a", "A", "z",
    ".", "*", "+", "?", "(", ")", "[", "]", "\\", "^", "$", "|", "{", "}", "%", "_",
    " ", "-", "0", "7", "\x00", "\n",
]  # fmt: skip


def _lowercase_of_every_code_point() -> dict[str, str]:
    chars = [chr(c) for c in range(0x80, 0x110000) if not 0xD800 <= c <= 0xDFFF]
    lowered = pl.Series(chars).str.to_lowercase().to_list()
    return dict(zip(chars, lowered, strict=True))


def test_only_kelvin_and_dotted_i_lower_to_ascii():
    """The fast path's table is complete for this polars: no other character outside ASCII
    has a lowercase holding an ASCII character, and these two hold one only where said."""
    found = {c: low for c, low in _lowercase_of_every_code_point().items() if any(x.isascii() for x in low)}
    assert found == {KELVIN: "k", DOTTED_I: "i" + DOT_ABOVE}
    assert ASCII_FROM_NON_ASCII == {"k": KELVIN}  # the whole lowercase is ASCII: anywhere
    assert ASCII_FROM_NON_ASCII_LAST == {"i": DOTTED_I}  # ASCII then U+0307: only at the end
    # and ASCII lowers as ASCII does
    ascii_chars = [chr(c) for c in range(128)]
    assert pl.Series(ascii_chars).str.to_lowercase().to_list() == [c.lower() for c in ascii_chars]


def test_ascii_needles():
    assert ascii_needles("payments") == ["payments"]
    assert ascii_needles("10.20.7") == ["10.20.7"]
    assert ascii_needles("kik") == ["kik", f"ki{KELVIN}", f"{KELVIN}ik", f"{KELVIN}i{KELVIN}"]
    assert ascii_needles("ki") == ["ki", f"k{DOTTED_I}", f"{KELVIN}i", f"{KELVIN}{DOTTED_I}"]
    assert ascii_needles("k" * 6) is not None and len(ascii_needles("k" * 6) or []) == MAX_ASCII_NEEDLES
    # no short list: the definition's path
    for needle in ("k" * 7, "straße", "é", "", "Upper"):
        assert ascii_needles(needle) is None


def _both(values: list[str | None], needle: str) -> tuple[list[bool], list[bool]]:
    frame = pl.DataFrame({"actor": values}, schema={"actor": pl.String})
    fast = frame.select(text_contains("actor", needle)).to_series().to_list()
    general = frame.select(text_contains_unicode("actor", needle)).to_series().to_list()
    return fast, general


@pytest.mark.parametrize(
    ("value", "word", "expected"),
    [
        (f"{KELVIN}ELVIN", "kelvin", True),  # KELVIN SIGN lowers to "k"
        (f"to{KELVIN}yo", "TOKYO", True),
        (f"{DOTTED_I}STANBUL", "i", True),  # "İ" lowers to "i" + U+0307
        (f"W{DOTTED_I}F{DOTTED_I}", "wifi", False),  # the first i is followed by U+0307
        (f"WIF{DOTTED_I}", "wifi", True),  # ... but a last one is not
        (f"{DOTTED_I}stanbul", "istanbul", False),
        (f"{DOTTED_I}stanbul", f"{DOTTED_I}stanbul", True),  # non-ASCII word: the definition
        ("İSTANBUL", "i̇stanbul", True),
        ("ıstanbul", "istanbul", False),  # dotless i is its own letter
        ("Straße", "STRASSE", False),  # lowercase, not case folding: ß is not ss
        ("STRASSE", "straße", False),
        ("Straße", "STRAẞE", True),  # capital sharp s lowers to ß
        ("ΟΔΟΣ", "οδος", True),  # final sigma
        ("ΟΔΟΣ", "οδοσ", False),
        ("Éclair", "éCLAIR", True),
        ("Eclair", "éclair", False),
        ("ſecret", "secret", False),  # long s lowers to itself
        ("a.b*c", "A.B*C", True),  # metacharacters are literal
        ("axb", "a.b", False),
        ("100%_done", "%_D", True),
        ("", "", True),
        (None, "x", False),
        (None, "", False),
    ],
)
def test_hostile_values(value, word, expected):
    fast, general = _both([value], word.lower())
    assert general == [expected]
    assert fast == general


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    values=st.lists(
        st.none() | st.text(st.sampled_from(HOSTILE) | st.characters(codec="utf-8"), max_size=12), max_size=30
    ),
    word=st.text(st.sampled_from(HOSTILE), min_size=0, max_size=4),
)
def test_fast_path_is_the_definition_on_random_text(values, word):
    """Random values (any code point, and the hostile ones often) and random words: the
    fast path and the plain ``str.to_lowercase().str.contains(literal=True)`` agree."""
    fast, general = _both(values, word.lower())
    assert fast == general


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(st.none() | st.text(st.sampled_from(HOSTILE), max_size=8), min_size=1, max_size=30),
    start=st.integers(0, 7),
    length=st.integers(1, 4),
)
def test_fast_path_finds_words_taken_from_the_values(values, start, length):
    """Words cut from the values themselves, so that most of them match somewhere."""
    text = next((v for v in values if v), "k")
    word = text[start : start + length] or text
    fast, general = _both(values, word.lower())
    assert fast == general


# ----------------------------------------------------------------- whole queries via apply


def _frame() -> pl.DataFrame:
    rows = [
        (
            "e1",
            f"{KELVIN}elvin",
            "kelvin@corp.com",
            "tokyo-db",
            "10.0.0.5",
            "req-001",
            "login",
            "Failed password",
        ),
        ("e2", "İlker", None, f"to{KELVIN}yo-db", "10.0.0.6", None, "login", "WIFİ down"),
        ("e3", "straße", "STRASSE@corp.com", "payments", "2001:db8::1", "REQ-003", "delete", "ΟΔΟΣ closed"),
        ("e4", "Éric", "eric@corp.com", "a.b*c", None, "req-004", "read", "100% done (a|b)"),
        ("e5", "", "", "", "", "", "update", ""),
        ("e6", None, None, None, None, None, "update", None),
        ("e7", "svc-ci", None, "db-*", "10.20.7.1", "req-007", "deploy", "ſecret rotated by svc-ci"),
    ]
    cols = ["id", "actor", "email", "target", "ip", "request_id", "action", "description"]
    frame = pl.DataFrame(rows, schema=dict.fromkeys(cols, pl.String), orient="row")
    errors = [None, "İnvalid password", None, "disc full", "", None, None]
    return frame.with_columns(
        type=pl.lit("auth"), result=pl.lit("done"), error=pl.Series(errors, dtype=pl.String)
    )


QUERIES = [
    "kelvin",
    "TOKYO",
    "-tokyo",
    "i",
    "-i",
    "wifi",
    "wifİ",
    "istanbul",
    "strasse",
    "straße",
    "STRASSE",
    "οδος",
    "éric",
    "ERIC",
    '"a.b*c"',
    '"100% done"',
    '"(a|b)"',
    '"failed password"',
    '-"failed password"',
    "req",
    "-req",
    "10.20.7",
    "user:kelvin",
    "user:*elvin",
    "actor:straße kelvin",
    "action:login -tokyo",
    "target:db-* svc",
    '""',
    'k "" -zzz',
    "secret",
    "ſecret",
]


@pytest.mark.parametrize("query", QUERIES)
@pytest.mark.parametrize("lazy", [False, True])
def test_apply_gives_the_rows_of_the_definition(query, lazy, monkeypatch):
    frame = _frame()
    source = frame.lazy() if lazy else frame
    got = Filter(query=query).apply(source)
    got_ids = (got.collect() if isinstance(got, pl.LazyFrame) else got)["id"].to_list()
    monkeypatch.setattr(filters, "text_contains", text_contains_unicode)
    expected = Filter(query=query).apply(frame)["id"].to_list()
    assert got_ids == expected


@pytest.mark.parametrize(
    ("query", "ids"),
    [
        ("kelvin", ["e1"]),  # KELVIN SIGN in the actor, and the email
        ("tokyo", ["e1", "e2"]),
        ("-tokyo", ["e3", "e4", "e5", "e6", "e7"]),
        ("wifi", ["e2"]),
        ("strasse", ["e3"]),  # the email, not the actor's ß
        ("straße", ["e3"]),
        ("οδος", ["e3"]),
        ('"100% done"', ["e4"]),
        ("secret", []),
        ('""', ["e1", "e2", "e3", "e4", "e5", "e6", "e7"]),  # an empty phrase is no term
        ('k "" -zzz', ["e1", "e2"]),
    ],
)
def test_apply_on_hostile_rows(query, ids):
    assert Filter(query=query).apply(_frame())["id"].to_list() == ids


def test_all_text_columns_are_searched():
    frame = _frame()
    for column in TEXT_SEARCH_COLUMNS:
        value = f"Zq{KELVIN}x-{column}"
        marked = frame.with_columns(
            pl.when(pl.col("id") == "e5").then(pl.lit(value)).otherwise(pl.col(column)).alias(column)
        )
        assert Filter(query=f"zqkx-{column}").apply(marked)["id"].to_list() == ["e5"]


# ----------------------------------------------------------------- distinct values


def _definition(query: str, frame: pl.DataFrame) -> list[str]:
    """The rows by the definition: every row searched, Unicode lowercase, no distinct values."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(filters, "text_contains", text_contains_unicode)
        mp.setattr(filters, "distinct_text", lambda frame: {})
        return Filter(query=query).apply(frame)["id"].to_list()


def _big_frame(copies: int = 3000) -> pl.DataFrame:
    """The hostile rows many times over (so actor, email, target, ip, description repeat),
    with a request_id of their own."""
    big = pl.concat([_frame()] * copies)
    return big.with_columns(
        id=pl.int_range(pl.len()).cast(pl.String), request_id=pl.format("req-{}", pl.int_range(pl.len()))
    )


def test_distinct_text_takes_only_repeating_columns():
    big = _big_frame()
    distinct = distinct_text(big)
    assert set(distinct) == set(TEXT_SEARCH_COLUMNS) - {"request_id"}  # each row's own
    assert distinct["actor"].sort(nulls_last=True).to_list() == sorted(
        {v for v in _frame()["actor"].to_list() if v is not None}
    ) + [None]
    assert distinct_text(_frame()) == {}  # small frames: every row is searched


@pytest.mark.parametrize("query", QUERIES + ["req-1", "req-20999", "-req-2"])
def test_apply_with_distinct_values_gives_the_rows_of_the_definition(query):
    big = _big_frame()
    assert Filter(query=query).apply(big)["id"].to_list() == _definition(query, big)
    lazy = Filter(query=query).apply(big.lazy()).collect()  # no distinct values on a lazy frame
    assert lazy["id"].to_list() == _definition(query, big)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    pool=st.lists(st.none() | st.text(st.sampled_from(HOSTILE), max_size=6), min_size=1, max_size=4),
    picks=st.lists(st.integers(0, 3), min_size=20, max_size=40),
    word=st.text(st.sampled_from(HOSTILE), min_size=1, max_size=3),
    negated=st.booleans(),
)
def test_distinct_path_is_the_definition_on_random_text(pool, picks, word, negated):
    """Columns of a few repeated random values (so each is matched through its distinct
    values, with the sample lowered to 4 rows and every column counted as repeating), any word: the rows of the definition."""
    values = [pool[i % len(pool)] for i in picks]
    query = str(Word(word, negated=negated))
    if Filter(query=query).parsed.words != (Word(word, negated=negated),):
        return  # a word the language cannot say as such (e.g. only spaces)
    frame = pl.DataFrame(
        {
            "id": [str(i) for i in range(len(values))],
            "actor": values,
            "email": values[::-1],
            "action": values[2:] + values[:2],
            "target": values[1:] + values[:1],
            "ip": [None] * len(values),
            "description": values,
            "request_id": [f"r{i}" for i in range(len(values))],
            "error": values[3:] + values[:3],
        },
        schema=dict.fromkeys(["id", *TEXT_SEARCH_COLUMNS], pl.String),
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(filters, "DISTINCT_SAMPLE", 4)
        mp.setattr(filters, "DISTINCT_RATIO", 1)
        assert set(distinct_text(frame)) >= {"actor", "email", "target"}
        got = Filter(query=query).apply(frame)["id"].to_list()
    assert got == _definition(query, frame)


# ----------------------------------------------------------------- the benchmark step


def test_bench_scale_notebook_step_agrees(tmp_path):
    """bench_scale's notebook step (``--steps notebook_search``) runs, and every engine finds
    the same number of rows for every word."""
    need(importlib.util.find_spec("duckdb") is not None, "the DuckDB peer needs duckdb")
    output = tmp_path / "nb.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "bench_scale.py"), "--rows", "5000", "--repeat", "6"]
        + ["--budget", "1", "--quick", "--no-sqlite", "--steps", "notebook_search"]
        + ["--cache-dir", str(tmp_path / "cache"), "--output", str(output)],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    entry = json.loads(output.read_text())["5000"]
    assert entry["agreement"]["notebook_search"]["agree"]
    for engine in ("ours", "pandas", "duckdb"):
        steps = entry["engines"][engine]["steps"]
        assert set(steps) == {"notebook_search"}
        answers = {a["variant"]: a["answer"] for a in entry["engines"][engine]["answers"]["notebook_search"]}
        assert len(answers) == 6 and any(answers.values())

"""The search language: text -> terms. Errors say where and why.

Free words match case-insensitively, as substrings, across actor, email, action, target,
ip, description, request_id and error; several words must all match. Qualifiers narrow to one field
and match the whole field (``*`` is a wildcard)::

    user:alice@corp.com action:delete resource:db-* -result:done "disk full"

A free word already matches anywhere in the text, so a ``*`` at either end of it adds nothing
(``fail*`` is ``fail``) and ``*`` alone is every event, as in Kibana; inside a free word a ``*``
is refused (use a qualifier's wildcard, or quotes for the character itself).

A repeated qualifier means OR (``result:failed result:pending``), except ``after:`` and
``before:``, the bounds of one time range, which all hold; ``-`` negates a term.
The upper-case words ``NOT``, ``OR`` and ``AND`` say the same in words: ``NOT user:root`` is
``-user:root``, ``result:failed OR result:pending`` is the repeated qualifier, ``AND`` is what
two terms side by side mean anyway. ``OR`` joins two values of one qualifier only (the
language has no OR across fields); to search for one of these words, put it in quotes.

Examples
--------
>>> q = parse('user:root -action:logout "failed password"')
>>> [str(t) for t in q.terms]
['user:root', '-action:logout', '"failed password"']
>>> str(q)
'user:root -action:logout "failed password"'
>>> str(parse("NOT user:root type:auth OR type:user"))
'-user:root type:auth type:user'
>>> parse("usr:root")
Traceback (most recent call last):
...
audit_analytics.errors.QueryError: at 1: unknown qualifier 'usr:'; known: action, actor, after, before, ip, request_id, resource, result, target, type, user (to search for the text itself, put it in quotes)
>>> parse("ip:999.1.1.1")
Traceback (most recent call last):
...
audit_analytics.errors.QueryError: at 4: '999.1.1.1' is not an IPv4 or IPv6 address; write e.g. 10.0.0.5, 2001:db8::1 or a block such as 10.0.0.0/8
>>> str(parse("* fail* -*admin"))
'fail -admin'
>>> parse("after:2026-12-01 before:2026-11-01")
Traceback (most recent call last):
...
audit_analytics.errors.QueryError: at 18: no event is both after:2026-12-01 and before:2026-11-01 (after: includes its day or instant, before: leaves its own out); swap them or widen the range
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from dataclasses import dataclass, field, replace
from datetime import date, datetime

from audit_analytics.dates import in_date_range, parse_when
from audit_analytics.errors import QueryError
from audit_analytics.schema import RESULTS, TYPE_CHOICES, canonical_ip

__all__ = ["QueryError", "Query", "Word", "Qualified", "parse", "QUALIFIERS", "KEYWORDS", "in_date_range"]

# qualifier as typed -> the field it narrows
QUALIFIERS: dict[str, str] = {
    "user": "user",
    "actor": "user",
    "action": "action",
    "resource": "target",
    "target": "target",
    "type": "type",
    "result": "result",
    "ip": "ip",
    "request_id": "request_id",
    "after": "after",
    "before": "before",
}

RESULT_ALIASES: dict[str, str] = {
    "success": "done",
    "succeeded": "done",
    "ok": "done",
    "failure": "failed",
    "fail": "failed",
    "error": "failed",
}

_NEEDS_QUOTES = re.compile(r'[\s"]|^-')

KEYWORDS = ("NOT", "OR", "AND")
"""Upper-case words the parser reads as operators; quoted, they are words again."""


@dataclass(frozen=True, slots=True)
class Word:
    """A free word or quoted phrase: a case-insensitive substring of any text column."""

    text: str
    negated: bool = False
    # how it was typed; "-" and "a b" print quoted either way, so it is not part of equality
    quoted: bool = field(default=False, compare=False)

    def __str__(self) -> str:
        bare_ok = not (
            self.quoted
            or _NEEDS_QUOTES.search(self.text)
            or self.text in KEYWORDS
            or "*" in self.text
            or _QUALIFIER_RE.match(self.text)  # `*user:x` is the word `user:x`, not a qualifier
        )
        body = self.text if bare_ok else _quote(self.text)
        return ("-" if self.negated else "") + body


@dataclass(frozen=True, slots=True)
class Qualified:
    """``field:value``. ``field`` is the canonical field (``user``, ``target``, ...);
    ``written`` is the qualifier as typed (``actor``, ``resource``, ...)."""

    field: str
    value: str
    negated: bool = False
    written: str = ""

    def __str__(self) -> str:
        value = _quote(self.value) if _NEEDS_QUOTES.search(self.value) or not self.value else self.value
        return f"{'-' if self.negated else ''}{self.written or self.field}:{value}"

    @property
    def network(self) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
        """For ``ip:`` with a CIDR block, the network; else None."""
        if self.field == "ip" and "/" in self.value:
            return ipaddress.ip_network(self.value, strict=False)
        return None


Term = Word | Qualified


@dataclass(frozen=True, slots=True)
class Query:
    """A parsed search: a tuple of terms, all of which must hold."""

    terms: tuple[Term, ...] = ()

    def __str__(self) -> str:
        return " ".join(str(t) for t in self.terms)

    def __bool__(self) -> bool:
        return bool(self.terms)

    @property
    def words(self) -> tuple[Word, ...]:
        return tuple(t for t in self.terms if isinstance(t, Word))

    @property
    def qualified(self) -> tuple[Qualified, ...]:
        return tuple(t for t in self.terms if isinstance(t, Qualified))


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _read_quoted(text: str, i: int) -> tuple[str, int]:
    """Read a quoted string starting at text[i] == '"'; return (value, index after)."""
    start = i
    i += 1
    out: list[str] = []
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
            continue
        if ch == '"':
            return "".join(out), i + 1
        out.append(ch)
        i += 1
    raise QueryError('unclosed quote: add a closing "', position=start + 1, query=text)


def _read_bare(text: str, i: int) -> tuple[str, int]:
    j = i
    while j < len(text) and not text[j].isspace():
        if text[j] == '"':
            raise QueryError(
                'a quote inside a word: put the whole phrase in quotes, e.g. "two words"',
                position=j + 1,
                query=text,
            )
        j += 1
    return text[i:j], j


_QUALIFIER_RE = re.compile(r"([A-Za-z_]+):")


def parse(text: str) -> Query:
    """Parse a search string into a :class:`Query`.

    Raises
    ------
    QueryError
        With ``position`` (1-based character) and a message a person understands.

    Examples
    --------
    >>> parse('ip:10.0.0.0/8 type:auth type:user').terms[0]
    Qualified(field='ip', value='10.0.0.0/8', negated=False, written='ip')
    """
    if not isinstance(text, str):
        raise QueryError(f"a search must be text, not {type(text).__name__}", position=1, query=str(text))
    terms: list[Term] = []
    # an operator word waiting for the term on its right: (word, 1-based position)
    pending: list[tuple[str, int]] = []
    # after:/before: terms and where they start, to refuse a range no event can be in
    dated: list[tuple[Qualified, int]] = []

    def add(term: Term) -> None:
        for word, at in pending:
            if word == "NOT":
                if term.negated:
                    raise QueryError(
                        "NOT before a negated term: write NOT x or -x, not both", position=at, query=text
                    )
                term = replace(term, negated=True)
        for word, at in pending:
            if word == "OR":
                left = terms[-1]  # a Qualified: _operator let the OR wait only after one
                if not (
                    isinstance(term, Qualified)
                    and isinstance(left, Qualified)
                    and not term.negated
                    and term.field == left.field
                ):
                    raise QueryError(_OR_HELP, position=at, query=text)
        pending.clear()
        terms.append(term)

    i, n = 0, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
            continue
        start = i
        negated = False
        if text[i] == "-" and i + 1 < n and not text[i + 1].isspace():
            negated = True
            i += 1
            if text[i] == "-" and i + 1 < n and not text[i + 1].isspace():  # --type:auth matched every event
                raise QueryError(
                    "a term starts with two minus signs: one - excludes (-type:auth); to search for text "
                    'that starts with -, put it in quotes ("-x")',
                    position=start + 1,
                    query=text,
                )
        if text[i] == '"':
            value, i = _read_quoted(text, i)
            if i < n and not text[i].isspace():
                raise QueryError("put a space after a closing quote", position=i + 1, query=text)
            if value.strip():
                add(Word(value, negated=negated, quoted=True))
            elif pending:
                word, at = pending[-1]
                raise QueryError(
                    f"{word} needs a term after it, not an empty phrase", position=at, query=text
                )
            continue
        m = _QUALIFIER_RE.match(text, i)
        if m:
            name = m.group(1)
            key = name.lower()
            if key not in QUALIFIERS:
                known = ", ".join(sorted(QUALIFIERS))
                raise QueryError(
                    f"unknown qualifier '{name}:'; known: {known} (to search for the text itself, put it in quotes)",
                    position=start + 1,
                    query=text,
                )
            vpos = m.end()
            if vpos < n and text[vpos] == '"':
                value, i = _read_quoted(text, vpos)
                if i < n and not text[i].isspace():
                    raise QueryError("put a space after a closing quote", position=i + 1, query=text)
            else:
                value, i = _read_bare(text, vpos)
            if not value:
                raise QueryError(
                    f"'{name}:' needs a value, e.g. {name}:{_EXAMPLES[QUALIFIERS[key]]}",
                    position=vpos + 1 if vpos < n else vpos,
                    query=text,
                )
            add(_qualified(QUALIFIERS[key], value, negated, key, text, vpos))
            if QUALIFIERS[key] in ("after", "before"):
                dated.append((terms[-1], start + 1))  # type: ignore[arg-type]
            continue
        word, i = _read_bare(text, i)
        if negated and not word:
            continue
        if not negated and word in KEYWORDS:
            _operator(word, start + 1, terms, pending, text)
            continue
        excluded = negated or any(w == "NOT" for w, _ in pending)
        core = _free_word(word, excluded, start + 1 + negated, text)
        if core is not None:
            add(Word(core, negated=negated))
    if pending:
        word, at = pending[-1]
        raise QueryError(f"{word} needs a term after it", position=at, query=text)
    _check_range(dated, text)
    return Query(tuple(terms))


def _free_word(word: str, excluded: bool, at: int, text: str) -> str | None:
    """A bare free word without the ``*`` that adds nothing to a substring match: ``fail*``
    is ``fail``; ``*`` alone is every event (None: no condition). ``at`` is where the word
    starts (1-based)."""
    if "*" not in word:
        return word
    core = word.strip("*")
    if not core:
        if excluded:
            raise QueryError(
                'a negated * leaves out every event; to search for the character *, write "*"',
                position=at,
                query=text,
            )
        return None
    if "*" in core:
        lead = len(word) - len(word.lstrip("*"))
        raise QueryError(
            "a * inside a free word is not a wildcard (a free word matches anywhere in the text "
            "already); for a pattern in one field use a qualifier, e.g. target:db-*-prod, and for "
            'the character itself put the word in quotes, e.g. "a*b"',
            position=at + lead + core.index("*"),
            query=text,
        )
    return core


def _check_range(dated: list[tuple[Qualified, int]], text: str) -> None:
    """Refuse after:/before: terms that no instant satisfies together (``-before:`` is a
    lower bound, ``-after:`` an upper one). Days and date-times without an offset are both
    read in the filter's zone, so they compare as wall-clock times here; a bound with an
    offset is compared only with others that have one."""
    lower: list[tuple[datetime, Qualified, int]] = []
    upper: list[tuple[datetime, Qualified, int]] = []
    for term, at in dated:
        when = parse_date_value(term.value)
        moment = when if isinstance(when, datetime) else datetime(when.year, when.month, when.day)
        is_lower = (term.field == "after") != term.negated
        (lower if is_lower else upper).append((moment, term, at))
    for lo, lo_term, lo_at in lower:
        for hi, hi_term, hi_at in upper:
            if (lo.tzinfo is None) != (hi.tzinfo is None) or lo < hi:
                continue
            raise QueryError(
                f"no event is both {lo_term} and {hi_term} (after: includes its day or instant, "
                "before: leaves its own out); swap them or widen the range",
                position=max(lo_at, hi_at),
                query=text,
            )


_OR_HELP = (
    "OR joins two values of one qualifier, e.g. user:root OR user:alice (the same as "
    'user:root user:alice); it cannot join other terms. To search for the word, write "OR" in quotes.'
)


def _operator(word: str, at: int, terms: list[Term], pending: list[tuple[str, int]], text: str) -> None:
    """Check an operator word where it stands and leave it waiting for its right-hand term."""
    if word == "NOT":
        if any(w == "NOT" for w, _ in pending):
            raise QueryError("NOT NOT: write the term itself", position=at, query=text)
    else:
        if not terms or pending:
            raise QueryError(f"{word} needs a term on each side", position=at, query=text)
        left = terms[-1]
        if word == "OR" and isinstance(left, Qualified) and left.field in ("after", "before"):
            raise QueryError(
                "after: and before: are the bounds of one time range, and every bound holds (after:A "
                "after:B is after the later); OR cannot join them. Search one span: "
                "after:2026-12-01 before:2026-12-05",
                position=at,
                query=text,
            )
        if word == "OR" and not (isinstance(left, Qualified) and not left.negated):
            raise QueryError(_OR_HELP, position=at, query=text)
    pending.append((word, at))


_EXAMPLES = {
    "user": "alice@corp.com",
    "action": "delete",
    "target": "db-*",
    "type": "auth",
    "result": "failed",
    "ip": "10.0.0.0/8",
    "request_id": "req-123",
    "after": "2026-01-31",
    "before": "2026-01-31",
}


def _qualified(field: str, value: str, negated: bool, written: str, text: str, vpos: int) -> Qualified:
    where = vpos + 1
    if field == "type":
        v = value.lower()
        if "*" not in v and v not in TYPE_CHOICES:
            close = difflib.get_close_matches(v, TYPE_CHOICES, n=1)
            hint = f" (did you mean type:{close[0]}?)" if close else ""
            raise QueryError(
                f"unknown type '{value}'{hint}; types: {', '.join(TYPE_CHOICES)}", position=where, query=text
            )
        value = v
    elif field == "result":
        v = RESULT_ALIASES.get(value.lower(), value.lower())
        if "*" not in v and v not in RESULTS:
            raise QueryError(
                f"unknown result '{value}'; results: {', '.join(RESULTS)} (or success, failure)",
                position=where,
                query=text,
            )
        value = v
    elif field == "ip" and "*" not in value:
        value = _ip_value(value, where, text)
    elif field == "ip" and "/" in value:
        raise QueryError(
            f"'{value}' mixes a wildcard with a CIDR block; write one of them, e.g. 10.0.* or 10.0.0.0/16",
            position=where,
            query=text,
        )
    elif field in ("after", "before"):
        parse_date_value(value, position=where, query=text)
    return Qualified(field, value, negated, written)


def _ip_value(value: str, where: int, text: str) -> str:
    """An ``ip:`` value checked: a block as typed, an address in the form ingest stores
    (``2001:0DB8::0001`` -> ``2001:db8::1``), so an exact match finds it."""
    if "/" in value:
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise QueryError(
                f"'{value}' is not a CIDR block{_why_not_a_block(value)}; write e.g. 10.0.0.0/8 or 2001:db8::/32",
                position=where,
                query=text,
            ) from None
        return value
    try:
        return canonical_ip(value)
    except ValueError:
        raise QueryError(
            f"'{value}' is not an IPv4 or IPv6 address; write e.g. 10.0.0.5, 2001:db8::1 or a block such as 10.0.0.0/8",
            position=where,
            query=text,
        ) from None


def _why_not_a_block(value: str) -> str:
    address, _, prefix = value.partition("/")
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return f" ('{address}' is not an address)"
    bits = parsed.max_prefixlen
    if not prefix.isdigit() or not 0 <= int(prefix) <= bits:
        return f" (after the / comes a prefix length from 0 to {bits} for IPv{parsed.version})"
    return ""


def parse_date_value(value: str, *, position: int = 1, query: str = "") -> date | datetime:
    """``after:``/``before:`` values: a day (``2026-01-31``) or an ISO date-time, read by
    :func:`audit_analytics.dates.parse_when`; its error becomes a :class:`QueryError` at
    ``position`` in ``query``."""
    try:
        return parse_when(value)
    except ValueError as exc:
        raise QueryError(str(exc), position=position, query=query) from None

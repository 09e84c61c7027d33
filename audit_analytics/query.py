"""The search language: text -> terms. Errors say where and why.

Free words match case-insensitively, as substrings, across actor, email, target, ip,
description and request_id; several words must all match. Qualifiers narrow to one field
and match the whole field (``*`` is a wildcard)::

    user:alice@corp.com action:delete resource:db-* -result:done "disk full"

A repeated qualifier means OR (``result:failed result:pending``); ``-`` negates a term.

Examples
--------
>>> q = parse('user:root -action:logout "failed password"')
>>> [str(t) for t in q.terms]
['user:root', '-action:logout', '"failed password"']
>>> str(q)
'user:root -action:logout "failed password"'
>>> parse("usr:root")
Traceback (most recent call last):
...
audit_analytics.errors.QueryError: at 1: unknown qualifier 'usr:'; known: action, actor, after, before, ip, request_id, resource, result, target, type, user (to search for the text itself, put it in quotes)
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from datetime import date, datetime

from audit_analytics.errors import QueryError
from audit_analytics.schema import CATEGORY_CODES, RESULTS

__all__ = ["QueryError", "Query", "Word", "Qualified", "parse", "QUALIFIERS"]

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


@dataclass(frozen=True, slots=True)
class Word:
    """A free word or quoted phrase: a case-insensitive substring of any text column."""

    text: str
    negated: bool = False
    # how it was typed; "-" and "a b" print quoted either way, so it is not part of equality
    quoted: bool = field(default=False, compare=False)

    def __str__(self) -> str:
        body = _quote(self.text) if (self.quoted or _NEEDS_QUOTES.search(self.text)) else self.text
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
    def has_wildcard(self) -> bool:
        return "*" in self.value

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
        if text[i] == '"':
            value, i = _read_quoted(text, i)
            if i < n and not text[i].isspace():
                raise QueryError("put a space after a closing quote", position=i + 1, query=text)
            if value.strip():
                terms.append(Word(value, negated=negated, quoted=True))
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
            terms.append(_qualified(QUALIFIERS[key], value, negated, key, text, vpos))
            continue
        word, i = _read_bare(text, i)
        if negated and not word:
            continue
        terms.append(Word(word, negated=negated))
    return Query(tuple(terms))


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
        if "*" not in v and v not in CATEGORY_CODES:
            raise QueryError(
                f"unknown type '{value}'; types: {', '.join(CATEGORY_CODES)}", position=where, query=text
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
    elif field == "ip" and "/" in value:
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise QueryError(
                f"'{value}' is not a CIDR block; write e.g. 10.0.0.0/8 or 2001:db8::/32",
                position=where,
                query=text,
            ) from None
    elif field in ("after", "before"):
        parse_date_value(value, position=where, query=text)
    return Qualified(field, value, negated, written)


def parse_date_value(value: str, *, position: int = 1, query: str = "") -> date | datetime:
    """``after:``/``before:`` values: a date (``2026-01-31``) or an ISO date-time."""
    try:
        if len(value) == 10:
            return date.fromisoformat(value)
        return datetime.fromisoformat(value)
    except ValueError:
        raise QueryError(
            f"'{value}' is not a date; write YYYY-MM-DD or YYYY-MM-DDTHH:MM", position=position, query=query
        ) from None

"""What every source adapter shares: the :class:`Source` description, the reading context,
the record readers (JSON records in any of their shapes, CSV rows, text lines) and the small
helpers that keep the mapping rules honest (an IP that is not an address stays empty, an id is
derived from the source's own id or the raw record).

A source turns numbered input lines into rows of our schema::

    (line number, raw text, {column: value} or None, why it could not be read or None)

the same shape :mod:`audit_analytics.io.ingest` reads its own formats into, so the rows go
through the one validate / reject / deduplicate / chain path.

>>> stable_id("aws", "abc")
'aws-abc'
>>> ip_or_none("035.249.253.232") is None, ip_or_none("10.0.0.1")
(True, '10.0.0.1')
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from audit_analytics.schema import canonical_ip

__all__ = [
    "ActionRule",
    "as_dict",
    "as_list",
    "json_message",
    "Context",
    "LineMapper",
    "Lines",
    "RawRow",
    "Row",
    "Source",
    "csv_records",
    "dig",
    "IPV4",
    "PY_SPACE",
    "ip_or_none",
    "json_records",
    "mapped",
    "raw_id",
    "snake",
    "stable_id",
    "text_lines",
    "verb_action",
]

Row = dict[str, Any]
"""One event in our schema's column names (``time`` may be text, epoch or a datetime)."""

RawRow = tuple[int, str, Row | None, str | None]
"""(line, raw text, row or None, problem or None): what ingest validates."""

Lines = Iterator[tuple[int, bytes | None]]
"""Numbered lines without their newline; ``None`` for a line too long to read."""

ActionRule = tuple[str, str]
"""(our type, our action) for a source action."""

MAX_RAW_CHARS = 65_536
MAX_DOCUMENT_BYTES = 256 * 1024 * 1024
"""A JSON document that is not one record per line is parsed whole; bigger ones are refused."""


@dataclass
class Context:
    """What a source may need besides the records: the year for syslog lines that have none,
    and the notes it leaves for the person importing (printed on stderr)."""

    name: str
    year: int | None = None
    year_from: str = ""
    modified: datetime | None = None
    notes: list[str] = field(default_factory=list)

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)


@dataclass(frozen=True)
class Source:
    """One log format we read, written once: how it is recognised, which of its fields fill
    which of our columns, and the reader that maps its records.

    ``sniff`` gets the first record (a parsed JSON object for ``shape="json"``, the first
    non-empty text lines for ``"lines"``, the header's names for ``"csv"``).
    """

    name: str
    title: str
    shape: Literal["json", "lines", "csv"]
    detected_by: str
    fields: tuple[tuple[str, str], ...]
    sniff: Callable[[Any], bool]
    read: Callable[[Lines, Context], Iterator[RawRow]]
    caveats: str = ""
    actions: Mapping[str, ActionRule] = field(default_factory=dict)
    lines: LineMapper | None = None


@dataclass(frozen=True)
class LineMapper:
    """How a source reads a file of one record per line a batch at a time (the fast path
    for a big file; ingest decides when it applies and validates what comes out).

    ``starts`` says whether a file's first non-empty line is such a record; ``map`` maps a
    batch of lines (a polars String series) to rows of our schema with a boolean column
    ``batch``, false for the rows it leaves to ``read`` (the source's record reader, given
    those lines alone).
    """

    starts: Callable[[str], bool]
    map: Callable[[Any], Any]  # pl.Series -> pl.DataFrame (polars is not imported here)
    read: Callable[[Lines, Context], Iterator[RawRow]]


# ---------------------------------------------------------------------------------------
# small helpers


def stable_id(prefix: str, own: object) -> str:
    """``prefix-own`` when the source has its own id that fits, else a hash of it."""
    text = str(own)
    if len(text) <= 160 and text.isprintable():
        return f"{prefix}-{text}"
    return raw_id(prefix, text)


def raw_id(prefix: str, raw: str | bytes) -> str:
    """An id from the raw record's bytes: the same record always gets the same id."""
    data = raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else raw
    return f"{prefix}-h-{hashlib.sha256(data).hexdigest()[:32]}"


def ip_or_none(value: object) -> str | None:
    """The address in canonical form, or None (a host name, ``?``, an anonymised ``035.1.2.3``)."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip()
    if text.startswith("[") and "]" in text:  # [::1]:443
        text = text[1 : text.index("]")]
    elif text.count(":") == 1 and "." in text:  # 1.2.3.4:5678
        text = text.split(":", 1)[0]
    if IPV4.fullmatch(text):  # canonical already: ipaddress would print it unchanged
        return text
    try:
        return canonical_ip(text)
    except ValueError:
        return None


_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
IPV4 = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")
"""A dotted-quad IPv4 address in its canonical form (what ``ipaddress`` would print)."""
PY_SPACE = "".join(c for c in map(chr, range(0x3000 + 1)) if c.isspace())
"""Every character Python's ``str.strip`` takes away (what :func:`first_text` strips)."""


def as_dict(value: Any) -> dict[str, Any]:
    """``value`` when it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    """``value`` when it is a JSON array, else an empty one."""
    return value if isinstance(value, list) else []


def dig(obj: Any, *path: str) -> Any:
    """``obj[path[0]][path[1]]…`` or None where a step is missing or not a mapping."""
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def snake(name: str) -> str:
    """``AttachUserPolicy`` -> ``attach_user_policy``; ``login_success`` stays."""
    return _CAMEL.sub("_", name).replace("-", "_").replace(" ", "_").replace(".", "_").lower()


# the verb a name starts with -> our action (CRUD and a few more)
_VERBS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("create", "insert", "add", "new", "run", "register", "import", "put", "upload"), "create"),
    (("delete", "remove", "terminate", "destroy", "drop", "purge", "deregister"), "delete"),
    (
        ("update", "modify", "set", "patch", "change", "edit", "replace", "rename", "write", "apply"),
        "update",
    ),
    (("get", "describe", "list", "lookup", "read", "batch_get", "head", "search", "view", "watch"), "read"),
    (("start", "enable", "activate", "resume"), "enable"),
    (("stop", "disable", "deactivate", "suspend"), "disable"),
    (("restore",), "restore"),
    (("rotate",), "rotate"),
)


def verb_action(name: str) -> str:
    """Our action for a source action we have no rule for, from its leading verb.

    >>> verb_action("DescribeInstances"), verb_action("TerminateInstances"), verb_action("Frobnicate")
    ('read', 'delete', 'frobnicate')
    """
    text = snake(name)
    for verbs, action in _VERBS:
        for verb in verbs:
            if text == verb or text.startswith(verb + "_"):
                return action
    return text[:100] or "unknown"


def cut(text: str) -> str:
    return text if len(text) <= MAX_RAW_CHARS else text[:MAX_RAW_CHARS] + f"…[cut: {len(text):,} characters]"


# ---------------------------------------------------------------------------------------
# readers


def _decoded(line: bytes) -> tuple[str | None, str | None]:
    """(text, None) or (None, why)."""
    if b"\x00" in line:
        return None, "holds a NUL byte"
    try:
        return line.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        return None, f"not UTF-8 text (invalid byte 0x{line[exc.start]:02x} at byte {exc.start + 1})"


def text_lines(lines: Lines) -> Iterator[tuple[int, str | None, str | None]]:
    """(line, text, None) per non-empty line, or (line, printable raw, why) when unreadable."""
    for number, line in lines:
        if line is None:
            yield number, None, "the line is too long; not read"
            continue
        if not line.strip():
            continue
        text, why = _decoded(line)
        if why is not None:
            yield number, line.decode("utf-8", "backslashreplace")[:MAX_RAW_CHARS], why
        else:
            yield number, text, None


_RECORD_LISTS = ("Records", "records", "items", "events", "value", "data")


def _expand(obj: Any) -> list[Any] | None:
    """The records a JSON value holds: a list, or a wrapper object's list (``{"Records": [...]}``)."""
    if isinstance(obj, list):
        return obj
    if isinstance(obj, dict):
        for key in _RECORD_LISTS:
            inner = obj.get(key)
            if isinstance(inner, list) and (not inner or isinstance(inner[0], dict)):
                if key in ("items", "events", "data", "value") and len(obj) > 6:
                    continue  # a record that merely has such a field (a Workspace activity's events)
                return inner
    return None


JsonItem = tuple[int, str, Any, str | None]


def json_records(lines: Lines, *, wrappers: bool = True, documents: bool = True) -> Iterator[JsonItem]:
    """(line, raw text, parsed record or None, problem or None) for every record.

    Reads one JSON value per line (JSON Lines), where a line may also hold a whole
    ``{"Records": [...]}`` document or an array; a document spread over several lines (a
    pretty-printed export) is parsed whole, its records numbered from 1 (unless
    ``documents`` is false: then every line stands alone).
    """
    pending: list[bytes] = []
    pending_start = 0
    size = 0
    first = True
    for number, line in lines:
        if pending:
            if line is None:
                yield number, "", None, "a line of the JSON document is too long; not read"
                return
            pending.append(line)
            size += len(line)
            if size > MAX_DOCUMENT_BYTES:
                yield pending_start, "", None, "a JSON document over 256 MiB; write one record per line"
                return
            continue
        if line is None:
            yield number, "", None, "the line is too long; not read"
            continue
        if not line.strip():
            continue
        text, why = _decoded(line)
        was_first, first = first, False
        if text is None:
            yield number, line.decode("utf-8", "backslashreplace")[:MAX_RAW_CHARS], None, why
            continue
        try:
            obj = json.loads(text)
        except (json.JSONDecodeError, RecursionError, ValueError) as exc:
            stripped = text.lstrip()
            # a pretty-printed document starts the file; a broken line later is one bad record
            if documents and was_first and stripped[:1] in ("{", "[") and not _complete_looking(stripped):
                pending, pending_start, size = [line], number, len(line)
                continue
            yield number, cut(text), None, _why_json(exc)
            continue
        inner = _expand(obj) if wrappers else None
        if inner is None:
            yield number, text, obj, None
        else:
            for item in inner:
                yield number, json.dumps(item, ensure_ascii=False), item, None
    if pending:
        yield from _document(pending_start, b"\n".join(pending), wrappers=wrappers)


def _complete_looking(text: str) -> bool:
    return text.rstrip().endswith(("}", "]")) and len(text) > 2


def json_message(exc: json.JSONDecodeError) -> str:
    """The decoder's message without the "at" it leaves for the place, which the caller writes
    its own way ("Unterminated string starting at" read "… starting at at line 1").

    >>> try:
    ...     json.loads('{"a": "b')
    ... except json.JSONDecodeError as exc:
    ...     json_message(exc)
    'Unterminated string starting'
    """
    return exc.msg.removesuffix(" at")


def _why_json(exc: BaseException) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"not valid JSON ({json_message(exc)} at column {exc.colno})"
    return f"not readable JSON ({type(exc).__name__})"


_LIST_OPENING = re.compile(r'\s*(?:\[|\{\s*"(?:' + "|".join(_RECORD_LISTS) + r')"\s*:\s*\[)')


def _salvage(text: str) -> Iterator[JsonItem]:
    """The whole records of a ``[...]`` or ``{"Records": [...]}`` document that breaks further
    on (a file cut short): each record before the break, numbered from 1 like a whole
    document's. Nothing for another shape."""
    opening = _LIST_OPENING.match(text)
    if opening is None:
        return
    decoder = json.JSONDecoder()
    at, index = opening.end(), 0
    while True:
        while at < len(text) and text[at] in " \t\r\n,":
            at += 1
        if at >= len(text) or text[at] == "]":
            return
        try:
            item, at = decoder.raw_decode(text, at)
        except (json.JSONDecodeError, RecursionError):
            return
        if not isinstance(item, dict):
            return
        index += 1
        yield index, json.dumps(item, ensure_ascii=False), item, None


def _document(start: int, data: bytes, *, wrappers: bool) -> Iterator[JsonItem]:
    try:
        text = data.decode("utf-8")
        obj = json.loads(text)
    except UnicodeDecodeError as exc:
        yield start, "", None, f"the JSON document is not UTF-8 (invalid byte at byte {exc.start + 1})"
        return
    except json.JSONDecodeError as exc:
        # the records before the break are read (a file cut short loses only its end); the
        # break is rejected with the text around it
        read = 0
        if wrappers:
            for item in _salvage(text):
                read += 1
                yield item
        yield (
            start + exc.lineno - 1,
            cut(text[max(0, exc.pos - 2_000) : exc.pos + 200]),
            None,
            f"the JSON document starting on line {start} is not valid JSON ({json_message(exc)} at line "
            f"{start + exc.lineno - 1}, column {exc.colno})"
            + (
                f"; the {read:,} whole record{'' if read == 1 else 's'} before it {'was' if read == 1 else 'were'} read"
                if read
                else ""
            ),
        )
        return
    except (RecursionError, ValueError) as exc:
        yield start, "", None, _why_json(exc)
        return
    inner = _expand(obj) if wrappers else None
    if inner is None:
        yield start, cut(json.dumps(obj, ensure_ascii=False)), obj, None
        return
    for index, item in enumerate(inner, start=1):
        yield index, json.dumps(item, ensure_ascii=False), item, None


def first_json_record(head: bytes) -> Any:
    """The first record of a file's first bytes, or None (for sniffing)."""
    text = head.decode("utf-8", "replace")
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except (ValueError, RecursionError):
            break
        inner = _expand(obj)
        if inner is not None:
            return inner[0] if inner else None
        return obj
    # a pretty-printed document: its first record, if the head holds it whole
    decoder = json.JSONDecoder()
    stripped = text.lstrip()
    openers = ("[",) if stripped.startswith("[") else ('"Records"', '"records"', '"items"', '"value"', "{")
    for opener in openers:
        at = stripped.find(opener)
        if at < 0:
            continue
        if opener == "{":  # a single pretty-printed record
            brace = at
        else:
            bracket = stripped.find("[", at)
            brace = stripped.find("{", bracket) if bracket >= 0 else -1
        if brace < 0:
            continue
        try:
            obj, _ = decoder.raw_decode(stripped, brace)
        except (ValueError, RecursionError):
            continue
        return obj
    return None


def csv_records(lines: Lines) -> Iterator[tuple[int, str, dict[str, str] | None, str | None]]:
    """(line, raw text, {header: value} or None, problem or None) per CSV row after the header."""
    header: list[str] | None = None
    for number, text, why in text_lines(lines):
        if why is not None or text is None:
            yield number, text or "", None, why or "unreadable"
            continue
        try:
            values = next(csv.reader([text]))
        except csv.Error as exc:
            yield number, cut(text), None, f"unreadable CSV row: {exc}"
            continue
        if header is None:
            header = [v.strip().lstrip("\ufeff") for v in values]
            continue
        if len(values) != len(header):
            yield (
                number,
                cut(text),
                None,
                f"expected {len(header)} fields as in the header, found {len(values)}",
            )
            continue
        yield number, text, dict(zip(header, values, strict=True)), None


def mapped(
    items: Iterable[tuple[int, str, Any, str | None]], mapper: Callable[[Any], Row | None]
) -> Iterator[RawRow]:
    """Apply a per-record ``mapper`` (which raises ``ValueError`` with the reason a record
    cannot be an event, or returns None for a record to pass over) to readable records."""
    for number, raw, obj, why in items:
        if why is not None or obj is None:
            yield number, raw, None, why or "unreadable record"
            continue
        if not isinstance(obj, dict):
            yield number, cut(raw), None, f"a JSON {type(obj).__name__} where an object was expected"
            continue
        try:
            row = mapper(obj)
        except ValueError as exc:  # the mapper's reason (a value it cannot read, a record of another kind)
            yield number, cut(raw), None, str(exc)
            continue
        except (TypeError, AttributeError, KeyError) as exc:
            yield number, cut(raw), None, f"cannot be mapped ({type(exc).__name__}: {str(exc)[:120]})"
            continue
        if row is not None:
            yield number, raw, row, None


def keys_of(obj: Any) -> frozenset[str]:
    return frozenset(obj) if isinstance(obj, dict) else frozenset()


def failed_word(*values: object) -> bool:
    """Whether any of ``values`` says it failed (denied, error, failure, …)."""
    for value in values:
        if isinstance(value, str) and _FAIL.search(value):
            return True
    return False


_FAIL = re.compile(r"fail|denied|deny|error|unauthori[sz]ed|forbidden|refused|invalid", re.IGNORECASE)


def first_text(*values: object) -> str | None:
    """The first value that is non-empty text (numbers as text)."""
    for value in values:
        if isinstance(value, str) and value.strip():
            return value.strip()
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
    return None


def email_of(*values: object) -> str | None:
    for value in values:
        if isinstance(value, str) and "@" in value and " " not in value.strip():
            return value.strip()
    return None


def lookup(table: Mapping[str, ActionRule], key: str) -> ActionRule | None:
    return table.get(key) or table.get(key.lower())


def rule_for(
    action: str,
    table: Mapping[str, ActionRule],
    prefixes: Mapping[str, str],
    *,
    default_type: str = "system",
    split: str = ".",
) -> ActionRule:
    """(type, action) from the exact table, else the type from the longest matching prefix
    and the action from the name's verb (:func:`verb_action`)."""
    exact = lookup(table, action)
    if exact is not None:
        return exact
    kind = default_type
    best = -1
    lowered = action.lower()
    for prefix, value in prefixes.items():
        if lowered.startswith(prefix) and len(prefix) > best:
            kind, best = value, len(prefix)
    tail = action.rsplit(split, 1)[-1] if split else action
    return kind, verb_action(tail)

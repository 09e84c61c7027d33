"""Before/after comparison, field by field, nested values included.

>>> rows = diff_json('{"role": "viewer", "tags": {"a": 1}}', '{"role": "admin", "tags": {"a": 1, "b": 2}}')
>>> [(c.path, c.kind, c.before, c.after) for c in rows if c.kind != "same"]
[('role', 'changed', '"viewer"', '"admin"'), ('tags.b', 'added', None, '2')]
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

Kind = Literal["added", "removed", "changed", "same"]
_MISSING = object()


@dataclass(frozen=True, slots=True)
class Change:
    """One leaf that differs (or not). Values are JSON text, readable at any length."""

    path: str
    kind: Kind
    before: str | None
    after: str | None


def _load(text: str | None) -> Any:
    if text is None or text == "":
        return _MISSING
    try:
        return json.loads(text)
    except (json.JSONDecodeError, TypeError):
        return text  # not JSON: compare as one text value


def _dump(value: Any) -> str | None:
    if value is _MISSING:
        return None
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _walk(path: str, before: Any, after: Any, out: list[Change]) -> None:
    if isinstance(before, dict) and isinstance(after, dict):
        for key in sorted(set(before) | set(after), key=str):
            child = f"{path}.{key}" if path else str(key)
            _walk(child, before.get(key, _MISSING), after.get(key, _MISSING), out)
        return
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        for i, (b, a) in enumerate(zip(before, after, strict=True)):
            _walk(f"{path}[{i}]", b, a, out)
        return
    if before is _MISSING and isinstance(after, dict) and after:
        for key in sorted(after, key=str):
            _walk(f"{path}.{key}" if path else str(key), _MISSING, after[key], out)
        return
    if after is _MISSING and isinstance(before, dict) and before:
        for key in sorted(before, key=str):
            _walk(f"{path}.{key}" if path else str(key), before[key], _MISSING, out)
        return
    if before is _MISSING and after is _MISSING:
        return
    if before is _MISSING:
        kind: Kind = "added"
    elif after is _MISSING:
        kind = "removed"
    elif before == after and type(before) is type(after):
        kind = "same"
    else:
        kind = "changed"
    out.append(Change(path or "(value)", kind, _dump(before), _dump(after)))


def diff_json(before: str | None, after: str | None) -> list[Change]:
    """Every leaf of two JSON documents with how it changed, in path order."""
    out: list[Change] = []
    _walk("", _load(before), _load(after), out)
    return out

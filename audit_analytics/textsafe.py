"""Text from the audit log shown as plain text: control characters made visible.

Audit values are written by whoever used the platform, attackers included. In a terminal an
ANSI escape could repaint the screen and a right-to-left override could reverse what a
reader sees, so both are shown as ``\\x1b``-style escapes instead.

>>> plain("root\\x1b[31m")
'root\\\\x1b[31m'
>>> plain("evil\\u202etxt.exe")
'evil\\\\u202etxt.exe'
"""

from __future__ import annotations

import unicodedata

_VISIBLE_CONTROLS = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def plain(value: object, *, limit: int | None = None) -> str:
    """Text with control and bidi-format characters escaped; ``None`` -> ``""``."""
    if value is None:
        return ""
    text = str(value)
    out = []
    for ch in text:
        if ch in _VISIBLE_CONTROLS:
            out.append(_VISIBLE_CONTROLS[ch])
        elif unicodedata.category(ch) in ("Cc", "Cf"):
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(ch)
    result = "".join(out)
    if limit is not None and len(result) > limit:
        return result[: max(limit - 1, 0)] + "…"
    return result


_MD_SPECIAL = set("\\`*_{}[]()#+-.!|<>~$:=\"'&")


def md_escape(value: object) -> str:
    """Text for a place that renders markdown, with every markdown character escaped, so a
    value such as ``[click](http://evil)`` shows as typed and never becomes a link.

    >>> md_escape("[x](http://e) *b*")
    '\\\\[x\\\\]\\\\(http\\\\:\\\\/\\\\/e\\\\) \\\\*b\\\\*'
    """
    text = plain(value)
    return "".join("\\" + ch if ch in _MD_SPECIAL or ch == "/" else ch for ch in text)

"""Other people's audit logs: one adapter per source family, found by their content.

:data:`SOURCES` is the one registry (name -> :class:`Source`); :func:`detect` names the
source of a file's first bytes, or None when it is none of them (then the file is read as
our own CSV / JSON Lines / JSON / Parquet). Each adapter turns numbered lines into rows of our
schema, which :mod:`audit_analytics.io.ingest` validates, deduplicates and chains like any
other import.

>>> detect(b'{"eventVersion": "1.08", "eventName": "ConsoleLogin", "eventSource": "signin.amazonaws.com", '
...        b'"eventTime": "2024-01-01T00:00:00Z"}\\n')
'cloudtrail'
>>> detect(b"Mar 11 22:55:32 web sshd[3]: Failed password for root from 10.0.0.1 port 22 ssh2\\n")
'syslog'
>>> detect(b'{"time": "2026-01-01", "type": "auth", "action": "login", "result": "done"}\\n') is None
True
"""

from __future__ import annotations

import csv

from audit_analytics.io.sources import auditd, cloud, cloudtrail, devtools, identity, kubernetes, syslog
from audit_analytics.io.sources.base import (
    IPV4,
    PY_SPACE,
    Context,
    LineMapper,
    RawRow,
    Source,
    first_json_record,
    json_message,
)

__all__ = [
    "IPV4",
    "PY_SPACE",
    "SOURCES",
    "Context",
    "LineMapper",
    "RawRow",
    "Source",
    "detect",
    "json_message",
    "source_named",
]

SOURCES: dict[str, Source] = {
    s.name: s
    for s in (
        syslog.SOURCE,
        auditd.SOURCE,
        cloudtrail.SOURCE,
        kubernetes.SOURCE,
        cloud.GCP_SOURCE,
        cloud.AZURE_SOURCE,
        identity.OKTA_SOURCE,
        identity.WORKSPACE_SOURCE,
        identity.M365_SOURCE,
        devtools.GITHUB_SOURCE,
        devtools.GITHUB_CSV_SOURCE,
        devtools.GITLAB_SOURCE,
    )
}
"""Every source format we read, by the name ``--format`` takes."""

SNIFF_BYTES = 256 * 1024
"""How much of a file's start :func:`detect` looks at."""


def source_named(name: str) -> Source | None:
    return SOURCES.get(name)


def _head_lines(head: bytes, limit: int = 20) -> list[str]:
    text = head.decode("utf-8", "replace")
    lines = [line for line in text.splitlines() if line.strip()]
    if len(head) >= SNIFF_BYTES and len(lines) > 1:
        lines = lines[:-1]  # the last one may be cut
    return lines[:limit]


def detect(head: bytes) -> str | None:
    """The source whose records ``head`` (a file's first bytes, decompressed) starts with."""
    if head.startswith(b"\xef\xbb\xbf"):
        head = head[3:]
    stripped = head.lstrip()
    if not stripped:
        return None
    if stripped[:1] in (b"{", b"["):
        record = first_json_record(head)
        if record is None:
            return None
        for source in SOURCES.values():
            if source.shape == "json" and source.sniff(record):
                return source.name
        return None
    lines = _head_lines(head)
    for source in SOURCES.values():
        if source.shape == "lines" and source.sniff(lines):
            return source.name
    if lines:
        try:
            header = next(csv.reader([lines[0]]))
        except csv.Error:
            return None
        for source in SOURCES.values():
            if source.shape == "csv" and source.sniff(header):
                return source.name
    return None

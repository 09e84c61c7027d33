"""The package's small family of exceptions. Each also subclasses a builtin, so callers
that only know ``ValueError`` or ``OSError`` still catch them."""

from __future__ import annotations


class AuditAnalyticsError(Exception):
    """Base of every error this package raises on purpose."""


class QueryError(AuditAnalyticsError, ValueError):
    """A search the language cannot read. ``position`` is the 1-based character."""

    def __init__(self, message: str, *, position: int, query: str = "") -> None:
        self.message = message
        self.position = position
        self.query = query
        super().__init__(f"at {position}: {message}")


class FilterError(AuditAnalyticsError, ValueError):
    """A filter or order the package cannot apply: an unknown period, category, result, column
    or time zone, a start or end that is not a date, or an end before the start."""


class IngestError(AuditAnalyticsError, ValueError):
    """A file that cannot be read at all. Names the file and the problem."""

    def __init__(self, path: object, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class UnrecognisedFile(IngestError):
    """A file of none of the formats the import knows (by content or extension). Beside
    files that are, the import skips it and names it (``ImportSummary.skipped``)."""


class StoreError(AuditAnalyticsError, RuntimeError):
    """The database cannot be opened or answered in a way the store cannot use."""


class NeedsMemory(AuditAnalyticsError, RuntimeError):
    """An answer needs the events themselves in memory, and more of them than the memory limit
    allows (``AUDIT_MEMORY_LIMIT``). The one error an engine raises for what it cannot do;
    the message says how many events and what to narrow."""


class AccountError(AuditAnalyticsError, ValueError):
    """A bad account request (unknown user, bad role or name, unreadable file)."""


class ExportError(AuditAnalyticsError, ValueError):
    """An export that cannot be written as asked (bad zone, column, manifest or limit)."""


class TabularError(AuditAnalyticsError, ValueError):
    """A frame that cannot be written as asked (unknown zone or column, unsupported type)."""


class DetectionError(AuditAnalyticsError, ValueError):
    """A detection asked for something it cannot do (unknown rule, bad threshold)."""


class PolicyError(AuditAnalyticsError, ValueError):
    """A policy file that cannot be read or says something impossible."""


class PushdownError(AuditAnalyticsError, NotImplementedError):
    """The engine cannot answer this question exactly (so it does not answer it at all)."""


class UsageError(AuditAnalyticsError, ValueError):
    """A command-line flag that does not fit the report (shown as one line, exit 2)."""


class ArchiveError(AuditAnalyticsError, OSError):
    """The archive cannot be written, or what was read back is not what was written."""


class IntegrityError(AuditAnalyticsError, ValueError):
    """A checkpoint, key or export manifest that cannot be read or used (what and where)."""


TooLargeForMemory = NeedsMemory
"""The earlier name of :class:`NeedsMemory`."""

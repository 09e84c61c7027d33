"""Audit Analytics: read a platform's audit log.

The public API, shared by the app, the CLI and the notebooks::

    >>> from audit_analytics import open_store, Filter, CATEGORIES, RESULTS
    >>> store = open_store("sqlite://")
    >>> store.count(Filter(period="7d", types=("auth",), results=("failed",)))
    0

Modules: :mod:`~audit_analytics.schema`, :mod:`~audit_analytics.query`,
:mod:`~audit_analytics.filters`, :mod:`~audit_analytics.store`, :mod:`~audit_analytics.ingest`,
:mod:`~audit_analytics.security`, :mod:`~audit_analytics.export`, :mod:`~audit_analytics.demo`.
"""

from audit_analytics.errors import AuditAnalyticsError, IngestError, QueryError, StoreError
from audit_analytics.filters import Filter, Sort
from audit_analytics.ingest import import_files, load_file
from audit_analytics.query import parse as parse_query
from audit_analytics.schema import CATEGORIES, CATEGORY_CODES, COLUMNS, RESULTS, SCHEMA
from audit_analytics.store import Store, open_store

__version__ = "0.1.0"

__all__ = [
    "AuditAnalyticsError",
    "CATEGORIES",
    "CATEGORY_CODES",
    "COLUMNS",
    "Filter",
    "IngestError",
    "QueryError",
    "RESULTS",
    "SCHEMA",
    "Sort",
    "Store",
    "StoreError",
    "import_files",
    "load_file",
    "open_store",
    "parse_query",
    "security",
    "export",
]


def __getattr__(name: str):
    # security and export pull in heavier code; import them on first use
    if name in ("security", "export", "demo", "activity"):
        import importlib

        return importlib.import_module(f"audit_analytics.{name}")
    raise AttributeError(f"module 'audit_analytics' has no attribute {name!r}")

"""Audit Analytics: read a platform's audit log.

The public API, shared by the app, the CLI and the notebooks::

    >>> from audit_analytics import open_store, Filter, CATEGORIES, RESULTS
    >>> store = open_store("sqlite://")
    >>> store.count(Filter(period="7d", types=("auth",), results=("failed",)))
    0

Modules: :mod:`~audit_analytics.schema`, :mod:`~audit_analytics.query`,
:mod:`~audit_analytics.filters`, :mod:`~audit_analytics.engines.store`, :mod:`~audit_analytics.io.ingest`,
:mod:`~audit_analytics.analysis.security`, :mod:`~audit_analytics.io.export`, :mod:`~audit_analytics.demo.generate`.
"""

from types import ModuleType

from audit_analytics.engines.store import Store, open_store
from audit_analytics.errors import AuditAnalyticsError, FilterError, IngestError, QueryError, StoreError
from audit_analytics.filters import Filter, Sort
from audit_analytics.io.ingest import import_files, load_file
from audit_analytics.query import parse as parse_query
from audit_analytics.schema import CATEGORIES, CATEGORY_CODES, COLUMNS, RESULTS, SCHEMA

__version__ = "0.1.0"

__all__ = [
    "AuditAnalyticsError",
    "CATEGORIES",
    "CATEGORY_CODES",
    "COLUMNS",
    "Filter",
    "FilterError",
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


def __getattr__(name: str) -> ModuleType:
    # security and export pull in heavier code; import them on first use
    lazy = {
        "security": "audit_analytics.analysis.security",
        "activity": "audit_analytics.analysis.activity",
        "export": "audit_analytics.io.export",
        "demo": "audit_analytics.demo.generate",
    }
    if name in lazy:
        import importlib

        return importlib.import_module(lazy[name])
    raise AttributeError(f"module 'audit_analytics' has no attribute {name!r}")

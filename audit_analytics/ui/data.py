"""Streamlit glue for the shared data: one store and one :class:`SharedData` per process,
shared by every session (``st.cache_resource``; ``st.cache_data`` would hash and copy frames).

The lifecycle (load, grow, refresh, single-flight cache) is :mod:`audit_analytics.engines.shared`;
derived results are cached there by the filter's values, never by hashing frames.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from datetime import datetime
from typing import Any

import polars as pl
import streamlit as st

from audit_analytics.engines.shared import SharedData, freeze_startup_objects
from audit_analytics.engines.snapshot import Snapshots
from audit_analytics.engines.sql import engine_mode, memory_limit
from audit_analytics.engines.store import Store, default_url, open_store
from audit_analytics.filters import Filter, Sort

__all__ = [
    "SharedFrame",
    "actors_of",
    "cached",
    "current_shared",
    "freeze_startup_objects",
    "get_frame",
    "get_store",
    "invalidate",
    "preload",
    "selection_for",
    "with_archive",
]

SharedFrame = SharedData
"""The name the pages know the shared data by."""


@st.cache_resource(show_spinner=False)
def _store(url: str) -> Store:
    return open_store(url)


def get_store() -> Store:
    """The store for ``AUDIT_DB_URL`` (raises StoreError when it cannot be opened)."""
    url = default_url()
    try:
        return _store(url)
    except Exception:
        _store.clear()
        raise


@st.cache_resource(show_spinner=False)
def _shared(url: str, mode: str, limit: int | None = None) -> SharedData:
    # the index is kept on disk between restarts (engines/snapshot.py): a restart then has
    # its data in about a second instead of loading the whole table again
    try:
        snapshots = Snapshots.for_store(get_store())
    except Exception:  # the database is away: the pages report it; no snapshot this process
        snapshots = None
    return SharedData(freeze_after_first_load=True, snapshots=snapshots)


def current_shared() -> SharedData:
    """This process's shared data for the configured database (not refreshed: see get_frame)."""
    return _shared(default_url(), engine_mode(), memory_limit())


def get_frame(*, force: bool = False) -> SharedData:
    """The shared data, reloaded when the table changed (:meth:`SharedData.current`)."""
    return current_shared().current(get_store, force=force)


def preload() -> None:
    """Start loading the events in the background (once per process, while nobody has yet):
    called while the sign-in screen is shown, so the first page after signing in does not
    wait for the whole table to load. Draws nothing; a database that cannot be opened is left
    to the page that needs it to report."""
    shared = current_shared()
    if shared.version:
        return
    try:
        store = get_store()
    except Exception:
        return
    shared.load_in_background(lambda: store)


def actors_of(shared: SharedData) -> pl.DataFrame:
    """Distinct actors with an email and their event count, most active first (cached)."""
    return shared.actors()


def with_archive(shared: SharedData) -> SharedData:
    """The shared data plus the retention archive (the policy's folder), merged by id."""
    from audit_analytics.io.retention import load_policy

    return shared.with_archive(load_policy().archive)


def selection_for(shared: SharedData, flt: Filter, sort: Sort, *, now: datetime | None = None) -> Any:
    """Which rows pass ``flt``, in ``sort`` order (cached by the engine)."""
    return shared.index.select(flt, sort, now=now)


def cached(shared: SharedData, key: tuple[Hashable, ...], compute: Callable[[], Any]) -> Any:
    """A derived result cached per version of the data (:meth:`SharedData.cached`)."""
    return shared.cached(key, compute)


def invalidate(shared: SharedData | None = None) -> None:
    """After the app itself wrote events (an export's audit record): reload on next read.
    Outside a script run (a download's callable) pass the ``shared`` taken during the run."""
    (shared or current_shared()).checked_at = 0.0

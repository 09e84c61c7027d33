"""Streamlit glue for the shared data: one store and one :class:`SharedData` per process,
shared by every session (``st.cache_resource``; ``st.cache_data`` would hash and copy frames).

The lifecycle (load, grow, refresh, single-flight cache) is :mod:`audit_analytics.engines.shared`;
derived results are cached there by the filter's values, never by hashing frames.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
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
    "RUN_LOG_ENV",
    "PageRun",
    "SharedFrame",
    "actors_of",
    "cached",
    "current_shared",
    "freeze_startup_objects",
    "get_frame",
    "get_store",
    "invalidate",
    "note_zone",
    "page_run",
    "preload",
    "preload_at_start",
    "selection_for",
    "warm_pages",
    "warm_up",
    "with_archive",
    "zones_seen",
]

SharedFrame = SharedData
"""The name the pages know the shared data by."""

log = logging.getLogger(__name__)


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
    return SharedData(
        freeze_after_first_load=True, snapshots=snapshots, warmers=[warm_pages] if warm_up() else []
    )


def warm_up() -> bool:
    """Whether the app warms its pages' default views after the data change
    (:func:`warm_pages`); ``AUDIT_WARM_UP=off`` turns it off. Its cost per change of the data:
    0.4-0.6 s of CPU and about 90 MB at 1,000,000 events, 3.6 s and about 1 GB at 10,000,000
    (what the first visit to those pages would cost anyway); up to
    :data:`WARM_ALL_TIME_MAX_EVENTS` events, 0.95-1.15 s more for the "All time" views."""
    return os.environ.get("AUDIT_WARM_UP", "").lower() not in ("off", "0", "false", "no")


_ZONES_KEPT = 3
_zones: OrderedDict[str, None] = OrderedDict()
_zones_lock = threading.Lock()


def note_zone(tz: str) -> bool:
    """Remember a viewer's time zone (the last few): the warm-up computes the default views in
    the zones the app's viewers use, since a view's results are per zone. Whether the zone was
    not among them."""
    with _zones_lock:
        new = tz not in _zones
        _zones[tz] = None
        _zones.move_to_end(tz)
        while len(_zones) > _ZONES_KEPT:
            _zones.popitem(last=False)
    return new


def zones_seen() -> tuple[str, ...]:
    """The viewers' zones noted lately, the latest first (UTC when none was)."""
    with _zones_lock:
        return tuple(reversed(_zones)) or ("UTC",)


WARM_ALL_TIME_MAX_EVENTS = 2_000_000
"""Up to this many events, the warm-up computes the pages' "All time" views too: at 1,000,000
events they cost 0.95-1.15 s of CPU and 40-110 MB per change of the data (Security review
0.65-0.87 s, Activity 0.28-0.29 s), which a first visit to "All time" waited for (1.6 s of
Security review's run in Chromium). Above it, a change of the data would cost seconds for a
view nobody may open."""


def warm_pages(shared: SharedData) -> None:
    """After the data change, compute what a first visit to Activity and Security review shows
    at their default views, in the zones viewers use (:func:`zones_seen`), in the background:
    those visits then rerun over held results (:meth:`SharedData.warm_in_background`). Up to
    :data:`WARM_ALL_TIME_MAX_EVENTS` events, their "All time" views too, in the latest zone.
    Only when the events are held in memory."""
    # plotly takes pandas from sys.modules even half imported: a page's first table may be
    # importing it in another thread; this waits for that import to finish
    import pandas  # noqa: F401

    from audit_analytics.ui import activity, security_widgets
    from audit_analytics.view import View

    if not shared.index.holds_copy:
        # pushdown: every figure is a query on the database; warming each new version would
        # keep it busy (seconds per view at 100M events) for pages nobody may open
        return
    shared.actors()  # every page's sidebar lists them
    zones = zones_seen()
    for tz in zones:
        shared.wait_idle()  # each step when no page runs (SharedData.page_run)
        activity.warm(shared, View().filter.replace(tz=tz), between=shared.wait_idle)
        security_widgets.warm(shared, tz=tz, between=shared.wait_idle)
    if shared.index.height <= WARM_ALL_TIME_MAX_EVENTS:
        # then "All time", the period asked next, in the latest viewer's zone
        shared.wait_idle()
        activity.warm(shared, View().filter.replace(tz=zones[0], period="all"), between=shared.wait_idle)
        security_widgets.warm(shared, tz=zones[0], period="all", between=shared.wait_idle)


def current_shared() -> SharedData:
    """This process's shared data for the configured database (not refreshed: see get_frame)."""
    return _shared(default_url(), engine_mode(), memory_limit())


def get_frame(*, force: bool = False, interim: bool = False) -> SharedData:
    """The shared data, reloaded when the table changed (:meth:`SharedData.current`). With
    ``interim``, while the first load runs, the database answers meanwhile instead
    (:meth:`SharedData.current_or_interim`): for a page of rows, not for charts."""
    shared = current_shared()
    if interim and not force:
        return shared.current_or_interim(get_store)
    return shared.current(get_store, force=force)


RUN_LOG_ENV = "AUDIT_RUN_LOG"
"""A file the server appends one JSON line to per page run (:func:`page_run`), when set."""

_run_log_lock = threading.Lock()


@dataclass
class PageRun:
    """One run of the app's script: when it started (seconds since the epoch) and the page it
    ran (its address path; app.py fills it in once the navigation is known)."""

    started: float
    page: str = ""


@contextmanager
def page_run() -> Iterator[PageRun]:
    """Around a page's run (app.py): the warm-up waits while pages run
    (:meth:`SharedData.page_run`). With ``AUDIT_RUN_LOG`` set, the run's start, page and
    seconds are appended to that file as one JSON line, however the run ends (``st.stop``, a
    rerun): what the server itself spent, apart from the browser's drawing (the page
    benchmark reads it)."""
    run = PageRun(started=time.time())
    began = time.perf_counter()
    try:
        with current_shared().page_run():
            yield run
    finally:
        _log_run(run, time.perf_counter() - began)


def _log_run(run: PageRun, seconds: float) -> None:
    path = os.environ.get(RUN_LOG_ENV)
    if not path:
        return
    line = json.dumps({"started": round(run.started, 6), "seconds": round(seconds, 6), "page": run.page})
    try:
        with _run_log_lock, open(path, "a", encoding="utf-8") as out:
            out.write(line + "\n")
    except OSError as exc:
        log.warning("cannot append to %s (%s): %s", RUN_LOG_ENV, path, exc)


def preload() -> None:
    """Start loading the events in the background (once per process, unless the server's start
    did already: :func:`preload_at_start`): called while the sign-in screen is shown, so the
    first page after signing in does not wait for the whole table to load. Draws nothing; a
    database that cannot be opened is left to the page that needs it to report."""
    from audit_analytics.ui.state import browser_tz

    new_zone = note_zone(browser_tz())  # the warm-up after the load computes the first pages in it
    shared = current_shared()
    if shared.version:
        # loaded already (at the server's start, or for another viewer): the default views of a
        # zone not seen before are computed now, while this viewer signs in
        if new_zone:
            shared.warm_in_background()
        return
    _load_in_background(shared)


def preload_at_start() -> None:
    """Start loading the events as the server starts (:mod:`audit_analytics.ui.serve`), before
    anyone opens the app: the first sign-in then finds them held (1,000,000 events take about 3 s
    to load from SQLite). Outside any session, so Streamlit's "missing ScriptRunContext" warning,
    meant for scripts run without the server, is kept quiet for the two cached lookups."""
    import logging

    quiet = logging.getLogger("streamlit.runtime.scriptrunner_utils.script_run_context")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        shared = current_shared()
        _load_in_background(shared)
    finally:
        quiet.setLevel(level)


def _load_in_background(shared: SharedData) -> None:
    """The first load, in a thread (:meth:`SharedData.load_in_background`); a database that
    cannot be opened is left to the page that needs it to report."""
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


def archived_beside(shared: SharedData, flt: Filter) -> int:
    """How many events retention moved to the archive in the months and categories ``flt``
    reaches (:func:`audit_analytics.io.archive.held_for`), cached per view and version of the
    data: what the database's count leaves out. 0 when the policy cannot be read (the
    Retention page says why)."""
    from audit_analytics.io import archive
    from audit_analytics.io.retention import PolicyError, load_policy

    def count() -> int:
        try:
            folder = load_policy().archive
        except PolicyError:
            return 0
        return archive.held_for(folder, flt)

    result: int = cached(shared, ("archived_beside", flt, flt.bounds()), count)
    return result


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

"""Cached loaders: one store and one event frame per process, shared by every session.

The frame is held with ``st.cache_resource`` (``st.cache_data`` would hash and copy it);
derived results are cached by the filter's values, never by hashing frames.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import sqlalchemy as sa
import streamlit as st

from audit_analytics.engines import SqlIndex, engine_mode, memory_limit, open_engine
from audit_analytics.errors import StoreError
from audit_analytics.filters import Filter, Sort
from audit_analytics.memory import EventIndex, Selection
from audit_analytics.store import Store, default_url, open_store

log = logging.getLogger(__name__)
# how often a session may ask the database whether the table changed
FRESHNESS_SECONDS = 15.0
GROW_ATTEMPTS = 3  # reads of the new events while others keep being written
LATE_ARRIVALS = timedelta(minutes=5)  # how far back a new event may land without a full reload
RESULT_CACHE_SIZE = 160  # the explorer's, the charts' and the detections' results
FLIGHT_WAIT_SECONDS = 120.0


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


@dataclass
class SharedFrame:
    """The whole table in memory, ordered by (time, id), with a version for cache keys."""

    version: int = 0
    signature: tuple = ()
    checked_at: float = 0.0
    loaded_at: datetime | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    results: OrderedDict = field(default_factory=OrderedDict)
    # guards ``results`` and ``inflight``: sessions run in threads of one process
    results_lock: threading.Lock = field(default_factory=threading.Lock)
    inflight: dict = field(default_factory=dict)
    index: EventIndex | SqlIndex | None = None

    @property
    def frame(self) -> pl.DataFrame:
        """The whole table in memory (raises TooLargeForMemory in pushdown mode)."""
        return self.index.frame

    stale: bool = False
    archive_key: tuple | None = None
    archive_view: SharedFrame | None = None
    stale_reason: str = ""


@st.cache_resource(show_spinner=False)
def _shared(url: str, mode: str, limit: int | None = None) -> SharedFrame:
    return SharedFrame()


def current_shared() -> SharedFrame:
    """This process's shared data for the configured database (not refreshed: see get_frame)."""
    return _shared(default_url(), engine_mode(), memory_limit())


def _signature(store: Store) -> tuple:
    lo, hi = store.time_range()
    return (store.count(), hi)


def get_frame(*, force: bool = False) -> SharedFrame:
    """The shared frame, reloaded when the table changed (checked every few seconds).

    When the database stops answering after a first load, the last frame is kept and marked
    ``stale`` (the page says so); the next check after it returns reloads as usual.
    """
    shared = current_shared()
    now = time.monotonic()
    if not force and shared.version and not shared.stale and now - shared.checked_at < FRESHNESS_SECONDS:
        return shared
    try:
        return _refresh(shared, force=force)
    except (StoreError, sa.exc.SQLAlchemyError) as exc:
        if not shared.version:
            raise StoreError(str(exc)) from exc
        shared.stale = True
        shared.stale_reason = str(exc).splitlines()[0]
        shared.checked_at = time.monotonic()
        return shared


def _refresh(shared: SharedFrame, *, force: bool) -> SharedFrame:
    store = get_store()
    # while another session checks or reloads, answer from the data held meanwhile (a reload
    # of millions of rows would otherwise hold every open page for seconds); only the first
    # load, and a forced one, wait for it
    if not shared.lock.acquire(blocking=force or not shared.version):
        return shared
    try:
        signature = _signature(store)
        shared.stale = False
        shared.stale_reason = ""
        shared.checked_at = time.monotonic()
        if force or signature != shared.signature or not shared.version:
            grown = None if force or not shared.version else _grown(shared, store, signature)
            if grown is not None:
                shared.index, signature = grown
            else:
                if shared.version:
                    # seconds of work at millions of events, for every open page: worth a line
                    # in the server's log (the load benchmark counts them)
                    log.warning(
                        "the audit table changed other than at its end: reloading it (%s events)",
                        signature[0],
                    )
                shared.index = open_engine(store)
            shared.signature = signature
            shared.version += 1
            shared.loaded_at = datetime.now(UTC)
            if shared.version == 1:
                freeze_startup_objects()
            with shared.results_lock:
                shared.results.clear()
    finally:
        shared.lock.release()
    return shared


_frozen = threading.Lock()  # taken by the first freeze and never released


def freeze_startup_objects() -> bool:
    """Once per process, after the first load: move every object alive then (the imported
    libraries, the shared index) out of the cyclic garbage collector's sight (``gc.freeze``).

    A full collection walks every tracked object with the interpreter lock held. In the app
    that was 100-200 ms every 40 s or so under load (the libraries' 180,000 objects), and
    every open page waited for it at once. Afterwards it walks only what came later.
    True when this call froze them.
    """
    if not _frozen.acquire(blocking=False):
        return False
    gc.collect()  # what is garbage now is collected, not frozen
    gc.freeze()
    return True


def _grown(shared: SharedFrame, store: Store, signature: tuple) -> tuple[EventIndex, tuple] | None:
    """The in-memory index with only the newly appended events added, and the table's
    signature it matches, when the table only grew at its end (the usual case: new events,
    the app's own sign-ins and exports); else None."""
    index = shared.index
    (old_count, old_newest), (new_count, new_newest) = shared.signature, signature
    if getattr(index, "kind", "") != "memory" or new_count <= old_count or new_count > memory_limit():
        return None
    if old_newest is None or new_newest is None or new_newest < old_newest:
        return None
    # from a little before the newest event: one written at the same moment may commit later
    since = old_newest - LATE_ARRIVALS
    known = index.frame.slice(int(index.frame["time"].search_sorted(since, side="left")))["id"]
    for _attempt in range(GROW_ATTEMPTS):
        tail = store.load(Filter(start=since), columns=index.columns)
        fresh = tail.filter(~pl.col("id").is_in(known.implode()))
        count = store.count()  # after the tail: events written meanwhile show as a difference
        if old_count + fresh.height == count:
            newest = max(old_newest, fresh["time"].max()) if fresh.height else old_newest
            grown = index.extended(fresh)
            return None if grown is None else (grown, (count, newest))
        if old_count + fresh.height > count:
            return None  # fewer events than held plus new ones: some were deleted or changed
        # more: events committed between reading the tail and counting (sign-ins): again
    return None


def actors_of(shared: SharedFrame) -> pl.DataFrame:
    """Distinct actors with an email and their event count, most active first (cached per
    version of the frame: a GROUP BY over the table on every rerun would cost seconds)."""
    index = shared.index
    return cached(shared, ("actors", id(index)), index.actors)


def with_archive(shared: SharedFrame) -> SharedFrame:
    """The shared data plus the retention archive (the policy's folder), merged by id, as a
    SharedFrame of its own; rebuilt when the data or the archive's files change."""
    from audit_analytics import archive
    from audit_analytics.retention import load_policy

    folder = load_policy().archive
    files = (
        sorted(Path(folder).glob("category=*/month=*/*.parquet")) if folder and Path(folder).is_dir() else []
    )
    key = (shared.version, tuple((str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files))
    if shared.archive_key != key:
        held = shared.index.materialised()  # every column the index answers with
        merged = archive.merge(held, archive.scan(folder, None)) if files else held
        from_store = shared.index.details

        def details(ids, *, between=None):  # the database's copy first, then the archive's
            found = (
                from_store(ids, between=between)
                if from_store is not None
                else pl.DataFrame(schema={"id": pl.String})
            )
            rest = sorted(set(ids) - set(found["id"].to_list()))
            if not rest:
                return found
            return pl.concat([found, archive.details(folder, rest, between=between)], how="diagonal")

        shared.archive_view = SharedFrame(
            version=-shared.version - 1_000_000 * len(files),
            signature=shared.signature,
            checked_at=shared.checked_at,
            loaded_at=shared.loaded_at,
            index=EventIndex(merged, details=details),
        )
        shared.archive_key = key
    return shared.archive_view


def selection_for(shared: SharedFrame, flt: Filter, sort: Sort, *, now: datetime | None = None) -> Selection:
    """Which rows pass ``flt``, in ``sort`` order, as positions (cached by the index)."""
    return shared.index.select(flt, sort, now=now)


def result_for(shared: SharedFrame, flt: Filter, sort: Sort, *, now: datetime | None = None) -> pl.DataFrame:
    """The filtered rows in ``sort`` order with every column, as a new frame (for exports:
    it copies, and fetches the detail columns the in-memory engine leaves in the database)."""
    return shared.index.with_details(shared.index.rows(shared.index.select(flt, sort, now=now)))


def frame_for(shared: SharedFrame, flt: Filter, *, now: datetime | None = None) -> pl.DataFrame:
    """The filtered rows, oldest first; a zero-copy slice when only the period narrows them.
    The one to use for charts and analyses."""
    return shared.index.frame_for(flt, now=now)


def cached(shared: SharedFrame, key: tuple, compute):
    """A small derived result (a chart's numbers, a detection's findings), cached per
    version of the data by plain values — never by hashing frames.

    Computed once even when many sessions ask at the same moment (after new events arrive,
    every open page asks at once): the first computes, the others wait for its result
    instead of each holding its own copy of the intermediate frames."""
    full = (shared.version, *key)
    with shared.results_lock:
        if full in shared.results:
            shared.results.move_to_end(full)
            return shared.results[full]
        flight = shared.inflight.get(full)
        leader = flight is None
        if leader:
            flight = shared.inflight[full] = threading.Event()
    if not leader:
        flight.wait(timeout=FLIGHT_WAIT_SECONDS)
        with shared.results_lock:
            if full in shared.results:
                return shared.results[full]
        return compute()  # the first one failed or is slow: compute it here
    try:
        value = compute()
        with shared.results_lock:
            shared.results[full] = value
            while len(shared.results) > RESULT_CACHE_SIZE:
                shared.results.popitem(last=False)
        return value
    finally:
        with shared.results_lock:
            shared.inflight.pop(full, None)
        flight.set()


def invalidate(shared: SharedFrame | None = None) -> None:
    """After the app itself wrote events (an export's audit record): reload on next read.
    Outside a script run (a download's callable) pass the ``shared`` taken during the run."""
    (shared or current_shared()).checked_at = 0.0

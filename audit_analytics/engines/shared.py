"""The shared data of an app process: one engine over the table, kept current, and a cache of
derived results, shared by every session. No Streamlit here (``audit_analytics.ui.data``
holds one per process with ``st.cache_resource``); a notebook or a server can use it as is.

Its lifecycle:

* **load**: the first :meth:`SharedData.refresh` opens the engine (:func:`open_engine`: in
  memory while the table fits ``AUDIT_MEMORY_LIMIT``, else pushdown);
* **grow**: when the table only grew at its end (new events, the app's own sign-ins and
  exports), the engine takes the new events in (:meth:`AuditEngine.grown`) instead of reloading;
* **refresh**: the table is checked at most every :data:`FRESHNESS_SECONDS`; a change other
  than at the end reloads it; while the database does not answer, the last data are kept and
  marked ``stale``;
* **single flight**: :meth:`SharedData.cached` computes a derived result once even when many
  sessions ask at the same moment.

Examples
--------
>>> from audit_analytics import open_store
>>> from audit_analytics.demo.generate import generate
>>> store = open_store("sqlite://")
>>> _ = store.append(generate(1_000, seed=1).events)
>>> shared = SharedData().refresh(store)
>>> (shared.version, shared.index.height)
(1, 1000)
>>> shared.cached(("answer",), lambda: 42), shared.cached(("answer",), lambda: 0)
(42, 42)
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import sqlalchemy as sa

from audit_analytics.engines.contract import AuditEngine, Signature
from audit_analytics.engines.memory import EventIndex
from audit_analytics.engines.snapshot import Snapshots
from audit_analytics.engines.sql import engine_mode, open_engine
from audit_analytics.engines.store import Store
from audit_analytics.errors import StoreError

__all__ = ["SharedData", "freeze_startup_objects", "signature_of", "FRESHNESS_SECONDS"]

log = logging.getLogger(__name__)
# how often a session may ask the database whether the table changed
FRESHNESS_SECONDS = 15.0
RESULT_CACHE_SIZE = 160  # the explorer's, the charts' and the detections' results
FLIGHT_WAIT_SECONDS = 120.0
SNAPSHOT_AFTER_EVENTS = 100_000  # a grown index is written again past this many new events
IDLE_WAIT_SECONDS = 30.0  # the most the warm-up waits for the pages to finish before a step
QUIET_SECONDS = 2.0  # ... and how long no page must have run before it takes a step


def signature_of(store: Store) -> Signature:
    """What says whether the table changed: (row count, newest event time)."""
    return store.signature()


@dataclass
class SharedData:
    """The engine over the whole table, with a version for cache keys."""

    version: int = 0
    signature: Signature = (0, None)
    checked_at: float = 0.0
    loaded_at: datetime | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    results: OrderedDict[tuple[Hashable, ...], Any] = field(default_factory=OrderedDict)
    # guards ``results`` and ``inflight``: sessions run in threads of one process
    results_lock: threading.Lock = field(default_factory=threading.Lock)
    inflight: dict[tuple[Hashable, ...], threading.Event] = field(default_factory=dict)
    index: Any = None  # an AuditEngine once loaded
    stale: bool = False
    stale_reason: str = ""
    archive_key: tuple[Hashable, ...] | None = None
    archive_view: SharedData | None = None
    freeze_after_first_load: bool = False  # the app: see freeze_startup_objects
    preloading: bool = False  # a first load runs in the background (load_in_background)
    snapshots: Snapshots | None = None  # the app: the index kept on disk between restarts
    snapshot_height: int | None = None  # events in the last snapshot written or read
    warmers: list[Callable[[SharedData], None]] = field(default_factory=list)
    """Run in a thread after every load, grow or reload (:meth:`warm_in_background`): the app
    computes its pages' default views there, so a first visit finds them held."""
    warming: bool = False  # a warm-up thread runs
    warm_again: bool = False  # the data changed while it ran: it runs once more
    running: int = 0  # page runs in progress (:meth:`page_run`); the warm-up waits for none
    last_run: float = 0.0  # when a page run last started or ended (time.monotonic)
    idle: threading.Condition = field(default_factory=threading.Condition, repr=False)
    interim: SharedData | None = None
    """While the first load runs in the background: the database answering meanwhile
    (:meth:`current_or_interim`); dropped once the load is done."""
    is_interim: bool = False  # this is such an interim: pushdown, and its actors have no emails

    @property
    def engine(self) -> AuditEngine:
        engine: AuditEngine = self.index
        return engine

    # -- lifecycle --------------------------------------------------------------------------
    def current(self, store: Callable[[], Store], *, force: bool = False) -> SharedData:
        """This shared data, reloaded when the table changed (checked every few seconds).

        ``store`` gives the store (called only when the table is checked). When the database
        stops answering after a first load, the last data are kept and marked ``stale``; the
        next check after it returns reloads as usual.
        """
        now = time.monotonic()
        if not force and self.version and not self.stale and now - self.checked_at < FRESHNESS_SECONDS:
            return self
        try:
            return self.refresh(store(), force=force)
        except (StoreError, sa.exc.SQLAlchemyError) as exc:
            if not self.version:
                raise StoreError(str(exc)) from exc
            self.stale = True
            self.stale_reason = str(exc).splitlines()[0]
            self.checked_at = time.monotonic()
            return self

    def current_or_interim(self, store: Callable[[], Store]) -> SharedData:
        """:meth:`current`; but while the first load runs in the background
        (:meth:`load_in_background`), instead of waiting for it, shared data of its own answered
        by the database itself (pushdown, :attr:`interim`). For pages that read a page of rows
        and a count: the Audit Log's first page of 1,000,000 events is read from SQLite in
        about 0.05 s while the load takes 3-10 s. Not for charts over a period: in SQL on SQLite
        they take longer than the load (Activity 5.5 s, Security review 47 s at 1,000,000).
        Its sidebar's actors come from the actor index, without emails (:meth:`actors`)."""
        if self.version or not self.preloading:
            return self.current(store)
        with self.results_lock:
            interim = self.interim
        if interim is None:
            try:
                interim = SharedData(
                    index=open_engine(store(), mode="pushdown"),
                    checked_at=time.monotonic(),
                    loaded_at=datetime.now(UTC),
                    is_interim=True,
                )
            except (StoreError, sa.exc.SQLAlchemyError):
                return self.current(store)  # waits for the load, which reports it
            with self.results_lock:
                if self.version:  # the load ended meanwhile
                    return self
                self.interim = self.interim or interim
                interim = self.interim
        return interim

    def refresh(self, store: Store, *, force: bool = False) -> SharedData:
        """Check the table now; load, grow or reload the engine as needed."""
        # while another session checks or reloads, answer from the data held meanwhile (a reload
        # of millions of rows would otherwise hold every open page for seconds); only the first
        # load, and a forced one, wait for it
        if not self.lock.acquire(blocking=force or not self.version):
            return self
        version = self.version
        try:
            signature = signature_of(store)
            self.stale = False
            self.stale_reason = ""
            self.checked_at = time.monotonic()
            if force or signature != self.signature or not self.version:
                grown = None
                if not force and self.version:
                    grown = self.index.grown(store, self.signature, signature)
                if grown is not None:
                    self.index, signature = grown
                else:
                    if self.version and self.index.holds_copy:
                        # seconds of work at millions of events, for every open page: worth a line
                        # in the server's log (the load benchmark counts them); an engine that
                        # holds nothing (pushdown) only counts the table again
                        log.warning(
                            "the audit table changed other than at its end: reloading it (%s events)",
                            signature[0],
                        )
                    self.index = self._open(store)
                    # what the engine holds, not what was counted before it opened: an event
                    # written during a load (a sign-in while the sign-in screen preloads) would
                    # otherwise look like a change and cost a second full load
                    signature = (self.index.height, self.index.newest_time())
                self._keep_snapshot_current(store)
                self.signature = signature
                self.version += 1
                self.loaded_at = datetime.now(UTC)
                if self.version == 1 and self.freeze_after_first_load:
                    freeze_startup_objects()
                with self.results_lock:
                    self.results.clear()
                    self.interim = None
        finally:
            self.lock.release()
        if self.version != version:
            self.warm_in_background()
        return self

    def _open(self, store: Store) -> AuditEngine:
        """The engine for the table: from the snapshot when one is current (the first load
        of a process), else loaded (and a snapshot of it written in the background)."""
        snaps = self.snapshots
        if snaps is None or engine_mode() == "pushdown":
            return open_engine(store)
        if not self.version:
            restored = snaps.restore(store)
            if restored is not None:
                self.snapshot_height = restored.height
                return restored
        mark = snaps.mark(store)  # before the load: the snapshot is of this batch or later
        index = open_engine(store)
        if isinstance(index, EventIndex):
            snaps.save_in_background(index, mark)
            self.snapshot_height = index.height
        return index

    def _keep_snapshot_current(self, store: Store) -> None:
        """A grown index is written again once it holds many more events than the snapshot
        (a restart then takes in fewer)."""
        snaps, index = self.snapshots, self.index
        if snaps is None or not isinstance(index, EventIndex) or self.snapshot_height is None:
            return
        if index.height - self.snapshot_height > max(SNAPSHOT_AFTER_EVENTS, self.snapshot_height // 10):
            self.snapshot_height = index.height
            snaps.save_in_background(index, snaps.mark(store))

    def load_in_background(self, store: Callable[[], Store]) -> threading.Thread | None:
        """Start the first load in a thread of its own, unless the data are held or being
        loaded; the thread, or None. The app calls it while the sign-in screen is shown, so the
        first page after signing in finds the events held instead of loading a million rows
        then (a page that asks meanwhile waits for this load, it does not start another).
        A failed load is only logged: the next page's own load reports it."""
        with self.results_lock:
            if self.version or self.preloading:
                return None
            self.preloading = True

        def run() -> None:
            started = time.perf_counter()
            try:
                self.refresh(store())
            except Exception as exc:  # the database is away: the pages say so themselves
                log.warning("loading the audit table in the background failed: %s", exc)
            else:
                log.warning(
                    "loaded the audit table in the background: %s events in %.1f s",
                    self.signature[0],
                    time.perf_counter() - started,
                )
            finally:
                self.preloading = False

        thread = threading.Thread(target=run, name="audit-preload", daemon=True)
        thread.start()
        return thread

    def warm_in_background(self) -> threading.Thread | None:
        """Run every warmer over the current data in a thread of its own; the thread, or None
        when there is no warmer or one already runs (it then runs the warmers once more when
        it is done, for the data as they are then). A warmer's results go through
        :meth:`cached`, so a page that asks for one meanwhile waits for it instead of computing
        it twice. A warmer that fails is logged and skipped: the page computes that result
        itself."""
        if not self.warmers:
            return None
        with self.results_lock:
            if self.warming:
                self.warm_again = True
                return None
            self.warming = True

        def run() -> None:
            while True:
                version = self.version
                for warmer in self.warmers:
                    self.wait_idle()
                    if self.version != version:
                        break  # the data changed: start again on the new version
                    try:
                        warmer(self)
                    except Exception as exc:
                        log.warning("warming %s failed: %s", getattr(warmer, "__name__", warmer), exc)
                with self.results_lock:
                    if not self.warm_again and self.version == version:
                        self.warming = False
                        return
                    self.warm_again = False

        thread = threading.Thread(target=run, name="audit-warm", daemon=True)
        thread.start()
        return thread

    @contextmanager
    def page_run(self) -> Iterator[None]:
        """Around a page's run (the app wraps every run in it): the warm-up does its next step
        only when no page runs, so a user's page never shares the CPU with it (on 2 cores the
        first page after sign-in took 2.5 s instead of 1.3 while the warm-up ran)."""
        with self.idle:
            self.running += 1
            self.last_run = time.monotonic()
        try:
            yield
        finally:
            with self.idle:
                self.running -= 1
                self.last_run = time.monotonic()
                self.idle.notify_all()

    def wait_idle(self, timeout: float = IDLE_WAIT_SECONDS, *, quiet: float = QUIET_SECONDS) -> bool:
        """Wait until no page has run for ``quiet`` seconds (at most ``timeout`` seconds in
        all); whether that came. A warmer calls it between its steps: a user's clicks come in
        bursts (signing in is a run, then the page's run), and a step begun between two runs
        of a burst would share the CPU with the second."""
        deadline = time.monotonic() + timeout
        with self.idle:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                if self.running:
                    self.idle.wait(left)
                    continue
                calm = quiet - (time.monotonic() - self.last_run)
                if calm <= 0:
                    return True
                self.idle.wait(min(calm, left))

    # -- derived results --------------------------------------------------------------------
    def cached(self, key: tuple[Hashable, ...], compute: Callable[[], Any]) -> Any:
        """A small derived result (a chart's numbers, a detection's findings), cached per
        version of the data by plain values — never by hashing frames.

        Computed once even when many sessions ask at the same moment (after new events arrive,
        every open page asks at once): the first computes, the others wait for its result
        instead of each holding its own copy of the intermediate frames."""
        full = (self.version, *key)
        with self.results_lock:
            if full in self.results:
                self.results.move_to_end(full)
                return self.results[full]
            flight = self.inflight.get(full)
            leader = flight is None
            if flight is None:
                flight = self.inflight[full] = threading.Event()
        if not leader:
            flight.wait(timeout=FLIGHT_WAIT_SECONDS)
            with self.results_lock:
                if full in self.results:
                    return self.results[full]
            return compute()  # the first one failed or is slow: compute it here
        try:
            value = compute()
            with self.results_lock:
                self.results[full] = value
                while len(self.results) > RESULT_CACHE_SIZE:
                    self.results.popitem(last=False)
            return value
        finally:
            with self.results_lock:
                self.inflight.pop(full, None)
            flight.set()

    def actors(self) -> pl.DataFrame:
        """Distinct actors with an email and their event count, most active first (cached per
        version: a GROUP BY over the table on every rerun would cost seconds)."""
        index = self.index
        if self.is_interim:  # while the first load runs: no emails, which cost a read of every row
            actors: pl.DataFrame = self.cached(("actors",), lambda: index.store.actors(emails=False))
            return actors
        actors = self.cached(("actors", id(index)), index.actors)
        return actors

    # -- the archive ------------------------------------------------------------------------
    def with_archive(self, folder: str | Path | None) -> SharedData:
        """The shared data plus the retention archive in ``folder``, merged by id, as shared
        data of its own; rebuilt when the data or the archive's files change. Raises
        NeedsMemory when the table is larger than the memory limit."""
        from audit_analytics.io import archive

        files = (
            sorted(Path(folder).glob("category=*/month=*/*.parquet"))
            if folder and Path(folder).is_dir()
            else []
        )
        key = (self.version, tuple((str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files))
        if self.archive_key != key or self.archive_view is None:
            held = self.index.materialised()  # every column the engine answers with
            merged = archive.merge(held, archive.scan(folder, None)) if files else held
            from_store = self.index.details

            def details(
                ids: Any, *, between: tuple[datetime, datetime] | None = None
            ) -> pl.DataFrame:  # the database's copy first, then the archive's
                found = (
                    from_store(ids, between=between)
                    if from_store is not None
                    else pl.DataFrame(schema={"id": pl.String})
                )
                rest = sorted(set(ids) - set(found["id"].to_list()))
                if not rest:
                    return found
                return pl.concat([found, archive.details(folder, rest, between=between)], how="diagonal")

            self.archive_view = SharedData(
                version=-self.version - 1_000_000 * len(files),
                signature=self.signature,
                checked_at=self.checked_at,
                loaded_at=self.loaded_at,
                index=EventIndex(merged, details=details),
            )
            self.archive_key = key
        return self.archive_view


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

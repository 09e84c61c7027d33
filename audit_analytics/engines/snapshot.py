"""A snapshot of the in-memory index on disk, so that a restarted app has its data in a
second instead of loading the whole table again.

After a full load the app writes the prepared :class:`~audit_analytics.engines.memory.EventIndex`
(its frame, dictionary codes, dictionaries and lowered columns) to an uncompressed Arrow IPC
file, and beside it a small JSON file that names it and says what it holds. On the next start:

1. the JSON must be of this version and this layout of the schema, name this database, and its
   file must have the recorded size and CRC-32 (a torn or damaged file is never used);
2. the hash chain's batch that was the newest at load must still be in the database with the
   same digest (a snapshot of another database, or of a rewritten one, is never used);
3. the index is restored as it was, then takes in the events stored since, as a running app
   does (:meth:`EventIndex.grown`); when the table changed other than at its end (a retention
   run deleted events), the snapshot is discarded and the table loaded.

Every refusal is logged with its reason, and the snapshot is then written afresh. Files are
written under a temporary name and renamed; the data file's name is unique to each write and
the JSON is replaced last, so two app processes on one database never read a mix of two.

Configuration: ``AUDIT_SNAPSHOT_DIR`` (default: the SQLite file's folder, else ``data/``);
``AUDIT_SNAPSHOT=off`` turns snapshots off.

Examples
--------
>>> import tempfile
>>> from audit_analytics.engines.store import open_store
>>> from audit_analytics.demo.generate import generate
>>> folder = tempfile.mkdtemp()
>>> store = open_store(f"sqlite:///{folder}/a.db")
>>> _ = store.append(generate(2_000, seed=1).events)
>>> snaps = Snapshots.for_store(store)
>>> snaps.restore(store) is None                 # none written yet
True
>>> from audit_analytics.engines.sql import open_engine
>>> snaps.save(open_engine(store, mode="memory"), snaps.mark(store)).name
'a.db.snapshot.json'
>>> _ = store.record(actor="doc", type="audit", action="sign_in")  # stored since: taken in
>>> Snapshots.for_store(store).restore(store).height
2001
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import threading
import time
import zlib
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import polars as pl
import sqlalchemy as sa

from audit_analytics.engines import chain
from audit_analytics.engines.memory import (
    CODE_ONLY_COLUMNS,
    DICTIONARY_COLUMNS,
    EventIndex,
    RememberedDetails,
)
from audit_analytics.engines.store import Store
from audit_analytics.fileio import atomic_write
from audit_analytics.schema import SCHEMA, SUMMARY_COLUMNS

__all__ = ["FORMAT", "Mark", "Snapshots"]

log = logging.getLogger(__name__)
FORMAT = 1
LAYOUT = hashlib.sha256(
    json.dumps([str(SCHEMA), SUMMARY_COLUMNS, CODE_ONLY_COLUMNS, DICTIONARY_COLUMNS, FORMAT]).encode()
).hexdigest()[:16]  # a change to the schema or the index's layout makes old snapshots stale
CRC_CHUNK = 64 << 20


@dataclass(frozen=True)
class Mark:
    """The chain's newest batch before a load: what a snapshot of that load belongs to."""

    batch: int
    digest: str


def _crc(path: Path) -> int:
    crc = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(CRC_CHUNK):
            crc = zlib.crc32(chunk, crc)
    return crc


class Snapshots:
    """Where one database's snapshot lives, and how it is written and read."""

    def __init__(self, folder: Path, stem: str, database: str) -> None:
        self.folder = folder
        self.stem = stem
        self.database = database
        self.meta = folder / f"{stem}.snapshot.json"
        self.writing = threading.Lock()

    @classmethod
    def for_store(cls, store: Store) -> Snapshots | None:
        """The snapshot place for ``store``, or None when snapshots are off or the database
        lives in memory."""
        if os.environ.get("AUDIT_SNAPSHOT", "").lower() in ("off", "0", "false", "no"):
            return None
        url = store.engine.url
        configured = os.environ.get("AUDIT_SNAPSHOT_DIR")
        if store.dialect == "sqlite":
            if not url.database or url.database == ":memory:":
                return None
            db = Path(url.database)
            folder = Path(configured) if configured else db.parent
            stem = db.name if not configured else f"{db.name}-{_digest(str(db.resolve()))}"
        else:
            folder = Path(configured or "data")
            stem = f"audit-{_digest(store.safe_url)}"
        return cls(folder, stem, store.safe_url)

    # -- reading ---------------------------------------------------------------------------
    def mark(self, store: Store) -> Mark:
        with store.engine.connect() as conn:
            last = chain.last_batch(conn, store.batches)
        return Mark(last.batch, last.digest) if last else Mark(0, chain.GENESIS)

    def restore(self, store: Store, details: RememberedDetails | None = None) -> EventIndex | None:
        """The snapshot's index with the events stored since added, or None (logged why)."""
        started = time.perf_counter()
        why = self._unusable(store)
        if why is not None:
            if why != "none":
                log.warning("not using the snapshot %s: %s; loading the table", self.meta, why)
            return None
        meta = json.loads(self.meta.read_text(encoding="utf-8"))
        try:
            rows = pl.read_ipc(self.folder / meta["file"])
            words = pl.read_ipc(self.folder / meta["words"])
            if rows.height != meta["height"]:
                raise ValueError(f"{rows.height:,} rows where {meta['height']:,} were written")
            index = EventIndex.from_state(
                rows, words, meta["layout"], details=details or RememberedDetails(store.details)
            )
        except Exception as exc:  # noqa: BLE001 - any failure to read it means: not usable
            log.warning(
                "not using the snapshot %s: it does not read back (%s); loading the table", self.meta, exc
            )
            return None
        held = (index.height, index.newest_time())
        now = store.signature()
        if now != held:
            grown = index.grown(store, held, now)
            if grown is None:
                log.warning(
                    "not using the snapshot %s: the table changed other than at its end since it was "
                    "written (%s events then, %s now); loading the table",
                    self.meta,
                    held[0],
                    now[0],
                )
                return None
            index = grown[0]
        log.warning(
            "restored %s events from the snapshot %s in %.2f s (%s stored since)",
            index.height,
            self.meta.name,
            time.perf_counter() - started,
            index.height - held[0],
        )
        return index

    def _unusable(self, store: Store) -> str | None:
        """Why the snapshot cannot be used (``"none"``: there is none), or None."""
        if not self.meta.is_file():
            return "none"
        try:
            meta = json.loads(self.meta.read_text(encoding="utf-8"))
            if meta.get("format") != FORMAT or meta.get("layout_id") != LAYOUT:
                return "it was written by another version"
            if meta.get("database") != self.database:
                return f"it belongs to {meta.get('database')}"
            for key in ("file", "words"):
                data = self.folder / meta[key]
                if not data.is_file() or data.stat().st_size != meta[f"{key}_bytes"]:
                    return f"its data file {data.name} is missing or has another size"
                if _crc(data) != meta[f"{key}_crc32"]:
                    return f"its data file {data.name} is damaged (CRC-32 differs)"
        except (OSError, ValueError, KeyError, TypeError) as exc:
            return f"its description cannot be read ({exc})"
        with store.engine.connect() as conn:
            row = conn.execute(
                sa.select(store.batches.c.digest).where(store.batches.c.batch == meta["batch"])
            ).first()
        if meta["batch"] and (row is None or row[0] != meta["digest"]):
            return f"the database's batch {meta['batch']} is not the one it was taken at"
        return None

    # -- writing ---------------------------------------------------------------------------
    def save(self, index: EventIndex, mark: Mark) -> Path:
        """Write ``index`` (taken after ``mark``) as the snapshot; -> the JSON file."""
        with self.writing:
            self.folder.mkdir(parents=True, exist_ok=True)
            rows, words, layout = index.state()
            token = secrets.token_hex(6)
            files: dict[str, Any] = {}
            for key, frame in (("file", rows), ("words", words)):
                name = f"{self.stem}.snapshot-{token}-{key}.arrow"
                atomic_write(self.folder / name, partial(frame.write_ipc, compression="uncompressed"))
                files |= {
                    key: name,
                    f"{key}_bytes": (self.folder / name).stat().st_size,
                    f"{key}_crc32": _crc(self.folder / name),
                }
            newest = index.newest_time()
            meta = {
                "format": FORMAT,
                "layout_id": LAYOUT,
                "layout": layout,
                "database": self.database,
                **files,
                "height": index.height,
                "newest": newest.isoformat() if isinstance(newest, datetime) else None,
                "batch": mark.batch,
                "digest": mark.digest,
                "written_at": datetime.now().astimezone().isoformat(timespec="seconds"),
            }
            atomic_write(self.meta, json.dumps(meta, indent=1))
            self._remove_old(keep=token)
        return self.meta

    def save_in_background(self, index: EventIndex, mark: Mark) -> threading.Thread:
        def run() -> None:
            started = time.perf_counter()
            try:
                self.save(index, mark)
            except Exception as exc:  # noqa: BLE001 - a snapshot is an accelerator only
                log.warning("could not write the snapshot %s: %s", self.meta, exc)
            else:
                log.warning(
                    "wrote the snapshot %s (%s events) in %.1f s",
                    self.meta.name,
                    index.height,
                    time.perf_counter() - started,
                )

        thread = threading.Thread(target=run, name="audit-snapshot", daemon=True)
        thread.start()
        return thread

    def _remove_old(self, *, keep: str) -> None:
        """Data files of earlier snapshots (older than a minute: another process may be
        between writing its data and its description)."""
        for path in self.folder.glob(f"{self.stem}.snapshot-*.arrow"):
            try:
                if keep not in path.name and time.time() - path.stat().st_mtime > 60:
                    path.unlink()
            except OSError:
                continue


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]

"""The Parquet archive: events past retention, Hive-partitioned by category and month.

Layout::

    ARCHIVE/category=auth/month=2025-01/part-<run>.parquet
    ARCHIVE/_manifest.jsonl            one line per file written: run, rows, sha256 of ids

A file is written under a temporary name and renamed into place, so a reader never sees a
half-written part. Several parts may hold the same event (a run that crashed after writing
and was run again), so every reader deduplicates by ``id``: :func:`scan` and :func:`merge`.

Examples
--------
>>> import tempfile
>>> from audit_analytics.demo.generate import generate
>>> from audit_analytics.filters import Filter
>>> events = generate(1_000, seed=2).events
>>> root = tempfile.mkdtemp()
>>> _ = write_partitions(root, events, run_id="doc")
>>> scan(root, Filter(types=("auth",))).collect().height == Filter(types=("auth",)).apply(events).height
True
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Literal

import polars as pl

from audit_analytics.engines.chain import Batch
from audit_analytics.errors import ArchiveError
from audit_analytics.fileio import atomic_write
from audit_analytics.filters import Filter
from audit_analytics.schema import (
    COLUMNS,
    DETAIL_COLUMNS,
    PERMISSION,
    PERMISSION_CATEGORIES,
    SCHEMA,
    conform,
    empty_frame,
)

__all__ = [
    "ArchiveError",
    "check",
    "held_for",
    "WrittenPart",
    "scan",
    "merge",
    "write_partitions",
    "archived_ids",
    "ids_checksum",
    "partition_dir",
    "read_chain",
    "write_chain",
    "CHAIN_DIR",
    "MANIFEST",
]

MANIFEST = "_manifest.jsonl"
CHAIN_DIR = "_chain"


@dataclass(frozen=True, slots=True)
class WrittenPart:
    category: str
    month: str
    path: Path
    rows: int
    ids_sha256: str


def ids_checksum(ids: Iterable[str]) -> str:
    """sha256 over the sorted ids, one per line: the same set gives the same checksum.

    >>> ids_checksum(["b", "a"]) == ids_checksum(["a", "b"])
    True
    """
    digest = hashlib.sha256()
    for i in sorted(ids):
        digest.update(i.encode("utf-8") + b"\n")
    return digest.hexdigest()


def partition_dir(archive_dir: str | Path, category: str, month: str) -> Path:
    return Path(archive_dir) / f"category={category}" / f"month={month}"


def _month_expr() -> pl.Expr:
    return pl.col("time").dt.convert_time_zone("UTC").dt.strftime("%Y-%m")


def _files(archive_dir: Path) -> list[Path]:
    return sorted(p for p in archive_dir.glob("category=*/month=*/*.parquet") if p.is_file())


def archived_ids(archive_dir: str | Path, category: str, month: str) -> set[str]:
    """Every id already archived in one partition (any run's parts)."""
    part = partition_dir(archive_dir, category, month)
    files = sorted(part.glob("*.parquet")) if part.is_dir() else []
    if not files:
        return set()
    return set(pl.scan_parquet(files).select("id").collect()["id"].to_list())


def _storable(frame: pl.DataFrame) -> pl.DataFrame:
    # enums as text: any Parquet reader (DuckDB, pandas, Spark) can read the archive
    return conform(frame).with_columns(pl.col("type", "result").cast(pl.String)).sort("time", "id")


def write_partitions(
    archive_dir: str | Path, events: pl.DataFrame, *, run_id: str, skip_ids: Iterable[str] = ()
) -> list[WrittenPart]:
    """Write ``events`` (minus ``skip_ids``) to one part per (category, month), named by
    ``run_id``; each part is read back and checked (row count, id checksum) before it counts.
    A rerun with the same ``run_id`` replaces its own parts, so it never duplicates."""
    root = Path(archive_dir)
    skip = set(skip_ids)
    frame = events.filter(~pl.col("id").is_in(list(skip))) if skip else events
    frame = frame.with_columns(_month_expr().alias("_month"), pl.col("type").cast(pl.String).alias("_cat"))
    written: list[WrittenPart] = []
    for (category, month), group in frame.group_by(["_cat", "_month"], maintain_order=True):
        rows = _storable(group.drop("_cat", "_month"))
        target = partition_dir(root, category, month) / f"part-{run_id}.parquet"
        try:
            atomic_write(target, partial(rows.write_parquet, compression="zstd", statistics=True))
        except OSError as exc:
            raise ArchiveError(f"cannot write the archive part {target}: {exc}") from exc
        checksum = ids_checksum(rows["id"].to_list())
        back = pl.read_parquet(target, columns=["id"])
        if back.height != rows.height or ids_checksum(back["id"].to_list()) != checksum:
            raise ArchiveError(f"archive part {target} does not read back as written")
        part = WrittenPart(str(category), str(month), target, rows.height, checksum)
        _append_manifest(root, run_id, part)
        written.append(part)
    return written


def _append_manifest(root: Path, run_id: str, part: WrittenPart) -> None:
    line = {
        "run": run_id,
        "category": part.category,
        "month": part.month,
        "file": str(part.path.relative_to(root)),
        "rows": part.rows,
        "ids_sha256": part.ids_sha256,
        "written_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    with open(root / MANIFEST, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(line, sort_keys=True) + "\n")


def write_chain(root: str | Path, run_id: str, links: pl.DataFrame, batches: Sequence[Batch]) -> Path:
    """The archived events' chain rows and the batches that hold them, beside the events:
    ``ARCHIVE/_chain/run-<run>.jsonl`` (a head line with the count and the digest the run's
    event records, then one line per batch, then one per event), so that the archive carries
    its own proof and database + archive verify end to end."""
    from audit_analytics.engines.chain import archived_digest

    target = Path(root) / CHAIN_DIR / f"run-{run_id}.jsonl"
    lines = [
        json.dumps(
            {"run": run_id, "archived_events": links.height, "archived_sha256": archived_digest(links)},
            sort_keys=True,
        )
    ]
    lines += [json.dumps({"batch": {k: getattr(b, k) for k in b.__slots__}}, sort_keys=True) for b in batches]
    lines += [json.dumps(row, sort_keys=True) for row in links.iter_rows(named=True)]
    try:
        atomic_write(target, "\n".join(lines) + "\n")
    except OSError as exc:
        raise ArchiveError(f"cannot write the archive's chain file {target}: {exc}") from exc
    return target


def read_chain(root: str | Path) -> pl.DataFrame:
    """Every archived chain row the archive's ``_chain`` files hold (``seq``, ``id``,
    ``hash``, ``run``)."""
    rows = []
    for path in sorted((Path(root) / CHAIN_DIR).glob("run-*.jsonl")):
        run = None
        for line in path.read_text(encoding="utf-8").splitlines():
            item = json.loads(line)
            if "run" in item:
                run = item["run"]
            elif "seq" in item:
                rows.append((item["seq"], item["id"], item["hash"], run))
    return pl.DataFrame(
        rows, schema={"seq": pl.Int64, "id": pl.String, "hash": pl.String, "run": pl.String}, orient="row"
    )


def _months_between(lo: datetime | None, hi: datetime | None) -> tuple[str | None, str | None]:
    first = f"{lo.astimezone(UTC):%Y-%m}" if lo else None
    last = f"{hi.astimezone(UTC):%Y-%m}" if hi else None
    return first, last


def _partition_of(path: Path) -> tuple[str, str]:
    """(category, month) from ``…/category=auth/month=2025-01/part-x.parquet``."""
    return path.parent.parent.name.partition("=")[2], path.parent.name.partition("=")[2]


def _manifest_files(root: Path) -> list[Path]:
    """Every part file the manifest says was written (a torn last line is ignored)."""
    manifest = root / MANIFEST
    if not manifest.is_file():
        return []
    listed = []
    with open(manifest, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            with contextlib.suppress(ValueError, KeyError, TypeError):
                listed.append(root / json.loads(line)["file"])
    return sorted(set(listed))


def _unreadable(path: Path) -> str | None:
    """Why ``path`` is not a readable Parquet part (its footer and schema), or None."""
    try:
        schema = pl.read_parquet_schema(path)
    except FileNotFoundError:
        return "is missing (it is listed in _manifest.jsonl)"
    except Exception as exc:  # polars raises several kinds for a torn or foreign file
        return f"is not a readable Parquet file ({str(exc).splitlines()[0][:160]})"
    if "id" not in schema or "time" not in schema:
        return f"is not an archive part (columns: {', '.join(list(schema)[:8])})"
    return None


def check(archive_dir: str | Path) -> dict[Path, str]:
    """Every archive file that cannot be read, with the reason: corrupt or foreign files, and
    files the manifest lists that are missing. Empty when the archive is sound.

    >>> check("/nonexistent")
    {}
    """
    root = Path(archive_dir)
    if not root.is_dir():
        return {}
    found = {p: why for p in {*_files(root), *_manifest_files(root)} if (why := _unreadable(p))}
    return dict(sorted(found.items()))


def _wanted(path: Path, flt: Filter | None, first: str | None, last: str | None) -> bool:
    category, month = _partition_of(path)
    if flt is not None and flt.types:
        # type:permission is not a category: its events are user and organization ones
        categories = set(flt.types) | (set(PERMISSION_CATEGORIES) if PERMISSION in flt.types else set())
        if category not in categories:
            return False
    return not ((first and month < first) or (last and month > last))


def held_for(
    archive_dir: str | Path | None, flt: Filter | None = None, *, now: datetime | None = None
) -> int:
    """How many archived events lie in the partitions ``flt`` reaches (its types' categories,
    its period's months), read from the Parquet footers without reading a row: what a view of
    the database alone leaves out at most (its search may match fewer). 0 without an archive.

    After a retention run, "all time" of the database is not all time: the pages and the
    command line say how many archived events they did not search.

    >>> held_for("/nonexistent", None)
    0
    """
    files = _parts(archive_dir, flt, now=now, on_unreadable="skip")
    return sum(int(pl.scan_parquet(path).select(pl.len()).collect().item()) for path in files)


def _parts(
    archive_dir: str | Path | None,
    flt: Filter | None,
    *,
    now: datetime | None,
    on_unreadable: Literal["raise", "skip"],
) -> list[Path]:
    """The readable part files of the partitions ``flt`` reaches (its types' categories, its
    period's months); an unreadable one raises :class:`ArchiveError` or is left out."""
    root = Path(archive_dir) if archive_dir else None
    if root is None or not root.is_dir():
        return []
    first, last = _months_between(*flt.bounds(now=now)) if flt is not None else (None, None)
    files = []
    for path in sorted({*_files(root), *_manifest_files(root)}):
        if not _wanted(path, flt, first, last):
            continue
        why = _unreadable(path)
        if why is None:
            files.append(path)
        elif on_unreadable == "raise":
            raise ArchiveError(
                f"archive file {path} {why}; restore it from a backup or move it aside "
                "(the rest of the archive and the database are unaffected)"
            )
    return files


def scan(
    archive_dir: str | Path | None,
    flt: Filter | None = None,
    *,
    now: datetime | None = None,
    on_unreadable: Literal["raise", "skip"] = "raise",
) -> pl.LazyFrame:
    """The archived events that pass ``flt``, as a lazy event frame (deduplicated by id).

    Partitions are pruned on ``category`` (the filter's types) and ``month`` (its period)
    before any file is opened; the rows then pass the same ``flt.expr()`` as in memory.
    A missing or empty archive is an empty frame.

    Each remaining file's footer is read first: a corrupt file, or one the manifest lists
    that is missing, raises :class:`ArchiveError` naming it (``on_unreadable="raise"``), or
    is left out (``"skip"``; :func:`check` lists them). Files of other partitions, and the
    database, are unaffected either way.

    >>> scan("/nonexistent").collect().height
    0
    """
    files = _parts(archive_dir, flt, now=now, on_unreadable=on_unreadable)
    if not files:
        return empty_frame().lazy()
    parts = [pl.scan_parquet(path) for path in files]
    lazy = pl.concat(parts, how="diagonal_relaxed")
    lazy = lazy.select(
        [(pl.col(c) if c in _columns(files) else pl.lit(None)).cast(SCHEMA[c]).alias(c) for c in COLUMNS]
    )
    if flt is not None:
        lazy = lazy.filter(flt.expr(now=now))
    lazy = lazy.unique(subset="id", keep="first")
    return _with_files(lazy, files)  # merge() names the file when a page inside one turns out corrupt


# A scan's LazyFrame carries the files it reads as an extra attribute, so that a failure when
# it is collected (later, elsewhere) can name the broken file; polars has no slot for it.
_FILES_ATTRIBUTE = "_aa_files"


def _with_files(lazy: pl.LazyFrame, files: list[Path]) -> pl.LazyFrame:
    setattr(lazy, _FILES_ATTRIBUTE, files)
    return lazy


def _files_of(lazy: pl.LazyFrame) -> list[Path]:
    files: list[Path] = getattr(lazy, _FILES_ATTRIBUTE, [])
    return files


def _columns(files: list[Path]) -> set[str]:
    names: set[str] = set()
    for path in files:
        names.update(pl.read_parquet_schema(path))
    return names


def merge(db_frame: pl.DataFrame, archived: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    """Database rows and archived rows as one event frame, each id once (the database's
    copy wins), ordered by (time, id) like :meth:`Store.load`."""
    columns = db_frame.columns  # the in-memory engine's frame leaves the detail columns out
    if isinstance(archived, pl.LazyFrame):
        selected = archived.select(columns)  # archive files hold every column
        archived = _collect(_with_files(selected, _files_of(archived)))  # to name a broken file
    both = pl.concat([conform(db_frame, columns=columns), conform(archived, columns=columns)], how="vertical")
    return both.unique(subset="id", keep="first", maintain_order=True).sort("time", "id")


def details(
    archive_dir: str | Path | None, ids: Sequence[str], *, between: tuple[datetime, datetime] | None = None
) -> pl.DataFrame:
    """``id`` and the detail columns of the archived events with these ids (unreadable
    files are left out: the rest still answers); ``between`` prunes by time."""
    wanted = pl.LazyFrame({"id": pl.Series(ids, dtype=pl.String)}).unique()
    lazy = scan(archive_dir, None, on_unreadable="skip")
    files = _files_of(lazy)
    if between is not None:
        lazy = lazy.filter(pl.col("time").is_between(*between))
    # a semi join, not is_in: 4x faster for 100,000 ids
    found = lazy.join(wanted, on="id", how="semi").select(
        pl.col("id"), *(pl.col(c).cast(pl.String) for c in DETAIL_COLUMNS)
    )
    return _collect(_with_files(found, files))  # which file to name if one turns out unreadable


def _collect(lazy: pl.LazyFrame) -> pl.DataFrame:
    try:
        return lazy.collect()
    except (pl.exceptions.PolarsError, OSError) as exc:
        for path in _files_of(lazy):
            try:
                pl.read_parquet(path)
            except Exception as inner:
                raise ArchiveError(
                    f"archive file {path} is not a readable Parquet file ({str(inner).splitlines()[0][:160]}); "
                    "restore it from a backup or move it aside (the rest of the archive is unaffected)"
                ) from exc
        raise ArchiveError(f"the archive could not be read: {str(exc).splitlines()[0][:200]}") from exc

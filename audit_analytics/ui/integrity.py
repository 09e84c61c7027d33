"""The Integrity page's pieces: the last verification as recorded, a verification run from
the app, and how both are drawn.

A verification is shown the same way whether it was just run or read back from its recorded
``audit``/``integrity_verify`` event: a pass or fail, when and by whom, the summary, one row
per problem and the notes. Ids and messages name events, whose ids anyone who writes to the
audit log chooses, so they are drawn as plain text in a table, never as markdown.

Examples
--------
>>> from audit_analytics.engines.store import open_store
>>> from audit_analytics.demo.generate import generate
>>> store = open_store("sqlite://")
>>> _ = store.append(generate(1_000, seed=1).events)
>>> run = verify_and_record(store, actor="ada")
>>> run.ok, run.recorded, last_recorded(store).actor
(True, True, 'ada')
>>> problems_table([{"kind": "edited", "batch": 1, "count": 1, "ids": ["e1"], "message": "m"}]).row(0)
('edited', 1, 1, 'e1', 'm', './?period=all&event=e1')
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import polars as pl
import sqlalchemy as sa
import streamlit as st

from audit_analytics import integrity
from audit_analytics.errors import StoreError
from audit_analytics.filters import Filter
from audit_analytics.textsafe import md_escape, plain
from audit_analytics.view import View, explorer_link

if TYPE_CHECKING:
    from audit_analytics.engines.store import Store

__all__ = [
    "CHECKPOINT_COMMANDS",
    "Shown",
    "chain_head",
    "draw_head",
    "draw_verification",
    "last_recorded",
    "problems_table",
    "verify_and_record",
]

CHECKPOINT_COMMANDS = (
    "audit-analytics integrity checkpoint --append FILE",
    "audit-analytics integrity verify --checkpoint FILE",
)
SHOWN_IDS = 5  # ids per problem in the table (the count is always exact)
OPENABLE = ("edited", "inserted")  # problems whose events are still in the table to be opened
CHANGED_BEHIND = ("edited", "inserted", "deleted")  # events changed behind the package's back


@dataclass(frozen=True, slots=True)
class Shown:
    """One verification as the page shows it."""

    ok: bool
    summary: str
    problems: tuple[Mapping[str, Any], ...]
    notes: tuple[str, ...]
    checkpoints: int
    time: datetime | None
    actor: str
    via: str
    recorded: bool = True
    record_error: str = ""
    just_run: bool = False


def _shown(
    params: Mapping[str, Any],
    *,
    time: datetime | None,
    actor: str,
    recorded: bool = True,
    just_run: bool = False,
) -> Shown:
    problems = params.get("problems") or []
    notes = params.get("notes") or []
    return Shown(
        ok=bool(params.get("ok")) and not problems,
        summary=str(params.get("summary") or ""),
        problems=tuple(p for p in problems if isinstance(p, Mapping)),
        notes=tuple(str(n) for n in notes),
        checkpoints=int(params.get("checkpoints") or 0),
        time=time,
        actor=actor,
        via=str(params.get("via") or ""),
        recorded=recorded,
        just_run=just_run,
    )


@contextmanager
def _reading(store: Store) -> Iterator[None]:
    """The database's own errors as StoreError (the page shows those with a retry)."""
    try:
        yield
    except sa.exc.SQLAlchemyError as exc:
        raise StoreError(
            f"could not read the hash chain from {store.safe_url} ({type(exc).__name__})"
        ) from exc


def chain_head(store: Store) -> integrity.Head:
    """:func:`audit_analytics.integrity.head`, raising StoreError when the database fails."""
    with _reading(store):
        return integrity.head(store)


def last_recorded(store: Store, *, now: datetime | None = None) -> Shown | None:
    """The newest verification the package recorded
    (:func:`audit_analytics.integrity.last_verification`), or None."""
    with _reading(store):
        found = integrity.last_verification(store, now=now)
    if found is None:
        return None
    return _shown(found, time=found["time"], actor=str(found["actor"] or ""))


def verify_and_record(store: Store, *, actor: str, via: str = "app") -> Shown:
    """Verify the chain over everything stored, record the verification, and return it to
    show (with every id the verification kept, not only those recorded). A failure to record
    is returned, not raised: the result still stands. Raises StoreError when the database
    cannot be read."""
    from audit_analytics.errors import PolicyError
    from audit_analytics.io.retention import policy_archive

    try:
        archive = policy_archive()  # archived events read back from it, as the command line does
    except PolicyError:  # the Retention page names the file's problem
        archive = None
    with _reading(store):
        report = integrity.verify(store, archive=archive)
    time = datetime.now(UTC)
    try:
        integrity.record_verification(store, report, actor=actor, via=via)
    except StoreError as exc:
        shown = _shown(
            {**report.as_dict(), "via": via}, time=time, actor=actor, recorded=False, just_run=True
        )
        return replace(shown, record_error=str(exc))
    return _shown({**report.as_dict(), "via": via}, time=time, actor=actor, just_run=True)


def changed_behind(shown: Shown) -> bool:
    """Whether a verification found events edited, inserted or deleted behind the package's
    back: what the app holds in memory (and its snapshot) still has them as they were, so it
    must read the table again before anyone opens them."""
    return any(p.get("kind") in CHANGED_BEHIND for p in shown.problems)


def _first_ids(ids: Sequence[object], count: int) -> str:
    shown = ", ".join(plain(i) for i in ids[:SHOWN_IDS])
    more = max(count, len(ids)) - min(len(ids), SHOWN_IDS)
    return shown + (f" and {more:,} more" if more > 0 else "")


def _open_link(kind: object, ids: Sequence[object]) -> str | None:
    """The Audit Log's deep link to the first event of an edited or inserted problem (a
    deleted event has nothing left to open)."""
    if kind not in OPENABLE or not ids:
        return None
    return explorer_link(View(filter=Filter(period="all"), event=str(ids[0])))


def problems_table(problems: Iterable[Mapping[str, Any]]) -> pl.DataFrame:
    """One row per problem: kind, batch, how many events, the first ids, the message (all
    plain text: control and bidi characters made visible), and a link that opens the first
    event in the Audit Log when it is still stored.

    >>> problems_table([{"kind": "edited", "batch": 1, "ids": ["evt-1"], "message": "m"}])["Open"][0]
    './?period=all&event=evt-1'
    """
    rows = []
    for p in problems:
        ids = p.get("ids") or []
        count = int(p.get("count") or len(ids))
        batch = p.get("batch")
        rows.append(
            {
                "Kind": plain(p.get("kind")),
                "Batch": int(batch) if batch is not None else None,
                "Events": count,
                "First ids": _first_ids(list(ids), count),
                "Message": plain(p.get("message")),
                "Open": _open_link(p.get("kind"), ids),
            }
        )
    schema = {
        "Kind": pl.String,
        "Batch": pl.Int64,
        "Events": pl.Int64,
        "First ids": pl.String,
        "Message": pl.String,
        "Open": pl.String,
    }
    return pl.DataFrame(rows, schema=schema, orient="row")


# ---------------------------------------------------------------------------------------
# drawing

ROW_LINE_CHARS = 28  # characters per line of a "medium" (200 px) column
ROW_MAX_LINES = 8  # a longer message is cut; a click on the cell shows it whole


def _row_height(table: pl.DataFrame) -> int:
    longest = max(
        (len(text) for text in table["Message"].to_list() + table["First ids"].to_list()), default=0
    )
    lines = min(max(-(-longest // ROW_LINE_CHARS), 1), ROW_MAX_LINES)
    return 35 if lines == 1 else 16 + 20 * lines


def draw_head(head: integrity.Head) -> None:
    """The chain's head: the latest batch, the events stored, when, and its digest in full
    (to compare with a checkpoint's)."""
    c1, c2 = st.columns(2)
    c1.metric("Latest batch", f"{head.batch:,}")
    c2.metric("Events stored", f"{head.events:,}")
    if not head.batch:
        st.caption("Nothing stored yet: the chain is empty.")
        return
    st.caption(f"Digest of the latest batch (SHA-256), stored {md_escape(_stored_at_text(head.stored_at))}:")
    st.code(head.digest, language=None, wrap_lines=True)


def _stored_at_text(stored_at: str | None) -> str:
    if not stored_at:
        return "at an unknown time"
    try:
        when = datetime.fromisoformat(stored_at)
    except ValueError:
        return plain(stored_at)
    return f"{when.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"


def draw_verification(shown: Shown) -> None:
    """A verification: pass or fail, when and by whom, the problems table, the notes."""
    if shown.ok:
        st.success(md_escape(shown.summary), icon=":material/verified:")
    else:
        st.error(md_escape(shown.summary), icon=":material/gpp_bad:")
    when = f"{shown.time:%Y-%m-%d %H:%M:%S} UTC" if shown.time else "at an unknown time"
    via = f" (via {md_escape(shown.via)})" if shown.via else ""
    own = (
        "; its own record is a new batch after the ones it checked"
        if shown.just_run and shown.recorded
        else ""
    )
    st.caption(f"Run {md_escape(when)} by **{md_escape(shown.actor or 'unknown')}**{via}{own}.")
    if not shown.recorded:
        st.warning(
            "This verification could not be recorded in the audit log: " + md_escape(shown.record_error),
            icon=":material/database:",
        )
    if shown.problems:
        table = problems_table(shown.problems)
        st.dataframe(
            table,
            hide_index=True,
            width="stretch",
            key="integrity_problems",
            # tall enough rows that the longest message wraps whole in its column, at any width
            row_height=_row_height(table),
            column_order=["Kind", "Batch", "Message", "Events", "First ids", "Open"],
            column_config={
                "Kind": st.column_config.TextColumn("Kind", width="small"),
                "Batch": st.column_config.NumberColumn("Batch", width="small", format="%d"),
                "Message": st.column_config.TextColumn("Message", width="medium"),
                "Events": st.column_config.NumberColumn("Events", width="small", format="%d"),
                "First ids": st.column_config.TextColumn("First ids", width="medium"),
                "Open": st.column_config.LinkColumn(
                    "Open",
                    display_text="open first event",
                    width="small",
                    help="The first event of this problem in the Audit Log (an edited or inserted "
                    "event is still stored; a deleted one is not)",
                ),
            },
        )
    for note in shown.notes:
        st.caption(md_escape(note[:1].upper() + note[1:]) + ".")
    if not shown.checkpoints:
        st.caption(
            "So keep a checkpoint outside the database after each import, and verify against it "
            "from the command line:"
        )
        st.code("\n".join(CHECKPOINT_COMMANDS), language="bash")

"""Retention (admins only): the policy, the dry run, a run, the last runs, the next expiries."""

import os
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import streamlit as st

from audit_analytics.errors import PolicyError
from audit_analytics.io.retention import (
    MAX_DAYS,
    Policy,
    apply,
    last_runs,
    load_policy,
    plan,
    policy_file,
    save_policy,
)
from audit_analytics.schema import CATEGORY_CODES
from audit_analytics.textsafe import md_escape
from audit_analytics.ui import auth
from audit_analytics.ui.common import load_shared_or_stop, wrapping_columns
from audit_analytics.ui.data import get_store, invalidate

_SAVED = "retention_saved"  # the last save's message, shown after the page is read afresh
_FORM_OPEN = "retention_form_open"  # the policy form was saved or needs mending: kept open
_RUN_OPEN = "retention_run_open"  # the run's box was ticked: kept open


def _archive_problem(text: str) -> str | None:
    """Why an archive directory cannot serve, or None: it is created as the policy is saved,
    so a place that cannot hold it is said then, not at the first run."""
    if not text:
        return None
    path = Path(text).expanduser().absolute()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return f"the archive directory {path} cannot be created: {exc.strerror or exc}"
    if not os.access(path, os.W_OK | os.X_OK):
        return f"the archive directory {path} cannot be written"
    return None


def _archive_shown(text: str | None) -> str:
    """The archive directory as the policy names it, and where that is when it is relative
    (the app's working folder is nowhere else on the page)."""
    if not text:
        return "none — expired events would be lost"
    path = Path(text).expanduser()
    return text if path.is_absolute() else f"{text} ({path.absolute()})"


def _policy_form(shown: Policy, *, mend: bool = False) -> None:
    """The policy's form, filled with ``shown``; ``mend``: the file on disk cannot be used, so
    saving replaces it even with these same values."""
    saved_message = st.session_state.pop(_SAVED, None)
    if mend or saved_message is not None:
        st.session_state[_FORM_OPEN] = True
    # open from then on: an expander whose `expanded` changes between runs closes again
    with st.expander(
        "Change the policy", icon=":material/edit:", expanded=st.session_state.get(_FORM_OPEN, False)
    ):
        if saved_message:
            st.success(saved_message, icon=":material/check_circle:")
        with st.form("policy_form"):
            g1, g2 = st.columns(2)
            security, operational = (
                box.number_input(
                    label,
                    min_value=1,
                    max_value=MAX_DAYS,
                    help=f"1 to {MAX_DAYS:,} days (100 years)",
                    value=int(shown.group_days[group]),
                    key=f"pol_{group}",
                )
                for box, label, group in (
                    (g1, "Security-sensitive (days)", "security"),
                    (g2, "Operational (days)", "operational"),
                )
            )
            overrides = st.data_editor(
                pl.DataFrame(
                    {"category": list(shown.overrides), "days": [int(v) for v in shown.overrides.values()]},
                    schema={"category": pl.String, "days": pl.Int64},
                ),
                num_rows="dynamic",
                key="pol_overrides",
                column_config={
                    "category": st.column_config.SelectboxColumn("Category", options=list(CATEGORY_CODES)),
                    "days": st.column_config.NumberColumn("Days", min_value=1, max_value=MAX_DAYS, step=1),
                },
            )
            archive_dir = st.text_input("Archive directory", value=shown.archive or "", key="pol_archive")
            holds = st.multiselect(
                "Legal hold: categories",
                CATEGORY_CODES,
                default=list(shown.hold_categories),
                key="pol_hold_types",
            )
            actors = st.text_area(
                "Legal hold: actors (one per line)", value="\n".join(shown.hold_actors), key="pol_hold_actors"
            )
            if st.form_submit_button("Save the policy"):
                try:
                    rows = [
                        r
                        for r in pl.DataFrame(overrides).iter_rows(named=True)
                        if r["category"] and r["days"]
                    ]
                    new = Policy(
                        group_days={"security": int(security), "operational": int(operational)},
                        overrides={r["category"]: int(r["days"]) for r in rows},
                        archive=archive_dir.strip() or None,
                        hold_categories=tuple(holds),
                        hold_actors=tuple(actors.splitlines()),
                    )
                except ValueError as exc:
                    st.error(f"Not saved: {md_escape(str(exc))}", icon=":material/error:")
                else:
                    problem = _archive_problem(new.archive or "")
                    if problem:
                        st.error(f"Not saved: {md_escape(problem)}.", icon=":material/error:")
                    elif new == shown and not mend:
                        st.info("The policy is unchanged: nothing to save.", icon=":material/info:")
                    else:
                        saved = save_policy(where, new, actor=user.name, store=store, via="app")
                        invalidate()
                        st.session_state[_SAVED] = f"Saved to {saved}."
                        st.rerun()


_CONFIRMED = "retention_confirmed"  # (events, policy, the dry run's instant) the admin ticked
_OUTCOME = "retention_outcome"  # the last run's message, shown after the page is read afresh


def _confirm(due: int, shown: Policy, at: datetime) -> None:
    """The tick confirms the dry run as it was shown: its count, policy and instant."""
    st.session_state[_RUN_OPEN] = True
    if st.session_state.get("retention_confirm"):
        st.session_state[_CONFIRMED] = (due, shown, at)
    else:
        st.session_state.pop(_CONFIRMED, None)


def _run(actor: str) -> None:
    """Run what was confirmed, and nothing else: the policy as it was shown and the events due
    at the dry run's instant, which must still be the number ticked (a run deleted 14,705
    events after 1,081 were confirmed, the policy changed in another tab meanwhile). The tick
    is cleared either way, and the page is read afresh."""
    state = st.session_state
    confirmed = state.pop(_CONFIRMED, None)
    state["retention_confirm"] = False
    if confirmed is None:  # a second click while the first ran: that one ran what was confirmed
        return
    due, shown, at = confirmed
    try:
        if load_policy() != shown:
            raise PolicyError(
                "the policy changed since the dry run you confirmed; nothing was archived or deleted: "
                "look at the dry run and confirm again"
            )
        run = apply(get_store(), shown, actor=actor, now=at, via="app", expected=due)
    except PolicyError as exc:  # refused before anything was done
        state[_OUTCOME] = ("error", f"The run did not happen: {md_escape(str(exc))}")
    except (OSError, ValueError) as exc:  # recorded as a failed run
        state[_OUTCOME] = ("error", f"The run failed and nothing was deleted: {md_escape(str(exc))}")
    else:
        state[_OUTCOME] = (
            "success",
            f"Run {run.run_id}: archived {run.archived:,}, deleted {run.deleted:,} events.",
        )
    invalidate()


user = auth.require("audit.admin")
load_shared_or_stop()  # the database's message and retry when it cannot be reached
store = get_store()
where = policy_file()
try:
    policy = load_policy()
except PolicyError as exc:
    # a file edited by hand (or saved by an older version) the page cannot use: say so, and
    # offer the form on the defaults, so saving it mends the file (the page crashed before)
    st.title("Retention")
    st.error(
        f"The policy file cannot be used: {md_escape(str(exc))}. Nothing is planned or run until it is mended: "
        "fix it by hand, or save a policy below (it replaces the file).",
        icon=":material/error:",
    )
    _policy_form(Policy(), mend=True)
    st.stop()

st.title("Retention")
st.caption(
    f"Policy: {where if where else 'the defaults (no policy file yet)'} · "
    f"archive: {_archive_shown(policy.archive)}"
)

now = datetime.now(UTC)
table = plan(store, policy, now=now)
upcoming = table.filter(pl.col("next_expiry").is_not_null())["next_expiry"]
c1, c2, c3 = wrapping_columns("retention-figures", 3, min_width=300)  # a date and time each
c1.metric("Past retention now", f"{int(table['to_delete'].sum()):,}")
c2.metric("Kept by legal hold", f"{int(table['held'].sum()):,}")
c3.metric("Next expiry (UTC)", f"{upcoming.min():%Y-%m-%d %H:%M}" if upcoming.len() else "—")

st.subheader("Dry run")
st.dataframe(
    table.select(
        pl.col("category").alias("Category"),
        pl.col("group").alias("Group"),
        pl.col("days").alias("Days kept"),
        pl.col("events").alias("Events"),
        pl.col("held").alias("Held"),
        pl.col("to_archive").alias("To archive"),
        pl.col("to_delete").alias("To delete"),
        pl.col("oldest_kept").dt.strftime("%Y-%m-%d %H:%M").alias("Oldest kept (UTC)"),
        pl.col("next_expiry").dt.strftime("%Y-%m-%d %H:%M").alias("Next expiry (UTC)"),
    ),
    hide_index=True,
    width="stretch",
    key="retention_plan",
)

due = int(table["to_delete"].sum())
# open from the first tick on: with `expanded` following the run's message, the tick after a
# refused run closed it, and Run with it
with st.expander(
    "Run retention now", icon=":material/auto_delete:", expanded=st.session_state.get(_RUN_OPEN, False)
):
    st.caption(
        "Archives the events past retention, reads the archive back to check it, then deletes them "
        "from the database in one transaction. It runs on the dry run above as it was when you "
        "ticked: if more events are due when you click Run, nothing happens and it says so."
    )
    outcome = st.session_state.pop(_OUTCOME, None)
    if outcome is not None:
        kind, text = outcome
        if kind == "success":
            st.success(text, icon=":material/check_circle:")
        else:
            st.error(text, icon=":material/error:")
    if policy.archive is None:
        st.caption(
            "Set an archive directory in the policy to run retention here: without one the events would be lost."
        )
    sure = st.checkbox(
        f"Archive and delete {due:,} event{'' if due == 1 else 's'}",
        key="retention_confirm",
        disabled=due == 0,
        on_change=_confirm,
        args=(due, policy, now),
    )
    st.button(
        "Run",
        key="retention_run",
        type="primary",
        disabled=not sure or policy.archive is None or _CONFIRMED not in st.session_state,
        on_click=_run,
        args=(user.name,),
    )

_policy_form(policy)

st.subheader("Last runs and policy changes")
runs = last_runs(store)
if runs.height == 0:
    st.caption("No retention run or policy change recorded yet.")
else:
    st.dataframe(
        runs.select(
            pl.col("time").dt.strftime("%Y-%m-%d %H:%M:%S").alias("Time (UTC)"),
            pl.col("actor").alias("Actor"),
            pl.col("action").alias("Action"),
            pl.col("result").cast(pl.String).alias("Result"),
            pl.col("description").alias("Description"),
            pl.col("error").fill_null("").alias("Error"),
        ),
        hide_index=True,
        width="stretch",
        key="retention_runs",
    )

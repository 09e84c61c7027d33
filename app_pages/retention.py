"""Retention (admins only): the policy, the dry run, a run, the last runs, the next expiries."""

from datetime import UTC, datetime

import polars as pl
import streamlit as st

from audit_analytics.io.retention import Policy, apply, last_runs, load_policy, plan, policy_file, save_policy
from audit_analytics.schema import CATEGORY_CODES
from audit_analytics.ui import auth
from audit_analytics.ui.common import load_shared_or_stop, wrapping_columns
from audit_analytics.ui.data import get_store, invalidate

user = auth.require("audit.admin")
load_shared_or_stop()  # the database's message and retry when it cannot be reached
store = get_store()
policy = load_policy()
where = policy_file()

st.title("Retention")
st.caption(
    f"Policy: {where if where else 'the defaults (no policy file yet)'} · "
    f"archive: {policy.archive or 'none — expired events would be lost'}"
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
with st.expander("Run retention now", icon=":material/auto_delete:"):
    st.caption(
        "Archives the events past retention, reads the archive back to check it, then deletes them "
        "from the database in one transaction."
    )
    sure = st.checkbox(f"Archive and delete {due:,} events", key="retention_confirm", disabled=due == 0)
    if st.button("Run", key="retention_run", type="primary", disabled=not sure or policy.archive is None):
        try:
            run = apply(store, policy, actor=user.name, now=now, via="app")
        except (OSError, ValueError) as exc:
            st.error(f"The run failed and nothing was deleted: {exc}", icon=":material/error:")
        else:
            st.success(f"Run {run.run_id}: archived {run.archived:,}, deleted {run.deleted:,} events.")
        invalidate()

with st.expander("Change the policy", icon=":material/edit:"):
    with st.form("policy_form"):
        g1, g2 = st.columns(2)
        security = g1.number_input(
            "Security-sensitive (days)",
            min_value=1,
            value=int(policy.group_days["security"]),
            key="pol_security",
        )
        operational = g2.number_input(
            "Operational (days)",
            min_value=1,
            value=int(policy.group_days["operational"]),
            key="pol_operational",
        )
        overrides = st.data_editor(
            pl.DataFrame(
                {"category": list(policy.overrides), "days": [int(v) for v in policy.overrides.values()]},
                schema={"category": pl.String, "days": pl.Int64},
            ),
            num_rows="dynamic",
            key="pol_overrides",
            column_config={
                "category": st.column_config.SelectboxColumn("Category", options=list(CATEGORY_CODES)),
                "days": st.column_config.NumberColumn("Days", min_value=1, step=1),
            },
        )
        archive_dir = st.text_input("Archive directory", value=policy.archive or "", key="pol_archive")
        holds = st.multiselect(
            "Legal hold: categories",
            CATEGORY_CODES,
            default=list(policy.hold_categories),
            key="pol_hold_types",
        )
        actors = st.text_area(
            "Legal hold: actors (one per line)", value="\n".join(policy.hold_actors), key="pol_hold_actors"
        )
        if st.form_submit_button("Save the policy"):
            try:
                rows = [
                    r for r in pl.DataFrame(overrides).iter_rows(named=True) if r["category"] and r["days"]
                ]
                new = Policy(
                    group_days={"security": int(security), "operational": int(operational)},
                    overrides={r["category"]: int(r["days"]) for r in rows},
                    archive=archive_dir.strip() or None,
                    hold_categories=tuple(holds),
                    hold_actors=tuple(actors.splitlines()),
                )
            except ValueError as exc:
                st.error(str(exc))
            else:
                if new != policy:
                    saved = save_policy(where, new, actor=user.name, store=store, via="app")
                    invalidate()
                    st.success(f"Saved to {saved}.")
                    st.rerun()

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

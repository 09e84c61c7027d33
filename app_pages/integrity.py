"""Integrity (admins only): the hash chain's head, the last verification, and a run now."""

import streamlit as st

from audit_analytics.errors import StoreError
from audit_analytics.textsafe import md_escape
from audit_analytics.ui import auth
from audit_analytics.ui import integrity as ui
from audit_analytics.ui.common import load_shared_or_stop
from audit_analytics.ui.data import get_frame, get_store, invalidate

user = auth.require("audit.admin")  # first: Streamlit may serve this file without app.py
load_shared_or_stop()  # the database's message and retry when it cannot be reached
store = get_store()

st.title("Integrity")
st.caption(
    "Every write to the audit log is a batch in a hash chain: each batch's digest covers its "
    "events and the batch before it. A verification recomputes the chain over every stored event "
    "and names any event edited, deleted or inserted behind the package's back."
)
head_box = st.container()  # drawn after a run, which itself adds a batch to the chain

try:
    ran = None
    if st.button("Verify now", key="integrity_verify", type="primary", icon=":material/verified:"):
        with st.spinner("Verifying every stored event against the chain…"):
            ran = ui.verify_and_record(store, actor=user.name, via="app")
        if ui.changed_behind(ran):  # what the app holds is the events as they were: read them again
            with st.spinner("Events were changed behind the app's back: reading the log again…"):
                get_frame(force=True)
        else:
            invalidate()  # the run's own event is in the log now
    head = ui.chain_head(store)
    shown = ran or ui.last_recorded(store)
except StoreError as exc:
    st.error(f"The audit database cannot be reached: {md_escape(str(exc))}", icon=":material/database:")
    st.button("Retry", type="primary", key="retry_store")
    st.stop()

with head_box:
    st.subheader("Chain head")
    ui.draw_head(head)

st.subheader("This verification" if ran else "Last verification")
if shown is None:
    st.caption("No verification recorded yet: Verify now runs the first.")
else:
    ui.draw_verification(shown)

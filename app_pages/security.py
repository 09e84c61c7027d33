"""Security review: login failures by IP, account and hour, then every detection with its
thresholds, then a backtest of the rules per day.

Thin: the shared filter panel (same URL state as the Audit Log) gives the period and users;
the page reviews login failures itself and runs the detections on every event of the period.
Every bar, cell and table row opens the Audit Log on the events behind it.
"""

import streamlit as st

from audit_analytics.engines.sql import TooLargeForMemory
from audit_analytics.errors import DetectionError
from audit_analytics.textsafe import md_escape
from audit_analytics.ui import auth, charts
from audit_analytics.ui import security_widgets as sw
from audit_analytics.ui.common import load_shared_or_stop
from audit_analytics.ui.data import actors_of
from audit_analytics.ui.state import (
    current_view,
    filter_panel,
    open_explorer,
    set_view,
    stop_on_link_search_error,
)

user = auth.require("audit.read")  # first: Streamlit may serve this file without app.py
shared = load_shared_or_stop()
view = current_view(defaults=sw.DEFAULT_VIEW)
set_view(view)
# Type and Result are not applied here, and the sidebar says so (disabled, with a note): the
# failure charts are the failed logins by definition, and the detections need every type and
# result (a success after failures, a stuck operation, a role change), so narrowing them would
# hide findings and read as "all clear"
filter_panel(actors_of(shared), type_and_result=False, archive=False)

st.title("Security review")
stop_on_link_search_error()  # a link whose search does not parse reviews nothing
try:
    review = sw.review(shared, view)
except DetectionError as exc:  # the organisation's security policy file cannot be used
    st.error(f"The security policy cannot be used: {md_escape(str(exc))}", icon=":material/error:")
    st.stop()
try:
    count = review.count
except TooLargeForMemory as exc:
    st.warning(md_escape(str(exc)), icon=":material/memory:")
    st.stop()
ignored = (
    " · the sidebar's Type and Result are not applied here"
    if view.filter.types or view.filter.results
    else ""
)
st.caption(
    md_escape(review.filter.describe(count=count))
    + f"{ignored} · login failures, then every detection on these events · "
    f"times in {review.tz} · click a bar or cell to open its events in the Audit Log"
)
charts.no_download_note()
headline = st.container()
if count == 0:
    st.info("No events in this period. Widen the period in the sidebar.", icon=":material/search_off:")
    st.stop()

sw.restore_thresholds()  # as the user left them on an earlier visit
sw.detect_ahead(review)  # the detections run while the failure charts are drawn

st.subheader("Login failures")
top = st.segmented_control("Top", sw.TOP_CHOICES, default=sw.DEFAULT_TOP, key="sec_top") or sw.DEFAULT_TOP
sw.failure_charts(review, open_explorer=open_explorer, top=top)

st.subheader("Detections")
results = {rule: sw.detection(review, rule) for rule in sw.RULE_ORDER}
sw.headline(review, successes_after_failures=results["success_after_failures"].height, container=headline)

st.subheader("Backtest")
st.caption(
    "How many findings each rule raises per day with the thresholds above: tune a rule before trusting it."
)
sw.backtest_chart(review, results)

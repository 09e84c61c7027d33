"""Audit Analytics: the Streamlit entry point (page config, sign-in, navigation)."""

import streamlit as st

from audit_analytics.ui import auth

st.set_page_config(page_title="Audit Analytics", page_icon="assets/icon.png", layout="wide")

user = auth.gate()  # no page, and no event, before sign-in
pages = [
    st.Page(
        "pages/explorer.py", title="Audit Log", icon=":material/list_alt:", url_path="audit-log", default=True
    ),
    st.Page("pages/activity.py", title="Activity", icon=":material/monitoring:", url_path="activity"),
    st.Page("pages/security.py", title="Security review", icon=":material/shield:", url_path="security"),
]
if auth.has_permission(user, "audit.admin"):
    pages.append(
        st.Page("pages/retention.py", title="Retention", icon=":material/auto_delete:", url_path="retention")
    )
st.navigation(pages).run()

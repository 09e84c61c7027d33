"""Audit Analytics: the Streamlit entry point (page config, sign-in, navigation)."""

import streamlit as st

from audit_analytics.ui import auth, data

# The Audit Log's address (the default page: Streamlit shows it at the root). A comment, not a
# string below the name: Streamlit's "magic" writes a bare string on the page.
LOG_PATH = "audit-log"

st.set_page_config(page_title="Audit Analytics", page_icon="assets/icon.png", layout="wide")

# every run, the sign-in screen's too: the background warm-up waits while one runs
with data.page_run() as run:
    signed_in = auth.current_user()
    if signed_in is None:
        # while the sign-in screen is shown, load the events: the first page after it is then quick
        data.preload()
    pages = [
        st.Page(
            "app_pages/explorer.py",
            title="Audit Log",
            icon=":material/list_alt:",
            url_path=LOG_PATH,
            default=True,
        ),
        st.Page("app_pages/activity.py", title="Activity", icon=":material/monitoring:", url_path="activity"),
        st.Page(
            "app_pages/security.py", title="Security review", icon=":material/shield:", url_path="security"
        ),
    ]
    # always registered, so /retention and /integrity before sign-in show the sign-in form (not "Page
    # not found") and open after it; listed for admins only, and each page itself requires audit.admin
    admin = auth.has_permission(signed_in, "audit.admin")
    pages += [
        st.Page(path, title=title, icon=icon, url_path=url, visibility="visible" if admin else "hidden")
        for path, title, icon, url in (
            ("app_pages/retention.py", "Retention", ":material/auto_delete:", "retention"),
            ("app_pages/integrity.py", "Integrity", ":material/verified:", "integrity"),
        )
    ]
    # registered before the sign-in screen, so a link to /security?… survives signing in
    navigation = st.navigation(pages, position="sidebar" if signed_in else "hidden")
    # the run log's name for the run: the address's path, the default page's own (its address is
    # the root), or the sign-in screen
    run.page = (navigation.url_path or LOG_PATH) if signed_in else "sign-in"
    user = auth.gate()  # no page, and no event, before sign-in
    navigation.run()

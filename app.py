"""Audit Analytics: the Streamlit entry point (page config and navigation)."""

import streamlit as st

st.set_page_config(page_title="Audit Analytics", page_icon=":material/policy:", layout="wide")

pages = [
    st.Page(
        "pages/explorer.py", title="Audit Log", icon=":material/list_alt:", url_path="audit-log", default=True
    ),
]
st.navigation(pages).run()

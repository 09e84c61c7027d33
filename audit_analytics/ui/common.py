"""Bits every page shares: the signed-in actor, the store-unavailable message."""

from __future__ import annotations

from typing import TYPE_CHECKING

import streamlit as st

from audit_analytics.errors import StoreError
from audit_analytics.textsafe import md_escape

if TYPE_CHECKING:
    from audit_analytics.engines.shared import SharedData


def current_actor() -> str:
    """Who is using the app (the signed-in user; ``local-user`` when sign-in is off)."""
    try:
        if st.user.is_logged_in:
            return str(st.user.get("email") or st.user.get("name") or "signed-in user")
    except Exception:  # st.user is unavailable when no identity provider is configured
        pass
    actor: str = st.session_state.get("actor", "local-user")
    return actor


def load_shared_or_stop(*, interim: bool = False) -> SharedData:
    """The shared frame, or a clear message with a retry when the database is unreachable.
    ``interim``: while the first load runs, the database answers meanwhile
    (:func:`audit_analytics.ui.data.get_frame`), and a caption says so."""
    from audit_analytics.ui.data import get_frame

    try:
        shared = get_frame(interim=interim)
    except StoreError as exc:
        st.error(f"The audit database cannot be reached: {md_escape(str(exc))}", icon=":material/database:")
        st.button("Retry", type="primary", key="retry_store")
        st.stop()
    if shared.stale and not shared.index.holds_copy:
        # pushdown reads every view from the database: there is no last copy to show
        st.error(
            "The audit database is not answering, and in pushdown mode every view is read from it: "
            f"{md_escape(shared.stale_reason)}",
            icon=":material/database:",
        )
        st.button("Retry", type="primary", key="retry_store")
        st.stop()
    if shared.is_interim:
        st.caption(
            "The events are still loading into memory: meanwhile this page reads the database "
            "directly, and the user list shows no emails yet.",
        )
    if shared.stale:
        st.warning(
            "The audit database is not answering; showing the data as last loaded, which may be stale "
            f"(loaded {shared.loaded_at:%Y-%m-%d %H:%M:%S} UTC). It reloads by itself when the database is back.",
            icon=":material/cloud_off:",
        )
    return shared

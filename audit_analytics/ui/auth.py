"""Sign-in gate and permission checks for the app.

``app.py`` calls :func:`gate` before ``st.navigation``: it returns the signed-in user, or
draws the sign-in screen and stops the run. Every page also starts with :func:`require`:
a page must never rely on being reached through ``app.py``. (The pages live in
``app_pages/``, not ``pages/``: Streamlit serves a ``pages/`` folder by itself, its v1
multipage mode, until some session has called ``st.navigation`` — bypassing the gate.)

With an ``[auth]`` section in ``.streamlit/secrets.toml`` the screen offers single sign-on
through ``st.login`` (roles from the accounts file's ``[oidc]`` table); local accounts from
the accounts file always work. Sign-ins, failures, locks and sign-outs are recorded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import streamlit as st

from audit_analytics import accounts
from audit_analytics.accounts import (
    NO_ADMIN_PERMISSION,
    NO_READ_PERMISSION,
    Permission,
    User,
    export_permission,
    has_permission,
)
from audit_analytics.errors import StoreError
from audit_analytics.textsafe import md_escape

if TYPE_CHECKING:
    from audit_analytics.engines.store import Store

__all__ = ["gate", "require", "current_user", "has_permission", "export_permission", "oidc_configured"]

_USER_KEY = "aa_user"  # the signed-in local account's name
_OIDC_RECORDED = "aa_oidc_recorded"  # the OIDC identity whose sign-in was recorded

MESSAGES: dict[str, str] = {
    "audit.read": NO_READ_PERMISSION,
    "audit.export": accounts.NO_EXPORT_PERMISSION,
    "audit.admin": NO_ADMIN_PERMISSION,
}


def oidc_configured() -> bool:
    """Whether the deployment configured an identity provider (``[auth]`` in secrets.toml)."""
    try:
        return "auth" in st.secrets
    except Exception:  # no secrets file at all
        return False


def _oidc_logged_in() -> bool:
    try:
        return bool(st.user.is_logged_in)
    except Exception:  # no identity provider: st.user has no is_logged_in
        return False


def _ip() -> str | None:
    try:
        return st.context.ip_address
    except Exception:
        return None


def _store() -> Store:
    from audit_analytics.ui.data import get_store

    return get_store()


def _recorded() -> None:
    from audit_analytics.ui.data import invalidate

    invalidate()


def current_user() -> User | None:
    """The signed-in user, as the accounts file has them now; draws nothing."""
    name = st.session_state.get(_USER_KEY)
    if name:
        user = accounts.current_local_user(None, name)
        if user is None:  # the account was removed: signed out
            st.session_state.pop(_USER_KEY, None)
        return user
    if oidc_configured() and _oidc_logged_in():
        user = accounts.oidc_user(accounts.load_accounts(), st.user.to_dict())
        if st.session_state.get(_OIDC_RECORDED) != user.name:
            accounts.record_oidc_sign_in(_store(), user, ip=_ip())
            st.session_state[_OIDC_RECORDED] = user.name
            _recorded()
        return user
    return None


def _sign_in_screen() -> None:
    st.title("Audit Analytics")
    st.caption("Sign in to read the audit log.")
    if oidc_configured():
        if st.button("Sign in with single sign-on", key="sign_in_sso", type="primary"):
            st.login()
        st.caption("Or with a local account:")
    # not cleared on submit: a failed attempt keeps the user name (the callback clears the
    # password only), so the user types the password again, not both
    with st.form("sign_in", clear_on_submit=False, enter_to_submit=True):
        st.text_input("User name", key="signin_user", autocomplete="username")
        st.text_input("Password", key="signin_password", type="password", autocomplete="current-password")
        st.form_submit_button(
            "Sign in", type="secondary" if oidc_configured() else "primary", on_click=_submit_sign_in
        )
    problem = st.session_state.get(_SIGN_IN_ERROR)
    if problem:
        message, icon = problem
        st.error(message, icon=icon)
    from audit_analytics.ui.common import warm_up_browser

    warm_up_browser()


_SIGN_IN_ERROR = "aa_sign_in_error"  # (message, icon) of the last failed attempt


def _submit_sign_in() -> None:
    """The form's callback (it runs before the script, so it may clear the password box)."""
    state = st.session_state
    name = state.get("signin_user") or ""
    password = state.get("signin_password") or ""
    state["signin_password"] = ""  # never kept, whatever the outcome
    state[_SIGN_IN_ERROR] = None
    try:
        outcome = accounts.sign_in(None, _store(), name, password, ip=_ip())
    except StoreError:
        # fail closed: a sign-in that cannot be recorded does not happen
        state[_SIGN_IN_ERROR] = (
            "Sign-in is unavailable: the audit database cannot be reached.",
            ":material/database:",
        )
        return
    _recorded()
    if outcome.user is not None:
        state[_USER_KEY] = outcome.user.name
        state["actor"] = outcome.user.name  # who exports are recorded as
        state.pop("signin_user", None)
        return
    state[_SIGN_IN_ERROR] = (outcome.message, ":material/lock:")


def _no_permission(user: User, permission: Permission) -> None:
    st.title("Audit Analytics")
    st.warning(MESSAGES[permission], icon=":material/block:")
    st.caption(f"Signed in as {md_escape(user.name)} (role: {user.role or 'none'}).")


def _account_box(user: User) -> None:
    with st.sidebar:
        st.caption(f"Signed in as **{md_escape(user.name)}** · {user.role or 'no role'}")
        if st.button("Sign out", key="sign_out", icon=":material/logout:"):
            _sign_out(user)


def _sign_out(user: User) -> None:
    try:
        accounts.record_sign_out(_store(), user, ip=_ip())
        _recorded()
    except StoreError:
        pass  # signing out must always work
    for key in (_USER_KEY, _OIDC_RECORDED, "actor"):
        st.session_state.pop(key, None)
    if user.source == "oidc":
        st.logout()
    st.rerun()


def gate() -> User:
    """The signed-in user with ``audit.read``; otherwise draw the sign-in screen or the
    no-permission message, and stop the run. Draws the sidebar's account box."""
    user = current_user()
    if user is None:
        _sign_in_screen()
        st.stop()
    _account_box(user)
    if not has_permission(user, "audit.read"):
        _no_permission(user, "audit.read")
        st.stop()
    if user.source == "local":
        st.session_state["actor"] = user.name
    return user


def require(permission: Permission = "audit.read") -> User:
    """For the top of every page: the signed-in user holding ``permission``; otherwise the
    sign-in screen or the no-permission message, and the run stops."""
    user = current_user()
    if user is None:
        _sign_in_screen()
        st.stop()
    if not has_permission(user, permission):
        _no_permission(user, permission)
        st.stop()
    return user

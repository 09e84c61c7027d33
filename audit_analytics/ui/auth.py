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

import json
from datetime import UTC, datetime
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
from audit_analytics.ui import session_cookie
from audit_analytics.ui.common import hidden_container, warm_up_browser
from audit_analytics.ui.session_cookie import COOKIE

if TYPE_CHECKING:
    from audit_analytics.engines.store import Store

__all__ = [
    "gate",
    "require",
    "current_user",
    "has_permission",
    "export_permission",
    "oidc_configured",
    "client_ip",
]

_USER_KEY = "aa_user"  # the signed-in local account's name
_OIDC_RECORDED = "aa_oidc_recorded"  # the OIDC identity whose sign-in was recorded
_TOKEN_KEY = "aa_session_token"  # this session's sign-in token (local accounts), as in the cookie
_FORGET_COOKIE = "aa_forget_cookie"  # signed out: the token whose cookie the sign-in screen removes
_COOKIE_UNTIL = "aa_cookie_until"  # (token, expiry) the browser's cookie was last given (or had)
_SIGNED_IN_HERE = "aa_signed_in_here"  # this run follows the form's sign-in: its cookie replaces any
_COOKIE_CODE = "aa_cookie_code"  # the one-time code of the latest cookie change this session asked for

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


def client_ip() -> str | None:
    """The address a sign-in or sign-out came from, as the server saw the connection: behind
    a reverse proxy the server (uvicorn) has already put the client of ``X-Forwarded-For`` in
    place of a trusted proxy's address (trusted: ``FORWARDED_ALLOW_IPS``, loopback by
    default; docs/deploy.md). Streamlit's public ``st.context.ip_address`` hides a loopback
    address ("local development"); a sign-in from this machine is recorded as one."""
    try:
        from streamlit.runtime.context import _get_client_context

        client = _get_client_context()
        if client is not None and client.remote_ip:
            return str(client.remote_ip)
    except Exception:  # a Streamlit without it: the public value, loopback hidden
        pass
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


def _cookie() -> str | None:
    try:
        value = st.context.cookies.get(COOKIE)
    except Exception:  # no browser (bare mode)
        return None
    return value if isinstance(value, str) else None  # AppTest's context holds no real cookies


def _resumed() -> str | None:
    """The local account a new session (a reload, a new tab) resumes from the browser's cookie."""
    tokens = accounts.session_tokens()
    token = _cookie()
    name = tokens.resolve(token) if tokens else None
    if name:
        st.session_state[_USER_KEY], st.session_state[_TOKEN_KEY] = name, token
    return name


def current_user() -> User | None:
    """The signed-in user, as the accounts file has them now; draws nothing."""
    state = st.session_state
    name = state.get(_USER_KEY)
    token = state.get(_TOKEN_KEY)
    if name and token:
        tokens = accounts.session_tokens()
        if tokens is not None and tokens.resolve(token) != name:  # signed out in another tab, or expired
            name = None
            for key in (_USER_KEY, _TOKEN_KEY, "actor"):
                state.pop(key, None)
            state[_SIGN_IN_ERROR] = (SIGN_IN_ENDED, ":material/logout:")
    if not name:
        name = _resumed()
    if name:
        user = accounts.current_local_user(None, name)
        if user is None:  # the account was removed: signed out
            state.pop(_USER_KEY, None)
        return user
    if oidc_configured() and _oidc_logged_in():
        user = accounts.oidc_user(accounts.load_accounts(), st.user.to_dict())
        if st.session_state.get(_OIDC_RECORDED) != user.name:
            accounts.record_oidc_sign_in(_store(), user, ip=client_ip())
            st.session_state[_OIDC_RECORDED] = user.name
            _recorded()
        return user
    return None


def _sign_in_screen() -> None:
    st.html(_HIDE_SIDEBAR)  # the app's own fixed style
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
    forget = st.session_state.pop(_FORGET_COOKIE, None)
    tokens = accounts.session_tokens()
    if forget and tokens is not None:
        _change_cookie(tokens.hand_over(forget, "remove"))
    warm_up_browser()


_SIGN_IN_ERROR = "aa_sign_in_error"  # (message, icon) of the last failed attempt
SIGN_IN_ENDED = "Your sign-in has ended (signed out in another tab, or it expired). Sign in again."


def _submit_sign_in() -> None:
    """The form's callback (it runs before the script, so it may clear the password box)."""
    state = st.session_state
    name = state.get("signin_user") or ""
    password = state.get("signin_password") or ""
    state["signin_password"] = ""  # never kept, whatever the outcome
    state[_SIGN_IN_ERROR] = None
    try:
        outcome = accounts.sign_in(None, _store(), name, password, ip=client_ip())
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
        state.pop(_FORGET_COOKIE, None)
        tokens = accounts.session_tokens()
        if tokens is not None:
            state[_TOKEN_KEY] = tokens.issue(outcome.user.name)
            state[_SIGNED_IN_HERE] = True
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
        _keep_cookie()


def _keep_cookie() -> None:
    """Renew this session's sign-in (a use) and keep the browser's cookie in step with it.

    The run that follows the form's sign-in asks for the cookie (``set``), then the run that
    renews the sign-in (at most once a minute: the cookie's own expiry is then too early) asks
    for it again (``keep``). Each later run repeats the latest request's element unchanged, so
    a run cut short by a click before its element reached the browser is made good by the next
    one, and the browser does not run the same script twice. A session that resumed from the
    cookie asks for nothing between renewals."""
    state = st.session_state
    token = state.get(_TOKEN_KEY)
    tokens = accounts.session_tokens()
    if not token or tokens is None:
        return
    now = datetime.now(UTC)
    if (state.get(_COOKIE_UNTIL) or (None,))[0] != token:  # the expiry the cookie has as this session starts
        state[_COOKIE_UNTIL] = (token, tokens.expiry(token, now=now))
    until = tokens.renew(token, now=now)
    if until is None:
        return
    replace = bool(state.pop(_SIGNED_IN_HERE, False))
    if replace or until != state[_COOKIE_UNTIL][1]:
        state[_COOKIE_UNTIL] = (token, until)
        state[_COOKIE_CODE] = tokens.hand_over(token, "set" if replace else "keep", now=now)
    code = state.get(_COOKIE_CODE)
    if code:
        _change_cookie(code)


def _change_cookie(code: str) -> None:
    """Have the browser exchange a one-time code (:meth:`SessionTokens.hand_over`) for the
    cookie change it stands for: a script in the page posts it to the server's cookie route,
    whose answer sets the cookie ``HttpOnly`` (``ui/session_cookie.py``). The page never holds
    the token. Nothing without the route (a bare ``streamlit run``): the sign-in then lasts as
    long as the tab."""
    if not session_cookie.installed():
        return
    if not code.replace("-", "").replace("_", "").isalnum():
        raise ValueError("a cookie code is URL-safe base64")
    with hidden_container("aa-cookie"):
        st.html(
            f"<script>fetch({json.dumps(session_cookie.url())}, "
            f'{{method: "POST", body: "{code}", credentials: "same-origin", cache: "no-store"}});</script>',
            unsafe_allow_javascript=True,
        )


# the sign-in screen has no sidebar: after Sign out (or an ended sign-in) the open sidebar
# stayed, empty, 300 px wide
_HIDE_SIDEBAR = (
    "<style>[data-testid=stSidebar], [data-testid=stExpandSidebarButton] "
    "{ display: none !important; }</style>"
)


def _sign_out(user: User) -> None:
    try:
        accounts.record_sign_out(_store(), user, ip=client_ip())
        _recorded()
    except StoreError:
        pass  # signing out must always work
    tokens = accounts.session_tokens()
    token = st.session_state.get(_TOKEN_KEY)
    if tokens is not None:
        tokens.revoke(token)
    for key in (_USER_KEY, _OIDC_RECORDED, _TOKEN_KEY, _COOKIE_UNTIL, _COOKIE_CODE, "actor"):
        st.session_state.pop(key, None)
    if token:  # the sign-in screen removes the cookie if it is still this sign-in's
        st.session_state[_FORGET_COOKIE] = token
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

"""The browser's sign-in cookie, written by the server so no script can read it (``HttpOnly``).

Streamlit sets no cookie of its own, and a script in the page can only write a cookie that
scripts can read: a script injected into the page could then send the sign-in token elsewhere
and sign in as the user from another browser for as long as the token lives. Instead the page
carries a one-time code (:meth:`audit_analytics.accounts.SessionTokens.hand_over`); its script
posts the code to :data:`PATH` on the app's own server, whose answer sets, renews or removes
the cookie (:meth:`~audit_analytics.accounts.SessionTokens.redeem`). The token itself never
appears in the page; the websocket's handshake still carries the cookie, so a reload or a new
tab resumes the sign-in as before (``st.context.cookies``).

The route is added by :func:`install`, which ``audit_analytics.ui.serve`` (``./run app``) calls
before Streamlit builds its server. Under a bare ``streamlit run app.py`` there is no route
(:func:`installed` is False): signing in works, but a reload asks for the password again.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from audit_analytics import accounts

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import BaseRoute

__all__ = ["COOKIE", "PATH", "install", "installed", "url", "route"]

COOKIE = "aa_session"  # the cookie holding the token: a reload or a new tab resumes the sign-in
PATH = "aa-session"  # the route's path under the app's base path (not one Streamlit reserves)
_CODE = re.compile(r"[A-Za-z0-9_-]{16,64}")  # secrets.token_urlsafe
_INSTALLED: list[bool] = []


def url() -> str:
    """The route's address from any page of the app (``server.baseUrlPath`` included)."""
    from streamlit import config

    base = str(config.get_option("server.baseUrlPath") or "").strip("/")
    return f"/{base}/{PATH}" if base else f"/{PATH}"


async def _exchange(request: Request) -> Response:
    """``POST`` a code: the answer sets the cookie to what the code stands for (204 either way,
    so an answer tells nothing about a guessed code)."""
    from starlette.responses import Response

    code = (await request.body())[:128].decode("ascii", "replace").strip()
    tokens = accounts.session_tokens()
    change = tokens.redeem(code, request.cookies.get(COOKIE)) if tokens and _CODE.fullmatch(code) else None
    response = Response(status_code=204, headers={"Cache-Control": "no-store"})
    if change is not None:
        secure = request.url.scheme == "https" or request.headers.get("x-forwarded-proto", "") == "https"
        response.set_cookie(
            COOKIE,
            change.value,
            max_age=change.max_age,
            path="/",
            secure=secure,
            httponly=True,
            samesite="strict",
        )
    return response


def route(base_url: str | None = None) -> BaseRoute:
    """The Starlette route of :data:`PATH` (``POST`` only) under ``base_url``."""
    from starlette.routing import Route

    base = (base_url or "").strip("/")
    return Route(f"/{base}/{PATH}" if base else f"/{PATH}", _exchange, methods=["POST"])


def install() -> None:
    """Add the route to the server Streamlit is about to build (once per process).

    Streamlit 1.67 builds its routes in ``create_streamlit_routes``; the public way to add one
    (``st.App(routes=…)``) would make a launcher module, not ``app.py``, the script Streamlit
    runs, and move where it finds ``.streamlit/``. The route goes first: Streamlit's own end
    with a catch-all for its static files. ``tests/test_session_cookie.py`` fails if a
    Streamlit release builds its routes otherwise."""
    if _INSTALLED:
        return
    from streamlit import config
    from streamlit.web.server.starlette import starlette_app

    streamlit_routes = starlette_app.create_streamlit_routes

    def with_session_route(runtime: Any) -> list[BaseRoute]:
        return [route(config.get_option("server.baseUrlPath")), *streamlit_routes(runtime)]

    starlette_app.create_streamlit_routes = with_session_route
    _INSTALLED.append(True)


def installed() -> bool:
    """Whether this process's server answers :data:`PATH` (started through ``ui.serve``)."""
    return bool(_INSTALLED)

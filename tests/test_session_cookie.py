"""The sign-in cookie is written by the server's route (``ui/session_cookie.py``), ``HttpOnly``,
in exchange for a one-time code; the page never holds the token.

The route is driven here as the ASGI app it is (what each code's answer sets), then in the real
server ``./run app`` starts (that Streamlit still builds its routes where ``install`` adds one).
The browser's side (the cookie a reload resumes, two users in one browser) is
``test_browser_session.py``."""

from __future__ import annotations

import asyncio
import urllib.request

import browser_support
import pytest

from audit_analytics import accounts
from audit_analytics.ui import session_cookie


def _post(
    body: str, *, cookie: str | None = None, scheme: str = "http", base: str = ""
) -> tuple[int, list[str]]:
    """The route's status and ``Set-Cookie`` headers for ``body`` posted with ``cookie``."""
    route = session_cookie.route(base)
    headers = [(b"content-type", b"text/plain")]
    if cookie is not None:
        headers.append((b"cookie", f"{session_cookie.COOKIE}={cookie}".encode()))
    scope = {
        "type": "http",
        "method": "POST",
        "scheme": scheme,
        "path": route.path,  # type: ignore[attr-defined]
        "raw_path": route.path.encode(),  # type: ignore[attr-defined]
        "query_string": b"",
        "headers": headers,
        "server": ("127.0.0.1", 8501),
        "client": ("127.0.0.1", 50000),
        "root_path": "",
    }
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": body.encode(), "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    asyncio.run(route.handle(scope, receive, send))  # type: ignore[arg-type]
    start = next(m for m in sent if m["type"] == "http.response.start")
    cookies = [value.decode() for name, value in start["headers"] if name == b"set-cookie"]
    return start["status"], cookies


@pytest.fixture
def tokens() -> accounts.SessionTokens:
    held = accounts.session_tokens()
    assert held is not None  # AUDIT_SESSION_HOURS is unset in the tests: 12 hours
    return held


def test_a_sign_in_code_sets_an_http_only_cookie_once(tokens):
    token = tokens.issue("alice")
    code = tokens.hand_over(token, "set")
    status, cookies = _post(code, cookie="another-sign-in")  # a sign-in replaces any cookie
    assert status == 204
    assert len(cookies) == 1, cookies
    parts = [part.strip() for part in cookies[0].split(";")]
    assert parts[0] == f"aa_session={token}"
    assert {"HttpOnly", "Path=/", "SameSite=strict"} <= set(parts), parts
    assert "Secure" not in parts  # over plain HTTP the browser would drop a Secure cookie
    age = next(int(part.split("=")[1]) for part in parts if part.startswith("Max-Age="))
    assert 12 * 3600 - 5 <= age <= 12 * 3600
    # the code is spent: posting it again (from anywhere) changes nothing
    assert _post(code) == (204, [])


def test_over_https_the_cookie_is_secure(tokens):
    code = tokens.hand_over(tokens.issue("alice"), "set")
    _, cookies = _post(code, scheme="https")
    assert "Secure" in [part.strip() for part in cookies[0].split(";")]


def test_a_renewal_does_not_take_the_cookie_from_another_sign_in(tokens):
    alice, viewer = tokens.issue("alice"), tokens.issue("viewer")
    assert _post(tokens.hand_over(alice, "keep"), cookie=viewer) == (204, [])
    _, cookies = _post(tokens.hand_over(alice, "keep"), cookie=alice)
    assert cookies and cookies[0].startswith(f"aa_session={alice};")
    _, cookies = _post(tokens.hand_over(alice, "keep"))  # the browser lost it: written again
    assert cookies and cookies[0].startswith(f"aa_session={alice};")


def test_a_sign_out_removes_only_its_own_cookie(tokens):
    alice, viewer = tokens.issue("alice"), tokens.issue("viewer")
    tokens.revoke(alice)
    assert _post(tokens.hand_over(alice, "remove"), cookie=viewer) == (204, [])
    _, cookies = _post(tokens.hand_over(alice, "remove"), cookie=alice)
    assert len(cookies) == 1 and cookies[0].startswith("aa_session=") and "Max-Age=0" in cookies[0]
    # a revoked sign-in's code sets nothing
    assert _post(tokens.hand_over(alice, "set")) == (204, [])


@pytest.mark.parametrize("body", ["", "x", "A" * 200, "' OR 1=1 --", "é" * 20])
def test_an_unknown_or_malformed_code_sets_nothing(body):
    assert _post(body) == (204, [])


def test_the_route_follows_the_base_path(tokens):
    assert session_cookie.route("/audit/").path == "/audit/aa-session"  # type: ignore[attr-defined]
    code = tokens.hand_over(tokens.issue("alice"), "set")
    assert _post(code, base="audit")[1]


def test_the_app_server_answers_the_route(tmp_path):
    """``./run app``'s server (``ui.serve``) has the route: a code it does not know is answered
    204 with no cookie (a server without the route answers 405 or Streamlit's page)."""
    url = browser_support.demo_database(tmp_path / "audit.db", n_events=1_000)
    with browser_support.running_app(url) as server:
        request = urllib.request.Request(server.url("aa-session"), data=b"A" * 32, method="POST")
        with urllib.request.urlopen(request, timeout=30) as answer:
            assert answer.status == 204
            assert answer.headers.get("Set-Cookie") is None
            assert answer.read() == b""

"""Who may use the tool: roles, permissions, the local accounts file, sign-in and lockout.

Roles grow by one permission each: ``viewer`` reads the audit log (``audit.read``),
``auditor`` also exports (``audit.export``), ``admin`` also runs retention and changes
settings (``audit.admin``).

Identities come from a local accounts file (TOML; passwords as argon2id hashes, never in
clear) or from an OIDC provider through ``st.login``; an OIDC identity's role comes from the
same file's ``[oidc]`` table (``roles`` by email, else ``default_role``, else no access).

Every account change and every sign-in, failure, lock and sign-out is written to the store
as an event (``user`` and ``auth`` types), so the tool's own use is in the log it shows.
Sign-in failures are counted from those recorded events: after :data:`MAX_FAILURES` in
:data:`FAILURE_WINDOW` a name is locked for :data:`LOCK_DURATION`.

Examples
--------
>>> from audit_analytics.engines.store import open_store
>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "users.toml"
>>> store = open_store("sqlite://")
>>> add_user(path, "alice", "auditor", "correct horse battery", actor="root", store=store).role
'auditor'
>>> outcome = sign_in(path, store, "alice", "correct horse battery")
>>> outcome.user.name, has_permission(outcome.user, "audit.export")
('alice', True)
>>> export_permission(User("bob", "viewer"))[0]
False
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import math
import os
import re
import secrets
import threading
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Literal, cast

import polars as pl
import tomli_w
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from audit_analytics.errors import AccountError
from audit_analytics.fileio import atomic_write
from audit_analytics.filters import Filter
from audit_analytics.schema import canonical_ip

if TYPE_CHECKING:
    from audit_analytics.engines.store import Store

__all__ = [
    "ROLES",
    "PERMISSIONS",
    "Role",
    "Permission",
    "User",
    "Accounts",
    "AccountError",
    "SignInOutcome",
    "NO_READ_PERMISSION",
    "has_permission",
    "export_permission",
    "default_users_file",
    "load_accounts",
    "add_user",
    "remove_user",
    "set_role",
    "map_oidc",
    "init_demo_admin",
    "sign_in",
    "record_sign_out",
    "record_oidc_sign_in",
    "lock_status",
    "oidc_user",
    "SessionTokens",
    "CookieChange",
    "session_tokens",
    "session_lifetime",
]

Role = Literal["viewer", "auditor", "admin"]
Permission = Literal["audit.read", "audit.export", "audit.admin"]

ROLES: tuple[str, ...] = ("viewer", "auditor", "admin")
PERMISSIONS: Mapping[str, frozenset[str]] = {
    "viewer": frozenset({"audit.read"}),
    "auditor": frozenset({"audit.read", "audit.export"}),
    "admin": frozenset({"audit.read", "audit.export", "audit.admin"}),
}

NO_READ_PERMISSION = "You don't have permission to view the audit log. Please request permission from your organization manager."
NO_EXPORT_PERMISSION = (
    "Exporting needs the auditor or admin role. Please request it from your organization manager."
)
NO_ADMIN_PERMISSION = (
    "You don't have permission to manage retention, integrity checks and settings (the admin role). "
    "Please request permission from your organization manager."
)

DEFAULT_USERS_FILE = "data/users.toml"
MAX_FAILURES = 5
FAILURE_WINDOW = timedelta(minutes=15)
LOCK_DURATION = timedelta(minutes=15)
APP_TARGET = "audit-analytics"
"""``target`` of the app's own auth events (separates them from the platform's sign-ins)."""
SIGN_IN_FAILED = "wrong user name or password"

_NAME = re.compile(r"^[a-z0-9][a-z0-9._@+-]{0,63}$")
# argon2id, the library's defaults (RFC 9106 low-memory profile)
_hasher = PasswordHasher()
# verified against for unknown names, so both answers take the same time; a literal made with
# the defaults above (hashing it at import cost every process start 0.4 s; a test checks that
# it still has the defaults' parameters, so its verification costs what a real one does)
DUMMY_HASH = (
    "$argon2id$v=19$m=65536,t=3,p=4$rWsmw9Iz8bf5j/sLlpAu8g$wLyyVouN6DzHQetZlhjP5vGVAZHNfrZN0FELOhTN7AA"
)


# ---------------------------------------------------------------------------------------
# users and permissions


@dataclass(frozen=True, slots=True)
class User:
    """A signed-in identity. ``role`` is None for an OIDC identity that maps to no role."""

    name: str
    role: str | None
    source: Literal["local", "oidc"] = "local"
    email: str | None = None

    @property
    def permissions(self) -> frozenset[str]:
        return PERMISSIONS.get(self.role or "", frozenset())

    def can(self, permission: Permission) -> bool:
        return permission in self.permissions


def has_permission(user: User | None, permission: Permission) -> bool:
    """Whether ``user`` (None: nobody signed in) holds ``permission``.

    >>> has_permission(User("a", "viewer"), "audit.read"), has_permission(None, "audit.read")
    (True, False)
    """
    return user is not None and user.can(permission)


def export_permission(user: User | None) -> tuple[bool, str]:
    """Whether ``user`` may export, and why not (``""`` when allowed): for a disabled button.

    >>> export_permission(User("a", "auditor"))
    (True, '')
    """
    if has_permission(user, "audit.export"):
        return True, ""
    return False, NO_EXPORT_PERMISSION


def _check_role(role: str) -> str:
    if role not in ROLES:
        raise AccountError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
    return role


def _check_name(name: str) -> str:
    norm = name.strip().lower()
    if not _NAME.match(norm):
        raise AccountError(
            f"{name!r} is not a valid user name: 1-64 of a-z 0-9 . _ @ + -, starting with a letter or digit"
        )
    return norm


# ---------------------------------------------------------------------------------------
# the accounts file


def default_users_file() -> Path:
    """``AUDIT_USERS_FILE`` when set, else ``data/users.toml`` (beside the default database)."""
    return Path(os.environ.get("AUDIT_USERS_FILE") or DEFAULT_USERS_FILE)


@dataclass
class Account:
    name: str
    role: str
    password_hash: str
    created: str = ""
    changed: str = ""

    def __repr__(self) -> str:  # never show the hash, even in a traceback
        return f"Account(name={self.name!r}, role={self.role!r})"


@dataclass
class Accounts:
    """The accounts file's content: local users and the OIDC role mapping."""

    users: dict[str, Account] = field(default_factory=dict)
    oidc_roles: dict[str, str] = field(default_factory=dict)
    oidc_default_role: str | None = None

    def oidc_role(self, email: str | None, name: str | None = None) -> str | None:
        for key in (email, name):
            if key and key.lower() in self.oidc_roles:
                return self.oidc_roles[key.lower()]
        return self.oidc_default_role


def load_accounts(path: Path | str | None = None) -> Accounts:
    """Read the accounts file (a missing file is an empty one)."""
    path = Path(path) if path else default_users_file()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return Accounts()
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise AccountError(f"{path}: not a readable accounts file ({exc})") from None
    accounts = Accounts()
    for name, entry in (data.get("users") or {}).items():
        if not isinstance(entry, dict) or entry.get("role") not in ROLES or not entry.get("password_hash"):
            raise AccountError(f"{path}: user {name!r} needs a role ({', '.join(ROLES)}) and a password_hash")
        accounts.users[name] = Account(
            name=name,
            role=entry["role"],
            password_hash=entry["password_hash"],
            created=str(entry.get("created", "")),
            changed=str(entry.get("changed", "")),
        )
    oidc = data.get("oidc") or {}
    default = oidc.get("default_role") or None
    if default is not None and default not in ROLES:
        raise AccountError(f"{path}: [oidc] default_role {default!r} is not one of {', '.join(ROLES)}")
    accounts.oidc_default_role = default
    for key, role in (oidc.get("roles") or {}).items():
        if role not in ROLES:
            raise AccountError(f"{path}: [oidc.roles] {key!r} = {role!r} is not one of {', '.join(ROLES)}")
        accounts.oidc_roles[key.lower()] = role
    return accounts


_HEADER = """\
# Audit Analytics accounts. Managed with `audit-analytics users ...`.
# Passwords are argon2id hashes; a clear password never belongs here.
# [oidc] default_role: the role of an OIDC identity found in no mapping; empty means no access.
# [oidc.roles]: "email" = "role".

"""


def _render(accounts: Accounts) -> str:
    """The accounts file's text. Written by ``tomli_w``, which escapes whatever a name or an
    identity holds (quotes, backslashes, control characters, DEL), so the file always loads.

    >>> text = _render(Accounts(oidc_roles={'a"\\x7f@x': "viewer"}))
    >>> load = tomllib.loads(text)
    >>> load["oidc"]["roles"] == {'a"\\x7f@x': "viewer"}, load["oidc"]["default_role"]
    (True, '')
    """
    users = {}
    for name in sorted(accounts.users):
        a = accounts.users[name]
        entry = {"role": a.role, "password_hash": a.password_hash}
        if a.created:
            entry["created"] = a.created
        if a.changed:
            entry["changed"] = a.changed
        users[name] = entry
    document: dict[str, object] = {"users": users} if users else {}
    document["oidc"] = {
        "default_role": accounts.oidc_default_role or "",
        "roles": {key: accounts.oidc_roles[key] for key in sorted(accounts.oidc_roles)},
    }
    return _HEADER + tomli_w.dumps(document)


@contextlib.contextmanager
def _editing(path: Path | str | None) -> Iterator[Accounts]:
    """Read-modify-write under an exclusive lock; the new file replaces the old atomically
    and is readable by its owner only."""
    path = Path(path) if path else default_users_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    lock_path = path.with_name(path.name + ".lock")
    with open(lock_path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        accounts = load_accounts(path)
        yield accounts
        atomic_write(path, _render(accounts), mode=0o600)


def _check_identity(identity: str) -> str:
    """An OIDC identity as the file keys it (trimmed, lower case). Any character is kept
    (the file escapes it); only text that cannot be UTF-8 (undecodable bytes from the
    command line) is refused, before the file is touched."""
    key = identity.strip().lower()
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:
        raise AccountError(
            f"the OIDC identity {identity!r} holds bytes that are not UTF-8 text; "
            "the accounts file was not changed"
        ) from None
    return key


def _now_text() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _check_password(password: str) -> str:
    if len(password) < 8:
        raise AccountError("the password must have at least 8 characters")
    return password


def add_user(
    path: Path | str | None,
    name: str,
    role: str,
    password: str,
    *,
    actor: str,
    store: Store,
    via: str = "cli",
) -> User:
    """Create a local account and record it (``user``/``create``). Raises if it exists."""
    name, role = _check_name(name), _check_role(role)
    with _editing(path) as accounts:
        if name in accounts.users:  # said before anything about the password
            raise AccountError(f"user {name!r} already exists (use set-role to change the role)")
        hashed = _hasher.hash(_check_password(password))
        accounts.users[name] = Account(name, role, hashed, created=_now_text())
    store.record(
        actor=actor,
        type="user",
        action="create",
        target=name,
        params={"via": via, "source": "local"},
        after={"role": role},
        description=f"{actor} created the Audit Analytics account {name} ({role})",
    )
    _record_role(store, actor, name, None, role, via=via)
    return User(name, role)


def remove_user(path: Path | str | None, name: str, *, actor: str, store: Store, via: str = "cli") -> None:
    """Delete a local account and record it (``user``/``delete``)."""
    name = name.strip().lower()
    with _editing(path) as accounts:
        account = accounts.users.pop(name, None)
        if account is None:
            raise AccountError(f"no user {name!r}")
    store.record(
        actor=actor,
        type="user",
        action="delete",
        target=name,
        params={"via": via, "source": "local"},
        before={"role": account.role},
        description=f"{actor} removed the Audit Analytics account {name}",
    )
    _record_role(store, actor, name, account.role, None, via=via)


def _record_role(
    store: Store,
    actor: str,
    name: str,
    old: str | None,
    new: str | None,
    *,
    via: str,
    source: str = "local",
    text: str | None = None,
) -> None:
    """A role given or taken (``user``/``role_change``, with before/after): what the search's
    ``type:permission`` and the Permission changes review read. An account created as admin
    was only a ``user``/``create``, invisible to both; so was an admin's account removed."""
    if text is None and old is None:
        text = f"{actor} gave the new account {name} the role {new}"
    elif text is None and new is None:
        text = f"{actor} took the role {old} from {name} (the account was removed)"
    elif text is None:
        text = f"{actor} changed the role of {name} from {old} to {new}"
    store.record(
        actor=actor,
        type="user",
        action="role_change",
        target=name,
        params={"via": via, "source": source},
        before={"role": old},
        after={"role": new},
        description=text,
    )


def set_role(
    path: Path | str | None, name: str, role: str, *, actor: str, store: Store, via: str = "cli"
) -> tuple[str, str]:
    """Change a local account's role; recorded as ``user``/``role_change`` with before/after.
    Returns (old, new)."""
    name, role = name.strip().lower(), _check_role(role)
    with _editing(path) as accounts:
        account = accounts.users.get(name)
        if account is None:
            raise AccountError(f"no user {name!r}")
        old = account.role
        account.role = role
        account.changed = _now_text()
    _record_role(store, actor, name, old, role, via=via)
    return old, role


def map_oidc(
    path: Path | str | None,
    identity: str | None,
    role: str | None,
    *,
    actor: str,
    store: Store,
    via: str = "cli",
) -> tuple[str | None, str | None]:
    """Set (``role``) or clear (``None``) the role of an OIDC identity (an email), or with
    ``identity=None`` the default role of unmapped identities. Recorded as ``role_change``."""
    if role is not None:
        _check_role(role)
    key = _check_identity(identity) if identity else None
    with _editing(path) as accounts:
        if key is None:
            old, accounts.oidc_default_role = accounts.oidc_default_role, role
        else:
            old = accounts.oidc_roles.pop(key, None)
            if role is not None:
                accounts.oidc_roles[key] = role
    target = key or "oidc:default"
    _record_role(
        store,
        actor,
        target,
        old,
        role,
        via=via,
        source="oidc",
        text=f"{actor} changed the OIDC role of {target} from {old or 'none'} to {role or 'none'}",
    )
    return old, role


def init_demo_admin(path: Path | str | None, *, store: Store) -> str | None:
    """Create ``admin`` with a random password when the file holds no users; returns that
    password (for printing once) or None when there were users already."""
    password = secrets.token_urlsafe(15)
    hashed = _hasher.hash(password)
    with _editing(path) as accounts:
        if accounts.users:
            return None
        accounts.users["admin"] = Account("admin", "admin", hashed, created=_now_text())
    store.record(
        actor="audit-analytics",
        type="user",
        action="create",
        target="admin",
        params={"via": "init-demo-admin", "source": "local"},
        after={"role": "admin"},
        description="first run: created the demo admin account",
    )
    _record_role(store, "audit-analytics", "admin", None, "admin", via="init-demo-admin")
    return password


# ---------------------------------------------------------------------------------------
# sign-in, lockout, sign-out


@dataclass(frozen=True, slots=True)
class LockStatus:
    failures: int
    locked_until: datetime | None


@dataclass(frozen=True, slots=True)
class SignInOutcome:
    """A sign-in's result: the user, or a message safe to show (never says which part was wrong)."""

    user: User | None
    message: str = ""
    locked_until: datetime | None = None


def _app_auth_events(store: Store, name: str, now: datetime) -> pl.DataFrame:
    since = now - FAILURE_WINDOW - LOCK_DURATION
    frame = store.load(Filter(period="custom", start=since, types=("auth",), users=(name,)), now=now)
    # only the app's own records (the platform's sign-ins may use the same names)
    return frame.filter(
        pl.col("id").str.starts_with("aa-") & (pl.col("target") == APP_TARGET) & (pl.col("time") <= now)
    )


def lock_status(store: Store, name: str, *, now: datetime | None = None) -> LockStatus:
    """Failures counted towards a lock, and when the current lock ends (None: not locked)."""
    now = now or datetime.now(UTC)
    events = _app_auth_events(store, name.strip().lower(), now)
    locks = events.filter(pl.col("action") == "lock")["time"]
    # polars types Series.max() as any Python value; a Datetime column's is a datetime
    last_lock = cast("datetime | None", locks.max()) if locks.len() else None
    if last_lock is not None and last_lock + LOCK_DURATION > now:
        return LockStatus(0, last_lock + LOCK_DURATION)
    starts = [now - FAILURE_WINDOW]
    if last_lock is not None:
        starts.append(last_lock + LOCK_DURATION)
    successes = events.filter((pl.col("action") == "login") & (pl.col("result") == "done"))["time"]
    if successes.len():
        starts.append(cast(datetime, successes.max()))
    start = max(starts)
    failures = events.filter(
        (pl.col("action") == "login")
        & (pl.col("result") == "failed")
        & (pl.col("time") > start)
        & (pl.col("error") == SIGN_IN_FAILED)
    ).height
    return LockStatus(failures, None)


def _address(ip: str | None) -> tuple[str | None, dict[str, object]]:
    """The client address as the log stores addresses (:func:`schema.canonical_ip`, so
    ``ip:`` searches and the by-IP tables find it). What a proxy forwarded that is no address
    (``X-Forwarded-For: unknown``, or worse) is not stored as one: it is kept, as received,
    in the event's parameters.

    >>> _address("::ffff:192.0.2.9"), _address("unknown")
    (('192.0.2.9', {}), (None, {'ip_received': 'unknown'}))
    """
    if not ip:
        return None, {}
    try:
        return canonical_ip(ip.strip()), {}
    except ValueError:
        return None, {"ip_received": ip[:200]}


def _record_auth(
    store: Store,
    name: str,
    action: str,
    result: str,
    *,
    error: str | None = None,
    ip: str | None = None,
    params: dict[str, object] | None = None,
) -> None:
    address, received = _address(ip)
    store.record(
        actor=name,
        type="auth",
        action=action,
        target=APP_TARGET,
        result=result,
        ip=address,
        error=error,
        params={"via": "app"} | (params or {}) | received,
        description={
            ("login", "done"): f"{name} signed in to Audit Analytics",
            ("login", "failed"): f"sign-in to Audit Analytics as {name} failed",
            ("logout", "done"): f"{name} signed out of Audit Analytics",
            ("lock", "done"): f"Audit Analytics account {name} locked after {MAX_FAILURES} failed sign-ins",
        }.get((action, result), f"{name} {action}"),
    )


def sign_in(
    path: Path | str | None,
    store: Store,
    name: str,
    password: str,
    *,
    ip: str | None = None,
    now: datetime | None = None,
) -> SignInOutcome:
    """Check a local sign-in and record it: ``auth``/``login`` done or failed, and
    ``auth``/``lock`` at the :data:`MAX_FAILURES`-th failure within :data:`FAILURE_WINDOW`.

    An unknown name and a wrong password give the same message and take the same time.
    The password is never recorded, logged or put in a message.
    """
    name = (name or "").strip().lower()[:200]
    if not name or not password:
        return SignInOutcome(None, "Enter your user name and password.")
    now = now or datetime.now(UTC)
    status = lock_status(store, name, now=now)
    if status.locked_until is not None:
        until = f"{status.locked_until:%H:%M} UTC"
        _record_auth(store, name, "login", "failed", error=f"account locked until {until}", ip=ip)
        return SignInOutcome(
            None, _locked_message(status.locked_until, now), locked_until=status.locked_until
        )
    account = load_accounts(path).users.get(name)
    ok: bool  # argon2 types verify() as Literal[True] (a mismatch raises)
    try:
        ok = _hasher.verify(account.password_hash if account else DUMMY_HASH, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        ok = False
    if ok and account is not None:
        _record_auth(store, name, "login", "done", ip=ip, params={"role": account.role})
        return SignInOutcome(User(name, account.role))
    _record_auth(store, name, "login", "failed", error=SIGN_IN_FAILED, ip=ip)
    if status.failures + 1 >= MAX_FAILURES:
        _record_auth(
            store,
            name,
            "lock",
            "done",
            ip=ip,
            params={"failures": status.failures + 1, "minutes": int(LOCK_DURATION.total_seconds() // 60)},
        )
        return SignInOutcome(
            None, _locked_message(now + LOCK_DURATION, now), locked_until=now + LOCK_DURATION
        )
    return SignInOutcome(None, "Wrong user name or password.")


def _locked_message(until: datetime, now: datetime) -> str:
    """How long a lock lasts, in minutes from now (the same in every zone; "until 01:07 UTC"
    alone made a reader in Paris work out the hour), then the time in UTC.

    >>> _locked_message(datetime(2026, 1, 1, 1, 7, tzinfo=UTC), datetime(2026, 1, 1, 0, 52, 30, tzinfo=UTC))
    'Too many failed sign-ins: this account is locked for 15 more minutes (until 01:07 UTC).'
    """
    minutes = max(1, math.ceil((until - now).total_seconds() / 60))
    more = "1 more minute" if minutes == 1 else f"{minutes} more minutes"
    return f"Too many failed sign-ins: this account is locked for {more} (until {until:%H:%M} UTC)."


def current_local_user(path: Path | str | None, name: str) -> User | None:
    """A signed-in local user as the file has it now (a removed account signs out, a new role applies)."""
    account = load_accounts(path).users.get(name)
    return User(account.name, account.role) if account else None


def oidc_user(accounts: Accounts, claims: Mapping[str, object]) -> User:
    """An OIDC identity (``st.user``'s claims) as a User, its role from the accounts file."""
    email = str(claims.get("email") or "") or None
    name = str(claims.get("email") or claims.get("preferred_username") or claims.get("sub") or "oidc-user")
    role = accounts.oidc_role(email, str(claims.get("preferred_username") or "") or None)
    return User(name.lower(), role, source="oidc", email=email)


def record_oidc_sign_in(store: Store, user: User, *, ip: str | None = None) -> None:
    _record_auth(store, user.name, "login", "done", ip=ip, params={"role": user.role, "source": "oidc"})


def record_sign_out(store: Store, user: User, *, ip: str | None = None) -> None:
    _record_auth(store, user.name, "logout", "done", ip=ip, params={"source": user.source})


# ---------------------------------------------------------------------------------------
# a sign-in that outlives its browser tab

SESSION_HOURS = 12.0  # how long a sign-in lasts unused, across reloads and new tabs, by default
SESSION_MAX_HOURS = 168.0  # how long a sign-in lasts at most, however much it is used, by default
RENEW_EVERY = timedelta(minutes=1)  # a sign-in in use is renewed at most this often


def _hours(name: str, default: float, environ: Mapping[str, str] | None) -> timedelta | None:
    """An environment variable of hours (``default`` when unset; ``0`` or ``off``: None). A bad
    value is an error that names the variable, not a silent default."""
    text = (os.environ if environ is None else environ).get(name, "").strip().lower()
    if not text:
        return timedelta(hours=default)
    if text in ("off", "no", "false"):
        return None
    try:
        hours = float(text)
    except ValueError:
        raise AccountError(f"{name} must be a number of hours or 'off', not {text!r}") from None
    if not 0 <= hours <= 24 * 30:
        raise AccountError(f"{name} must be between 0 and 720 hours, not {text!r}")
    return timedelta(hours=hours) if hours else None


def session_lifetime(environ: Mapping[str, str] | None = None) -> timedelta | None:
    """How long a local sign-in is kept unused for reloads and new tabs (``AUDIT_SESSION_HOURS``,
    default 12; ``0`` or ``off``: not kept, a reload signs out)."""
    return _hours("AUDIT_SESSION_HOURS", SESSION_HOURS, environ)


def session_longest(environ: Mapping[str, str] | None = None) -> timedelta | None:
    """How long a local sign-in is kept at most, used or not (``AUDIT_SESSION_MAX_HOURS``,
    default 168, a week; ``0`` or ``off``: as long as it is used)."""
    return _hours("AUDIT_SESSION_MAX_HOURS", SESSION_MAX_HOURS, environ)


class SessionTokens:
    """The server's record of sign-ins a browser may resume: a random token per sign-in, kept
    here only as its SHA-256 (a copy of this table signs no one in), with its user and expiry.

    The browser keeps the token in a cookie, so a reload or a link opened in a new tab (each a
    new Streamlit session) finds the user signed in. Signing out revokes it; so does a restart
    of the server (the table lives in memory). The account is looked up afresh on every run,
    so a removed account or a changed role applies at once. A sign-in in use is renewed
    (:meth:`renew`): it ends ``lifetime`` after its last use, not after it began, and
    ``longest`` after it began at the latest (None: no such end).

    >>> tokens = SessionTokens(timedelta(hours=1))
    >>> now = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
    >>> token = tokens.issue("alice", now=now)
    >>> tokens.resolve(token, now=now + timedelta(minutes=59)), tokens.resolve(token + "x", now=now)
    ('alice', None)
    >>> tokens.resolve(token, now=now + timedelta(hours=1))  # expired
    >>> token = tokens.issue("alice", now=now); tokens.revoke(token); tokens.resolve(token, now=now)
    >>> token = tokens.issue("alice", now=now)
    >>> tokens.renew(token, now=now + timedelta(seconds=30)).time()  # renewed a minute at most
    datetime.time(10, 0)
    >>> tokens.renew(token, now=now + timedelta(minutes=20)).time()  # renewed: an hour from its use
    datetime.time(10, 20)
    """

    def __init__(self, lifetime: timedelta, *, longest: timedelta | None = None) -> None:
        self.lifetime = lifetime
        self.longest = longest
        # sha256 hex -> (user name, expiry, the latest expiry a renewal may give)
        self._held: dict[str, tuple[str, datetime, datetime | None]] = {}
        # one-time code -> (token, the cookie change it stands for, when it lapses unused)
        self._codes: dict[str, tuple[str, CookieAction, datetime]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _key(token: str) -> str:
        return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()

    def issue(self, name: str, *, now: datetime | None = None) -> str:
        now = now or datetime.now(UTC)
        token = secrets.token_urlsafe(32)
        with self._lock:
            # expired entries go as new ones come: the table holds live sign-ins only
            for key in [key for key, (_, until, _) in self._held.items() if until <= now]:
                del self._held[key]
            cap = now + self.longest if self.longest else None
            self._held[self._key(token)] = (name, self._until(now, cap), cap)
        return token

    def _until(self, now: datetime, cap: datetime | None) -> datetime:
        """A lifetime from ``now``, but not past ``cap``."""
        until = now + self.lifetime
        return min(until, cap) if cap else until

    def _live(self, token: str | None, now: datetime | None) -> tuple[str, datetime, datetime | None] | None:
        if not token:
            return None
        with self._lock:
            held = self._held.get(self._key(token))
        return held if held is not None and held[1] > (now or datetime.now(UTC)) else None

    def resolve(self, token: str | None, *, now: datetime | None = None) -> str | None:
        """The user a token signs in, or None (unknown, revoked or expired)."""
        held = self._live(token, now)
        return held[0] if held else None

    def expiry(self, token: str | None, *, now: datetime | None = None) -> datetime | None:
        """When a token's sign-in ends unless renewed, or None (unknown, revoked or expired)."""
        held = self._live(token, now)
        return held[1] if held else None

    def renew(self, token: str | None, *, now: datetime | None = None) -> datetime | None:
        """A use of the sign-in: its expiry, pushed to ``lifetime`` from now (at most once a
        minute, or per half lifetime if that is shorter: the browser's cookie is written again
        after a renewal); None if the token signs no one in."""
        if not token:
            return None
        now = now or datetime.now(UTC)
        key = self._key(token)
        with self._lock:
            held = self._held.get(key)
            if held is None or held[1] <= now:
                return None
            name, until, cap = held
            if until - now < self.lifetime - min(RENEW_EVERY, self.lifetime / 2):
                until = self._until(now, cap)
                self._held[key] = (name, until, cap)
        return until

    def revoke(self, token: str | None) -> None:
        if token:
            with self._lock:
                self._held.pop(self._key(token), None)

    def hand_over(self, token: str, change: CookieAction, *, now: datetime | None = None) -> str:
        """A one-time code for the browser's cookie to take ``change`` for ``token``: the page's
        script sends the code to the server's cookie route (``ui/session_cookie.py``), which
        answers with the cookie itself (``HttpOnly``). So the token never appears in the page
        and no script can read it from the cookie. A code is used once, and lapses unused after
        a lifetime (a page that never ran its script leaves nothing behind for long)."""
        now = now or datetime.now(UTC)
        code = secrets.token_urlsafe(24)
        with self._lock:
            for old in [old for old, (_, _, until) in self._codes.items() if until <= now]:
                del self._codes[old]
            self._codes[code] = (token, change, now + self.lifetime)
        return code

    def redeem(self, code: str, held: str | None, *, now: datetime | None = None) -> CookieChange | None:
        """The cookie change a code stands for, given the token the browser's cookie ``held``
        as it sent the code; None: leave the cookie as it is (an unknown, used or lapsed code, a
        sign-in that ended since, or a cookie that is another sign-in's).

        ``set`` (a sign-in through the form) replaces any cookie; ``keep`` (a renewal) writes
        it only where it is missing or holds the token already, so a tab signed in as one user
        does not take the browser's sign-in back from a user signed in later in another tab;
        ``remove`` (a sign-out) removes it only while it is still the token's.

        >>> tokens = SessionTokens(timedelta(hours=1))
        >>> now = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
        >>> token = tokens.issue("alice", now=now)
        >>> code = tokens.hand_over(token, "set", now=now)
        >>> tokens.redeem(code, None, now=now) == CookieChange(token, 3600)
        True
        >>> tokens.redeem(code, None, now=now)  # used once only
        >>> tokens.redeem(tokens.hand_over(token, "keep", now=now), "another", now=now)  # another's
        >>> tokens.redeem(tokens.hand_over(token, "remove", now=now), token, now=now)
        CookieChange(value='', max_age=0)
        """
        now = now or datetime.now(UTC)
        with self._lock:
            handed = self._codes.pop(code, None)
        if handed is None or handed[2] <= now:
            return None
        token, change, _ = handed
        if change == "remove":
            return CookieChange("", 0) if held == token else None
        if change == "keep" and held and held != token:
            return None
        until = self.expiry(token, now=now)
        return CookieChange(token, max(1, int((until - now).total_seconds()))) if until else None


CookieAction = Literal["set", "keep", "remove"]


@dataclass(frozen=True)
class CookieChange:
    """What the server's answer sets the browser's sign-in cookie to: ``value`` for
    ``max_age`` seconds (``0``: removed)."""

    value: str
    max_age: int


_TOKENS_LOCK = threading.Lock()
_TOKENS: list[SessionTokens | None] = []


def session_tokens() -> SessionTokens | None:
    """The process's one table of sign-ins a browser may resume, shared by the pages (which
    issue, renew and revoke) and the cookie route (which redeems codes); None with
    ``AUDIT_SESSION_HOURS=off``. Read from the environment at the first call."""
    with _TOKENS_LOCK:
        if not _TOKENS:
            lifetime = session_lifetime()
            _TOKENS.append(SessionTokens(lifetime, longest=session_longest()) if lifetime else None)
        return _TOKENS[0]

"""Accounts: hashes, roles, lockout, the recorded events, the CLI; no secret leaks anywhere."""

from __future__ import annotations

import argparse
import json
import re
import tomllib
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from audit_analytics import accounts
from audit_analytics.accounts import (
    LOCK_DURATION,
    MAX_FAILURES,
    NO_READ_PERMISSION,
    AccountError,
    User,
    export_permission,
    has_permission,
)
from audit_analytics.cli import admin as admin_cli
from audit_analytics.cli import main as cli
from audit_analytics.engines.store import open_store
from audit_analytics.filters import Filter

PASSWORD = "s3cret-Horse-battery"


@pytest.fixture
def users_file(tmp_path, monkeypatch):
    path = tmp_path / "users.toml"
    monkeypatch.setenv("AUDIT_USERS_FILE", str(path))
    return path


@pytest.fixture
def store(sqlite_store):
    return sqlite_store


def build_parser():
    """The main parser with the users/retention commands, whether or not cli.py wires them yet."""
    parser = ORIGINAL_BUILD_PARSER()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    if "users" not in sub.choices:
        admin_cli.add_parsers(sub, cli.add_filter_arguments)
    return parser


ORIGINAL_BUILD_PARSER = cli.build_parser


@pytest.fixture
def main(monkeypatch):
    monkeypatch.setattr(cli, "build_parser", build_parser)
    return cli.main


def own_events(store, type_=None) -> pl.DataFrame:
    frame = store.load().filter(pl.col("id").str.starts_with("aa-"))
    return frame.filter(pl.col("type") == type_) if type_ else frame


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        (None, {"audit.read": False, "audit.export": False, "audit.admin": False}),
        ("viewer", {"audit.read": True, "audit.export": False, "audit.admin": False}),
        ("auditor", {"audit.read": True, "audit.export": True, "audit.admin": False}),
        ("admin", {"audit.read": True, "audit.export": True, "audit.admin": True}),
    ],
    ids=["no-role", "viewer", "auditor", "admin"],
)
def test_role_permissions(role, expected):
    user = User("u", role)
    result = {p: has_permission(user, p) for p in expected}
    assert result == expected
    allowed, reason = export_permission(user)
    assert allowed == expected["audit.export"]
    assert (reason == "") == allowed
    assert not has_permission(None, "audit.read")


def test_password_is_hashed_with_argon2_never_in_clear(users_file, store):
    accounts.add_user(users_file, "Alice", "auditor", PASSWORD, actor="root", store=store)
    text = users_file.read_text()
    assert PASSWORD not in text
    entry = tomllib.loads(text)["users"]["alice"]
    assert entry["role"] == "auditor"
    assert entry["password_hash"].startswith("$argon2id$")
    assert oct(users_file.stat().st_mode & 0o777) == "0o600"
    assert "argon2" not in repr(accounts.load_accounts(users_file).users["alice"])


@pytest.mark.parametrize(
    ("name", "role", "password", "message"),
    [
        ("bad name!", "viewer", PASSWORD, "not a valid user name"),
        ("bob", "superuser", PASSWORD, "unknown role"),
        ("bob", "viewer", "short", "at least 8"),
    ],
    ids=["name", "role", "password"],
)
def test_bad_requests_are_refused(users_file, store, name, role, password, message):
    with pytest.raises(AccountError, match=message):
        accounts.add_user(users_file, name, role, password, actor="root", store=store)
    assert not users_file.exists() or not accounts.load_accounts(users_file).users


def test_account_changes_are_recorded_with_before_and_after(users_file, store):
    accounts.add_user(users_file, "bob", "viewer", PASSWORD, actor="root", store=store)
    assert accounts.set_role(users_file, "bob", "admin", actor="root", store=store) == ("viewer", "admin")
    accounts.remove_user(users_file, "bob", actor="root", store=store)
    events = own_events(store, "user").sort("time", "id")
    assert sorted(events["action"].to_list()) == [
        "create",
        "delete",
        "role_change",
        "role_change",
        "role_change",
    ]
    assert set(events["actor"]) == {"root"} and set(events["target"]) == {"bob"}
    # the role given with the account, changed, and taken with the account: three permission
    # changes (an account created as admin was a user/create only, which type:permission and
    # the Permission changes review never read)
    changes = events.filter(pl.col("action") == "role_change")
    roles = sorted(
        (json.loads(r["before"])["role"] or "", json.loads(r["after"])["role"] or "")
        for r in changes.to_dicts()
    )
    assert roles == [("", "viewer"), ("admin", ""), ("viewer", "admin")]
    assert events.filter(Filter(types=("permission",)).expr()).height == 3
    assert not accounts.load_accounts(users_file).users
    with pytest.raises(AccountError, match="no user"):
        accounts.set_role(users_file, "bob", "viewer", actor="root", store=store)


def test_a_sign_in_stores_its_address_as_the_log_stores_addresses(users_file, store):
    """The app's sign-ins come from the server's view of the client, which behind a proxy is
    what the proxy forwarded: an IPv4 address written as IPv6 was stored as written (an
    ``ip:192.0.2.9`` search missed it), and text that is no address was stored as an address."""
    import json

    accounts.add_user(users_file, "carol", "viewer", PASSWORD, actor="root", store=store)
    accounts.sign_in(users_file, store, "carol", PASSWORD, ip="::ffff:192.0.2.9")
    accounts.sign_in(users_file, store, "carol", "not-the-password", ip="unknown<b>")
    accounts.record_sign_out(store, User("carol", "viewer"), ip="2001:0DB8::0001")
    auth = own_events(store, "auth").sort("time", "id")
    assert auth["ip"].to_list() == ["192.0.2.9", None, "2001:db8::1"]
    assert json.loads(auth["params"][1])["ip_received"] == "unknown<b>"


def test_sign_in_success_and_failure_are_recorded(users_file, store):
    accounts.add_user(users_file, "carol", "viewer", PASSWORD, actor="root", store=store)
    ok = accounts.sign_in(users_file, store, "Carol", PASSWORD, ip="192.0.2.1")
    assert ok.user == User("carol", "viewer")
    wrong = accounts.sign_in(users_file, store, "carol", "not-the-password")
    unknown = accounts.sign_in(users_file, store, "nobody", "whatever-else")
    assert wrong.user is None and unknown.user is None
    assert wrong.message == unknown.message  # never says which part was wrong
    auth = own_events(store, "auth").sort("time", "id")
    assert auth.select("actor", "action", "result").rows() == [
        ("carol", "login", "done"),
        ("carol", "login", "failed"),
        ("nobody", "login", "failed"),
    ]
    assert auth["ip"][0] == "192.0.2.1"
    assert auth["error"].to_list()[1:] == [accounts.SIGN_IN_FAILED] * 2
    accounts.record_sign_out(store, ok.user)
    assert own_events(store, "auth").filter(pl.col("action") == "logout")["result"].to_list() == ["done"]


def test_five_failures_lock_the_account_for_fifteen_minutes(users_file, store):
    accounts.add_user(users_file, "dave", "auditor", PASSWORD, actor="root", store=store)
    for attempt in range(MAX_FAILURES):
        outcome = accounts.sign_in(users_file, store, "dave", f"wrong-{attempt}")
        assert outcome.user is None
    assert outcome.locked_until is not None
    locks = own_events(store, "auth").filter(pl.col("action") == "lock")
    assert locks.height == 1 and locks["actor"][0] == "dave"
    # the right password does not open a locked account, and that attempt is recorded
    locked = accounts.sign_in(users_file, store, "dave", PASSWORD)
    assert locked.user is None and "locked" in locked.message
    # how long, the same in every zone (it said only "until 01:07 UTC")
    assert re.search(r"locked for 1[45] more minutes \(until \d\d:\d\d UTC\)", locked.message), locked.message
    assert "locked" in own_events(store, "auth").sort("time", "id")["error"][-1]
    # 15 minutes later it opens again
    later = datetime.now(UTC) + LOCK_DURATION + timedelta(seconds=5)
    assert accounts.lock_status(store, "dave", now=later).locked_until is None
    assert accounts.sign_in(users_file, store, "dave", PASSWORD, now=later).user == User("dave", "auditor")


def test_failures_outside_the_window_or_before_a_success_do_not_count(users_file, store):
    accounts.add_user(users_file, "erin", "viewer", PASSWORD, actor="root", store=store)
    for attempt in range(MAX_FAILURES - 1):
        accounts.sign_in(users_file, store, "erin", f"wrong-{attempt}")
    assert accounts.lock_status(store, "erin").failures == MAX_FAILURES - 1
    assert accounts.sign_in(users_file, store, "erin", PASSWORD).user is not None
    assert accounts.lock_status(store, "erin").failures == 0
    accounts.sign_in(users_file, store, "erin", "wrong-again")
    much_later = datetime.now(UTC) + timedelta(minutes=16)
    assert accounts.lock_status(store, "erin", now=much_later).failures == 0


def test_platform_sign_ins_with_the_same_name_do_not_lock_the_app_account(users_file, store):
    from audit_analytics.demo.generate import generate

    accounts.add_user(users_file, "frank", "viewer", PASSWORD, actor="root", store=store)
    platform = generate(1_000, seed=1).events.head(MAX_FAILURES + 2)
    platform = platform.with_columns(
        pl.lit("frank").alias("actor"),
        pl.lit("auth").cast(platform["type"].dtype).alias("type"),
        pl.lit("login").alias("action"),
        pl.lit("failed").cast(platform["result"].dtype).alias("result"),
        pl.lit(datetime.now(UTC) - timedelta(minutes=1)).alias("time"),
    )
    store.append(platform)
    assert accounts.lock_status(store, "frank").failures == 0
    assert accounts.sign_in(users_file, store, "frank", PASSWORD).user is not None


def test_oidc_roles_come_from_the_mapping_or_the_default(users_file, store):
    accounts.map_oidc(users_file, "Grace@Corp.example", "auditor", actor="root", store=store)
    found = accounts.load_accounts(users_file)
    assert accounts.oidc_user(found, {"email": "grace@corp.example", "is_logged_in": True}).role == "auditor"
    assert accounts.oidc_user(found, {"email": "heidi@corp.example"}).role is None
    accounts.map_oidc(users_file, None, "viewer", actor="root", store=store)
    found = accounts.load_accounts(users_file)
    assert accounts.oidc_user(found, {"email": "heidi@corp.example"}).role == "viewer"
    changes = own_events(store, "user").sort("time", "id")
    assert changes["target"].to_list() == ["grace@corp.example", "oidc:default"]
    assert [json.loads(a) for a in changes["after"]] == [{"role": "auditor"}, {"role": "viewer"}]


def test_init_demo_admin_only_on_an_empty_file(users_file, store):
    password = accounts.init_demo_admin(users_file, store=store)
    assert password and len(password) >= 16
    assert accounts.sign_in(users_file, store, "admin", password).user == User("admin", "admin")
    assert accounts.init_demo_admin(users_file, store=store) is None
    assert password not in users_file.read_text()


def test_cli_users_commands(users_file, tmp_path, capsys, monkeypatch, main):
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("AUDIT_ACTOR", "ops")
    assert main(["users", "add", "ivan", "--role", "viewer", "--password", PASSWORD, "--db", db]) == 0
    assert main(["users", "set-role", "ivan", "auditor", "--db", db]) == 0
    assert main(["users", "map-oidc", "judy@corp.example", "--role", "admin", "--db", db]) == 0
    # each change says which log it was recorded in (without --db that is data/audit.db,
    # which may not be the log the app reads)
    said = capsys.readouterr().out.splitlines()
    assert len(said) == 3 and all(line.endswith(f"; recorded in {db}") for line in said), said
    assert main(["users", "list", "--db", db]) == 0
    listing = capsys.readouterr().out
    assert "ivan\tauditor" in listing and "oidc:judy@corp.example\tadmin" in listing
    assert main(["users", "add", "ivan", "--role", "viewer", "--password", PASSWORD, "--db", db]) == 2
    assert "already exists" in capsys.readouterr().err
    # a short password for a name that exists: the name is what is wrong (it said "8 characters")
    assert main(["users", "add", "ivan", "--role", "viewer", "--password", "x", "--db", db]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["users", "remove", "ivan", "--db", db]) == 0
    assert main(["users", "init-demo-admin", "--db", db]) == 0
    shown = capsys.readouterr().out
    assert "Password:" in shown
    assert main(["users", "init-demo-admin", "--db", db]) == 0
    assert "Password:" not in capsys.readouterr().out
    events = own_events(open_store(db), "user").sort("time", "id")
    actions = events["action"].to_list()
    assert sorted(actions) == sorted(
        ["create", "role_change"] * 2 + ["role_change"] * 2 + ["delete", "role_change"]
    )
    assert set(events.filter(pl.col("actor") != "audit-analytics")["actor"]) == {"ops"}


def test_cli_prompts_for_the_password(users_file, tmp_path, monkeypatch, main):
    import io

    db = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert main(["users", "add", "kim", "--role", "viewer", "--db", db]) == 0
    assert accounts.sign_in(users_file, open_store(db), "kim", PASSWORD).user is not None


def test_no_password_or_hash_appears_in_events_errors_or_exports(users_file, store, tmp_path, capsys, main):
    accounts.add_user(users_file, "leo", "admin", PASSWORD, actor="root", store=store)
    the_hash = accounts.load_accounts(users_file).users["leo"].password_hash
    for attempt in range(MAX_FAILURES + 1):
        accounts.sign_in(users_file, store, "leo", PASSWORD + str(attempt))
    accounts.sign_in(users_file, store, "leo", PASSWORD)
    accounts.set_role(users_file, "leo", "viewer", actor="root", store=store)
    with pytest.raises(AccountError) as err:
        accounts.add_user(users_file, "leo", "admin", PASSWORD, actor="root", store=store)
    out = tmp_path / "all.csv"
    assert main(["export", "--db", str(store.engine.url), "--output", str(out)]) == 0
    texts = [
        out.read_text(),
        str(err.value),
        json.dumps(own_events(store).to_dicts(), default=str),
        capsys.readouterr().out,
    ]
    hash_body = the_hash.rsplit("$", 1)[-1]
    for text in texts:
        assert PASSWORD not in text
        assert hash_body not in text


def test_no_read_permission_message_is_exact():
    assert NO_READ_PERMISSION == (
        "You don't have permission to view the audit log. Please request permission from your organization manager."
    )


def test_parser_has_the_commands():
    parser = build_parser()
    for argv in (["users", "list"], ["retention", "plan"], ["retention", "apply", "--archive", "x"]):
        assert parser.parse_args(argv).handler


# ---------------------------------------------------------------------------------------
# the accounts file stays loadable whatever an OIDC identity holds

# DEL broke the hand-written renderer (JSON leaves it unescaped; TOML forbids it raw); the
# rest are every other way to end a string, a key or a table early, or to smuggle a line
HOSTILE_IDENTITY = 'o\'brien"\\\x7f\n\t\x00\x1b]] [oidc] = "admin" # é例😀@corp.example'


@pytest.mark.parametrize("identity", ["del\x7f@corp.example", HOSTILE_IDENTITY], ids=["del", "hostile"])
def test_a_hostile_oidc_identity_round_trips_and_local_users_still_sign_in(users_file, store, identity):
    accounts.add_user(users_file, "alice", "auditor", PASSWORD, actor="root", store=store)
    accounts.map_oidc(users_file, "grace@corp.example", "viewer", actor="root", store=store)
    assert accounts.map_oidc(users_file, identity, "admin", actor="root", store=store) == (None, "admin")

    found = accounts.load_accounts(users_file)  # the old renderer's file raised here: everyone locked out
    assert found.oidc_roles == {"grace@corp.example": "viewer", identity: "admin"}
    assert found.oidc_default_role is None
    assert tomllib.loads(users_file.read_text(encoding="utf-8"))["oidc"]["roles"][identity] == "admin"
    assert accounts.oidc_user(found, {"email": identity}) == User(identity, "admin", "oidc", identity)
    assert accounts.sign_in(users_file, store, "alice", PASSWORD).user == User("alice", "auditor")
    assert oct(users_file.stat().st_mode & 0o777) == "0o600"

    # the next edit reads the file back and writes it again: the identity survives, then goes
    accounts.set_role(users_file, "alice", "admin", actor="root", store=store)
    assert accounts.load_accounts(users_file).oidc_roles[identity] == "admin"
    assert accounts.map_oidc(users_file, identity, None, actor="root", store=store) == ("admin", None)
    assert accounts.load_accounts(users_file).oidc_roles == {"grace@corp.example": "viewer"}
    assert accounts.sign_in(users_file, store, "alice", PASSWORD).user == User("alice", "admin")
    targets = own_events(store, "user").sort("time", "id")["target"].to_list()
    # alice's creation is two events (the account, and the role it was given)
    assert targets == ["alice", "alice", "grace@corp.example", identity, "alice", identity]


def test_cli_map_oidc_with_a_del_character_keeps_the_file_loadable(users_file, tmp_path, capsys, main):
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    identity = "eve\x7f@corp.example"
    assert main(["users", "add", "ivan", "--role", "viewer", "--password", PASSWORD, "--db", db]) == 0
    assert main(["users", "map-oidc", identity, "--role", "auditor", "--db", db]) == 0
    assert main(["users", "list", "--db", db]) == 0
    assert f"oidc:{identity}\tauditor" in capsys.readouterr().out
    assert accounts.load_accounts(users_file).oidc_roles == {identity: "auditor"}
    assert accounts.sign_in(users_file, open_store(db), "ivan", PASSWORD).user == User("ivan", "viewer")


def test_an_identity_that_is_not_utf8_is_refused_and_the_file_is_untouched(users_file, store):
    accounts.map_oidc(users_file, "grace@corp.example", "viewer", actor="root", store=store)
    before = users_file.read_bytes()
    undecodable = b"mallory\xff@corp.example".decode("utf-8", "surrogateescape")  # as argv gives it
    with pytest.raises(AccountError, match="not UTF-8 text; the accounts file was not changed"):
        accounts.map_oidc(users_file, undecodable, "admin", actor="root", store=store)
    assert users_file.read_bytes() == before
    assert not list(users_file.parent.glob(".users.toml.*"))  # no temporary file left behind


def test_a_file_in_the_earlier_hand_written_layout_loads_and_keeps_its_keys(users_file, store):
    the_hash = accounts._hasher.hash(PASSWORD)
    users_file.write_text(
        "# Audit Analytics accounts. Managed with `audit-analytics users ...`.\n"
        "\n"
        '[users."bob"]\n'
        'role = "viewer"\n'
        f'password_hash = "{the_hash}"\n'
        'created = "2026-01-02T03:04:05+00:00"\n'
        "\n"
        "[oidc]\n"
        "# role of an OIDC identity found in no mapping below; empty means no access\n"
        'default_role = "viewer"\n'
        "\n"
        "[oidc.roles]\n"
        '"ann@corp.example" = "admin"\n',
        encoding="utf-8",
    )
    old = tomllib.loads(users_file.read_text(encoding="utf-8"))
    accounts.map_oidc(users_file, "cy@corp.example", "auditor", actor="root", store=store)
    new = tomllib.loads(users_file.read_text(encoding="utf-8"))
    old["oidc"]["roles"]["cy@corp.example"] = "auditor"
    assert new == old
    assert accounts.sign_in(users_file, store, "bob", PASSWORD).user == User("bob", "viewer")


def test_the_unknown_name_hash_costs_what_a_real_one_does():
    """Unknown names are verified against a fixed hash: it must carry the hasher's own
    parameters (else an unknown name would answer faster or slower than a wrong password)."""
    from argon2 import PasswordHasher
    from argon2.exceptions import VerifyMismatchError

    hasher = PasswordHasher()
    assert not hasher.check_needs_rehash(accounts.DUMMY_HASH)
    with pytest.raises(VerifyMismatchError):
        hasher.verify(accounts.DUMMY_HASH, "any password")


# ---------------------------------------------------------------------------------------
# a sign-in that outlives its tab (the browser side: tests/test_browser_session.py)


def test_a_session_token_signs_in_its_user_until_it_expires_or_is_revoked():
    tokens = accounts.SessionTokens(timedelta(hours=2))
    now = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
    alice, bob = tokens.issue("alice", now=now), tokens.issue("bob", now=now)
    assert alice != bob and len(alice) >= 40
    assert tokens.resolve(alice, now=now + timedelta(hours=1, minutes=59)) == "alice"
    assert tokens.resolve(bob, now=now) == "bob"
    assert tokens.resolve(alice, now=now + timedelta(hours=2)) is None  # expired
    assert tokens.resolve(alice[:-1], now=now) is None and tokens.resolve("", now=now) is None
    assert tokens.resolve(None, now=now) is None
    tokens.revoke(bob)
    assert tokens.resolve(bob, now=now) is None
    # the table keeps no token in clear, and drops expired ones as new ones come
    assert alice not in repr(tokens._held) and bob not in repr(tokens._held)
    tokens.issue("carol", now=now + timedelta(hours=3))
    assert [name for name, *_ in tokens._held.values()] == ["carol"]


def test_a_sign_in_in_use_is_renewed_to_a_lifetime_from_its_last_use():
    tokens = accounts.SessionTokens(timedelta(hours=2))
    now = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
    token = tokens.issue("alice", now=now)
    assert tokens.expiry(token, now=now) == now + timedelta(hours=2)
    # used within a minute: the expiry stays (renewed at most once a minute)
    assert tokens.renew(token, now=now + timedelta(seconds=59)) == now + timedelta(hours=2)
    assert tokens.renew(token, now=now + timedelta(minutes=20)) == now + timedelta(hours=2, minutes=20)
    # used later: two hours from that use
    used = now + timedelta(hours=1, minutes=30)
    assert tokens.renew(token, now=used) == used + timedelta(hours=2)
    assert tokens.resolve(token, now=now + timedelta(hours=3)) == "alice"
    assert tokens.expiry(token, now=now) == used + timedelta(hours=2)
    # unused for its lifetime: over, and no use brings it back
    late = used + timedelta(hours=2)
    assert tokens.resolve(token, now=late) is None
    assert tokens.renew(token, now=late) is None and tokens.expiry(token, now=late) is None
    # nor a revoked one, nor none
    other = tokens.issue("bob", now=now)
    tokens.revoke(other)
    assert tokens.renew(other, now=now) is None and tokens.renew(None, now=now) is None


def test_a_sign_in_in_use_ends_at_its_longest_all_the_same():
    tokens = accounts.SessionTokens(timedelta(hours=2), longest=timedelta(hours=5))
    now = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
    token = tokens.issue("alice", now=now)
    for hour in (1, 2, 3):  # used every hour: renewed, two hours on
        assert tokens.renew(token, now=now + timedelta(hours=hour)) == now + timedelta(hours=hour + 2)
    # then no further than five hours from the sign-in, however it is used
    assert tokens.renew(token, now=now + timedelta(hours=4)) == now + timedelta(hours=5)
    assert tokens.renew(token, now=now + timedelta(hours=4, minutes=59)) == now + timedelta(hours=5)
    assert tokens.resolve(token, now=now + timedelta(hours=5)) is None
    # a longest under the lifetime ends the sign-in at the longest
    short = accounts.SessionTokens(timedelta(hours=2), longest=timedelta(hours=1))
    assert short.expiry(short.issue("bob", now=now), now=now) == now + timedelta(hours=1)


@pytest.mark.parametrize(("value", "hours"), [("", 168.0), ("24", 24.0), ("off", None), ("0", None)])
def test_the_longest_sign_in_comes_from_the_environment(value, hours):
    longest = accounts.session_longest({"AUDIT_SESSION_MAX_HOURS": value})
    assert longest == (timedelta(hours=hours) if hours is not None else None)
    with pytest.raises(AccountError, match="AUDIT_SESSION_MAX_HOURS"):
        accounts.session_longest({"AUDIT_SESSION_MAX_HOURS": "a week"})


@pytest.mark.parametrize(
    ("value", "hours"), [("", 12.0), ("8", 8.0), ("0.5", 0.5), (" 24 ", 24.0), ("0", None), ("off", None)]
)
def test_the_session_lifetime_comes_from_the_environment(value, hours):
    lifetime = accounts.session_lifetime({"AUDIT_SESSION_HOURS": value})
    assert lifetime == (timedelta(hours=hours) if hours is not None else None)


@pytest.mark.parametrize("value", ["twelve", "-1", "1000", "nan"])
def test_a_bad_session_lifetime_names_the_variable(value):
    with pytest.raises(AccountError, match="AUDIT_SESSION_HOURS"):
        accounts.session_lifetime({"AUDIT_SESSION_HOURS": value})

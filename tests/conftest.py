"""Shared fixtures: real SQLite files, a real PostgreSQL server, the real-data folder."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REAL_DATA = ROOT.parent / "shared" / "data" / "real"
IN_CI = os.environ.get("CI", "").lower() == "true"


def need(condition: bool, reason: str) -> None:
    """Skip when something outside the project is missing; under CI=true that is a failure."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"CI=true and {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def real_data_dir() -> Path:
    if not REAL_DATA.is_dir():
        pytest.skip(
            f"the real-data folder {REAL_DATA} is absent (it lives in ../shared, beside the checkout)"
        )
    return REAL_DATA


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_bindir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if found:
        return Path(found[-1]).parent
    exe = shutil.which("pg_ctl")
    return Path(exe).resolve().parent if exe else None


@pytest.fixture(scope="session")
def postgres_url():
    """A real PostgreSQL server on a loopback port, started for this test session.

    PostgreSQL refuses to run as root, so as root it runs as the ``postgres`` user.
    """
    if os.environ.get("AUDIT_TEST_PG_URL"):
        yield os.environ["AUDIT_TEST_PG_URL"]
        return
    bindir = _pg_bindir()
    need(bindir is not None, "PostgreSQL is not installed (apt-get install postgresql)")
    base = Path(tempfile.mkdtemp(prefix="aa-pg-"))
    data = base / "data"
    port = _free_port()
    as_root = os.geteuid() == 0
    prefix: list[str] = []
    if as_root:
        shutil.chown(base, "postgres", "postgres")
        prefix = ["runuser", "-u", "postgres", "--"]
    subprocess.run(
        [
            *prefix,
            str(bindir / "initdb"),
            "-D",
            str(data),
            "-U",
            "audit",
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
        ],
        check=True,
        capture_output=True,
    )
    log = base / "server.log"
    opts = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off"
    subprocess.run(
        [*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", opts, "-w", "start"],
        check=True,
        capture_output=True,
    )
    try:
        subprocess.run(
            [*prefix, str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "audit", "audit"],
            check=True,
            capture_output=True,
        )
        yield f"postgresql://audit@127.0.0.1:{port}/audit"
    finally:
        subprocess.run(
            [*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
            capture_output=True,
        )
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def pg_store(postgres_url):
    """An empty audit table on the real PostgreSQL server."""
    import sqlalchemy as sa

    from audit_analytics.store import open_store

    store = open_store(postgres_url)
    with store.engine.begin() as conn:
        conn.execute(sa.text("TRUNCATE audit_events"))
    yield store
    store.engine.dispose()


@pytest.fixture
def sqlite_store(tmp_path):
    """An empty audit table in a real SQLite file."""
    from audit_analytics.store import open_store

    store = open_store(f"sqlite:///{tmp_path / 'audit.db'}")
    yield store
    store.engine.dispose()


def wait_for_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


@pytest.fixture
def as_role(monkeypatch, tmp_path):
    """Sign an AppTest session in as ``tester`` with a role: ``as_role(at, "auditor")``."""

    def apply(at, role: str = "auditor"):
        users = tmp_path / f"users-{role}.toml"
        users.write_text(f'[users.tester]\nrole = "{role}"\npassword_hash = "$argon2id$unused"\n')
        monkeypatch.setenv("AUDIT_USERS_FILE", str(users))
        at.session_state["aa_user"] = "tester"
        return at

    return apply

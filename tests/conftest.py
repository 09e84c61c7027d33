"""Shared fixtures: real SQLite files, a real PostgreSQL server, the real-data folder."""

from __future__ import annotations

import os
import socket
import sys
import time
from pathlib import Path

import pytest
from pg_support import ThrowawayPostgres, free_port, pg_bindir

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
    need(
        REAL_DATA.is_dir(),
        f"the real-data folder {REAL_DATA} is absent (it lives in ../shared, beside the checkout)",
    )
    return REAL_DATA


_free_port, _pg_bindir = free_port, pg_bindir  # the names the test modules import


# every page of the app and its title (the AppTest suites run each of them)
APP_PAGES = {
    "app_pages/explorer.py": "Audit Log",
    "app_pages/activity.py": "Activity",
    "app_pages/security.py": "Security review",
    "app_pages/retention.py": "Retention",
    "app_pages/integrity.py": "Integrity",
}


def bench_module(name: str):
    """A benchmark script of bench/ as a module (``bench_module("bench_pages").main([...])``),
    with bench/ on the path for the scripts it imports in turn."""
    import importlib

    folder = str(ROOT / "bench")
    if folder not in sys.path:
        sys.path.insert(0, folder)
    return importlib.import_module(name)


@pytest.fixture(scope="session")
def postgres_url():
    """A real PostgreSQL server on a loopback port, started for this test session.

    PostgreSQL refuses to run as root, so as root it runs as the ``postgres`` user.
    """
    if os.environ.get("AUDIT_TEST_PG_URL"):
        yield os.environ["AUDIT_TEST_PG_URL"]
        return
    need(pg_bindir() is not None, "PostgreSQL is not installed (apt-get install postgresql)")
    server = ThrowawayPostgres(settings="-c synchronous_commit=off")
    try:
        yield server.start()
    finally:
        server.close()


@pytest.fixture
def pg_store(postgres_url):
    """An empty audit table on the real PostgreSQL server."""
    import sqlalchemy as sa

    from audit_analytics.engines.store import open_store

    store = open_store(postgres_url)
    with store.engine.begin() as conn:
        conn.execute(sa.text("TRUNCATE audit_events, audit_chain, audit_batches"))
    yield store
    store.engine.dispose()


@pytest.fixture
def sqlite_store(tmp_path):
    """An empty audit table in a real SQLite file."""
    from audit_analytics.engines.store import open_store

    store = open_store(f"sqlite:///{tmp_path / 'audit.db'}")
    yield store
    store.engine.dispose()


STORE_FIXTURES = {"sqlite": "sqlite_store", "chdb": "chdb_store"}
"""Store fixture by a parametrised test's store name (any other name: ``pg_store``)."""


@pytest.fixture
def chdb_store(tmp_path):
    """An empty audit table in a real chDB folder (ClickHouse embedded: ``chdb://``)."""
    import importlib.util

    from audit_analytics.engines.store import open_store

    need(importlib.util.find_spec("chdb") is not None, "chdb is not installed (pip install chdb)")
    store = open_store(f"chdb://{tmp_path / 'chdb'}")
    yield store
    store.close()


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


def nav_script(folder: Path, pages: str) -> Path:
    """An app script for AppTest that navigates between the real pages, as app.py does but
    without its sign-in gate (the tests sign in through session state): ``pages`` is the body of
    ``st.navigation([...])``. The pages are reached through a link to ``app_pages/``."""
    (folder / "app_pages").symlink_to(ROOT / "app_pages")
    script = folder / "nav_app.py"
    script.write_text(f"import streamlit as st\n\nst.navigation([\n{pages}]).run()\n")
    return script


def shown_tables(at) -> list:
    """The tables an AppTest run shows the user: its dataframes less the sign-in screen's hidden
    warm-up table (``ui.common.warm_up_browser``), which the user never sees."""
    from audit_analytics.ui.common import WARM_UP_KEY

    return [d for d in at.dataframe if not (d.key or "").startswith(WARM_UP_KEY)]

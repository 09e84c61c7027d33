"""The server's start imports what the pages' first runs would (``ui.serve.import_pages``), so
no visitor's first page waits for a library to load (Streamlit imports pandas at a session's
first table: 0.3 s of the first sign-in screen after a start).

Each check runs in an interpreter of its own (what is imported is per process): the sign-in
screen, the sign-in and the first visit to each page, through AppTest, as the app runs them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

HEAVY = ("pandas", "numpy", "pyarrow", "jinja2", "plotly.graph_objects", "PIL.Image", "argon2", "polars_hash")
"""Libraries a page's first run must not be the one to import once the server imported them
(pandas with numpy and pyarrow 0.3 s; jinja2 for the styled tables 0.05 s)."""

_CHILD = """
import json, os, sys
ahead = sys.argv[1] == "ahead"
from audit_analytics.ui import data  # what app.py imports first, as the server has
if ahead:
    from audit_analytics.ui.serve import import_pages
    import_pages()
from streamlit.testing.v1 import AppTest
import streamlit.testing.v1.element_tree  # the test harness's own imports, not the pages'
before = set(sys.modules)
at = AppTest.from_file(os.path.join(os.getcwd(), "app.py"), default_timeout=60)
at.run()
at.text_input(key="signin_user").set_value("browser-tester")
at.text_input(key="signin_password").set_value(os.environ["AA_PASSWORD"])
at.button[0].click().run()
runs = {"signed_in": "aa_user" in at.session_state, "exceptions": [e.value for e in at.exception]}
for page in ("app_pages/activity.py", "app_pages/security.py"):
    at.switch_page(page).run()
    runs["exceptions"] += [e.value for e in at.exception]
runs["titles"] = [t.value for t in at.title]
runs["imported"] = sorted(set(sys.modules) - before)
print(json.dumps(runs))
"""


def _first_runs(tmp_path: Path, ahead: str) -> dict:
    from browser_support import PASSWORD, _make_account, demo_database

    db = tmp_path / "audit.db"
    url = demo_database(db, n_events=2_000) if not db.exists() else f"sqlite:///{db}"
    users = tmp_path / "users.toml"
    if not users.exists():
        _make_account(users, url)
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "AUDIT_DB_URL": url,
        "AUDIT_USERS_FILE": str(users),
        "AUDIT_WARM_UP": "off",  # the warm-up's thread would import the pages' modules itself
        "AA_PASSWORD": PASSWORD,
    }
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, ahead], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["signed_in"] and result["exceptions"] == [], result
    assert result["titles"][-1] == "Security review", result["titles"]
    return result


def _heavy(imported: list[str]) -> set[str]:
    """The libraries themselves among ``imported`` (their submodules load lazily, a few ms each:
    the chart types, the image plugins)."""
    return set(imported) & set(HEAVY)


def _page_modules(imported: list[str]) -> set[str]:
    return {name for name in imported if name.startswith("audit_analytics.ui.")}


@pytest.mark.slow
def test_after_the_servers_imports_the_first_runs_import_no_library(tmp_path):
    from audit_analytics.ui.serve import PAGE_MODULES

    without = _first_runs(tmp_path, "no")
    # the check can fail: left to the pages, their first runs import the libraries themselves
    assert {"pandas", "jinja2", "argon2"} <= _heavy(without["imported"]), without["imported"]
    ahead = _first_runs(tmp_path, "ahead")
    assert _heavy(ahead["imported"]) == set(), ahead["imported"]
    assert _page_modules(ahead["imported"]) == set(), ahead["imported"]
    # every page module a first run imported is in the list
    assert _page_modules(without["imported"]) <= set(PAGE_MODULES)

"""What ``.streamlit/config.toml`` ships, read as ``streamlit run`` reads it (the browser tests'
app server runs on it too, with no setting of its own for these)."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def shipped() -> dict:
    with open(ROOT / ".streamlit" / "config.toml", "rb") as f:
        return tomllib.load(f)


def test_a_running_app_does_not_reload_its_code_when_files_change():
    """With the watcher on, an update of the code on disk under a running app reloaded the
    package while sessions held callbacks of the old modules: a search that did not parse showed
    a traceback instead of its message (seen in a browser walk)."""
    assert shipped()["server"]["fileWatcherType"] == "none"


def test_end_users_get_no_developer_chrome_and_no_table_download():
    config = shipped()
    assert config["client"]["toolbarMode"] == "viewer"
    assert config["client"]["disableDataExport"] is True

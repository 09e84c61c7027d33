"""The analyst notebook runs top to bottom against a small demo database and writes the
evidence it promises.

The kernel is this interpreter (``sys.executable``): a kernelspec is installed into a
temporary prefix and found through ``JUPYTER_PATH``, so a "python3" kernel installed
elsewhere on the machine is never picked up by mistake.
"""

from __future__ import annotations

import importlib.util
import json
from datetime import UTC, datetime
from pathlib import Path

import nbformat
import openpyxl
import pytest
from conftest import need

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "audit_review.ipynb"
KERNEL = "audit-analytics-test"
NOW = datetime(2025, 5, 15, 12, 0, tzinfo=UTC)  # the newest event: the quarter is 2025Q2


def test_notebook_is_stored_as_a_document_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code)
    markdown = [c for c in nb.cells if c.cell_type == "markdown"]
    assert len(markdown) >= 8 and nb.cells[0].cell_type == "markdown"


@pytest.fixture(scope="module")
def kernel(tmp_path_factory, monkeypatch_module):
    need(
        importlib.util.find_spec("ipykernel") is not None,
        "ipykernel runs the notebook (pip install -e '.[test]')",
    )
    from ipykernel.kernelspec import install

    prefix = tmp_path_factory.mktemp("kernel")
    install(kernel_name=KERNEL, prefix=str(prefix), display_name="audit-analytics tests")
    monkeypatch_module.setenv("JUPYTER_PATH", str(prefix / "share" / "jupyter"))
    return KERNEL


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory):
    from audit_analytics.demo.generate import generate
    from audit_analytics.engines.store import open_store

    url = f"sqlite:///{tmp_path_factory.mktemp('nbdb') / 'audit.db'}"
    store = open_store(url)
    store.append(generate(4_000, seed=3, now=NOW).events)
    rows = store.load().to_dicts()
    store.engine.dispose()
    return url, rows


@pytest.fixture(scope="module")
def executed(kernel, demo_db, tmp_path_factory, monkeypatch_module):
    from nbclient import NotebookClient

    evidence = tmp_path_factory.mktemp("evidence")
    monkeypatch_module.setenv("AUDIT_DB_URL", demo_db[0])
    monkeypatch_module.setenv("AUDIT_EVIDENCE_DIR", str(evidence))
    monkeypatch_module.setenv("AUDIT_REVIEW_TZ", "Europe/Paris")
    monkeypatch_module.delenv("AUDIT_REVIEW_QUARTER", raising=False)
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        nb, kernel_name=kernel, timeout=300, resources={"metadata": {"path": str(ROOT / "notebooks")}}
    )
    client.execute()
    return nb, evidence


def review_of(nb) -> dict:
    cell = next(c for c in nb.cells if "review-summary" in c.metadata.get("tags", []))
    text = "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
    return json.loads(text)


def quarter_rows(rows):
    from zoneinfo import ZoneInfo

    paris = ZoneInfo("Europe/Paris")
    start = datetime(2025, 4, 1, tzinfo=paris)
    end = datetime(2025, 7, 1, tzinfo=paris)
    return [r for r in rows if start <= r["time"] < end]


def test_runs_top_to_bottom_without_errors(executed):
    nb, _ = executed
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert errors == []
    figures = [
        o
        for c in nb.cells
        for o in c.get("outputs", [])
        if "application/vnd.plotly.v1+json" in o.get("data", {})
    ]
    assert len(figures) == 3


def test_reviews_the_quarter_of_the_newest_event(executed, demo_db):
    nb, _ = executed
    review = review_of(nb)
    expected = quarter_rows(demo_db[1])
    assert review["quarter"] == "2025Q2" and review["time_zone"] == "Europe/Paris"
    assert review["events"] == len(expected) > 0
    assert set(review["findings"]) >= {"brute_force", "password_spray"}


def test_writes_the_evidence_workbook_with_every_event(executed, demo_db):
    nb, evidence_dir = executed
    review = review_of(nb)
    path = Path(review["evidence"])
    assert path.parent == evidence_dir and path.name == "audit-events-2025Q2.xlsx" and path.is_file()
    expected = quarter_rows(demo_db[1])
    book = openpyxl.load_workbook(path, read_only=True)
    try:
        events = book[book.sheetnames[0]]
        assert events.max_row - 1 == len(expected) == review["evidence_rows"]
        about = dict(book["About this export"].iter_rows(values_only=True, max_col=2))
    finally:
        book.close()
    assert about["Rows"] == str(len(expected)) and about["Time zone"] == "Europe/Paris"
    assert Path(review["ip_evidence"]).is_file()


def test_the_detections_are_the_command_lines(executed, demo_db, capsys):
    """Each rule's findings in the notebook are what `audit-analytics security` reports for the
    quarter in the review's zone (the notebook ran each rule on the quarter's events alone:
    off-hours had no history before the quarter and judged hours in UTC, and differed)."""
    from audit_analytics.cli.main import main
    from audit_analytics.cli.security import DETECTION_REPORTS

    nb, _ = executed
    findings = review_of(nb)["findings"]
    assert set(findings) == set(DETECTION_REPORTS.values())
    for report, rule in DETECTION_REPORTS.items():
        argv = ["security", report, "--db", demo_db[0], "--period", "custom", "--from", "2025-04-01"]
        argv += ["--to", "2025-06-30", "--tz", "Europe/Paris", "--format", "json"]
        assert main(argv) == 0, report
        rows = json.loads(capsys.readouterr().out)
        assert findings[rule] == len(rows), (report, findings[rule], len(rows))
    assert findings["off_hours"] > 0


def test_the_evidence_names_the_chain_and_verifies_against_the_log(executed, demo_db, capsys):
    """The events' workbook names the chain's position (it said "the rows did not come from a
    database with a hash chain") and `integrity verify-export --db` finds it untouched; the
    table of counts by IP is checked against its manifest alone."""
    from audit_analytics.cli.main import main

    nb, _ = executed
    review = review_of(nb)
    book = openpyxl.load_workbook(review["evidence"], read_only=True)
    try:
        about = dict(book["About this export"].iter_rows(values_only=True, max_col=2))
    finally:
        book.close()
    chain = next(value for key, value in about.items() if str(key).startswith("Chain"))
    assert "none" not in str(chain), about
    assert main(["integrity", "verify-export", review["evidence"], "--db", demo_db[0]]) == 0
    assert ": OK:" in capsys.readouterr().out
    assert main(["integrity", "verify-export", review["ip_evidence"], "--file-only"]) == 0

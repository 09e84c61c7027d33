"""Real SSH/Linux auth logs (../shared/data/real): every row imports, counts match the truth files.

The data is research-only licensed and is never copied into the project; these tests skip with
a reason when ../shared is absent.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest

from audit_analytics.filters import Filter
from audit_analytics.io.ingest import import_files

DATASETS = ["openssh_2k", "linux_2k"]


@pytest.fixture(params=DATASETS)
def dataset(request, real_data_dir, sqlite_store):
    name = request.param
    path = real_data_dir / f"{name}_audit.jsonl"
    truth = json.loads((real_data_dir / f"{name}_truth.json").read_text())
    summary = import_files(sqlite_store, [path])
    return name, path, truth, summary, sqlite_store


def test_every_row_imports(dataset):
    _, path, truth, summary, store = dataset
    lines = sum(1 for line in path.read_text().splitlines() if line.strip())
    assert (summary.rows_read, summary.imported, summary.rejected, summary.duplicates) == (lines, lines, 0, 0)
    assert store.count() == truth["total_events"]


def test_failed_counts_match_truth(dataset):
    _, _, truth, _, store = dataset
    failed = Filter(types=("auth",), results=("failed",), query="action:login")
    assert store.count(failed) == truth["failed_count"]
    assert store.count(Filter(results=("failed",))) == truth["failed_events_any_type"]
    assert store.count(Filter(query="type:auth action:login result:done")) == truth["successful_login_count"]


def test_type_action_result_breakdown(dataset):
    _, _, truth, _, store = dataset
    frame = store.load()
    counts = Counter(f"{t}/{a}/{r}" for t, a, r in frame.select("type", "action", "result").iter_rows())
    assert dict(counts) == truth["events_by_type_action_result"]


def test_failures_per_top_account_match_truth(dataset):
    _, _, truth, _, store = dataset
    for account, expected in truth["top10_accounts_by_failed"]:
        flt = Filter(types=("auth",), results=("failed",), query=f'action:login user:"{account}"')
        assert store.count(flt) == expected, account


def test_failures_per_top_ip_match_truth(dataset):
    _, _, truth, _, store = dataset
    for ip, expected in truth["top10_ips_by_failed"]:
        assert store.count(Filter(types=("auth",), results=("failed",), query=f"ip:{ip}")) == expected, ip


def test_failures_without_ip_or_actor(dataset):
    _, _, truth, _, store = dataset
    failed = store.load(Filter(types=("auth",), results=("failed",)))
    assert failed["ip"].null_count() == truth["failed_with_empty_ip"]
    assert failed["actor"].null_count() == truth["failed_with_empty_actor"]

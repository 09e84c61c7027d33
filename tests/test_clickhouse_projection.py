"""The ClickHouse table's projection of failed logins: the security review's statements
read it instead of every event."""

from __future__ import annotations

import pytest

from audit_analytics.demo.generate import generate
from audit_analytics.filters import Filter


@pytest.mark.parametrize(
    "aggregate", ["failures_by_ip", "failures_by_account", "failures_by_hour", "brute_force"]
)
def test_failed_logins_are_read_from_their_projection(chdb_store, aggregate, monkeypatch):
    """The security review's statements read the failed-login projection (sorted by
    category, action and result), not every event of the period: ClickHouse's own plan says
    which it reads. (A module of its own: test_clickhouse_store.py holds another chDB folder
    open, and chDB serves one per process.)"""
    from audit_analytics.analysis import security_sql

    ch = chdb_store
    # enough events that reading every granule of the period costs more than the projection's
    ch.append(generate(300_000, seed=3).events)
    sent: list[tuple[str, dict[str, str] | None]] = []
    query = ch._query

    def recording(sql, params=None):
        sent.append((sql, params))
        return query(sql, params)

    monkeypatch.setattr(ch, "_query", recording)
    getattr(security_sql, aggregate)(ch, Filter(period="all"))
    monkeypatch.setattr(ch, "_query", query)

    reads = [(sql, params) for sql, params in sent if "audit_events" in sql]
    assert reads, sent
    for sql, params in reads:
        plan = "\n".join(
            str(v) for v in ch._query(f"EXPLAIN indexes = 1 {sql}", params).column(0).to_pylist()
        )
        assert "ReadFromMergeTree (failures)" in plan, plan

"""The README's Python API example runs as written (on a database and a log of the test's own).

It did not: ``store.page(flt, sort="time", descending=True, limit=100)`` raised a TypeError,
the first thing a notebook user copying it met."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import browser_support

ROOT = Path(__file__).resolve().parents[1]


def _python_api_example() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Python API", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "the README's Python API section has no python block"
    return match.group(1)


def test_the_readme_python_api_example_runs(tmp_path):
    code = _python_api_example()
    assert 'open_store("sqlite:///data/audit.db")' in code and '"/var/log/auth.log"' in code
    url = browser_support.demo_database(tmp_path / "audit.db", n_events=2_000)
    # an sshd log of the last hour: three failed passwords from one address
    log = tmp_path / "auth.log"
    when = datetime.now(UTC) - timedelta(hours=1)
    log.write_text(
        "".join(
            f"{(when + timedelta(seconds=i)).strftime('%b %d %H:%M:%S')} host sshd[42{i}]: "
            f"Failed password for root from 203.0.113.9 port 5{i}000 ssh2\n"
            for i in range(3)
        ),
        encoding="utf-8",
    )
    code = code.replace("sqlite:///data/audit.db", url).replace("/var/log/auth.log", str(log))
    names: dict[str, object] = {}
    exec(compile(code, "README.md (Python API)", "exec"), names)  # noqa: S102 - the project's own README

    store, flt = names["store"], names["flt"]
    count = store.count(flt)  # type: ignore[attr-defined]
    assert count > 0
    assert flt.apply(store.load()).height == count  # type: ignore[attr-defined]
    page = store.page(flt, names["Sort"]("time", descending=True), limit=100)  # type: ignore[attr-defined, operator]
    assert page.height == min(count, 100)
    assert page["time"].is_sorted(descending=True)
    assert flt.describe(count=count).startswith(f"{count:,} events · auth · failed · last 30 days")  # type: ignore[attr-defined]

"""A throwaway PostgreSQL server on a loopback port, for the tests and the benchmarks.

Started from the installed packages with initdb and pg_ctl; PostgreSQL refuses to run as
root, so as root it runs as the ``postgres`` user. One class for the session fixture
(tests/conftest.py), the fault tests that stop and restart it, and bench/bench_scale.py.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pg_bindir() -> Path | None:
    """The folder of the newest installed PostgreSQL's programs, or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if found:
        return Path(found[-1]).parent
    exe = shutil.which("pg_ctl")
    return Path(exe).resolve().parent if exe else None


class ThrowawayPostgres:
    """A server in a temporary folder: ``start()`` (creates the cluster and the ``audit``
    database the first time) -> its URL; ``stop()`` and ``start()`` again; ``close()``
    stops it and removes everything. ``settings``: extra ``-c name=value`` options."""

    def __init__(self, *, settings: str = "", prefix: str = "aa-pg-") -> None:
        bindir = pg_bindir()
        if bindir is None:
            raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql)")
        self.bindir = bindir
        self.settings = settings
        self.base = Path(tempfile.mkdtemp(prefix=prefix))
        self.data = self.base / "data"
        self.port = free_port()
        self.runas: list[str] = []
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            shutil.chown(self.base, "postgres", "postgres")
            self.runas = ["runuser", "-u", "postgres", "--"]
        self._created = False

    @property
    def url(self) -> str:
        return f"postgresql://audit@127.0.0.1:{self.port}/audit"

    def _run(self, tool: str, *args: str, check: bool = True) -> None:
        subprocess.run([*self.runas, str(self.bindir / tool), *args], check=check, capture_output=True)

    def start(self) -> str:
        if not self._created:
            self._run(
                "initdb",
                "-D",
                str(self.data),
                "-U",
                "audit",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
            )
        opts = f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 -c fsync=off {self.settings}"
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.base / "server.log"),
            "-o",
            opts.strip(),
            "-w",
            "start",
        )
        if not self._created:
            self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "audit", "audit")
            self._created = True
        return self.url

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def close(self, mode: str = "fast") -> None:
        """Stop (if running) and remove the cluster."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop", check=False)
        shutil.rmtree(self.base, ignore_errors=True)

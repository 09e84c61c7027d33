"""Writing files so that a reader never sees half of one: the one atomic write.

Every file the package writes in place (accounts, retention policy, exports, archive parts,
reject files, TOML settings) goes through :func:`atomic_write`: the content is written to a
hidden temporary file beside the target, flushed to disk, and renamed over the target. The
rename is atomic on one file system, so a crash, an error or a Ctrl-C leaves either the old
file or the new one, never a mix, and no temporary file behind.

Examples
--------
>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> atomic_write(folder / "a.txt", "hello\\n")
6
>>> (folder / "a.txt").read_text()
'hello\\n'
>>> atomic_write(folder / "b.bin", lambda tmp: tmp.write_bytes(b"xyz"))
3
>>> sorted(p.name for p in folder.iterdir())
['a.txt', 'b.bin']
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path

__all__ = ["atomic_write"]


def atomic_write(
    target: str | Path,
    content: str | bytes | Callable[[Path], object],
    *,
    mode: int | None = None,
    fsync: bool = True,
) -> int:
    """Write ``content`` to ``target`` atomically; returns the size written in bytes.

    ``content`` is text (UTF-8), bytes, or a function that writes the file at the path it is
    given (for writers that take a path: Parquet, xlsx). ``mode`` sets the permission bits
    before the rename (``0o600`` for a file only its owner may read). The target's folder is
    created when missing.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
    try:
        if callable(content):
            content(tmp)
        else:
            data = content.encode("utf-8") if isinstance(content, str) else content
            with open(tmp, "xb") as out:
                out.write(data)
        if mode is not None:
            os.chmod(tmp, mode)
        if fsync:
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target.stat().st_size

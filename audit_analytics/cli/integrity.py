"""``audit-analytics integrity …``: checkpoint, verify and verify-export (filled in below)."""

from __future__ import annotations

import argparse

from audit_analytics.cli.common import Parser

__all__ = ["add_parsers"]


def add_parsers(sub: argparse._SubParsersAction[Parser]) -> None:
    """Add the ``integrity`` command to the main parser's sub-parsers."""
    sub.add_parser("integrity", help="prove the log and its exports were not altered")

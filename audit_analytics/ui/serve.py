"""Start the app: ``python -m audit_analytics.ui.serve run app.py [streamlit's options]``.

The same as ``streamlit run``, plus the route that writes the browser's sign-in cookie
(:mod:`audit_analytics.ui.session_cookie`: without it a reload asks for the password again),
and two things in a thread beside the server's own start: the
libraries and page modules the pages' first runs would import are imported
(:func:`import_pages`), so no visitor's first page waits for them; then the events start loading
(:func:`audit_analytics.ui.data.preload_at_start`), not when the first visitor opens the sign-in
screen, so the first sign-in after a restart finds them held. ``./run app`` starts the app this
way; ``streamlit run app.py`` still works and does both at the first visit.
"""

from __future__ import annotations

import importlib
import logging
import sys
import threading
from collections.abc import Callable

__all__ = ["PAGE_MODULES", "import_pages", "main"]

log = logging.getLogger(__name__)

PAGE_MODULES = (
    # Streamlit imports pandas (and numpy, pyarrow) at a session's first table: 0.3 s, which the
    # first sign-in screen after a start waited for
    "pandas",
    "pandas.io.formats.style",  # the Audit Log's coloured results and the detail's comparison (jinja2)
    "plotly.graph_objects",
    "PIL.Image",  # the page icon
    "argon2",  # the password check
    "polars_hash",  # the hash chain of the sign-in event
    "audit_analytics.accounts",
    "audit_analytics.ui.auth",
    "audit_analytics.ui.session_cookie",
    "audit_analytics.ui.common",
    "audit_analytics.ui.state",
    "audit_analytics.ui.explorer",
    "audit_analytics.ui.activity",
    "audit_analytics.ui.charts",
    "audit_analytics.ui.security_widgets",
    "audit_analytics.ui.integrity",
    "audit_analytics.io.export",
    "audit_analytics.io.retention",
)
"""What the sign-in screen and the pages' first runs import (``tests/test_serve.py`` checks
that those runs import none of the libraries themselves once these are)."""


def import_pages() -> None:
    """Import :data:`PAGE_MODULES` (a module that cannot be imported is left to the page that
    needs it to report)."""
    for name in PAGE_MODULES:
        try:
            importlib.import_module(name)
        except Exception as exc:  # pragma: no cover - every one is a dependency
            log.warning("could not import %s ahead of the pages: %s", name, exc)


def _start(preload: Callable[[], None]) -> None:
    """The imports, then the load, in one thread beside the server's own start: the warm-up
    that follows the load draws plotly figures, and plotly takes pandas from ``sys.modules``
    even while another thread is still importing it (seen: "partially initialized module
    'pandas' has no attribute 'Series'")."""
    import_pages()
    preload()


def main(argv: list[str] | None = None) -> int:
    """Start the load and the imports, then hand ``argv`` (``run app.py …``) to Streamlit's
    command line."""
    from streamlit.web import cli

    from audit_analytics.ui import data, session_cookie

    session_cookie.install()  # the route that writes the sign-in cookie (HttpOnly)
    threading.Thread(target=_start, args=(data.preload_at_start,), name="aa-start", daemon=True).start()
    sys.argv = ["streamlit", *(sys.argv[1:] if argv is None else argv)]
    return int(cli.main(prog_name="streamlit") or 0)


if __name__ == "__main__":
    sys.exit(main())

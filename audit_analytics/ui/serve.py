"""Start the app: ``python -m audit_analytics.ui.serve run app.py [streamlit's options]``.

The same as ``streamlit run``, plus one thing: the events start loading as the server starts
(:func:`audit_analytics.ui.data.preload_at_start`), not when the first visitor opens the sign-in
screen, so the first sign-in after a restart finds them held. ``./run app`` starts the app this
way; ``streamlit run app.py`` still works and loads at the first visit.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    """Start the load, then hand ``argv`` (``run app.py …``) to Streamlit's command line."""
    from streamlit.web import cli

    from audit_analytics.ui import data

    data.preload_at_start()
    sys.argv = ["streamlit", *(sys.argv[1:] if argv is None else argv)]
    return int(cli.main(prog_name="streamlit") or 0)


if __name__ == "__main__":
    sys.exit(main())

"""The `audit-analytics` command line: ``main`` (search, export, import, activity), ``security``
(detection reports), ``admin`` (accounts, retention) and the helpers they share in ``common``."""

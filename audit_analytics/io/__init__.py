"""Files in and out: import (``ingest``), export, the archive, retention policies and the one
formula-safe, zone-aware tabular writer."""

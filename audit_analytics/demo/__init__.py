"""A reproducible demo audit log: ``generate`` writes events with planted attacks."""

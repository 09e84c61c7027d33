"""Engines: the contract every engine implements, the in-memory and SQL engines, the store and the
shared frame's lifecycle."""

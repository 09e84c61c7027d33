"""Analyses over events: security detections (in memory and as SQL), activity trends, and the
security review and activity summary that the pages, the CLI and notebooks call."""

"""The gateway service (filled in by its own issue)."""

"""The billing service (filled in by its own issue)."""

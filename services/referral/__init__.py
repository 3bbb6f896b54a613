"""The referral service (filled in by its own issue)."""

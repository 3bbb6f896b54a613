"""Referral use cases: one unit of work each; the caller commits."""

"""Disputes over a charge: open → upheld (the institution was right) / adjusted (a new amount) /
rejected (the charge stands). Only an open dispute can be decided; the ledger gets an adjusting journal
for the difference, never an edit."""

from __future__ import annotations

from enum import StrEnum


class DisputeStatus(StrEnum):
    OPEN = "open"
    UPHELD = "upheld"
    ADJUSTED = "adjusted"
    REJECTED = "rejected"


class DisputeError(ValueError):
    pass


def decided_amount(status: DisputeStatus, charged: int, claimed: int, adjusted: int | None) -> int:
    """What the charge becomes: the institution's figure if upheld, the agreed figure if adjusted."""
    if status is DisputeStatus.UPHELD:
        return claimed
    if status is DisputeStatus.REJECTED:
        return charged
    if status is DisputeStatus.ADJUSTED:
        if adjusted is None or adjusted < 0:
            raise DisputeError("an adjusted decision needs the agreed amount (fen ≥ 0)")
        return adjusted
    raise DisputeError("a decision is upheld, adjusted or rejected")

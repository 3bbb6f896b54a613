"""Disputes over a charge: open → upheld (the institution was right) / adjusted (a new amount) /
rejected (the charge stands). Only an open dispute can be decided; the ledger gets an adjusting journal
for the difference, never an edit.

What is contested depends on how the care was paid: care outside the community is a charge in fen to
the community's budget; inpatient care inside it is paid by DIP points, so a member contests its
points; outpatient care inside it is covered by capitation, so there is nothing to contest."""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import TypeVar

from shared.errors import Invalid

N = TypeVar("N", int, Decimal)


class DisputeStatus(StrEnum):
    OPEN = "open"
    UPHELD = "upheld"
    ADJUSTED = "adjusted"
    REJECTED = "rejected"


class DisputeError(Invalid):
    """A decision that does not say what the charge becomes (`en` says which part is missing)."""

    def __init__(self, en: str) -> None:
        super().__init__("bad-decision", "裁决须给出调整后金额或分值", en)


class DisputeKind(StrEnum):
    CHARGE = "charge"  # fen charged to the budget for care outside the community
    POINTS = "points"  # DIP points of an inpatient case inside the community


def dispute_kind(out_of_community: bool, encounter: str) -> DisputeKind | None:
    if out_of_community:
        return DisputeKind.CHARGE
    return None if encounter == "outpatient" else DisputeKind.POINTS


def decided_amount(status: DisputeStatus, charged: N, claimed: N, adjusted: N | None) -> N:
    """What the charge (or the points) becomes: the institution's figure if upheld, the agreed one if
    adjusted, unchanged if rejected."""
    if status is DisputeStatus.UPHELD:
        return claimed
    if status is DisputeStatus.REJECTED:
        return charged
    if status is DisputeStatus.ADJUSTED:
        if adjusted is None or adjusted < 0:
            raise DisputeError("an adjusted decision needs the agreed amount (fen ≥ 0)")
        return adjusted
    raise DisputeError("a decision is upheld, adjusted or rejected")

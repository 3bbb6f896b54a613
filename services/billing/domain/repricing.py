"""Claims priced before billing has heard what their referral became (events from the referral service
may arrive after the hospital's claim). Such a claim is stored priced provisionally, as unreferred and
outside any chain, and waits for the referral; when the referral's event arrives it is priced again by
the same rules (claims_batch.price_claims), and the difference is recorded: while its month is open the
claim's figures simply change (the month close charges them); once the month is closed, an adjusting
journal posts the difference to the ledger."""

from __future__ import annotations

from enum import StrEnum

# what the referral service's states mean for a claim naming the referral
REFERRED = frozenset({"accepted", "scheduled", "arrived", "completed"})
UNDECIDED = frozenset({"submitted", "pending_approval"})  # may still be accepted (by this institution)


class Standing(StrEnum):
    REFERRED = "referred"
    UNREFERRED = "unreferred"
    WAITING = "waiting"  # priced provisionally until the referral (or its chain) is known and decided


def referral_standing(
    status: str | None, own: bool, to_this_institution: bool, chain_known: bool
) -> Standing:
    """How a claim naming a referral is priced. `status` is None when billing has not heard of the
    referral; `own`: the referral is the claim's resident's; `chain_known`: every referral it continues
    or replaces is known too (the deductible is met once along the chain)."""
    if status is None:
        return Standing.WAITING
    if not own:
        return Standing.UNREFERRED  # another resident's referral never makes this claim referred
    if status in UNDECIDED or not chain_known:
        return Standing.WAITING
    return Standing.REFERRED if status in REFERRED and to_this_institution else Standing.UNREFERRED


def ledger_adjustment(old_share: int, new_share: int, month_closed: bool, out_of_community: bool) -> int:
    """Fen to post when a claim's insurance share changes. Only care outside the resident's community is
    charged per claim (inside it, outpatient care is capitation and inpatient care DIP points, which a
    referral does not change), and only a closed month has charged it; an open month's close charges
    the new figure itself."""
    if not (month_closed and out_of_community):
        return 0
    return new_share - old_share

"""The rules for a claim whose referral billing has not heard of (or not as decided): plain Python."""

from __future__ import annotations

import pytest

from services.billing.domain.repricing import Standing, ledger_adjustment, referral_standing


@pytest.mark.parametrize(
    ("status", "own", "to_here", "chain_known", "expected"),
    [
        (None, False, False, False, Standing.WAITING),  # billing has not heard of the referral
        ("submitted", True, True, True, Standing.WAITING),  # may still be accepted
        ("pending_approval", True, False, True, Standing.WAITING),
        ("accepted", True, True, False, Standing.WAITING),  # a referral it replaces is not known yet
        ("accepted", True, True, True, Standing.REFERRED),
        ("completed", True, True, True, Standing.REFERRED),
        ("accepted", True, False, True, Standing.UNREFERRED),  # accepted by another institution
        ("rejected", True, True, True, Standing.UNREFERRED),
        ("expired", True, True, True, Standing.UNREFERRED),
        ("revoked", True, True, True, Standing.UNREFERRED),
        ("accepted", False, True, True, Standing.UNREFERRED),  # another resident's referral
        ("submitted", False, True, False, Standing.UNREFERRED),
    ],
)
def test_referral_standing(
    status: str | None, own: bool, to_here: bool, chain_known: bool, expected: Standing
) -> None:
    assert referral_standing(status, own, to_here, chain_known) is expected


@pytest.mark.parametrize(
    ("closed", "outside", "expected"),
    [
        (True, True, 8_000),  # a closed month charged the old share: post the difference
        (False, True, 0),  # an open month: its close charges the new share
        (True, False, 0),  # care inside the community is not charged per claim
        (False, False, 0),
    ],
)
def test_ledger_adjustment(closed: bool, outside: bool, expected: int) -> None:
    assert ledger_adjustment(20_000, 28_000, closed, outside) == expected


def test_a_lower_price_is_a_negative_adjustment() -> None:
    assert ledger_adjustment(28_000, 20_000, True, True) == -8_000

"""What insurance pays on a claim: tiered ratios, a deductible counted once along a referral chain, and
the lower ratio for an unreferred county visit with a grassroots-catalogue disease (seeds 001, 002).
And which claims cannot be true: care dated after today."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from shared.clock import SHANGHAI
from shared.money import apply_rate


def dated_in_future(service_date: date, now: datetime) -> bool:
    """A claim bills care already given, so its service date cannot be after today, counted as every
    date here is, in China (UTC+8): at 01:00 on 2 March in Beijing the date is 2 March, though UTC
    still says 1 March. `now` must be timezone-aware."""
    return service_date > now.astimezone(SHANGHAI).date()


@dataclass(frozen=True)
class TierRule:
    ratio: Decimal  # share of the eligible cost above the deductible
    deductible: int  # 起付线, fen


@dataclass(frozen=True)
class ClaimInput:
    tier: str  # village | township | community | county
    eligible_cost: int
    deductible_already_met: int = 0  # paid earlier along the same referral chain
    referred: bool = False
    grassroots_disease: bool = False


def insurance_share(
    claim: ClaimInput, rules: dict[str, TierRule], unreferred_county_ratio: Decimal
) -> tuple[int, int]:
    """(insurance pays, deductible used by this claim)."""
    if claim.eligible_cost < 0:
        raise ValueError("eligible cost cannot be negative")
    rule = rules[claim.tier]
    ratio = rule.ratio
    if claim.tier == "county" and claim.grassroots_disease and not claim.referred:
        ratio = min(ratio, unreferred_county_ratio)
    remaining_deductible = max(0, rule.deductible - claim.deductible_already_met)
    deductible = min(remaining_deductible, claim.eligible_cost)
    return apply_rate(claim.eligible_cost - deductible, ratio), deductible

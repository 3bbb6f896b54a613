"""What insurance pays on a claim: tiered ratios, a deductible counted once along a referral chain as the
county reads 双向转诊…只计算一次起付线 (going up: only the difference, 上转补差, or the higher tier's whole
deductible; coming down: none, 下转免起付线, or the lower tier's whole deductible), and the lower ratio for an
unreferred county visit with a grassroots-catalogue disease (seeds 001, 002). And which claims cannot be
true: care dated after today."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

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


class Leg(StrEnum):
    """Which way along its episode a referred claim's patient came: it decides which of the county's
    readings of the deductible applies (YearParameters.upward_deductible / downward_deductible)."""

    NONE = "none"  # unreferred, or a referral that is no leg of an up-and-down episode
    UP = "up"  # referred upward (上转)
    DOWN = "down"  # referred back down, continuing the upward referral of the episode (下转)


def leg_of(direction: str | None, referred: bool, continues_episode: bool) -> Leg:
    """A referred claim's leg: up on an upward referral; down on a downward referral that continues an
    upward one (a downward referral of its own starts no episode: its deductible is the usual one)."""
    if not referred:
        return Leg.NONE
    if direction == "up":
        return Leg.UP
    if direction == "down" and continues_episode:
        return Leg.DOWN
    return Leg.NONE


def deductible_due(
    deductible: int, met_in_chain: int, met_in_leg: int, leg: Leg, upward: str, downward: str
) -> int:
    """What is left of the tier's deductible (起付线) for a claim, as the county reads 只计算一次起付线:
    going up, "difference" pays only what the tier's deductible exceeds what the chain already met
    (上转补差), "full" the tier's whole deductible once for the upward leg; coming down, "waived" pays none
    (下转免起付线), "full" the lower tier's whole deductible once for the downward leg. A claim on no leg
    pays what the chain has not met yet."""
    if leg is Leg.DOWN and downward == "waived":
        return 0
    if (leg is Leg.DOWN) or (leg is Leg.UP and upward == "full"):
        return max(0, deductible - met_in_leg)
    return max(0, deductible - met_in_chain)


@dataclass(frozen=True)
class ClaimInput:
    tier: str  # village | township | community | county
    eligible_cost: int
    deductible_already_met: int = 0  # paid earlier along the same referral chain
    referred: bool = False
    grassroots_disease: bool = False
    leg: Leg = Leg.NONE
    deductible_met_in_leg: int = 0  # paid earlier on the same leg (up or down) of the chain


def insurance_share(
    claim: ClaimInput,
    rules: dict[str, TierRule],
    unreferred_county_ratio: Decimal,
    upward: str = "difference",
    downward: str = "waived",
) -> tuple[int, int]:
    """(insurance pays, deductible used by this claim); `upward`/`downward`: the county's readings of
    the deductible along an episode (deductible_due)."""
    if claim.eligible_cost < 0:
        raise ValueError("eligible cost cannot be negative")
    rule = rules[claim.tier]
    ratio = rule.ratio
    if claim.tier == "county" and claim.grassroots_disease and not claim.referred:
        ratio = min(ratio, unreferred_county_ratio)
    remaining_deductible = deductible_due(
        rule.deductible,
        claim.deductible_already_met,
        claim.deductible_met_in_leg,
        claim.leg,
        upward,
        downward,
    )
    deductible = min(remaining_deductible, claim.eligible_cost)
    return apply_rate(claim.eligible_cost - deductible, ratio), deductible

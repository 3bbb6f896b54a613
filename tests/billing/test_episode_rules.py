"""One deductible per up-and-down episode, as the county reads 双向转诊…只计算一次起付线 (issue #14, point 2):
plain Python. Tiers: township 0.85 with a 20,000-fen deductible, county 0.70 with 60,000."""

from __future__ import annotations

from decimal import Decimal

import pytest

from services.billing.domain.claims import ClaimInput, Leg, TierRule, deductible_due, insurance_share, leg_of
from services.billing.domain.claims_batch import ClaimFacts, price_claims
from services.billing.domain.parameters import CommunityCover, YearParameters

TIERS = {
    "village": TierRule(Decimal("0.90"), 10_000),
    "community": TierRule(Decimal("0.85"), 20_000),
    "township": TierRule(Decimal("0.85"), 20_000),
    "county": TierRule(Decimal("0.70"), 60_000),
}


def params(upward: str, downward: str) -> YearParameters:
    return YearParameters(
        individual_contribution=40_000,
        fiscal_subsidy=60_000,
        tiers=TIERS,
        unreferred_county_ratio=Decimal("0.50"),
        dip_estimated_point_value=Decimal(100),
        communities=(CommunityCover("A", 100),),
        catastrophic_rate=Decimal("0.08"),
        dip_budget_rate=Decimal("0.40"),
        upward_deductible=upward,
        downward_deductible=downward,
    )


@pytest.mark.parametrize(
    ("direction", "referred", "continues", "leg"),
    [
        ("up", True, False, Leg.UP),
        ("down", True, True, Leg.DOWN),  # the way home of an episode
        ("down", True, False, Leg.NONE),  # a downward referral of its own starts no episode
        ("up", False, False, Leg.NONE),  # not referred to this institution: the usual deductible
        ("down", False, True, Leg.NONE),
        (None, True, False, Leg.NONE),  # kept before billing read the direction
    ],
)
def test_the_leg_of_a_claim(direction: str | None, referred: bool, continues: bool, leg: Leg) -> None:
    assert leg_of(direction, referred, continues) is leg


@pytest.mark.parametrize(
    ("leg", "upward", "downward", "due"),
    [
        (Leg.UP, "difference", "waived", 40_000),  # 上转补差: 60,000 less the 20,000 the chain met
        (Leg.UP, "full", "waived", 60_000),  # the county's whole deductible (none met on this leg yet)
        (Leg.DOWN, "difference", "waived", 0),  # 下转免起付线
        (Leg.DOWN, "difference", "full", 60_000),  # the tier's whole deductible, as a new admission
        (Leg.NONE, "full", "full", 40_000),  # no leg: what the chain has not met
    ],
)
def test_deductible_due(leg: Leg, upward: str, downward: str, due: int) -> None:
    assert deductible_due(60_000, 20_000, 0, leg, upward, downward) == due


def test_a_leg_pays_its_whole_deductible_once() -> None:
    assert deductible_due(60_000, 80_000, 60_000, Leg.UP, "full", "waived") == 0
    assert deductible_due(20_000, 80_000, 5_000, Leg.DOWN, "difference", "full") == 15_000


def test_insurance_share_defaults_to_the_difference_and_the_waiver() -> None:
    up = ClaimInput("county", 100_000, 20_000, True, leg=Leg.UP)
    assert insurance_share(up, TIERS, Decimal("0.50")) == (42_000, 40_000)  # 0.70 × 60,000
    down = ClaimInput("township", 50_000, 60_000, True, leg=Leg.DOWN)
    assert insurance_share(down, TIERS, Decimal("0.50")) == (42_500, 0)  # 0.85 × 50,000
    assert insurance_share(down, TIERS, Decimal("0.50"), downward="full") == (25_500, 20_000)


def episode() -> list[ClaimFacts]:
    """The sending township's claim (it names the referral it sent: in the chain, not referred), two
    county claims on the upward referral, two township claims on the downward one continuing it."""

    def fact(tier: str, eligible: int, referred: bool, leg: Leg) -> ClaimFacts:
        return ClaimFacts(tier, "outpatient", eligible, False, referred, "episode", None, leg)

    return [
        fact("township", 30_000, False, Leg.NONE),
        fact("county", 100_000, True, Leg.UP),
        fact("county", 100_000, True, Leg.UP),
        fact("township", 50_000, True, Leg.DOWN),
        fact("township", 50_000, True, Leg.DOWN),
    ]


@pytest.mark.parametrize(
    ("upward", "downward", "deductibles", "shares"),
    [
        # the default: 20,000 at the township, the county adds only 40,000, nothing on the way home
        ("difference", "waived", [20_000, 40_000, 0, 0, 0], [8_500, 42_000, 70_000, 42_500, 42_500]),
        # going up costs the county's whole deductible once; coming down is still free
        ("full", "waived", [20_000, 60_000, 0, 0, 0], [8_500, 28_000, 70_000, 42_500, 42_500]),
        # coming down costs the township's whole deductible once
        ("difference", "full", [20_000, 40_000, 0, 20_000, 0], [8_500, 42_000, 70_000, 25_500, 42_500]),
        ("full", "full", [20_000, 60_000, 0, 20_000, 0], [8_500, 28_000, 70_000, 25_500, 42_500]),
    ],
)
def test_an_episode_priced_by_each_reading(
    upward: str, downward: str, deductibles: list[int], shares: list[int]
) -> None:
    chain_met: dict[str, int] = {}
    leg_met: dict[tuple[str, str], int] = {}
    priced = price_claims(episode(), params(upward, downward), chain_met, leg_met)
    assert [p.deductible_used for p in priced] == deductibles
    assert [p.insurance_share for p in priced] == shares
    assert chain_met == {"episode": sum(deductibles)}
    assert leg_met[("episode", "down")] == sum(deductibles[3:])


def test_the_deductible_met_in_earlier_batches_counts_per_leg() -> None:
    """A later batch: the chain met 80,000 before, 60,000 of it on the upward leg."""
    [county] = price_claims(
        [ClaimFacts("county", "outpatient", 100_000, False, True, "e", None, Leg.UP)],
        params("full", "full"),
        {"e": 80_000},
        {("e", "none"): 20_000, ("e", "up"): 60_000},
    )
    assert (county.deductible_used, county.insurance_share) == (0, 70_000)

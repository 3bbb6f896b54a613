"""A worked example with hand-computed figures (all fen) for the billing rules; the billing service
(its issue) wraps these."""

from decimal import Decimal

import pytest

from services.billing.domain.budget import (
    CommunityShare,
    FundYear,
    county_fund,
    prepayments,
    split_fund,
)
from services.billing.domain.claims import ClaimInput, TierRule, insurance_share
from services.billing.domain.parameters import ParameterError
from services.billing.domain.settlement import (
    YearEnd,
    capitation_pool,
    contract_fee,
    deposit_returned,
    dip_payment,
    distribute_surplus,
    point_value,
)
from shared.errors import Invalid

YEAR = FundYear(raised_total=10_000_000_000, catastrophic_share=800_000_000)  # 1 亿元, 800 万元


def test_budget_derivation_line_by_line() -> None:
    # the literal reading (default): 5 % of the raised total 10,000,000,000 = 500,000,000
    lines = {x.label: x.fen for x in county_fund(YEAR)}
    assert lines == {
        "raised_total": 10_000_000_000,
        "catastrophic_share": -800_000_000,
        "risk_reserve_base:raised_total": 10_000_000_000,
        "risk_reserve": -500_000_000,
        "community_fund": 8_700_000_000,
    }
    # the alternative: 5 % of what is left after catastrophic insurance, 9,200,000,000 → 460,000,000
    after = FundYear(10_000_000_000, 800_000_000, risk_reserve_base="after_catastrophic")
    assert {x.label: x.fen for x in county_fund(after)} == {
        "raised_total": 10_000_000_000,
        "catastrophic_share": -800_000_000,
        "risk_reserve_base:after_catastrophic": 9_200_000_000,
        "risk_reserve": -460_000_000,
        "community_fund": 8_740_000_000,
    }
    for year in (YEAR, after):
        figures = county_fund(year)
        moved = [x.fen for x in figures if x.label in ("raised_total", "catastrophic_share", "risk_reserve")]
        assert sum(moved) == figures[-1].fen


def test_risk_reserve_waived_when_six_months_are_covered() -> None:
    rich = FundYear(
        10_000_000_000, 800_000_000, accumulated_balance=54_000_000_000, monthly_payout=9_000_000_000
    )
    assert county_fund(rich)[-1].fen == 9_200_000_000
    poor = FundYear(
        10_000_000_000, 800_000_000, accumulated_balance=53_999_999_999, monthly_payout=9_000_000_000
    )
    assert county_fund(poor)[-1].fen == 8_700_000_000


def test_split_by_covered_residents_with_adjustment_adds_up() -> None:
    even = split_fund(8_740_000_000, [CommunityShare("A", 60_000), CommunityShare("B", 40_000)])
    assert even == {"A": 5_244_000_000, "B": 3_496_000_000}
    tilted = split_fund(
        8_740_000_000, [CommunityShare("A", 60_000, Decimal("1.05")), CommunityShare("B", 40_000)]
    )
    assert tilted == {"A": 5_345_825_243, "B": 3_394_174_757}  # 63/103 and 40/103, remainder to A
    assert sum(tilted.values()) == 8_740_000_000


def test_monthly_prepayment_and_deposit() -> None:
    months = prepayments(5_244_000_000)
    assert {(p.gross, p.deposit, p.paid) for p in months} == {(437_000_000, 21_850_000, 415_150_000)}
    small = prepayments(100)
    assert [p.gross for p in small] == [9, 9, 9, 9, 8, 8, 8, 8, 8, 8, 8, 8]
    # the year's deposit, 5 % of 100 = 5 fen, over the months by largest remainder (each month's own
    # 5 % of 8 or 9 fen rounds to 0: the year would withhold nothing)
    assert [p.deposit for p in small] == [1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0]
    # 120 fen: 10 a month, whose 5 % (0.5) rounds up every month to 12 in all; the year's is 6
    assert sum(p.deposit for p in prepayments(120)) == 6


RULES = {
    "village": TierRule(Decimal("0.90"), 0),
    "township": TierRule(Decimal("0.85"), 20_000),
    "county": TierRule(Decimal("0.70"), 60_000),
}


def test_deductible_counts_once_along_a_referral_chain() -> None:
    township = insurance_share(ClaimInput("township", 100_000), RULES, Decimal("0.50"))
    assert township == (68_000, 20_000)
    county = insurance_share(
        ClaimInput("county", 500_000, deductible_already_met=20_000, referred=True), RULES, Decimal("0.50")
    )
    assert county == (322_000, 40_000)  # only the rest of the county deductible


def test_unreferred_county_visit_for_grassroots_disease_gets_the_lower_ratio() -> None:
    assert insurance_share(
        ClaimInput("county", 500_000, grassroots_disease=True), RULES, Decimal("0.50")
    ) == (220_000, 60_000)
    assert insurance_share(
        ClaimInput("county", 500_000, grassroots_disease=True, referred=True), RULES, Decimal("0.50")
    ) == (308_000, 60_000)
    assert insurance_share(ClaimInput("township", 10_000), RULES, Decimal("0.50")) == (0, 10_000)


def test_dip_capitation_and_contract_fee() -> None:
    value = point_value(2_000_000_000, Decimal(800_000))
    assert value == Decimal("2500.0000") and dip_payment(Decimal("1250.5"), value) == 3_126_250
    assert capitation_pool(38_000_000_000) == 19_000_000_000
    assert contract_fee(40_000) == 3_000  # 7.5 % of 400 元
    with pytest.raises(ValueError):
        point_value(1, Decimal(0))


def test_year_end_surplus_overspend_and_deposit() -> None:
    surplus = YearEnd(5_244_000_000, 5_000_000_000, Decimal("0.4"))
    assert surplus.surplus == 244_000_000 and surplus.overspend == 0
    shares = distribute_surplus(
        244_000_000, {"county": Decimal(1), "township": Decimal("1.5"), "village": Decimal(2)}
    )
    assert shares == {"county": 54_222_222, "township": 81_333_333, "village": 108_444_445}
    over = YearEnd(5_244_000_000, 5_500_000_000, Decimal("0.4"))
    assert (over.overspend, over.community_bears, over.fund_bears) == (256_000_000, 102_400_000, 153_600_000)
    assert deposit_returned(21_850_000 * 12, Decimal(92)) == 241_224_000
    assert deposit_returned(21_850_000 * 12, 92) == 241_224_000  # an integer score too


def test_parameters_that_do_not_add_up_are_refused() -> None:
    for bad in (
        dict(raised_total=100, catastrophic_share=101),
        dict(raised_total=-1, catastrophic_share=0),
        dict(raised_total=100, catastrophic_share=0, risk_reserve_rate=Decimal("1.2")),
        dict(raised_total=100, catastrophic_share=0, risk_reserve_base="whatever"),
    ):
        with pytest.raises(ParameterError):  # a 422 problem in Chinese and English, not a bare ValueError
            FundYear(**bad)
    with pytest.raises(ParameterError):
        split_fund(100, [CommunityShare("A", 10, Decimal(0))])
    with pytest.raises(ParameterError):  # all-zero insured counts: nothing to split by
        split_fund(100, [CommunityShare("A", 0), CommunityShare("B", 0)])
    with pytest.raises(ParameterError):  # a reserve beyond what is left after catastrophic insurance
        county_fund(FundYear(100, 99))
    with pytest.raises(Invalid) as caught:
        deposit_returned(100, Decimal(101))
    assert caught.value.code == "scores-needed"

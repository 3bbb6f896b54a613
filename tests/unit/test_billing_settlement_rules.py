"""The settlement money of issue 14 as plain rules, by hand to the fen: the risk-reserve base (9),
catastrophic insurance and the DIP budget as amounts (10), the deposit apart from the overspend sharing
(11), the year's deposit over the months (12), contract fees and capitation by contract (15), and
problems instead of bare errors (17)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from services.billing.domain import ledger as acc
from services.billing.domain.budget import CommunityBudget, community_budgets, prepayment, prepayments
from services.billing.domain.claims import TierRule
from services.billing.domain.evaluation import evaluate
from services.billing.domain.parameters import (
    CommunityCover,
    ParameterError,
    YearParameters,
    check_parameters,
)
from services.billing.domain.postings import YearEndInput, capitation_for_month, settlement_journal
from services.billing.domain.settlement import YearEnd, contract_fees, in_force_on, month_starts
from services.billing.repository import to_domain
from shared.clock import SHANGHAI
from shared.errors import Conflict, Invalid
from shared.money import apply_rate

TIERS = {
    "village": TierRule(Decimal("0.90"), 10_000),
    "community": TierRule(Decimal("0.85"), 20_000),
    "township": TierRule(Decimal("0.85"), 20_000),
    "county": TierRule(Decimal("0.70"), 60_000),
}


def params(**overrides: Any) -> YearParameters:
    """60 + 40 insured at 400 + 600 元: raised 10,000,000 fen; catastrophic 8 % unless overridden."""
    values: dict[str, Any] = dict(
        individual_contribution=40_000,
        fiscal_subsidy=60_000,
        tiers=TIERS,
        unreferred_county_ratio=Decimal("0.50"),
        dip_estimated_point_value=Decimal(100),
        communities=(CommunityCover("A", 60), CommunityCover("B", 40)),
        catastrophic_rate=Decimal("0.08"),
        dip_budget_rate=Decimal("0.40"),
    )
    values.update(overrides)
    return YearParameters(**values)


def lines(p: YearParameters, community: int = 0) -> dict[str, int]:
    return {x.label: x.fen for x in community_budgets(p)[community].derivation}


# 9 — the risk reserve's base


def test_the_risk_reserve_is_of_the_raised_total_by_default_and_the_derivation_names_its_base() -> None:
    literal = lines(params())
    # 5 % of the raised total 10,000,000 = 500,000; fund 10,000,000 − 800,000 − 500,000 = 8,700,000
    assert literal["risk_reserve_base:raised_total"] == 10_000_000 and literal["risk_reserve"] == -500_000
    assert literal["community_fund"] == 8_700_000 and literal["budget"] == 5_220_000  # 60 %
    alternative = lines(params(risk_reserve_base="after_catastrophic"))
    # 5 % of 10,000,000 − 800,000 = 9,200,000 → 460,000; fund 8,740,000
    assert alternative["risk_reserve_base:after_catastrophic"] == 9_200_000
    assert alternative["risk_reserve"] == -460_000 and alternative["community_fund"] == 8_740_000
    assert not any(k.startswith("risk_reserve_base:after") for k in literal)


# 10 — catastrophic insurance and the DIP budget as amounts


def test_catastrophic_insurance_per_insured_person_is_exact_where_a_rate_cannot_be() -> None:
    # the issue's county: 500,000 insured at 1,070 元, catastrophic insurance 60 元 a head
    county = dict(
        individual_contribution=38_000,
        fiscal_subsidy=69_000,
        communities=(CommunityCover("A", 300_000), CommunityCover("B", 200_000)),
        outpatient_pool_rate=Decimal("0.10"),
        catastrophic_rate=None,
    )
    per_person = params(**county, catastrophic_per_person=6_000)
    check_parameters(per_person)
    assert per_person.catastrophic_share == 3_000_000_000  # 6,000 × 500,000
    derived = lines(per_person)
    assert (
        derived["catastrophic_basis:per_person"] == 6_000 and derived["catastrophic_share"] == -3_000_000_000
    )
    # the nearest four-decimal rate, 0.0561 of 53,500,000,000 = 3,001,350,000: 1,350,000 fen off
    assert params(**{**county, "catastrophic_rate": Decimal("0.0561")}).catastrophic_share == 3_001_350_000
    amount = lines(params(catastrophic_rate=None, catastrophic_amount=750_000))
    # 10,000,000 − 750,000 − 500,000 = 8,750,000 → 60 % = 5,250,000
    assert amount["catastrophic_basis:amount"] == 750_000 and amount["budget"] == 5_250_000
    assert lines(params())["catastrophic_basis:rate"] == 10_000_000  # the rate is of the raised total


def test_the_dip_budget_as_a_county_amount_is_split_like_the_fund() -> None:
    p = params(dip_budget_rate=None, dip_budget_amount=3_000_001)
    check_parameters(p)
    a, b = community_budgets(p)
    # 3,000,001 × 60 : 40 = 1,800,000.6 and 1,200,000.4 → the remainder fen to A
    assert (a.dip_budget, b.dip_budget) == (1_800_001, 1_200_000)
    assert {x.label: x.fen for x in a.derivation}["dip_basis:county_amount"] == 3_000_001
    assert {x.label: x.fen for x in a.derivation}["other_care"] == 5_220_000 - 1_200_000 - 1_800_001
    assert lines(params())["dip_basis:rate"] == 5_220_000 and lines(params())["dip_budget"] == 2_088_000


@pytest.mark.parametrize(
    "bad",
    [
        {"catastrophic_rate": None},  # none
        {"catastrophic_per_person": 6_000},  # and the rate: two
        {"catastrophic_rate": None, "catastrophic_per_person": 100_001},  # above 1,000 元 raised a head
        {"catastrophic_rate": None, "catastrophic_amount": 10_000_001},  # above the raised total
        {"dip_budget_rate": None},
        {"dip_budget_amount": 1},
        {"capitation_basis": "per_visit"},
        {"risk_reserve_base": "after_everything"},
        {"catastrophic_rate": Decimal("0.95")},  # + 5 % of the raised total: nothing left
    ],
)
def test_a_quantity_in_no_form_two_forms_or_beyond_its_source_is_a_parameter_problem(
    bad: dict[str, Any],
) -> None:
    with pytest.raises(ParameterError) as caught:
        check_parameters(params(**bad))
    assert caught.value.code == "parameters-do-not-add-up" and caught.value.zh and caught.value.en


def test_a_dip_amount_beyond_the_fund_is_found_when_the_budgets_are_derived() -> None:
    p = params(dip_budget_rate=None, dip_budget_amount=8_700_001)  # the fund is 8,700,000
    check_parameters(p)
    with pytest.raises(ParameterError):
        community_budgets(p)


def test_a_version_stored_before_the_base_was_a_parameter_keeps_the_reading_it_had() -> None:
    stored: dict[str, Any] = {
        "individual_contribution": 40_000,
        "fiscal_subsidy": 60_000,
        "catastrophic_rate": "0.08",
        "tiers": {t: {"ratio": str(r.ratio), "deductible": r.deductible} for t, r in TIERS.items()},
        "unreferred_county_ratio": "0.50",
        "dip_budget_rate": "0.40",
        "dip_estimated_point_value": "100",
        "communities": [{"community_id": "A", "covered_residents": 60}],
    }
    assert to_domain(stored).risk_reserve_base == "after_catastrophic"
    fresh = to_domain({**stored, "risk_reserve_base": "raised_total", "catastrophic_amount": None})
    assert fresh.risk_reserve_base == "raised_total" and fresh.catastrophic_amount is None


# 11 — the deposit apart from the overspend sharing


def issue_year_end(score: int) -> YearEndInput:
    """The issue's community: budget 28,785,000,000 spent 30,000,000,000 (all of it care outside the
    community, charged to the budget), the deposit 5 % = 1,439,250,000 withheld over the year."""
    budget, deposit = 28_785_000_000, 1_439_250_000
    return YearEndInput(
        community="A",
        budget=CommunityBudget("A", 1, budget, 0, 0, []),
        dip_points={},
        dip_paid={},
        contract_months={},
        contract_fee=0,
        budget_left=budget - budget - 30_000_000_000,  # all prepaid, then the care charged
        cash=budget - deposit,  # prepaid less the deposit, nothing passed on to members
        deposit=deposit,
        score=Decimal(score),
        paid_to_members={},
        member_tiers={"H": "county"},
        surplus_weights={"county": Decimal(1)},
        overspend_community_share=Decimal("0.5"),
    )


def test_a_score_of_0_costs_the_community_its_whole_deposit_not_half_of_it() -> None:
    _, full = settlement_journal("411081", 2026, issue_year_end(100))
    j, none = settlement_journal("411081", 2026, issue_year_end(0))
    for fig in (full, none):  # spending against the budget is the same whatever the score
        assert (fig["overspend"], fig["community_bears"], fig["fund_bears"]) == (
            1_215_000_000,
            607_500_000,
            607_500_000,
        )
    assert (full["deposit_returned"], full["community_pays"]) == (1_439_250_000, 607_500_000)
    assert (none["deposit_kept"], none["community_pays"]) == (1_439_250_000, 607_500_000 + 1_439_250_000)
    assert int(str(none["community_pays"])) - int(str(full["community_pays"])) == 1_439_250_000
    lines_ = {x.account: x.amount for x in j.lines}
    assert lines_[acc.FUND_OVERSPEND] == -607_500_000 and lines_[acc.DEPOSIT_FORFEITED] == 1_439_250_000
    assert lines_[acc.OVERSPEND_BORNE] == -2_046_750_000 and sum(lines_.values()) == 0


def test_the_kept_deposit_comes_out_of_a_surplus_and_beyond_it_the_community_pays() -> None:
    # surplus 100 fen, deposit 1,000 kept in full: the members share nothing, the community puts in 900
    end = YearEnd(10_000, 9_900, Decimal("0.5"), deposit=1_000, score=0)
    assert (end.surplus, end.surplus_shared, end.community_pays, end.fund_bears) == (100, 0, 900, 0)
    # score 100 vs 0 differ by the whole deposit here too: 100 shared vs 900 paid
    back = YearEnd(10_000, 9_900, Decimal("0.5"), deposit=1_000, score=100)
    assert back.surplus_shared - back.community_pays - (end.surplus_shared - end.community_pays) == 1_000


# 12 — the year's deposit over the months


def test_the_derivations_deposit_is_the_prepayment_runs() -> None:
    p = params(
        individual_contribution=50,
        fiscal_subsidy=50,
        communities=(CommunityCover("A", 1), CommunityCover("B", 1)),
        catastrophic_rate=Decimal(0),
        accumulated_balance=600,
        monthly_payout=100,  # the reserve is waived: each community's budget is 100 fen
    )
    derived = lines(p)
    months = prepayments(100, p.quality_deposit_rate)
    assert derived["budget"] == 100 and derived["quality_deposit"] == 5 == sum(m.deposit for m in months)
    assert (derived["monthly_prepayment"], derived["monthly_deposit"]) == (months[0].gross, months[0].deposit)
    assert all(m.deposit <= m.gross for m in prepayments(13, Decimal(1)))  # a 100 % deposit still fits


def test_a_year_begun_with_monthly_rounding_makes_up_its_deposit_over_the_months_left() -> None:
    # 2,222,222,222 fen: 185,185,185.17 a month; the year's deposit 5 % = 111,111,111. Rounded month by
    # month (9,259,259.26 → 9,259,259) January to March withheld 27,777,777; the year's split gives the
    # first three months 9,259,260 (the remainder 3 goes to the earliest), which would leave the year 3
    # fen short. The months left share 83,333,334: 9,259,259 each and the remainder 3 to April–June.
    budget, rate = 2_222_222_222, Decimal("0.05")
    withheld = {m: apply_rate(p.gross, rate) for m, p in enumerate(prepayments(budget, rate)[:3], start=1)}
    assert withheld == {1: 9_259_259, 2: 9_259_259, 3: 9_259_259}
    for month in range(4, 13):
        withheld[month] = prepayment(budget, rate, month, withheld).deposit
    assert [withheld[m] for m in range(4, 13)] == [9_259_260] * 3 + [9_259_259] * 6
    assert sum(withheld.values()) == apply_rate(budget, rate) == 111_111_111
    # a year run month by month under the rule withholds what the derivation shows, month for month
    months = prepayments(budget, rate)
    done: dict[int, int] = {}
    for m in range(1, 13):
        p = prepayment(budget, rate, m, done)
        assert (p.gross, p.deposit) == (months[m - 1].gross, months[m - 1].deposit)
        done[m] = p.deposit
    # in any order, the last month run takes what is left: the year still adds up
    done = {}
    for m in (12, 1, 7, 3, 2, 11, 4, 5, 10, 6, 9, 8):
        done[m] = prepayment(budget, rate, m, done).deposit
    assert sum(done.values()) == 111_111_111


# 15 — contract fees by months in force, capitation by contract


def in_force(start: date, end: date, year: int) -> int:
    return sum(start <= d <= end for d in month_starts(year))


def test_a_year_long_contract_counts_twelve_months_across_the_years_it_spans() -> None:
    for start in (date(2026, 1, 1), date(2026, 3, 15), date(2026, 12, 31), date(2028, 2, 29)):
        end = date(start.year + 1, start.month, 28 if start.month == 2 else start.day) - timedelta(days=1)
        assert in_force(start, end, start.year) + in_force(start, end, start.year + 1) == 12
    assert in_force(date(2041, 4, 1), date(2042, 3, 31), 2041) == 9  # April to December


def test_a_terminated_contract_counts_the_months_before_its_termination_day_in_china() -> None:
    start, end = date(2046, 1, 1), date(2046, 12, 31)

    def months(terminated_at: datetime | None) -> int:
        return sum(in_force_on(d, start, end, terminated_at) for d in month_starts(2046))

    assert months(None) == 12
    assert months(datetime(2046, 9, 15, 10, tzinfo=SHANGHAI)) == 9  # January to September
    # 01:30 on 2 September in China is 1 September in UTC: the day is China's, so September counts
    assert months(datetime(2046, 9, 1, 17, 30, tzinfo=UTC)) == 9
    assert months(datetime(2046, 9, 1, 0, 0, tzinfo=SHANGHAI)) == 8  # terminated on the first: not in force
    assert months(datetime(2044, 6, 1, tzinfo=UTC)) == 0  # terminated before it started


def test_contract_fees_are_pro_rata_by_months_rounded_once_per_institution() -> None:
    # 3,000 a year: 9 months 2,250; 12 months 3,000; 1 month 250; 3,001 × 7 / 12 = 1,750.58 → 1,751
    assert contract_fees(3_000, {"T1": 9, "T2": 12, "T3": 1, "T4": 0}) == {
        "T1": 2_250,
        "T2": 3_000,
        "T3": 250,
    }
    assert contract_fees(3_001, {"T1": 7}) == {"T1": 1_751}


def test_a_month_without_heads_pays_no_capitation_rather_than_failing() -> None:
    assert capitation_for_month(1_200_000, 4, {"T1": 0}) == {}
    assert capitation_for_month(1_200_000, 4, {"T1": 1, "T2": 0}) == {"T1": 100_000}


# 17 — problems, not bare errors


def test_bad_figures_are_problems_not_bare_errors() -> None:
    with pytest.raises(ParameterError):  # insured counts of zero
        community_budgets(params(communities=(CommunityCover("A", 0), CommunityCover("B", 0))))
    with pytest.raises(Invalid):
        evaluate(5, 1, 1)
    assert evaluate(1, 100, 0).elapsed_budget == 27  # what January to March prepaid: 9 + 9 + 9
    surplus_without_members = YearEndInput(
        **{**vars(issue_year_end(100)), "budget_left": 0, "member_tiers": {}}
    )
    with pytest.raises(Conflict) as caught:
        settlement_journal("411081", 2026, surplus_without_members)
    assert caught.value.code == "no-members"

"""Billing's plain-Python pieces without a database: parameter checks, pricing along a chain, the
journals each run posts (always balanced), the quarterly projection, dispute decisions."""

from __future__ import annotations

from decimal import Decimal

import pytest

from services.billing import events as billing_events
from services.billing.domain import ledger as acc
from services.billing.domain.budget import CommunityBudget, prepayments
from services.billing.domain.claims import TierRule
from services.billing.domain.claims_batch import ClaimFacts, price_claims
from services.billing.domain.disputes import DisputeError, DisputeStatus, decided_amount
from services.billing.domain.evaluation import evaluate
from services.billing.domain.ledger import Journal, UnbalancedJournal
from services.billing.domain.out_of_county import care_journal
from services.billing.domain.parameters import (
    CommunityCover,
    ParameterError,
    YearParameters,
    check_parameters,
)
from services.billing.domain.postings import (
    MonthCharges,
    YearEndInput,
    capitation_for_month,
    month_close_journal,
    prepayment_journal,
    settlement_journal,
)
from shared import contracts
from shared.contracts import billing as billing_contracts
from shared.errors import Invalid
from shared.events import EventEnvelope

TIERS = {
    "village": TierRule(Decimal("0.90"), 10_000),
    "community": TierRule(Decimal("0.85"), 20_000),
    "township": TierRule(Decimal("0.85"), 20_000),
    "county": TierRule(Decimal("0.70"), 60_000),
}


def params(**overrides: object) -> YearParameters:
    values: dict[str, object] = dict(
        individual_contribution=40_000,
        fiscal_subsidy=60_000,
        catastrophic_rate=Decimal("0.08"),
        tiers=TIERS,
        unreferred_county_ratio=Decimal("0.50"),
        dip_budget_rate=Decimal("0.40"),
        dip_estimated_point_value=Decimal(100),
        communities=(CommunityCover("A", 60), CommunityCover("B", 40)),
    )
    values.update(overrides)
    return YearParameters(**values)  # type: ignore[arg-type]


def test_parameter_checks() -> None:
    check_parameters(params())
    for bad in (
        {"catastrophic_rate": Decimal("0.95")},
        {"outpatient_pool_rate": Decimal("0.95"), "contract_fee_rate": Decimal("0.10")},
        {"tiers": {"county": TIERS["county"]}},
        {"unreferred_county_ratio": Decimal("0.75")},
        {"communities": ()},
        {"communities": (CommunityCover("A", 1), CommunityCover("A", 2))},
        {"individual_contribution": -1},
        {"surplus_weights": {"county": Decimal(1)}},
    ):
        with pytest.raises(ParameterError):
            check_parameters(params(**bad))


def test_pricing_carries_the_deductible_along_each_chain() -> None:
    facts = [
        ClaimFacts("village", "outpatient", 50_000, False, False, "chain-1", None),
        ClaimFacts("county", "inpatient", 500_000, False, True, "chain-1", Decimal(1000)),
        ClaimFacts("county", "inpatient", 500_000, False, True, "chain-2", Decimal(1000)),
        ClaimFacts("township", "inpatient", 50_000, True, False, None, Decimal(200)),
    ]
    met = {"chain-2": 60_000}  # chain 2 met the whole county deductible in an earlier batch
    priced = price_claims(facts, params(), met)
    assert [(p.deductible_used, p.insurance_share) for p in priced] == [
        (10_000, 36_000),
        (50_000, 315_000),
        (0, 350_000),
        (20_000, 25_500),
    ]
    assert met == {"chain-1": 60_000, "chain-2": 60_000}
    assert priced[1].weighted_points == Decimal("1000.0000") and priced[3].weighted_points == Decimal(
        "200.0000"
    )


def test_runs_post_balanced_journals() -> None:
    p = prepayments(3_496_000)[0]
    j = prepayment_journal("B", 2026, p)
    assert {x.account: x.amount for x in j.lines} == {
        acc.BUDGET: -291_334,
        acc.CASH: 276_767,
        acc.DEPOSIT: 14_567,
    }
    charges = MonthCharges(
        {"H2": 168_000}, {"H1": 100_000}, capitation_for_month(1_200_000, 3, {"V1": 2, "T1": 1})
    )
    j = month_close_journal("A", 2026, 3, charges)
    assert charges.capitation == {"T1": 33_333, "V1": 66_667}
    assert sum(x.amount for x in j.lines) == 0 and len(j.lines) == 6
    with pytest.raises(UnbalancedJournal):
        bad = Journal("x", "x", "x")
        bad.add(acc.CASH, 1)
        bad.check()


def test_out_of_county_care_posts_a_balanced_journal_under_billings_journal_contract() -> None:
    j = care_journal("out_of_county:411081:2030:04:b1", 2030, 4, {"A": 300_000, "B": 20_000})
    assert [(x.account, x.amount, x.community_id) for x in j.lines] == [
        (acc.OUT_OF_COUNTY, 300_000, "A"),
        (acc.BUDGET, -300_000, "A"),
        (acc.OUT_OF_COUNTY, 20_000, "B"),
        (acc.BUDGET, -20_000, "B"),
    ]
    # the contract lists the kind like every journal's: billing.out_of_county.posted on the periods topic
    assert billing_contracts.TOPIC_OF_JOURNAL["out_of_county"] == billing_contracts.PERIODS
    kinds = {t for c in billing_contracts.JOURNALS for t in c.types}
    assert "billing.out_of_county.posted" in kinds
    e = billing_events.journal_posted(j, 9, "411081", 2030, 4, "411081")
    assert e.topic == billing_contracts.PERIODS
    data = contracts.decode(EventEnvelope.model_validate_json(e.envelope.to_bytes()))
    assert isinstance(data, billing_contracts.JournalPosted) and sum(x.amount for x in data.lines) == 0


def year_end(cash: int, budget_left: int, score: str) -> YearEndInput:
    return YearEndInput(
        community="A",
        budget=CommunityBudget("A", 60, 5_244_000, 1_200_000, 2_097_600, []),
        dip_points={"H1": Decimal(1000), "T1": Decimal(200)},
        dip_paid={"H1": 100_000, "T1": 20_000},
        contract_months={"T1": 12},  # one contract in force all year
        contract_fee=3_000,
        budget_left=budget_left,
        cash=cash,
        deposit=262_200,
        score=Decimal(score),
        paid_to_members={"H1": 100_000, "T1": 20_000, "V1": 1_200_000},
        member_tiers={"H1": "county", "T1": "township", "V1": "village"},
        surplus_weights={"county": Decimal(1), "township": Decimal("1.5"), "village": Decimal(2)},
        overspend_community_share=Decimal("0.5"),
    )


def test_settlement_journal_surplus_and_overspend_balance_and_empty_the_community() -> None:
    j, fig = settlement_journal("411081", 2026, year_end(3_661_800, -168_000, "90"))
    # budget left −168,000 + cash 3,661,800 − DIP 1,977,600 − fee 3,000 + deposit 262,200 = 1,775,400 surplus;
    # the deposit kept at score 90 (26,220) comes out of it: the members share 1,749,180
    assert (fig["surplus"], fig["deposit_kept"], fig["surplus_shared"]) == (1_775_400, 26_220, 1_749_180)
    assert fig["community_pays"] == 0 and sum(x.amount for x in j.lines) == 0
    cash = {x.account: x.amount for x in j.lines if x.community_id == "A" and x.institution_id is None}
    assert cash[acc.CASH] == -3_661_800 and cash[acc.BUDGET] == 168_000 and cash[acc.DEPOSIT] == -262_200
    j, fig = settlement_journal("411081", 2026, year_end(100_000, -2_500_000, "0"))
    # spending against the budget: cash 100,000 − DIP 1,977,600 − fee 3,000, budget left −2,500,000, the
    # deposit 262,200 withheld → −4,118,400, shared 50 : 50; then the deposit, kept in full (score 0)
    assert (fig["overspend"], fig["community_bears"], fig["fund_bears"]) == (4_118_400, 2_059_200, 2_059_200)
    assert (fig["deposit_kept"], fig["community_pays"]) == (262_200, 2_059_200 + 262_200)
    assert sum(x.amount for x in j.lines) == 0
    lines = {x.account: x.amount for x in j.lines if x.institution_id is None}
    assert lines[acc.OVERSPEND_BORNE] == -2_321_400 and lines[acc.FUND_OVERSPEND] == -2_059_200
    assert lines[acc.DEPOSIT_FORFEITED] == 262_200


def test_quarterly_projection() -> None:
    e = evaluate(1, 5_244_000, 588_000)
    assert (e.elapsed_budget, e.projected_spend, e.projected_result, e.flag) == (
        1_311_000,
        2_352_000,
        2_892_000,
        "on_track",
    )
    assert evaluate(2, 1_200_000, 700_000).flag == "alert"  # 700,000 / 600,000 = 117 %
    assert evaluate(4, 1_200_000, 1_250_000).flag == "watch"
    with pytest.raises(Invalid):
        evaluate(5, 1, 1)


def test_dispute_decisions() -> None:
    assert decided_amount(DisputeStatus.UPHELD, 98_000, 70_000, None) == 70_000
    assert decided_amount(DisputeStatus.REJECTED, 98_000, 70_000, None) == 98_000
    assert decided_amount(DisputeStatus.ADJUSTED, 98_000, 70_000, 84_000) == 84_000
    with pytest.raises(DisputeError):
        decided_amount(DisputeStatus.ADJUSTED, 98_000, 70_000, None)
    with pytest.raises(DisputeError):
        decided_amount(DisputeStatus.OPEN, 98_000, 70_000, None)

"""The community insurance package: global budget, its split among communities, and the monthly
prepayment with the quality deposit withheld (seed 004 §十七). All money in integer fen."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from shared.money import allocate, apply_rate

from .parameters import ParameterError, YearParameters

MONTHS = 12


class BudgetError(ValueError):
    pass


@dataclass(frozen=True)
class FundYear:
    """A county's resident-insurance year, as the insurance officer enters it."""

    raised_total: int  # 县域居民医保筹资总额
    catastrophic_share: int  # 大病保险
    risk_reserve_rate: Decimal = Decimal("0.05")
    accumulated_balance: int = 0  # 累计结余
    monthly_payout: int = 0  # average payout per month, to test the 6-month rule

    def __post_init__(self) -> None:
        if min(self.raised_total, self.catastrophic_share, self.accumulated_balance, self.monthly_payout) < 0:
            raise BudgetError("money cannot be negative")
        if self.catastrophic_share > self.raised_total:
            raise BudgetError("the catastrophic share exceeds the raised total")
        if not Decimal(0) <= self.risk_reserve_rate < 1:
            raise BudgetError("the risk-reserve rate must be in [0, 1)")


@dataclass(frozen=True)
class BudgetLine:
    label: str
    fen: int


def risk_reserve_waived(year: FundYear) -> bool:
    """No reserve when the accumulated balance already covers six months of payouts."""
    return year.monthly_payout > 0 and year.accumulated_balance >= 6 * year.monthly_payout


def county_fund(year: FundYear) -> list[BudgetLine]:
    """The derivation, line by line: raised − catastrophic − risk reserve = the communities' fund."""
    after_catastrophic = year.raised_total - year.catastrophic_share
    reserve = 0 if risk_reserve_waived(year) else apply_rate(after_catastrophic, year.risk_reserve_rate)
    return [
        BudgetLine("raised_total", year.raised_total),
        BudgetLine("catastrophic_share", -year.catastrophic_share),
        BudgetLine("risk_reserve", -reserve),
        BudgetLine("community_fund", after_catastrophic - reserve),
    ]


@dataclass(frozen=True)
class CommunityShare:
    community: str
    covered_residents: int
    adjustment: Decimal = Decimal(1)  # history and growth, agreed per year (1 = none)


def split_fund(fund: int, communities: list[CommunityShare]) -> dict[str, int]:
    """By covered insured residents × adjustment; largest remainder, so the parts add up to the fund."""
    if not communities or any(c.covered_residents < 0 or c.adjustment <= 0 for c in communities):
        raise BudgetError("every community needs residents ≥ 0 and a positive adjustment")
    parts = allocate(fund, [Decimal(c.covered_residents) * c.adjustment for c in communities])
    return {c.community: p for c, p in zip(communities, parts, strict=True)}


@dataclass(frozen=True)
class Prepayment:
    month: int
    gross: int
    deposit: int  # 质量保证金, withheld

    @property
    def paid(self) -> int:
        return self.gross - self.deposit


def prepayments(budget: int, deposit_rate: Decimal = Decimal("0.05")) -> list[Prepayment]:
    """1/12 a month (the year adds up to the budget exactly), the deposit withheld from each month."""
    gross = allocate(budget, [1] * MONTHS)
    return [Prepayment(m + 1, g, apply_rate(g, deposit_rate)) for m, g in enumerate(gross)]


@dataclass(frozen=True)
class CommunityBudget:
    community_id: str
    covered_residents: int
    amount: int
    capitation_pool: int  # outpatient capitation, paid monthly by covered person
    dip_budget: int  # inpatient, paid by DIP points
    derivation: list[BudgetLine]


def fund_year(p: YearParameters) -> FundYear:
    return FundYear(
        raised_total=p.raised_total,
        catastrophic_share=apply_rate(p.raised_total, p.catastrophic_rate),
        risk_reserve_rate=p.risk_reserve_rate,
        accumulated_balance=p.accumulated_balance,
        monthly_payout=p.monthly_payout,
    )


def community_budgets(p: YearParameters) -> list[CommunityBudget]:
    """Every community's budget with its derivation, line by line (county lines first)."""
    county = county_fund(fund_year(p))
    shares = split_fund(
        county[-1].fen,
        [CommunityShare(c.community_id, c.covered_residents, c.adjustment) for c in p.communities],
    )
    out = []
    for cover in p.communities:
        amount = shares[cover.community_id]
        capitation = apply_rate(cover.covered_residents * p.individual_contribution, p.outpatient_pool_rate)
        dip = apply_rate(amount, p.dip_budget_rate)
        if capitation + dip > amount:
            raise ParameterError(
                "门诊统筹与 DIP 预算之和超过医共体预算",
                "the outpatient pool and the DIP budget together exceed the community budget",
            )
        first = prepayments(amount, p.quality_deposit_rate)[0]
        lines = [
            BudgetLine("covered_residents_county", p.covered_total),
            BudgetLine("contribution_per_person", p.individual_contribution + p.fiscal_subsidy),
            *county,
            BudgetLine("covered_residents", cover.covered_residents),
            BudgetLine("budget", amount),
            BudgetLine("capitation_pool", capitation),
            BudgetLine("dip_budget", dip),
            BudgetLine("other_care", amount - capitation - dip),
            BudgetLine("monthly_prepayment", first.gross),
            BudgetLine("monthly_deposit", first.deposit),
        ]
        out.append(
            CommunityBudget(cover.community_id, cover.covered_residents, amount, capitation, dip, lines)
        )
    return out

"""The community insurance package: global budget, its split among communities, and the monthly
prepayment with the quality deposit withheld (seed 004 §十七). All money in integer fen.

The derivation is a list of (label, fen) lines an officer reads top to bottom. A line whose label carries
a reading after a colon says which of the county's readings was used and what it was taken from:
`catastrophic_basis:rate|per_person|amount` (fen: the raised total the rate is of, the amount per insured
person, the county amount), `risk_reserve_base:raised_total|after_catastrophic` (fen: the base the
reserve rate is of), `dip_basis:rate|county_amount` (fen: the community budget the rate is of, the county
DIP amount split like the fund)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from shared.money import allocate, apply_rate

from .parameters import RISK_RESERVE_BASE, ParameterError, YearParameters

MONTHS = 12


@dataclass(frozen=True)
class FundYear:
    """A county's resident-insurance year, as the insurance officer enters it."""

    raised_total: int  # 县域居民医保筹资总额
    catastrophic_share: int  # 大病保险
    risk_reserve_rate: Decimal = Decimal("0.05")
    accumulated_balance: int = 0  # 累计结余
    monthly_payout: int = 0  # average payout per month, to test the 6-month rule
    risk_reserve_base: str = "raised_total"  # "以筹资总额为基数": the literal reading

    def __post_init__(self) -> None:
        if min(self.raised_total, self.catastrophic_share, self.accumulated_balance, self.monthly_payout) < 0:
            raise ParameterError("金额不能为负", "money cannot be negative")
        if self.catastrophic_share > self.raised_total:
            raise ParameterError(
                "大病保险资金超过筹资总额", "catastrophic insurance exceeds the raised total it is taken from"
            )
        if not Decimal(0) <= self.risk_reserve_rate < 1:
            raise ParameterError("风险储备金比例须在 [0, 1) 之间", "the risk-reserve rate must be in [0, 1)")
        if self.risk_reserve_base not in RISK_RESERVE_BASE:
            raise ParameterError(
                f"risk_reserve_base 须为 {'|'.join(RISK_RESERVE_BASE)}",
                f"risk_reserve_base must be one of {'|'.join(RISK_RESERVE_BASE)}",
            )


@dataclass(frozen=True)
class BudgetLine:
    label: str
    fen: int


def risk_reserve_waived(year: FundYear) -> bool:
    """No reserve when the accumulated balance already covers six months of payouts."""
    return year.monthly_payout > 0 and year.accumulated_balance >= 6 * year.monthly_payout


def county_fund(year: FundYear) -> list[BudgetLine]:
    """The derivation, line by line: raised − catastrophic − risk reserve (rate × its base, the base named
    on its own line) = the communities' fund."""
    after_catastrophic = year.raised_total - year.catastrophic_share
    base = year.raised_total if year.risk_reserve_base == "raised_total" else after_catastrophic
    reserve = 0 if risk_reserve_waived(year) else apply_rate(base, year.risk_reserve_rate)
    if reserve > after_catastrophic:
        raise ParameterError(
            "大病保险与风险储备金合计须低于筹资总额",
            "catastrophic insurance and risk reserve together must stay below the raised total",
        )
    return [
        BudgetLine("raised_total", year.raised_total),
        BudgetLine("catastrophic_share", -year.catastrophic_share),
        BudgetLine(f"risk_reserve_base:{year.risk_reserve_base}", base),
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
    if not communities or any(c.covered_residents <= 0 or c.adjustment <= 0 for c in communities):
        raise ParameterError(
            "每个医共体的参保人数与调整系数须为正", "covered residents and adjustment must be positive"
        )
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
    """1/12 of the budget a month, and the year's deposit (rate × budget, half-up) 1/12 a month, both by
    largest remainder: the twelve months add up to the budget and the twelve deposits to the year's
    deposit exactly (a deposit rounded per month could be 6 fen off, and a 100-fen budget withhold 0), and
    no month's deposit exceeds its prepayment (the year's deposit is at most the budget, and the earlier
    months take the remainders of both)."""
    gross = allocate(budget, [1] * MONTHS)
    deposits = allocate(apply_rate(budget, deposit_rate), [1] * MONTHS)
    return [Prepayment(m + 1, g, d) for m, (g, d) in enumerate(zip(gross, deposits, strict=True))]


def prepayment(budget: int, deposit_rate: Decimal, month: int, withheld: Mapping[int, int]) -> Prepayment:
    """Month `month`'s prepayment, the months in `withheld` (month → deposit) being posted already: its
    gross as in `prepayments`, its deposit the year's deposit less what the posted months withheld, split
    by largest remainder over the months not posted yet (this one among them, in month order). Run in month
    order under this rule it is `prepayments(...)[month - 1]`; in a year begun when each month's deposit
    was rounded on its own, the months left make up the difference, so the twelve still withhold the
    derivation's quality_deposit to the fen. Never below 0 nor above the month's gross (only a budget of a
    few fen could ask for either; its year is then off by that much)."""
    gross = allocate(budget, [1] * MONTHS)[month - 1]
    earlier = {m: d for m, d in withheld.items() if m != month}
    to_come = [m for m in range(1, MONTHS + 1) if m not in earlier]
    left = apply_rate(budget, deposit_rate) - sum(earlier.values())
    deposit = allocate(left, [1] * len(to_come))[to_come.index(month)]
    return Prepayment(month, gross, min(max(deposit, 0), gross))


@dataclass(frozen=True)
class CommunityBudget:
    community_id: str
    covered_residents: int
    amount: int
    capitation_pool: int  # outpatient capitation, paid monthly by covered or contracted person
    dip_budget: int  # inpatient, paid by DIP points
    derivation: list[BudgetLine]


def fund_year(p: YearParameters) -> FundYear:
    return FundYear(
        raised_total=p.raised_total,
        catastrophic_share=p.catastrophic_share,
        risk_reserve_rate=p.risk_reserve_rate,
        accumulated_balance=p.accumulated_balance,
        monthly_payout=p.monthly_payout,
        risk_reserve_base=p.risk_reserve_base,
    )


def county_lines(p: YearParameters) -> list[BudgetLine]:
    """The county's part of the derivation, with the form catastrophic insurance was given in."""
    lines = county_fund(fund_year(p))
    if p.catastrophic_per_person is not None:
        basis = BudgetLine("catastrophic_basis:per_person", p.catastrophic_per_person)
    elif p.catastrophic_amount is not None:
        basis = BudgetLine("catastrophic_basis:amount", p.catastrophic_amount)
    else:
        basis = BudgetLine("catastrophic_basis:rate", p.raised_total)
    return [lines[0], basis, *lines[1:]]


def _dip_budgets(p: YearParameters, fund: int, amounts: dict[str, int]) -> dict[str, tuple[BudgetLine, int]]:
    """Each community's DIP budget, with the line saying where it came from: a rate of its budget, or its
    part of the county's DIP amount split like the fund (so the parts add up to the amount)."""
    if p.dip_budget_amount is None:
        rate = p.dip_budget_rate or Decimal(0)
        return {c: (BudgetLine("dip_basis:rate", a), apply_rate(a, rate)) for c, a in amounts.items()}
    if p.dip_budget_amount > fund:
        raise ParameterError(
            "DIP 总额预算超过医共体资金总额",
            f"the DIP amount {p.dip_budget_amount} exceeds the communities' fund {fund} it is taken from",
        )
    parts = allocate(
        p.dip_budget_amount, [Decimal(c.covered_residents) * c.adjustment for c in p.communities]
    )
    basis = BudgetLine("dip_basis:county_amount", p.dip_budget_amount)
    return {c.community_id: (basis, part) for c, part in zip(p.communities, parts, strict=True)}


def community_budgets(p: YearParameters) -> list[CommunityBudget]:
    """Every community's budget with its derivation, line by line (county lines first). Raises
    `ParameterError` when an amount exceeds what it is taken from, so `set_parameters` runs it too."""
    county = county_lines(p)
    fund = county[-1].fen
    amounts = split_fund(
        fund, [CommunityShare(c.community_id, c.covered_residents, c.adjustment) for c in p.communities]
    )
    dips = _dip_budgets(p, fund, amounts)
    out = []
    for cover in p.communities:
        amount = amounts[cover.community_id]
        capitation = apply_rate(cover.covered_residents * p.individual_contribution, p.outpatient_pool_rate)
        dip_basis, dip = dips[cover.community_id]
        if capitation + dip > amount:
            raise ParameterError(
                "门诊统筹与 DIP 预算之和超过医共体预算",
                "the outpatient pool and the DIP budget together exceed the community budget",
            )
        months = prepayments(amount, p.quality_deposit_rate)
        lines = [
            BudgetLine("covered_residents_county", p.covered_total),
            BudgetLine("contribution_per_person", p.individual_contribution + p.fiscal_subsidy),
            *county,
            BudgetLine("covered_residents", cover.covered_residents),
            BudgetLine("budget", amount),
            BudgetLine("capitation_pool", capitation),
            dip_basis,
            BudgetLine("dip_budget", dip),
            BudgetLine("other_care", amount - capitation - dip),
            BudgetLine("monthly_prepayment", months[0].gross),
            BudgetLine("quality_deposit", sum(m.deposit for m in months)),
            BudgetLine("monthly_deposit", months[0].deposit),
        ]
        out.append(
            CommunityBudget(cover.community_id, cover.covered_residents, amount, capitation, dip, lines)
        )
    return out

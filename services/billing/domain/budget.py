"""The community insurance package: global budget, its split among communities, and the monthly
prepayment with the quality deposit withheld (seed 004 §十七). All money in integer fen."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from shared.money import allocate, apply_rate

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

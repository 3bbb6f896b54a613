"""DIP point value, capitation, contract fees, and the year-end settlement (seed 004 §十七/十八)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from shared.money import allocate, apply_rate


def point_value(dip_budget: int, total_points: Decimal) -> Decimal:
    """Fen per point for the period; four decimals, the payments themselves are rounded to the fen."""
    if total_points <= 0:
        raise ValueError("no DIP points in the period")
    return (Decimal(dip_budget) / total_points).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)


def dip_payment(points: Decimal, value: Decimal) -> int:
    return int((points * value).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def capitation_pool(individual_contributions: int, share: Decimal = Decimal("0.50")) -> int:
    """Outpatient pool ≈ 50 % of the individual contributions."""
    return apply_rate(individual_contributions, share)


def contract_fee(individual_contribution: int, rate: Decimal = Decimal("0.075")) -> int:
    """Family-doctor contract fee per contract and year: 7.5 % of the individual contribution."""
    return apply_rate(individual_contribution, rate)


@dataclass(frozen=True)
class YearEnd:
    budget: int
    spent: int
    overspend_community_share: Decimal  # the community's part of a reasonable overspend

    @property
    def surplus(self) -> int:
        return max(0, self.budget - self.spent)

    @property
    def overspend(self) -> int:
        return max(0, self.spent - self.budget)

    @property
    def community_bears(self) -> int:
        return apply_rate(self.overspend, self.overspend_community_share)

    @property
    def fund_bears(self) -> int:
        return self.overspend - self.community_bears


def distribute_surplus(surplus: int, weights: dict[str, Decimal]) -> dict[str, int]:
    """Surplus retained by the community, shared among members with a tilt to townships and villages."""
    names = list(weights)
    return dict(zip(names, allocate(surplus, [weights[n] for n in names]), strict=True))


def deposit_returned(deposit: int, score: Decimal) -> int:
    """The quality deposit comes back in proportion to the assessment score (0–100)."""
    if not Decimal(0) <= score <= 100:
        raise ValueError("score must be 0–100")
    return apply_rate(deposit, score / 100)

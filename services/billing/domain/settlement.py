"""DIP point value, capitation, contract fees, and the year-end settlement (seed 004 §十七/十八)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal

from shared.clock import SHANGHAI
from shared.errors import Invalid
from shared.money import allocate, apply_rate

MONTHS = 12


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


def month_starts(year: int) -> list[date]:
    """The days a contract is counted on: it counts for a month when it is in force on the month's first
    day. A year-long term (start to the day before the anniversary) is then in force on exactly twelve
    first days, wherever it starts, so the years it spans share its twelve months without overlap, and a
    contract terminated before the settlement keeps the months it was in force (`in_force_on`)."""
    return [date(year, m, 1) for m in range(1, MONTHS + 1)]


def in_force_on(day: date, start: date, end: date, terminated_at: datetime | None) -> bool:
    """Whether a contract counts on `day` (a month's first day): inside its term, and before the day it
    was terminated, a calendar day in China. A contract terminated mid-term is paid for the months up to
    its termination and no further (the resident may sign with another team, which is then paid), one
    terminated before it started for none. usecases/runs._contracts_in_force counts by this rule in SQL."""
    if terminated_at is not None and day >= terminated_at.astimezone(SHANGHAI).date():
        return False
    return start <= day <= end


def contract_fees(fee_per_year: int, contract_months: dict[str, int]) -> dict[str, int]:
    """Fee × contract-months ÷ 12 per team institution, rounded half-up to the fen once per institution (not
    per contract): twelve months of one contract are exactly the fee, and the figure does not depend on
    when the settlement runs."""
    return {
        inst: int((Decimal(fee_per_year * n) / MONTHS).quantize(Decimal(1), rounding=ROUND_HALF_UP))
        for inst, n in sorted(contract_months.items())
        if n > 0
    }


def deposit_returned(deposit: int, score: Decimal | int) -> int:
    """The quality deposit comes back in proportion to the assessment score (0–100)."""
    score = Decimal(score)
    if not Decimal(0) <= score <= 100:
        raise Invalid("scores-needed", "考核得分须在 0–100 之间", f"the score must be 0–100, not {score}")
    return apply_rate(deposit, score / 100)


@dataclass(frozen=True)
class YearEnd:
    """A community's year-end result in two separate steps (004 §十七): spending against the budget first
    (a surplus kept, an overspend shared with the fund by `overspend_community_share`), then the quality
    deposit returned or kept by the score, in full. So a score of 0 costs the community its whole deposit
    whatever the spending; counting the kept deposit as spending would let the fund bear part of it."""

    budget: int
    spent: int
    overspend_community_share: Decimal  # the community's part of a reasonable overspend
    deposit: int = 0  # withheld over the year
    score: Decimal | int = 100

    @property
    def surplus(self) -> int:
        return max(0, self.budget - self.spent)

    @property
    def overspend(self) -> int:
        return max(0, self.spent - self.budget)

    @property
    def community_bears(self) -> int:
        """The community's part of the overspend (the deposit is apart: `community_pays`)."""
        return apply_rate(self.overspend, self.overspend_community_share)

    @property
    def fund_bears(self) -> int:
        return self.overspend - self.community_bears

    @property
    def deposit_returned(self) -> int:
        return deposit_returned(self.deposit, self.score)

    @property
    def deposit_kept(self) -> int:
        return self.deposit - self.deposit_returned

    @property
    def surplus_shared(self) -> int:
        """What the members share: the surplus less the kept deposit (the fund holds that part already)."""
        return max(0, self.surplus - self.deposit_kept)

    @property
    def community_pays(self) -> int:
        """What the community puts in at the end: its part of an overspend and the kept deposit its
        surplus does not cover."""
        return self.community_bears + max(0, self.deposit_kept - self.surplus)


def distribute_surplus(surplus: int, weights: dict[str, Decimal]) -> dict[str, int]:
    """Surplus retained by the community, shared among members with a tilt to townships and villages."""
    names = list(weights)
    return dict(zip(names, allocate(surplus, [weights[n] for n in names]), strict=True))

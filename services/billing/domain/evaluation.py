"""Quarterly evaluation: spending against the time-elapsed share of the budget, and a straight-line
projection of the year-end result (seed 004 §十七: 季度评估)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from shared.errors import Invalid
from shared.money import allocate

from .budget import MONTHS


@dataclass(frozen=True)
class Evaluation:
    quarter: int
    budget: int
    spent: int
    elapsed_budget: int  # the budget prepaid for the months elapsed (gross, before the deposit)
    projected_spend: int
    projected_result: int  # > 0 surplus, < 0 overspend: spending against the budget, as the settlement's
    spend_rate: Decimal  # spent ÷ elapsed budget
    flag: str  # on_track | watch (> 100 %) | alert (> 110 %)


def evaluate(quarter: int, budget: int, spent: int) -> Evaluation:
    """The elapsed share is what the monthly prepayments moved out of the budget (the same largest-remainder
    months), and the projected result is the settlement's first step (spending against the budget); the
    quality deposit is decided apart, by the score, so it is not in the projection."""
    if quarter not in (1, 2, 3, 4):
        raise Invalid("bad-quarter", "季度须为 1–4", "quarter must be 1–4")
    months = quarter * 3
    elapsed = sum(allocate(budget, [1] * MONTHS)[:months])
    projected = int((Decimal(spent) * 12 / months).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    rate = (Decimal(spent) / elapsed).quantize(Decimal("0.0001")) if elapsed else Decimal(0)
    flag = "alert" if rate > Decimal("1.10") else "watch" if rate > 1 else "on_track"
    return Evaluation(quarter, budget, spent, elapsed, projected, budget - projected, rate, flag)

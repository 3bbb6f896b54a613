"""Quarterly evaluation: spending against the time-elapsed share of the budget, and a straight-line
projection of the year-end result (seed 004 §十七: 季度评估)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal


@dataclass(frozen=True)
class Evaluation:
    quarter: int
    budget: int
    spent: int
    elapsed_budget: int  # the budget's share for the months elapsed
    projected_spend: int
    projected_result: int  # > 0 surplus, < 0 overspend
    spend_rate: Decimal  # spent ÷ elapsed budget
    flag: str  # on_track | watch (> 100 %) | alert (> 110 %)


def evaluate(quarter: int, budget: int, spent: int) -> Evaluation:
    if quarter not in (1, 2, 3, 4):
        raise ValueError("quarter must be 1–4")
    months = quarter * 3
    elapsed = (budget * months) // 12
    projected = int((Decimal(spent) * 12 / months).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    rate = (Decimal(spent) / elapsed).quantize(Decimal("0.0001")) if elapsed else Decimal(0)
    flag = "alert" if rate > Decimal("1.10") else "watch" if rate > 1 else "on_track"
    return Evaluation(quarter, budget, spent, elapsed, projected, budget - projected, rate, flag)

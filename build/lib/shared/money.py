"""Money is integer fen. Splits use largest remainder so the parts add up to the total exactly."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated

from pydantic import Field, StrictInt

Fen = Annotated[StrictInt, Field(ge=0, description="amount in fen (0.01 yuan), integer")]


def yuan_to_fen(yuan: str | Decimal) -> int:
    return int((Decimal(yuan) * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def fen_to_yuan(fen: int) -> str:
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100}.{abs(fen) % 100:02d}"


def apply_rate(amount_fen: int, rate: Decimal) -> int:
    """amount × rate, rounded half-up to the fen."""
    return int((Decimal(amount_fen) * rate).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def allocate(total_fen: int, weights: Sequence[int | Decimal]) -> list[int]:
    """Split `total_fen` in proportion to `weights` (largest remainder; ties go to the earlier part)."""
    if not weights:
        raise ValueError("no weights")
    if any(w < 0 for w in weights):
        raise ValueError("negative weight")
    weight_sum = sum(Decimal(w) for w in weights)
    if weight_sum == 0:
        raise ValueError("weights sum to zero")
    exact = [Decimal(total_fen) * Decimal(w) / weight_sum for w in weights]
    parts = [int(x) for x in exact]  # truncates toward zero
    short = total_fen - sum(parts)
    order = sorted(range(len(weights)), key=lambda i: (-abs(exact[i] - parts[i]), i))
    step = 1 if short >= 0 else -1
    for i in order[: abs(short)]:
        parts[i] += step
    return parts

"""Family-doctor coverage against the targets of seed 002 §21."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal


@dataclass(frozen=True)
class CoverageTargets:
    residents: Decimal = Decimal("0.30")
    key_populations: Decimal = Decimal("0.60")
    registered_poor: Decimal = Decimal("1.00")


@dataclass(frozen=True)
class CoverageCounts:
    residents: int
    residents_signed: int
    key_population: int
    key_population_signed: int
    registered_poor: int
    registered_poor_signed: int


@dataclass(frozen=True)
class CoverageLine:
    population: str
    total: int
    signed: int
    rate: Decimal | None
    target: Decimal
    meets_target: bool


def _rate(signed: int, total: int) -> Decimal | None:
    if total == 0:
        return None
    return (Decimal(signed) / Decimal(total)).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)


def evaluate_coverage(
    counts: CoverageCounts, targets: CoverageTargets = CoverageTargets()
) -> list[CoverageLine]:
    """A target counts as met when nobody is in the group (nothing to cover)."""
    lines = []
    for name, total, signed, target in (
        ("residents", counts.residents, counts.residents_signed, targets.residents),
        ("key_populations", counts.key_population, counts.key_population_signed, targets.key_populations),
        ("registered_poor", counts.registered_poor, counts.registered_poor_signed, targets.registered_poor),
    ):
        if signed > total or signed < 0:
            raise ValueError(f"{name}: signed {signed} outside 0..{total}")
        lines.append(
            CoverageLine(name, total, signed, _rate(signed, total), target, signed >= target * total)
        )
    return lines

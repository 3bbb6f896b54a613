"""Family-doctor coverage against the county's targets (seed 002 §21: 30 % of residents, 60 % of key
populations, every registered poor resident; the county's settings say what is in force)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal


@dataclass(frozen=True)
class CoverageTargets:
    residents: Decimal
    key_populations: Decimal
    registered_poor: Decimal


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


def coverage_rate(signed: int, total: int) -> Decimal | None:
    """Signed over total to four decimals; none when nobody is in the group."""
    if total == 0:
        return None
    return (Decimal(signed) / Decimal(total)).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)


def evaluate_coverage(counts: CoverageCounts, targets: CoverageTargets) -> list[CoverageLine]:
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
            CoverageLine(name, total, signed, coverage_rate(signed, total), target, signed >= target * total)
        )
    return lines

"""Loading the service's own aggregates for the use cases and queries: an insurance year with the
parameters it uses (stored JSON → the domain's `YearParameters`), a year's budgets. (Read models of registry and referral
data for pricing claims are `lookups.py`; lists and reports are `queries.py`.)"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from shared.errors import Conflict

from .domain.claims import TierRule
from .domain.parameters import AMOUNTS, CHOICES, CommunityCover, YearParameters
from .models import Budget, InsuranceYear, ParameterVersion

# a version stored before a reading became a parameter keeps the reading the engine applied then
LEGACY_READINGS = {"risk_reserve_base": "after_catastrophic"}


def to_domain(d: dict[str, Any]) -> YearParameters:
    """Stored JSON (rates as strings, amounts as integers, readings as words; a form not given is null) →
    the domain's parameters."""
    dec: dict[str, Any] = {
        k: v if k in CHOICES else Decimal(str(v)) for k, v in d.items() if isinstance(v, str)
    }
    dec |= {k: v for k, v in LEGACY_READINGS.items() if k not in d}
    extra: dict[str, Any] = {}
    for name in ("dip_tier_coefficients", "surplus_weights"):
        if d.get(name):
            extra[name] = {k: Decimal(str(v)) for k, v in d[name].items()}
    return YearParameters(
        individual_contribution=d["individual_contribution"],
        fiscal_subsidy=d["fiscal_subsidy"],
        **{k: d[k] for k in AMOUNTS if d.get(k) is not None},
        tiers={k: TierRule(Decimal(str(v["ratio"])), v["deductible"]) for k, v in d["tiers"].items()},
        communities=tuple(
            CommunityCover(
                str(c["community_id"]), c["covered_residents"], Decimal(str(c.get("adjustment", 1)))
            )
            for c in d["communities"]
        ),
        **dec,
        **extra,
    )


async def load_year(
    s: AsyncSession, county: str, year: int, lock: bool = False
) -> tuple[InsuranceYear, YearParameters]:
    q = sa.select(InsuranceYear).where(InsuranceYear.county_code == county, InsuranceYear.year == year)
    if lock:
        q = q.with_for_update()
    row = await s.scalar(q)
    if row is None:
        raise Conflict(
            "year-not-budgeted",
            f"{county} {year} 年度尚未编制预算",
            f"no budgets have been derived for {county} {year}",
        )
    params = await s.scalar(
        sa.select(ParameterVersion.parameters).where(
            ParameterVersion.county_code == county,
            ParameterVersion.year == year,
            ParameterVersion.version == row.parameter_version,
        )
    )
    assert params is not None
    return row, to_domain(params)


async def budgets_of(s: AsyncSession, county: str, year: int) -> list[Budget]:
    """Every community's budget of the year, with its derivation."""
    return list(
        (
            await s.scalars(
                sa.select(Budget)
                .where(Budget.county_code == county, Budget.year == year)
                .order_by(Budget.community_id)
            )
        ).all()
    )

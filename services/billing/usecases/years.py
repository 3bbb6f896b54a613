"""Insurance-year parameters (versioned, frozen once budgets use them) and the derived budgets."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import collect
from shared.errors import Conflict, Invalid
from shared.principal import Principal

from .. import events
from ..access import check_officer
from ..domain.budget import community_budgets, county_lines
from ..domain.parameters import check_parameters
from ..domain.postings import budget_journal
from ..models import Budget, InsuranceYear, ParameterVersion, RmCommunity
from ..queries import version_out
from ..repository import budgets_of, to_domain
from ..schemas import ParametersIn, ParameterVersionOut, RunOut
from .ledger import post_journal


async def set_parameters(
    s: AsyncSession, who: Principal, county: str, year: int, body: ParametersIn, now: datetime
) -> ParameterVersionOut:
    """Store a new version; refused once the year's budgets are derived (they are frozen then)."""
    check_officer(who)
    await s.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext(f"params:{county}:{year}"))))
    if await s.get(InsuranceYear, (county, year)) is not None:
        raise Conflict(
            "parameters-frozen",
            "该年度预算已编制，参数不可再改",
            "the year's budgets are derived; its parameters are frozen",
        )
    data = body.model_dump(mode="json")
    params = to_domain(data)
    check_parameters(params)  # a ParameterError is the client's 422
    community_budgets(params)  # and so is an amount beyond what it is taken from, found now, not at deriving
    wanted = {c.community_id for c in body.communities}
    known = set(
        (
            await s.scalars(
                sa.select(RmCommunity.id).where(RmCommunity.id.in_(wanted), RmCommunity.county_code == county)
            )
        ).all()
    )
    if wanted - known:
        raise Invalid(
            "unknown-community",
            "参数中有不属于该县的医共体",
            f"communities not known in county {county}: {sorted(map(str, wanted - known))}",
        )
    latest = await s.scalar(
        sa.select(sa.func.max(ParameterVersion.version)).where(
            ParameterVersion.county_code == county, ParameterVersion.year == year
        )
    )
    row = ParameterVersion(
        id=uuid.uuid4(),
        county_code=county,
        year=year,
        version=(latest or 0) + 1,
        parameters=data,
        created_by=who.subject,
        created_at=now,
    )
    s.add(row)
    await s.flush()
    return version_out(row, None)


async def derive_budgets(s: AsyncSession, who: Principal, county: str, year: int, now: datetime) -> RunOut:
    """Budgets of every community from the latest parameters; deriving twice changes nothing."""
    check_officer(who)
    await s.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext(f"params:{county}:{year}"))))
    existing = await s.get(InsuranceYear, (county, year))
    if existing is None:
        row = await s.scalar(
            sa.select(ParameterVersion)
            .where(ParameterVersion.county_code == county, ParameterVersion.year == year)
            .order_by(ParameterVersion.version.desc())
            .limit(1)
        )
        if row is None:
            raise Conflict("no-parameters", "该年度尚未设置参数", f"no parameters set for {county} {year}")
        params = to_domain(row.parameters)
        budgets = community_budgets(params)
        lines = county_lines(params)
        s.add(InsuranceYear(county_code=county, year=year, parameter_version=row.version, status="budgeted"))
        for b in budgets:
            s.add(
                Budget(
                    county_code=county,
                    year=year,
                    community_id=uuid.UUID(b.community_id),
                    parameter_version=row.version,
                    covered_residents=b.covered_residents,
                    amount=b.amount,
                    capitation_pool=b.capitation_pool,
                    dip_budget=b.dip_budget,
                    derivation=[{"label": x.label, "fen": x.fen} for x in b.derivation],
                    created_at=now,
                )
            )
        await s.flush()
        journal = budget_journal(county, year, lines, budgets)
        await post_journal(s, journal, county, year, None, now, county)
        for budget in await budgets_of(s, county, year):  # each community's budget with its derivation
            collect(s, events.budget_derived(budget))
        return RunOut(
            kind="budget",
            county_code=county,
            year=year,
            posted=True,
            journals=[{"key": journal.key, "lines": len(journal.lines)}],
        )
    return RunOut(kind="budget", county_code=county, year=year, posted=False, journals=[])

"""Read side: searches, pages and the coverage statistics (set-based SQL)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from shared.county_policy import Versioned
from shared.crud import where_equal
from shared.pagination import Page, PageParams

from . import models as m
from . import repository as repo
from .domain.contracts import KeyPopulation
from .domain.coverage import CoverageCounts, coverage_rate, evaluate_coverage
from .domain.practitioners import add_months
from .domain.settings import RegistryRules
from .schemas import (
    CatalogueEntryOut,
    CatalogueSummaryOut,
    CommunityOut,
    ContractOut,
    CoverageLineOut,
    CoverageOut,
    DepartmentOut,
    InstitutionOut,
    KeyPopulationCoverageOut,
    PostingOut,
    PractitionerOut,
    RegionOut,
    ResidentOut,
    TeamMemberOut,
    TeamOut,
)


def _name_like(column: Any, q: str | None) -> Any:
    return sa.true() if not q else column.ilike("%" + q.replace("%", r"\%").replace("_", r"\_") + "%")


async def list_regions(s: AsyncSession, page: PageParams, parent_code: str | None) -> Page[RegionOut]:
    stmt = where_equal(sa.select(m.Region).order_by(m.Region.code), parent_code=parent_code)
    return await repo.paginate(s, stmt, page, RegionOut.model_validate)


async def list_communities(
    s: AsyncSession, page: PageParams, county_code: str | None, active: bool | None
) -> Page[CommunityOut]:
    stmt = where_equal(
        sa.select(m.Community).order_by(m.Community.code), county_code=county_code, active=active
    )
    return await repo.paginate(s, stmt, page, CommunityOut.model_validate)


async def list_institutions(
    s: AsyncSession, page: PageParams, q: str | None, **filters: Any
) -> Page[InstitutionOut]:
    stmt = where_equal(
        sa.select(m.Institution).where(_name_like(m.Institution.name, q)).order_by(m.Institution.code),
        **filters,
    )
    result = await repo.paginate(s, stmt, page, InstitutionOut.model_validate)
    depts = await repo.departments_of(s, [i.id for i in result.items])
    for item in result.items:
        item.departments = [DepartmentOut.model_validate(d) for d in depts[item.id]]
    return result


async def list_practitioners(
    s: AsyncSession, page: PageParams, q: str | None, **filters: Any
) -> Page[PractitionerOut]:
    stmt = where_equal(
        sa.select(m.Practitioner)
        .where(_name_like(m.Practitioner.name, q))
        .order_by(m.Practitioner.licence_no),
        **filters,
    )
    result = await repo.paginate(s, stmt, page, PractitionerOut.model_validate)
    postings = await repo.postings_of(s, [p.id for p in result.items])
    for item in result.items:
        item.postings = [PostingOut.model_validate(x) for x in postings[item.id]]
    return result


async def list_teams(s: AsyncSession, page: PageParams, **filters: Any) -> Page[TeamOut]:
    stmt = where_equal(sa.select(m.Team).order_by(m.Team.code), **filters)
    result = await repo.paginate(s, stmt, page, TeamOut.model_validate)
    members = await repo.members_of(s, [t.id for t in result.items])
    for item in result.items:
        item.members = [TeamMemberOut.model_validate(x) for x in members[item.id]]
    return result


async def list_residents(
    s: AsyncSession,
    page: PageParams,
    q: str | None,
    key_population: str | None,
    national_id_hashes: list[str] | None,
    phone_hashes: list[str] | None,
    **filters: Any,
) -> Page[ResidentOut]:
    """`*_hashes`: a value's lookup hashes under every configured key (during a key rotation a resident
    not yet re-sealed still carries the old key's hash)."""
    stmt = (
        sa.select(m.Resident).where(_name_like(m.Resident.name, q)).order_by(m.Resident.name, m.Resident.id)
    )
    if national_id_hashes is not None:
        stmt = stmt.where(m.Resident.national_id_hash.in_(national_id_hashes))
    if phone_hashes is not None:
        stmt = stmt.where(m.Resident.phone_hash.in_(phone_hashes))
    stmt = where_equal(stmt, **filters)
    if key_population:
        stmt = stmt.where(m.Resident.key_populations.contains([key_population]))
    return await repo.paginate(s, stmt, page, ResidentOut.model_validate)


async def list_contracts(s: AsyncSession, page: PageParams, **filters: Any) -> Page[ContractOut]:
    stmt = where_equal(sa.select(m.Contract).order_by(m.Contract.start_date.desc(), m.Contract.id), **filters)
    return await repo.paginate(s, stmt, page, ContractOut.model_validate)


async def list_catalogue(
    s: AsyncSession, page: PageParams, q: str | None, **filters: Any
) -> Page[CatalogueEntryOut]:
    stmt = where_equal(
        sa.select(m.CatalogueEntry)
        .where(_name_like(m.CatalogueEntry.name, q))
        .order_by(m.CatalogueEntry.catalogue, m.CatalogueEntry.tier, m.CatalogueEntry.icd10),
        **filters,
    )
    return await repo.paginate(s, stmt, page, CatalogueEntryOut.model_validate)


async def catalogue_summary(s: AsyncSession, county_code: str, minimum: int) -> CatalogueSummaryOut:
    """`minimum`: the county's first-in-county minimum in force."""
    rows = (
        await s.execute(
            sa.select(m.CatalogueEntry.catalogue, m.CatalogueEntry.tier, sa.func.count())
            .where(m.CatalogueEntry.county_code == county_code, m.CatalogueEntry.active)
            .group_by(m.CatalogueEntry.catalogue, m.CatalogueEntry.tier)
        )
    ).all()
    first = sum(n for cat, _, n in rows if cat == "first_in_county")
    return CatalogueSummaryOut(
        county_code=county_code,
        first_in_county_diseases=first,
        first_in_county_minimum=minimum,
        meets_minimum=first >= minimum,
        grassroots_by_tier={tier: n for cat, tier, n in rows if cat == "grassroots"},
    )


def _minus_years(d: date, years: int) -> date:
    return add_months(d, -12 * years)


def _key_groups(r: type[m.Resident], as_of: date) -> dict[KeyPopulation, Any]:
    """Each key population as a condition on a resident on the day (age groups from the birth date)."""
    by_age = {
        KeyPopulation.ELDERLY: r.birth_date <= _minus_years(as_of, 65),
        KeyPopulation.CHILD: r.birth_date > _minus_years(as_of, 7),
    }
    return {g: by_age[g] if g in by_age else r.key_populations.contains([g.value]) for g in KeyPopulation}


@dataclass(frozen=True)
class Counts:
    overall: CoverageCounts
    by_group: dict[KeyPopulation, tuple[int, int]]  # key population → (residents, signed)


async def coverage_counts(s: AsyncSession, as_of: date, community_ids: list[uuid.UUID]) -> Counts:
    """One pass over residents joined to their active contracts (as of the date)."""
    r, c = m.Resident, m.Contract
    signed = sa.exists().where(
        c.resident_id == r.id, c.status == "active", c.start_date <= as_of, c.end_date >= as_of
    )
    groups = _key_groups(r, as_of)
    key = sa.or_(*groups.values())
    poor = groups[KeyPopulation.REGISTERED_POOR]
    per_group = [
        agg
        for cond in groups.values()
        for agg in (sa.func.count().filter(cond), sa.func.count().filter(sa.and_(cond, signed)))
    ]
    row = (
        await s.execute(
            sa.select(
                sa.func.count(),
                sa.func.count().filter(signed),
                sa.func.count().filter(key),
                sa.func.count().filter(sa.and_(key, signed)),
                sa.func.count().filter(poor),
                sa.func.count().filter(sa.and_(poor, signed)),
                *per_group,
            ).where(r.active, r.community_id.in_(community_ids))
        )
    ).one()
    by_group = {g: (row[6 + 2 * i], row[7 + 2 * i]) for i, g in enumerate(groups)}
    return Counts(CoverageCounts(*row[:6]), by_group)


async def coverage(
    s: AsyncSession,
    scope: str,
    scope_id: str,
    community_ids: list[uuid.UUID],
    as_of: date,
    rules: Versioned[RegistryRules],
) -> CoverageOut:
    """Against the targets of `rules`: the county's settings in force on `as_of`."""
    counts = await coverage_counts(s, as_of, community_ids)
    lines = [
        CoverageLineOut(
            population=x.population,
            total=x.total,
            signed=x.signed,
            rate=_text(x.rate),
            target=str(x.target),
            meets_target=x.meets_target,
        )
        for x in evaluate_coverage(counts.overall, rules.settings.coverage_targets())
    ]
    groups = [
        KeyPopulationCoverageOut(
            population=group, total=total, signed=signed, rate=_text(coverage_rate(signed, total))
        )
        for group, (total, signed) in counts.by_group.items()
    ]
    return CoverageOut(
        scope=scope,
        scope_id=scope_id,
        as_of=as_of,
        settings_version=rules.version,
        lines=lines,
        key_populations=groups,
    )


def _text(rate: Decimal | None) -> str | None:
    return None if rate is None else str(rate)


async def communities_of_county(s: AsyncSession, county_code: str) -> list[uuid.UUID]:
    return list(
        (await s.execute(sa.select(m.Community.id).where(m.Community.county_code == county_code))).scalars()
    )

"""Reads of the local registry read models the referral rules need."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from shared.errors import Invalid, unknown_reference

from . import models as m
from .domain.rules import Place


def unknown(what_zh: str, what_en: str, ident: object) -> Invalid:
    return unknown_reference(what_zh, what_en, f"{what_en} {ident}")


async def institution(s: AsyncSession, ident: uuid.UUID) -> m.RmInstitution:
    inst = await s.get(m.RmInstitution, ident)
    if inst is None or not inst.active:
        raise unknown("机构", "institution", ident)
    return inst


async def place(s: AsyncSession, ident: uuid.UUID) -> tuple[m.RmInstitution, Place]:
    inst = await institution(s, ident)
    county = inst.region_code
    if inst.community_id is not None:
        community = await s.get(m.RmCommunity, inst.community_id)
        county = community.county_code if community else county
    return inst, Place(inst.id, inst.tier, inst.community_id, county)


async def resident(s: AsyncSession, ident: uuid.UUID) -> Any:
    """A plain row, not an ORM object: this sits on the booking hot path."""
    t = m.RmResident.__table__
    res = (
        await s.execute(
            sa.select(t.c.id, t.c.community_id, t.c.birth_date).where(t.c.id == ident, t.c.active)
        )
    ).first()
    if res is None:
        raise unknown("居民", "resident", ident)
    return res


async def resident_and_team(s: AsyncSession, resident_id: uuid.UUID, today: date) -> list[uuid.UUID]:
    """One round trip for the family-doctor booking path: the resident must exist; the answer is the
    members of the team they are actively contracted with today (empty if none)."""
    r, c, t = m.RmResident.__table__, m.RmContract.__table__, m.RmTeam.__table__
    team = (
        sa.select(t.c.members)
        .select_from(c.join(t, t.c.id == c.c.team_id))
        .where(
            c.c.resident_id == r.c.id,
            c.c.status == "active",
            c.c.start_date <= today,
            c.c.end_date >= today,
            t.c.active,
        )
        .limit(1)
        .scalar_subquery()
    )
    row = (await s.execute(sa.select(r.c.id, team).where(r.c.id == resident_id, r.c.active))).first()
    if row is None:
        raise unknown("居民", "resident", resident_id)
    return list(row[1] or [])


async def active_contract_team(s: AsyncSession, resident_id: uuid.UUID, today: date) -> m.RmTeam | None:
    team = await s.scalar(
        sa.select(m.RmTeam)
        .join(m.RmContract, m.RmContract.team_id == m.RmTeam.id)
        .where(
            m.RmContract.resident_id == resident_id,
            m.RmContract.status == "active",
            m.RmContract.start_date <= today,
            m.RmContract.end_date >= today,
            m.RmTeam.active,
        )
    )
    return team


async def on_catalogue(
    s: AsyncSession, county_code: str, catalogue: str, icd10: str, tier: str | None
) -> bool:
    """An entry matches the code itself or its three-character category (I10 covers I10.x)."""
    codes = {icd10, icd10.split(".")[0]}
    stmt = sa.select(m.RmCatalogueEntry.id).where(
        m.RmCatalogueEntry.county_code == county_code,
        m.RmCatalogueEntry.catalogue == catalogue,
        m.RmCatalogueEntry.icd10.in_(codes),
        m.RmCatalogueEntry.active,
    )
    if tier is not None:
        stmt = stmt.where(m.RmCatalogueEntry.tier.in_([tier, "all"]))
    return (await s.scalar(stmt.limit(1))) is not None


async def lead_hospital(s: AsyncSession, community_id: uuid.UUID | None) -> uuid.UUID | None:
    if community_id is None:
        return None
    community = await s.get(m.RmCommunity, community_id)
    return community.lead_institution_id if community else None


async def has_active_team(s: AsyncSession, institution_id: uuid.UUID) -> bool:
    """A family-doctor team works at the institution (a village clinic that can take a downward referral)."""
    t = m.RmTeam.__table__
    stmt = sa.select(t.c.id).where(t.c.institution_id == institution_id, t.c.active).limit(1)
    return (await s.scalar(stmt)) is not None


async def practitioner(s: AsyncSession, ident: uuid.UUID) -> m.RmPractitioner:
    p = await s.get(m.RmPractitioner, ident)
    if p is None or not p.active:
        raise unknown("医务人员", "practitioner", ident)
    return p

"""Regions, communities, institutions and their departments."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import collect
from shared.errors import Conflict, Invalid

from .. import events
from .. import models as m
from .. import repository as repo
from ..domain.institutions import InstitutionType, Membership, Tier, check_institution
from ..schemas import (
    CommunityIn,
    CommunityOut,
    CommunityPatch,
    DepartmentIn,
    DepartmentOut,
    InstitutionIn,
    InstitutionOut,
    InstitutionPatch,
    RegionIn,
    RegionOut,
)
from .lifecycle import deactivate


def _duplicate(what_zh: str, what_en: str, code: str) -> Conflict:
    return Conflict(
        "duplicate-code", f"{what_zh}编码已存在", f"A {what_en} with this code exists", detail=code
    )


async def create_region(s: AsyncSession, body: RegionIn) -> RegionOut:
    if await s.get(m.Region, body.code):
        raise _duplicate("行政区划", "region", body.code)
    if body.parent_code:
        await repo.get_referenced(s, m.Region, body.parent_code, "parent_code")
    region = m.Region(**body.model_dump())
    s.add(region)
    await s.flush()
    return RegionOut.model_validate(region)


async def create_community(s: AsyncSession, body: CommunityIn) -> CommunityOut:
    await repo.get_referenced(s, m.Region, body.county_code, "county_code")
    if await s.scalar(sa.select(m.Community.id).where(m.Community.code == body.code)):
        raise _duplicate("医共体", "community", body.code)
    community = m.Community(**body.model_dump())
    s.add(community)
    await s.flush()
    return await _community_changed(s, community, "created")


async def update_community(s: AsyncSession, ident: uuid.UUID, body: CommunityPatch) -> CommunityOut:
    community = await repo.get(s, m.Community, ident, for_update=True)
    repo.check_version(community, body.version)
    changes = body.model_dump(exclude_unset=True, exclude={"version"})
    if lead_id := changes.get("lead_institution_id"):
        lead = await repo.get_referenced(s, m.Institution, lead_id, "lead_institution_id")
        if lead.community_id != community.id or lead.membership != Membership.LEAD:
            raise Invalid(
                "lead-not-member",
                "牵头医院须为本医共体的牵头成员",
                "The lead hospital must be this community's member with membership 'lead'",
            )
    for key, value in changes.items():
        setattr(community, key, value)
    await s.flush()
    return await _community_changed(s, community, "updated")


async def deactivate_community(s: AsyncSession, ident: uuid.UUID) -> CommunityOut:
    return await deactivate(s, m.Community, ident, _community_changed)


async def _community_changed(s: AsyncSession, community: m.Community, action: str) -> CommunityOut:
    """Raise the community's event and answer with its view."""
    collect(s, events.community(action, community))
    return CommunityOut.model_validate(community)


def _institution_view(inst: m.Institution, depts: list[m.Department]) -> InstitutionOut:
    out = InstitutionOut.model_validate(inst)
    out.departments = [DepartmentOut.model_validate(d) for d in depts]
    return out


async def institution_out(s: AsyncSession, inst: m.Institution) -> InstitutionOut:
    return _institution_view(inst, (await repo.departments_of(s, [inst.id]))[inst.id])


async def _institution_changed(s: AsyncSession, inst: m.Institution, action: str) -> InstitutionOut:
    """Raise the institution's event (with its departments) and answer with its view."""
    depts = (await repo.departments_of(s, [inst.id]))[inst.id]
    collect(s, events.institution(action, inst, depts))
    return _institution_view(inst, depts)


async def _check_membership(
    s: AsyncSession,
    inst_id: uuid.UUID | None,
    tier: str,
    kind: str,
    membership: str | None,
    community_id: uuid.UUID | None,
) -> None:
    check_institution(
        Tier(tier), InstitutionType(kind), Membership(membership) if membership else None, community_id
    )
    if community_id is not None:
        await repo.get_referenced(s, m.Community, community_id, "community_id")
    if membership == Membership.LEAD:
        other = await s.scalar(
            sa.select(m.Institution.id).where(
                m.Institution.community_id == community_id,
                m.Institution.membership == Membership.LEAD,
                m.Institution.active,
                m.Institution.id != inst_id,
            )
        )
        if other is not None:
            raise Conflict("lead-exists", "该医共体已有牵头医院", "The community already has a lead hospital")


async def create_institution(s: AsyncSession, body: InstitutionIn) -> InstitutionOut:
    await repo.get_referenced(s, m.Region, body.region_code, "region_code")
    await _check_membership(s, None, body.tier, body.kind, body.membership, body.community_id)
    if await s.scalar(sa.select(m.Institution.id).where(m.Institution.code == body.code)):
        raise _duplicate("机构", "institution", body.code)
    codes = [d.code for d in body.departments]
    if len(codes) != len(set(codes)):
        raise Invalid("duplicate-department", "科室编码重复", "Department codes repeat")
    inst = m.Institution(**body.model_dump(exclude={"departments"}))
    s.add(inst)
    await s.flush()
    s.add_all([m.Department(institution_id=inst.id, **d.model_dump()) for d in body.departments])
    await s.flush()
    return await _institution_changed(s, inst, "created")


async def update_institution(s: AsyncSession, ident: uuid.UUID, body: InstitutionPatch) -> InstitutionOut:
    inst = await repo.get(s, m.Institution, ident, for_update=True)
    repo.check_version(inst, body.version)
    changes = body.model_dump(exclude_unset=True, exclude={"version"})
    merged = {"community_id": inst.community_id, "membership": inst.membership, **changes}
    await _check_membership(s, inst.id, inst.tier, inst.kind, merged["membership"], merged["community_id"])
    for key, value in changes.items():
        setattr(inst, key, value)
    await s.flush()
    return await _institution_changed(s, inst, "updated")


async def deactivate_institution(s: AsyncSession, ident: uuid.UUID) -> InstitutionOut:
    return await deactivate(s, m.Institution, ident, _institution_changed)


async def add_department(s: AsyncSession, ident: uuid.UUID, body: DepartmentIn) -> InstitutionOut:
    inst = await repo.get(s, m.Institution, ident, for_update=True)
    exists = await s.scalar(
        sa.select(m.Department.id).where(
            m.Department.institution_id == inst.id, m.Department.code == body.code
        )
    )
    if exists:
        raise _duplicate("科室", "department", body.code)
    s.add(m.Department(institution_id=inst.id, **body.model_dump()))
    inst.updated_at = sa.func.now()  # an UPDATE bumps the aggregate version
    await s.flush()
    await s.refresh(inst)
    return await _institution_changed(s, inst, "updated")

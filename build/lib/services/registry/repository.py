"""Loading and listing rows; the use cases and routers never write raw SQL themselves."""

from __future__ import annotations

import uuid
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from shared.crud import check_version, paginate
from shared.problems import Problem, not_found

from . import models as m

T = TypeVar("T")

__all__ = ["check_version", "get", "get_referenced", "paginate"]

NAMES: dict[type[Any], tuple[str, str]] = {
    m.Community: ("医共体", "community"),
    m.Institution: ("机构", "institution"),
    m.Practitioner: ("医务人员", "practitioner"),
    m.Team: ("家庭医生团队", "family-doctor team"),
    m.Resident: ("居民", "resident"),
    m.Contract: ("签约", "contract"),
    m.CatalogueEntry: ("目录条目", "catalogue entry"),
    m.Region: ("行政区划", "region"),
}


async def get(session: AsyncSession, model: type[T], ident: Any, *, for_update: bool = False) -> T:
    stmt = sa.select(model).where(model.__mapper__.primary_key[0] == ident)  # type: ignore[attr-defined]
    if for_update:
        stmt = stmt.with_for_update()
    obj = (await session.execute(stmt)).scalar_one_or_none()
    if obj is None:
        zh, en = NAMES[model]
        raise not_found(zh, en, ident)
    return obj


async def get_referenced(session: AsyncSession, model: type[T], ident: Any, field: str) -> T:
    """A referenced row that must exist and be active; missing is a 422 (the body is wrong), not a 404."""
    obj = await session.get(model, ident)
    if obj is None or not getattr(obj, "active", True):
        zh, en = NAMES[model]
        raise Problem(
            422,
            "unknown-reference",
            f"{zh}不存在或已停用",
            f"Unknown or inactive {en}",
            detail=f"{field}={ident}",
        )
    return obj


async def departments_of(
    session: AsyncSession, institution_ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[m.Department]]:
    rows = (
        await session.execute(
            sa.select(m.Department)
            .where(m.Department.institution_id.in_(institution_ids))
            .order_by(m.Department.code)
        )
    ).scalars()
    out: dict[uuid.UUID, list[m.Department]] = {i: [] for i in institution_ids}
    for d in rows:
        out[d.institution_id].append(d)
    return out


async def postings_of(
    session: AsyncSession, practitioner_ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[m.Posting]]:
    rows = (
        await session.execute(
            sa.select(m.Posting)
            .where(m.Posting.practitioner_id.in_(practitioner_ids))
            .order_by(m.Posting.start_date)
        )
    ).scalars()
    out: dict[uuid.UUID, list[m.Posting]] = {i: [] for i in practitioner_ids}
    for p in rows:
        out[p.practitioner_id].append(p)
    return out


async def members_of(session: AsyncSession, team_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[m.TeamMember]]:
    rows = (
        await session.execute(
            sa.select(m.TeamMember)
            .where(m.TeamMember.team_id.in_(team_ids))
            .order_by(m.TeamMember.practitioner_id)
        )
    ).scalars()
    out: dict[uuid.UUID, list[m.TeamMember]] = {i: [] for i in team_ids}
    for tm in rows:
        out[tm.team_id].append(tm)
    return out


async def has_active_contract(session: AsyncSession, resident_id: uuid.UUID) -> bool:
    found = await session.scalar(
        sa.select(m.Contract.id).where(m.Contract.resident_id == resident_id, m.Contract.status == "active")
    )
    return found is not None

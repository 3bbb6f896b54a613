"""Loading and listing rows; the use cases and routers never write raw SQL themselves."""

from __future__ import annotations

import uuid
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from shared.crud import check_version, paginate
from shared.errors import not_found, unknown_reference

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
    """A referenced row that must exist and be active; missing is `Invalid` (the body is wrong), not a
    `NotFound` (the addressed resource is there)."""
    obj = await session.get(model, ident)
    if obj is None or not getattr(obj, "active", True):
        zh, en = NAMES[model]
        raise unknown_reference(zh, en, f"{field}={ident}")
    return obj


ChildT = TypeVar("ChildT")


async def _children(
    session: AsyncSession, model: type[ChildT], parent: str, order: str, parent_ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[ChildT]]:
    """The rows of a child table for many parents in one query, grouped by parent (no query per row)."""
    parent_col, order_col = getattr(model, parent), getattr(model, order)
    rows = (
        await session.execute(sa.select(model).where(parent_col.in_(parent_ids)).order_by(order_col))
    ).scalars()
    out: dict[uuid.UUID, list[ChildT]] = {i: [] for i in parent_ids}
    for row in rows:
        out[getattr(row, parent)].append(row)
    return out


async def departments_of(session: AsyncSession, ids: list[uuid.UUID]) -> dict[uuid.UUID, list[m.Department]]:
    return await _children(session, m.Department, "institution_id", "code", ids)


async def postings_of(session: AsyncSession, ids: list[uuid.UUID]) -> dict[uuid.UUID, list[m.Posting]]:
    return await _children(session, m.Posting, "practitioner_id", "start_date", ids)


async def members_of(session: AsyncSession, ids: list[uuid.UUID]) -> dict[uuid.UUID, list[m.TeamMember]]:
    return await _children(session, m.TeamMember, "team_id", "practitioner_id", ids)


async def has_active_contract(session: AsyncSession, resident_id: uuid.UUID) -> bool:
    found = await session.scalar(
        sa.select(m.Contract.id).where(m.Contract.resident_id == resident_id, m.Contract.status == "active")
    )
    return found is not None

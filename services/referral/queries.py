"""Read side: the receiver's prioritised inbox, the sender's outbox, approvals, search, history,
timeline and notifications — each scoped to what the caller may see."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from shared.auth import Principal, Role, forbidden
from shared.crud import paginate, where_equal
from shared.pagination import Page, PageParams

from . import models as m
from .domain.states import OPEN, Status
from .schemas import NotificationOut, ReferralOut, TimelineOut
from .usecases.common import load

R = m.Referral
URGENCY_ORDER = sa.case({"emergency": 0, "urgent": 1}, value=R.urgency, else_=2)


def _institution(principal: Principal) -> uuid.UUID:
    if principal.institution_id is None:
        raise forbidden("this list is for an institution's staff")
    return principal.institution_id


async def inbox(
    s: AsyncSession, principal: Principal, page: PageParams, status: Status | None
) -> Page[ReferralOut]:
    """Most urgent first: escalated, then emergency > urgent > routine, priority referrals, earliest deadline."""
    stmt = sa.select(R).where(R.to_institution_id == _institution(principal))
    stmt = (
        stmt.where(R.status == status)
        if status
        else stmt.where(R.status.in_([Status.SUBMITTED, Status.ACCEPTED, Status.SCHEDULED, Status.ARRIVED]))
    )
    stmt = stmt.order_by(
        R.escalated_at.is_(None), URGENCY_ORDER, R.priority.desc(), R.response_due_at, R.created_at
    )
    return await paginate(s, stmt, page, ReferralOut.model_validate)


async def outbox(
    s: AsyncSession, principal: Principal, page: PageParams, status: Status | None
) -> Page[ReferralOut]:
    stmt = where_equal(sa.select(R).where(R.from_institution_id == _institution(principal)), status=status)
    return await paginate(s, stmt.order_by(R.created_at.desc()), page, ReferralOut.model_validate)


async def approvals(s: AsyncSession, principal: Principal, page: PageParams) -> Page[ReferralOut]:
    stmt = sa.select(R).where(
        R.approver_institution_id == _institution(principal),
        sa.or_(R.status == Status.PENDING_APPROVAL, R.emergency_review_pending),
    )
    return await paginate(s, stmt.order_by(URGENCY_ORDER, R.created_at), page, ReferralOut.model_validate)


def visible(principal: Principal) -> Any:
    if principal.role == Role.COMMISSION_ADMIN:
        return sa.true()
    if principal.role == Role.RESIDENT:
        return R.resident_id == principal.resident_id
    inst = _institution(principal)
    return sa.or_(
        R.from_institution_id == inst, R.to_institution_id == inst, R.approver_institution_id == inst
    )


async def search(
    s: AsyncSession,
    principal: Principal,
    page: PageParams,
    created_from: datetime | None,
    created_to: datetime | None,
    open_only: bool,
    **filters: Any,
) -> Page[ReferralOut]:
    stmt = where_equal(sa.select(R).where(visible(principal)), **filters)
    if created_from:
        stmt = stmt.where(R.created_at >= created_from)
    if created_to:
        stmt = stmt.where(R.created_at < created_to)
    if open_only:
        stmt = stmt.where(R.status.in_(OPEN))
    return await paginate(s, stmt.order_by(R.created_at.desc(), R.id), page, ReferralOut.model_validate)


async def timeline(s: AsyncSession, principal: Principal, ident: uuid.UUID) -> list[TimelineOut]:
    await load(s, principal, ident)
    rows = (
        await s.execute(
            sa.select(m.TimelineEntry)
            .where(m.TimelineEntry.referral_id == ident)
            .order_by(m.TimelineEntry.id)
        )
    ).scalars()
    return [TimelineOut.model_validate(x) for x in rows]


async def notifications(s: AsyncSession, principal: Principal, ident: uuid.UUID) -> list[NotificationOut]:
    await load(s, principal, ident)
    rows = (
        await s.execute(
            sa.select(m.Notification)
            .where(m.Notification.referral_id == ident)
            .order_by(m.Notification.created_at, m.Notification.recipient_kind)
        )
    ).scalars()
    return [NotificationOut.model_validate(x) for x in rows]

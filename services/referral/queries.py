"""Read side: a referral, the receiver's prioritised inbox, the sender's outbox, approvals, search,
history, timeline and notifications; sessions with free slots ($find), bookings, waitlist entries and
compliance — each scoped to what the caller may see (the rules are `access.py`)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from shared.crud import paginate, where_equal
from shared.pagination import Page, PageParams
from shared.principal import Principal, Role

from . import access
from . import models as m
from .access import staff_institution
from .domain.slots import SessionStatus, SlotPolicy, compliant
from .domain.states import OPEN, Status
from .repository import load_referral
from .schemas import (
    BookingOut,
    ComplianceDayOut,
    NotificationOut,
    ReferralOut,
    SessionOut,
    TimelineOut,
    WaitlistOut,
)
from .usecases.slots import free_counts, session_out
from .usecases.slots.county import hospital_slot_policies

R = m.Referral
URGENCY_ORDER = sa.case({"emergency": 0, "urgent": 1}, value=R.urgency, else_=2)


async def referral(s: AsyncSession, principal: Principal, ident: uuid.UUID) -> ReferralOut:
    return ReferralOut.model_validate(await load_referral(s, principal, ident))


async def inbox(
    s: AsyncSession, principal: Principal, page: PageParams, status: Status | None
) -> Page[ReferralOut]:
    """Most urgent first: escalated, then emergency > urgent > routine, priority referrals, earliest deadline."""
    stmt = sa.select(R).where(R.to_institution_id == staff_institution(principal))
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
    stmt = where_equal(
        sa.select(R).where(R.from_institution_id == staff_institution(principal)), status=status
    )
    return await paginate(s, stmt.order_by(R.created_at.desc()), page, ReferralOut.model_validate)


async def approvals(s: AsyncSession, principal: Principal, page: PageParams) -> Page[ReferralOut]:
    stmt = sa.select(R).where(
        R.approver_institution_id == staff_institution(principal),
        sa.or_(R.status == Status.PENDING_APPROVAL, R.emergency_review_pending),
    )
    return await paginate(s, stmt.order_by(URGENCY_ORDER, R.created_at), page, ReferralOut.model_validate)


def visible(principal: Principal) -> Any:
    """`access.can_read` as a filter."""
    if access.is_commission(principal):
        return sa.true()
    if principal.role == Role.RESIDENT:
        return R.resident_id == principal.resident_id
    inst = staff_institution(principal)
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
    await load_referral(s, principal, ident)
    rows = (
        await s.execute(
            sa.select(m.TimelineEntry)
            .where(m.TimelineEntry.referral_id == ident)
            .order_by(m.TimelineEntry.id)
        )
    ).scalars()
    return [TimelineOut.model_validate(x) for x in rows]


async def notifications(s: AsyncSession, principal: Principal, ident: uuid.UUID) -> list[NotificationOut]:
    await load_referral(s, principal, ident)
    rows = (
        await s.execute(
            sa.select(m.Notification)
            .where(m.Notification.referral_id == ident)
            .order_by(m.Notification.created_at, m.Notification.recipient_kind)
        )
    ).scalars()
    return [NotificationOut.model_validate(x) for x in rows]


async def compliance(
    s: AsyncSession, principal: Principal, institution_id: uuid.UUID, day_from: date, day_to: date
) -> list[ComplianceDayOut]:
    """Per department and day (Shanghai): published, family-doctor share published, booked by family
    doctors (incl. priority referrals), released, used. One set-based query."""
    access.check_compliance_reader(principal, institution_id)
    rows = await s.execute(
        sa.text("""
        SELECT se.department_code, (se.starts_at AT TIME ZONE 'Asia/Shanghai')::date AS day,
               count(*) AS published,
               count(*) FILTER (WHERE sl.published_pool IN ('family_doctor', 'priority')) AS fd_published,
               count(b.id) FILTER (WHERE b.pool IN ('family_doctor', 'priority')) AS fd_booked,
               count(*) FILTER (WHERE sl.released_at IS NOT NULL) AS released,
               count(b.id) AS used
        FROM sessions se JOIN slots sl ON sl.session_id = se.id
        LEFT JOIN bookings b ON b.slot_id = sl.id AND b.status IN ('booked', 'attended', 'no_show')
        WHERE se.institution_id = :inst AND se.status = 'open'
          AND (se.starts_at AT TIME ZONE 'Asia/Shanghai')::date BETWEEN :d1 AND :d2
        GROUP BY 1, 2 ORDER BY 2, 1
    """),
        {"inst": institution_id, "d1": day_from, "d2": day_to},
    )
    out = []
    for dept, day, published, fd_published, fd_booked, released, used in rows:
        share = (
            (Decimal(fd_published) / Decimal(published)).quantize(Decimal("0.0001"))
            if published
            else Decimal(0)
        )
        out.append(
            ComplianceDayOut(
                institution_id=institution_id,
                department_code=dept,
                day=day,
                published=published,
                family_doctor_published=fd_published,
                family_doctor_share=str(share),
                booked_by_family_doctors=fd_booked,
                released=released,
                used=used,
                compliant=compliant(fd_published, published),
            )
        )
    return out


# ---- slots ----


async def find_sessions(
    s: AsyncSession,
    page: PageParams,
    now: datetime,
    policy: SlotPolicy,
    starts_from: datetime | None,
    starts_to: datetime | None,
    **filters: Any,
) -> Page[SessionOut]:
    """$find: open sessions not started yet, with their free slots per pool."""
    stmt = where_equal(
        sa.select(m.Session).where(m.Session.status == SessionStatus.OPEN, m.Session.starts_at > now),
        **filters,
    )
    if starts_from:
        stmt = stmt.where(m.Session.starts_at >= starts_from)
    if starts_to:
        stmt = stmt.where(m.Session.starts_at < starts_to)
    result: Page[Any] = await paginate(s, stmt.order_by(m.Session.starts_at), page, lambda x: x)
    free = await free_counts(s, [x.id for x in result.items], now)
    # when each pool opens is the session's county's rule
    rules = await hospital_slot_policies(s, {x.institution_id for x in result.items}, policy, now)
    return Page[SessionOut](
        items=[session_out(x, free[x.id], rules[x.institution_id]) for x in result.items],
        total=result.total,
        limit=result.limit,
        offset=result.offset,
    )


async def bookings(
    s: AsyncSession, principal: Principal, page: PageParams, resident_id: uuid.UUID | None
) -> Page[BookingOut]:
    """`access.booking_scope` as a filter: a resident's own, or those the caller made or their hospital
    holds."""
    scope = access.booking_scope(principal)
    stmt = sa.select(m.Booking)
    if scope.resident_id is not None:
        stmt = stmt.where(m.Booking.resident_id == scope.resident_id)
    else:
        stmt = stmt.join(m.Session, m.Session.id == m.Booking.session_id).where(
            sa.or_(m.Booking.booked_by == scope.booked_by, m.Session.institution_id == scope.institution_id)
        )
    stmt = where_equal(stmt, resident_id=resident_id)
    return await paginate(s, stmt.order_by(m.Booking.created_at.desc()), page, BookingOut.model_validate)


async def waitlist_entry(s: AsyncSession, principal: Principal, entry_id: uuid.UUID) -> WaitlistOut:
    entry = await s.get(m.WaitlistEntry, entry_id)
    if entry is None:
        raise access.waitlist_entry_not_found()
    access.ensure_waitlist_reader(principal, entry.requested_by, entry.resident_id, entry.institution_id)
    return WaitlistOut.model_validate(entry)

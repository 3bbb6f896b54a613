"""A hospital publishes a session (its capacity split into pools) or cancels it (bookings moved to
the next session or to the waitlist, the referrals they were made for moved or unscheduled, with
notifications)."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import collect
from shared.errors import Conflict, Invalid
from shared.principal import Principal

from ... import access, events, lookups
from ... import models as m
from ...domain.rules import URGENCY_RANK, Urgency
from ...domain.slots import (
    BookingStatus,
    Pool,
    SessionStatus,
    SlotPolicy,
    SlotStatus,
    WaitlistStatus,
    check_session_times,
    split_capacity,
)
from ...domain.states import Status
from ...schemas import SessionIn, SessionOut
from .appointments import reschedule, unschedule
from .county import institution_slot_policy
from .grab import grab_slot
from .offers import offer_to_waitlist
from .sessions import session_out, session_slot_policy


async def publish_session(
    s: AsyncSession, principal: Principal, body: SessionIn, now: datetime, policy: SlotPolicy
) -> SessionOut:
    access.check_publisher(principal, body.institution_id)
    inst = await lookups.institution(s, body.institution_id)
    if inst.tier != "county":
        raise Invalid("not-county", "号源池只适用于县级医院", "Slot pools are for county hospitals")
    if body.department_code not in inst.departments:
        raise Invalid("unknown-department", "该医院无此科室", "The hospital has no such department")
    check_session_times(body.starts_at, body.ends_at, now)
    rules = await institution_slot_policy(s, body.institution_id, policy, now)
    share = Decimal(body.family_doctor_share) if body.family_doctor_share else rules.family_doctor_share
    session_policy = SlotPolicy(family_doctor_share=share, priority_share=min(rules.priority_share, share))
    split = split_capacity(body.capacity, session_policy)
    sess = m.Session(
        id=uuid.uuid4(),
        institution_id=body.institution_id,
        department_code=body.department_code,
        practitioner_id=body.practitioner_id,
        device=body.device,
        resource_type=body.resource_type,
        starts_at=body.starts_at,
        ends_at=body.ends_at,
        capacity=body.capacity,
        family_doctor_share=str(share),
        status=SessionStatus.OPEN,
        published_by=principal.subject,
        created_at=now,
    )
    s.add(sess)
    await s.flush()
    pools = (
        [Pool.PRIORITY] * split.priority
        + [Pool.FAMILY_DOCTOR] * split.family_doctor
        + [Pool.PUBLIC] * split.public
    )
    await s.execute(
        sa.insert(m.Slot),
        [
            {
                "id": uuid.uuid4(),
                "session_id": sess.id,
                "slot_no": i + 1,
                "pool": p,
                "published_pool": p,
                "status": SlotStatus.FREE,
            }
            for i, p in enumerate(pools)
        ],
    )
    free = {Pool.PRIORITY: split.priority, Pool.FAMILY_DOCTOR: split.family_doctor, Pool.PUBLIC: split.public}
    out = session_out(sess, {k: v for k, v in free.items() if v}, rules)
    collect(s, events.session_published(sess, out.free, out.opens_at))
    await offer_to_waitlist(s, sess, now, rules)
    return out


async def _lock_referrals(s: AsyncSession, ident: uuid.UUID) -> dict[uuid.UUID, m.Referral]:
    """The referrals of the stopped session's live bookings, locked first (booking for a referral locks
    the referral before its bookings; so must we)."""
    B = m.Booking
    ids = sa.select(B.referral_id).where(
        B.session_id == ident, B.status == BookingStatus.BOOKED, B.referral_id.is_not(None)
    )
    rows = await s.execute(
        sa.select(m.Referral)
        .where(m.Referral.id.in_(ids))
        .order_by(m.Referral.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return {r.id: r for r in rows.scalars()}


async def _live_bookings(s: AsyncSession, ident: uuid.UUID) -> list[m.Booking]:
    """The session's bookings still live once their referrals are locked, locked in turn: one cancelled
    or moved meanwhile (its holder, the referral office) is left alone."""
    B = m.Booking
    rows = await s.execute(
        sa.select(B)
        .where(B.session_id == ident, B.status == BookingStatus.BOOKED)
        .order_by(B.created_at, B.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return list(rows.scalars())


async def cancel_session(
    s: AsyncSession, principal: Principal, ident: uuid.UUID, now: datetime, policy: SlotPolicy
) -> SessionOut:
    """Stop a session: every booking is cancelled, then rebooked into the next open session of the same
    department and resource from the same pool, or put at the head of its urgency on the waitlist; the
    appointment of a booking's referral moves with it, or the referral goes back to accepted. Waitlist
    offers of its slots are taken back (those entries wait again).

    The session is locked FOR UPDATE first: no slot is taken in it from then on (`grab` takes it FOR KEY
    SHARE), and a rebooking elsewhere never waits for another stop (`_rebook` skips a locked session)."""
    sess = await s.get(m.Session, ident, with_for_update=True)
    if sess is None:
        raise access.not_found_session()
    access.ensure_session_manager(principal, sess.institution_id)
    if sess.status != SessionStatus.OPEN:
        raise Conflict("session-cancelled", "该出诊已停诊", "The session was already cancelled")
    sess.status = SessionStatus.CANCELLED
    referrals = await _lock_referrals(s, ident)
    bookings = await _live_bookings(s, ident)
    for b in bookings:
        b.status, b.cancelled_at = BookingStatus.CANCELLED, now
        await s.flush()
        moved, target = await _rebook(s, sess, b, now)
        if moved is None:
            _waitlist(s, sess, b)
        collect(s, events.booking_cancelled(b, moved, with_session=True))
        r = referrals.get(b.referral_id) if b.referral_id else None
        if r is not None and moved is not None and target is not None and r.status == Status.SCHEDULED:
            await reschedule(s, principal, r, moved, target.starts_at, now, "session_cancelled")
        elif r is not None:
            await unschedule(s, principal, b, now, "session_cancelled")
    await _withdraw_offers(s, ident)
    await s.flush()
    out = session_out(sess, {}, await session_slot_policy(s, sess, policy, now))
    collect(s, events.session_cancelled(sess, out.opens_at, len(bookings)))
    return out


async def _withdraw_offers(s: AsyncSession, ident: uuid.UUID) -> None:
    """Entries offered a slot of the stopped session wait again, in their place."""
    W = m.WaitlistEntry
    await s.execute(
        sa.update(W)
        .where(
            W.status == WaitlistStatus.OFFERED,
            W.offered_slot_id.in_(sa.select(m.Slot.id).where(m.Slot.session_id == ident)),
        )
        .values(status=WaitlistStatus.WAITING, offered_slot_id=None, offer_expires_at=None)
    )


async def _rebook(
    s: AsyncSession, sess: m.Session, b: m.Booking, now: datetime
) -> tuple[m.Booking | None, m.Session | None]:
    """The booking again in the next open session of the same department and resource, same pool. The
    target is taken FOR KEY SHARE, skipping a session locked by its own stop (two sessions stopped at
    once never move bookings into each other), and its status is checked once locked."""
    target = (
        await s.execute(
            sa.select(m.Session)
            .where(
                m.Session.institution_id == sess.institution_id,
                m.Session.department_code == sess.department_code,
                m.Session.resource_type == sess.resource_type,
                m.Session.status == SessionStatus.OPEN,
                m.Session.starts_at > now,
                m.Session.id != sess.id,
            )
            .order_by(m.Session.starts_at)
            .limit(1)
            .with_for_update(read=True, key_share=True, skip_locked=True)
            .execution_options(populate_existing=True)
        )
    ).scalar_one_or_none()
    if target is None or target.status != SessionStatus.OPEN:
        return None, None
    try:
        async with s.begin_nested():
            slot_id, pool = await grab_slot(
                s, target, [Pool(b.pool)], now, SlotStatus.BOOKED, b.resident_id, b.referral_id
            )
            moved = m.Booking(
                id=uuid.uuid4(),
                slot_id=slot_id,
                session_id=target.id,
                resident_id=b.resident_id,
                pool=pool,
                channel=b.channel,
                referral_id=b.referral_id,
                booked_by="system",
                status=BookingStatus.BOOKED,
                created_at=now,
            )
            s.add(moved)
            await s.flush()
    except (Conflict, IntegrityError):  # no free slot in the pool
        return None, target
    return moved, target


def _waitlist(s: AsyncSession, sess: m.Session, b: m.Booking) -> None:
    s.add(
        m.WaitlistEntry(
            id=uuid.uuid4(),
            institution_id=sess.institution_id,
            department_code=sess.department_code,
            resource_type=sess.resource_type,
            resident_id=b.resident_id,
            referral_id=b.referral_id,
            channel=b.channel,
            pools=[b.pool],
            urgency=Urgency.URGENT,  # their session was cancelled under them
            urgency_rank=URGENCY_RANK[Urgency.URGENT],
            requested_by="system",
            requested_at=b.created_at,
            status=WaitlistStatus.WAITING,
        )
    )

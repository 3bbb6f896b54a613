"""A booking made for a referral carries the referral's appointment. When the booking is cancelled (by
its holder, or with its session and no session to move it to) the referral goes back to accepted and
loses its appointment, so the no-show sweep cannot count a visit nobody expects and the receiving
hospital books again; when the booking moves (a stopped session's rebooking, a confirmed waitlist offer,
the referral office booking another session) the appointment moves with it. The caller's right was
checked on the booking — the resident, whoever booked, the hospital — so the referral follows as the
system; its timeline names the caller.

A referral has at most one live booking (`uq_booking_referral`): whoever books for it locks the referral
first, and a rebooking frees the old booking before it inserts the new one. A sender cancelling a
scheduled referral gives its booking back (`free_referral_bookings`)."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import collect
from shared.principal import Principal

from ... import events
from ... import models as m
from ...access import SYSTEM
from ...domain.slots import BookingStatus, SlotPolicy, SlotStatus
from ...domain.states import Action, Status
from .. import slot_memory
from ..common import record, transition
from .offers import offer_to_waitlist
from .sessions import SessionLike, session_slot_policy


async def free_booking(
    s: AsyncSession, booking: m.Booking, sess: SessionLike, now: datetime, policy: SlotPolicy
) -> None:
    """Cancel the booking and give its slot to the session's waitlist (the slot's pool is kept)."""
    booking.status, booking.cancelled_at = BookingStatus.CANCELLED, now
    await s.execute(sa.update(m.Slot).where(m.Slot.id == booking.slot_id).values(status=SlotStatus.FREE))
    await s.flush()
    slot_memory.slot_freed(sess.id)
    collect(s, events.booking_cancelled(booking))
    await offer_to_waitlist(s, sess, now, policy)


async def active_bookings(s: AsyncSession, referral_id: uuid.UUID) -> list[m.Booking]:
    """The referral's live bookings (one at most, `uq_booking_referral`), locked."""
    B = m.Booking
    stmt = sa.select(B).where(B.referral_id == referral_id, B.status == BookingStatus.BOOKED)
    return list((await s.execute(stmt.with_for_update())).scalars())


async def has_live_booking(s: AsyncSession, referral_id: uuid.UUID) -> bool:
    """Whether the referral (locked by the caller: every booking change for it locks it first) has a live
    booking."""
    B = m.Booking
    live = sa.select(B.id).where(B.referral_id == referral_id, B.status == BookingStatus.BOOKED)
    return bool(await s.scalar(sa.select(live.exists())))


async def free_referral_bookings(
    s: AsyncSession, referral_id: uuid.UUID, now: datetime, defaults: SlotPolicy
) -> list[str]:
    """The referral's live bookings cancelled, their slots back to the pool and offered to the waitlist;
    their ids. `defaults`: the deployment's slot rules, for a county that has set none."""
    freed = []
    for b in await active_bookings(s, referral_id):
        sess = await s.get(m.Session, b.session_id)
        assert sess is not None
        await free_booking(s, b, sess, now, await session_slot_policy(s, sess, defaults, now))
        freed.append(str(b.id))
    return freed


async def unschedule(
    s: AsyncSession,
    principal: Principal,
    booking: m.Booking,
    now: datetime,
    cause: str,
) -> None:
    """The referral of a cancelled booking is accepted again, unless it is past scheduled (arrived,
    cancelled …). Should it still have another live booking (the unique index allows none), its
    appointment moves to that one instead of staying at the cancelled one."""
    if booking.referral_id is None:
        return
    r = await s.get(m.Referral, booking.referral_id, with_for_update=True)
    if r is None or r.status != Status.SCHEDULED:
        return
    remaining = await active_bookings(s, r.id)
    if remaining:
        starts = {}
        for b in remaining:
            sess = await s.get(m.Session, b.session_id)
            assert sess is not None
            starts[b.id] = sess.starts_at
        kept = min(remaining, key=lambda b: starts[b.id])
        if r.appointment_at != starts[kept.id]:
            await reschedule(s, principal, r, kept, starts[kept.id], now, cause)
        return
    before, _ = await transition(s, SYSTEM, r, Action.UNSCHEDULE, None, now)
    previous, r.appointment_at = r.appointment_at, None
    detail = {
        "cause": cause,
        "booking_id": str(booking.id),
        "session_id": str(booking.session_id),
        "previous_appointment_at": previous.isoformat() if previous else None,
    }
    await record(s, r, principal, "unschedule", before, now, detail)


async def reschedule(
    s: AsyncSession,
    principal: Principal,
    r: m.Referral,
    booking: m.Booking,
    starts_at: datetime,
    now: datetime,
    cause: str,
) -> None:
    """A scheduled referral's appointment moves to the booking's session."""
    before, _ = await transition(s, SYSTEM, r, Action.RESCHEDULE, None, now)
    previous, r.appointment_at = r.appointment_at, starts_at
    detail = {
        "cause": cause,
        "booking_id": str(booking.id),
        "session_id": str(booking.session_id),
        "pool": booking.pool,
        "appointment_at": starts_at.isoformat(),
        "previous_appointment_at": previous.isoformat() if previous else None,
    }
    await record(s, r, principal, "reschedule", before, now, detail)

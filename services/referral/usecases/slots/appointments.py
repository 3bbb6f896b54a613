"""A booking made for a referral carries the referral's appointment. When the booking is cancelled (by
its holder, or with its session and no session to move it to) the referral goes back to accepted and
loses its appointment, so the no-show sweep cannot count a visit nobody expects and the receiving
hospital books again; when the booking moves (a stopped session's rebooking, a confirmed waitlist offer,
the referral office booking another session) the appointment moves with it. The caller's right was
checked on the booking — the resident, whoever booked, the hospital — so the referral follows as the
system; its timeline names the caller."""

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
from .sessions import SessionLike


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


async def active_bookings(
    s: AsyncSession, referral_id: uuid.UUID, other_than: uuid.UUID | None = None
) -> list[m.Booking]:
    B = m.Booking
    stmt = sa.select(B).where(B.referral_id == referral_id, B.status == BookingStatus.BOOKED)
    if other_than is not None:
        stmt = stmt.where(B.id != other_than)
    return list((await s.execute(stmt.with_for_update())).scalars())


async def unschedule(
    s: AsyncSession,
    principal: Principal,
    booking: m.Booking,
    now: datetime,
    cause: str,
) -> None:
    """The referral of a cancelled booking is accepted again, unless it is past scheduled (arrived,
    cancelled …) or still has another booking."""
    if booking.referral_id is None:
        return
    r = await s.get(m.Referral, booking.referral_id, with_for_update=True)
    if r is None or r.status != Status.SCHEDULED or await active_bookings(s, r.id):
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

"""A booking cancelled by its holder (the slot goes to the waitlist, the referral it was made for back to
accepted) or marked a no-show."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import collect
from shared.errors import Conflict
from shared.principal import Principal

from ... import access, events
from ... import models as m
from ...domain.slots import BookingStatus, SlotPolicy
from ...schemas import BookingOut
from .appointments import free_booking, unschedule
from .sessions import session_slot_policy


async def cancel_booking(
    s: AsyncSession, principal: Principal, booking_id: uuid.UUID, now: datetime, policy: SlotPolicy
) -> BookingOut:
    booking = await s.get(m.Booking, booking_id)
    if booking is None:
        raise access.booking_not_found()
    if booking.referral_id is not None:  # lock the referral before its booking, as booking for it does
        await s.get(m.Referral, booking.referral_id, with_for_update=True)
    booking = await s.get(m.Booking, booking_id, with_for_update=True, populate_existing=True)
    assert booking is not None
    sess = await s.get(m.Session, booking.session_id)
    assert sess is not None
    access.ensure_booking_holder(principal, booking.resident_id, booking.booked_by, sess.institution_id)
    if booking.status != BookingStatus.BOOKED:
        raise Conflict("booking-not-active", "预约已取消或已结束", "The booking is no longer active")
    await free_booking(s, booking, sess, now, await session_slot_policy(s, sess, policy, now))
    out = BookingOut.model_validate(booking)
    await unschedule(s, principal, booking, now, "booking_cancelled")
    return out


async def mark_no_show(
    s: AsyncSession, principal: Principal, booking_id: uuid.UUID, now: datetime
) -> BookingOut:
    booking = await s.get(m.Booking, booking_id, with_for_update=True)
    sess = await s.get(m.Session, booking.session_id) if booking else None
    if booking is None or sess is None:
        raise access.booking_not_found()
    access.ensure_no_show_recorder(principal, sess.institution_id)
    if booking.status != BookingStatus.BOOKED or sess.starts_at > now:
        raise Conflict(
            "no-show-too-early",
            "只能在出诊开始后登记爽约",
            "A no-show is recorded after the session started",
        )
    booking.status = BookingStatus.NO_SHOW
    await s.flush()
    collect(s, events.booking_no_show(booking))
    return BookingOut.model_validate(booking)

"""Holding and booking a slot: the channel (who books for whom), the open pools, taking one slot row
with `UPDATE … WHERE id = (SELECT … FOR UPDATE SKIP LOCKED)` so concurrent clients and replicas never book
a slot twice, and confirming a hold. A partial unique index keeps one resident to one booking per session."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from shared.clock import SHANGHAI
from shared.db import collect
from shared.errors import Conflict, Invalid, NotFound
from shared.principal import Principal, Role

from ... import access, events, lookups
from ... import models as m
from ...domain.slots import (
    BookingStatus,
    Channel,
    Pool,
    SlotPolicy,
    SlotStatus,
    WaitlistStatus,
    open_pools,
    opens_at,
    pools_for,
)
from ...domain.states import Action, Status
from ...repository import load_referral
from ...schemas import BookIn, BookingOut, HoldOut
from .. import slot_memory
from ..common import record, transition
from .sessions import SessionLike, load_session


async def booking_channel(
    s: AsyncSession, principal: Principal, body: BookIn, sess: SessionLike, now: datetime
) -> tuple[Channel, m.Referral | None]:
    """The channel the caller books through (`access.booking_channel`), checked against the data: the
    resident exists, a family doctor's team holds their contract, a referral office's referral is
    accepted, for this resident and addressed to this hospital."""
    if principal.role != Role.FAMILY_DOCTOR:
        await lookups.resident(s, body.resident_id)
    channel = access.booking_channel(principal, body.resident_id, sess.institution_id)
    if channel == Channel.FAMILY_DOCTOR:
        members = await lookups.resident_and_team(s, body.resident_id, now.astimezone(SHANGHAI).date())
        access.check_contracted(principal, members)
    if channel != Channel.COORDINATOR:
        return channel, None
    if body.referral_id is None:
        raise Invalid(
            "referral-required",
            "转诊中心预约须关联已接收的转诊",
            "The referral office books for an accepted referral: give referral_id",
        )
    referral = await load_referral(s, principal, body.referral_id, for_update=True)
    if referral.status != Status.ACCEPTED or referral.resident_id != body.resident_id:
        raise Conflict(
            "referral-not-accepted",
            "转诊须为已接收状态且属于该居民",
            "The referral must be accepted and for this resident",
        )
    if referral.to_institution_id != sess.institution_id:
        raise Invalid(
            "referral-other-hospital",
            "转诊的接收机构不是该医院",
            "The referral is addressed to another hospital",
        )
    return channel, referral


def no_free_slot() -> Conflict:
    return Conflict(
        "no-free-slot",
        "该出诊已无可用号源，可加入候补",
        "No free slot in the pools you may use; join the waitlist",
    )


GRAB = sa.text("""
UPDATE slots SET status = :status, hold_id = :hold_id, hold_expires_at = :expires,
       hold_for_resident_id = :resident_id, hold_referral_id = :referral_id
WHERE id = (
    SELECT id FROM slots
    WHERE session_id = :session_id AND pool = ANY(CAST(:pools AS varchar[]))
      AND (status = 'free' OR (status = 'held' AND hold_expires_at < :now))
      AND EXISTS (SELECT 1 FROM sessions WHERE id = :session_id AND status = 'open' AND starts_at > :now)
    ORDER BY array_position(CAST(:pools AS varchar[]), pool), slot_no
    LIMIT 1 FOR UPDATE SKIP LOCKED)
RETURNING id, pool
""")


async def grab_slot(
    s: AsyncSession,
    sess: SessionLike,
    pools: list[Pool],
    now: datetime,
    status: SlotStatus,
    resident_id: uuid.UUID,
    referral_id: uuid.UUID | None,
    hold_id: uuid.UUID | None = None,
    expires: datetime | None = None,
    remember_full: bool = False,
) -> tuple[uuid.UUID, str]:
    """`remember_full` (direct bookings and holds): answer from, and feed, the "pools were full" memory."""
    key = (sess.id, tuple(str(p) for p in pools))
    if remember_full and slot_memory.still_full(key, now):
        raise no_free_slot()
    row = (
        await s.execute(
            GRAB,
            {
                "status": status,
                "hold_id": hold_id,
                "expires": expires,
                "resident_id": resident_id,
                "referral_id": referral_id,
                "session_id": sess.id,
                "pools": [str(p) for p in pools],
                "now": now,
            },
        )
    ).first()
    if row is None:
        if remember_full:
            await load_session(s, sess.id, now, fresh=True)  # cancelled or started since we looked: say so
            slot_memory.full_pools.put(key, now)
        raise no_free_slot()
    return row[0], row[1]


async def bookable_pools(
    s: AsyncSession, principal: Principal, body: BookIn, sess: SessionLike, now: datetime, policy: SlotPolicy
) -> tuple[Channel, m.Referral | None, list[Pool]]:
    channel, referral = await booking_channel(s, principal, body, sess, now)
    wanted = pools_for(channel, bool(referral and referral.priority))
    usable = open_pools(wanted, sess.starts_at, now, policy)
    if not usable:
        first = min(opens_at(p, sess.starts_at, policy) for p in wanted)
        raise Conflict(
            "window-not-open",
            f"号源将于 {first.astimezone(SHANGHAI):%Y-%m-%d %H:%M} 开放预约",
            f"Booking opens at {first.isoformat()}",
        )
    return channel, referral, usable


async def confirm_booking(
    s: AsyncSession,
    principal: Principal,
    sess: SessionLike,
    slot_id: uuid.UUID,
    pool: str,
    channel: Channel,
    resident_id: uuid.UUID,
    referral: m.Referral | None,
    now: datetime,
) -> BookingOut:
    values = {
        "id": uuid.uuid4(),
        "slot_id": slot_id,
        "session_id": sess.id,
        "resident_id": resident_id,
        "pool": pool,
        "channel": str(channel),
        "referral_id": referral.id if referral else None,
        "booked_by": principal.subject,
        "status": BookingStatus.BOOKED,
        "created_at": now,
    }
    inserted = (
        await s.execute(
            insert(m.Booking)
            .values(**values)
            .on_conflict_do_nothing(
                index_elements=["session_id", "resident_id"], index_where=sa.text("status = 'booked'")
            )
            .returning(m.Booking.id)
        )
    ).first()
    if inserted is None:  # the caller's transaction rolls back, so the slot taken above is not lost
        raise Conflict(
            "already-booked",
            "该居民在本出诊已有预约",
            "The resident already has a booking in this session",
        )
    booking = m.Booking(**values)
    out = BookingOut.model_validate(booking)
    collect(s, events.booking_booked(booking, sess.institution_id, sess.department_code, sess.starts_at))
    if referral is not None:
        before, _ = await transition(s, principal, referral, Action.SCHEDULE, None, now)
        referral.appointment_at = sess.starts_at
        await record(
            s,
            referral,
            principal,
            "schedule",
            before,
            now,
            {"booking_id": str(booking.id), "session_id": str(sess.id), "pool": pool},
        )
    return out


async def book(
    s: AsyncSession, principal: Principal, body: BookIn, now: datetime, policy: SlotPolicy
) -> BookingOut:
    sess = await load_session(s, body.session_id, now)
    channel, referral, pools = await bookable_pools(s, principal, body, sess, now, policy)
    slot_id, pool = await grab_slot(
        s, sess, pools, now, SlotStatus.BOOKED, body.resident_id, body.referral_id, remember_full=True
    )
    return await confirm_booking(s, principal, sess, slot_id, pool, channel, body.resident_id, referral, now)


async def hold(
    s: AsyncSession, principal: Principal, body: BookIn, now: datetime, policy: SlotPolicy
) -> HoldOut:
    sess = await load_session(s, body.session_id, now)
    _, _, pools = await bookable_pools(s, principal, body, sess, now, policy)
    hold_id, expires = uuid.uuid4(), now + policy.hold_for
    slot_id, pool = await grab_slot(
        s,
        sess,
        pools,
        now,
        SlotStatus.HELD,
        body.resident_id,
        body.referral_id,
        hold_id,
        expires,
        remember_full=True,
    )
    return HoldOut(hold_id=hold_id, slot_id=slot_id, session_id=sess.id, pool=pool, expires_at=expires)


async def confirm_hold(
    s: AsyncSession, principal: Principal, hold_id: uuid.UUID, now: datetime, policy: SlotPolicy
) -> BookingOut:
    slot = (
        await s.execute(sa.select(m.Slot).where(m.Slot.hold_id == hold_id).with_for_update())
    ).scalar_one_or_none()
    if slot is None or slot.status != SlotStatus.HELD:
        raise NotFound("not-found", "预留不存在", "Hold not found")
    if slot.hold_expires_at is None or slot.hold_expires_at <= now:
        raise Conflict("hold-expired", "号源预留已过期", "The hold expired; the slot went back to its pool")
    assert slot.hold_for_resident_id is not None
    body = BookIn(
        session_id=slot.session_id, resident_id=slot.hold_for_resident_id, referral_id=slot.hold_referral_id
    )
    sess = await load_session(s, slot.session_id, now)
    channel, referral = await booking_channel(s, principal, body, sess, now)
    slot.status, slot.hold_id, slot.hold_expires_at = SlotStatus.BOOKED, None, None
    await s.flush()
    out = await confirm_booking(
        s, principal, sess, slot.id, slot.pool, channel, body.resident_id, referral, now
    )
    await s.execute(
        sa.update(m.WaitlistEntry)
        .where(m.WaitlistEntry.offered_slot_id == slot.id, m.WaitlistEntry.status == WaitlistStatus.OFFERED)
        .values(status=WaitlistStatus.BOOKED)
    )
    return out

"""Holding and booking a slot: the channel (who books for whom), the open pools, taking one slot row
(`grab`), and confirming a hold. A partial unique index keeps one resident to one booking per session.
The referral office booking a referral that already has an appointment moves it (`appointments`): the
old booking is freed before the new one is inserted (one live booking per referral).

The hot path (`book`, `hold`): after the caller's channel is known, an attempt whose every usable pool
was open and full a moment ago is refused from memory before the county's rules are even looked up;
the rules themselves come from a short per-process memory (`county_rules`)."""

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
from .appointments import active_bookings, free_booking, reschedule
from .grab import grab_slot, no_free_slot
from .sessions import SessionLike, load_session, session_slot_policy

BOOKABLE = frozenset({Status.ACCEPTED, Status.SCHEDULED})


async def booking_channel(
    s: AsyncSession, principal: Principal, body: BookIn, sess: SessionLike, now: datetime
) -> tuple[Channel, m.Referral | None]:
    """The channel the caller books through (`access.booking_channel`), checked against the data: the
    resident exists, a family doctor's team holds their contract, a referral office's referral is
    accepted (or scheduled: booking again moves its appointment), for this resident and addressed to
    this hospital."""
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
    if referral.status not in BOOKABLE or referral.resident_id != body.resident_id:
        raise Conflict(
            "referral-not-accepted",
            "转诊须为已接收（或已预约）状态且属于该居民",
            "The referral must be accepted (or scheduled) and for this resident",
        )
    if referral.to_institution_id != sess.institution_id:
        raise Invalid(
            "referral-other-hospital",
            "转诊的接收机构不是该医院",
            "The referral is addressed to another hospital",
        )
    return channel, referral


async def bookable_pools(
    s: AsyncSession,
    principal: Principal,
    body: BookIn,
    sess: SessionLike,
    now: datetime,
    defaults: SlotPolicy,
) -> tuple[Channel, m.Referral | None, list[Pool], SlotPolicy]:
    """The channel, its referral, the pools open to it now and the session's county's rules. When all the
    pools the channel may use were open and full a moment ago (`slot_memory`), the attempt is refused
    before the rules are looked up: a window, once open, stays open."""
    channel, referral = await booking_channel(s, principal, body, sess, now)
    wanted = pools_for(channel, bool(referral and referral.priority))
    if slot_memory.still_full((sess.id, tuple(str(p) for p in wanted)), now):
        raise no_free_slot()
    rules = await session_slot_policy(s, sess, defaults, now)
    usable = open_pools(wanted, sess.starts_at, now, rules)
    if not usable:
        first = min(opens_at(p, sess.starts_at, rules) for p in wanted)
        raise Conflict(
            "window-not-open",
            f"号源将于 {first.astimezone(SHANGHAI):%Y-%m-%d %H:%M} 开放预约",
            f"Booking opens at {first.isoformat()}",
        )
    return channel, referral, usable, rules


async def current_bookings(
    s: AsyncSession, referral: m.Referral | None, sess: SessionLike
) -> list[m.Booking]:
    """A scheduled referral's live booking, locked (booking it again moves it); one in this same session
    is refused — before a slot is taken, so a stop of this session waiting for the referral's lock
    cannot be waited for in turn."""
    if referral is None or referral.status != Status.SCHEDULED:
        return []
    old = await active_bookings(s, referral.id)
    if any(b.session_id == sess.id for b in old):
        raise already_booked()
    return old


def already_booked() -> Conflict:
    return Conflict(
        "already-booked",
        "该居民在本出诊已有预约",
        "The resident already has a booking in this session",
    )


async def _follow_referral(
    s: AsyncSession,
    principal: Principal,
    referral: m.Referral,
    booking: m.Booking,
    sess: SessionLike,
    now: datetime,
) -> None:
    """An accepted referral is scheduled; a scheduled one (its earlier booking freed) moves here."""
    if referral.status == Status.SCHEDULED:
        await reschedule(s, principal, referral, booking, sess.starts_at, now, "rebooked")
        return
    before, _ = await transition(s, principal, referral, Action.SCHEDULE, None, now)
    referral.appointment_at = sess.starts_at
    detail = {"booking_id": str(booking.id), "session_id": str(sess.id), "pool": booking.pool}
    await record(s, referral, principal, "schedule", before, now, detail)


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
    policy: SlotPolicy,
    moving: list[m.Booking],
) -> BookingOut:
    """`moving`: the referral's live booking (`current_bookings`), freed first: its slot goes back to its
    pool and the waitlist, and the referral's one live booking becomes this one."""
    for old in moving:
        old_sess = await s.get(m.Session, old.session_id)
        assert old_sess is not None
        await free_booking(s, old, old_sess, now, policy)
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
        raise already_booked()
    booking = m.Booking(**values)
    out = BookingOut.model_validate(booking)
    collect(s, events.booking_booked(booking, sess.institution_id, sess.department_code, sess.starts_at))
    if referral is not None:
        await _follow_referral(s, principal, referral, booking, sess, now)
    return out


async def book(
    s: AsyncSession, principal: Principal, body: BookIn, now: datetime, policy: SlotPolicy
) -> BookingOut:
    """`policy` (here and below): the deployment's slot rules, for a county that has set none."""
    sess = await load_session(s, body.session_id, now)
    channel, referral, pools, rules = await bookable_pools(s, principal, body, sess, now, policy)
    moving = await current_bookings(s, referral, sess)
    slot_id, pool = await grab_slot(
        s, sess, pools, now, SlotStatus.BOOKED, body.resident_id, body.referral_id, remember_full=True
    )
    return await confirm_booking(
        s, principal, sess, slot_id, pool, channel, body.resident_id, referral, now, rules, moving
    )


async def hold(
    s: AsyncSession, principal: Principal, body: BookIn, now: datetime, policy: SlotPolicy
) -> HoldOut:
    sess = await load_session(s, body.session_id, now)
    _, referral, pools, rules = await bookable_pools(s, principal, body, sess, now, policy)
    await current_bookings(s, referral, sess)  # no hold where the referral is booked already
    hold_id, expires = uuid.uuid4(), now + rules.hold_for
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
    """The hold becomes a booking; the session is read FOR KEY SHARE (a stop in progress is waited for and
    refuses it). A waitlist offer the hold was made for is booked — that entry only (the slot may have
    been offered before, to an entry whose hold lapsed)."""
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
    sess = await load_session(s, slot.session_id, now, lock=True)
    channel, referral = await booking_channel(s, principal, body, sess, now)
    moving = await current_bookings(s, referral, sess)
    expires = slot.hold_expires_at
    slot.status, slot.hold_id, slot.hold_expires_at = SlotStatus.BOOKED, None, None
    await s.flush()
    rules = await session_slot_policy(s, sess, policy, now)
    out = await confirm_booking(
        s, principal, sess, slot.id, slot.pool, channel, body.resident_id, referral, now, rules, moving
    )
    W = m.WaitlistEntry
    await s.execute(
        sa.update(W)
        .where(
            W.offered_slot_id == slot.id,
            W.status == WaitlistStatus.OFFERED,
            W.resident_id == body.resident_id,
            W.offer_expires_at == expires,
        )
        .values(status=WaitlistStatus.BOOKED)
    )
    return out

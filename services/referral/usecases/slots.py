"""Publishing sessions, finding, holding and booking slots, cancellations, release and the waitlist.

Each booking takes one slot row with `UPDATE … WHERE id = (SELECT … FOR UPDATE SKIP LOCKED)`, so
concurrent clients and service replicas never book a slot twice, and a partial unique index keeps one
resident to one booking per session.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, fields
from datetime import datetime
from decimal import Decimal
from typing import Union

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from shared.auth import Principal, Role, forbidden
from shared.clock import SHANGHAI
from shared.events import EventEnvelope
from shared.outbox import record_event
from shared.problems import Problem

from .. import lookups
from .. import models as m
from ..domain.errors import RuleViolation
from ..domain.rules import URGENCY_RANK, Urgency
from ..domain.slots import (
    Channel,
    Pool,
    SlotPolicy,
    check_session_times,
    open_pools,
    opens_at,
    pools_for,
    split_capacity,
)
from ..domain.states import Action, Status
from ..schemas import BookIn, BookingOut, HoldOut, SessionIn, SessionOut, WaitlistIn, WaitlistOut
from . import slot_memory
from .common import load, record, transition

SESSIONS, BOOKINGS = "referral.sessions", "referral.bookings"
SessionLike = Union["SessionInfo", m.Session]
PUBLISHERS = {Role.HIS_SYSTEM, Role.REFERRAL_COORDINATOR}


async def _event(s: AsyncSession, topic: str, kind: str, key: uuid.UUID, data: dict[str, object]) -> None:
    await record_event(
        s,
        m.outbox,
        topic,
        str(key),
        EventEnvelope(
            type=f"referral.{kind}", source="/referral", subject=f"{kind.split('.')[0]}/{key}", data=data
        ),
    )


async def free_counts(
    s: AsyncSession, session_ids: list[uuid.UUID], now: datetime
) -> dict[uuid.UUID, dict[str, int]]:
    rows = await s.execute(
        sa.select(m.Slot.session_id, m.Slot.pool, sa.func.count())
        .where(
            m.Slot.session_id.in_(session_ids),
            sa.or_(m.Slot.status == "free", sa.and_(m.Slot.status == "held", m.Slot.hold_expires_at < now)),
        )
        .group_by(m.Slot.session_id, m.Slot.pool)
    )
    out: dict[uuid.UUID, dict[str, int]] = {i: {} for i in session_ids}
    for sid, pool, n in rows:
        out[sid][pool] = n
    return out


def session_out(sess: m.Session, free: dict[str, int], policy: SlotPolicy) -> SessionOut:
    out = SessionOut.model_validate(sess)
    out.free = free
    out.opens_at = {p: opens_at(p, sess.starts_at, policy) for p in Pool}
    return out


async def publish_session(
    s: AsyncSession, principal: Principal, body: SessionIn, now: datetime, policy: SlotPolicy
) -> SessionOut:
    if principal.role not in PUBLISHERS or principal.institution_id != body.institution_id:
        raise forbidden("only the hospital's own HIS or referral office publishes its schedule")
    inst = await lookups.institution(s, body.institution_id)
    if inst.tier != "county":
        raise RuleViolation("not-county", "号源池只适用于县级医院", "Slot pools are for county hospitals")
    if body.department_code not in inst.departments:
        raise RuleViolation("unknown-department", "该医院无此科室", "The hospital has no such department")
    check_session_times(body.starts_at, body.ends_at, now)
    share = Decimal(body.family_doctor_share) if body.family_doctor_share else policy.family_doctor_share
    session_policy = SlotPolicy(family_doctor_share=share, priority_share=min(policy.priority_share, share))
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
        status="open",
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
                "status": "free",
            }
            for i, p in enumerate(pools)
        ],
    )
    free = {Pool.PRIORITY: split.priority, Pool.FAMILY_DOCTOR: split.family_doctor, Pool.PUBLIC: split.public}
    out = session_out(sess, {k: v for k, v in free.items() if v}, policy)
    await _event(s, SESSIONS, "session.published", sess.id, out.model_dump(mode="json"))
    await offer_to_waitlist(s, sess, now, policy)
    return out


@dataclass(frozen=True)
class SessionInfo:
    """What booking needs of a session, read as a plain row (the booking path is the hot path)."""

    id: uuid.UUID
    institution_id: uuid.UUID
    department_code: str
    resource_type: str
    starts_at: datetime
    status: str


SESSION_COLUMNS = [m.Session.__table__.c[f.name] for f in fields(SessionInfo)]


async def _session(s: AsyncSession, ident: uuid.UUID, now: datetime, fresh: bool = False) -> SessionInfo:
    cached = None if fresh else slot_memory.sessions.get(ident)
    sess = cached if isinstance(cached, SessionInfo) else None
    if sess is None:
        row = (await s.execute(sa.select(*SESSION_COLUMNS).where(m.Session.__table__.c.id == ident))).first()
        sess = SessionInfo(*row) if row is not None else None
        if sess is not None and sess.status == "open":
            slot_memory.sessions.put(ident, sess)
    if sess is None:
        raise Problem(404, "not-found", "出诊不存在", "Session not found")
    if sess.status != "open":
        raise RuleViolation("session-cancelled", "该出诊已停诊", "The session was cancelled", 409)
    if sess.starts_at <= now:
        raise RuleViolation("session-started", "该出诊已开始", "The session has already started", 409)
    return sess


async def _channel(
    s: AsyncSession, principal: Principal, body: BookIn, sess: SessionLike, now: datetime
) -> tuple[Channel, m.Referral | None]:
    """Who books decides the pools: residents the public pool for themselves, family doctors their
    contracted residents, the receiving hospital's referral office any pool for an accepted referral."""
    if principal.role != Role.FAMILY_DOCTOR:
        await lookups.resident(s, body.resident_id)
    if principal.role == Role.RESIDENT:
        if principal.resident_id != body.resident_id:
            raise forbidden("a resident books only for themselves")
        return Channel.RESIDENT, None
    if principal.role == Role.FAMILY_DOCTOR:
        members = await lookups.resident_and_team(s, body.resident_id, now.astimezone(SHANGHAI).date())
        if principal.practitioner_id not in members:
            raise RuleViolation(
                "not-contracted",
                "只能为本团队签约居民预约家庭医生号源",
                "Family-doctor slots are for residents contracted with your team",
                403,
            )
        return Channel.FAMILY_DOCTOR, None
    if principal.role == Role.REFERRAL_COORDINATOR and principal.institution_id == sess.institution_id:
        if body.referral_id is None:
            raise RuleViolation(
                "referral-required",
                "转诊中心预约须关联已接收的转诊",
                "The referral office books for an accepted referral: give referral_id",
            )
        referral = await load(s, principal, body.referral_id, for_update=True)
        if referral.status != Status.ACCEPTED or referral.resident_id != body.resident_id:
            raise RuleViolation(
                "referral-not-accepted",
                "转诊须为已接收状态且属于该居民",
                "The referral must be accepted and for this resident",
                409,
            )
        if referral.to_institution_id != sess.institution_id:
            raise RuleViolation(
                "referral-other-hospital",
                "转诊的接收机构不是该医院",
                "The referral is addressed to another hospital",
            )
        return Channel.COORDINATOR, referral
    raise forbidden(f"a {principal.role} cannot book this session")


def no_free_slot() -> RuleViolation:
    return RuleViolation(
        "no-free-slot",
        "该出诊已无可用号源，可加入候补",
        "No free slot in the pools you may use; join the waitlist",
        409,
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


async def _grab(
    s: AsyncSession,
    sess: SessionLike,
    pools: list[Pool],
    now: datetime,
    status: str,
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
            await _session(s, sess.id, now, fresh=True)  # cancelled or started since we looked: say so
            slot_memory.full_pools.put(key, now)
        raise no_free_slot()
    return row[0], row[1]


async def _pools(
    s: AsyncSession, principal: Principal, body: BookIn, sess: SessionLike, now: datetime, policy: SlotPolicy
) -> tuple[Channel, m.Referral | None, list[Pool]]:
    channel, referral = await _channel(s, principal, body, sess, now)
    wanted = pools_for(channel, bool(referral and referral.priority))
    usable = open_pools(wanted, sess.starts_at, now, policy)
    if not usable:
        first = min(opens_at(p, sess.starts_at, policy) for p in wanted)
        raise RuleViolation(
            "window-not-open",
            f"号源将于 {first.astimezone(SHANGHAI):%Y-%m-%d %H:%M} 开放预约",
            f"Booking opens at {first.isoformat()}",
            409,
        )
    return channel, referral, usable


async def _confirm(
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
        "status": "booked",
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
        raise RuleViolation(
            "already-booked",
            "该居民在本出诊已有预约",
            "The resident already has a booking in this session",
            409,
        )
    booking = m.Booking(**values)
    out = BookingOut.model_validate(booking)
    await _event(
        s,
        BOOKINGS,
        "booking.booked",
        booking.id,
        {
            **out.model_dump(mode="json"),
            "institution_id": str(sess.institution_id),
            "department_code": sess.department_code,
            "starts_at": sess.starts_at.isoformat(),
        },
    )
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
    sess = await _session(s, body.session_id, now)
    channel, referral, pools = await _pools(s, principal, body, sess, now, policy)
    slot_id, pool = await _grab(
        s, sess, pools, now, "booked", body.resident_id, body.referral_id, remember_full=True
    )
    return await _confirm(s, principal, sess, slot_id, pool, channel, body.resident_id, referral, now)


async def hold(
    s: AsyncSession, principal: Principal, body: BookIn, now: datetime, policy: SlotPolicy
) -> HoldOut:
    sess = await _session(s, body.session_id, now)
    _, _, pools = await _pools(s, principal, body, sess, now, policy)
    hold_id, expires = uuid.uuid4(), now + policy.hold_for
    slot_id, pool = await _grab(
        s, sess, pools, now, "held", body.resident_id, body.referral_id, hold_id, expires, remember_full=True
    )
    return HoldOut(hold_id=hold_id, slot_id=slot_id, session_id=sess.id, pool=pool, expires_at=expires)


async def confirm_hold(
    s: AsyncSession, principal: Principal, hold_id: uuid.UUID, now: datetime, policy: SlotPolicy
) -> BookingOut:
    slot = (
        await s.execute(sa.select(m.Slot).where(m.Slot.hold_id == hold_id).with_for_update())
    ).scalar_one_or_none()
    if slot is None or slot.status != "held":
        raise Problem(404, "not-found", "预留不存在", "Hold not found")
    if slot.hold_expires_at is None or slot.hold_expires_at <= now:
        raise RuleViolation(
            "hold-expired", "号源预留已过期", "The hold expired; the slot went back to its pool", 409
        )
    assert slot.hold_for_resident_id is not None
    body = BookIn(
        session_id=slot.session_id, resident_id=slot.hold_for_resident_id, referral_id=slot.hold_referral_id
    )
    sess = await _session(s, slot.session_id, now)
    channel, referral = await _channel(s, principal, body, sess, now)
    slot.status, slot.hold_id, slot.hold_expires_at = "booked", None, None
    await s.flush()
    out = await _confirm(s, principal, sess, slot.id, slot.pool, channel, body.resident_id, referral, now)
    await s.execute(
        sa.update(m.WaitlistEntry)
        .where(m.WaitlistEntry.offered_slot_id == slot.id, m.WaitlistEntry.status == "offered")
        .values(status="booked")
    )
    return out


async def cancel_booking(
    s: AsyncSession, principal: Principal, booking_id: uuid.UUID, now: datetime, policy: SlotPolicy
) -> BookingOut:
    booking = await s.get(m.Booking, booking_id, with_for_update=True)
    if booking is None:
        raise Problem(404, "not-found", "预约不存在", "Booking not found")
    sess = await s.get(m.Session, booking.session_id)
    assert sess is not None
    mine = (
        (principal.role == Role.RESIDENT and principal.resident_id == booking.resident_id)
        or principal.subject == booking.booked_by
        or (principal.role == Role.REFERRAL_COORDINATOR and principal.institution_id == sess.institution_id)
    )
    if not mine:
        raise Problem(404, "not-found", "预约不存在", "Booking not found")
    if booking.status != "booked":
        raise RuleViolation(
            "booking-not-active", "预约已取消或已结束", "The booking is no longer active", 409
        )
    booking.status, booking.cancelled_at = "cancelled", now
    await s.execute(sa.update(m.Slot).where(m.Slot.id == booking.slot_id).values(status="free"))
    await s.flush()
    slot_memory.slot_freed(sess.id)
    out = BookingOut.model_validate(booking)
    await _event(s, BOOKINGS, "booking.cancelled", booking.id, out.model_dump(mode="json"))
    await offer_to_waitlist(s, sess, now, policy)
    return out


async def mark_no_show(
    s: AsyncSession, principal: Principal, booking_id: uuid.UUID, now: datetime
) -> BookingOut:
    booking = await s.get(m.Booking, booking_id, with_for_update=True)
    sess = await s.get(m.Session, booking.session_id) if booking else None
    if (
        booking is None
        or sess is None
        or principal.institution_id != sess.institution_id
        or principal.role not in (Role.REFERRAL_COORDINATOR, Role.HIS_SYSTEM)
    ):
        raise Problem(404, "not-found", "预约不存在", "Booking not found")
    if booking.status != "booked" or sess.starts_at > now:
        raise RuleViolation(
            "no-show-too-early",
            "只能在出诊开始后登记爽约",
            "A no-show is recorded after the session started",
            409,
        )
    booking.status = "no_show"
    await s.flush()
    out = BookingOut.model_validate(booking)
    await _event(s, BOOKINGS, "booking.no_show", booking.id, out.model_dump(mode="json"))
    return out


async def join_waitlist(
    s: AsyncSession, principal: Principal, body: WaitlistIn, now: datetime, policy: SlotPolicy
) -> WaitlistOut:
    probe = BookIn(session_id=uuid.uuid4(), resident_id=body.resident_id, referral_id=body.referral_id)
    hospital = m.Session(institution_id=body.institution_id)  # who may book depends only on the hospital
    channel, referral = await _channel(s, principal, probe, hospital, now)
    urgency = Urgency(referral.urgency) if referral else body.urgency
    entry = m.WaitlistEntry(
        id=uuid.uuid4(),
        institution_id=body.institution_id,
        department_code=body.department_code,
        resource_type=body.resource_type,
        resident_id=body.resident_id,
        referral_id=body.referral_id,
        channel=channel,
        pools=[str(p) for p in pools_for(channel, bool(referral and referral.priority))],
        urgency=urgency,
        urgency_rank=URGENCY_RANK[urgency],
        requested_by=principal.subject,
        requested_at=now,
        status="waiting",
    )
    s.add(entry)
    await s.flush()
    return WaitlistOut.model_validate(entry)


async def offer_to_waitlist(s: AsyncSession, sess: SessionLike, now: datetime, policy: SlotPolicy) -> int:
    """Offer each free slot of the session to the head of the matching waitlist, as a hold."""
    offered = 0
    while True:
        W = m.WaitlistEntry
        head = (
            await s.execute(
                sa.select(W)
                .where(
                    W.institution_id == sess.institution_id,
                    W.department_code == sess.department_code,
                    W.resource_type == sess.resource_type,
                    W.status == "waiting",
                )
                .order_by(W.urgency_rank, W.requested_at)
                .limit(1)
                .with_for_update(skip_locked=True)
            )
        ).scalar_one_or_none()
        if head is None:
            return offered
        pools = open_pools([Pool(p) for p in head.pools], sess.starts_at, now, policy)
        if not pools:
            return offered
        hold_id, expires = uuid.uuid4(), now + policy.hold_for
        try:
            async with s.begin_nested():
                slot_id, _ = await _grab(
                    s, sess, pools, now, "held", head.resident_id, head.referral_id, hold_id, expires
                )
        except RuleViolation:
            return offered
        head.status, head.offered_slot_id, head.offer_expires_at = "offered", slot_id, expires
        await s.flush()
        await _event(
            s,
            BOOKINGS,
            "waitlist.offered",
            head.id,
            {
                **WaitlistOut.model_validate(head).model_dump(mode="json"),
                "hold_id": str(hold_id),
                "session_id": str(sess.id),
            },
        )
        offered += 1


async def release_unbooked(s: AsyncSession, now: datetime, policy: SlotPolicy) -> int:
    """Family-doctor slots still free at the cut-off go to the public pool (the published share still
    counts for compliance); then the waitlists get their chance."""
    released = (
        (
            await s.execute(
                sa.text("""
        UPDATE slots SET pool = 'public', released_at = :now
        FROM sessions
        WHERE slots.session_id = sessions.id AND sessions.status = 'open'
          AND slots.pool IN ('family_doctor', 'priority')
          AND (slots.status = 'free' OR (slots.status = 'held' AND slots.hold_expires_at < :now))
          AND sessions.starts_at <= :release_until AND sessions.starts_at > :now
        RETURNING slots.session_id
    """),
                {"now": now, "release_until": now + policy.release_before},
            )
        )
        .scalars()
        .all()
    )
    by_session: dict[uuid.UUID, int] = {}
    for sid in released:
        by_session[sid] = by_session.get(sid, 0) + 1
    for sid, n in by_session.items():
        await _event(
            s,
            SESSIONS,
            "session.released",
            sid,
            {"session_id": str(sid), "released": n, "at": now.isoformat()},
        )
        sess = await s.get(m.Session, sid)
        assert sess is not None
        slot_memory.slot_freed(sid)
        await offer_to_waitlist(s, sess, now, policy)
    return len(released)


async def cancel_session(
    s: AsyncSession, principal: Principal, ident: uuid.UUID, now: datetime, policy: SlotPolicy
) -> SessionOut:
    """Stop a session: every booking is cancelled, then rebooked into the next open session of the same
    department and resource from the same pool, or put at the head of its urgency on the waitlist."""
    sess = await s.get(m.Session, ident, with_for_update=True)
    if sess is None or principal.institution_id != sess.institution_id or principal.role not in PUBLISHERS:
        raise Problem(404, "not-found", "出诊不存在", "Session not found")
    if sess.status != "open":
        raise RuleViolation("session-cancelled", "该出诊已停诊", "The session was already cancelled", 409)
    sess.status = "cancelled"
    bookings = (
        (
            await s.execute(
                sa.select(m.Booking).where(m.Booking.session_id == ident, m.Booking.status == "booked")
            )
        )
        .scalars()
        .all()
    )
    for b in bookings:
        b.status, b.cancelled_at = "cancelled", now
        await s.flush()
        target = (
            await s.execute(
                sa.select(m.Session)
                .where(
                    m.Session.institution_id == sess.institution_id,
                    m.Session.department_code == sess.department_code,
                    m.Session.resource_type == sess.resource_type,
                    m.Session.status == "open",
                    m.Session.starts_at > now,
                    m.Session.id != sess.id,
                )
                .order_by(m.Session.starts_at)
                .limit(1)
            )
        ).scalar_one_or_none()
        moved = None
        if target is not None:
            try:
                async with s.begin_nested():
                    slot_id, pool = await _grab(
                        s, target, [Pool(b.pool)], now, "booked", b.resident_id, b.referral_id
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
                        status="booked",
                        created_at=now,
                    )
                    s.add(moved)
                    await s.flush()
            except (RuleViolation, IntegrityError):
                moved = None
        if moved is None:
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
                    status="waiting",
                )
            )
        await _event(
            s,
            BOOKINGS,
            "booking.cancelled",
            b.id,
            {
                **BookingOut.model_validate(b).model_dump(mode="json"),
                "reason": "session_cancelled",
                "rebooked_as": str(moved.id) if moved else None,
                "rebooked_session": str(moved.session_id) if moved else None,
                "waitlisted": moved is None,
            },
        )
    await s.flush()
    out = session_out(sess, {}, policy)
    await _event(
        s, SESSIONS, "session.cancelled", sess.id, {**out.model_dump(mode="json"), "bookings": len(bookings)}
    )
    return out

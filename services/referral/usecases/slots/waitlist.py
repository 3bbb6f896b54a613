"""The waitlist: joining it, offering a freed slot to the first entry whose window is open, and
releasing unbooked family-doctor slots to the public pool at the cut-off."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import collect
from shared.errors import Conflict
from shared.principal import Principal

from ... import events
from ... import models as m
from ...domain.rules import URGENCY_RANK, Urgency
from ...domain.slots import (
    Pool,
    SlotPolicy,
    SlotStatus,
    WaitlistStatus,
    open_pools,
    pools_for,
)
from ...schemas import BookIn, WaitlistIn, WaitlistOut
from .. import slot_memory
from .booking import booking_channel, grab_slot
from .sessions import SessionLike


async def join_waitlist(
    s: AsyncSession, principal: Principal, body: WaitlistIn, now: datetime, policy: SlotPolicy
) -> WaitlistOut:
    probe = BookIn(session_id=uuid.uuid4(), resident_id=body.resident_id, referral_id=body.referral_id)
    hospital = m.Session(institution_id=body.institution_id)  # who may book depends only on the hospital
    channel, referral = await booking_channel(s, principal, probe, hospital, now)
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
        status=WaitlistStatus.WAITING,
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
                    W.status == WaitlistStatus.WAITING,
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
                slot_id, _ = await grab_slot(
                    s, sess, pools, now, SlotStatus.HELD, head.resident_id, head.referral_id, hold_id, expires
                )
        except Conflict:  # no free slot
            return offered
        head.status, head.offered_slot_id, head.offer_expires_at = WaitlistStatus.OFFERED, slot_id, expires
        await s.flush()
        collect(s, events.waitlist_offered(head, hold_id, sess.id))
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
        collect(s, events.session_released(sid, n, now))
        sess = await s.get(m.Session, sid)
        assert sess is not None
        slot_memory.slot_freed(sid)
        await offer_to_waitlist(s, sess, now, policy)
    return len(released)

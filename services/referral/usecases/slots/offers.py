"""Offering a session's free slots to the waitlist, as holds."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import collect
from shared.errors import Conflict

from ... import events
from ... import models as m
from ...domain.slots import Pool, SlotPolicy, SlotStatus, WaitlistStatus, open_pools
from .grab import grab_slot
from .sessions import SessionLike


async def offer_to_waitlist(
    s: AsyncSession,
    sess: SessionLike,
    now: datetime,
    policy: SlotPolicy,
    passed_over: Collection[uuid.UUID] = (),
) -> int:
    """Offer each free slot of the session to the first waiting entry (emergency > urgent > routine,
    then first come) that can take it: one of its pools is open and has a free slot. An entry whose
    window is not open yet, or whose pools are full, keeps its place for the next slot and does not
    block those behind it; so do the `passed_over` entries (whose offer of these slots just lapsed).
    A session being stopped offers nothing (`grab`)."""
    W = m.WaitlistEntry
    usable = open_pools(list(Pool), sess.starts_at, now, policy)  # shrinks as pools prove full
    offered = 0
    while usable:
        stmt = sa.select(W).where(
            W.institution_id == sess.institution_id,
            W.department_code == sess.department_code,
            W.resource_type == sess.resource_type,
            W.status == WaitlistStatus.WAITING,
            W.pools.overlap([str(p) for p in usable]),
        )
        if passed_over:
            stmt = stmt.where(W.id.not_in(list(passed_over)))
        entry = (
            await s.execute(
                stmt.order_by(W.urgency_rank, W.requested_at).limit(1).with_for_update(skip_locked=True)
            )
        ).scalar_one_or_none()
        if entry is None:
            return offered
        pools = [Pool(p) for p in entry.pools if Pool(p) in usable]  # in the entry's own order
        hold_id, expires = uuid.uuid4(), now + policy.hold_for
        try:
            async with s.begin_nested():
                slot_id, _ = await grab_slot(
                    s,
                    sess,
                    pools,
                    now,
                    SlotStatus.HELD,
                    entry.resident_id,
                    entry.referral_id,
                    hold_id,
                    expires,
                )
        except Conflict:  # these pools have no free slot (or the session stopped): no one gets one there
            usable = [p for p in usable if p not in pools]
            continue
        entry.status, entry.offered_slot_id, entry.offer_expires_at = WaitlistStatus.OFFERED, slot_id, expires
        await s.flush()
        collect(s, events.waitlist_offered(entry, hold_id, sess.id))
        offered += 1
    return offered

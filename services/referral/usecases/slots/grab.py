"""Taking one slot row: `UPDATE … WHERE id = (SELECT … FOR UPDATE SKIP LOCKED)`, so concurrent clients
and replicas never take a slot twice. Booking, holds, waitlist offers and a stopped session's rebooking
all take their slot here."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from shared.errors import Conflict

from ...domain.slots import Pool, SlotStatus
from .. import slot_memory
from .sessions import SessionLike, load_session


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

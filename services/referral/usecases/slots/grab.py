"""Taking one slot row: `UPDATE … WHERE id = (SELECT … FOR UPDATE SKIP LOCKED)`, so concurrent clients
and replicas never take a slot twice. Booking, holds, waitlist offers and a stopped session's rebooking
all take their slot here.

The same statement takes the session row FOR KEY SHARE while it checks that the session is open: that
lock does not conflict with other bookers (nor with the booking's own foreign key), only with the FOR
UPDATE a hospital stopping the session takes. So a slot is never taken in a session being stopped: a
booker or hold waits for the stop and then finds the session cancelled (`wait`); a waitlist offer or a
rebooking, made while holding other locks a stop may need, does not wait and finds nothing (no offer).
"""

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


def _grab(session_lock: str) -> sa.TextClause:
    return sa.text(f"""
UPDATE slots SET status = :status, hold_id = :hold_id, hold_expires_at = :expires,
       hold_for_resident_id = :resident_id, hold_referral_id = :referral_id
WHERE id = (
    SELECT id FROM slots
    WHERE session_id = :session_id AND pool = ANY(CAST(:pools AS varchar[]))
      AND (status = 'free' OR (status = 'held' AND hold_expires_at < :now))
      AND EXISTS (SELECT 1 FROM sessions WHERE id = :session_id AND status = 'open' AND starts_at > :now
                  {session_lock})
    ORDER BY array_position(CAST(:pools AS varchar[]), pool), slot_no
    LIMIT 1 FOR UPDATE SKIP LOCKED)
RETURNING id, pool
""")


GRAB_WAITING = _grab("FOR KEY SHARE")
GRAB_SKIPPING = _grab("FOR KEY SHARE SKIP LOCKED")


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
    """`remember_full` (direct bookings and holds): answer from, and feed, the "pools were full" memory,
    and wait for a stop of the session in progress. Without it (offers, rebookings) a session being
    stopped has no free slot."""
    key = (sess.id, tuple(str(p) for p in pools))
    if remember_full and slot_memory.still_full(key, now):
        raise no_free_slot()
    row = (
        await s.execute(
            GRAB_WAITING if remember_full else GRAB_SKIPPING,
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

"""What every slot use case shares: the session's fixed facts (remembered per process), free
counts and the session view. Their events (`referral.sessions` / `referral.bookings`) are built in
`services.referral.events` and raised with `shared.db.collect`."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Union

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from shared.errors import Conflict

from ... import models as m
from ...access import not_found_session
from ...domain.slots import Pool, SessionStatus, SlotPolicy, SlotStatus, opens_at
from ...schemas import SessionOut
from .. import slot_memory
from .county import county_of, county_slot_policy, institution_slot_policy

SessionLike = Union["SessionInfo", m.Session]


async def free_counts(
    s: AsyncSession, session_ids: list[uuid.UUID], now: datetime
) -> dict[uuid.UUID, dict[str, int]]:
    rows = await s.execute(
        sa.select(m.Slot.session_id, m.Slot.pool, sa.func.count())
        .where(
            m.Slot.session_id.in_(session_ids),
            sa.or_(
                m.Slot.status == SlotStatus.FREE,
                sa.and_(m.Slot.status == SlotStatus.HELD, m.Slot.hold_expires_at < now),
            ),
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


@dataclass(frozen=True)
class SessionInfo:
    """What booking needs of a session, read as a plain row (the booking path is the hot path)."""

    id: uuid.UUID
    institution_id: uuid.UUID
    department_code: str
    resource_type: str
    starts_at: datetime
    status: str
    county_code: str | None  # the hospital's county, whose slot rules apply


SESSION_COLUMNS = [
    *(m.Session.__table__.c[f.name] for f in fields(SessionInfo) if f.name != "county_code"),
    county_of(m.Session.__table__.c.institution_id),
]


async def session_slot_policy(
    s: AsyncSession, sess: SessionLike, defaults: SlotPolicy, now: datetime
) -> SlotPolicy:
    """The slot rules of the session's county (`county`); `defaults` are the deployment's."""
    if isinstance(sess, SessionInfo):
        return await county_slot_policy(s, sess.county_code, defaults, now)
    return await institution_slot_policy(s, sess.institution_id, defaults, now)


async def load_session(
    s: AsyncSession, ident: uuid.UUID, now: datetime, fresh: bool = False, lock: bool = False
) -> SessionInfo:
    """The session, open and not started. `lock` (confirming a hold, whose slot is already taken): read
    it now, FOR KEY SHARE, so a stop in progress is waited for and seen (`grab` locks it the same way)."""
    cached = None if fresh or lock else slot_memory.sessions.get(ident)
    sess = cached if isinstance(cached, SessionInfo) else None
    if sess is None:
        stmt = sa.select(*SESSION_COLUMNS).where(m.Session.__table__.c.id == ident)
        if lock:
            stmt = stmt.with_for_update(read=True, key_share=True, of=m.Session.__table__)
        row = (await s.execute(stmt)).first()
        sess = SessionInfo(*row) if row is not None else None
        if sess is not None and sess.status == SessionStatus.OPEN:
            slot_memory.sessions.put(ident, sess)
    if sess is None:
        raise not_found_session()
    if sess.status != SessionStatus.OPEN:
        raise Conflict("session-cancelled", "该出诊已停诊", "The session was cancelled")
    if sess.starts_at <= now:
        raise Conflict("session-started", "该出诊已开始", "The session has already started")
    return sess

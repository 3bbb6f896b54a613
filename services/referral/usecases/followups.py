"""Recording follow-up visits of downward referrals."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from shared.errors import Conflict, NotFound
from shared.principal import Principal

from .. import models as m
from ..access import check_visit_recorder, owns_a_visit
from ..repository import load_referral
from ..schemas import FollowUpVisitOut, VisitDoneIn
from .common import record


async def visits_of(s: AsyncSession, principal: Principal, referral_id: uuid.UUID) -> list[FollowUpVisitOut]:
    rows = (
        (
            await s.execute(
                sa.select(m.FollowUpVisit)
                .where(m.FollowUpVisit.referral_id == referral_id)
                .order_by(m.FollowUpVisit.seq)
            )
        )
        .scalars()
        .all()
    )
    if not rows or not owns_a_visit(principal, {v.owner_institution_id for v in rows}):
        await load_referral(s, principal, referral_id)  # the referral's parties read them too
    return [FollowUpVisitOut.model_validate(v) for v in rows]


async def record_visit(
    s: AsyncSession, principal: Principal, visit_id: uuid.UUID, body: VisitDoneIn, now: datetime
) -> FollowUpVisitOut:
    visit = await s.get(m.FollowUpVisit, visit_id, with_for_update=True)
    if visit is None:
        raise NotFound("not-found", "随访记录不存在", "Follow-up visit not found")
    check_visit_recorder(principal, visit.owner_institution_id)
    if visit.done_at is not None:
        raise Conflict("visit-done", "该次随访已记录", "This visit is already recorded")
    visit.done_at, visit.done_by, visit.note = now, principal.subject, body.note
    referral = await s.get(m.Referral, visit.referral_id, with_for_update=True)
    assert referral is not None
    await record(
        s,
        referral,
        principal,
        "follow_up_visit",
        referral.status,
        now,
        {"visit": visit.seq, "due_date": visit.due_date.isoformat(), "late": visit.missed_at is not None},
    )
    return FollowUpVisitOut.model_validate(visit)

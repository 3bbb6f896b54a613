"""Recording follow-up visits of downward referrals."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from shared.errors import Conflict, NotFound, forbidden
from shared.principal import Principal, Role

from .. import models as m
from ..schemas import FollowUpVisitOut, VisitDoneIn
from .common import load, record

FOLLOW_UP_ROLES = {Role.FAMILY_DOCTOR, Role.VILLAGE_DOCTOR, Role.REFERRAL_COORDINATOR}


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
    if not rows or not any(principal.institution_id == v.owner_institution_id for v in rows):
        await load(s, principal, referral_id)  # the owner team's institution may read them too
    return [FollowUpVisitOut.model_validate(v) for v in rows]


async def record_visit(
    s: AsyncSession, principal: Principal, visit_id: uuid.UUID, body: VisitDoneIn, now: datetime
) -> FollowUpVisitOut:
    visit = await s.get(m.FollowUpVisit, visit_id, with_for_update=True)
    if visit is None:
        raise NotFound("not-found", "随访记录不存在", "Follow-up visit not found")
    if principal.institution_id != visit.owner_institution_id or principal.role not in FOLLOW_UP_ROLES:
        raise forbidden("only the owning family-doctor team's institution records this visit")
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

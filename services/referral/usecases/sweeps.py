"""The periodic sweep: escalate overdue answers, expire unanswered referrals, mark no-shows, flag missed
follow-up visits. Driven by the clock it is given, so tests control time. Each kind of work is taken at
most `limit` rows at a time, so after a long downtime the backlog is worked off in short transactions
(the caller runs the sweep again while `has_more`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from shared.clock import SHANGHAI

from .. import models as m
from ..domain.followup import is_missed
from ..domain.rules import Policy
from ..domain.slots import SlotPolicy
from ..domain.states import Action, Status
from .common import SYSTEM, record, transition
from .slots import release_unbooked


@dataclass
class SweepResult:
    escalated: int = 0
    expired: int = 0
    no_shows: int = 0
    missed_visits: int = 0
    released_slots: int = 0

    def has_more(self, limit: int) -> bool:
        return max(self.escalated, self.expired, self.no_shows, self.missed_visits) >= limit


SWEEP_BATCH = 500


async def sweep(
    s: AsyncSession,
    now: datetime,
    policy: Policy,
    slot_policy: SlotPolicy | None = None,
    limit: int = SWEEP_BATCH,
) -> SweepResult:
    async def _locked(stmt: sa.Select[m.Referral]) -> list[m.Referral]:
        return list((await s.execute(stmt.limit(limit).with_for_update(skip_locked=True))).scalars())

    result = SweepResult()
    result.released_slots = await release_unbooked(s, now, slot_policy or SlotPolicy())
    R = m.Referral
    for r in await _locked(
        sa.select(R).where(R.status == Status.SUBMITTED, R.submitted_at <= now - policy.expire_after)
    ):
        before, _ = await transition(s, SYSTEM, r, Action.EXPIRE, None, now)
        await record(s, r, SYSTEM, "expire", before, now)
        result.expired += 1
    for r in await _locked(
        sa.select(R).where(R.status == Status.SUBMITTED, R.escalated_at.is_(None), R.response_due_at < now)
    ):
        r.escalated_at = now
        await record(
            s,
            r,
            SYSTEM,
            "escalate",
            r.status,
            now,
            {"due": r.response_due_at.isoformat() if r.response_due_at else None},
        )
        result.escalated += 1
    for r in await _locked(
        sa.select(R).where(R.status == Status.SCHEDULED, R.appointment_at <= now - policy.no_show_after)
    ):
        before, _ = await transition(s, SYSTEM, r, Action.NO_SHOW, None, now)
        await record(s, r, SYSTEM, "no_show", before, now, {"auto": True})
        result.no_shows += 1
    today = now.astimezone(SHANGHAI).date()
    V = m.FollowUpVisit
    visits = (
        await s.execute(
            sa.select(V)
            .where(V.done_at.is_(None), V.missed_at.is_(None), V.due_date < today)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    ).scalars()
    for v in list(visits):
        if is_missed(v.due_date, False, today, policy.follow_up_grace_days):
            v.missed_at = now
            referral = await s.get(R, v.referral_id)
            assert referral is not None
            await record(
                s,
                referral,
                SYSTEM,
                "follow_up_missed",
                referral.status,
                now,
                {"visit": v.seq, "due_date": v.due_date.isoformat()},
            )
            result.missed_visits += 1
    return result

"""The periodic sweep: release unbooked family-doctor slots, put waitlist entries whose offer lapsed back
to waiting, escalate overdue answers, expire unanswered referrals, mark no-shows, flag missed
follow-up visits, each by the rules of the referral's county (its newest recorded rules, joined in the
same statement; a county with none runs on the deployment's `Policy`). Driven by the clock it is given,
so tests control time. Each kind of work is taken at
most `limit` rows at a time, so after a long downtime the backlog is worked off in short transactions
(the caller runs the sweep again while `has_more`). `run_sweeps` is the loop the worker role runs; it is
given what it needs (database, clock, policies), never an app."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, fields
from datetime import datetime, timedelta

import sqlalchemy as sa
import structlog
from prometheus_client import Counter, Gauge
from sqlalchemy.ext.asyncio import AsyncSession

from shared.clock import SHANGHAI, Clock
from shared.county_policy import newest_versions
from shared.db import Database

from .. import models as m
from ..access import SYSTEM
from ..domain.rules import Policy
from ..domain.settings import ReferralRules
from ..domain.slots import SlotPolicy
from ..domain.states import Action, Status
from .common import record, transition
from .slots import lapse_offers, release_unbooked


@dataclass
class SweepResult:
    escalated: int = 0
    expired: int = 0
    no_shows: int = 0
    missed_visits: int = 0
    released_slots: int = 0
    lapsed_offers: int = 0

    def has_more(self, limit: int) -> bool:
        return (
            max(self.escalated, self.expired, self.no_shows, self.missed_visits, self.lapsed_offers) >= limit
        )


SWEEP_BATCH = 500
RULE_NAMES = frozenset(f.name for f in fields(ReferralRules))


def _setting(rules: sa.Subquery, name: str) -> sa.ColumnElement[int]:
    assert name in RULE_NAMES, name  # a renamed setting must not silently fall back to the default
    setting: sa.ColumnElement[int] = rules.c.settings[name].astext.cast(sa.Integer)
    return setting


def _days(rules: sa.Subquery, name: str, deployed: timedelta) -> sa.ColumnElement[timedelta]:
    """The county's setting `name` (whole days) as an interval, else the deployment's."""
    return sa.func.coalesce(
        sa.func.make_interval(0, 0, 0, _setting(rules, name)), sa.literal(deployed, sa.Interval)
    )


async def sweep(
    s: AsyncSession,
    now: datetime,
    policy: Policy,
    slot_policy: SlotPolicy | None = None,
    limit: int = SWEEP_BATCH,
) -> SweepResult:
    R, V, rules = m.Referral, m.FollowUpVisit, newest_versions(m.county_policies)

    async def _locked(stmt: sa.Select[m.Referral]) -> list[m.Referral]:
        stmt = stmt.outerjoin(rules, rules.c.county_code == R.county_code)
        return list((await s.execute(stmt.limit(limit).with_for_update(of=R, skip_locked=True))).scalars())

    result = SweepResult()
    result.released_slots = await release_unbooked(s, now, slot_policy or SlotPolicy())
    result.lapsed_offers = await lapse_offers(s, now, slot_policy or SlotPolicy(), limit)
    expire_after = _days(rules, "expire_after_days", policy.expire_after)
    for r in await _locked(
        sa.select(R).where(R.status == Status.SUBMITTED, R.submitted_at + expire_after <= now)
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
    no_show_after = _days(rules, "no_show_after_days", policy.no_show_after)
    for r in await _locked(
        sa.select(R).where(R.status == Status.SCHEDULED, R.appointment_at + no_show_after <= now)
    ):
        before, _ = await transition(s, SYSTEM, r, Action.NO_SHOW, None, now)
        await record(s, r, SYSTEM, "no_show", before, now, {"auto": True})
        result.no_shows += 1
    today = now.astimezone(SHANGHAI).date()
    grace = sa.func.coalesce(_setting(rules, "follow_up_grace_days"), policy.follow_up_grace_days)
    visits = (
        await s.execute(
            sa.select(V, R)  # the referral in the same statement: its timeline entry needs it
            .join(R, R.id == V.referral_id)
            .outerjoin(rules, rules.c.county_code == R.county_code)
            .where(V.done_at.is_(None), V.missed_at.is_(None), V.due_date + grace < today)  # is_missed
            .limit(limit)
            .with_for_update(of=V, skip_locked=True)
        )
    ).all()
    for v, referral in visits:
        v.missed_at = now
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


log = structlog.get_logger()
SWEEP_RUNS = Counter("referral_sweep_runs_total", "Deadline sweeps that completed")
SWEEP_FAILURES = Counter("referral_sweep_failures_total", "Deadline sweeps that failed (they run again)")
SWEEP_LAST_SUCCESS = Gauge("referral_sweep_last_success_timestamp", "Unix time of the last completed sweep")


async def sweep_once(db: Database, now: datetime, policy: Policy, slot_policy: SlotPolicy) -> SweepResult:
    """One bounded sweep in its own transaction."""
    async with db.uow() as uow:
        result = await sweep(uow.session, now, policy, slot_policy)
        await uow.commit()
    if any(vars(result).values()):
        log.info("referral_sweep", **vars(result))
    return result


async def run_sweeps(
    db: Database, clock: Clock, policy: Policy, slot_policy: SlotPolicy, every: float
) -> None:
    """Sweep every `every` seconds until cancelled; SKIP LOCKED makes several workers safe. A failure is
    logged and counted (a silent failure would stop escalation unnoticed) and the sweep runs again at the
    next tick."""
    while True:
        await asyncio.sleep(every)
        try:
            while (await sweep_once(db, clock.now(), policy, slot_policy)).has_more(SWEEP_BATCH):
                pass  # a backlog (after downtime) is worked off in bounded transactions
            SWEEP_RUNS.inc()
            SWEEP_LAST_SUCCESS.set_to_current_time()
        except Exception:
            SWEEP_FAILURES.inc()
            log.exception("referral_sweep_failed")

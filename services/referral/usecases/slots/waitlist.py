"""The waitlist: joining it, releasing unbooked family-doctor slots to the public pool at each county's
cut-off (then the waitlist gets them, `offers`), and taking back offers whose hold lapsed unconfirmed."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import collect
from shared.principal import Principal

from ... import events
from ... import models as m
from ...domain.rules import URGENCY_RANK, Urgency
from ...domain.slots import SessionStatus, SlotPolicy, WaitlistStatus, pools_for
from ...schemas import BookIn, WaitlistIn, WaitlistOut
from .. import slot_memory
from .booking import booking_channel
from .county import hospital_slot_policies
from .offers import offer_to_waitlist


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


RELEASE = sa.text("""
UPDATE slots SET pool = 'public', released_at = :now
FROM sessions
WHERE slots.session_id = sessions.id AND sessions.status = 'open'
  AND sessions.institution_id = ANY(CAST(:hospitals AS uuid[]))
  AND slots.pool IN ('family_doctor', 'priority')
  AND (slots.status = 'free' OR (slots.status = 'held' AND slots.hold_expires_at < :now))
  AND sessions.starts_at <= :release_until AND sessions.starts_at > :now
RETURNING slots.session_id
""")


async def release_unbooked(s: AsyncSession, now: datetime, policy: SlotPolicy) -> int:
    """Family-doctor slots still free at their county's cut-off go to the public pool (the published
    share still counts for compliance); then the waitlists get their chance. `policy`: the deployment's
    rules, for a county that has set none."""
    hospitals = (
        await s.execute(
            sa.select(m.Session.institution_id)
            .where(m.Session.status == SessionStatus.OPEN, m.Session.starts_at > now)
            .distinct()
        )
    ).scalars()
    by_rules: dict[SlotPolicy, list[uuid.UUID]] = {}
    for hospital, rules in (await hospital_slot_policies(s, list(hospitals), policy, now)).items():
        by_rules.setdefault(rules, []).append(hospital)
    released = 0
    for rules, ids in by_rules.items():  # one statement per distinct set of county rules
        released += await _release(s, ids, now, rules)
    return released


async def _release(s: AsyncSession, hospitals: list[uuid.UUID], now: datetime, rules: SlotPolicy) -> int:
    params = {"now": now, "release_until": now + rules.release_before, "hospitals": hospitals}
    released = Counter((await s.execute(RELEASE, params)).scalars())
    for sid, n in released.items():
        collect(s, events.session_released(sid, n, now))
        sess = await s.get(m.Session, sid)
        assert sess is not None
        slot_memory.slot_freed(sid)
        await offer_to_waitlist(s, sess, now, rules)
    return released.total()


async def lapse_offers(s: AsyncSession, now: datetime, policy: SlotPolicy, limit: int) -> int:
    """Entries whose offered hold expired unconfirmed wait again, in their place (urgency, time asked);
    the slots they were offered go to those waiting behind them first (the lapsed ones are passed over
    this time, not for later slots). At most `limit` entries a run."""
    W = m.WaitlistEntry
    lapsed = list(
        (
            await s.execute(
                sa.select(W)
                .where(W.status == WaitlistStatus.OFFERED, W.offer_expires_at < now)
                .order_by(W.offer_expires_at)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        ).scalars()
    )
    if not lapsed:
        return 0
    slots = {e.offered_slot_id for e in lapsed if e.offered_slot_id is not None}
    for e in lapsed:
        e.status, e.offered_slot_id, e.offer_expires_at = WaitlistStatus.WAITING, None, None
    await s.flush()
    sessions = list(
        (
            await s.execute(
                sa.select(m.Session)
                .where(
                    m.Session.id.in_(sa.select(m.Slot.session_id).where(m.Slot.id.in_(slots))),
                    m.Session.status == SessionStatus.OPEN,
                    m.Session.starts_at > now,
                )
                .order_by(m.Session.starts_at)
            )
        ).scalars()
    )
    rules = await hospital_slot_policies(s, {x.institution_id for x in sessions}, policy, now)
    passed_over = {e.id for e in lapsed}
    for sess in sessions:
        slot_memory.slot_freed(sess.id)
        await offer_to_waitlist(s, sess, now, rules[sess.institution_id], passed_over)
    return len(lapsed)

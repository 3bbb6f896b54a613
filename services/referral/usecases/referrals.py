"""Submitting referrals and every step a receiver, approver or sender takes on them. Deadlines follow the
rules of the referring institution's county (`county_rules`); a county that has recorded none runs on
the deployment's `Policy`.

An appointment made by booking a slot is the booking's (`slots.appointments`): the manual `schedule`
step is refused while the referral has a live booking, and a sender cancelling a scheduled referral
gives its booking back. An upward referral is continued by one downward referral at a time."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from shared.clock import SHANGHAI
from shared.crud import check_version
from shared.errors import Conflict, Invalid
from shared.principal import Principal

from .. import lookups
from .. import models as m
from ..access import (
    SYSTEM,
    acting_practitioner,
    can_read,
    check_acting_practitioner,
    check_emergency_reviewer,
    check_sender,
)
from ..domain.followup import plan_visits
from ..domain.rules import (
    Direction,
    Place,
    Policy,
    Scope,
    Urgency,
    check_continues,
    check_direction,
    check_reasons,
    check_scope,
    check_way_home_free,
    classify_scope,
    continues_of_replacement,
    is_priority,
    needs_approval,
)
from ..domain.settings import ReferralRules
from ..domain.slots import SlotPolicy
from ..domain.states import Action, Status
from ..repository import load_referral
from ..schemas import (
    CancelIn,
    CompleteIn,
    ForwardIn,
    NoteIn,
    ReferralIn,
    ReferralOut,
    RejectIn,
    ReturnIn,
    ScheduleIn,
    Versioned,
)
from .common import record, transition
from .county_rules import rules_for
from .slots.appointments import free_referral_bookings, has_live_booking


async def deadlines(s: AsyncSession, county_code: str | None, deployed: Policy) -> Policy:
    """The county's response deadlines; a county that has recorded no rules runs on the deployment's.
    (Only the deadlines are read here, so the deployment's slot rules do not matter.)"""
    if county_code is None:  # a referral from before counties had rules, its origin since forgotten
        return deployed
    rules = await rules_for(s, county_code, ReferralRules.of(deployed, SlotPolicy()))
    return rules.policy()


async def receives_downward(s: AsyncSession, destination: Place | None) -> bool:
    """A village clinic receives a downward referral only with a family-doctor team of its own."""
    if destination is None or destination.tier != "village":
        return False
    return await lookups.has_active_team(s, destination.institution_id)


async def submit_referral(
    s: AsyncSession, principal: Principal, body: ReferralIn, now: datetime, policy: Policy
) -> ReferralOut:
    check_sender(principal, body.from_institution_id, body.direction)
    practitioner_id = body.from_practitioner_id or principal.practitioner_id
    today = now.astimezone(SHANGHAI).date()
    resident = await lookups.resident(s, body.resident_id)
    origin_inst, origin = await lookups.place(s, body.from_institution_id)
    destination = None
    if body.to_institution_id is not None:
        dest_inst, destination = await lookups.place(s, body.to_institution_id)
        if body.to_department_code and body.to_department_code not in dest_inst.departments:
            raise Invalid(
                "unknown-department", "接收机构无此科室", "The receiving institution has no such department"
            )
    elif not body.destination_name:
        raise Invalid(
            "destination-required",
            "须指定接收机构",
            "Give to_institution_id (or destination_name out of county)",
        )
    check_direction(body.direction, origin, destination, await receives_downward(s, destination))
    continues = body.continues_referral_id
    if body.replaces_referral_id is not None:
        replaced = await load_referral(s, principal, body.replaces_referral_id, for_update=True)
        continues = continues_of_replacement(continues, replaced.continues_referral_id)
    if continues is not None:
        upward = await _continued(s, principal, continues)
        check_continues(body.direction, resident.id, origin.institution_id, upward)
        check_way_home_free(await _continuing(s, upward.id), body.replaces_referral_id)
    scope = classify_scope(origin, destination, resident.community_id)
    check_scope(body.scope, scope)
    grassroots = await lookups.on_catalogue(
        s, origin.county_code, "grassroots", body.diagnosis_icd10, origin.tier
    )
    first_in_county = await lookups.on_catalogue(
        s, origin.county_code, "first_in_county", body.diagnosis_icd10, None
    )
    check_reasons(
        body.direction, scope, grassroots, first_in_county, body.grassroots_reason, body.out_of_county_reason
    )
    if body.direction == Direction.DOWN and body.downward_reason is None:
        raise Invalid(
            "downward-reason-required", "下转须注明下转类型", "A downward referral needs downward_reason"
        )
    team = await lookups.active_contract_team(s, resident.id, today)
    priority = is_priority(body.direction, practitioner_id, set(team.members) if team else set())
    if body.replaces_referral_id:
        await revoke_replaced(s, principal, body.replaces_referral_id, body.resident_id, now)
    status = Status.PENDING_APPROVAL if needs_approval(scope, body.urgency) else Status.SUBMITTED
    r = m.Referral(
        id=uuid.uuid4(),
        direction=body.direction,
        scope=scope,
        status=status,
        urgency=body.urgency,
        priority=priority,
        resident_id=resident.id,
        resident_community_id=resident.community_id,
        from_institution_id=origin.institution_id,
        from_tier=origin.tier,
        from_community_id=origin.community_id,
        from_practitioner_id=practitioner_id,
        to_institution_id=destination.institution_id if destination else None,
        to_tier=destination.tier if destination else None,
        to_community_id=destination.community_id if destination else None,
        to_department_code=body.to_department_code,
        destination_name=body.destination_name,
        approver_institution_id=await lookups.lead_hospital(s, origin_inst.community_id)
        if scope == Scope.OUT_OF_COUNTY
        else None,
        diagnosis_icd10=body.diagnosis_icd10,
        reason=body.reason,
        clinical_summary=body.clinical_summary,
        result_refs=body.result_refs,
        grassroots_reason=body.grassroots_reason,
        out_of_county_reason=body.out_of_county_reason,
        downward_reason=body.downward_reason,
        emergency_review_pending=scope == Scope.OUT_OF_COUNTY and body.urgency == Urgency.EMERGENCY,
        replaces_referral_id=body.replaces_referral_id,
        continues_referral_id=continues,
        county_code=origin.county_code,
        created_by=principal.subject,
        created_at=now,
        updated_at=now,
    )
    if status == Status.SUBMITTED:
        r.submitted_at = now
        r.response_due_at = (await deadlines(s, r.county_code, policy)).response_due(body.urgency, now)
    s.add(r)
    await s.flush()
    if body.direction == Direction.DOWN:
        await _plan_follow_up(s, r, body, team, today)
    detail: dict[str, Any] = {"grassroots_reason": body.grassroots_reason} if grassroots else {}
    return await record(s, r, principal, str(status), None, now, detail)


async def _plan_follow_up(
    s: AsyncSession, r: m.Referral, body: ReferralIn, team: m.RmTeam | None, today: Any
) -> None:
    plan = body.follow_up
    if plan is None:
        raise Invalid("follow-up-required", "下转须附随访计划", "A downward referral needs a follow-up plan")
    owner_team_id = plan.owner_team_id or (team.id if team else None)
    owner_institution = r.to_institution_id
    if owner_team_id is not None:
        owner = await s.get(m.RmTeam, owner_team_id)
        if owner is None or not owner.active:
            raise lookups.unknown("家庭医生团队", "family-doctor team", owner_team_id)
        owner_institution = owner.institution_id
    assert owner_institution is not None
    for seq, due in enumerate(plan_visits(today, plan.interval_days, plan.visits), start=1):
        s.add(
            m.FollowUpVisit(
                referral_id=r.id,
                seq=seq,
                owner_team_id=owner_team_id,
                owner_institution_id=owner_institution,
                due_date=due,
            )
        )


async def _continued(s: AsyncSession, principal: Principal, ident: uuid.UUID) -> m.Referral:
    """The upward referral a downward one names; one the sender cannot see is as unknown as a missing one.
    Locked FOR NO KEY UPDATE: two downward referrals continuing it are submitted one after the other, so
    the second sees the first (`check_way_home_free`)."""
    upward = await s.get(m.Referral, ident, with_for_update={"key_share": True})
    if upward is None or not can_read(principal, upward):
        raise lookups.unknown("转诊", "referral", ident)
    return upward


async def _continuing(s: AsyncSession, upward_id: uuid.UUID) -> list[tuple[uuid.UUID, str]]:
    """The downward referrals continuing the upward one: id and status."""
    R = m.Referral
    rows = await s.execute(sa.select(R.id, R.status).where(R.continues_referral_id == upward_id))
    return [(i, status) for i, status in rows]


async def revoke_replaced(
    s: AsyncSession, principal: Principal, old_id: uuid.UUID, resident_id: uuid.UUID, now: datetime
) -> None:
    old = await load_referral(s, principal, old_id, for_update=True)
    if old.resident_id != resident_id or old.from_institution_id != principal.institution_id:
        raise Invalid(
            "replaces-other",
            "只能替代本机构为同一居民发出的转诊",
            "You can only replace your own referral for the same resident",
        )
    before, _ = await transition(s, SYSTEM, old, Action.REVOKE, None, now)
    await record(s, old, principal, "revoke", before, now)


async def act(
    s: AsyncSession,
    principal: Principal,
    ident: uuid.UUID,
    action: Action,
    body: Versioned,
    now: datetime,
    policy: Policy,
    slot_policy: SlotPolicy | None = None,
) -> ReferralOut:
    """One receiver / approver / sender step; a HIS client takes it for the practitioner it names (a
    physician for a clinical step), who is recorded in the timeline beside the client. `slot_policy`: the
    deployment's slot rules, for the waitlist offered a booking the sender's cancel gives back."""
    r = await load_referral(s, principal, ident, for_update=True)
    before, _ = await transition(s, principal, r, action, body.version, now)
    detail: dict[str, Any] = {}
    acting = acting_practitioner(principal, body.acting_practitioner_id)
    if acting is not None:
        check_acting_practitioner(principal, await lookups.practitioner(s, acting), action)
        detail["acting_practitioner_id"] = str(acting)
    if isinstance(body, NoteIn) and body.note:
        detail["note"] = r.answer_note = body.note
    if action == Action.APPROVE:
        r.submitted_at = now
        r.response_due_at = (await deadlines(s, r.county_code, policy)).response_due(Urgency(r.urgency), now)
    elif isinstance(body, RejectIn):
        r.answer_code, r.answer_note = body.code, body.note
        detail.update(code=body.code, note=body.note)
    elif isinstance(body, ReturnIn):
        r.answer_code, r.answer_note = "advice", body.advice
        detail["advice"] = body.advice
    elif isinstance(body, ForwardIn):
        await _forward(s, r, body, now, policy, detail)
    elif isinstance(body, ScheduleIn):
        if body.appointment_at <= now:
            raise Invalid(
                "appointment-in-past", "预约时间须晚于当前时间", "The appointment must be in the future"
            )
        if await has_live_booking(s, r.id):
            raise Conflict(
                "appointment-booked",
                "该转诊已通过号源预约，请改约或取消该预约，而非手工排期",
                "The referral's appointment is a slot booking: book another session or cancel the "
                "booking instead of scheduling by hand",
            )
        r.appointment_at = body.appointment_at
        detail["appointment_at"] = body.appointment_at.isoformat()
    elif action == Action.ARRIVE:
        r.arrived_at = now
    elif isinstance(body, CompleteIn):
        r.completed_at, r.outcome, r.discharge_summary = now, body.outcome, body.discharge_summary
        detail["outcome"] = body.outcome
    elif isinstance(body, CancelIn):
        r.answer_note = body.reason
        detail["reason"] = body.reason
        freed = await free_referral_bookings(s, r.id, now, slot_policy or SlotPolicy())
        if freed:
            detail["bookings_cancelled"] = freed
    return await record(s, r, principal, str(action), before, now, detail)


async def _forward(
    s: AsyncSession, r: m.Referral, body: ForwardIn, now: datetime, policy: Policy, detail: dict[str, Any]
) -> None:
    dest_inst, destination = await lookups.place(s, body.to_institution_id)
    if body.to_department_code and body.to_department_code not in dest_inst.departments:
        raise Invalid(
            "unknown-department", "接收机构无此科室", "The receiving institution has no such department"
        )
    _, origin = await lookups.place(s, r.from_institution_id)
    check_direction(Direction(r.direction), origin, destination, await receives_downward(s, destination))
    if classify_scope(origin, destination, r.resident_community_id) == Scope.OUT_OF_COUNTY:
        raise Invalid(
            "forward-out-of-county",
            "不能直接转往县外，须走县外转诊审核",
            "Forwarding cannot leave the county; use an out-of-county referral",
        )
    detail.update(
        from_institution=str(r.to_institution_id),
        from_department=r.to_department_code,
        to_institution=str(destination.institution_id),
        to_department=body.to_department_code,
    )
    r.to_institution_id, r.to_tier = destination.institution_id, destination.tier
    r.to_community_id, r.to_department_code = destination.community_id, body.to_department_code
    r.scope = classify_scope(origin, destination, r.resident_community_id)
    due = await deadlines(s, r.county_code, policy)
    r.response_due_at = due.response_due(Urgency(r.urgency), now)
    r.escalated_at = None


async def review_emergency(
    s: AsyncSession, principal: Principal, ident: uuid.UUID, body: NoteIn, now: datetime
) -> ReferralOut:
    """The lead hospital reviews an emergency out-of-county referral after the fact."""
    r = await load_referral(s, principal, ident, for_update=True)
    check_emergency_reviewer(principal, r)
    acting_practitioner(principal, body.acting_practitioner_id)  # a person reviews as themselves
    if not r.emergency_review_pending:
        raise Conflict("no-review-pending", "此转诊无需事后审核", "This referral has no review pending")
    check_version(r, body.version)
    r.emergency_review_pending = False
    return await record(s, r, principal, "review", r.status, now, {"note": body.note} if body.note else {})

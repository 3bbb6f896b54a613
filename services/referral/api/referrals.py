"""Referrals: submitting, every step on them, reading them, their timeline, notifications and follow-ups,
and the inbox, outbox, approvals and search lists."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from shared.pagination import Page

from .. import queries
from ..domain.rules import Direction
from ..domain.states import Action, Status
from ..schemas import (
    CancelIn,
    CompleteIn,
    FollowUpVisitOut,
    ForwardIn,
    NoteIn,
    NotificationOut,
    ReferralIn,
    ReferralOut,
    RejectIn,
    ReturnIn,
    ScheduleIn,
    TimelineOut,
    Versioned,
    VisitDoneIn,
)
from ..usecases import followups, referrals
from .deps import Caller, Paging, Session, clock, policy, slot_policy, write

router = APIRouter(prefix="/v1", tags=["referrals"])


@router.post("/referrals", status_code=201, response_model=ReferralOut)
async def submit(body: ReferralIn, request: Request, caller: Caller) -> JSONResponse:
    now = clock(request).now()
    return await write(
        request, body, lambda s: referrals.submit_referral(s, caller, body, now, policy(request)), 201
    )


def _action_route(action: Action, model: type[Versioned], path: str) -> None:
    async def endpoint(ident: uuid.UUID, request: Request, caller: Caller, body: Any) -> JSONResponse:
        now = clock(request).now()
        return await write(
            request,
            body,
            lambda s: referrals.act(
                s, caller, ident, action, body, now, policy(request), slot_policy(request)
            ),
        )

    endpoint.__annotations__["body"] = model
    endpoint.__name__ = f"{action}_referral"
    router.add_api_route(
        f"/referrals/{{ident}}/{path}",
        endpoint,
        methods=["POST"],
        response_model=ReferralOut,
        name=f"{action}_referral",
        summary=f"{action} a referral",
    )


for _action, _model, _path in (
    (Action.APPROVE, NoteIn, "approve"),
    (Action.DENY, NoteIn, "deny"),
    (Action.ACCEPT, NoteIn, "accept"),
    (Action.REJECT, RejectIn, "reject"),
    (Action.FORWARD, ForwardIn, "forward"),
    (Action.RETURN, ReturnIn, "return"),
    (Action.SCHEDULE, ScheduleIn, "schedule"),
    (Action.ARRIVE, NoteIn, "arrive"),
    (Action.COMPLETE, CompleteIn, "complete"),
    (Action.NO_SHOW, NoteIn, "no-show"),
    (Action.CANCEL, CancelIn, "cancel"),
):
    _action_route(_action, _model, _path)


@router.post("/referrals/{ident}/review", response_model=ReferralOut)
async def review(ident: uuid.UUID, body: NoteIn, request: Request, caller: Caller) -> JSONResponse:
    now = clock(request).now()
    return await write(request, body, lambda s: referrals.review_emergency(s, caller, ident, body, now))


@router.get("/referrals/{ident}", response_model=ReferralOut)
async def get_referral(ident: uuid.UUID, s: Session, caller: Caller) -> ReferralOut:
    return await queries.referral(s, caller, ident)


@router.get("/referrals/{ident}/timeline", response_model=list[TimelineOut])
async def get_timeline(ident: uuid.UUID, s: Session, caller: Caller) -> list[TimelineOut]:
    return await queries.timeline(s, caller, ident)


@router.get("/referrals/{ident}/notifications", response_model=list[NotificationOut])
async def get_notifications(ident: uuid.UUID, s: Session, caller: Caller) -> list[NotificationOut]:
    return await queries.notifications(s, caller, ident)


@router.get("/referrals/{ident}/follow-ups", response_model=list[FollowUpVisitOut])
async def get_follow_ups(ident: uuid.UUID, s: Session, caller: Caller) -> list[FollowUpVisitOut]:
    return await followups.visits_of(s, caller, ident)


@router.post("/follow-ups/{visit_id}/done", response_model=FollowUpVisitOut)
async def visit_done(
    visit_id: uuid.UUID, body: VisitDoneIn, request: Request, caller: Caller
) -> JSONResponse:
    now = clock(request).now()
    return await write(request, body, lambda s: followups.record_visit(s, caller, visit_id, body, now))


@router.get("/inbox", response_model=Page[ReferralOut])
async def inbox(s: Session, caller: Caller, page: Paging, status: Status | None = None) -> Page[ReferralOut]:
    return await queries.inbox(s, caller, page, status)


@router.get("/outbox", response_model=Page[ReferralOut])
async def outbox(s: Session, caller: Caller, page: Paging, status: Status | None = None) -> Page[ReferralOut]:
    return await queries.outbox(s, caller, page, status)


@router.get("/approvals", response_model=Page[ReferralOut])
async def approvals(s: Session, caller: Caller, page: Paging) -> Page[ReferralOut]:
    return await queries.approvals(s, caller, page)


@router.get("/referrals", response_model=Page[ReferralOut])
async def search(
    s: Session,
    caller: Caller,
    page: Paging,
    status: Status | None = None,
    direction: Direction | None = None,
    resident_id: uuid.UUID | None = None,
    from_institution_id: uuid.UUID | None = None,
    to_institution_id: uuid.UUID | None = None,
    created_from: datetime | None = None,
    created_to: datetime | None = None,
    open_only: bool = False,
) -> Page[ReferralOut]:
    return await queries.search(
        s,
        caller,
        page,
        created_from,
        created_to,
        open_only,
        status=status,
        direction=direction,
        resident_id=resident_id,
        from_institution_id=from_institution_id,
        to_institution_id=to_institution_id,
    )


@router.get("/residents/{resident_id}/referrals", response_model=Page[ReferralOut])
async def resident_history(
    resident_id: uuid.UUID, s: Session, caller: Caller, page: Paging
) -> Page[ReferralOut]:
    return await queries.search(s, caller, page, None, None, False, resident_id=resident_id)

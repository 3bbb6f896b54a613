"""Schedules and slots: the shape of FHIR/IHE Scheduling's $find / $hold / $book, the waitlist and the
family-doctor share's compliance."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from shared.pagination import Page

from .. import queries
from ..domain.slots import ResourceType
from ..schemas import (
    BookIn,
    BookingOut,
    ComplianceDayOut,
    HoldOut,
    SessionIn,
    SessionOut,
    WaitlistIn,
    WaitlistOut,
)
from ..usecases import slots
from .deps import Caller, Paging, Session, clock, slot_policy, write

router = APIRouter(prefix="/v1", tags=["slots"])


@router.post("/sessions", status_code=201, response_model=SessionOut)
async def publish(body: SessionIn, request: Request, caller: Caller) -> JSONResponse:
    now = clock(request).now()
    return await write(
        request, body, lambda s: slots.publish_session(s, caller, body, now, slot_policy(request)), 201
    )


@router.post("/sessions/{ident}/cancel", response_model=SessionOut)
async def cancel_session(ident: uuid.UUID, request: Request, caller: Caller) -> JSONResponse:
    now = clock(request).now()
    return await write(
        request, None, lambda s: slots.cancel_session(s, caller, ident, now, slot_policy(request))
    )


@router.get("/sessions", response_model=Page[SessionOut], summary="$find: sessions with free slots per pool")
async def find(
    request: Request,
    s: Session,
    caller: Caller,
    page: Paging,
    institution_id: uuid.UUID | None = None,
    department_code: str | None = None,
    practitioner_id: uuid.UUID | None = None,
    resource_type: ResourceType | None = None,
    starts_from: datetime | None = None,
    starts_to: datetime | None = None,
) -> Page[SessionOut]:
    return await queries.find_sessions(
        s,
        page,
        clock(request).now(),
        slot_policy(request),
        starts_from,
        starts_to,
        institution_id=institution_id,
        department_code=department_code,
        practitioner_id=practitioner_id,
        resource_type=resource_type,
    )


@router.post(
    "/holds", status_code=201, response_model=HoldOut, summary="$hold: keep a slot for a few minutes"
)
async def hold(body: BookIn, request: Request, caller: Caller) -> JSONResponse:
    now = clock(request).now()
    return await write(request, body, lambda s: slots.hold(s, caller, body, now, slot_policy(request)), 201)


@router.post("/holds/{hold_id}/confirm", status_code=201, response_model=BookingOut)
async def confirm(hold_id: uuid.UUID, request: Request, caller: Caller) -> JSONResponse:
    now = clock(request).now()
    return await write(
        request, None, lambda s: slots.confirm_hold(s, caller, hold_id, now, slot_policy(request)), 201
    )


@router.post("/bookings", status_code=201, response_model=BookingOut, summary="$book")
async def book(body: BookIn, request: Request, caller: Caller) -> JSONResponse:
    now = clock(request).now()
    return await write(request, body, lambda s: slots.book(s, caller, body, now, slot_policy(request)), 201)


@router.post("/bookings/{booking_id}/cancel", response_model=BookingOut)
async def cancel(booking_id: uuid.UUID, request: Request, caller: Caller) -> JSONResponse:
    now = clock(request).now()
    return await write(
        request, None, lambda s: slots.cancel_booking(s, caller, booking_id, now, slot_policy(request))
    )


@router.post("/bookings/{booking_id}/no-show", response_model=BookingOut)
async def no_show(booking_id: uuid.UUID, request: Request, caller: Caller) -> JSONResponse:
    now = clock(request).now()
    return await write(request, None, lambda s: slots.mark_no_show(s, caller, booking_id, now))


@router.get("/bookings", response_model=Page[BookingOut])
async def my_bookings(
    s: Session, caller: Caller, page: Paging, resident_id: uuid.UUID | None = None
) -> Page[BookingOut]:
    """A resident sees their own bookings; staff those they made or their hospital holds."""
    return await queries.bookings(s, caller, page, resident_id)


@router.post("/waitlist", status_code=201, response_model=WaitlistOut)
async def join_waitlist(body: WaitlistIn, request: Request, caller: Caller) -> JSONResponse:
    now = clock(request).now()
    return await write(
        request, body, lambda s: slots.join_waitlist(s, caller, body, now, slot_policy(request)), 201
    )


@router.get("/waitlist/{entry_id}", response_model=WaitlistOut)
async def waitlist_entry(entry_id: uuid.UUID, s: Session, caller: Caller) -> WaitlistOut:
    return await queries.waitlist_entry(s, caller, entry_id)


@router.get("/compliance", response_model=list[ComplianceDayOut])
async def compliance(
    s: Session, caller: Caller, institution_id: uuid.UUID, day_from: date, day_to: date
) -> list[ComplianceDayOut]:
    return await queries.compliance(s, caller, institution_id, day_from, day_to)

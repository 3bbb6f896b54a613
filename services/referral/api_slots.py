"""HTTP routers for schedules and slots: the shape of FHIR/IHE Scheduling's $find / $hold / $book."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from shared.auth import Caller
from shared.crud import paginate, where_equal
from shared.errors import NotFound
from shared.pagination import Page

from . import models as m
from . import queries
from .api import Paging, Session, clock, write
from .domain.slots import ResourceType, SlotPolicy
from .schemas import (
    BookIn,
    BookingOut,
    ComplianceDayOut,
    HoldOut,
    SessionIn,
    SessionOut,
    WaitlistIn,
    WaitlistOut,
)
from .usecases import slots

router = APIRouter(prefix="/v1", tags=["slots"])


def slot_policy(request: Request) -> SlotPolicy:
    p: SlotPolicy = request.app.state.slot_policy
    return p


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
    now = clock(request).now()
    stmt = where_equal(
        sa.select(m.Session).where(m.Session.status == "open", m.Session.starts_at > now),
        institution_id=institution_id,
        department_code=department_code,
        practitioner_id=practitioner_id,
        resource_type=resource_type,
    )
    if starts_from:
        stmt = stmt.where(m.Session.starts_at >= starts_from)
    if starts_to:
        stmt = stmt.where(m.Session.starts_at < starts_to)
    policy = slot_policy(request)
    result: Page[Any] = await paginate(s, stmt.order_by(m.Session.starts_at), page, lambda x: x)
    free = await slots.free_counts(s, [x.id for x in result.items], now)
    return Page[SessionOut](
        items=[slots.session_out(x, free[x.id], policy) for x in result.items],
        total=result.total,
        limit=result.limit,
        offset=result.offset,
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
    stmt = sa.select(m.Booking)
    if caller.resident_id is not None:
        stmt = stmt.where(m.Booking.resident_id == caller.resident_id)
    else:
        stmt = stmt.join(m.Session, m.Session.id == m.Booking.session_id).where(
            sa.or_(m.Booking.booked_by == caller.subject, m.Session.institution_id == caller.institution_id)
        )
    stmt = where_equal(stmt, resident_id=resident_id)
    return await paginate(s, stmt.order_by(m.Booking.created_at.desc()), page, BookingOut.model_validate)


@router.post("/waitlist", status_code=201, response_model=WaitlistOut)
async def join_waitlist(body: WaitlistIn, request: Request, caller: Caller) -> JSONResponse:
    now = clock(request).now()
    return await write(
        request, body, lambda s: slots.join_waitlist(s, caller, body, now, slot_policy(request)), 201
    )


@router.get("/waitlist/{entry_id}", response_model=WaitlistOut)
async def waitlist_entry(entry_id: uuid.UUID, s: Session, caller: Caller) -> WaitlistOut:
    entry = await s.get(m.WaitlistEntry, entry_id)
    if entry is None or not (
        entry.requested_by == caller.subject
        or caller.resident_id == entry.resident_id
        or caller.institution_id == entry.institution_id
    ):
        raise NotFound("not-found", "候补不存在", "Waitlist entry not found")
    return WaitlistOut.model_validate(entry)


@router.get("/compliance", response_model=list[ComplianceDayOut])
async def compliance(
    s: Session, caller: Caller, institution_id: uuid.UUID, day_from: date, day_to: date
) -> list[ComplianceDayOut]:
    return await queries.compliance(s, caller, institution_id, day_from, day_to)

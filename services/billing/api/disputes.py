"""Disputes over a charge to a community's budget: opening, deciding, listing."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from .. import queries
from ..schemas import DecisionIn, DisputeIn, DisputeOut
from ..usecases import disputes
from .deps import Caller, Session, clock, write

router = APIRouter(prefix="/v1", tags=["billing"])


@router.post("/disputes", status_code=201, response_model=DisputeOut)
async def open_dispute(body: DisputeIn, request: Request, caller: Caller) -> JSONResponse:
    now = clock(request).now()
    return await write(request, body, lambda s: disputes.open_dispute(s, caller, body, now), 201)


@router.post("/disputes/{ident}/decision", response_model=DisputeOut)
async def decide(ident: uuid.UUID, body: DecisionIn, request: Request, caller: Caller) -> JSONResponse:
    now = clock(request).now()
    return await write(request, body, lambda s: disputes.decide_dispute(s, caller, ident, body, now))


@router.get("/disputes", response_model=list[DisputeOut])
async def get_disputes(
    s: Session,
    caller: Caller,
    status: Annotated[str | None, Query(pattern="^(open|upheld|adjusted|rejected)$")] = None,
) -> list[DisputeOut]:
    return await queries.list_disputes(s, caller, status)

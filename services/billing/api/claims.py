"""Claims from HIS systems, one or a batch, and reading them."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from .. import queries
from ..schemas import BatchOut, ClaimIn, ClaimOut, ClaimsBatchIn
from ..usecases import claims
from .deps import Caller, Paging, Session, clock, write

router = APIRouter(prefix="/v1", tags=["billing"])


@router.post("/claims", status_code=201, response_model=ClaimOut)
async def post_claim(body: ClaimIn, request: Request, caller: Caller) -> JSONResponse:
    now = clock(request).now()

    async def one(s: AsyncSession) -> ClaimOut:
        result = await claims.ingest_claims(s, caller, [body], now, detail=True)
        assert result.claims
        return result.claims[0]

    return await write(request, body, one, 201)


@router.post("/claims:batch", response_model=BatchOut)
async def post_claims(
    body: ClaimsBatchIn, request: Request, caller: Caller, detail: Annotated[bool, Query()] = False
) -> JSONResponse:
    now = clock(request).now()
    return await write(request, body, lambda s: claims.ingest_claims(s, caller, body.claims, now, detail))


@router.get("/claims", response_model=queries.ClaimsPage)
async def get_claims(
    s: Session,
    caller: Caller,
    paging: Paging,
    year: Annotated[int | None, Query(ge=2000, le=2100)] = None,
    month: Annotated[int | None, Query(ge=1, le=12)] = None,
    institution_id: uuid.UUID | None = None,
    community_id: uuid.UUID | None = None,
    out_of_community: bool | None = None,
) -> queries.ClaimsPage:
    """Claims with their total share; a HIS sees only its own institution's."""
    return await queries.list_claims(
        s,
        caller,
        paging,
        institution_id,
        year=year,
        month=month,
        community_id=community_id,
        out_of_community=out_of_community,
    )


@router.get("/claims/{ident}", response_model=ClaimOut)
async def get_claim(ident: uuid.UUID, s: Session, caller: Caller) -> ClaimOut:
    return await queries.claim(s, caller, ident)

"""Out-of-county care (转外就医): the insurance officer records it, one record or a batch; the agency and the
commission read the report per community and month."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from .. import queries
from ..schemas import (
    OutOfCountyBatchOut,
    OutOfCountyCareBatchIn,
    OutOfCountyCareIn,
    OutOfCountyCareOut,
    OutOfCountyReport,
)
from ..usecases import out_of_county
from .deps import Caller, County, Session, Year, clock, write

router = APIRouter(prefix="/v1", tags=["billing"])


@router.post("/out-of-county-care", status_code=201, response_model=OutOfCountyCareOut)
async def record_one(body: OutOfCountyCareIn, request: Request, caller: Caller) -> JSONResponse:
    now = clock(request).now()

    async def one(s: AsyncSession) -> OutOfCountyCareOut:
        result = await out_of_county.record_care(s, caller, [body], now, detail=True)
        assert result.records
        return result.records[0]

    return await write(request, body, one, 201)


@router.post("/out-of-county-care:batch", response_model=OutOfCountyBatchOut)
async def record_batch(
    body: OutOfCountyCareBatchIn,
    request: Request,
    caller: Caller,
    detail: Annotated[bool, Query()] = False,
) -> JSONResponse:
    now = clock(request).now()
    return await write(
        request, body, lambda s: out_of_county.record_care(s, caller, body.records, now, detail)
    )


@router.get("/insurance-years/{county}/{year}/out-of-county-care", response_model=OutOfCountyReport)
async def get_report(
    county: County,
    year: Year,
    s: Session,
    caller: Caller,
    month: Annotated[int | None, Query(ge=1, le=12)] = None,
    community_id: uuid.UUID | None = None,
) -> OutOfCountyReport:
    return await queries.out_of_county_report(s, caller, county, year, month, community_id)

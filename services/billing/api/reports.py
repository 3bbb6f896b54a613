"""Reports: the quarterly evaluation, the trial balance and a community's statement."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query

from .. import queries
from .deps import Caller, County, Session, Year

router = APIRouter(prefix="/v1", tags=["billing"])


@router.get("/insurance-years/{county}/{year}/evaluation")
async def get_evaluation(
    county: County, year: Year, s: Session, caller: Caller, quarter: Annotated[int, Query(ge=1, le=4)]
) -> list[dict[str, Any]]:
    return await queries.evaluation(s, caller, county, year, quarter)


@router.get("/insurance-years/{county}/{year}/trial-balance")
async def get_trial_balance(county: County, year: Year, s: Session, caller: Caller) -> dict[str, Any]:
    return await queries.trial_balance(s, caller, county, year)


@router.get("/communities/{community_id}/statement")
async def get_statement(
    community_id: uuid.UUID, s: Session, caller: Caller, year: Annotated[int, Query(ge=2000, le=2100)]
) -> dict[str, Any]:
    return await queries.statement(s, caller, community_id, year)

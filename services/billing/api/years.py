"""An insurance year: its parameters, the budgets derived from them, the monthly prepayments and
closes, and the year-end settlement."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from .. import queries
from ..schemas import BudgetOut, ParametersIn, ParameterVersionOut, RunOut, SettlementIn
from ..usecases import runs, years
from .deps import Caller, County, Month, Session, Year, clock, write

router = APIRouter(prefix="/v1", tags=["billing"])


@router.post(
    "/insurance-years/{county}/{year}/parameters", status_code=201, response_model=ParameterVersionOut
)
async def set_parameters(
    county: County, year: Year, body: ParametersIn, request: Request, caller: Caller
) -> JSONResponse:
    now = clock(request).now()
    return await write(request, body, lambda s: years.set_parameters(s, caller, county, year, body, now), 201)


@router.get("/insurance-years/{county}/{year}/parameters", response_model=list[ParameterVersionOut])
async def get_parameters(county: County, year: Year, s: Session, caller: Caller) -> list[ParameterVersionOut]:
    return await queries.parameter_versions(s, caller, county, year)


@router.post("/insurance-years/{county}/{year}/budgets", response_model=RunOut)
async def derive_budgets(county: County, year: Year, request: Request, caller: Caller) -> JSONResponse:
    now = clock(request).now()
    return await write(request, None, lambda s: years.derive_budgets(s, caller, county, year, now))


@router.get("/insurance-years/{county}/{year}/budgets", response_model=list[BudgetOut])
async def get_budgets(county: County, year: Year, s: Session, caller: Caller) -> list[BudgetOut]:
    return await queries.list_budgets(s, caller, county, year)


@router.post("/insurance-years/{county}/{year}/prepayments/{month}", response_model=RunOut)
async def prepay(county: County, year: Year, month: Month, request: Request, caller: Caller) -> JSONResponse:
    now = clock(request).now()
    return await write(request, None, lambda s: runs.run_prepayment(s, caller, county, year, month, now))


@router.post("/insurance-years/{county}/{year}/months/{month}/close", response_model=RunOut)
async def close_month(
    county: County, year: Year, month: Month, request: Request, caller: Caller
) -> JSONResponse:
    now = clock(request).now()
    return await write(request, None, lambda s: runs.close_month(s, caller, county, year, month, now))


@router.post("/insurance-years/{county}/{year}/settlement", response_model=RunOut)
async def settle(
    county: County, year: Year, body: SettlementIn, request: Request, caller: Caller
) -> JSONResponse:
    now = clock(request).now()
    return await write(
        request,
        body,
        lambda s: runs.settle_year(
            s, caller, county, year, body.scores, now, finalize_provisional=body.finalize_provisional
        ),
    )

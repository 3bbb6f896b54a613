"""HTTP routes of the billing service: thin wrappers over the use cases and queries."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from shared.auth import Caller
from shared.clock import Clock
from shared.deps import Paging, ReadSession
from shared.errors import forbidden, not_found
from shared.principal import Role
from shared.writes import idempotent_write

from . import queries
from .models import idempotency_keys
from .schemas import (
    BatchOut,
    BudgetOut,
    ClaimIn,
    ClaimOut,
    ClaimsBatchIn,
    DecisionIn,
    DisputeIn,
    DisputeOut,
    ParametersIn,
    ParameterVersionOut,
    RunOut,
    SettlementIn,
)
from .usecases import claims, disputes, runs, years
from .usecases.common import require_reader

router = APIRouter(prefix="/v1", tags=["billing"])
County = Annotated[str, Path(pattern=r"^\d{6}$", description="county division code (行政区划代码)")]
Year = Annotated[int, Path(ge=2000, le=2100)]
Month = Annotated[int, Path(ge=1, le=12)]


def now_of(request: Request) -> Any:
    clock: Clock = request.app.state.clock
    return clock.now()


async def write(
    request: Request, body: Any, fn: Callable[[AsyncSession], Awaitable[Any]], status: int = 200
) -> JSONResponse:
    return await idempotent_write(request, idempotency_keys, body, fn, status)


@router.post(
    "/insurance-years/{county}/{year}/parameters", status_code=201, response_model=ParameterVersionOut
)
async def set_parameters(
    county: County, year: Year, body: ParametersIn, request: Request, caller: Caller
) -> JSONResponse:
    now = now_of(request)
    return await write(request, body, lambda s: years.set_parameters(s, caller, county, year, body, now), 201)


@router.get("/insurance-years/{county}/{year}/parameters", response_model=list[ParameterVersionOut])
async def get_parameters(
    county: County, year: Year, s: ReadSession, caller: Caller
) -> list[ParameterVersionOut]:
    require_reader(caller)
    return await years.parameter_versions(s, county, year)


@router.post("/insurance-years/{county}/{year}/budgets", response_model=RunOut)
async def derive_budgets(county: County, year: Year, request: Request, caller: Caller) -> JSONResponse:
    now = now_of(request)
    return await write(request, None, lambda s: years.derive_budgets(s, caller, county, year, now))


@router.get("/insurance-years/{county}/{year}/budgets", response_model=list[BudgetOut])
async def get_budgets(county: County, year: Year, s: ReadSession, caller: Caller) -> list[BudgetOut]:
    require_reader(caller)
    return await years.list_budgets(s, county, year)


@router.post("/insurance-years/{county}/{year}/prepayments/{month}", response_model=RunOut)
async def prepay(county: County, year: Year, month: Month, request: Request, caller: Caller) -> JSONResponse:
    now = now_of(request)
    return await write(request, None, lambda s: runs.run_prepayment(s, caller, county, year, month, now))


@router.post("/insurance-years/{county}/{year}/months/{month}/close", response_model=RunOut)
async def close_month(
    county: County, year: Year, month: Month, request: Request, caller: Caller
) -> JSONResponse:
    now = now_of(request)
    return await write(request, None, lambda s: runs.close_month(s, caller, county, year, month, now))


@router.post("/insurance-years/{county}/{year}/settlement", response_model=RunOut)
async def settle(
    county: County, year: Year, body: SettlementIn, request: Request, caller: Caller
) -> JSONResponse:
    now = now_of(request)
    return await write(
        request,
        body,
        lambda s: runs.settle_year(
            s, caller, county, year, body.scores, now, finalize_provisional=body.finalize_provisional
        ),
    )


@router.get("/insurance-years/{county}/{year}/evaluation")
async def get_evaluation(
    county: County, year: Year, s: ReadSession, caller: Caller, quarter: Annotated[int, Query(ge=1, le=4)]
) -> list[dict[str, Any]]:
    require_reader(caller)
    return await queries.evaluation(s, county, year, quarter)


@router.get("/insurance-years/{county}/{year}/trial-balance")
async def get_trial_balance(county: County, year: Year, s: ReadSession, caller: Caller) -> dict[str, Any]:
    require_reader(caller)
    return await queries.trial_balance(s, county, year)


@router.get("/communities/{community_id}/statement")
async def get_statement(
    community_id: uuid.UUID, s: ReadSession, caller: Caller, year: Annotated[int, Query(ge=2000, le=2100)]
) -> dict[str, Any]:
    require_reader(caller)
    return await queries.statement(s, community_id, year)


@router.post("/claims", status_code=201, response_model=ClaimOut)
async def post_claim(body: ClaimIn, request: Request, caller: Caller) -> JSONResponse:
    now = now_of(request)

    async def one(s: AsyncSession) -> ClaimOut:
        result = await claims.ingest_claims(s, caller, [body], now, detail=True)
        assert result.claims
        return result.claims[0]

    return await write(request, body, one, 201)


@router.post("/claims:batch", response_model=BatchOut)
async def post_claims(
    body: ClaimsBatchIn, request: Request, caller: Caller, detail: Annotated[bool, Query()] = False
) -> JSONResponse:
    now = now_of(request)
    return await write(request, body, lambda s: claims.ingest_claims(s, caller, body.claims, now, detail))


@router.get("/claims", response_model=queries.ClaimsPage)
async def get_claims(
    s: ReadSession,
    caller: Caller,
    paging: Paging,
    year: Annotated[int | None, Query(ge=2000, le=2100)] = None,
    month: Annotated[int | None, Query(ge=1, le=12)] = None,
    institution_id: uuid.UUID | None = None,
    community_id: uuid.UUID | None = None,
    out_of_community: bool | None = None,
) -> queries.ClaimsPage:
    """Claims with their total share; a HIS sees only its own institution's."""
    if caller.role not in (Role.INSURANCE_OFFICER, Role.COMMISSION_ADMIN):
        if caller.role != Role.HIS_SYSTEM or caller.institution_id is None:
            raise forbidden(
                "claims are for the agency, the commission and the institution's HIS", "无权查看结算单"
            )
        institution_id = caller.institution_id
    return await queries.list_claims(
        s,
        paging,
        year=year,
        month=month,
        institution_id=institution_id,
        community_id=community_id,
        out_of_community=out_of_community,
    )


@router.get("/claims/{ident}", response_model=ClaimOut)
async def get_claim(ident: uuid.UUID, s: ReadSession, caller: Caller) -> ClaimOut:
    claim = await queries.get_claim(s, ident)
    if (
        caller.role not in (Role.INSURANCE_OFFICER, Role.COMMISSION_ADMIN)
        and caller.institution_id != claim.institution_id
    ):
        raise not_found("结算单", "claim", ident)
    return queries.claim_out(claim)


@router.post("/disputes", status_code=201, response_model=DisputeOut)
async def open_dispute(body: DisputeIn, request: Request, caller: Caller) -> JSONResponse:
    now = now_of(request)
    return await write(request, body, lambda s: disputes.open_dispute(s, caller, body, now), 201)


@router.post("/disputes/{ident}/decision", response_model=DisputeOut)
async def decide(ident: uuid.UUID, body: DecisionIn, request: Request, caller: Caller) -> JSONResponse:
    now = now_of(request)
    return await write(request, body, lambda s: disputes.decide_dispute(s, caller, ident, body, now))


@router.get("/disputes", response_model=list[DisputeOut])
async def get_disputes(
    s: ReadSession,
    caller: Caller,
    status: Annotated[str | None, Query(pattern="^(open|upheld|adjusted|rejected)$")] = None,
) -> list[DisputeOut]:
    if caller.role in (Role.INSURANCE_OFFICER, Role.COMMISSION_ADMIN):
        return await queries.list_disputes(s, None, status)
    if caller.role == Role.HIS_SYSTEM and caller.institution_id:
        return await queries.list_disputes(s, caller.institution_id, status)
    raise forbidden("disputes are for the agency and the institutions involved", "无权查看争议")

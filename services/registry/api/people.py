"""Residents, their identity (audited), contracts, and coverage statistics."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from shared.errors import not_found
from shared.pagination import Page
from shared.principal import Principal, Role

from .. import models as m
from .. import queries
from .. import repository as repo
from ..access import (
    ensure_own_community,
    ensure_visible,
    own_resident,
    scope_community,
)
from ..domain.contracts import ContractStatus, KeyPopulation
from ..domain.national_id import parse_national_id
from ..domain.settings import end_of
from ..schemas import (
    ContractIn,
    ContractOut,
    CoverageOut,
    RenewalIn,
    ResidentIdentityOut,
    ResidentIn,
    ResidentOut,
    ResidentPatch,
    TerminationIn,
)
from ..usecases import county_rules, people
from .deps import Clk, Paging, Session, Vault, database, people_access, request_id, write

# coverage counts years back from this date: a year-22 date used to be a 500 (found by the fuzzer)
AsOf = Annotated[date | None, Query(ge=date(1900, 1, 1), le=date(2199, 12, 31), description="as of this day")]

router = APIRouter(prefix="/v1", tags=["residents"])
Caller = Annotated[Principal, Depends(people_access)]
RESIDENT, CONTRACT = ("居民", "resident"), ("签约", "contract")


@router.post("/residents", status_code=201, response_model=ResidentOut)
async def create_resident(body: ResidentIn, request: Request, vault: Vault, caller: Caller) -> JSONResponse:
    ensure_own_community(caller, body.community_id)
    return await write(request, body, lambda s: people.create_resident(s, vault, body), 201)


@router.get("/residents", response_model=Page[ResidentOut])
async def list_residents(
    request: Request,
    vault: Vault,
    page: Paging,
    caller: Caller,
    q: Annotated[str | None, Query(max_length=100, description="part of the name")] = None,
    national_id: Annotated[
        str | None, Query(max_length=30, description="exact ID; the lookup is audited")
    ] = None,
    phone: Annotated[
        str | None, Query(max_length=20, description="exact phone; the lookup is audited")
    ] = None,
    community_id: uuid.UUID | None = None,
    key_population: KeyPopulation | None = None,
    active: bool | None = None,
) -> Page[ResidentOut]:
    """Staff list their own community; the commission any; a resident finds only themselves."""
    id_hashes = phone_hashes = None
    if national_id is not None:
        id_hashes = vault.lookup_hashes(parse_national_id(national_id).number)  # Invalid: a 422
    if phone is not None:
        phone_hashes = vault.lookup_hashes(phone)
    filters: dict[str, object] = {"active": active}
    if caller.role == Role.RESIDENT:
        filters["id"] = own_resident(caller)
    else:
        filters["community_id"] = scope_community(caller, community_id)
    async with database(request).uow() as uow:
        result = await queries.list_residents(
            uow.session, page, q, key_population, id_hashes, phone_hashes, **filters
        )
        if id_hashes or phone_hashes:
            found = result.items[0].id if result.items else None
            await people.audit_pii(
                uow.session,
                caller.subject,
                request_id(),
                "lookup_by_identifier",
                found,
                "found" if found else "not_found",
            )
            await uow.commit()
    return result


@router.get("/residents/{ident}", response_model=ResidentOut)
async def get_resident(ident: uuid.UUID, s: Session, caller: Caller) -> ResidentOut:
    r = await repo.get(s, m.Resident, ident)
    ensure_visible(caller, r.community_id, r.id, RESIDENT, ident)
    return ResidentOut.model_validate(r)


@router.get("/residents/{ident}/identity", response_model=ResidentIdentityOut)
async def reveal_identity(
    ident: uuid.UUID, request: Request, vault: Vault, caller: Caller
) -> ResidentIdentityOut:
    """The unmasked national ID and phone. Every call is written to the PII access log, refused ones too."""
    async with database(request).uow() as uow:
        out = await people.reveal_identity(uow.session, vault, ident, caller, request_id())
        await uow.commit()  # the audit row stays even when the answer is a 404
    if out is None:
        raise not_found(*RESIDENT, ident)
    return out


@router.patch("/residents/{ident}", response_model=ResidentOut)
async def update_resident(
    ident: uuid.UUID, body: ResidentPatch, request: Request, vault: Vault, caller: Caller
) -> JSONResponse:
    return await write(request, body, lambda s: people.update_resident(s, vault, ident, body, caller))


@router.delete("/residents/{ident}", response_model=ResidentOut)
async def deactivate_resident(ident: uuid.UUID, request: Request, caller: Caller) -> JSONResponse:
    return await write(request, None, lambda s: people.deactivate_resident(s, ident, caller))


@router.post("/contracts", status_code=201, response_model=ContractOut)
async def sign_contract(body: ContractIn, request: Request, clock: Clk, caller: Caller) -> JSONResponse:
    return await write(request, body, lambda s: people.create_contract(s, body, clock.today(), caller), 201)


@router.get("/contracts", response_model=Page[ContractOut])
async def list_contracts(
    s: Session,
    page: Paging,
    caller: Caller,
    community_id: uuid.UUID | None = None,
    team_id: uuid.UUID | None = None,
    resident_id: uuid.UUID | None = None,
    status: ContractStatus | None = None,
) -> Page[ContractOut]:
    if caller.role == Role.RESIDENT:
        resident_id, community_id = own_resident(caller), None
    else:
        community_id = scope_community(caller, community_id)
    return await queries.list_contracts(
        s, page, community_id=community_id, team_id=team_id, resident_id=resident_id, status=status
    )


@router.get("/contracts/{ident}", response_model=ContractOut)
async def get_contract(ident: uuid.UUID, s: Session, caller: Caller) -> ContractOut:
    c = await repo.get(s, m.Contract, ident)
    ensure_visible(caller, c.community_id, c.resident_id, CONTRACT, ident)
    return ContractOut.model_validate(c)


@router.post("/contracts/{ident}/renew", status_code=201, response_model=ContractOut)
async def renew_contract(
    ident: uuid.UUID, body: RenewalIn, request: Request, clock: Clk, caller: Caller
) -> JSONResponse:
    return await write(
        request, body, lambda s: people.renew_contract(s, ident, body, clock.today(), caller), 201
    )


@router.post("/contracts/{ident}/terminate", response_model=ContractOut)
async def terminate_contract(
    ident: uuid.UUID, body: TerminationIn, request: Request, caller: Caller
) -> JSONResponse:
    return await write(request, body, lambda s: people.terminate_contract(s, ident, body, caller))


@router.get("/coverage/communities/{ident}", response_model=CoverageOut)
async def community_coverage(
    ident: uuid.UUID, s: Session, clock: Clk, caller: Caller, as_of: AsOf = None
) -> CoverageOut:
    """Against the targets of the community's county in force on `as_of`."""
    community = await repo.get(s, m.Community, ident)
    day = as_of or clock.today()
    rules = await county_rules.rules_for(s, community.county_code, end_of(day))
    return await queries.coverage(s, "community", str(ident), [ident], day, rules)


@router.get("/coverage/counties/{county_code}", response_model=CoverageOut)
async def county_coverage(
    county_code: str, s: Session, clock: Clk, caller: Caller, as_of: AsOf = None
) -> CoverageOut:
    """Against the county's targets in force on `as_of`."""
    await repo.get(s, m.Region, county_code)
    ids = await queries.communities_of_county(s, county_code)
    day = as_of or clock.today()
    rules = await county_rules.rules_for(s, county_code, end_of(day))
    return await queries.coverage(s, "county", county_code, ids, day, rules)

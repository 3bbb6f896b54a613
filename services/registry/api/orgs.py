"""Regions, communities, institutions, departments."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from shared.pagination import Page

from .. import models as m
from .. import queries
from .. import repository as repo
from ..domain.institutions import InstitutionType, Tier
from ..schemas import (
    CommunityIn,
    CommunityOut,
    CommunityPatch,
    DepartmentIn,
    InstitutionIn,
    InstitutionOut,
    InstitutionPatch,
    RegionIn,
    RegionOut,
)
from ..usecases import orgs
from .deps import Paging, Session, reference_data_access, write

router = APIRouter(prefix="/v1", tags=["organisations"], dependencies=[Depends(reference_data_access)])


@router.post("/regions", status_code=201, response_model=RegionOut)
async def create_region(body: RegionIn, request: Request) -> JSONResponse:
    return await write(request, body, lambda s: orgs.create_region(s, body), 201)


@router.get("/regions", response_model=Page[RegionOut])
async def list_regions(s: Session, page: Paging, parent_code: str | None = None) -> Page[RegionOut]:
    return await queries.list_regions(s, page, parent_code)


@router.get("/regions/{code}", response_model=RegionOut)
async def get_region(code: str, s: Session) -> RegionOut:
    return RegionOut.model_validate(await repo.get(s, m.Region, code))


@router.post("/communities", status_code=201, response_model=CommunityOut)
async def create_community(body: CommunityIn, request: Request) -> JSONResponse:
    return await write(request, body, lambda s: orgs.create_community(s, body), 201)


@router.get("/communities", response_model=Page[CommunityOut])
async def list_communities(
    s: Session, page: Paging, county_code: str | None = None, active: bool | None = None
) -> Page[CommunityOut]:
    return await queries.list_communities(s, page, county_code, active)


@router.get("/communities/{ident}", response_model=CommunityOut)
async def get_community(ident: uuid.UUID, s: Session) -> CommunityOut:
    return CommunityOut.model_validate(await repo.get(s, m.Community, ident))


@router.patch("/communities/{ident}", response_model=CommunityOut)
async def update_community(ident: uuid.UUID, body: CommunityPatch, request: Request) -> JSONResponse:
    return await write(request, body, lambda s: orgs.update_community(s, ident, body))


@router.delete("/communities/{ident}", response_model=CommunityOut)
async def deactivate_community(ident: uuid.UUID, request: Request) -> JSONResponse:
    return await write(request, None, lambda s: orgs.deactivate_community(s, ident))


@router.post("/institutions", status_code=201, response_model=InstitutionOut)
async def create_institution(body: InstitutionIn, request: Request) -> JSONResponse:
    return await write(request, body, lambda s: orgs.create_institution(s, body), 201)


@router.get("/institutions", response_model=Page[InstitutionOut])
async def list_institutions(
    s: Session,
    page: Paging,
    q: Annotated[str | None, Query(max_length=100)] = None,
    community_id: uuid.UUID | None = None,
    tier: Tier | None = None,
    kind: InstitutionType | None = None,
    active: bool | None = None,
) -> Page[InstitutionOut]:
    return await queries.list_institutions(
        s, page, q, community_id=community_id, tier=tier, kind=kind, active=active
    )


@router.get("/institutions/{ident}", response_model=InstitutionOut)
async def get_institution(ident: uuid.UUID, s: Session) -> InstitutionOut:
    return await orgs.institution_out(s, await repo.get(s, m.Institution, ident))


@router.patch("/institutions/{ident}", response_model=InstitutionOut)
async def update_institution(ident: uuid.UUID, body: InstitutionPatch, request: Request) -> JSONResponse:
    return await write(request, body, lambda s: orgs.update_institution(s, ident, body))


@router.delete("/institutions/{ident}", response_model=InstitutionOut)
async def deactivate_institution(ident: uuid.UUID, request: Request) -> JSONResponse:
    return await write(request, None, lambda s: orgs.deactivate_institution(s, ident))


@router.post("/institutions/{ident}/departments", status_code=201, response_model=InstitutionOut)
async def add_department(ident: uuid.UUID, body: DepartmentIn, request: Request) -> JSONResponse:
    return await write(request, body, lambda s: orgs.add_department(s, ident, body), 201)

"""Practitioners, postings, family-doctor teams."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from shared.pagination import Page

from .. import models as m
from .. import queries
from .. import repository as repo
from ..domain.practitioners import Profession, Title
from ..schemas import (
    PostingIn,
    PractitionerIn,
    PractitionerOut,
    PractitionerPatch,
    TeamIn,
    TeamOut,
    TeamPatch,
)
from ..usecases import workforce
from .deps import Clk, Paging, Session, reference_data_access, write

router = APIRouter(prefix="/v1", tags=["workforce"], dependencies=[Depends(reference_data_access)])


@router.post("/practitioners", status_code=201, response_model=PractitionerOut)
async def create_practitioner(body: PractitionerIn, request: Request) -> JSONResponse:
    return await write(request, body, lambda s: workforce.create_practitioner(s, body), 201)


@router.get("/practitioners", response_model=Page[PractitionerOut])
async def list_practitioners(
    s: Session,
    page: Paging,
    q: Annotated[str | None, Query(max_length=100)] = None,
    institution_id: uuid.UUID | None = None,
    profession: Profession | None = None,
    title: Title | None = None,
    general_practitioner: bool | None = None,
    active: bool | None = None,
) -> Page[PractitionerOut]:
    return await queries.list_practitioners(
        s,
        page,
        q,
        institution_id=institution_id,
        profession=profession,
        title=title,
        general_practitioner=general_practitioner,
        active=active,
    )


@router.get("/practitioners/{ident}", response_model=PractitionerOut)
async def get_practitioner(ident: uuid.UUID, s: Session) -> PractitionerOut:
    return await workforce.practitioner_out(s, await repo.get(s, m.Practitioner, ident))


@router.patch("/practitioners/{ident}", response_model=PractitionerOut)
async def update_practitioner(ident: uuid.UUID, body: PractitionerPatch, request: Request) -> JSONResponse:
    return await write(request, body, lambda s: workforce.update_practitioner(s, ident, body))


@router.delete("/practitioners/{ident}", response_model=PractitionerOut)
async def deactivate_practitioner(ident: uuid.UUID, request: Request) -> JSONResponse:
    return await write(request, None, lambda s: workforce.deactivate_practitioner(s, ident))


@router.post("/practitioners/{ident}/postings", status_code=201, response_model=PractitionerOut)
async def add_posting(ident: uuid.UUID, body: PostingIn, request: Request, clock: Clk) -> JSONResponse:
    now = clock.now()
    return await write(request, body, lambda s: workforce.add_posting(s, ident, body, now), 201)


@router.post("/teams", status_code=201, response_model=TeamOut)
async def create_team(body: TeamIn, request: Request) -> JSONResponse:
    return await write(request, body, lambda s: workforce.create_team(s, body), 201)


@router.get("/teams", response_model=Page[TeamOut])
async def list_teams(
    s: Session,
    page: Paging,
    community_id: uuid.UUID | None = None,
    institution_id: uuid.UUID | None = None,
    active: bool | None = None,
) -> Page[TeamOut]:
    return await queries.list_teams(
        s, page, community_id=community_id, institution_id=institution_id, active=active
    )


@router.get("/teams/{ident}", response_model=TeamOut)
async def get_team(ident: uuid.UUID, s: Session) -> TeamOut:
    return await workforce.team_out(s, await repo.get(s, m.Team, ident))


@router.patch("/teams/{ident}", response_model=TeamOut)
async def update_team(ident: uuid.UUID, body: TeamPatch, request: Request) -> JSONResponse:
    return await write(request, body, lambda s: workforce.update_team(s, ident, body))


@router.delete("/teams/{ident}", response_model=TeamOut)
async def deactivate_team(ident: uuid.UUID, request: Request) -> JSONResponse:
    return await write(request, None, lambda s: workforce.deactivate_team(s, ident))

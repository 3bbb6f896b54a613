"""Disease catalogues (grassroots per tier, first-in-county)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from shared.pagination import Page

from .. import models as m
from .. import queries
from .. import repository as repo
from ..domain.catalogues import Catalogue
from ..schemas import CatalogueEntryIn, CatalogueEntryOut, CatalogueSummaryOut
from ..usecases import catalogues, county_rules
from .deps import Paging, Session, reference_data_access, write

router = APIRouter(prefix="/v1", tags=["catalogues"], dependencies=[Depends(reference_data_access)])


@router.post("/catalogue-entries", status_code=201, response_model=CatalogueEntryOut)
async def add_entry(body: CatalogueEntryIn, request: Request) -> JSONResponse:
    return await write(request, body, lambda s: catalogues.add_entry(s, body), 201)


@router.get("/catalogue-entries", response_model=Page[CatalogueEntryOut])
async def list_entries(
    s: Session,
    page: Paging,
    county_code: str | None = None,
    catalogue: Catalogue | None = None,
    tier: str | None = None,
    icd10: str | None = None,
    active: bool | None = None,
    q: Annotated[str | None, Query(max_length=100)] = None,
) -> Page[CatalogueEntryOut]:
    return await queries.list_catalogue(
        s,
        page,
        q,
        county_code=county_code,
        catalogue=catalogue,
        tier=tier,
        icd10=icd10.upper() if icd10 else None,
        active=active,
    )


@router.get("/catalogue-entries/{ident}", response_model=CatalogueEntryOut)
async def get_entry(ident: uuid.UUID, s: Session) -> CatalogueEntryOut:
    return CatalogueEntryOut.model_validate(await repo.get(s, m.CatalogueEntry, ident))


@router.delete("/catalogue-entries/{ident}", response_model=CatalogueEntryOut)
async def remove_entry(ident: uuid.UUID, request: Request) -> JSONResponse:
    return await write(request, None, lambda s: catalogues.remove_entry(s, ident))


@router.get("/catalogues/{county_code}/summary", response_model=CatalogueSummaryOut)
async def summary(county_code: str, s: Session) -> CatalogueSummaryOut:
    """Against the county's first-in-county minimum in force."""
    await repo.get(s, m.Region, county_code)
    rules = (await county_rules.rules_for(s, county_code)).settings
    return await queries.catalogue_summary(s, county_code, rules.first_in_county_minimum)

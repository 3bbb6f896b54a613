"""Disease catalogue entries."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import collect
from shared.errors import Conflict

from .. import events
from .. import models as m
from .. import repository as repo
from ..domain.catalogues import Catalogue, check_tier, normalise_icd10
from ..schemas import CatalogueEntryIn, CatalogueEntryOut


async def add_entry(s: AsyncSession, body: CatalogueEntryIn) -> CatalogueEntryOut:
    await repo.get_referenced(s, m.Region, body.county_code, "county_code")
    code = normalise_icd10(body.icd10)
    check_tier(Catalogue(body.catalogue), body.tier)
    existing = await s.scalar(
        sa.select(m.CatalogueEntry).where(
            m.CatalogueEntry.county_code == body.county_code,
            m.CatalogueEntry.catalogue == body.catalogue,
            m.CatalogueEntry.tier == body.tier,
            m.CatalogueEntry.icd10 == code,
        )
    )
    if existing is not None and existing.active:
        raise Conflict("duplicate-entry", "目录中已有该病种", "The disease is already in this catalogue")
    if existing is not None:  # re-adding a removed entry revives it
        existing.active = True
        existing.name = body.name
        entry = existing
    else:
        entry = m.CatalogueEntry(**{**body.model_dump(), "icd10": code})
        s.add(entry)
    await s.flush()
    collect(s, events.catalogue_entry("added", entry))
    return CatalogueEntryOut.model_validate(entry)


async def remove_entry(s: AsyncSession, ident: uuid.UUID) -> CatalogueEntryOut:
    entry = await repo.get(s, m.CatalogueEntry, ident, for_update=True)
    if entry.active:
        entry.active = False
        await s.flush()
    collect(s, events.catalogue_entry("removed", entry))
    return CatalogueEntryOut.model_validate(entry)

"""The slot rules a session runs on: those of its county (the hospital's community's county, else the
hospital's own region) as the health commission set them (`county_rules`: windows, hold time, release
cut-off, shares), or the deployment's (app state) where the county has set none."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from ... import models as m
from ...domain.rules import Policy
from ...domain.settings import ReferralRules
from ...domain.slots import SlotPolicy
from ..county_rules import rules_for

INST, COMM = m.RmInstitution.__table__, m.RmCommunity.__table__
COUNTY_OF_INSTITUTION = sa.func.coalesce(COMM.c.county_code, INST.c.region_code)


def county_of(institution_id: sa.ColumnElement[uuid.UUID]) -> sa.ScalarSelect[str | None]:
    """A column: the county of the institution (NULL when the read model does not know it)."""
    return (
        sa.select(COUNTY_OF_INSTITUTION)
        .select_from(INST.outerjoin(COMM, COMM.c.id == INST.c.community_id))
        .where(INST.c.id == institution_id)
        .scalar_subquery()
    )


async def counties_of(s: AsyncSession, institution_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, str]:
    rows = await s.execute(
        sa.select(INST.c.id, COUNTY_OF_INSTITUTION)
        .select_from(INST.outerjoin(COMM, COMM.c.id == INST.c.community_id))
        .where(INST.c.id.in_(list(institution_ids)))
    )
    return {i: county for i, county in rows}


async def county_slot_policy(
    s: AsyncSession, county_code: str | None, defaults: SlotPolicy, now: datetime
) -> SlotPolicy:
    """The county's slot rules in force now; `defaults` (the deployment's) when it set none."""
    if county_code is None:
        return defaults
    # only the slot half of the deployed rules is read here; the deadlines are the sweeps' business
    rules = await rules_for(s, county_code, ReferralRules.of(Policy(), defaults), now)
    return rules.slot_policy()


async def hospital_slot_policies(
    s: AsyncSession, hospital_ids: Collection[uuid.UUID], defaults: SlotPolicy, now: datetime
) -> dict[uuid.UUID, SlotPolicy]:
    """Each hospital's county's slot rules, read once per county (the release sweep, the $find list)."""
    counties = await counties_of(s, hospital_ids)
    of_county = {c: await county_slot_policy(s, c, defaults, now) for c in set(counties.values())}
    return {h: of_county[counties[h]] if h in counties else defaults for h in hospital_ids}


async def institution_slot_policy(
    s: AsyncSession, institution_id: uuid.UUID, defaults: SlotPolicy, now: datetime
) -> SlotPolicy:
    county = (await counties_of(s, [institution_id])).get(institution_id)
    return await county_slot_policy(s, county, defaults, now)

"""Loading the service's own aggregates for the use cases and queries: a referral, as the caller may
see it. (Read models of registry data are `lookups.py`; lists and reports are `queries.py`.)"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from shared.principal import Principal

from . import models as m
from .access import can_read, referral_not_found


async def load_referral(
    s: AsyncSession, principal: Principal, ident: uuid.UUID, *, for_update: bool = False
) -> m.Referral:
    stmt = sa.select(m.Referral).where(m.Referral.id == ident)
    if for_update:
        stmt = stmt.with_for_update()
    r = (await s.execute(stmt)).scalar_one_or_none()
    if r is None or not can_read(principal, r):  # another community's referral does not exist for you
        raise referral_not_found(ident)
    return r

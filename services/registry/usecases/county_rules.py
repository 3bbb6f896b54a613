"""A county's registry rules: the version in force (for the coverage report, the catalogue summary and
posting checks), and the commission's changes with their history (`shared.county_policy`). A county that
has recorded nothing runs on the seeds' numbers."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from shared.county_policy import (
    PolicyChangeIn,
    PolicyOut,
    Versioned,
    change_policy,
    policy_at,
    policy_history,
    policy_out,
)
from shared.errors import NotFound
from shared.principal import Principal

from .. import models as m
from ..access import check_rules_writer
from ..domain.settings import RegistryRules

__all__ = ["change_settings", "county_settings", "rules_for", "settings_history"]


async def rules_for(
    s: AsyncSession, county_code: str, at: datetime | None = None
) -> Versioned[RegistryRules]:
    """The rules in force in the county at `at` (default: now)."""
    return await policy_at(s, m.county_policies, RegistryRules, county_code, at)


async def _known_county(s: AsyncSession, county_code: str) -> None:
    region = await s.get(m.Region, county_code)
    if region is None or region.level != "county":
        raise NotFound("unknown-county", "未知的县", f"no county {county_code} in the registry")


async def county_settings(s: AsyncSession, county_code: str) -> PolicyOut:
    await _known_county(s, county_code)
    return policy_out(await rules_for(s, county_code))


async def settings_history(s: AsyncSession, county_code: str) -> list[PolicyOut]:
    await _known_county(s, county_code)
    return [policy_out(v) for v in await policy_history(s, m.county_policies, RegistryRules, county_code)]


async def change_settings(
    s: AsyncSession, who: Principal, county_code: str, body: PolicyChangeIn, now: datetime
) -> PolicyOut:
    """The health commission changes its county's rules: from then on the coverage report, the catalogue
    summary and new postings use them (postings already recorded stay as they were accepted)."""
    check_rules_writer(who)
    await _known_county(s, county_code)
    v = await change_policy(
        s, m.county_policies, RegistryRules, county_code, body.changes, who.subject, body.reason, now
    )
    return policy_out(v)

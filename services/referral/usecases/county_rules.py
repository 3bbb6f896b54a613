"""A county's referral rules: the version in force (for the use cases and the sweeps), and the
commission's changes with their history (`shared.county_policy`). A county that has recorded nothing
runs on the deployment's rules (app state), which default to the seeds' numbers."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from shared.county_policy import (
    PolicyChangeIn,
    PolicyOut,
    change_policy,
    policy_at,
    policy_history,
    policy_out,
)
from shared.errors import Forbidden, NotFound
from shared.principal import Principal, Role

from .. import models as m
from ..domain.settings import CountyRules, DeployedRules, ReferralRules

__all__ = ["CountyRules", "change_settings", "county_settings", "rules_for", "settings_history"]


async def rules_for(
    s: AsyncSession, county_code: str, defaults: CountyRules, at: datetime | None = None
) -> CountyRules:
    """The rules in force in the county (at `at`, default now)."""
    v = await policy_at(s, m.county_policies, ReferralRules, county_code, at)
    return v.settings if v.version else defaults


def _as_settings(defaults: CountyRules) -> ReferralRules:
    return defaults.as_settings() if isinstance(defaults, DeployedRules) else ReferralRules()


async def _known_county(s: AsyncSession, county_code: str) -> None:
    if not await s.scalar(sa.select(sa.exists().where(m.RmCommunity.county_code == county_code))):
        raise NotFound("unknown-county", "未知的县", f"no community is known in county {county_code}")


async def county_settings(s: AsyncSession, county_code: str, defaults: CountyRules) -> PolicyOut:
    await _known_county(s, county_code)
    v = await policy_at(s, m.county_policies, ReferralRules, county_code, defaults=_as_settings(defaults))
    return policy_out(v)


async def settings_history(s: AsyncSession, county_code: str) -> list[PolicyOut]:
    await _known_county(s, county_code)
    return [policy_out(v) for v in await policy_history(s, m.county_policies, ReferralRules, county_code)]


async def change_settings(
    s: AsyncSession,
    who: Principal,
    county_code: str,
    body: PolicyChangeIn,
    now: datetime,
    defaults: CountyRules,
) -> PolicyOut:
    """The health commission changes its county's rules; from then on new referrals, bookings and the
    sweeps use them (deadlines already set on a referral stay as they were promised)."""
    if who.role != Role.COMMISSION_ADMIN:
        raise Forbidden(
            "commission-only",
            "仅卫健委管理员可修改转诊规则",
            "only the health commission changes these rules",
        )
    await _known_county(s, county_code)
    v = await change_policy(
        s,
        m.county_policies,
        ReferralRules,
        county_code,
        body.changes,
        who.subject,
        body.reason,
        now,
        defaults=_as_settings(defaults),
    )
    return policy_out(v)

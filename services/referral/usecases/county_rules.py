"""A county's referral rules: the version in force (for the use cases and the sweeps), and the
commission's changes with their history (`shared.county_policy`). A county that has recorded nothing
runs on the deployment's rules (app state), which default to the seeds' numbers.

Each process remembers a county's newest rules for `RULES_FOR` (2 s), like the gateway's revocation
list, so a booking or hold attempt in the 8 a.m. rush does not pay a query for them. Staleness: a change
made through this process counts at once (its memory is cleared when the change is made and again when
it commits); one made through another replica counts here within those 2 s, so for up to 2 s a booking
or hold may still run on the previous hold time or windows, and a referral submitted or approved on the
previous response deadline. The sweeps join the rules in SQL and never wait."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
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
from ..domain.settings import CountyRules, DeployedRules, ReferralRules
from .slot_memory import TtlMemory

__all__ = [
    "CountyRules",
    "change_settings",
    "county_settings",
    "forget_rules",
    "rules_for",
    "settings_history",
]

RULES_FOR = 2.0  # seconds a process trusts the newest rules it read (see the module's docstring)
newest: TtlMemory[str, Versioned[ReferralRules]] = TtlMemory(RULES_FOR)


def forget_rules() -> None:
    newest.clear()


async def rules_for(
    s: AsyncSession, county_code: str, defaults: CountyRules, at: datetime | None = None
) -> CountyRules:
    """The rules in force in the county (at `at`, default now): the newest version, remembered for
    `RULES_FOR`; a moment before the newest change (an audit, a clock set back) is read from the table."""
    v = newest.get(county_code)
    if v is None:
        v = await policy_at(s, m.county_policies, ReferralRules, county_code)
        newest.put(county_code, v)
    if at is not None and v.changed_at is not None and v.changed_at > at:
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
    sweeps use them (deadlines already set on a referral stay as they were promised). This process
    forgets the rules it remembered now and once the change commits (other processes within
    `RULES_FOR`)."""
    check_rules_writer(who)
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
    forget_rules()
    sa.event.listen(s.sync_session, "after_commit", lambda _: forget_rules(), once=True)
    return policy_out(v)

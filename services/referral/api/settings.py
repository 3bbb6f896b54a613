"""The county's referral rules: read by staff, changed by the health commission, with their history."""

from __future__ import annotations

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse

from shared.county_policy import PolicyChangeIn, PolicyOut

from ..domain.settings import ReferralRules
from ..usecases import county_rules
from .deps import Caller, Session, clock, policy, slot_policy, write

router = APIRouter(prefix="/v1/counties", tags=["settings"])
County = Path(pattern=r"^[0-9]{6}$", description="the county's 6-digit administrative code")


def deployed(request: Request) -> county_rules.CountyRules:
    return ReferralRules.of(policy(request), slot_policy(request))


@router.get("/{county_code}/referral-settings", response_model=PolicyOut)
async def get_settings(request: Request, s: Session, _: Caller, county_code: str = County) -> PolicyOut:
    return await county_rules.county_settings(s, county_code, deployed(request))


@router.put("/{county_code}/referral-settings", response_model=PolicyOut)
async def change_settings(
    body: PolicyChangeIn, request: Request, caller: Caller, county_code: str = County
) -> JSONResponse:
    now = clock(request).now()
    return await write(
        request,
        body,
        lambda s: county_rules.change_settings(s, caller, county_code, body, now, deployed(request)),
    )


@router.get("/{county_code}/referral-settings/history", response_model=list[PolicyOut])
async def history(s: Session, _: Caller, county_code: str = County) -> list[PolicyOut]:
    return await county_rules.settings_history(s, county_code)

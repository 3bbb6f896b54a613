"""The county's registry rules (coverage targets, first-in-county minimum, posting rules): read by anyone
signed in, changed by the health commission, with their history. Shaped as the referral service's."""

from __future__ import annotations

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse

from shared.auth import Caller
from shared.county_policy import PolicyChangeIn, PolicyOut

from ..usecases import county_rules
from .deps import Clk, Session, write

router = APIRouter(prefix="/v1/counties", tags=["settings"])
County = Path(pattern=r"^[0-9]{6}$", description="the county's 6-digit administrative code")


@router.get("/{county_code}/registry-settings", response_model=PolicyOut)
async def get_settings(s: Session, _: Caller, county_code: str = County) -> PolicyOut:
    return await county_rules.county_settings(s, county_code)


@router.put("/{county_code}/registry-settings", response_model=PolicyOut)
async def change_settings(
    body: PolicyChangeIn, request: Request, caller: Caller, clock: Clk, county_code: str = County
) -> JSONResponse:
    now = clock.now()
    return await write(
        request, body, lambda s: county_rules.change_settings(s, caller, county_code, body, now)
    )


@router.get("/{county_code}/registry-settings/history", response_model=list[PolicyOut])
async def history(s: Session, _: Caller, county_code: str = County) -> list[PolicyOut]:
    return await county_rules.settings_history(s, county_code)

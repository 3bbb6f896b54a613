"""Builds a small county through the registry API, as a HIS or an admin would."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from httpx import AsyncClient

from services.registry.domain.national_id import make_national_id

COUNTY = "411081"


def national_id(birth: date = date(1950, 5, 1), order: int = 12) -> str:
    return make_national_id(COUNTY, birth, order)


async def post(client: AsyncClient, path: str, body: dict[str, Any], status: int = 201) -> dict[str, Any]:
    r = await client.post(path, json=body)
    assert r.status_code == status, r.text
    data: dict[str, Any] = r.json()
    return data


@dataclass
class County:
    community: dict[str, Any]
    other_community: dict[str, Any]
    hospital: dict[str, Any]
    township: dict[str, Any]
    village: dict[str, Any]
    gp: dict[str, Any]
    village_doctor: dict[str, Any]
    specialist: dict[str, Any]
    team: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)


async def build_county(client: AsyncClient) -> County:
    await post(client, "/v1/regions", {"code": "410000", "name": "河南省", "level": "province"})
    await post(
        client, "/v1/regions", {"code": COUNTY, "name": "禹州市", "level": "county", "parent_code": "410000"}
    )
    community = await post(
        client, "/v1/communities", {"code": "C1", "name": "人民医院医共体", "county_code": COUNTY}
    )
    other = await post(
        client, "/v1/communities", {"code": "C2", "name": "中医院医共体", "county_code": COUNTY}
    )
    hospital = await post(
        client,
        "/v1/institutions",
        {
            "code": "H1",
            "name": "禹州市人民医院",
            "tier": "county",
            "kind": "general",
            "region_code": COUNTY,
            "community_id": community["id"],
            "membership": "lead",
            "insurance_designated": True,
            "service_centres": ["imaging", "lab"],
            "departments": [{"code": "NEI", "name": "内科"}, {"code": "CT", "name": "CT室", "kind": "exam"}],
        },
    )
    township = await post(
        client,
        "/v1/institutions",
        {
            "code": "T1",
            "name": "顺店镇卫生院",
            "tier": "township",
            "kind": "township_centre",
            "region_code": COUNTY,
            "community_id": community["id"],
            "membership": "tight",
        },
    )
    village = await post(
        client,
        "/v1/institutions",
        {
            "code": "V1",
            "name": "顺店镇王庄村卫生室",
            "tier": "village",
            "kind": "village_clinic",
            "region_code": COUNTY,
            "community_id": community["id"],
            "membership": "tight",
        },
    )
    gp = await post(
        client,
        "/v1/practitioners",
        {
            "licence_no": "P1",
            "name": "张医生",
            "title": "attending",
            "general_practitioner": True,
            "specialties": ["全科医学"],
            "institution_id": township["id"],
        },
    )
    vdoc = await post(
        client,
        "/v1/practitioners",
        {"licence_no": "P2", "name": "李村医", "title": "village_doctor", "institution_id": village["id"]},
    )
    spec = await post(
        client,
        "/v1/practitioners",
        {
            "licence_no": "P3",
            "name": "王主任",
            "title": "chief",
            "specialties": ["心血管内科"],
            "institution_id": hospital["id"],
        },
    )
    team = await post(
        client,
        "/v1/teams",
        {
            "code": "TEAM1",
            "name": "顺店家庭医生1队",
            "community_id": community["id"],
            "institution_id": township["id"],
            "lead_practitioner_id": gp["id"],
            "members": [
                {"practitioner_id": vdoc["id"], "role": "member"},
                {"practitioner_id": spec["id"], "role": "specialist"},
            ],
        },
    )
    return County(community, other, hospital, township, village, gp, vdoc, spec, team)


async def add_resident(
    client: AsyncClient, county: County, nid: str | None = None, **extra: Any
) -> dict[str, Any]:
    body = {
        "national_id": nid or national_id(),
        "name": "赵居民",
        "phone": "13812345678",
        "community_id": county.community["id"],
        "home_institution_id": county.village["id"],
        **extra,
    }
    return await post(client, "/v1/residents", body)
